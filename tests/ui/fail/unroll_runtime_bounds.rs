// `#[unroll]` runs the loop while building: its bounds must be comptime.
use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(n: Smem<i32, {[1]}>, o: Vmem<f32, {[8, 128]}>) {
    #[unroll]
    for _ in 0..n.get(0) {
        o.store(zeros(&[8, 128], F32));
    }
}

#[tpu_kernel]
fn computed_bound(n: Smem<i32, {[1]}>, o: Vmem<f32, {[8, 128]}>) {
    #[unroll]
    for _ in 0..n.get(0) * 2 {
        o.store(zeros(&[8, 128], F32));
    }
}

#[tpu_kernel]
fn runtime_while(n: Smem<i32, {[1]}>, o: Vmem<f32, {[8, 128]}>) {
    let mut k = 0;
    #[unroll]
    while k < n.get(0) {
        o.store(zeros(&[8, 128], F32));
        k += 1;
    }
}

fn main() {}
