//! The grid schedule of BlockSpec'd operands, written once for interpret mode and the StableHLO
//! lowering. At each step every block's index map is evaluated; an input block whose index
//! changed is copied in, and an output block whose index changed starts uninitialised (it must not
//! have been visited before); after the body, an output block is written back when its index
//! changes at the next step, or at the last step. The driver ([`GridDriver`]) does the work, with
//! concrete indices and conditions in interpret mode and symbolic ones while lowering.

/// A condition known now, or only at run time.
#[derive(Clone, Debug)]
pub enum Cond<C> {
    Static(bool),
    Dynamic(C),
}

/// What the schedule needs of a backend.
pub trait GridDriver {
    /// An i32 quantity.
    type Int: Clone;
    /// A runtime condition.
    type Bool: Clone;
    type Error;

    /// How many BlockSpec'd operands, and whether block `b` is an output's.
    fn blocks(&self) -> usize;
    fn is_output(&self, b: usize) -> bool;
    /// The block index block `b` holds (before the first step: one no index map gives).
    fn current(&self, b: usize) -> Vec<Self::Int>;
    fn set_current(&mut self, b: usize, idx: Vec<Self::Int>);
    /// Makes `g` the grid indices (what `program_id` reads).
    fn set_grid_indices(&mut self, g: &[Self::Int]);
    /// Block `b`'s index map at grid indices `g`.
    fn block_index(&mut self, b: usize, g: &[Self::Int]) -> Result<Vec<Self::Int>, Self::Error>;
    /// Checks the index block `b` takes at this step.
    fn check_block_index(&mut self, _b: usize, _idx: &[Self::Int]) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Whether two block indices differ.
    fn differ(&mut self, a: &[Self::Int], b: &[Self::Int]) -> Cond<Self::Bool>;
    fn or(&mut self, a: &Self::Bool, b: &Self::Bool) -> Self::Bool;
    /// The grid indices of flat step `s` (row-major).
    fn unflatten(&mut self, s: &Self::Int) -> Vec<Self::Int>;
    /// After flat step `s` of `steps`: whether it was the last, and the next step (wrapped to 0).
    fn next_step(&mut self, s: &Self::Int, steps: usize) -> (Cond<Self::Bool>, Self::Int);
    /// Output block `b` moves to block `idx` where `when` holds: it starts uninitialised.
    fn start_output(&mut self, b: usize, idx: &[Self::Int], when: &Cond<Self::Bool>) -> Result<(), Self::Error>;
    /// Copies input block `idx` of `b` in (copy in) or output block `idx` out, where `when` holds.
    fn copy_block(
        &mut self,
        b: usize,
        idx: &[Self::Int],
        copy_in: bool,
        when: &Cond<Self::Bool>,
    ) -> Result<(), Self::Error>;
    /// The kernel body.
    fn body(&mut self) -> Result<(), Self::Error>;
}

/// One grid step, flat index `s` of `steps`.
pub fn step<D: GridDriver>(d: &mut D, s: &D::Int, steps: usize) -> Result<(), D::Error> {
    let g = d.unflatten(s);
    d.set_grid_indices(&g);
    for b in 0..d.blocks() {
        let idx = d.block_index(b, &g)?;
        d.check_block_index(b, &idx)?;
        let changed = d.differ(&idx, &d.current(b));
        if !matches!(changed, Cond::Static(false)) {
            if d.is_output(b) {
                d.start_output(b, &idx, &changed)?;
            } else {
                d.copy_block(b, &idx, true, &changed)?;
            }
        }
        d.set_current(b, idx);
    }
    d.body()?;
    let outputs: Vec<usize> = (0..d.blocks()).filter(|&b| d.is_output(b)).collect();
    if outputs.is_empty() {
        return Ok(());
    }
    // Write back the output blocks whose index changes at the next step (or at the end).
    let (is_last, next) = d.next_step(s, steps);
    let g_next = d.unflatten(&next);
    for b in outputs {
        let flush = match &is_last {
            Cond::Static(true) => Cond::Static(true),
            _ => {
                let (next_idx, cur) = (d.block_index(b, &g_next)?, d.current(b));
                match (&is_last, d.differ(&next_idx, &cur)) {
                    (_, Cond::Static(true)) => Cond::Static(true),
                    (Cond::Static(false), c) => c,
                    (Cond::Dynamic(l), Cond::Static(false)) => Cond::Dynamic(l.clone()),
                    (Cond::Dynamic(l), Cond::Dynamic(c)) => Cond::Dynamic(d.or(l, &c)),
                    (Cond::Static(true), _) => unreachable!("handled above"),
                }
            }
        };
        if !matches!(flush, Cond::Static(false)) {
            let cur = d.current(b);
            d.copy_block(b, &cur, false, &flush)?;
        }
    }
    Ok(())
}
