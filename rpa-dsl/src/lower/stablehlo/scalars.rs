//! Runtime i32 quantities (`Lin`: a static part plus an optional SSA scalar), the values bound
//! to IR values, and what is known of them while lowering (constants, upper bounds).

use super::*;

impl Lowerer<'_> {
    pub(super) fn lin_name(&mut self, l: &Lin) -> String {
        match &l.dynamic {
            None => self.iconst(l.konst),
            Some(d) if l.konst == 0 => d.clone(),
            Some(d) => {
                let c = self.iconst(l.konst);
                self.bin("add", d, &c, DType::I32, &[])
            }
        }
    }

    /// `a + b · scale`.
    pub(super) fn lin_add(&mut self, a: &Lin, b: &Lin, scale: i64) -> Lin {
        let konst = a.konst + b.konst * scale;
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
        Lin { dynamic, konst }
    }

    pub(super) fn lin_mul(&mut self, a: &Lin, b: &Lin) -> Lin {
        match (a.is_static(), b.is_static()) {
            (true, _) => self.lin_add(&Lin::k(0), b, a.konst),
            (_, true) => self.lin_add(&Lin::k(0), a, b.konst),
            _ => {
                let (x, y) = (self.lin_name(a), self.lin_name(b));
                Lin::dynamic(self.bin("multiply", &x, &y, DType::I32, &[]))
            }
        }
    }

    pub(super) fn tensor(&self, v: ValueId) -> String {
        match self.vals.get(&v) {
            Some(Lv::T { name, .. }) => name.clone(),
            other => panic!("stablehlo lowering: value {v:?} is not a tensor ({other:?})"),
        }
    }

    pub(super) fn refval(&self, v: ValueId) -> R<RefVal> {
        match self.vals.get(&v) {
            Some(Lv::R(r)) => Ok(r.clone()),
            _ => Err(self.err(format!("value %v{} is not a ref", v.0))),
        }
    }

    pub(super) fn semval(&self, v: ValueId) -> R<SemVal> {
        match self.vals.get(&v) {
            Some(Lv::S(s)) => Ok(s.clone()),
            _ => Err(self.err(format!("value %v{} is not a semaphore", v.0))),
        }
    }

    pub(super) fn vdt(&self, v: ValueId) -> DType {
        self.k.ty(v).dtype().unwrap_or(DType::I32)
    }

    pub(super) fn vshape(&self, v: ValueId) -> Vec<usize> {
        match self.k.ty(v) {
            Type::Vector { shape, .. } => shape.clone(),
            _ => vec![],
        }
    }

    /// An integer scalar as an i32 `Lin`.
    pub(super) fn lin_of(&mut self, v: ValueId) -> Lin {
        match self.vals.get(&v) {
            Some(Lv::T { konst: Some(k), .. }) => Lin::k(*k),
            _ => {
                let (n, dt) = (self.tensor(v), self.vdt(v));
                Lin::dynamic(self.convert(&n, dt, DType::I32, &[]))
            }
        }
    }

    pub(super) fn konst(&self, v: ValueId) -> Option<i64> {
        match self.vals.get(&v) {
            Some(Lv::T { konst, .. }) => *konst,
            _ => None,
        }
    }

    /// A static upper bound of an integer scalar, if one is known.
    pub(super) fn ub(&self, v: ValueId) -> Option<i64> {
        self.konst(v).or_else(|| self.upper.get(&v).copied())
    }

    /// An upper bound of `a op b` from bounds of the operands (assuming no overflow).
    pub(super) fn binary_ub(&self, op: BinaryOp, a: ValueId, b: ValueId) -> Option<i64> {
        let (ua, ub, kb) = (self.ub(a), self.ub(b), self.konst(b));
        match op {
            BinaryOp::Min => match (ua, ub) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            },
            BinaryOp::Max => Some(ua?.max(ub?)),
            BinaryOp::Add => Some(ua? + ub?),
            BinaryOp::Sub => Some(ua? - kb?),
            BinaryOp::Mul => match (ua, kb, self.konst(a), ub) {
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

    pub(super) fn bind(&mut self, inst: &Inst, name: String, konst: Option<i64>) {
        if let Some(r) = inst.result {
            self.vals.insert(r, Lv::T { name, konst });
        }
    }

    pub(super) fn lin_value(&mut self, l: &Lin) -> Lv {
        let name = self.lin_name(l);
        Lv::T { name, konst: l.is_static().then_some(l.konst) }
    }
}
