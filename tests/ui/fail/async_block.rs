use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(o: Smem<i32, {[4]}>) {
    let f = async move { 1 };
    o.set(0, 1);
}

fn main() {}
