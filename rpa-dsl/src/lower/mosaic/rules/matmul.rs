//! Matmul.

use super::super::*;

impl<'k> Emitter<'k> {
    /// `tpu.matmul` with the dimension numbers Pallas gives `lax.dot_general`: contracting and
    /// non-contracting dims of each side, the output's dims as (side, dim) pairs (batch first), and
    /// the batch dims.
    pub(crate) fn lower_matmul(
        &mut self,
        inst: &'k Inst,
        l: &str,
        res: &str,
        rty: &str,
        lhs: ValueId,
        rhs: ValueId,
        [transpose_lhs, transpose_rhs]: [bool; 2],
        acc: DType,
    ) -> Result<(), KernelError> {
        let shape = self.result_shape(inst);
        let zero = self.splat(acc, 0.0, &shape, l);
        let rank = shape.len();
        let [(lk, lm), (rk, rn)] = matmul_dims(rank, transpose_lhs, transpose_rhs);
        let (order, batch) = if rank == 3 { ("0, 0, ", "[0]") } else { ("", "[]") };
        let dims = format!(
            "#tpu.dot_dimension_numbers<[{lk}], [{rk}], [{lm}], [{rn}], [{order}0, {lm}, 1, {rn}], {batch}, {batch}>"
        );
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
