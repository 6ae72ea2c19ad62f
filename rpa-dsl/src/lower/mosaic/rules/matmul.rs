//! Matmul.

use super::super::*;

impl<'k> Emitter<'k> {
    pub(crate) fn lower_matmul(
        &mut self,
        inst: &'k Inst,
        l: &str,
        res: &str,
        rty: &str,
        lhs: ValueId,
        rhs: ValueId,
        transpose_rhs: bool,
        acc: DType,
    ) -> Result<(), KernelError> {
        let shape = self.result_shape(inst);
        let zero = self.splat(acc, 0.0, &shape, l);
        let dims = if transpose_rhs {
            "#tpu.dot_dimension_numbers<[1], [1], [0], [0], [0, 0, 1, 0], [], []>"
        } else {
            "#tpu.dot_dimension_numbers<[1], [0], [0], [1], [0, 0, 1, 1], [], []>"
        };
        self.line(&format!(
            "{res} = tpu.matmul {}, {}, {zero} {{dimension_numbers = {dims}, transpose_lhs_hint = false}} : {}, {}, {rty} -> {rty} {l}",
            self.name(lhs),
            self.name(rhs),
            type_str(self.ty(lhs)),
            type_str(self.ty(rhs)),
        ));
        Ok(())
    }
}
