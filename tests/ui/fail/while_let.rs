use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(#[comptime] xs: Vec<usize>, o: Smem<i32, {[4]}>) {
    let mut it = xs.into_iter();
    while let Some(x) = it.next() {
        o.set(x, 1);
    }
}

fn main() {}
