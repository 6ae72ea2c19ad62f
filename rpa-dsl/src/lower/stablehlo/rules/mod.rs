//! The lowering rule of every op, by family (the same families as the type rules, interpret mode
//! and the Mosaic lowering).

mod control;
mod dma;
mod elementwise;
mod matmul;
mod memory;
mod reductions;
mod shape;
