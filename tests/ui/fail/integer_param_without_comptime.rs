use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(rows: usize, o: Smem<i32, {[4]}>) {
    o.set(0, rows);
}

fn main() {}
