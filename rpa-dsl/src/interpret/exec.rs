//! The interpreter rule of every op, and the grid loop.

use super::matmul::{matmul_f32, matmul_i64};
use super::memory::{is_init, read_bits, row_major_strides, run_positions, write_bits, Addr, Buffer, Footprint, View};
use super::value::*;
use super::{BlockState, Event, EventKind, InterpretOptions, Outcome, Stats};
use crate::array::Array;
use crate::dtype::DType;
use crate::error::KernelError;
use crate::ir::schedule::{self, Cond, GridDriver};
use crate::ir::view::IndexDomain;
use crate::ir::*;
use std::rc::Rc;

mod rules;

struct PendingDma {
    sem: usize,
    bits: Vec<u32>,
    init: Vec<bool>,
    dst: View,
    src_buf: usize,
    src_fp: Footprint,
    dst_fp: Footprint,
    bytes: u64,
    loc: Loc,
    started: u64,
}

pub(crate) struct Machine<'k> {
    k: &'k Kernel,
    opts: InterpretOptions,
    vals: Vec<Val>,
    vars: Vec<Val>,
    bufs: Vec<Buffer>,
    blocks: Vec<BlockState>,
    outputs: Vec<usize>,
    /// Per semaphore: bytes signalled and not yet consumed by waits.
    sem_count: Vec<u64>,
    /// Per semaphore: bytes consumed by waits that no pending DMA has used up yet.
    sem_credit: Vec<u64>,
    sem_names: Vec<String>,
    /// Per regular semaphore: where it was last signalled (DMA semaphores: `None`).
    sem_signalled: Vec<Option<Loc>>,
    pending: Vec<PendingDma>,
    grid_idx: Vec<i64>,
    clock: u64,
    stats: Stats,
    events: Vec<Event>,
    prints: Vec<String>,
}

type R<T> = Result<T, KernelError>;

