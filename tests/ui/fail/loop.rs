use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(o: Smem<i32, {[4]}>) {
    let mut i = o.get(0);
    loop {
        i = i + 1;
    }
}

fn main() {}
