//! The type rule of every op (its result type from its operands' types), by family: the same
//! families as interpret mode's rules and the lowerings'.

pub(super) mod control;
pub(super) mod dma;
pub(super) mod elementwise;
pub(super) mod matmul;
pub(super) mod memory;
pub(super) mod reductions;
pub(super) mod shape;
