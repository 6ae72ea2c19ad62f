//! Kernels written in the rpa DSL.
