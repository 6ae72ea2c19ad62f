use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(#[comptime] p: *const i32, o: Smem<i32, {[4]}>) {
    let v = unsafe { *p };
    o.set(0, v);
}

fn main() {}
