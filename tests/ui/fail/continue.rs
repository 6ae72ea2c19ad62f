use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(o: Smem<i32, {[4]}>) {
    for i in 0..4 {
        if o.get(i) == 0 {
            continue;
        }
        o.set(i, 1);
    }
}

fn main() {}
