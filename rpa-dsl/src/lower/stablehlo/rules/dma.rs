//! DMA and semaphore rules.

use super::super::*;

impl<'k> Lowerer<'k> {
    pub(crate) fn lower_dma_start(&mut self, src: ValueId, dst: ValueId, sem: ValueId) -> R<()> {
        let (s, d, m) = (self.refval(src)?, self.refval(dst)?, self.semval(sem)?);
        let bytes = self.copy(&s, &d);
        self.note_copy(&m, &bytes);
        self.sem_add(&m, &bytes, 1);
        Ok(())
    }

    pub(crate) fn lower_dma_wait(&mut self, dst: ValueId, sem: ValueId) -> R<()> {
        let (d, m) = (self.refval(dst)?, self.semval(sem)?);
        let bytes = self.ref_bytes(&d);
        self.check_wait(&m, &bytes);
        self.sem_add(&m, &bytes, -1);
        Ok(())
    }
}
