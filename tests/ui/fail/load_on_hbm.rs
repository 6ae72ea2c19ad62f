use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(x: In<f32, {[8, 128]}>, o: Vmem<f32, {[8, 128]}>) {
    let t = x.load();
    o.store(t);
}

fn main() {}
