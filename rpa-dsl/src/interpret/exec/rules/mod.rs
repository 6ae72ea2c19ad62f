//! The rule of every op, by family (the same families in the type rules, interpret mode and the
//! lowerings).

mod control;
mod dma;
mod elementwise;
mod matmul;
mod memory;
mod reductions;
mod shape;
