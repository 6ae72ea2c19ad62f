use rpa_dsl::prelude::*;

#[tpu_kernel]
async fn k(o: Smem<i32, {[4]}>) {
    o.set(0, 1);
}

fn main() {}
