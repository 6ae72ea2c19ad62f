//! Kernels written in the rpa DSL: the book's examples and the Ragged Paged Attention family, each
//! with a plain-Rust reference.

pub mod cli;
pub mod demo;
pub mod demo_values;
pub mod examples;
pub mod rpa;