impl<'k> Machine<'k> {
    pub fn new(k: &'k Kernel, opts: &InterpretOptions) -> Machine<'k> {
        Machine {
            k,
            opts: opts.clone(),
            vals: vec![Val::Unset; k.values.len()],
            vars: vec![Val::Unset; k.vars.len()],
            bufs: Vec::new(),
            blocks: Vec::new(),
            outputs: Vec::new(),
            sem_count: Vec::new(),
            sem_credit: Vec::new(),
            sem_names: Vec::new(),
            sem_signalled: Vec::new(),
            pending: Vec::new(),
            grid_idx: vec![0; k.grid.len()],
            clock: 0,
            stats: Stats::default(),
            events: Vec::new(),
            prints: Vec::new(),
        }
    }

    fn err(&self, loc: Loc, op: &str, msg: impl Into<String>) -> KernelError {
        KernelError::single(&self.k.name, Some(op), loc, msg)
    }

    pub fn setup(&mut self, inputs: Vec<Array>) -> R<()> {
        let (bufs, bindings, blocks, outputs, sems) = super::param_buffers(self.k, inputs)?;
        self.bufs = bufs;
        self.blocks = blocks;
        self.outputs = outputs;
        for (v, val) in bindings {
            self.vals[v] = val;
        }
        self.sem_count = vec![0; sems];
        self.sem_credit = vec![0; sems];
        self.sem_names = vec![String::new(); sems];
        self.sem_signalled = vec![None; sems];
        for p in &self.k.params {
            if let Val::S(s) = &self.vals[p.value.0 as usize] {
                let n = s.shape.iter().product::<usize>().max(1);
                let strides = row_major_strides(&s.shape);
                for i in 0..n {
                    let idx: Vec<String> =
                        s.shape.iter().zip(&strides).map(|(&e, &st)| ((i / st as usize) % e).to_string()).collect();
                    self.sem_names[s.base + i] =
                        if idx.is_empty() { s.name.to_string() } else { format!("{}[{}]", s.name, idx.join(", ")) };
                }
            }
        }
        Ok(())
    }

    pub fn run_grid(&mut self) -> R<()> {
        let steps: usize = self.k.grid.iter().product();
        for step in 0..steps {
            schedule::step(self, &(step as i64), steps)?;
        }
        Ok(())
    }

    /// The BlockSpec index of block `b` must be inside its array (checked at every step).
    fn check_block_bounds(&self, b: usize, idx: &[i64]) -> R<()> {
        let p = &self.k.params[self.blocks[b].param];
        let bs = p.block.as_ref().expect("block spec");
        let shape = &self.bufs[self.blocks[b].hbm].shape;
        for (d, (&i, &bd)) in idx.iter().zip(&bs.block_shape).enumerate() {
            if i < 0 || i * bd as i64 >= shape[d] as i64 {
                return Err(self.err(
                    bs.index_map.loc,
                    &p.name,
                    format!(
                        "block index {idx:?} of `{}` is out of bounds: dimension {d} has {} blocks of {bd}",
                        p.name,
                        shape[d].div_ceil(bd)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Copies the window of block `idx` between the operand's HBM array and its VMEM block buffer.
    fn copy_block(&mut self, b: usize, idx: &[i64], copy_in: bool) -> R<()> {
        let st = &self.blocks[b];
        let p = &self.k.params[st.param];
        let bs = p.block.as_ref().expect("block spec");
        let (hbm, vmem) = (st.hbm, st.vmem);
        let shape = self.bufs[hbm].shape.clone();
        let mut start = Vec::new();
        let mut extent = Vec::new();
        for (d, (&i, &bd)) in idx.iter().zip(&bs.block_shape).enumerate() {
            let s = i * bd as i64;
            start.push(s as usize);
            extent.push(bd.min(shape[d] - s as usize));
        }
        let dtype = self.bufs[hbm].dtype;
        let hview = View::whole(hbm, dtype, &shape, 0);
        let offset = start.iter().zip(&hview.strides).map(|(&s, &st)| s as i64 * st).sum();
        let hview = View { shape: extent.clone(), offset, ..hview };
        let vview = View { shape: extent, ..View::whole(vmem, dtype, &bs.block_shape, 0) };
        let (src, dst) = if copy_in { (hview, vview) } else { (vview, hview) };
        if copy_in {
            let buf = &mut self.bufs[vmem];
            buf.bits.fill(buf.dtype.poison_bits());
            buf.init.fill(false);
        }
        let (bits, init) = self.snapshot(&src);
        self.land(&dst, &bits, &init);
        let bytes = src.bytes() as u64;
        let key = (self.bufs[src.buf].space, self.bufs[dst.buf].space);
        *self.stats.bytes.entry(key).or_default() += bytes;
        if self.opts.trace {
            let dir = if copy_in { "in" } else { "out" };
            self.events.push(Event {
                kind: EventKind::BlockCopy,
                track: format!("block {}", p.name),
                name: format!("copy {dir} {} {idx:?}", p.name),
                loc: p.loc,
                start: self.clock,
                end: self.clock + 1 + bytes / 4096,
                bytes,
            });
        }
        Ok(())
    }

    pub fn finish(mut self) -> R<Outcome> {
        if let Some(d) = self.pending.iter().find(|d| d.bytes > 0) {
            let name = self.sem_names[d.sem].clone();
            return Err(self.err(
                d.loc,
                "dma_start",
                format!(
                    "the kernel ended with a DMA that was never waited: this copy of {} bytes signals `{name}`, \
                     which still holds {} bytes (add the matching `.wait()`)",
                    d.bytes, self.sem_count[d.sem]
                ),
            ));
        }
        if let Some((s, loc)) =
            self.sem_signalled.iter().enumerate().find_map(|(s, l)| l.filter(|_| self.sem_count[s] > 0).map(|l| (s, l)))
        {
            let msg = semaphore_left_signalled(self.sem_count[s] as i64, &self.sem_names[s]);
            return Err(self.err(loc, "semaphore_signal", msg));
        }
        if let Some(s) = self.sem_count.iter().position(|&c| c > 0) {
            return Err(self.err(
                self.k.loc,
                "dma_sem",
                format!(
                    "the kernel ended with {} unconsumed bytes on semaphore `{}`",
                    self.sem_count[s], self.sem_names[s]
                ),
            ));
        }
        let mut outputs = Vec::with_capacity(self.outputs.len());
        for (i, &id) in self.outputs.iter().enumerate() {
            let b = &mut self.bufs[id];
            // The buffer's bits move into the output unless a later output is the same buffer.
            let bits = if self.outputs[i + 1..].contains(&id) { b.bits.clone() } else { std::mem::take(&mut b.bits) };
            outputs.push(Array::from_bits(b.dtype, &b.shape, bits));
        }
        Ok(Outcome { outputs, stats: self.stats, events: self.events, prints: self.prints })
    }

    // ------------------------------------------------------------------------------------------

    fn exec_block(&mut self, block: &'k Block) -> R<()> {
        for inst in &block.insts {
            self.exec(inst)?;
        }
        Ok(())
    }

    fn val(&self, v: ValueId) -> &Val {
        &self.vals[v.0 as usize]
    }
    fn set(&mut self, inst: &Inst, v: Val) {
        if let Some(r) = inst.result {
            self.vals[r.0 as usize] = v;
        }
    }
    fn dtype(&self, v: ValueId) -> DType {
        self.k.ty(v).dtype().unwrap_or(DType::I32)
    }
    fn int(&self, v: ValueId) -> i64 {
        self.val(v).int()
    }
    fn view(&self, v: ValueId) -> Rc<View> {
        match self.val(v) {
            Val::R(r) => r.clone(),
            other => panic!("interpret: value {v:?} is not a ref ({other:?})"),
        }
    }
    fn sem_view(&self, v: ValueId) -> Rc<SemView> {
        match self.val(v) {
            Val::S(s) => s.clone(),
            other => panic!("interpret: value {v:?} is not a semaphore ({other:?})"),
        }
    }
    fn result_shape(&self, inst: &Inst) -> Option<Vec<usize>> {
        match inst.result.map(|r| self.k.ty(r)) {
            Some(Type::Vector { shape, .. }) => Some(shape.clone()),
            _ => None,
        }
    }
    fn result_dtype(&self, inst: &Inst) -> DType {
        inst.result.map(|r| self.dtype(r)).unwrap_or(DType::I32)
    }

    /// An operand as shared flat data with its shape (`[]` for scalars); vectors are not copied.
    fn vv(&self, v: ValueId) -> Rc<VecVal> {
        match self.val(v) {
            Val::I(i) => Rc::new(VecVal { shape: vec![], data: Data::I(vec![*i]) }),
            Val::F(f) => Rc::new(VecVal { shape: vec![], data: Data::F(vec![*f]) }),
            Val::V(vv) => vv.clone(),
            other => panic!("interpret: value {v:?} is not a scalar or vector ({other:?})"),
        }
    }

    /// An operand as owned flat data with its shape (copies vectors that are still shared).
    fn data(&self, v: ValueId) -> (Data, Vec<usize>) {
        let vv = self.vv(v);
        match Rc::try_unwrap(vv) {
            Ok(vv) => (vv.data, vv.shape),
            Err(rc) => (rc.data.clone(), rc.shape.clone()),
        }
    }

    fn vector_or_scalar(&self, shape: Option<Vec<usize>>, data: Data) -> Val {
        match shape {
            Some(shape) => Val::V(Rc::new(VecVal { shape, data })),
            None => match data {
                Data::F(v) => Val::F(v[0]),
                Data::I(v) => Val::I(v[0]),
            },
        }
    }

    fn tick(&mut self, work: usize) {
        self.clock += 1 + (work / 1024) as u64;
    }

    fn exec(&mut self, inst: &'k Inst) -> R<()> {
        self.stats.insts += 1;
        let loc = inst.loc;
        match &inst.op {
            Op::Const { value, .. } => self.exec_const(inst, value),
            Op::ProgramId { axis } => self.exec_program_id(inst, *axis),
            Op::NumPrograms { axis } => self.exec_num_programs(inst, *axis),
            Op::Unary { op, x } => self.exec_unary(inst, *op, *x),
            Op::Binary { op, lhs, rhs } => self.exec_binary(inst, loc, *op, *lhs, *rhs),
            Op::Compare { op, lhs, rhs } => self.exec_compare(inst, *op, *lhs, *rhs),
            Op::Select { cond, on_true, on_false } => self.exec_select(inst, *cond, *on_true, *on_false),
            Op::Cast { x, to } => self.exec_cast(inst, *x, *to),
            Op::Bitcast { x, to } => self.exec_bitcast(inst, *x, *to),
            Op::MultipleOf { x, multiple } => self.exec_multiple_of(inst, loc, *x, *multiple),
            Op::Iota { shape, dim, .. } => self.exec_iota(inst, shape, *dim),
            Op::Broadcast { x, shape } => self.exec_broadcast(inst, *x, shape),
            Op::Reshape { x, shape } => self.exec_reshape(inst, *x, shape),
            Op::Slice { x, start, shape } => self.exec_slice(inst, *x, start, shape),
            Op::Concat { xs, axis } => self.exec_concat(inst, xs, *axis),
            Op::Roll { x, shift, axis } => self.exec_roll(inst, loc, *x, *shift, *axis),
            Op::Transpose { x, perm } => self.exec_transpose(inst, *x, perm),
            Op::Extract { x, index } => self.exec_extract(inst, *x, index),
            Op::Reduce { op, x, axis } => self.exec_reduce(inst, *op, *x, *axis),
            Op::ReduceAll { op, x } => self.exec_reduce_all(inst, *op, *x),
            Op::ArgReduce { op, x, axis } => self.exec_arg_reduce(inst, *op, *x, *axis),
            Op::Matmul { lhs, rhs, transpose_lhs, transpose_rhs, acc } => {
                self.exec_matmul(inst, loc, *lhs, *rhs, [*transpose_lhs, *transpose_rhs], *acc)
            }
            Op::View { base, indexers } => self.exec_view(inst, loc, *base, indexers),
            Op::RefReshape { base, shape } => self.exec_ref_reshape(inst, loc, *base, shape),
            Op::RefBitcast { base, to } => self.exec_ref_bitcast(inst, loc, *base, *to),
            Op::Load { src } => self.exec_load(inst, loc, *src),
            Op::LoadStrided { src, strides, shape } => self.exec_load_strided(inst, loc, *src, strides, shape),
            Op::Store { dst, value, mask } => self.exec_store(loc, *dst, *value, *mask),
            Op::StoreStrided { dst, value, strides } => self.exec_store_strided(loc, *dst, *value, strides),
            Op::ScalarLoad { src, indices } => self.exec_scalar_load(inst, loc, *src, indices),
            Op::ScalarStore { dst, indices, value } => self.exec_scalar_store(loc, *dst, indices, *value),
            Op::DmaStart { src, dst, sem } => self.exec_dma_start(loc, *src, *dst, *sem),
            Op::DmaWait { dst, sem, .. } => self.exec_dma_wait(loc, *dst, *sem),
            Op::SemSignal { sem, amount } => self.exec_sem_signal(loc, *sem, *amount),
            Op::SemWait { sem, amount } => self.exec_sem_wait(loc, *sem, *amount),
            Op::VarDecl { var, init } => self.exec_var_decl(*var, *init),
            Op::VarGet { var } => self.exec_var_get(inst, loc, *var),
            Op::VarSet { var, value } => self.exec_var_set(*var, *value),
            Op::For { lo, hi, index, body } => self.exec_for(*lo, *hi, *index, body),
            Op::If { cond, then_body, else_body } => self.exec_if(*cond, then_body, else_body),
            Op::While { cond_body, cond, body } => self.exec_while(cond_body, *cond, body),
            Op::DebugPrint { message, args } => self.exec_debug_print(message, args),
        }
    }

    fn binary(&self, op: BinaryOp, dt: DType, lhs: ValueId, rhs: ValueId, out_shape: &[usize]) -> Result<Data, String> {
        let (av, bv) = (self.vv(lhs), self.vv(rhs));
        Ok(match (&av.data, &bv.data) {
            (Data::F(a), Data::F(b)) => {
                let mut out = binary_f_vec(op, (a, &av.shape), (b, &bv.shape), out_shape);
                round_vec(dt, &mut out);
                Data::F(out)
            }
            (Data::I(a), Data::I(b)) => Data::I(binary_i_vec(op, dt, (a, &av.shape), (b, &bv.shape), out_shape)?),
            _ => unreachable!("type rule: binary operands share a dtype"),
        })
    }

    fn index_view(&self, base: &View, indexers: &[Indexer], loc: Loc) -> R<View> {
        base.index(&mut Indexing { machine: self, loc }, indexers)
    }

    fn bitcast_view(&self, v: &View, to: DType, loc: Loc) -> R<View> {
        v.bitcast(to, 0).map_err(|m| self.err(loc, "ref_bitcast", m))
    }

    fn in_bounds(&self, v: &View) -> bool {
        match v.span() {
            None => true,
            Some((lo, hi)) => lo >= 0 && (hi as usize) < self.bufs[v.buf].bits.len(),
        }
    }

    fn check_extent(&self, base: &View, v: &View, loc: Loc, op: &str) -> R<()> {
        if !self.in_bounds(v) {
            return Err(self.err(
                loc,
                op,
                format!("strided access reaches outside `{}` (view {:?})", self.bufs[base.buf].name, base.shape),
            ));
        }
        Ok(())
    }

    /// The pending DMA whose destination (and, with `check_src`, source) shares an element with
    /// view `v`, if any. Cheap coarse span test first; exact footprints only when spans overlap.
    fn race(&self, v: &View, check_src: bool) -> Option<&PendingDma> {
        let span = v.span()?;
        let hit = |fp: &Footprint| fp.span.is_some_and(|(a, b)| a <= span.1 && span.0 <= b);
        let mut candidates = self
            .pending
            .iter()
            .filter(|p| (p.dst.buf == v.buf && hit(&p.dst_fp)) || (check_src && p.src_buf == v.buf && hit(&p.src_fp)))
            .peekable();
        candidates.peek()?;
        let fp = Footprint::of(v);
        candidates.find(|p| {
            (p.dst.buf == v.buf && p.dst_fp.overlaps(&fp))
                || (check_src && p.src_buf == v.buf && p.src_fp.overlaps(&fp))
        })
    }

    fn load(&self, v: &View, loc: Loc, op: &str) -> R<Data> {
        let buf = &self.bufs[v.buf];
        if self.opts.detect_dma_races {
            if let Some(p) = self.race(v, false) {
                return Err(self.err(
                    loc,
                    op,
                    format!(
                        "reads `{}` where a DMA started at {} is still writing: wait for the DMA before loading",
                        buf.name, p.loc
                    ),
                ));
            }
        }
        let (data, any_init) = buf.load(v);
        if self.opts.uninit_reads_are_errors && !any_init {
            return Err(self.err(
                loc,
                op,
                format!(
                    "reads only uninitialised memory of `{}` ({} elements): nothing was stored or copied there yet",
                    buf.name,
                    v.len()
                ),
            ));
        }
        Ok(data)
    }

    fn store(&mut self, v: &View, d: &Data, mask: Option<&[i64]>, loc: Loc, op: &str) -> R<()> {
        if self.opts.detect_dma_races {
            if let Some(p) = self.race(v, true) {
                return Err(self.err(
                    loc,
                    op,
                    format!(
                        "writes `{}` where a DMA started at {} is still reading or writing: wait for the DMA first",
                        self.bufs[v.buf].name, p.loc
                    ),
                ));
            }
        }
        self.bufs[v.buf].store(v, d, mask);
        Ok(())
    }

    fn scalar_addr(&self, v: &View, indices: &[ValueId], loc: Loc, op: &str) -> R<Addr> {
        let mut idx = Vec::with_capacity(indices.len());
        for (d, i) in indices.iter().enumerate() {
            let i = self.int(*i);
            if i < 0 || i as usize >= v.shape[d] {
                return Err(self.err(
                    loc,
                    op,
                    format!(
                        "index {i} is out of bounds for dimension {d} (extent {}) of `{}`",
                        v.shape[d], self.bufs[v.buf].name
                    ),
                ));
            }
            idx.push(i as usize);
        }
        Ok(v.addr(&idx))
    }

    /// Reads a view's elements (bits and initialisation) in row-major order.
    fn snapshot(&self, v: &View) -> (Vec<u32>, Vec<bool>) {
        self.bufs[v.buf].snapshot(v)
    }

    /// Writes elements into a view, keeping their initialisation state.
    fn land(&mut self, v: &View, bits: &[u32], init: &[bool]) {
        self.bufs[v.buf].land(v, bits, init)
    }

    fn single_sem(&self, sem: ValueId, loc: Loc, op: &str) -> R<usize> {
        let s = self.sem_view(sem);
        if !s.shape.is_empty() {
            return Err(self.err(
                loc,
                op,
                format!("needs a single semaphore, got an array of {:?} of `{}`", s.shape, s.name),
            ));
        }
        Ok(s.base)
    }

    fn dma_start(&mut self, src: ValueId, dst: ValueId, sem: ValueId, loc: Loc) -> R<()> {
        let (s, d) = (self.view(src), self.view(dst));
        let sem = self.single_sem(sem, loc, "dma_start")?;
        if s.shape != d.shape {
            return Err(self.err(
                loc,
                "dma_start",
                format!(
                    "DMA source `{}` {:?} and destination `{}` {:?} have different shapes",
                    self.bufs[s.buf].name, s.shape, self.bufs[d.buf].name, d.shape
                ),
            ));
        }
        for (what, v) in [("source", &s), ("destination", &d)] {
            if !self.in_bounds(v) {
                return Err(self.err(
                    loc,
                    "dma_start",
                    format!("DMA {what} reaches outside `{}`", self.bufs[v.buf].name),
                ));
            }
        }
        if self.opts.detect_dma_races {
            let conflict = self.race(&d, true).or_else(|| self.race(&s, false));
            if let Some(p) = conflict {
                return Err(self.err(
                    loc,
                    "dma_start",
                    format!(
                        "this DMA ({} → {}) overlaps a DMA started at {} that has not been waited: wait for it first \
                         (a buffer slot must not be refilled before its pending copy has landed)",
                        self.bufs[s.buf].name, self.bufs[d.buf].name, p.loc
                    ),
                ));
            }
        }
        let (bits, init) = self.snapshot(&s);
        let bytes = s.bytes() as u64;
        let key = (self.bufs[s.buf].space, self.bufs[d.buf].space);
        *self.stats.bytes.entry(key).or_default() += bytes;
        self.stats.dmas += 1;
        self.sem_count[sem] += bytes;
        if bytes == 0 {
            // An empty copy completes at once and signals nothing.
            self.tick(0);
            return Ok(());
        }
        self.pending.push(PendingDma {
            sem,
            bits,
            init,
            dst: (*d).clone(),
            src_buf: s.buf,
            src_fp: if self.opts.detect_dma_races { Footprint::of(&s) } else { Footprint::default() },
            dst_fp: if self.opts.detect_dma_races { Footprint::of(&d) } else { Footprint::default() },
            bytes,
            loc,
            started: self.clock,
        });
        self.tick(0);
        Ok(())
    }

    fn dma_wait(&mut self, dst: ValueId, sem: ValueId, loc: Loc) -> R<()> {
        let d = self.view(dst);
        let sem = self.single_sem(sem, loc, "dma_wait")?;
        let bytes = d.bytes() as u64;
        if self.sem_count[sem] < bytes {
            return Err(self.err(
                loc,
                "dma_wait",
                format!(
                    "waits for {bytes} bytes on semaphore `{}`, but only {} bytes were signalled: \
                     the matching copy was never started (on a TPU this wait would hang)",
                    self.sem_names[sem], self.sem_count[sem]
                ),
            ));
        }
        self.sem_count[sem] -= bytes;
        self.sem_credit[sem] += bytes;
        // Land the DMAs on this semaphore, oldest first, whose bytes have all been awaited.
        while let Some(pos) = self.pending.iter().position(|p| p.sem == sem) {
            if self.pending[pos].bytes > self.sem_credit[sem] {
                break;
            }
            let p = self.pending.remove(pos);
            self.sem_credit[sem] -= p.bytes;
            self.land(&p.dst, &p.bits, &p.init);
            if self.opts.trace {
                self.events.push(Event {
                    kind: EventKind::Dma,
                    track: self.sem_names[sem].clone(),
                    name: format!("dma {} bytes → {}", p.bytes, self.bufs[p.dst.buf].name),
                    loc: p.loc,
                    start: p.started,
                    end: self.clock.max(p.started + 1),
                    bytes: p.bytes,
                });
            }
        }
        self.tick(0);
        Ok(())
    }
}

fn unflatten(mut i: usize, dims: &[usize]) -> Vec<i64> {
    let mut out = vec![0i64; dims.len()];
    for d in (0..dims.len()).rev() {
        out[d] = (i % dims[d]) as i64;
        i /= dims[d];
    }
    out
}

fn strided_view(v: &View, strides: &[usize], shape: &[usize]) -> View {
    v.strided(strides, shape)
}

/// Interpret mode's index domain: concrete integers, out-of-bounds indices are errors at `loc`.
struct Indexing<'m, 'k> {
    machine: &'m Machine<'k>,
    loc: Loc,
}

impl Indexing<'_, '_> {
    fn err(&self, msg: String) -> KernelError {
        self.machine.err(self.loc, "view", msg)
    }
}

impl IndexDomain for Indexing<'_, '_> {
    type Int = i64;
    type Error = KernelError;
    const CONCRETE: bool = true;

    fn constant(&mut self, v: i64) -> i64 {
        v
    }

    fn known(&self, x: &i64) -> Option<i64> {
        Some(*x)
    }

    fn add(&mut self, a: &i64, b: &i64, scale: i64) -> i64 {
        a + b * scale
    }

    fn scalar(&mut self, v: ValueId) -> i64 {
        self.machine.int(v)
    }

    fn check_index(&mut self, view: &View, d: usize, &i: &i64) -> R<()> {
        let (ext, name) = (view.shape[d], &self.machine.bufs[view.buf].name);
        if i < 0 || i as usize >= ext {
            return Err(self.err(format!("index {i} is out of bounds for dimension {d} (extent {ext}) of `{name}`")));
        }
        Ok(())
    }

    fn check_slice(&mut self, view: &View, d: usize, &s: &i64, &n: &i64, max: Option<usize>) -> R<()> {
        let (ext, name) = (view.shape[d], &self.machine.bufs[view.buf].name);
        if let Some(max) = max.filter(|&max| n < 0 || n as usize > max) {
            let msg = format!("dynamic slice size {n} of dimension {d} of `{name}` is outside its bound [0, {max}]");
            return Err(self.err(msg));
        }
        if s < 0 || s + n > ext as i64 {
            let end = s + n;
            return Err(
                self.err(format!("slice [{s}, {end}) is out of bounds for dimension {d} (extent {ext}) of `{name}`"))
            );
        }
        Ok(())
    }
}

/// The elements of an unpacked view over flat data `d`.
fn gather(d: &Data, v: &View) -> Data {
    fn pick<T: Copy>(x: &[T], v: &View) -> Vec<T> {
        let mut out = Vec::with_capacity(v.len());
        v.runs(|_, p, len, s| {
            if s == 1 {
                out.extend_from_slice(&x[p..p + len]);
            } else {
                out.extend(run_positions(p, len, s).map(|q| x[q]));
            }
        });
        out
    }
    match d {
        Data::F(x) => Data::F(pick(x, v)),
        Data::I(x) => Data::I(pick(x, v)),
    }
}

fn to_bits(dtype: DType, d: &Data) -> Vec<u32> {
    match d {
        Data::F(v) => v.iter().map(|&x| dtype.float_to_bits(x as f64)).collect(),
        Data::I(v) => v.iter().map(|&x| dtype.int_to_bits(x)).collect(),
    }
}

fn from_bits(dtype: DType, bits: &[u32]) -> Data {
    if dtype.is_float() {
        Data::F(bits.iter().map(|&b| dtype.float_from_bits(b) as f32).collect())
    } else {
        Data::I(bits.iter().map(|&b| dtype.int_from_bits(b)).collect())
    }
}

/// Reinterprets vector bits between widths, packing along the second-minor dimension.
fn repack(bits: &[u32], from: DType, to: DType, shape: &[usize]) -> Vec<u32> {
    if from.bits() == to.bits() || shape.len() < 2 {
        return bits.to_vec();
    }
    let rank = shape.len();
    let (rows, cols) = (shape[rank - 2], shape[rank - 1]);
    let outer: usize = shape[..rank - 2].iter().product();
    if to.bits() > from.bits() {
        let k = to.bits() / from.bits();
        let w = from.bits();
        let mask = (1u32 << w) - 1;
        let out_rows = rows / k;
        let mut out = vec![0u32; outer * out_rows * cols];
        for o in 0..outer {
            for r in 0..out_rows {
                for c in 0..cols {
                    let mut word = 0u32;
                    for j in 0..k {
                        word |= (bits[(o * rows + r * k + j) * cols + c] & mask) << (j * w);
                    }
                    out[(o * out_rows + r) * cols + c] = word;
                }
            }
        }
        out
    } else {
        let k = from.bits() / to.bits();
        let w = to.bits();
        let mask = (1u32 << w) - 1;
        let out_rows = rows * k;
        let mut out = vec![0u32; outer * out_rows * cols];
        for o in 0..outer {
            for r in 0..out_rows {
                for c in 0..cols {
                    out[(o * out_rows + r) * cols + c] = (bits[(o * rows + r / k) * cols + c] >> ((r % k) * w)) & mask;
                }
            }
        }
        out
    }
}

/// Interpret mode walks the grid schedule step by step, with concrete indices.
impl<'k> GridDriver for Machine<'k> {
    type Int = i64;
    type Bool = bool;
    type Error = KernelError;

    fn blocks(&self) -> usize {
        self.blocks.len()
    }

    fn is_output(&self, b: usize) -> bool {
        self.k.params[self.blocks[b].param].role == Role::Output
    }

    fn current(&self, b: usize) -> Vec<i64> {
        self.blocks[b].current.clone()
    }

    fn set_current(&mut self, b: usize, idx: Vec<i64>) {
        self.blocks[b].current = idx;
    }

    fn set_grid_indices(&mut self, g: &[i64]) {
        self.grid_idx = g.to_vec();
    }

    /// Evaluates a BlockSpec's index map at grid indices `g`.
    fn block_index(&mut self, b: usize, g: &[i64]) -> R<Vec<i64>> {
        let bs = self.k.params[self.blocks[b].param].block.as_ref().expect("block spec");
        for (i, gv) in bs.index_map.grid_indices.iter().enumerate() {
            self.vals[gv.0 as usize] = Val::I(g.get(i).copied().unwrap_or(0));
        }
        self.exec_block(&bs.index_map.body)?;
        Ok(bs.index_map.results.iter().map(|r| self.vals[r.0 as usize].int()).collect())
    }

    fn check_block_index(&mut self, b: usize, idx: &[i64]) -> R<()> {
        self.check_block_bounds(b, idx)
    }

    fn differ(&mut self, a: &[i64], b: &[i64]) -> Cond<bool> {
        Cond::Static(a != b)
    }

    fn or(&mut self, a: &bool, b: &bool) -> bool {
        *a || *b
    }

    fn unflatten(&mut self, &s: &i64) -> Vec<i64> {
        unflatten(s as usize, &self.k.grid)
    }

    fn next_step(&mut self, &s: &i64, steps: usize) -> (Cond<bool>, i64) {
        (Cond::Static(s as usize + 1 == steps), (s + 1) % steps as i64)
    }

    fn start_output(&mut self, b: usize, idx: &[i64], _when: &Cond<bool>) -> R<()> {
        if self.blocks[b].visited.iter().any(|v| v == idx) {
            let p = &self.k.params[self.blocks[b].param];
            return Err(self.err(
                p.loc,
                &p.name,
                format!(
                    "revisited block {idx:?} of output `{}` at grid step {:?}: an output block must be written in \
                     consecutive grid steps (its earlier contents were already written back)",
                    p.name, self.grid_idx
                ),
            ));
        }
        self.blocks[b].visited.push(idx.to_vec());
        // A new output block starts uninitialised.
        let buf = &mut self.bufs[self.blocks[b].vmem];
        buf.bits.fill(buf.dtype.poison_bits());
        buf.init.fill(false);
        Ok(())
    }

    fn copy_block(&mut self, b: usize, idx: &[i64], copy_in: bool, _when: &Cond<bool>) -> R<()> {
        Machine::copy_block(self, b, idx, copy_in)
    }

    fn body(&mut self) -> R<()> {
        self.stats.grid_steps += 1;
        self.exec_block(&self.k.body)
    }
}
