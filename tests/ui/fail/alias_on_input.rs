use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(x: In<f32, {[8, 128]}>, #[alias(x)] y: In<f32, {[8, 128]}>, #[alias(q)] o: Out<f32, {[8, 128]}>) {}

fn main() {}
