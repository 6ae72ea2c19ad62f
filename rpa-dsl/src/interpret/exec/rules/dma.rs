//! DMAs and semaphores.

use super::super::*;

impl<'k> Machine<'k> {
    pub(crate) fn exec_dma_start(&mut self, loc: Loc, src: ValueId, dst: ValueId, sem: ValueId) -> R<()> {
        self.dma_start(src, dst, sem, loc)?;
        Ok(())
    }

    pub(crate) fn exec_dma_wait(&mut self, loc: Loc, dst: ValueId, sem: ValueId) -> R<()> {
        self.dma_wait(dst, sem, loc)?;
        Ok(())
    }

    fn sem_amount(&self, loc: Loc, op: &str, amount: ValueId) -> R<u64> {
        let n = self.int(amount);
        u64::try_from(n).map_err(|_| self.err(loc, op, negative_semaphore_amount(n)))
    }

    pub(crate) fn exec_sem_signal(&mut self, loc: Loc, sem: ValueId, amount: ValueId) -> R<()> {
        let s = self.single_sem(sem, loc, "semaphore_signal")?;
        let n = self.sem_amount(loc, "semaphore_signal", amount)?;
        self.sem_count[s] += n;
        self.sem_signalled[s] = Some(loc);
        self.tick(0);
        Ok(())
    }

    pub(crate) fn exec_sem_wait(&mut self, loc: Loc, sem: ValueId, amount: ValueId) -> R<()> {
        let s = self.single_sem(sem, loc, "semaphore_wait")?;
        let n = self.sem_amount(loc, "semaphore_wait", amount)?;
        if self.sem_count[s] < n {
            let msg = semaphore_wait_short(n as i64, self.sem_count[s] as i64, &self.sem_names[s]);
            return Err(self.err(loc, "semaphore_wait", msg));
        }
        self.sem_count[s] -= n;
        self.tick(0);
        Ok(())
    }
}
