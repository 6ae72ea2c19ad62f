//! The matmul rule.

use super::super::*;

impl<'k> Lowerer<'k> {
    pub(crate) fn lower_matmul(
        &mut self,
        inst: &'k Inst,
        lhs: ValueId,
        rhs: ValueId,
        [transpose_lhs, transpose_rhs]: [bool; 2],
        acc: DType,
    ) -> R<()> {
        let (ld, ls, ln) = (self.value_dtype(lhs), self.value_shape(lhs), self.tensor(lhs));
        let (rd, rs, rn) = (self.value_dtype(rhs), self.value_shape(rhs), self.tensor(rhs));
        let cdt = if acc.is_float() { DType::F32 } else { acc };
        let a = self.convert(&ln, ld, cdt, &ls);
        let b = self.convert(&rn, rd, cdt, &rs);
        let out = self.result_shape(inst);
        let [(lk, _), (rk, _)] = matmul_dims(ls.len(), transpose_lhs, transpose_rhs);
        let batch = if ls.len() == 3 { "lhs_batching_dimensions = [0], rhs_batching_dimensions = [0], " } else { "" };
        let r = self.emit(format!(
            "\"stablehlo.dot_general\"({a}, {b}) {{dot_dimension_numbers = #stablehlo.dot<{batch}lhs_contracting_dimensions = \
             [{lk}], rhs_contracting_dimensions = [{rk}]>, precision_config = [#stablehlo<precision HIGHEST>, \
             #stablehlo<precision HIGHEST>]}} : ({}, {}) -> {}",
            ty(cdt, &ls),
            ty(cdt, &rs),
            ty(cdt, &out)
        ));
        let r = self.convert(&r, cdt, acc, &out);
        self.bind(inst, r, None);
        Ok(())
    }
}
