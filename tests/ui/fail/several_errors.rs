// Every error of a kernel is reported at once, and callers of the kernel see no cascade.
use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(#[comptime] n: usize, o: Smem<i32, {[4]}>) {
    for i in 0..n {
        if o.get(i) == 0 {
            break;
        }
    }
    let f = || -> i32 { return 1; };
    loop {}
}

fn main() {
    let _ = k(4);
}
