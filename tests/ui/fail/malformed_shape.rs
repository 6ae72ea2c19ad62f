use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(
    #[comptime] rows: usize,
    x: In<f32, {[rows, 128]}, {[8]}>,
    o: Out<f32, [rows, 128]>,
) {
}

fn main() {}
