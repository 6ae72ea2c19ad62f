//! The MLIR text layer of the lowerings (Mosaic, StableHLO) and of the dense reference: a buffer
//! that indents lines and names fresh SSA values, the printers of shaped types, symbol names and
//! lists.

use crate::dtype::DType;
use std::fmt::Display;

/// MLIR text being written: one op a line, indented by region depth.
#[derive(Debug)]
pub struct Text {
    out: String,
    depth: usize,
    next: usize,
    /// Fresh SSA names are `%{prefix}{n}`.
    prefix: &'static str,
}

impl Text {
    pub fn new(prefix: &'static str) -> Text {
        Text { out: String::new(), depth: 0, next: 0, prefix }
    }

    /// A fresh SSA name.
    pub fn fresh(&mut self) -> String {
        self.next += 1;
        format!("%{}{}", self.prefix, self.next)
    }

    pub fn line(&mut self, s: &str) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
        self.out.push_str(s);
        self.out.push('\n');
    }

    /// Writes `%t = rhs` and returns `%t`.
    pub fn emit(&mut self, rhs: impl Display) -> String {
        let t = self.fresh();
        self.line(&format!("{t} = {rhs}"));
        t
    }

    /// Lines from now on are one level deeper (`enter`) or shallower (`leave`).
    pub fn enter(&mut self) {
        self.depth += 1;
    }

    pub fn leave(&mut self) {
        self.depth -= 1;
    }

    pub fn as_str(&self) -> &str {
        &self.out
    }

    pub fn into_string(self) -> String {
        self.out
    }
}

/// `8x128x` (the dims of a shaped type).
pub fn dims(shape: &[usize]) -> String {
    shape.iter().map(|d| format!("{d}x")).collect()
}

/// `tensor<8x128xf32>` (`tensor<f32>` for a scalar).
pub fn tensor(elem: &str, shape: &[usize]) -> String {
    format!("tensor<{}{elem}>", dims(shape))
}

/// `vector<8x128xf32>` (the element type itself for a scalar).
pub fn vector(elem: &str, shape: &[usize]) -> String {
    if shape.is_empty() {
        elem.to_string()
    } else {
        format!("vector<{}{elem}>", dims(shape))
    }
}

/// `a, b, c`.
pub fn join<T: Display>(xs: &[T]) -> String {
    xs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// A symbol name MLIR accepts unquoted.
pub fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// A float literal MLIR parses: finite values in decimal (`2.0e0`; MLIR needs the point), others
/// as their bit pattern at the type's width.
pub fn float_literal(dtype: DType, v: f64) -> String {
    if v.is_finite() {
        let s = format!("{v:e}");
        match s.split_once('e') {
            Some((m, e)) if !m.contains('.') => format!("{m}.0e{e}"),
            _ => s,
        }
    } else {
        format!("0x{:0width$X}", dtype.float_to_bits(v), width = dtype.bits() / 4)
    }
}
