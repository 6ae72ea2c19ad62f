use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(x: Vmem<f32, {[8, 128]}>) -> Tile {
    x.load()
}

fn main() {}
