//! Elementwise rules: constants, grid indices, unary and binary ops, compares, selects, casts, iotas.

use super::super::*;

impl<'k> Lowerer<'k> {
    pub(crate) fn lower_const(&mut self, inst: &'k Inst, dtype: DType, value: Literal) -> R<()> {
        let (bits, constant) = match value {
            Literal::Int(i) => {
                let w = dtype.wrap(i);
                (dtype.int_to_bits(w), Some(w))
            }
            Literal::Float(f) => {
                let v = if dtype == DType::F32 { f as f32 } else { dtype.round(f as f32 as f64) as f32 };
                (dtype.float_to_bits(v as f64), None)
            }
        };
        let n = self.splat_bits(dtype, &[], bits);
        self.bind(inst, n, constant.filter(|_| dtype.is_int() || dtype == DType::Bool));
        Ok(())
    }

    pub(crate) fn lower_program_id(&mut self, inst: &'k Inst, axis: usize) -> R<()> {
        let l = self.grid_idx.get(axis).cloned().unwrap_or(IntExpr::of(0));
        let lv = self.int_value(&l);
        if let Some(r) = inst.result {
            self.vals.insert(r, lv);
        }
        Ok(())
    }

    pub(crate) fn lower_num_programs(&mut self, inst: &'k Inst, axis: usize) -> R<()> {
        let n = self.k.grid.get(axis).copied().unwrap_or(1) as i64;
        let c = self.iconst(n);
        self.bind(inst, c, Some(n));
        Ok(())
    }

    pub(crate) fn lower_unary(&mut self, inst: &'k Inst, op: UnaryOp, x: ValueId) -> R<()> {
        let (dt, sh, xn) = (self.value_dtype(x), self.value_shape(x), self.tensor(x));
        let r = if dt.is_float() {
            let (x, f) = self.upcast(&xn, dt, &sh);
            let y = match op {
                UnaryOp::Neg => self.un("negate", &x, f, &sh),
                UnaryOp::Abs => self.un("abs", &x, f, &sh),
                UnaryOp::Exp => self.un("exponential", &x, f, &sh),
                UnaryOp::Log => self.un("log", &x, f, &sh),
                UnaryOp::Tanh => self.un("tanh", &x, f, &sh),
                UnaryOp::Sqrt => self.un("sqrt", &x, f, &sh),
                UnaryOp::Rsqrt => {
                    // `1 / sqrt(x)` with both roundings, as interpret mode: the barrier keeps
                    // XLA from rewriting it to its approximate rsqrt.
                    let s = self.un("sqrt", &x, f, &sh);
                    let s = self.emit(format!("stablehlo.optimization_barrier {s} : {}", ty(f, &sh)));
                    let one = self.splat(f, &sh, 1.0);
                    self.bin("divide", &one, &s, f, &sh)
                }
                UnaryOp::Recip { .. } => {
                    let one = self.splat(f, &sh, 1.0);
                    self.bin("divide", &one, &x, f, &sh)
                }
                UnaryOp::Sin => self.un("sine", &x, f, &sh),
                UnaryOp::Cos => self.un("cosine", &x, f, &sh),
                UnaryOp::Erf => self.emit(format!("chlo.erf {x} : {t} -> {t}", t = ty(f, &sh))),
                UnaryOp::Exp2 => {
                    let two = self.splat(f, &sh, 2.0);
                    self.bin("power", &two, &x, f, &sh)
                }
                UnaryOp::Log1p => self.un("log_plus_one", &x, f, &sh),
                UnaryOp::Floor => self.un("floor", &x, f, &sh),
                UnaryOp::Ceil => self.un("ceil", &x, f, &sh),
                UnaryOp::Sigmoid => {
                    // `1 / (1 + exp(-x))` as written, as interpret mode computes it.
                    let neg = self.un("negate", &x, f, &sh);
                    let e = self.un("exponential", &neg, f, &sh);
                    let one = self.splat(f, &sh, 1.0);
                    let den = self.bin("add", &one, &e, f, &sh);
                    self.bin("divide", &one, &den, f, &sh)
                }
                UnaryOp::Not => x.clone(),
            };
            self.convert(&y, f, dt, &sh)
        } else {
            match op {
                UnaryOp::Neg => self.un("negate", &xn, dt, &sh),
                UnaryOp::Abs => self.un("abs", &xn, dt, &sh),
                UnaryOp::Not => self.un("not", &xn, dt, &sh),
                _ => return Err(self.err(format!("`{}` on {dt}", inst.op.name()))),
            }
        };
        self.bind(inst, r, None);
        Ok(())
    }

