use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(o: Smem<i32, {[4]}>) {
    'rows: for i in 0..4 {
        o.set(i, 1);
    }
}

fn main() {}
