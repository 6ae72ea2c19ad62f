use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(o: Smem<i32, {[4]}>) {
    let x = o.get(0);
    if x > 0 {
        return;
    }
    o.set(1, x);
}

fn main() {}
