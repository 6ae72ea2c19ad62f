use rpa_dsl::prelude::*;

trait Schedule {}

#[tpu_kernel]
fn k(s: &dyn Schedule, o: Smem<i32, {[4]}>) {
    o.set(0, 1);
}

fn main() {}
