use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(#[comptime] n: Option<usize>, o: Smem<i32, {[4]}>) {
    let Some(n) = n else { panic!("no n") };
    o.set(n, 1);
}

fn main() {}
