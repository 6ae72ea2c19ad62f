//! Shape: broadcasts, reshapes, slices, concatenations, rolls, transposes, extracts.

use super::super::*;

impl<'k> Emitter<'k> {
    pub(crate) fn lower_broadcast(
        &mut self,
        inst: &'k Inst,
        l: &str,
        x: ValueId,
        shape: &[usize],
    ) -> Result<(), KernelError> {
        let n = self.broadcast_to(x, shape, l);
        self.bind(inst, n);
        Ok(())
    }

    pub(crate) fn lower_reshape(&mut self, l: &str, res: &str, rty: &str, x: ValueId) -> Result<(), KernelError> {
        let (xn, xt) = (self.name(x), type_str(self.ty(x)));
        self.line(&format!("{res} = vector.shape_cast {xn} : {xt} to {rty} {l}"));
        Ok(())
    }

    pub(crate) fn lower_slice(
        &mut self,
        l: &str,
        res: &str,
        rty: &str,
        x: ValueId,
        start: &[usize],
        shape: &[usize],
    ) -> Result<(), KernelError> {
        let (xn, xt) = (self.name(x), type_str(self.ty(x)));
        let ones = vec!["1"; shape.len()].join(", ");
        self.line(&format!(
            "{res} = vector.extract_strided_slice {xn} offsets = [{}], sizes = [{}], strides = [{ones}] : {xt} to {rty} {l}",
            join(start),
            join(shape)
        ));
        Ok(())
    }

    pub(crate) fn lower_concat(
        &mut self,
        l: &str,
        res: &str,
        rty: &str,
        xs: &[ValueId],
        axis: usize,
    ) -> Result<(), KernelError> {
        let names: Vec<String> = xs.iter().map(|x| self.name(*x)).collect();
        let types: Vec<String> = xs.iter().map(|x| type_str(self.ty(*x))).collect();
        self.line(&format!(
            "{res} = tpu.concatenate {} in {axis} : {} -> {rty} {l}",
            names.join(", "),
            types.join(", ")
        ));
        Ok(())
    }

    /// `pltpu.roll`: Mosaic's `tpu.dynamic_rotate` rotates as `jnp.roll` does (a static shift is a
    /// constant operand, as Pallas emits it).
    pub(crate) fn lower_roll(
        &mut self,
        l: &str,
        res: &str,
        rty: &str,
        x: ValueId,
        shift: ValueId,
        axis: usize,
    ) -> Result<(), KernelError> {
        let (xn, sn) = (self.name(x), self.name(shift));
        self.line(&format!("{res} = tpu.dynamic_rotate {xn} by {sn} dim {axis} : {rty}, i32 -> {rty} {l}"));
        Ok(())
    }

    pub(crate) fn lower_transpose(
        &mut self,
        l: &str,
        res: &str,
        rty: &str,
        x: ValueId,
        perm: &[usize],
    ) -> Result<(), KernelError> {
        let (xn, xt) = (self.name(x), type_str(self.ty(x)));
        self.line(&format!("{res} = tpu.transpose {xn}, [{}] : {xt} -> {rty} {l}", join(perm)));
        Ok(())
    }

    pub(crate) fn lower_extract(
        &mut self,
        inst: &'k Inst,
        l: &str,
        x: ValueId,
        index: &[usize],
    ) -> Result<(), KernelError> {
        let Type::Vector { dtype, shape } = self.ty(x) else { unreachable!("type rule") };
        let (dtype, shape) = (*dtype, shape.clone());
        // libtpu extracts 32-bit scalars only: narrower elements are widened first (exactly).
        let wide = self.widen_to_32(l, &self.name(x), dtype, &shape);
        let (wdt, e) = (wide.1, self.tmp());
        self.line(&format!(
            "{e} = vector.extract {}[{}] : {} from {} {l}",
            wide.0,
            join(index),
            elem(wdt),
            vector_type(wdt, &shape)
        ));
        let v = self.narrow_from_32(l, &e, wdt, dtype);
        self.bind(inst, v);
        Ok(())
    }
}
