use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(o: Smem<i32, {[4]}>) {
    let (mut a, b) = (o.get(0), o.get(1));
    a = a + b;
    o.set(2, a);
}

fn main() {}
