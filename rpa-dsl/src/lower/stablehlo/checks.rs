//! Checked mode: the program checks at run time what interpret mode checks, and reports the first
//! failure the way interpret mode does (same op, source line and message).
//!
//! - **The record.** One `i32[8]` buffer, returned as the program's last result: the code of the
//!   first failed check (0: none) and up to seven runtime values for its message. Every check is
//!   `record = first == 0 && failed ? [code, values…] : record`; the record is an ordinary buffer,
//!   so loops and conditionals carry it like any other state.
//! - **Bounds.** Every runtime index and slice of a view (the way a bad page id read from SMEM
//!   reaches a DMA), every scalar access, every BlockSpec index, integer division by zero.
//! - **Semaphores.** A wait for more bytes than its semaphore holds; at the end, a semaphore still
//!   holding bytes (reported at the last copy that signalled it, as a DMA that was never waited).
//! - **Uninitialised reads.** Each buffer that starts uninitialised (scratch, output arrays, block
//!   buffers) has a written mask of its shape, set by stores and copies (copies carry the mask of
//!   their source); a vector load of only unwritten elements, or a scalar load of one, fails.
//!
//! Not checked (interpret mode does): DMA races, reading a variable before it is assigned.

use super::{BoxPlan, Init, IntExpr, Lowerer, RefVal, SemVal};
use crate::dtype::DType;
use crate::error::KernelError;
use crate::ir::{Kernel, Loc, Role, Type};
use std::collections::{BTreeSet, HashMap};

/// Values a record carries besides its code.
const DETAILS: usize = 7;

/// What a failed check reports (the runtime values come from the record).
#[derive(Clone, Debug)]
enum Failure {
    /// `[index, extent]`.
    Index {
        dim: usize,
        buffer: String,
        semaphore: bool,
    },
    /// `[size]`.
    SliceSize {
        dim: usize,
        buffer: String,
        max: usize,
    },
    /// `[start, size, extent]`.
    Slice {
        dim: usize,
        buffer: String,
    },
    UninitLoad {
        buffer: String,
        elements: usize,
    },
    /// The element's indices.
    UninitElement {
        buffer: String,
        rank: usize,
    },
    /// `[bytes, held, semaphore]`.
    Wait,
    /// `[bytes, held, semaphore]`.
    NeverWaited,
    /// The block's indices.
    BlockIndex {
        param: String,
        dims: Vec<(usize, usize)>,
    },
    /// The block's indices, then the grid indices.
    Revisit {
        param: String,
        rank: usize,
    },
    /// A strided access (of a view of `shape`) past its buffer.
    Strided {
        buffer: String,
        shape: Vec<usize>,
    },
    DivisionByZero {
        remainder: bool,
    },
    /// `[value]`.
    NotMultiple {
        multiple: u32,
    },
    /// `[shift]`.
    NegativeShift,
    /// `[amount]`.
    NegativeAmount,
    /// `[amount, held, semaphore]`.
    SemWait,
    /// `[amount, held, semaphore]`.
    SemLeftSignalled,
}

#[derive(Clone, Debug)]
struct Site {
    op: String,
    loc: Loc,
    failure: Failure,
}

/// What a checked program's record means: the sites of its checks, by code.
#[derive(Clone, Debug)]
pub struct CheckTable {
    kernel: String,
    grid_rank: usize,
    sites: Vec<Site>,
    /// Per semaphore, its name as interpret mode prints it (`sems[1, 0]`).
    sem_names: Vec<String>,
}

