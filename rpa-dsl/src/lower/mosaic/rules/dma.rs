//! DMAs and semaphores.

use super::super::*;

impl<'k> Emitter<'k> {
    pub(crate) fn lower_dma_start(
        &mut self,
        l: &str,
        src: ValueId,
        dst: ValueId,
        sem: ValueId,
    ) -> Result<(), KernelError> {
        let (s, d, m) = (self.typed(src), self.typed(dst), self.typed(sem));
        self.line(&format!("tpu.enqueue_dma source({s}) target({d}) target_semaphore({m}) {l}"));
        Ok(())
    }

    pub(crate) fn lower_dma_wait(
        &mut self,
        l: &str,
        src: ValueId,
        dst: ValueId,
        sem: ValueId,
    ) -> Result<(), KernelError> {
        let (s, d, m) = (self.typed(src), self.typed(dst), self.typed(sem));
        self.line(&format!("tpu.wait_dma2 semaphore({m}) src({s}) dst({d}) {l}"));
        Ok(())
    }

    pub(crate) fn lower_sem_signal(&mut self, l: &str, sem: ValueId, amount: ValueId) -> Result<(), KernelError> {
        let (s, n, t) = (self.name(sem), self.name(amount), type_str(self.ty(sem)));
        self.line(&format!("tpu.sem_signal {s}, {n} : {t} {l}"));
        Ok(())
    }

    pub(crate) fn lower_sem_wait(&mut self, l: &str, sem: ValueId, amount: ValueId) -> Result<(), KernelError> {
        let (s, n, t) = (self.name(sem), self.name(amount), type_str(self.ty(sem)));
        self.line(&format!("tpu.sem_wait {s}, {n} : {t} {l}"));
        Ok(())
    }
}
