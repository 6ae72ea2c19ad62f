//! Reductions.

use super::super::*;

impl<'k> Emitter<'k> {
    pub(crate) fn lower_reduce(
        &mut self,
        l: &str,
        res: &str,
        rty: &str,
        op: ReduceOp,
        x: ValueId,
        axis: usize,
    ) -> Result<(), KernelError> {
        let Type::Vector { dtype, shape } = self.ty(x) else { unreachable!("type rule") };
        let (dtype, shape) = (*dtype, shape.clone());
        let mut reduced = shape.clone();
        reduced.remove(axis);
        let (kind, init) = match (op, dtype.is_float()) {
            (ReduceOp::Sum, true) => ("add", 0.0),
            (ReduceOp::Sum, false) => ("add", 0.0),
            (ReduceOp::Max, true) => ("maximumf", f64::NEG_INFINITY),
            (ReduceOp::Max, false) => (if dtype.is_unsigned_int() { "maxui" } else { "maxsi" }, dtype.finite_range().0),
            (ReduceOp::Min, true) => ("minimumf", f64::INFINITY),
            (ReduceOp::Min, false) => (if dtype.is_unsigned_int() { "minui" } else { "minsi" }, dtype.finite_range().1),
        };
        let acc = self.splat(dtype, init, &reduced, l);
        let t = self.tmp();
        self.line(&format!(
            "{t} = vector.multi_reduction <{kind}>, {}, {acc} [{axis}] : {} to {} {l}",
            self.name(x),
            vector_type(dtype, &shape),
            vector_type(dtype, &reduced)
        ));
        self.line(&format!("{res} = vector.shape_cast {t} : {} to {rty} {l}", vector_type(dtype, &reduced)));
        Ok(())
    }
}
