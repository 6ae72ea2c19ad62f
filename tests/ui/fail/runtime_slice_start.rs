// A runtime `Scalar` where a comptime `usize` is needed: a tile's static slice start.
use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(x: Vmem<f32, {[64, 128]}>, o: Vmem<f32, {[8, 128]}>) {
    let i = program_id(0);
    o.store(x.load().slice(&[i * 8, 0], &[8, 128]));
}

fn main() {}
