use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(#[comptime] s: &str, o: Smem<i32, {[4]}>) {
    let n: i32 = s.parse().ok()?;
    o.set(0, n);
}

fn main() {}
