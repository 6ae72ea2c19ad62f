use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(x: Vmem<f32, {[8, 128]}>, y: Vmem<f32, {[8, 128]}>) {
    let x_tile = x.load();
    let pick = if program_id(0) == 0 { x_tile } else { y };
    x.store(pick);
}

#[tpu_kernel]
fn comptime_cond(#[comptime] flag: bool, x: Vmem<f32, {[8, 128]}>, y: Vmem<f32, {[8, 128]}>) {
    let x_tile = x.load();
    let pick = if flag { x_tile } else { y };
    x.store(pick);
}

fn main() {}
