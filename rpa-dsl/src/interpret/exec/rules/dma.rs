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
}
