//! Interpret mode: the reference semantics of the IR, strict like Pallas's TPU interpret mode.
//!
//! - A kernel runs only once it passes the hardware rules `tpu::compile_for` checks, for the TPU
//!   generations of [`InterpretOptions::targets`] (all of them by default).
//! - HBM, VMEM and SMEM are separate buffers; uninitialised memory holds NaN (integers: their
//!   minimum), and a load that reads *only* uninitialised elements, or a scalar read of one, is an
//!   error.
//! - A DMA reads its source when it starts and its data lands in the destination when it is waited
//!   on. Waiting for more bytes than were signalled, or ending the kernel with a semaphore that
//!   still holds bytes (a copy never waited), is an error. Touching memory that a pending DMA reads
//!   or writes is reported as a race.
//! - Every out-of-bounds view, load, store or DMA is an error naming the op's source line.
//! - The grid runs row-major; BlockSpec windows are copied in when their block index changes and
//!   out when the next step's differs; revisiting an output block is an error; scratch persists.
//! - Bytes moved are counted per memory-space pair, and an event trace can be recorded.

mod exec;
mod matmul;
mod memory;
#[cfg(test)]
mod tests;
pub mod trace;
mod value;

use crate::array::Array;
use crate::error::KernelError;
use crate::ir::{verify::verify_targets, Kernel, Loc, MemSpace, Role, Type};
use crate::target::TargetCheck;
use memory::Buffer;
use std::collections::BTreeMap;
use std::rc::Rc;
use value::{SemView, Val};

/// Knobs of interpret mode. The defaults are the strict reference semantics.
#[derive(Clone, Debug)]
pub struct InterpretOptions {
    /// Record an event trace (DMA starts, waits and spans; compute spans).
    pub trace: bool,
    /// A vector load of only uninitialised elements (or a scalar read of one) is an error.
    pub uninit_reads_are_errors: bool,
    /// Accessing memory a pending DMA reads or writes is an error.
    pub detect_dma_races: bool,
    /// The TPU generations whose hardware rules the kernel must pass before it runs (default: all).
    pub targets: TargetCheck,
}

impl Default for InterpretOptions {
    fn default() -> Self {
        InterpretOptions {
            trace: false,
            uninit_reads_are_errors: true,
            detect_dma_races: true,
            targets: TargetCheck::All,
        }
    }
}

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Bytes moved by DMAs and BlockSpec copies, per (source space, destination space).
    pub bytes: BTreeMap<(MemSpace, MemSpace), u64>,
    pub dmas: u64,
    pub grid_steps: u64,
    /// Instructions executed.
    pub insts: u64,
}

impl Stats {
    /// Bytes read from or written to HBM.
    pub fn hbm_bytes(&self) -> u64 {
        self.bytes.iter().filter(|((s, d), _)| *s == MemSpace::Hbm || *d == MemSpace::Hbm).map(|(_, b)| b).sum()
    }
    pub fn moved(&self, from: MemSpace, to: MemSpace) -> u64 {
        self.bytes.get(&(from, to)).copied().unwrap_or(0)
    }
}

/// What an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A DMA, from its start to the wait at which its data landed.
    Dma,
    /// A matmul or other vector compute.
    Compute,
    /// A BlockSpec copy at a grid-step boundary.
    BlockCopy,
}

/// One entry of the event trace. Times are a logical clock (instructions, weighted by the work of
/// vector ops), so a trace shows ordering and overlap, not wall time.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    /// The stream: the semaphore (for DMAs), or "compute".
    pub track: String,
    pub name: String,
    pub loc: Loc,
    pub start: u64,
    pub end: u64,
    pub bytes: u64,
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The outputs, in parameter order.
    pub outputs: Vec<Array>,
    pub stats: Stats,
    pub events: Vec<Event>,
    /// Lines printed by `debug_print`.
    pub prints: Vec<String>,
}

/// Runs `kernel` on `inputs` (scalar-prefetch operands, then inputs, in parameter order), once it
/// passes the verifier for `opts.targets`.
pub fn run(kernel: &Kernel, inputs: &[Array], opts: &InterpretOptions) -> Result<Outcome, KernelError> {
    run_owned(kernel, inputs.to_vec(), opts)
}

/// [`run`] on inputs it may take apart: their elements become the kernel's HBM buffers without a
/// copy (an input aliased by an output comes back as that output).
pub fn run_owned(kernel: &Kernel, inputs: Vec<Array>, opts: &InterpretOptions) -> Result<Outcome, KernelError> {
    verify_targets(kernel, opts.targets)?;
    let mut m = exec::Machine::new(kernel, opts);
    m.setup(inputs)?;
    m.run_grid()?;
    m.finish()
}

