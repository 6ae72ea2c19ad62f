use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(o: Smem<i32, {[4]}>) {
    let mut x: Scalar;
    x = o.get(0);
    o.set(1, x);
}

fn main() {}
