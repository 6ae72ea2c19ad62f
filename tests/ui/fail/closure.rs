use rpa_dsl::prelude::*;

// A closure's body is kernel code: the same rules apply to it.
#[tpu_kernel]
fn k(o: Smem<i32, {[4]}>) {
    let f = |i: Scalar| {
        if i == 0 {
            return i;
        }
        i + 1
    };
    o.set(0, f(o.get(1)));
}

fn main() {}
