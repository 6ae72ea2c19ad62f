//! The builder frontend: typed handles for values, refs and semaphores, structured control flow and
//! the launch description. Running kernel code with these records IR; see [`build_kernel`].

mod builder;
pub mod control;
pub mod launch;
mod pipeline;
mod refs;
mod values;

pub use builder::{build_kernel, runtime_depth};
pub use pipeline::{emit_pipeline, PipelineSpec};
pub use refs::*;
pub use values::*;
