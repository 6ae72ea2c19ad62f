//! `emit_pipeline`: an inner pipeline over blocks of HBM operands, written in the DSL itself (a
//! runtime loop of DMAs, waits and the body), like `pltpu.emit_pipeline`.

use super::control::{ForLoop, If};
use super::launch;
use super::refs::{copy, ds, Hbm, Ix, Ref, Sems, Vmem};
use super::values::{cmp, Scalar};

/// An operand of an inner pipeline (`emit_pipeline`'s BlockSpec): an HBM ref, the block it is cut
/// into, and the block index of each inner step (block indices, not element offsets).
pub struct PipelineSpec<'a> {
    pub hbm: Ref<Hbm>,
    pub block: Vec<usize>,
    pub index_map: Box<dyn Fn(&[Scalar]) -> Vec<Scalar> + 'a>,
}

impl<'a> PipelineSpec<'a> {
    pub fn new(hbm: Ref<Hbm>, block: &[usize], index_map: impl Fn(&[Scalar]) -> Vec<Scalar> + 'a) -> Self {
        PipelineSpec { hbm, block: block.to_vec(), index_map: Box::new(index_map) }
    }

    /// The HBM window of this operand's block at inner indices `idx`.
    #[track_caller]
    fn window(&self, idx: &[Scalar]) -> Ref<Hbm> {
        let blocks = (self.index_map)(idx);
        let mut ix: Vec<Ix> = Vec::with_capacity(blocks.len());
        for (&b, &n) in blocks.iter().zip(&self.block) {
            ix.push(ds(b * n, n));
        }
        self.hbm.view(&ix)
    }
}

/// The scratch of a pipeline: two VMEM slots per operand, a DMA semaphore per slot.
struct Slots {
    ins: Vec<Ref<Vmem>>,
    outs: Vec<Ref<Vmem>>,
    sems: Sems,
}

/// Runs `body(indices, input blocks, output blocks)` for every step of the inner `grid`
/// (row-major), with the input blocks copied from HBM into VMEM and the output blocks copied back,
/// double-buffered: the inputs of step `s + 1` are fetched while step `s` computes, and the
/// outputs of step `s` are written back while step `s + 1` computes (`pltpu.emit_pipeline`).
///
/// Declares its own scratch: two VMEM slots per operand (`{name}_in{i}`, `{name}_out{i}`) and a
/// DMA semaphore per slot (`{name}_sems`). Every step copies all of its blocks (no reuse of an
/// unchanged block) and writes every output block it visits: accumulate across steps in a scratch
/// buffer, not in an output block. Errors (a block outside its array, …) name the line of the
/// `emit_pipeline` call.
#[track_caller]
pub fn emit_pipeline(
    name: &str,
    grid: &[usize],
    inputs: &[PipelineSpec],
    outputs: &[PipelineSpec],
    mut body: impl FnMut(&[Scalar], &[Ref<Vmem>], &[Ref<Vmem>]),
) {
    let steps: usize = grid.iter().product();
    let slots = Slots {
        ins: scratch(name, "in", inputs),
        outs: scratch(name, "out", outputs),
        sems: launch::dma_sems(&format!("{name}_sems"), &[inputs.len() + outputs.len(), 2]),
    };
    if steps == 0 {
        return;
    }
    fetch(inputs, &slots, &unflatten(constant(0), grid), constant(0));
    let l = ForLoop::begin(0, steps);
    {
        let s = l.index();
        let (idx, slot) = (unflatten(s, grid), s % 2);
        let mut ahead = If::begin(cmp::lt(s + 1, steps));
        if ahead.then_branch() {
            fetch(inputs, &slots, &unflatten(s + 1, grid), 1 - slot);
        }
        ahead.else_branch();
        ahead.end();
        for (i, spec) in inputs.iter().enumerate() {
            copy(spec.window(&idx), slots.ins[i].at(slot), slots.sems.at(i).at(slot)).wait();
        }
        // This slot's previous output copy (two steps ago) must land before the body refills it.
        let mut reuse = If::begin(cmp::ge(s, 2));
        if reuse.then_branch() {
            wait_outputs(outputs, &slots, &idx, slot);
        }
        reuse.else_branch();
        reuse.end();
        let ins: Vec<Ref<Vmem>> = slots.ins.iter().map(|b| b.at(slot)).collect();
        let outs: Vec<Ref<Vmem>> = slots.outs.iter().map(|b| b.at(slot)).collect();
        body(&idx, &ins, &outs);
        for (i, spec) in outputs.iter().enumerate() {
            let sem = slots.sems.at(inputs.len() + i).at(slot);
            copy(slots.outs[i].at(slot), spec.window(&idx), sem).start();
        }
    }
    l.end();
    // The last (one or two) output copies.
    for step in steps.saturating_sub(2)..steps {
        wait_outputs(outputs, &slots, &unflatten(constant(step), grid), constant(step % 2));
    }
}

/// Two VMEM slots for the block of each operand in `specs`.
#[track_caller]
fn scratch(name: &str, kind: &str, specs: &[PipelineSpec]) -> Vec<Ref<Vmem>> {
    let mut out = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        let shape: Vec<usize> = std::iter::once(2).chain(s.block.iter().copied()).collect();
        out.push(launch::scratch_vmem(&format!("{name}_{kind}{i}"), s.hbm.dtype(), &shape));
    }
    out
}

/// Starts the copies of the input blocks at `idx` into `slot`.
#[track_caller]
fn fetch(inputs: &[PipelineSpec], slots: &Slots, idx: &[Scalar], slot: Scalar) {
    for (i, spec) in inputs.iter().enumerate() {
        copy(spec.window(idx), slots.ins[i].at(slot), slots.sems.at(i).at(slot)).start();
    }
}

/// Waits for the output copies out of `slot` (any block of the same size: waits count bytes).
#[track_caller]
fn wait_outputs(outputs: &[PipelineSpec], slots: &Slots, idx: &[Scalar], slot: Scalar) {
    let first = slots.ins.len();
    for (i, spec) in outputs.iter().enumerate() {
        copy(slots.outs[i].at(slot), spec.window(idx), slots.sems.at(first + i).at(slot)).wait();
    }
}

#[track_caller]
fn constant(v: usize) -> Scalar {
    Scalar::constant(crate::DType::I32, v as f64)
}

/// The row-major indices of flat step `s` of `grid`.
#[track_caller]
fn unflatten(s: Scalar, grid: &[usize]) -> Vec<Scalar> {
    let mut stride: usize = grid.iter().product();
    let mut out = Vec::with_capacity(grid.len());
    for &n in grid {
        stride /= n.max(1);
        out.push((s / stride) % n);
    }
    out
}
