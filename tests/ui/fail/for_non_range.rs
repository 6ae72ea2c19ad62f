use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(#[comptime] offsets: Vec<usize>, o: Smem<i32, {[4]}>) {
    for off in offsets.iter() {
        o.set(*off, 1);
    }
}

fn main() {}
