use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(x: In<f32>, sems: DmaSems) {}

fn main() {}
