use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(x: Vmem<f32, {[8, 128]}>) {
    let mask = x.load() > 0.0;
    if mask {
        x.store(zeros(&[8, 128], F32));
    }
}

fn main() {}
