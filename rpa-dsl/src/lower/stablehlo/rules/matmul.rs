//! The matmul rule.

use super::super::*;

impl<'k> Lowerer<'k> {
    pub(crate) fn lower_matmul(
        &mut self,
        inst: &'k Inst,
        lhs: ValueId,
        rhs: ValueId,
        transpose_rhs: bool,
        acc: DType,
    ) -> R<()> {
        let (ld, ls, ln) = (self.value_dtype(lhs), self.value_shape(lhs), self.tensor(lhs));
        let (rd, rs, rn) = (self.value_dtype(rhs), self.value_shape(rhs), self.tensor(rhs));
        let cdt = if acc.is_float() { DType::F32 } else { acc };
        let a = self.convert(&ln, ld, cdt, &ls);
        let b = self.convert(&rn, rd, cdt, &rs);
        let n = if transpose_rhs { rs[0] } else { rs[1] };
        let out = vec![ls[0], n];
        let r = self.emit(format!(
                "\"stablehlo.dot_general\"({a}, {b}) {{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [1], \
                 rhs_contracting_dimensions = [{}]>, precision_config = [#stablehlo<precision HIGHEST>, \
                 #stablehlo<precision HIGHEST>]}} : ({}, {}) -> {}",
                if transpose_rhs { 1 } else { 0 },
                ty(cdt, &ls),
                ty(cdt, &rs),
                ty(cdt, &out)
            ));
        let r = self.convert(&r, cdt, acc, &out);
        self.bind(inst, r, None);
        Ok(())
    }
}
