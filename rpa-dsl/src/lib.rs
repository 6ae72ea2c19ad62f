//! # rpa-dsl
//!
//! Kernel authors write tile-level TPU kernels as Rust functions under `#[tpu_kernel]`. Running the
//! generated builder records a [`Kernel`](ir::Kernel) in the IR of this crate, which the verifier
//! checks, the interpreter executes with strict reference semantics, and the backends lower.
//!
//! ```text
//! #[tpu_kernel] fn ──macro──► builder code ──run──► Kernel IR ──► verify ──► interpret
//!                                                              ├──► Mosaic → libtpu (PJRT)
//!                                                              └──► StableHLO → XLA CPU (PJRT)
//! ```
//!
//! [`tool`] gives any crate's binary the `rpa` command's subcommands (`ir`, `mosaic`, `stablehlo`,
//! `compile`, `run`, `trace`) for its own kernels.

// Generated code names this crate as `::rpa_dsl`, also inside it.
extern crate self as rpa_dsl;

pub mod array;
pub mod cpu;
pub mod dtype;
pub mod error;
pub mod frontend;
pub mod interpret;
pub mod ir;
pub mod lower;
pub mod mesh;
pub mod pjrt;
pub mod target;
pub mod tool;
pub mod tpu;

pub use array::Array;
pub use dtype::DType;
pub use error::{Diagnostic, KernelError};
pub use ir::{DimSemantics, Kernel, Loc};
pub use rpa_macros::{tpu_fn, tpu_kernel};
pub use target::{TargetCheck, TpuTarget};

/// Everything a kernel author needs: `use rpa_dsl::prelude::*;`.
pub mod prelude {
    pub use crate::dtype::DType::{self, *};
    pub use crate::frontend::cmp;
    pub use crate::frontend::{
        at, broadcast, cdiv, concat, copy, debug_print, debug_print_tile, dot, dot_general, ds, ds_max, emit_pipeline,
        full, full_dim, iota, matmul, matmul_t, max, min, multiple_of, num_programs, pow, program_id, roll, select,
        semaphore_signal, semaphore_wait, transpose, zeros, Dma, Hbm, PipelineSpec, Ref, Scalar, Sems, Smem, Tile,
        Vmem,
    };
    pub use crate::ir::DimSemantics::{Arbitrary, Parallel};
    pub use crate::{tpu_fn, tpu_kernel, Array, Kernel, KernelError, Loc, TargetCheck, TpuTarget};
}

/// Paths the macros' generated code uses. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::frontend::control::*;
    pub use crate::frontend::launch;
    pub use crate::frontend::{build_kernel, cmp, logic, runtime_depth, Hbm, Ref, Scalar, Sems, Smem, Tile, Vmem};
    pub use crate::ir::{CallFrame, DimSemantics, Kernel, Loc};
    pub use crate::{DType, KernelError};
}
