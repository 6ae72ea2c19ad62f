//! Errors that name the kernel, the op and the author's source line.

use crate::ir::Loc;
use std::fmt;

/// One problem found while building, verifying, lowering or running a kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub kernel: String,
    /// The op (or parameter) concerned, when there is one.
    pub op: Option<String>,
    pub loc: Loc,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: kernel `{}`", self.loc, self.kernel)?;
        if let Some(op) = &self.op {
            write!(f, ", `{op}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The error of a kernel build, verification, lowering or launch: one or more diagnostics.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelError {
    pub diagnostics: Vec<Diagnostic>,
}

impl KernelError {
    pub fn new(diagnostics: Vec<Diagnostic>) -> KernelError {
        KernelError { diagnostics }
    }

    pub fn single(kernel: &str, op: Option<&str>, loc: Loc, message: impl Into<String>) -> KernelError {
        KernelError::new(vec![Diagnostic {
            kernel: kernel.to_string(),
            op: op.map(str::to_string),
            loc,
            message: message.into(),
        }])
    }

    /// The first diagnostic (there is always one).
    pub fn first(&self) -> &Diagnostic {
        &self.diagnostics[0]
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for KernelError {}
