//! Lowerings of the kernel IR: Mosaic (TPU) and its StableHLO custom-call wrapper.

pub mod custom_call;
pub mod mlir;
pub mod mosaic;
pub mod spmd;
pub mod stablehlo;
