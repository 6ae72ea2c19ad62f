//! Reduction rules.

use super::super::*;

impl<'k> Lowerer<'k> {
    pub(crate) fn lower_reduce(&mut self, inst: &'k Inst, op: ReduceOp, x: ValueId, axis: usize) -> R<()> {
        let (dt, sh, xn) = (self.value_dtype(x), self.value_shape(x), self.tensor(x));
        let (x, f) = self.upcast(&xn, dt, &sh);
        let red = self.reduce_op(op, &x, f, &sh, axis);
        let mut out = sh.clone();
        out[axis] = 1;
        let red_shape: Vec<usize> = sh.iter().enumerate().filter(|&(d, _)| d != axis).map(|(_, &n)| n).collect();
        let r = self.reshape(&red, f, &red_shape, &out);
        let r = self.convert(&r, f, dt, &out);
        self.bind(inst, r, None);
        Ok(())
    }

    /// `x` (of the compute dtype `f`) reduced by `op` along `axis` (dropped).
    fn reduce_op(&mut self, op: ReduceOp, x: &str, f: DType, sh: &[usize], axis: usize) -> String {
        let (name, init) = match op {
            ReduceOp::Sum => ("add", 0.0),
            ReduceOp::Max if f.is_float() => ("maximum", f64::NEG_INFINITY),
            ReduceOp::Min if f.is_float() => ("minimum", f64::INFINITY),
            ReduceOp::Max => ("maximum", f.finite_range().0),
            ReduceOp::Min => ("minimum", f.finite_range().1),
        };
        self.reduce(x, f, sh, axis, name, value_bits(f, init))
    }

    /// Every element, flattened, to one scalar.
    pub(crate) fn lower_reduce_all(&mut self, inst: &'k Inst, op: ReduceOp, x: ValueId) -> R<()> {
        let (dt, sh, xn) = (self.value_dtype(x), self.value_shape(x), self.tensor(x));
        let (x, f) = self.upcast(&xn, dt, &sh);
        let n = sh.iter().product::<usize>();
        let flat = self.reshape(&x, f, &sh, &[n]);
        let red = self.reduce_op(op, &flat, f, &[n], 0);
        let r = self.convert(&red, f, dt, &[]);
        self.bind(inst, r, None);
        Ok(())
    }

    /// As interpret mode: the smallest index where `x` equals its (NaN-propagating) extreme or is NaN.
    pub(crate) fn lower_arg_reduce(&mut self, inst: &'k Inst, op: ArgOp, x: ValueId, axis: usize) -> R<()> {
        let (dt, sh, xn) = (self.value_dtype(x), self.value_shape(x), self.tensor(x));
        let (x, f) = self.upcast(&xn, dt, &sh);
        let reduce = if op == ArgOp::Max { ReduceOp::Max } else { ReduceOp::Min };
        let m = self.reduce_op(reduce, &x, f, &sh, axis);
        let red_shape: Vec<usize> = sh.iter().enumerate().filter(|&(d, _)| d != axis).map(|(_, &n)| n).collect();
        let dims: Vec<usize> = (0..sh.len()).filter(|&d| d != axis).collect();
        let mb = self.emit(format!(
            "stablehlo.broadcast_in_dim {m}, dims = [{}] : ({}) -> {}",
            join(&dims),
            ty(f, &red_shape),
            ty(f, &sh)
        ));
        let mut hit = self.compare("EQ", &x, &mb, f, &sh);
        if f.is_float() {
            let nan = self.compare("NE", &x, &x, f, &sh);
            hit = self.bin("or", &hit, &nan, DType::Bool, &sh);
        }
        let iota = self.iota(DType::I32, &sh, axis);
        let past = self.splat(DType::I32, &sh, sh[axis] as f64);
        let pick = self.select(&hit, &iota, &past, &sh, DType::I32, &sh);
        let first = self.reduce_op(ReduceOp::Min, &pick, DType::I32, &sh, axis);
        let mut out = sh.clone();
        out[axis] = 1;
        let r = self.reshape(&first, DType::I32, &red_shape, &out);
        self.bind(inst, r, None);
        Ok(())
    }
}
