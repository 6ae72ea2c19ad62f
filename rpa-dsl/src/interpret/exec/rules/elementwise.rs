//! Elementwise: constants, grid indices, unary and binary ops, compares, selects, casts, iotas.

use super::super::*;

impl<'k> Machine<'k> {
    pub(crate) fn exec_const(&mut self, inst: &'k Inst, value: &Literal) -> R<()> {
        let v = match value {
            Literal::Int(i) => Val::I(self.result_dtype(inst).wrap(*i)),
            Literal::Float(f) => Val::F(round_f(self.result_dtype(inst), *f as f32)),
        };
        self.set(inst, v);
        Ok(())
    }

    pub(crate) fn exec_program_id(&mut self, inst: &'k Inst, axis: usize) -> R<()> {
        let v = Val::I(self.grid_idx.get(axis).copied().unwrap_or(0));
        self.set(inst, v);
        Ok(())
    }

    pub(crate) fn exec_num_programs(&mut self, inst: &'k Inst, axis: usize) -> R<()> {
        let v = Val::I(self.k.grid.get(axis).copied().unwrap_or(1) as i64);
        self.set(inst, v);
        Ok(())
    }

    pub(crate) fn exec_unary(&mut self, inst: &'k Inst, op: UnaryOp, x: ValueId) -> R<()> {
        let dt = self.dtype(x);
        let xv = self.vv(x);
        let out = match &xv.data {
            Data::F(v) => {
                let mut v: Vec<f32> = v.iter().map(|&e| unary_f(op, e)).collect();
                round_vec(dt, &mut v);
                Data::F(v)
            }
            Data::I(v) => Data::I(v.iter().map(|&e| unary_i(op, dt, e)).collect()),
        };
        self.tick(out.len());
        let v = self.vector_or_scalar(self.result_shape(inst), out);
        self.set(inst, v);
        Ok(())
    }

    pub(crate) fn exec_binary(&mut self, inst: &'k Inst, loc: Loc, op: BinaryOp, lhs: ValueId, rhs: ValueId) -> R<()> {
        let dt = self.dtype(lhs);
        let shape = self.result_shape(inst);
        let v = match (self.val(lhs), self.val(rhs), &shape) {
            // Scalar arithmetic (most of the control flow) without building vectors.
            (&Val::I(a), &Val::I(b), None) => {
                Val::I(binary_i(op, dt, a, b).map_err(|m| self.err(loc, inst.op.name(), m))?)
            }
            (&Val::F(a), &Val::F(b), None) => Val::F(round_f(dt, binary_f(op, a, b))),
            _ => {
                let out = self
                    .binary(op, dt, lhs, rhs, shape.as_deref().unwrap_or(&[]))
                    .map_err(|m| self.err(loc, inst.op.name(), m))?;
                self.vector_or_scalar(shape, out)
            }
        };
        self.tick(match &v {
            Val::V(vv) => vv.data.len(),
            _ => 1,
        });
        self.set(inst, v);
        Ok(())
    }

    pub(crate) fn exec_compare(&mut self, inst: &'k Inst, op: CmpOp, lhs: ValueId, rhs: ValueId) -> R<()> {
        let shape = self.result_shape(inst);
        let out_shape = shape.clone().unwrap_or_default();
        let (a, b) = (self.vv(lhs), self.vv(rhs));
        let out = match (&a.data, &b.data) {
            (Data::F(x), Data::F(y)) => compare_vec(op, (x, &a.shape), (y, &b.shape), &out_shape),
            (Data::I(x), Data::I(y)) => compare_vec(op, (x, &a.shape), (y, &b.shape), &out_shape),
            _ => unreachable!("type rule: compare operands share a dtype"),
        };
        self.tick(out_shape.iter().product());
        let v = self.vector_or_scalar(shape, Data::I(out));
        self.set(inst, v);
        Ok(())
    }

