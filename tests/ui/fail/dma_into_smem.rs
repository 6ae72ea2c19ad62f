use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(x: In<i32, {[4]}>, flags: Smem<i32, {[4]}>, sem: DmaSems<{[1]}>) {
    copy(x, flags, sem.at(0)).start_and_wait();
}

fn main() {}
