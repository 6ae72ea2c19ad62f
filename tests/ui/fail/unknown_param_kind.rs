use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(x: Vec<f32>, o: Smem<i32, {[4]}>) {
    o.set(0, 1);
}

fn main() {}
