//! Reductions.

use super::super::*;

impl<'k> Machine<'k> {
    pub(crate) fn exec_reduce(&mut self, inst: &'k Inst, op: ReduceOp, x: ValueId, axis: usize) -> R<()> {
        let dt = self.dtype(x);
        let xv = self.vv(x);
        let sh = &xv.shape;
        let outer: usize = sh[..axis].iter().product();
        let n = sh[axis];
        let inner: usize = sh[axis + 1..].iter().product();
        let dims = (outer, n, inner);
        let out = match &xv.data {
            Data::F(v) => {
                let mut out = match op {
                    ReduceOp::Sum => reduce_axis(v, dims, 0.0, |a, e| a + e),
                    ReduceOp::Max => reduce_axis(v, dims, f32::NEG_INFINITY, |a, e| binary_f(BinaryOp::Max, a, e)),
                    ReduceOp::Min => reduce_axis(v, dims, f32::INFINITY, |a, e| binary_f(BinaryOp::Min, a, e)),
                };
                round_vec(dt, &mut out);
                Data::F(out)
            }
            // (Starting from the identity is starting from the first element.)
            Data::I(_) if n == 0 => Data::I(vec![0; outer * inner]),
            Data::I(v) => {
                let mut out = match op {
                    ReduceOp::Sum => reduce_axis(v, dims, 0, i64::wrapping_add),
                    ReduceOp::Max => reduce_axis(v, dims, i64::MIN, i64::max),
                    ReduceOp::Min => reduce_axis(v, dims, i64::MAX, i64::min),
                };
                wrap_vec(dt, &mut out);
                Data::I(out)
            }
        };
        self.tick(outer * n * inner);
        let v = self.vector_or_scalar(self.result_shape(inst), out);
        self.set(inst, v);
        Ok(())
    }
}
