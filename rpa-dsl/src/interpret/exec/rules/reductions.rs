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

    /// Every element, in row-major order, to one scalar.
    pub(crate) fn exec_reduce_all(&mut self, inst: &'k Inst, op: ReduceOp, x: ValueId) -> R<()> {
        let dt = self.dtype(x);
        let xv = self.vv(x);
        let dims = (1, xv.data.len(), 1);
        let v = match &xv.data {
            Data::F(v) => {
                let r = match op {
                    ReduceOp::Sum => reduce_axis(v, dims, 0.0, |a, e| a + e),
                    ReduceOp::Max => reduce_axis(v, dims, f32::NEG_INFINITY, |a, e| binary_f(BinaryOp::Max, a, e)),
                    ReduceOp::Min => reduce_axis(v, dims, f32::INFINITY, |a, e| binary_f(BinaryOp::Min, a, e)),
                };
                Val::F(round_f(dt, r[0]))
            }
            Data::I(v) if v.is_empty() => Val::I(0),
            Data::I(v) => {
                let r = match op {
                    ReduceOp::Sum => reduce_axis(v, dims, 0, i64::wrapping_add),
                    ReduceOp::Max => reduce_axis(v, dims, i64::MIN, i64::max),
                    ReduceOp::Min => reduce_axis(v, dims, i64::MAX, i64::min),
                };
                Val::I(dt.wrap(r[0]))
            }
        };
        self.tick(xv.data.len());
        self.set(inst, v);
        Ok(())
    }

    /// The first index of the extreme along `axis` (the first NaN, if any, as `jnp.argmax`).
    pub(crate) fn exec_arg_reduce(&mut self, inst: &'k Inst, op: ArgOp, x: ValueId, axis: usize) -> R<()> {
        let xv = self.vv(x);
        let sh = &xv.shape;
        let (outer, n, inner) =
            (sh[..axis].iter().product::<usize>(), sh[axis], sh[axis + 1..].iter().product::<usize>());
        fn first_extreme<T: Copy + PartialOrd>(v: &[T], op: ArgOp, outer: usize, n: usize, inner: usize) -> Vec<i64> {
            let mut out = Vec::with_capacity(outer * inner);
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| v[(o * n + j) * inner + i];
                    let mut best = 0;
                    for j in 0..n {
                        let (e, b) = (at(j), at(best));
                        #[allow(clippy::eq_op)] // `e != e`: NaN
                        let (e_nan, b_nan) = (e != e, b != b);
                        if b_nan {
                            break;
                        }
                        let better = match op {
                            ArgOp::Max => e > b,
                            ArgOp::Min => e < b,
                        };
                        if e_nan || better {
                            best = j;
                        }
                    }
                    out.push(best as i64);
                }
            }
            out
        }
        let data = match &xv.data {
            Data::F(v) => first_extreme(v, op, outer, n, inner),
            Data::I(v) => first_extreme(v, op, outer, n, inner),
        };
        self.tick(xv.data.len());
        let mut shape = sh.clone();
        shape[axis] = 1;
        self.set(inst, Val::V(Rc::new(VecVal { shape, data: Data::I(data) })));
        Ok(())
    }
}
