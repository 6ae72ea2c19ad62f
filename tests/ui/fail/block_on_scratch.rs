use rpa_dsl::prelude::*;

#[tpu_kernel(grid = [2])]
fn k(
    #[block([8, 128], |i| [i, 0])] x: In<f32, {[16, 128]}>,
    #[block([8, 128], |i| [i, 0])] acc: Vmem<f32, {[8, 128]}>,
) {
    acc.store(x.load());
}

fn main() {}