    pub(crate) fn lower_binary(&mut self, inst: &'k Inst, op: BinaryOp, lhs: ValueId, rhs: ValueId) -> R<()> {
        let dt = self.value_dtype(lhs);
        let sh = self.result_shape(inst);
        let (a, b) = (self.operand(lhs, &sh), self.operand(rhs, &sh));
        let constant = match (self.vals.get(&lhs), self.vals.get(&rhs)) {
            (Some(Bound::Tensor { constant: Some(x), .. }), Some(Bound::Tensor { constant: Some(y), .. }))
                if dt == DType::I32 =>
            {
                let (x, y) = (*x as i32, *y as i32);
                match op {
                    BinaryOp::Add => Some(x.wrapping_add(y) as i64),
                    BinaryOp::Sub => Some(x.wrapping_sub(y) as i64),
                    BinaryOp::Mul => Some(x.wrapping_mul(y) as i64),
                    _ => None,
                }
            }
            _ => None,
        };
        let r = if dt.is_float() {
            let (a, f) = self.upcast(&a, dt, &sh);
            let (b, _) = self.upcast(&b, dt, &sh);
            let name = match op {
                BinaryOp::Add => "add",
                BinaryOp::Sub => "subtract",
                BinaryOp::Mul => "multiply",
                BinaryOp::Div => "divide",
                BinaryOp::Rem => "remainder",
                BinaryOp::Max => "maximum",
                BinaryOp::Min => "minimum",
                BinaryOp::Pow => "power",
                _ => return Err(self.err(format!("`{}` on {dt}", inst.op.name()))),
            };
            let y = if matches!(op, BinaryOp::Max | BinaryOp::Min) {
                self.float_minmax(name, &a, &b, f, &sh)
            } else {
                self.bin(name, &a, &b, f, &sh)
            };
            self.convert(&y, f, dt, &sh)
        } else {
            let name = match op {
                BinaryOp::Add => "add",
                BinaryOp::Sub => "subtract",
                BinaryOp::Mul => "multiply",
                BinaryOp::Div => "divide",
                BinaryOp::Rem => "remainder",
                BinaryOp::Max => "maximum",
                BinaryOp::Min => "minimum",
                BinaryOp::And => "and",
                BinaryOp::Or => "or",
                BinaryOp::Xor => "xor",
                BinaryOp::Shl => "shift_left",
                BinaryOp::Shr if dt.is_unsigned_int() => "shift_right_logical",
                BinaryOp::Shr => "shift_right_arithmetic",
                BinaryOp::Pow => return Err(self.err(format!("`pow` on {dt}"))),
            };
            if matches!(op, BinaryOp::Div | BinaryOp::Rem) && self.constant_of(rhs).is_none_or(|k| k == 0) {
                self.check_divisor(&b, dt, &sh, op == BinaryOp::Rem);
            }
            self.bin(name, &a, &b, dt, &sh)
        };
        if let (Some(res), true) = (inst.result, dt.is_int() && sh.is_empty()) {
            if let Some(u) = self.binary_upper_bound(op, lhs, rhs) {
                self.upper.insert(res, u);
            }
        }
        self.bind(inst, r, constant);
        Ok(())
    }

    pub(crate) fn lower_compare(&mut self, inst: &'k Inst, op: CmpOp, lhs: ValueId, rhs: ValueId) -> R<()> {
        let dt = self.value_dtype(lhs);
        let sh = self.result_shape(inst);
        let (a, b) = (self.operand(lhs, &sh), self.operand(rhs, &sh));
        let (a, f) = self.upcast(&a, dt, &sh);
        let (b, _) = self.upcast(&b, dt, &sh);
        let dir = match op {
            CmpOp::Eq => "EQ",
            CmpOp::Ne => "NE",
            CmpOp::Lt => "LT",
            CmpOp::Le => "LE",
            CmpOp::Gt => "GT",
            CmpOp::Ge => "GE",
        };
        let r = self.compare(dir, &a, &b, f, &sh);
        self.bind(inst, r, None);
        Ok(())
    }

    pub(crate) fn lower_select(&mut self, inst: &'k Inst, cond: ValueId, on_true: ValueId, on_false: ValueId) -> R<()> {
        let sh = self.result_shape(inst);
        let dt = self.value_dtype(on_true);
        let c = self.operand(cond, &sh);
        let (a, b) = (self.operand(on_true, &sh), self.operand(on_false, &sh));
        let r = self.select(&c, &a, &b, &sh, dt, &sh);
        self.bind(inst, r, None);
        Ok(())
    }

    pub(crate) fn lower_cast(&mut self, inst: &'k Inst, x: ValueId, to: DType) -> R<()> {
        let (dt, sh, xn) = (self.value_dtype(x), self.value_shape(x), self.tensor(x));
        let constant = match self.vals.get(&x) {
            Some(Bound::Tensor { constant: Some(k), .. }) if to.is_int() => Some(to.wrap(*k)),
            _ => None,
        };
        let r = self.cast(&xn, dt, to, &sh);
        self.bind(inst, r, constant);
        Ok(())
    }

    pub(crate) fn lower_bitcast(&mut self, inst: &'k Inst, x: ValueId, to: DType) -> R<()> {
        let (dt, sh, xn) = (self.value_dtype(x), self.value_shape(x), self.tensor(x));
        let r = if dt.bits() == to.bits() { self.view_as(&xn, dt, to, &sh) } else { self.repack(&xn, dt, to, &sh) };
        self.bind(inst, r, None);
        Ok(())
    }

    pub(crate) fn lower_multiple_of(&mut self, inst: &'k Inst, x: ValueId, multiple: u32) -> R<()> {
        let (dt, xn) = (self.value_dtype(x), self.tensor(x));
        let constant = self.constant_of(x);
        if constant.is_none_or(|k| k % i64::from(multiple) != 0) {
            self.check_multiple(&xn, dt, multiple);
        }
        if let (Some(res), Some(u)) = (inst.result, self.upper_bound(x)) {
            self.upper.insert(res, u);
        }
        self.bind(inst, xn, constant);
        Ok(())
    }

    pub(crate) fn lower_iota(&mut self, inst: &'k Inst, dtype: DType, shape: &[usize], dim: usize) -> R<()> {
        let r = self.iota(dtype, shape, dim);
        self.bind(inst, r, None);
        Ok(())
    }
}
