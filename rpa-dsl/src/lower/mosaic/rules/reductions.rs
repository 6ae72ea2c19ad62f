//! Reductions.

use super::super::*;

/// `vector.multi_reduction`'s kind for `op` on `dtype`, and its identity. Integers use the signed
/// max/min (libtpu has no unsigned ones; unsigned values are reduced with their sign bit flipped).
fn combining(op: ReduceOp, dtype: DType) -> (&'static str, f64) {
    let half = (1u64 << (dtype.bits() - 1)) as f64;
    let (smallest, largest) = if dtype.is_unsigned_int() { (half, half - 1.0) } else { dtype.finite_range() };
    match (op, dtype.is_float()) {
        (ReduceOp::Sum, _) => ("add", 0.0),
        (ReduceOp::Max, true) => ("maximumf", f64::NEG_INFINITY),
        (ReduceOp::Max, false) => ("maxsi", smallest),
        (ReduceOp::Min, true) => ("minimumf", f64::INFINITY),
        (ReduceOp::Min, false) => ("minsi", largest),
    }
}

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
        let xn = self.name(x);
        let t = self.reduce_keep(l, op, &xn, dtype, &shape, axis);
        self.line(&format!("{res} = vector.shape_cast {t} : {} to {rty} {l}", self.reduced_type(dtype, &shape, axis)));
        Ok(())
    }

    fn reduced_type(&self, dtype: DType, shape: &[usize], axis: usize) -> String {
        let mut reduced = shape.to_vec();
        reduced.remove(axis);
        vector_type(dtype, &reduced)
    }

    /// `x` reduced along `axis` (which is dropped).
    fn reduce_keep(&mut self, l: &str, op: ReduceOp, x: &str, dtype: DType, shape: &[usize], axis: usize) -> String {
        self.multi_reduce(l, op, x, dtype, shape, &[axis])
    }

    /// `x` reduced by `op` over `dims` (dropped: all of them give a scalar). Unsigned max/min run
    /// on the values with their sign bit flipped, an order-preserving map onto the signed ones.
    fn multi_reduce(
        &mut self,
        l: &str,
        op: ReduceOp,
        x: &str,
        dtype: DType,
        shape: &[usize],
        dims: &[usize],
    ) -> String {
        let reduced: Vec<usize> =
            shape.iter().enumerate().filter(|(d, _)| !dims.contains(d)).map(|(_, &n)| n).collect();
        let flip = dtype.is_unsigned_int() && op != ReduceOp::Sum;
        let x = if flip { self.flip_sign(l, x, dtype, shape) } else { x.to_string() };
        let (kind, init) = combining(op, dtype);
        let acc = self.splat(dtype, init, &reduced, l);
        let t = self.tmp();
        let rty = if reduced.is_empty() { elem(dtype).to_string() } else { vector_type(dtype, &reduced) };
        self.line(&format!(
            "{t} = vector.multi_reduction <{kind}>, {x}, {acc} [{}] : {} to {rty} {l}",
            join(dims),
            vector_type(dtype, shape),
        ));
        if flip {
            self.flip_sign(l, &t, dtype, &reduced)
        } else {
            t
        }
    }

    /// `x` with the sign bit of each element flipped.
    fn flip_sign(&mut self, l: &str, x: &str, dtype: DType, shape: &[usize]) -> String {
        let bit = self.splat(dtype, (1u64 << (dtype.bits() - 1)) as f64, shape, l);
        let (t, ty) = (self.tmp(), if shape.is_empty() { elem(dtype).to_string() } else { vector_type(dtype, shape) });
        self.line(&format!("{t} = arith.xori {x}, {bit} : {ty} {l}"));
        t
    }

    /// Every dimension at once, to a scalar. Narrow elements are widened to 32 bits first (libtpu
    /// makes 32-bit scalars only), which is interpret mode's arithmetic: f32 sums rounded once,
    /// integer sums wrapped once.
    pub(crate) fn lower_reduce_all(
        &mut self,
        inst: &'k Inst,
        l: &str,
        op: ReduceOp,
        x: ValueId,
    ) -> Result<(), KernelError> {
        let Type::Vector { dtype, shape } = self.ty(x) else { unreachable!("type rule") };
        let (dtype, shape) = (*dtype, shape.clone());
        let (wide, wdt) = self.widen_to_32(l, &self.name(x), dtype, &shape);
        let dims: Vec<usize> = (0..shape.len()).collect();
        let r = self.multi_reduce(l, op, &wide, wdt, &shape, &dims);
        let v = self.narrow_from_32(l, &r, wdt, dtype);
        self.bind(inst, v);
        Ok(())
    }

    /// `argmax`/`argmin` from ops whose semantics are interpret mode's by construction: the
    /// (NaN-propagating) extreme, the elements equal to it or NaN, and the smallest index among
    /// them. (`tpu.reduce_index` takes f32/bf16 only and does not document ties or NaN.)
    pub(crate) fn lower_arg_reduce(
        &mut self,
        l: &str,
        res: &str,
        op: ArgOp,
        x: ValueId,
        axis: usize,
    ) -> Result<(), KernelError> {
        let Type::Vector { dtype, shape } = self.ty(x) else { unreachable!("type rule") };
        let (dtype, shape) = (*dtype, shape.clone());
        let xn = self.name(x);
        let (xt, it, bt) =
            (vector_type(dtype, &shape), vector_type(DType::I32, &shape), vector_type(DType::Bool, &shape));
        let mut kept = shape.clone();
        kept[axis] = 1;
        let reduce = if op == ArgOp::Max { ReduceOp::Max } else { ReduceOp::Min };
        let m = self.reduce_keep(l, reduce, &xn, dtype, &shape, axis);
        let (mk, mb, hit) = (self.tmp(), self.tmp(), self.tmp());
        let reduced = self.reduced_type(dtype, &shape, axis);
        self.line(&format!("{mk} = vector.shape_cast {m} : {reduced} to {} {l}", vector_type(dtype, &kept)));
        self.line(&format!("{mb} = vector.broadcast {mk} : {} to {xt} {l}", vector_type(dtype, &kept)));
        if dtype.is_float() {
            let (eq, same, nan) = (self.tmp(), self.tmp(), self.tmp());
            self.line(&format!("{eq} = arith.cmpf oeq, {xn}, {mb} : {xt} {l}"));
            self.line(&format!("{same} = arith.cmpf oeq, {xn}, {xn} : {xt} {l}"));
            let t = self.splat(DType::Bool, 1.0, &shape, l);
            self.line(&format!("{nan} = arith.xori {same}, {t} : {bt} {l}"));
            self.line(&format!("{hit} = arith.ori {eq}, {nan} : {bt} {l}"));
        } else {
            self.line(&format!("{hit} = arith.cmpi eq, {xn}, {mb} : {xt} {l}"));
        }
        let (iota, pick) = (self.tmp(), self.tmp());
        self.line(&format!("{iota} = tpu.iota {{dimensions = array<i32: {axis}>}} : {it} {l}"));
        let past = self.splat(DType::I32, shape[axis] as f64, &shape, l);
        self.line(&format!("{pick} = arith.select {hit}, {iota}, {past} : {bt}, {it} {l}"));
        let first = self.reduce_keep(l, ReduceOp::Min, &pick, DType::I32, &shape, axis);
        let reduced = self.reduced_type(DType::I32, &shape, axis);
        self.line(&format!("{res} = vector.shape_cast {first} : {reduced} to {} {l}", vector_type(DType::I32, &kept)));
        Ok(())
    }
}
