use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(buf: Vmem<i32, {[8, 128]}>, o: Smem<i32, {[4]}>) {
    let v = buf.get(0);
    o.set(0, v);
}

fn main() {}
