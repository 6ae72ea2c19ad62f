use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(o: Smem<i32, {[4]}>) {
    fn helper(x: Scalar) -> Scalar {
        x + 1
    }
    o.set(0, helper(o.get(1)));
}

fn main() {}
