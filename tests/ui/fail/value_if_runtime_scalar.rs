// A value `if` whose branches are comptime values, on a runtime condition.
use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(x: Vmem<f32, {[64, 128]}>, o: Vmem<f32, {[8, 128]}>) {
    let rows: usize = if program_id(0) > 0 { 8 } else { 16 };
    o.store(x.load().slice(&[0, 0], &[rows, 128]));
}

fn main() {}