impl CheckTable {
    /// The error a record (the program's last result) reports, if a check failed.
    pub fn error(&self, record: &[i64]) -> Option<KernelError> {
        let code = *record.first()?;
        if code == 0 {
            return None;
        }
        let Some(site) = usize::try_from(code - 1).ok().and_then(|i| self.sites.get(i)) else {
            let msg = format!("unknown check code {code}");
            return Some(KernelError::single(&self.kernel, None, Loc::UNKNOWN, msg));
        };
        let v = &record[1..];
        let sem = |i: i64| self.sem_names.get(i as usize).cloned().unwrap_or_else(|| format!("#{i}"));
        let message = match &site.failure {
            Failure::Index { dim, buffer, semaphore } => {
                let what = if *semaphore { "semaphore array " } else { "" };
                format!("index {} is out of bounds for dimension {dim} (extent {}) of {what}`{buffer}`", v[0], v[1])
            }
            Failure::SliceSize { dim, buffer, max } => {
                format!("dynamic slice size {} of dimension {dim} of `{buffer}` is outside its bound [0, {max}]", v[0])
            }
            Failure::Slice { dim, buffer } => format!(
                "slice [{}, {}) is out of bounds for dimension {dim} (extent {}) of `{buffer}`",
                v[0],
                v[0] + v[1],
                v[2]
            ),
            Failure::UninitLoad { buffer, elements } => format!(
                "reads only uninitialised memory of `{buffer}` ({elements} elements): nothing was stored or copied \
                 there yet"
            ),
            Failure::UninitElement { buffer, rank } => {
                format!("reads uninitialised element {:?} of `{buffer}`: write it before reading it", &v[..*rank])
            }
            Failure::Wait => format!(
                "waits for {} bytes on semaphore `{}`, but only {} bytes were signalled: the matching copy was never \
                 started (on a TPU this wait would hang)",
                v[0],
                sem(v[2]),
                v[1]
            ),
            Failure::NeverWaited => format!(
                "the kernel ended with a DMA that was never waited: this copy of {} bytes signals `{}`, which still \
                 holds {} bytes (add the matching `.wait()`)",
                v[0],
                sem(v[2]),
                v[1]
            ),
            Failure::BlockIndex { param, dims } => {
                let idx = &v[..dims.len()];
                let d = (0..dims.len()).find(|&d| idx[d] < 0 || idx[d] >= dims[d].0 as i64).unwrap_or(0);
                format!(
                    "block index {idx:?} of `{param}` is out of bounds: dimension {d} has {} blocks of {}",
                    dims[d].0, dims[d].1
                )
            }
            Failure::Revisit { param, rank } => format!(
                "revisited block {:?} of output `{param}` at grid step {:?}: an output block must be written in \
                 consecutive grid steps (its earlier contents were already written back)",
                &v[..*rank],
                &v[*rank..*rank + self.grid_rank]
            ),
            Failure::Strided { buffer, shape } => format!("strided access reaches outside `{buffer}` (view {shape:?})"),
            Failure::DivisionByZero { remainder: false } => "integer division by zero".to_string(),
            Failure::DivisionByZero { remainder: true } => "integer remainder by zero".to_string(),
            Failure::NotMultiple { multiple } => crate::ir::not_a_multiple(v[0], *multiple),
            Failure::NegativeShift => crate::ir::negative_roll(v[0]),
            Failure::NegativeAmount => crate::ir::negative_semaphore_amount(v[0]),
            Failure::SemWait => crate::ir::semaphore_wait_short(v[0], v[1], &sem(v[2])),
            Failure::SemLeftSignalled => crate::ir::semaphore_left_signalled(v[1], &sem(v[2])),
        };
        Some(KernelError::single(&self.kernel, Some(&site.op), site.loc, message))
    }
}

/// The checked mode's buffers and the sites registered so far.
pub(super) struct CheckState {
    record: usize,
    /// The written mask of each buffer that starts uninitialised.
    written: HashMap<usize, usize>,
    /// Per semaphore, the code of its last copy's "never waited" site and that copy's bytes.
    last_copy: Option<(usize, usize)>,
    /// Per output block (by index in `blocks`), a flag per block of its array: visited.
    visited: HashMap<usize, usize>,
    sites: Vec<Site>,
    sem_names: Vec<String>,
}

