//! Shape rules: broadcasts, reshapes, slices, concatenations, rolls, transposes, extracts.

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

    /// `x` twice along `axis`, then the window of `n` elements that starts `shift mod n` before
    /// the second copy: element `i` is `x[(i - shift) mod n]`.
    pub(crate) fn lower_roll(&mut self, inst: &'k Inst, x: ValueId, shift: ValueId, axis: usize) -> R<()> {
        let (dt, sh, xn) = (self.value_dtype(x), self.value_shape(x), self.tensor(x));
        let n = sh[axis] as i64;
        let shift = self.int_of(shift);
        self.check_shift(&shift);
        let mut twice = sh.clone();
        twice[axis] *= 2;
        let t = ty(dt, &sh);
        let xx =
            self.emit(format!("stablehlo.concatenate {xn}, {xn}, dim = {axis} : ({t}, {t}) -> {}", ty(dt, &twice)));
        let start = match &shift.dynamic {
            None => self.iconst(n - shift.constant.rem_euclid(n)),
            Some(_) => {
                let (s, nn) = (self.int_name(&shift), self.iconst(n));
                let r = self.bin("remainder", &s, &nn, DType::I32, &[]);
                self.bin("subtract", &nn, &r, DType::I32, &[])
            }
        };
        let zero = self.iconst(0);
        let starts: Vec<String> = (0..sh.len()).map(|d| if d == axis { start.clone() } else { zero.clone() }).collect();
        let r = self.dyn_slice(&xx, dt, &twice, &starts, &sh);
        self.bind(inst, r, None);
        Ok(())
    }

    pub(crate) fn lower_transpose(&mut self, inst: &'k Inst, x: ValueId, perm: &[usize]) -> R<()> {
        let (dt, sh, xn) = (self.value_dtype(x), self.value_shape(x), self.tensor(x));
        let out: Vec<usize> = perm.iter().map(|&d| sh[d]).collect();
        let r = self.emit(format!(
            "stablehlo.transpose {xn}, dims = [{}] : ({}) -> {}",
            join(perm),
            ty(dt, &sh),
            ty(dt, &out)
        ));
        self.bind(inst, r, None);
        Ok(())
    }

    pub(crate) fn lower_extract(&mut self, inst: &'k Inst, x: ValueId, index: &[usize]) -> R<()> {
        let (dt, sh, xn) = (self.value_dtype(x), self.value_shape(x), self.tensor(x));
        let one = vec![1; sh.len()];
        let e = self.static_slice(&xn, dt, &sh, index, &one);
        let r = self.reshape(&e, dt, &one, &[]);
        self.bind(inst, r, None);
        Ok(())
    }
}
