//! Reduction rules.

use super::super::*;

impl<'k> Lowerer<'k> {
    pub(crate) fn lower_reduce(&mut self, inst: &'k Inst, op: ReduceOp, x: ValueId, axis: usize) -> R<()> {
        let (dt, sh, xn) = (self.value_dtype(x), self.value_shape(x), self.tensor(x));
        let (x, f) = self.upcast(&xn, dt, &sh);
        let (name, init) = match op {
            ReduceOp::Sum => ("add", 0.0),
            ReduceOp::Max if f.is_float() => ("maximum", f64::NEG_INFINITY),
            ReduceOp::Min if f.is_float() => ("minimum", f64::INFINITY),
            ReduceOp::Max => ("maximum", f.finite_range().0),
            ReduceOp::Min => ("minimum", f.finite_range().1),
        };
        let red = self.reduce(&x, f, &sh, axis, name, value_bits(f, init));
        let mut out = sh.clone();
        out[axis] = 1;
        let red_shape: Vec<usize> = sh.iter().enumerate().filter(|&(d, _)| d != axis).map(|(_, &n)| n).collect();
        let r = self.reshape(&red, f, &red_shape, &out);
        let r = self.convert(&r, f, dt, &out);
        self.bind(inst, r, None);
        Ok(())
    }
}
