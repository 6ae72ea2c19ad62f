//! Runtime i32 quantities (`IntExpr`: a static part plus an optional SSA scalar), the values bound
//! to IR values, and what is known of them while lowering (constants, upper bounds).

use super::*;

impl Lowerer<'_> {
    pub(super) fn int_name(&mut self, l: &IntExpr) -> String {
        match &l.dynamic {
            None => self.iconst(l.constant),
            Some(d) if l.constant == 0 => d.clone(),
            Some(d) => {
                let c = self.iconst(l.constant);
                self.bin("add", d, &c, DType::I32, &[])
            }
        }
    }

    /// `a + b · scale`.
    pub(super) fn int_add(&mut self, a: &IntExpr, b: &IntExpr, scale: i64) -> IntExpr {
        let constant = a.constant + b.constant * scale;
        let dynamic = match (&a.dynamic, &b.dynamic) {
            (x, None) => x.clone(),
            (x, Some(bd)) => {
                let scaled = if scale == 1 {
                    bd.clone()
                } else {
                    let c = self.iconst(scale);
                    self.bin("multiply", bd, &c, DType::I32, &[])
                };
                Some(match x {
                    None => scaled,
                    Some(ad) => self.bin("add", ad, &scaled, DType::I32, &[]),
                })
            }
        };
        IntExpr { dynamic, constant }
    }

    pub(super) fn int_mul(&mut self, a: &IntExpr, b: &IntExpr) -> IntExpr {
        match (a.is_static(), b.is_static()) {
            (true, _) => self.int_add(&IntExpr::of(0), b, a.constant),
            (_, true) => self.int_add(&IntExpr::of(0), a, b.constant),
            _ => {
                let (x, y) = (self.int_name(a), self.int_name(b));
                IntExpr::dynamic(self.bin("multiply", &x, &y, DType::I32, &[]))
            }
        }
    }

    pub(super) fn tensor(&self, v: ValueId) -> String {
        match self.vals.get(&v) {
            Some(Bound::Tensor { name, .. }) => name.clone(),
            other => panic!("stablehlo lowering: value {v:?} is not a tensor ({other:?})"),
        }
    }

    pub(super) fn refval(&self, v: ValueId) -> R<RefVal> {
        match self.vals.get(&v) {
            Some(Bound::Ref(r)) => Ok(r.clone()),
            _ => Err(self.err(format!("value %v{} is not a ref", v.0))),
        }
    }

    pub(super) fn semval(&self, v: ValueId) -> R<SemVal> {
        match self.vals.get(&v) {
            Some(Bound::Sem(s)) => Ok(s.clone()),
            _ => Err(self.err(format!("value %v{} is not a semaphore", v.0))),
        }
    }

    pub(super) fn value_dtype(&self, v: ValueId) -> DType {
        self.k.ty(v).dtype().unwrap_or(DType::I32)
    }

    pub(super) fn value_shape(&self, v: ValueId) -> Vec<usize> {
        match self.k.ty(v) {
            Type::Vector { shape, .. } => shape.clone(),
            _ => vec![],
        }
    }

    /// An integer scalar as an i32 `IntExpr`.
    pub(super) fn int_of(&mut self, v: ValueId) -> IntExpr {
        match self.vals.get(&v) {
            Some(Bound::Tensor { constant: Some(k), .. }) => IntExpr::of(*k),
            _ => {
                let (n, dt) = (self.tensor(v), self.value_dtype(v));
                IntExpr::dynamic(self.convert(&n, dt, DType::I32, &[]))
            }
        }
    }

    pub(super) fn constant_of(&self, v: ValueId) -> Option<i64> {
        match self.vals.get(&v) {
            Some(Bound::Tensor { constant, .. }) => *constant,
            _ => None,
        }
    }

    /// A static upper bound of an integer scalar, if one is known.
    pub(super) fn upper_bound(&self, v: ValueId) -> Option<i64> {
        self.constant_of(v).or_else(|| self.upper.get(&v).copied())
    }

    /// An upper bound of `a op b` from bounds of the operands (assuming no overflow).
    pub(super) fn binary_upper_bound(&self, op: BinaryOp, a: ValueId, b: ValueId) -> Option<i64> {
        let (ua, ub, kb) = (self.upper_bound(a), self.upper_bound(b), self.constant_of(b));
        match op {
            BinaryOp::Min => match (ua, ub) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            },
            BinaryOp::Max => Some(ua?.max(ub?)),
            BinaryOp::Add => Some(ua? + ub?),
            BinaryOp::Sub => Some(ua? - kb?),
            BinaryOp::Mul => match (ua, kb, self.constant_of(a), ub) {
                (Some(x), Some(c), _, _) | (_, _, Some(c), Some(x)) if c >= 0 => Some(x * c),
                _ => None,
            },
            BinaryOp::Div => match (ua, kb) {
                (Some(x), Some(c)) if c > 0 && x >= 0 => Some(x / c),
                _ => None,
            },
            BinaryOp::Rem => match kb {
                Some(c) if c > 0 => Some(c - 1),
                _ => None,
            },
            _ => None,
        }
    }

    pub(super) fn bind(&mut self, inst: &Inst, name: String, constant: Option<i64>) {
        if let Some(r) = inst.result {
            self.vals.insert(r, Bound::Tensor { name, constant });
        }
    }

    pub(super) fn int_value(&mut self, l: &IntExpr) -> Bound {
        let name = self.int_name(l);
        Bound::Tensor { name, constant: l.is_static().then_some(l.constant) }
    }
}
