//! A kernel's cost estimate, computed from its IR: what Pallas's `cost_estimate` tells XLA (the
//! custom call's `cost_estimate`), so that XLA can schedule around the kernel.
//!
//! - **flops**: one per element of every vector op (elementwise, reductions, casts), `2·m·n·k` per
//!   matmul (times its batch);
//! - **transcendentals**: one per element of `exp`, `log`, `tanh`, `sqrt`, `rsqrt`, `sin`, `cos`,
//!   `erf`, `exp2`, `log1p`, `sigmoid`, `pow`;
//! - **bytes accessed**: the bytes of every operand array (each input read once, each output
//!   written once).
//!
//! Each op counts once per grid step and per trip of the loops around it: a `for` with constant
//! bounds runs `hi - lo` trips; a loop whose bounds are known only at run time, and a `while`, count
//! one trip (the estimate is then low); an `if` counts its costlier branch. Scalar work is free.

use super::{Block, Kernel, Literal, Op, Type, UnaryOp, ValueId};
use std::collections::HashMap;

/// What a kernel costs, as XLA's cost analysis names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CostEstimate {
    pub flops: u64,
    pub transcendentals: u64,
    pub bytes_accessed: u64,
}

impl std::ops::Add for CostEstimate {
    type Output = CostEstimate;
    fn add(self, o: CostEstimate) -> CostEstimate {
        CostEstimate {
            flops: self.flops + o.flops,
            transcendentals: self.transcendentals + o.transcendentals,
            bytes_accessed: self.bytes_accessed + o.bytes_accessed,
        }
    }
}

impl CostEstimate {
    fn times(self, n: u64) -> CostEstimate {
        CostEstimate {
            flops: self.flops.saturating_mul(n),
            transcendentals: self.transcendentals.saturating_mul(n),
            bytes_accessed: self.bytes_accessed.saturating_mul(n),
        }
    }

    /// The costlier of two estimates (by flops, then transcendentals).
    fn max(self, o: CostEstimate) -> CostEstimate {
        if (o.flops, o.transcendentals) > (self.flops, self.transcendentals) {
            o
        } else {
            self
        }
    }
}

/// The cost estimate of `kernel`.
pub fn estimate(kernel: &Kernel) -> CostEstimate {
    let mut constants = HashMap::new();
    kernel.walk(&mut |i| {
        if let (Op::Const { value: Literal::Int(v), .. }, Some(r)) = (&i.op, i.result) {
            constants.insert(r, *v);
        }
    });
    let steps: u64 = kernel.grid.iter().map(|&d| d as u64).product();
    let body = Counter { k: kernel, constants }.block(&kernel.body).times(steps);
    let bytes: u64 = kernel
        .operands()
        .filter_map(|p| p.array.as_ref())
        .map(|a| (a.max_shape().iter().product::<usize>() * a.dtype.bytes()) as u64)
        .sum();
    CostEstimate { bytes_accessed: bytes, ..body }
}

struct Counter<'k> {
    k: &'k Kernel,
    constants: HashMap<ValueId, i64>,
}

impl Counter<'_> {
    fn block(&self, b: &Block) -> CostEstimate {
        b.insts.iter().map(|i| self.op(&i.op, i.result)).fold(CostEstimate::default(), |a, c| a + c)
    }

    /// Elements of a vector value (0 for scalars: scalar work is free).
    fn elements(&self, v: Option<ValueId>) -> u64 {
        match v.map(|v| self.k.ty(v)) {
            Some(Type::Vector { shape, .. }) => shape.iter().product::<usize>() as u64,
            _ => 0,
        }
    }

    fn op(&self, op: &Op, result: Option<ValueId>) -> CostEstimate {
        let flops = |n: u64| CostEstimate { flops: n, ..Default::default() };
        match op {
            Op::Unary { op: u, .. } => {
                let n = self.elements(result);
                let transcendental = matches!(
                    u,
                    UnaryOp::Exp
                        | UnaryOp::Log
                        | UnaryOp::Tanh
                        | UnaryOp::Sqrt
                        | UnaryOp::Rsqrt
                        | UnaryOp::Sin
                        | UnaryOp::Cos
                        | UnaryOp::Erf
                        | UnaryOp::Exp2
                        | UnaryOp::Log1p
                        | UnaryOp::Sigmoid
                );
                CostEstimate { flops: n, transcendentals: if transcendental { n } else { 0 }, bytes_accessed: 0 }
            }
            Op::Binary { op: b, .. } => {
                let n = self.elements(result);
                let transcendentals = if *b == super::BinaryOp::Pow { n } else { 0 };
                CostEstimate { flops: n, transcendentals, bytes_accessed: 0 }
            }
            Op::Compare { .. } | Op::Select { .. } | Op::Cast { .. } | Op::Roll { .. } | Op::Transpose { .. } => {
                flops(self.elements(result))
            }
            Op::Reduce { x, .. } | Op::ReduceAll { x, .. } | Op::ArgReduce { x, .. } => flops(self.elements(Some(*x))),
            Op::Matmul { lhs, transpose_lhs, .. } => {
                let k = match self.k.ty(*lhs) {
                    Type::Vector { shape, .. } if shape.len() >= 2 => {
                        shape[if *transpose_lhs { shape.len() - 2 } else { shape.len() - 1 }] as u64
                    }
                    _ => 0,
                };
                flops(2 * self.elements(result) * k)
            }
            Op::For { lo, hi, body, .. } => {
                let trips = match (self.constants.get(lo), self.constants.get(hi)) {
                    (Some(&lo), Some(&hi)) => hi.saturating_sub(lo).max(0) as u64,
                    _ => 1,
                };
                self.block(body).times(trips)
            }
            Op::If { then_body, else_body, .. } => self.block(then_body).max(self.block(else_body)),
            Op::While { cond_body, body, .. } => self.block(cond_body) + self.block(body),
            // Scalars, data movement (counted in bytes accessed) and bookkeeping.
            Op::Const { .. }
            | Op::ProgramId { .. }
            | Op::NumPrograms { .. }
            | Op::Bitcast { .. }
            | Op::MultipleOf { .. }
            | Op::Iota { .. }
            | Op::Broadcast { .. }
            | Op::Reshape { .. }
            | Op::Slice { .. }
            | Op::Concat { .. }
            | Op::Extract { .. }
            | Op::View { .. }
            | Op::RefReshape { .. }
            | Op::RefBitcast { .. }
            | Op::Load { .. }
            | Op::LoadStrided { .. }
            | Op::Store { .. }
            | Op::StoreStrided { .. }
            | Op::ScalarLoad { .. }
            | Op::ScalarStore { .. }
            | Op::DmaStart { .. }
            | Op::DmaWait { .. }
            | Op::SemSignal { .. }
            | Op::SemWait { .. }
            | Op::VarDecl { .. }
            | Op::VarGet { .. }
            | Op::VarSet { .. }
            | Op::DebugPrint { .. } => CostEstimate::default(),
        }
    }
}
