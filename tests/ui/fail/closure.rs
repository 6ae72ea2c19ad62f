use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(o: Smem<i32, {[4]}>) {
    let f = |i: usize| i + 1;
    o.set(0, f(1));
}

fn main() {}
