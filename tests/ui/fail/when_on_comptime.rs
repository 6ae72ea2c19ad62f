use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(#[when(true)] #[comptime] n: usize, x: In<f32, {[8, 128]}>, #[when] o: Out<f32, {[8, 128]}>) {}

fn main() {}