/// The names interpret mode gives the semaphores of `k`, by flat index.
fn sem_names(k: &Kernel) -> Vec<String> {
    let mut names = Vec::new();
    for p in k.params.iter().filter(|p| p.role == Role::Scratch) {
        if let Type::Sem { shape, .. } = k.ty(p.value) {
            let n = shape.iter().product::<usize>().max(1);
            for i in 0..n {
                let mut rest = i;
                let mut idx = vec![0; shape.len()];
                for d in (0..shape.len()).rev() {
                    idx[d] = rest % shape[d];
                    rest /= shape[d];
                }
                let idx: Vec<String> = idx.iter().map(ToString::to_string).collect();
                names.push(if idx.is_empty() { p.name.clone() } else { format!("{}[{}]", p.name, idx.join(", ")) });
            }
        }
    }
    names
}

impl Lowerer<'_> {
    /// Adds the checked mode's buffers (after the kernel's own).
    pub(super) fn enable_checks(&mut self) {
        let record = self.add_buf("check record", DType::I32, &[DETAILS + 1], Init::Zero);
        let mut written = HashMap::new();
        let block_buffers: Vec<usize> = self.blocks.iter().map(|b| b.vmem).collect();
        for b in 0..record {
            let starts_unwritten = matches!(self.bufs[b].init, Init::Poison) || block_buffers.contains(&b);
            if starts_unwritten && Some(b) != self.sem_buf {
                let (dt, shape) = (self.bufs[b].logical.same_width_uint(), self.bufs[b].shape.clone());
                let name = format!("{} (written)", self.bufs[b].name);
                written.insert(b, self.add_buf(&name, dt, &shape, Init::Zero));
            }
        }
        let last_copy = self.sem_buf.map(|s| {
            let n = self.bufs[s].shape.clone();
            (
                self.add_buf("last copy", DType::I32, &n, Init::Zero),
                self.add_buf("last bytes", DType::I32, &n, Init::Zero),
            )
        });
        let mut visited = HashMap::new();
        for b in 0..self.blocks.len() {
            let st = &self.blocks[b];
            if self.k.params[st.param].role == Role::Output {
                let n: usize = st.array.iter().zip(&st.block).map(|(a, bd)| a.div_ceil(*bd)).product();
                visited.insert(b, self.add_buf("visited blocks", DType::I32, &[n], Init::Zero));
            }
        }
        let sem_names = sem_names(self.k);
        self.checks = Some(CheckState { record, written, last_copy, visited, sites: Vec::new(), sem_names });
    }

    /// The table of the checks emitted (after the final pass).
    pub(super) fn check_table(&mut self) -> Option<CheckTable> {
        let c = self.checks.as_mut()?;
        Some(CheckTable {
            kernel: self.k.name.clone(),
            grid_rank: self.k.grid.len(),
            sites: std::mem::take(&mut c.sites),
            sem_names: c.sem_names.clone(),
        })
    }

    /// `bufs` (buffers a region writes) with the checked mode's buffers it may write too: the
    /// record, their written masks and, with the semaphores, the last copies.
    pub(super) fn with_check_buffers(&self, mut bufs: BTreeSet<usize>) -> BTreeSet<usize> {
        let Some(c) = &self.checks else { return bufs };
        let masks: Vec<usize> = bufs.iter().filter_map(|b| c.written.get(b).copied()).collect();
        if self.sem_buf.is_some_and(|s| bufs.contains(&s)) {
            bufs.extend(c.last_copy.iter().flat_map(|&(a, b)| [a, b]));
        }
        bufs.extend(masks);
        bufs.insert(c.record);
        bufs
    }

    /// The buffers the grid loop carries besides the kernel's: the visited flags.
    pub(super) fn grid_check_buffers(&self) -> Vec<usize> {
        self.checks.as_ref().map_or_else(Vec::new, |c| c.visited.values().copied().collect())
    }

    /// Output block `b` moves to block `idx` where `changed` holds: it must not have been there.
    pub(super) fn check_revisit(&mut self, b: usize, idx: &[IntExpr], changed: &str) {
        let Some(flags) = self.checks.as_ref().and_then(|c| c.visited.get(&b).copied()) else { return };
        let (array, block) = (self.blocks[b].array.clone(), self.blocks[b].block.clone());
        let counts: Vec<usize> = array.iter().zip(&block).map(|(a, bd)| a.div_ceil(*bd)).collect();
        let mut flat = IntExpr::of(0);
        for (d, i) in idx.iter().enumerate() {
            let stride: usize = counts[d + 1..].iter().product();
            flat = self.int_add(&flat, i, stride as i64);
        }
        let at = flat.is_static().then_some(flat.constant);
        let pos = self.int_name(&flat);
        let seen = self.elem_get(flags, &pos, at);
        let one = self.iconst(1);
        let seen = self.compare("EQ", &seen, &one, DType::I32, &[]);
        let failed = self.bin("and", changed, &seen, DType::Bool, &[]);
        let p = &self.k.params[self.blocks[b].param];
        let (param, loc, rank) = (p.name.clone(), p.loc, idx.len());
        let mut values: Vec<String> = idx.iter().map(|i| self.int_name(i)).collect();
        for g in self.grid_idx.clone() {
            values.push(self.int_name(&g));
        }
        let saved = self.loc;
        self.loc = loc;
        let code = self.site_named(param.clone(), Failure::Revisit { param, rank });
        self.loc = saved;
        if let Some(code) = code {
            let code = self.iconst(code);
            self.fail_with(&failed, &code, &values);
        }
        let old = self.elem_get(flags, &pos, at);
        let mark = self.select(changed, &one, &old, &[], DType::I32, &[]);
        self.elem_set(flags, &pos, at, &mark);
    }

    /// Checks that the strided view `r` (`Same` packing) of a view of `base` stays inside its buffer.
    pub(super) fn check_strided(&mut self, r: &RefVal, base: &[usize]) {
        if self.checks.is_none() || !matches!(r.pack, super::Pack::Same) || r.shape.contains(&0) {
            return;
        }
        let reach: i64 = r.shape.iter().zip(&r.strides).map(|(&n, &s)| (n as i64 - 1) * s).sum();
        let len = self.bufs[r.buf].len as i64;
        if r.offset.is_static() && r.offset.constant >= 0 && r.offset.constant + reach < len {
            return;
        }
        let last = self.int_add(&r.offset, &IntExpr::of(reach), 1);
        let last = self.int_name(&last);
        let len = self.iconst(len);
        let failed = self.outside(&last, &len);
        let buffer = self.bufs[r.buf].name.clone();
        self.fail_if(&failed, Failure::Strided { buffer, shape: base.to_vec() }, &[]);
    }

    /// The record buffer, if checks are on.
    pub(super) fn record_buf(&self) -> Option<usize> {
        self.checks.as_ref().map(|c| c.record)
    }

    /// Registers a check site at the current op and line; its code.
    fn site(&mut self, failure: Failure) -> Option<i64> {
        let op = self.op.to_string();
        self.site_named(op, failure)
    }

    fn site_named(&mut self, op: String, failure: Failure) -> Option<i64> {
        let loc = self.loc;
        let c = self.checks.as_mut()?;
        c.sites.push(Site { op, loc, failure });
        Some(c.sites.len() as i64)
    }

    /// Records `failure` with runtime `values` where the i1 scalar `failed` holds (unless an earlier
    /// check failed).
    fn fail_if(&mut self, failed: &str, failure: Failure, values: &[String]) {
        let Some(code) = self.site(failure) else { return };
        let code = self.iconst(code);
        self.fail_with(failed, &code, values);
    }

    /// As [`Self::fail_if`], with the site's code a runtime value.
    fn fail_with(&mut self, failed: &str, code: &str, values: &[String]) {
        let Some(record) = self.record_buf() else { return };
        let i32t = DType::I32;
        let old = self.whole(record);
        let first = self.static_slice(&old, i32t, &[DETAILS + 1], &[0], &[1]);
        let first = self.reshape(&first, i32t, &[1], &[]);
        let zero = self.iconst(0);
        let clear = self.compare("EQ", &first, &zero, i32t, &[]);
        let fire = self.bin("and", failed, &clear, DType::Bool, &[]);
        let mut parts = vec![code.to_string()];
        parts.extend(values.iter().take(DETAILS).cloned());
        parts.resize(DETAILS + 1, zero);
        let parts: Vec<String> = parts.iter().map(|p| self.reshape(p, i32t, &[], &[1])).collect();
        let one = super::ty(i32t, &[1]);
        let new = self.emit(format!(
            "stablehlo.concatenate {}, dim = 0 : ({}) -> {}",
            parts.join(", "),
            vec![one; parts.len()].join(", "),
            super::ty(i32t, &[DETAILS + 1])
        ));
        let rec = self.select(&fire, &new, &old, &[], i32t, &[DETAILS + 1]);
        self.put_whole(record, &rec);
    }

    /// `!(0 <= i < extent)` for i32 scalars (one unsigned compare).
    fn outside(&mut self, i: &str, extent: &str) -> String {
        let (u, i32t) = (DType::U32, DType::I32);
        let (iu, eu) = (self.bitcast(i, i32t, u, &[]), self.bitcast(extent, i32t, u, &[]));
        self.compare("GE", &iu, &eu, u, &[])
    }

    /// The runtime extent of dim `d` of `r`.
    fn extent(&mut self, r: &RefVal, d: usize) -> String {
        match r.sizes[d].clone() {
            Some(s) => self.int_name(&s),
            None => self.iconst(r.shape[d] as i64),
        }
    }

    /// Checks index `i` of dim `d` of view `r` (an `At` indexer).
    pub(super) fn check_index(&mut self, r: &RefVal, d: usize, i: &IntExpr) {
        if self.checks.is_none()
            || (i.is_static() && r.sizes[d].is_none() && (0..r.shape[d] as i64).contains(&i.constant))
        {
            return;
        }
        let buffer = self.bufs[r.buf].name.clone();
        let (i, ext) = (self.int_name(i), self.extent(r, d));
        let failed = self.outside(&i, &ext);
        self.fail_if(&failed, Failure::Index { dim: d, buffer, semaphore: false }, &[i, ext]);
    }

    /// Checks index `i` of dim `d` of the semaphore array `s`.
    pub(super) fn check_sem_index(&mut self, s: &SemVal, d: usize, i: &IntExpr) {
        let shape = &s.shape;
        if self.checks.is_none() || (i.is_static() && (0..shape[d] as i64).contains(&i.constant)) {
            return;
        }
        let buffer = s.name.clone();
        let (i, ext) = (self.int_name(i), self.iconst(shape[d] as i64));
        let failed = self.outside(&i, &ext);
        self.fail_if(&failed, Failure::Index { dim: d, buffer, semaphore: true }, &[i, ext]);
    }

    /// Checks a slice `[s, s + n)` of dim `d` of view `r` (with `max`, the bound of a dynamic `n`).
    pub(super) fn check_slice(&mut self, r: &RefVal, d: usize, s: &IntExpr, n: &IntExpr, max: Option<usize>) {
        if self.checks.is_none() {
            return;
        }
        let buffer = self.bufs[r.buf].name.clone();
        let nn = self.int_name(n);
        if let Some(max) = max {
            if !(n.is_static() && n.constant >= 0 && n.constant as usize <= max) {
                let bound = self.iconst(max as i64 + 1);
                let failed = self.outside(&nn, &bound);
                self.fail_if(
                    &failed,
                    Failure::SliceSize { dim: d, buffer: buffer.clone(), max },
                    std::slice::from_ref(&nn),
                );
            }
        }
        let fits = s.is_static() && n.is_static() && r.sizes[d].is_none() && s.constant >= 0;
        if fits && s.constant + n.constant <= r.shape[d] as i64 {
            return;
        }
        let (sn, ext) = (self.int_name(s), self.extent(r, d));
        let zero = self.iconst(0);
        let negative = self.compare("LT", &sn, &zero, DType::I32, &[]);
        let end = self.bin("add", &sn, &nn, DType::I32, &[]);
        let past = self.compare("GT", &end, &ext, DType::I32, &[]);
        let failed = self.bin("or", &negative, &past, DType::Bool, &[]);
        self.fail_if(&failed, Failure::Slice { dim: d, buffer }, &[sn, nn, ext]);
    }

    /// Checks a BlockSpec index of block `b` (the index map's results).
    pub(super) fn check_block_index(&mut self, b: usize, idx: &[IntExpr]) {
        if self.checks.is_none() {
            return;
        }
        let (array, block) = (self.blocks[b].array.clone(), self.blocks[b].block.clone());
        let dims: Vec<(usize, usize)> = array.iter().zip(&block).map(|(&a, &bd)| (a.div_ceil(bd), bd)).collect();
        if idx.iter().zip(&dims).all(|(i, &(n, _))| i.is_static() && (0..n as i64).contains(&i.constant)) {
            return;
        }
        let mut failed: Option<String> = None;
        let mut values = Vec::new();
        for (i, &(n, _)) in idx.iter().zip(&dims) {
            let (iv, nv) = (self.int_name(i), self.iconst(n as i64));
            let f = self.outside(&iv, &nv);
            failed = Some(match failed {
                None => f,
                Some(p) => self.bin("or", &p, &f, DType::Bool, &[]),
            });
            values.push(iv);
        }
        let p = &self.k.params[self.blocks[b].param];
        let (param, loc) = (p.name.clone(), p.block.as_ref().map_or(p.loc, |bs| bs.index_map.loc));
        let saved = self.loc;
        self.loc = loc;
        let code = self.site_named(param.clone(), Failure::BlockIndex { param, dims });
        self.loc = saved;
        if let (Some(failed), Some(code)) = (failed, code) {
            let code = self.iconst(code);
            self.fail_with(&failed, &code, &values);
        }
    }

    /// Checks the divisor of an integer division or remainder (`b`, of `shape`).
    pub(super) fn check_divisor(&mut self, b: &str, dt: DType, shape: &[usize], remainder: bool) {
        if self.checks.is_none() {
            return;
        }
        let zero = self.splat(dt, shape, 0.0);
        let z = self.compare("EQ", b, &zero, dt, shape);
        let failed = self.any(&z, shape);
        self.fail_if(&failed, Failure::DivisionByZero { remainder }, &[]);
    }

    /// Checks a `multiple_of` promise: the integer scalar `x` (of `dt`) is a multiple of `multiple`.
    pub(super) fn check_multiple(&mut self, x: &str, dt: DType, multiple: u32) {
        if self.checks.is_none() {
            return;
        }
        let (m, zero) = (self.splat(dt, &[], f64::from(multiple)), self.splat(dt, &[], 0.0));
        let rest = self.bin("remainder", x, &m, dt, &[]);
        let failed = self.compare("NE", &rest, &zero, dt, &[]);
        let value = self.convert(x, dt, DType::I32, &[]);
        self.fail_if(&failed, Failure::NotMultiple { multiple }, &[value]);
    }

    /// Checks a `roll` shift: it must not be negative.
    pub(super) fn check_shift(&mut self, shift: &IntExpr) {
        if self.checks.is_none() || (shift.is_static() && shift.constant >= 0) {
            return;
        }
        let (s, zero) = (self.int_name(shift), self.iconst(0));
        let failed = self.compare("LT", &s, &zero, DType::I32, &[]);
        self.fail_if(&failed, Failure::NegativeShift, &[s]);
    }

    /// Whether any element of the i1 tensor `x` holds.
    fn any(&mut self, x: &str, shape: &[usize]) -> String {
        if shape.is_empty() {
            return x.to_string();
        }
        let n = shape.iter().product::<usize>();
        let flat = self.reshape(x, DType::Bool, shape, &[n]);
        self.reduce(&flat, DType::Bool, &[n], 0, "or", 0)
    }

    // ------------------------------------------------------------------------------ semaphores

    /// Checks that semaphore `sem` holds `bytes` for a wait.
    pub(super) fn check_wait(&mut self, sem: &SemVal, bytes: &IntExpr) {
        let (Some(sb), true) = (self.sem_buf, self.checks.is_some()) else { return };
        let idx = self.int_name(&sem.base);
        let at = sem.base.is_static().then_some(sem.base.constant);
        let held = self.elem_get(sb, &idx, at);
        let want = self.int_name(bytes);
        let failed = self.compare("LT", &held, &want, DType::I32, &[]);
        self.fail_if(&failed, Failure::Wait, &[want, held, idx]);
    }

    /// Checks a regular semaphore's wait: `sem` holds `amount`.
    pub(super) fn check_sem_wait(&mut self, sem: &SemVal, amount: &IntExpr) {
        let (Some(sb), true) = (self.sem_buf, self.checks.is_some()) else { return };
        let idx = self.int_name(&sem.base);
        let at = sem.base.is_static().then_some(sem.base.constant);
        let held = self.elem_get(sb, &idx, at);
        let want = self.int_name(amount);
        let failed = self.compare("LT", &held, &want, DType::I32, &[]);
        self.fail_if(&failed, Failure::SemWait, &[want, held, idx]);
    }

    /// Checks a regular semaphore's signal or wait amount: it must not be negative.
    pub(super) fn check_sem_amount(&mut self, amount: &IntExpr) {
        if self.checks.is_none() || (amount.is_static() && amount.constant >= 0) {
            return;
        }
        let (n, zero) = (self.int_name(amount), self.iconst(0));
        let failed = self.compare("LT", &n, &zero, DType::I32, &[]);
        self.fail_if(&failed, Failure::NegativeAmount, &[n]);
    }

    /// Notes the copy that last signalled `sem` (for the end-of-kernel balance).
    pub(super) fn note_copy(&mut self, sem: &SemVal, bytes: &IntExpr) {
        self.note_signalled(sem, bytes, Failure::NeverWaited);
    }

    /// Notes the `semaphore_signal` that last signalled the regular semaphore `sem`.
    pub(super) fn note_signal(&mut self, sem: &SemVal, amount: &IntExpr) {
        self.note_signalled(sem, amount, Failure::SemLeftSignalled);
    }

    /// Notes where `sem` was last signalled: what the end-of-kernel balance reports.
    fn note_signalled(&mut self, sem: &SemVal, bytes: &IntExpr, failure: Failure) {
        let Some((sites, sizes)) = self.checks.as_ref().and_then(|c| c.last_copy) else { return };
        let Some(code) = self.site(failure) else { return };
        let idx = self.int_name(&sem.base);
        let at = sem.base.is_static().then_some(sem.base.constant);
        let code = self.iconst(code);
        self.elem_set(sites, &idx, at, &code);
        let bytes = self.int_name(bytes);
        self.elem_set(sizes, &idx, at, &bytes);
    }

    /// At the end of the kernel: every semaphore must be back at zero.
    pub(super) fn check_balance(&mut self) {
        let (Some(sb), Some((sites, sizes))) = (self.sem_buf, self.checks.as_ref().and_then(|c| c.last_copy)) else {
            return;
        };
        let zero = self.iconst(0);
        for s in 0..self.bufs[sb].len {
            let idx = self.iconst(s as i64);
            let held = self.elem_get(sb, &idx, Some(s as i64));
            let failed = self.compare("GT", &held, &zero, DType::I32, &[]);
            let code = self.elem_get(sites, &idx, Some(s as i64));
            let bytes = self.elem_get(sizes, &idx, Some(s as i64));
            self.fail_with(&failed, &code, &[bytes, held, idx]);
        }
    }

    // ------------------------------------------------------------------------------ written masks

    /// The written mask of `r`'s buffer, viewed as `r` (its elements are all ones where written).
    fn mask_ref(&self, r: &RefVal) -> Option<RefVal> {
        let m = *self.checks.as_ref()?.written.get(&r.buf)?;
        Some(RefVal { buf: m, dtype: r.dtype.same_width_uint(), ..r.clone() })
    }

    fn ones(&mut self, dt: DType, shape: &[usize]) -> String {
        self.splat_bits(dt, shape, u32::MAX >> (32 - dt.bits()))
    }

    /// Marks window `w` of `r` written (where `mask` holds; `sizes` as [`Self::write`]).
    pub(super) fn mark_written(&mut self, r: &RefVal, w: &[usize], mask: Option<&str>, sizes: &[Option<String>]) {
        let Some(m) = self.mask_ref(r) else { return };
        let ones = self.ones(m.dtype, w);
        self.write(&m, w, &ones, mask, sizes);
    }

    /// Marks element `idx` of `r` written.
    pub(super) fn mark_written_at(&mut self, r: &RefVal, idx: &[IntExpr]) {
        let Some(m) = self.mask_ref(r) else { return };
        let one = self.ones(m.dtype, &[]);
        self.write_at(&m, idx, &one);
    }

    /// A copy of window `w` from `src` to `dst` carries the source's written mask.
    pub(super) fn copy_written(&mut self, src: &RefVal, dst: &RefVal, w: &[usize], sizes: &[Option<String>]) {
        let Some(m) = self.mask_ref(dst) else { return };
        let flags = match self.mask_ref(src) {
            Some(sm) => self.read(&sm, w, sizes),
            None => self.ones(m.dtype, w),
        };
        self.write(&m, w, &flags, None, sizes);
    }

    /// Sets buffer `b`'s whole written mask to `written` (where the scalar `pred` holds, if given).
    pub(super) fn set_written(&mut self, b: usize, written: bool, pred: Option<&str>) {
        let Some(m) = self.written_buf(b) else { return };
        let (dt, shape) = (self.bufs[m].dtype, self.bufs[m].shape.clone());
        let mut v = if written { self.ones(dt, &shape) } else { self.splat(dt, &shape, 0.0) };
        if let Some(p) = pred {
            let old = self.whole(m);
            v = self.select(p, &v, &old, &[], dt, &shape);
        }
        self.put_whole(m, &v);
    }

    /// The written mask of buffer `b`, if it has one.
    pub(super) fn written_buf(&self, b: usize) -> Option<usize> {
        self.checks.as_ref()?.written.get(&b).copied()
    }

    /// A whole-block copy out of block buffer `vmem` into box `plan` of `hbm` carries its mask.
    pub(super) fn copy_block_written(&mut self, vmem: usize, hbm: usize, plan: &BoxPlan, pred: Option<&str>) {
        let Some(hm) = self.written_buf(hbm) else { return };
        let (dt, block) = (self.bufs[hm].dtype, plan.sizes.clone());
        let mut v = match self.written_buf(vmem) {
            Some(vm) => self.whole(vm),
            None => self.ones(dt, &block),
        };
        if let Some(p) = pred {
            let old = self.box_get(hm, plan);
            v = self.select(p, &v, &old, &[], dt, &block);
        }
        self.box_put(hm, plan, &v);
    }

    /// Checks that a vector load of window `w` of `r` reads some written element.
    pub(super) fn check_load(&mut self, r: &RefVal, w: &[usize], sizes: &[Option<String>]) {
        let Some(m) = self.mask_ref(r) else { return };
        if w.iter().product::<usize>() == 0 {
            return;
        }
        let flags = self.read(&m, w, sizes);
        let zero = self.splat(m.dtype, w, 0.0);
        let set = self.compare("NE", &flags, &zero, m.dtype, w);
        let any = self.any(&set, w);
        let failed = self.un("not", &any, DType::Bool, &[]);
        let (buffer, elements) = (self.bufs[r.buf].name.clone(), w.iter().product());
        self.fail_if(&failed, Failure::UninitLoad { buffer, elements }, &[]);
    }

    /// Checks that a scalar load of element `idx` of `r` reads a written element.
    pub(super) fn check_load_at(&mut self, r: &RefVal, idx: &[IntExpr]) {
        let Some(m) = self.mask_ref(r) else { return };
        let flag = self.read_at(&m, idx);
        let zero = self.splat(m.dtype, &[], 0.0);
        let failed = self.compare("EQ", &flag, &zero, m.dtype, &[]);
        let buffer = self.bufs[r.buf].name.clone();
        let values: Vec<String> = idx.iter().map(|i| self.int_name(i)).collect();
        self.fail_if(&failed, Failure::UninitElement { buffer, rank: idx.len() }, &values);
    }
}