    pub(crate) fn exec_select(&mut self, inst: &'k Inst, cond: ValueId, on_true: ValueId, on_false: ValueId) -> R<()> {
        let shape = self.result_shape(inst);
        let out_shape = shape.clone().unwrap_or_default();
        let (c, a, b) = (self.vv(cond), self.vv(on_true), self.vv(on_false));
        let Data::I(cd) = &c.data else { unreachable!("type rule: select condition is bool") };
        let cond = (cd.as_slice(), c.shape.as_slice());
        let out = match (&a.data, &b.data) {
            (Data::F(x), Data::F(y)) => Data::F(select_vec(cond, (x, &a.shape), (y, &b.shape), &out_shape)),
            (Data::I(x), Data::I(y)) => Data::I(select_vec(cond, (x, &a.shape), (y, &b.shape), &out_shape)),
            _ => unreachable!("type rule: select operands share a dtype"),
        };
        self.tick(out.len());
        let v = self.vector_or_scalar(shape, out);
        self.set(inst, v);
        Ok(())
    }

    pub(crate) fn exec_cast(&mut self, inst: &'k Inst, x: ValueId, to: DType) -> R<()> {
        let from = self.dtype(x);
        let xv = self.vv(x);
        let out = match &xv.data {
            // A cast to the same dtype is the identity (as in Mosaic): share the data.
            _ if from == to => None,
            Data::F(v) if from.is_float() && to == DType::F32 => {
                Some(Data::F(v.iter().map(|&e| e as f64 as f32).collect()))
            }
            Data::F(v) if to.is_float() => {
                Some(Data::F(v.iter().map(|&e| cast_scalar(from, to, e as f64, 0).0).collect()))
            }
            Data::F(v) => Some(Data::I(v.iter().map(|&e| cast_scalar(from, to, e as f64, 0).1).collect())),
            Data::I(v) if to.is_float() => Some(Data::F(v.iter().map(|&e| cast_scalar(from, to, 0.0, e).0).collect())),
            Data::I(v) => Some(Data::I(v.iter().map(|&e| cast_scalar(from, to, 0.0, e).1).collect())),
        };
        self.tick(xv.data.len());
        let shape = self.result_shape(inst);
        let v = match (out, shape, self.val(x)) {
            (None, Some(_), Val::V(_)) => Val::V(xv),
            (None, shape, _) => self.vector_or_scalar(shape, xv.data.clone()),
            (Some(out), shape, _) => self.vector_or_scalar(shape, out),
        };
        self.set(inst, v);
        Ok(())
    }

    pub(crate) fn exec_bitcast(&mut self, inst: &'k Inst, x: ValueId, to: DType) -> R<()> {
        let from = self.dtype(x);
        let xv = self.vv(x);
        let bits = to_bits(from, &xv.data);
        let out_bits = repack(&bits, from, to, &xv.shape);
        let out = from_bits(to, &out_bits);
        let v = self.vector_or_scalar(self.result_shape(inst), out);
        self.set(inst, v);
        Ok(())
    }

    pub(crate) fn exec_multiple_of(&mut self, inst: &'k Inst, loc: Loc, x: ValueId, multiple: u32) -> R<()> {
        let v = self.int(x);
        if v % i64::from(multiple) != 0 {
            return Err(self.err(loc, "multiple_of", not_a_multiple(v, multiple)));
        }
        self.set(inst, Val::I(v));
        Ok(())
    }

    pub(crate) fn exec_iota(&mut self, inst: &'k Inst, shape: &[usize], dim: usize) -> R<()> {
        let n: usize = shape.iter().product();
        let inner: usize = shape[dim + 1..].iter().product();
        let mut data = Vec::with_capacity(n);
        while data.len() < n {
            for i in 0..shape[dim] {
                data.extend(std::iter::repeat_n(i as i64, inner));
            }
        }
        self.set(inst, Val::V(Rc::new(VecVal { shape: shape.to_vec(), data: Data::I(data) })));
        Ok(())
    }
}
