//! Shape rules: broadcasts, reshapes, slices, concatenations.

use super::super::*;

impl<'k> Lowerer<'k> {
    pub(crate) fn lower_broadcast(&mut self, inst: &'k Inst, x: ValueId, shape: &[usize]) -> R<()> {
        let r = self.operand(x, shape);
        self.bind(inst, r, None);
        Ok(())
    }

    pub(crate) fn lower_reshape(&mut self, inst: &'k Inst, x: ValueId, shape: &[usize]) -> R<()> {
        let (dt, sh, xn) = (self.value_dtype(x), self.value_shape(x), self.tensor(x));
        let r = self.reshape(&xn, dt, &sh, shape);
        self.bind(inst, r, None);
        Ok(())
    }

    pub(crate) fn lower_slice(&mut self, inst: &'k Inst, x: ValueId, start: &[usize], shape: &[usize]) -> R<()> {
        let (dt, sh, xn) = (self.value_dtype(x), self.value_shape(x), self.tensor(x));
        let limit: Vec<usize> = start.iter().zip(shape).map(|(s, n)| s + n).collect();
        let r = self.emit(format!(
            "\"stablehlo.slice\"({xn}) {{start_indices = array<i64: {}>, limit_indices = array<i64: {}>, \
                 strides = array<i64: {}>}} : ({}) -> {}",
            join(start),
            join(&limit),
            join(&vec![1; sh.len()]),
            ty(dt, &sh),
            ty(dt, shape)
        ));
        self.bind(inst, r, None);
        Ok(())
    }

    pub(crate) fn lower_concat(&mut self, inst: &'k Inst, xs: &[ValueId], axis: usize) -> R<()> {
        let dt = self.value_dtype(xs[0]);
        let names: Vec<String> = xs.iter().map(|x| self.tensor(*x)).collect();
        let types: Vec<String> = xs.iter().map(|x| ty(dt, &self.value_shape(*x))).collect();
        let sh = self.result_shape(inst);
        let r = if xs.len() == 1 {
            names[0].clone()
        } else {
            self.emit(format!(
                "stablehlo.concatenate {}, dim = {axis} : ({}) -> {}",
                names.join(", "),
                types.join(", "),
                ty(dt, &sh)
            ))
        };
        self.bind(inst, r, None);
        Ok(())
    }
}
