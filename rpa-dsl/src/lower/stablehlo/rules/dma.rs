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

    pub(crate) fn lower_sem_signal(&mut self, sem: ValueId, amount: ValueId) -> R<()> {
        let (m, n) = (self.semval(sem)?, self.int_of(amount));
        self.check_sem_amount(&n);
        self.note_signal(&m, &n);
        self.sem_add(&m, &n, 1);
        Ok(())
    }

    pub(crate) fn lower_sem_wait(&mut self, sem: ValueId, amount: ValueId) -> R<()> {
        let (m, n) = (self.semval(sem)?, self.int_of(amount));
        self.check_sem_amount(&n);
        self.check_sem_wait(&m, &n);
        self.sem_add(&m, &n, -1);
        Ok(())
    }
}
