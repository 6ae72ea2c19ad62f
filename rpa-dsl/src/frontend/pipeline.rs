//! `emit_pipeline`: an inner pipeline over blocks of HBM operands, written in the DSL itself (a
//! runtime loop of DMAs, waits and the body), like `pltpu.emit_pipeline`.

use super::builder::with;
use super::control::{ForLoop, If};
use super::launch;
use super::refs::{copy, ds, Hbm, Ix, Ref, Sems, Vmem};
use super::values::{cmp, Scalar};

/// An operand of an inner pipeline (`emit_pipeline`'s BlockSpec): an HBM ref, the block it is cut
/// into, the block index of each inner step (block indices, not element offsets), and how many
/// VMEM buffers it cycles through (2 unless [`PipelineSpec::buffered`]).
pub struct PipelineSpec<'a> {
    pub hbm: Ref<Hbm>,
    pub block: Vec<usize>,
    pub index_map: Box<dyn Fn(&[Scalar]) -> Vec<Scalar> + 'a>,
    pub buffers: usize,
}

impl<'a> PipelineSpec<'a> {
    pub fn new(hbm: Ref<Hbm>, block: &[usize], index_map: impl Fn(&[Scalar]) -> Vec<Scalar> + 'a) -> Self {
        PipelineSpec { hbm, block: block.to_vec(), index_map: Box::new(index_map), buffers: 2 }
    }

    /// `n` buffers for this input (`pipeline_mode=pl.Buffered(n)` in `pltpu.emit_pipeline`): the
    /// blocks of the next `n - 1` steps are in flight while a step computes (`n = 1`: fetched when
    /// needed). Outputs keep two buffers (as in Pallas).
    pub fn buffered(mut self, n: usize) -> Self {
        self.buffers = n;
        self
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

/// The scratch of a pipeline: VMEM slots per operand (an input's `buffers`, two per output), a
/// DMA semaphore per slot.
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
/// Declares its own scratch: VMEM slots per operand (`{name}_in{i}`: the input's `buffers`;
/// `{name}_out{i}`: two) and a DMA semaphore per slot (`{name}_sems`). An input with `n` buffers
/// fetches the block of step `s + n - 1` when step `s` starts. Every step copies all of its blocks (no reuse of an
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
    if !buffer_counts_ok(inputs, outputs) {
        return;
    }
    let depth = inputs.iter().map(|s| s.buffers).max().unwrap_or(2).max(2);
    let slots = Slots {
        ins: scratch(name, "in", inputs),
        outs: scratch(name, "out", outputs),
        sems: launch::dma_sems(&format!("{name}_sems"), &[inputs.len() + outputs.len(), depth]),
    };
    if steps == 0 {
        return;
    }
    // Input `i` has the blocks of steps `0 .. buffers - 1` in flight before the first step.
    for (i, spec) in inputs.iter().enumerate() {
        for step in 0..(spec.buffers - 1).min(steps) {
            fetch(spec, &slots, i, &unflatten(constant(step), grid), constant(step % spec.buffers));
        }
    }
    let l = ForLoop::begin(0, steps);
    {
        let s = l.index();
        let (idx, slot) = (unflatten(s, grid), s % 2);
        for (i, spec) in inputs.iter().enumerate() {
            let n = spec.buffers;
            let ahead_step = s + (n - 1) as i32;
            let mut ahead = If::begin(cmp::lt(ahead_step, steps));
            if ahead.then_branch() {
                fetch(spec, &slots, i, &unflatten(ahead_step, grid), ahead_step % n);
            }
            ahead.else_branch();
            ahead.end();
            let mine = s % n;
            copy(spec.window(&idx), slots.ins[i].at(mine), slots.sems.at(i).at(mine)).wait();
        }
        // This slot's previous output copy (two steps ago) must land before the body refills it.
        let mut reuse = If::begin(cmp::ge(s, 2));
        if reuse.then_branch() {
            wait_outputs(outputs, &slots, &idx, slot);
        }
        reuse.else_branch();
        reuse.end();
        let ins: Vec<Ref<Vmem>> = slots.ins.iter().zip(inputs).map(|(b, spec)| b.at(s % spec.buffers)).collect();
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

/// Whether every input has at least one buffer and every output two; else an error at the call.
#[track_caller]
fn buffer_counts_ok(inputs: &[PipelineSpec], outputs: &[PipelineSpec]) -> bool {
    let loc = crate::ir::Loc::caller();
    let bad_in = inputs.iter().position(|s| s.buffers == 0);
    let bad_out = outputs.iter().position(|s| s.buffers != 2);
    let msg = match (bad_in, bad_out) {
        (Some(i), _) => format!("emit_pipeline input {i} has 0 buffers: it needs at least one (`buffered(1)`)"),
        (None, Some(o)) => format!(
            "emit_pipeline output {o} asks for {} buffers: outputs are double-buffered (as in Pallas)",
            outputs[o].buffers
        ),
        (None, None) => return true,
    };
    with(|b| b.error(loc, Some("emit_pipeline"), msg));
    false
}

/// VMEM slots for the block of each operand in `specs` (its `buffers`).
#[track_caller]
fn scratch(name: &str, kind: &str, specs: &[PipelineSpec]) -> Vec<Ref<Vmem>> {
    let mut out = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        let shape: Vec<usize> = std::iter::once(s.buffers).chain(s.block.iter().copied()).collect();
        out.push(launch::scratch_vmem(&format!("{name}_{kind}{i}"), s.hbm.dtype(), &shape));
    }
    out
}

/// Starts the copy of input `i`'s block at `idx` into `slot`.
#[track_caller]
fn fetch(spec: &PipelineSpec, slots: &Slots, i: usize, idx: &[Scalar], slot: Scalar) {
    copy(spec.window(idx), slots.ins[i].at(slot), slots.sems.at(i).at(slot)).start();
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