impl Kernel {
    /// Runs the kernel in interpret mode with the default (strict) options: it must pass the
    /// verifier for every TPU generation first.
    pub fn interpret(&self, inputs: &[Array]) -> Result<Vec<Array>, KernelError> {
        run(self, inputs, &InterpretOptions::default()).map(|o| o.outputs)
    }
}

/// Per-operand state of a BlockSpec'd parameter during the grid.
pub(crate) struct BlockState {
    pub param: usize,
    pub hbm: usize,
    pub vmem: usize,
    /// The block index the block buffer holds (-1s before the first step).
    pub current: Vec<i64>,
    pub visited: Vec<Vec<i64>>,
}

pub(crate) fn param_buffers(
    kernel: &Kernel,
    inputs: Vec<Array>,
) -> Result<(Vec<Buffer>, Vec<(usize, Val)>, Vec<BlockState>, Vec<usize>, usize), KernelError> {
    let err = |p: &crate::ir::Param, msg: String| KernelError::single(&kernel.name, Some(&p.name), p.loc, msg);
    let expected: Vec<_> = kernel.inputs().collect();
    if inputs.len() != expected.len() {
        return Err(KernelError::single(
            &kernel.name,
            None,
            kernel.loc,
            format!(
                "expects {} input arrays ({}), got {}",
                expected.len(),
                expected.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "),
                inputs.len()
            ),
        ));
    }
    let mut bufs: Vec<Buffer> = Vec::new();
    let mut bindings = Vec::new();
    let mut blocks = Vec::new();
    let mut outputs = Vec::new();
    let mut param_hbm: Vec<Option<usize>> = Vec::new();
    let mut inputs = inputs.into_iter();
    let mut sems = 0usize;
    for (pi, p) in kernel.params.iter().enumerate() {
        let mut hbm_id = None;
        let val = match p.role {
            Role::Prefetch | Role::Input => {
                let a = inputs.next().expect("input count checked");
                let arr = p.array.as_ref().expect("operand type");
                let want = arr.static_shape().unwrap_or_default();
                if a.dtype() != arr.dtype || a.shape() != want.as_slice() {
                    return Err(err(
                        p,
                        format!("input `{}` expects {}{:?}, got {}{:?}", p.name, arr.dtype, want, a.dtype(), a.shape()),
                    ));
                }
                let space = if p.role == Role::Prefetch { MemSpace::Smem } else { MemSpace::Hbm };
                let (dtype, shape) = (a.dtype(), a.shape().to_vec());
                bufs.push(Buffer::from_bits(&p.name, space, dtype, &shape, a.into_bits()));
                hbm_id = Some(bufs.len() - 1);
                bind_operand(kernel, pi, bufs.len() - 1, &mut bufs, &mut blocks)
            }
            Role::Output => {
                let arr = p.array.as_ref().expect("operand type");
                let shape = arr.static_shape().unwrap_or_default();
                let id = match p.alias_of.and_then(|i| param_hbm.get(i).copied().flatten()) {
                    Some(id) => id,
                    None => {
                        bufs.push(Buffer::poisoned(&p.name, MemSpace::Hbm, arr.dtype, &shape));
                        bufs.len() - 1
                    }
                };
                hbm_id = Some(id);
                outputs.push(id);
                bind_operand(kernel, pi, id, &mut bufs, &mut blocks)
            }
            Role::Scratch => match kernel.ty(p.value) {
                Type::Ref(r) => {
                    bufs.push(Buffer::poisoned(&p.name, r.space, r.dtype, &r.max_shape()));
                    let id = bufs.len() - 1;
                    Val::R(Rc::new(bufs[id].full_view(id)))
                }
                Type::Sem { shape, .. } => {
                    let v = Val::S(Rc::new(SemView { base: sems, shape: shape.clone(), name: p.name.as_str().into() }));
                    sems += shape.iter().product::<usize>().max(1);
                    v
                }
                t => return Err(err(p, format!("scratch of unsupported type {t}"))),
            },
        };
        param_hbm.push(hbm_id);
        bindings.push((p.value.0 as usize, val));
    }
    Ok((bufs, bindings, blocks, outputs, sems))
}

fn bind_operand(kernel: &Kernel, pi: usize, hbm: usize, bufs: &mut Vec<Buffer>, blocks: &mut Vec<BlockState>) -> Val {
    let p = &kernel.params[pi];
    match &p.block {
        None => Val::R(Rc::new(bufs[hbm].full_view(hbm))),
        Some(bs) => {
            let dtype = bufs[hbm].dtype;
            bufs.push(Buffer::poisoned(&format!("{} (block)", p.name), bs.space, dtype, &bs.block_shape));
            let vmem = bufs.len() - 1;
            let current = vec![-1; bs.block_shape.len()];
            blocks.push(BlockState { param: pi, hbm, vmem, current, visited: Vec::new() });
            Val::R(Rc::new(bufs[vmem].full_view(vmem)))
        }
    }
}
