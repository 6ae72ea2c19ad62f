//! The kernel IR: typed SSA values, one enum of ops with nested regions for structured control flow,
//! mutable locals for values that change across regions, and the launch description (grid,
//! operands, BlockSpecs, aliases). Every instruction carries the user's source location.

pub mod cost;
mod ops;
pub mod printer;
pub mod schedule;
pub mod verify;
pub mod view;

pub use ops::*;

use crate::dtype::DType;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

/// An SSA value: the result of one instruction, a loop index or a kernel parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

/// A mutable local (`let mut` in a kernel): read and written by `VarGet`/`VarSet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(pub u32);

/// A place in the kernel author's source (from `#[track_caller]`), printed as `file:line:col`. Inside
/// a `#[tpu_fn]` helper it also names the call site (and that one its own, out to the kernel),
/// printed as `file:line:col (called from file:line:col, from ..)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Loc {
    pub file: &'static str,
    pub line: u32,
    pub col: u32,
    /// Where the `#[tpu_fn]` holding this place was called, if it is in one.
    pub caller: Option<&'static Loc>,
}

thread_local! {
    /// The call site of the `#[tpu_fn]` running now (see [`CallFrame`]).
    static CALL_SITE: Cell<Option<&'static Loc>> = const { Cell::new(None) };
}

impl Loc {
    pub const UNKNOWN: Loc = Loc { file: "<unknown>", line: 0, col: 0, caller: None };

    /// The caller's place, with the call sites of the `#[tpu_fn]` helpers it is in.
    #[track_caller]
    pub fn caller() -> Loc {
        let l = std::panic::Location::caller();
        Loc { file: l.file(), line: l.line(), col: l.column(), caller: CALL_SITE.with(Cell::get) }
    }

    /// The place itself and its call sites, innermost first.
    pub fn chain(&self) -> impl Iterator<Item = &Loc> {
        std::iter::successors(Some(self), |l| l.caller)
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)?;
        for (i, site) in self.chain().skip(1).enumerate() {
            let sep = if i == 0 { " (called from" } else { ", from" };
            write!(f, "{sep} {}:{}:{}", site.file, site.line, site.col)?;
        }
        if self.caller.is_some() {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// While a `#[tpu_fn]` runs, its call site (as `#[tpu_fn]` generates it): every [`Loc::caller`]
/// taken meanwhile names it. Dropping the frame restores the outer call site.
#[doc(hidden)]
pub struct CallFrame(Option<&'static Loc>);

impl CallFrame {
    #[track_caller]
    pub fn enter() -> CallFrame {
        let site = intern(Loc::caller());
        CallFrame(CALL_SITE.with(|c| c.replace(Some(site))))
    }
}

impl Drop for CallFrame {
    fn drop(&mut self) {
        CALL_SITE.with(|c| c.set(self.0));
    }
}

/// A `'static` copy of `loc`, one per distinct call chain (so building kernels again leaks nothing).
fn intern(loc: Loc) -> &'static Loc {
    static SITES: Mutex<Option<HashMap<Loc, &'static Loc>>> = Mutex::new(None);
    let mut sites = SITES.lock().unwrap_or_else(|e| e.into_inner());
    sites.get_or_insert_with(HashMap::new).entry(loc).or_insert_with(|| Box::leak(Box::new(loc)))
}

/// A memory space, as Pallas-TPU names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemSpace {
    /// High-bandwidth memory (`pl.ANY` / `pltpu.HBM`): reachable only by DMA.
    Hbm,
    /// Vector memory: loads, stores and vector compute.
    Vmem,
    /// Scalar memory: scalar reads and writes, scalar prefetch operands.
    Smem,
}

impl MemSpace {
    pub const fn name(self) -> &'static str {
        match self {
            MemSpace::Hbm => "hbm",
            MemSpace::Vmem => "vmem",
            MemSpace::Smem => "smem",
        }
    }
}

/// One dimension of a ref: a static extent, or a runtime extent with a static upper bound
/// (a dynamic-size slice, e.g. a DMA of `0..=page_size` rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extent {
    Fixed(usize),
    Dynamic { max: usize },
}

impl Extent {
    pub const fn max(self) -> usize {
        match self {
            Extent::Fixed(n) | Extent::Dynamic { max: n } => n,
        }
    }
    pub const fn fixed(self) -> Option<usize> {
        match self {
            Extent::Fixed(n) => Some(n),
            Extent::Dynamic { .. } => None,
        }
    }
}

/// The type of a reference to memory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RefType {
    pub space: MemSpace,
    pub dtype: DType,
    pub shape: Vec<Extent>,
}

impl RefType {
    pub fn fixed(space: MemSpace, dtype: DType, shape: &[usize]) -> RefType {
        RefType { space, dtype, shape: shape.iter().map(|&n| Extent::Fixed(n)).collect() }
    }
    /// The shape if every extent is static.
    pub fn static_shape(&self) -> Option<Vec<usize>> {
        self.shape.iter().map(|e| e.fixed()).collect()
    }
    pub fn max_shape(&self) -> Vec<usize> {
        self.shape.iter().map(|e| e.max()).collect()
    }
}

/// The type of an SSA value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// A scalar in a scalar register.
    Scalar(DType),
    /// A vector (tile) value in vector registers; shapes are static.
    Vector { dtype: DType, shape: Vec<usize> },
    /// A view of a buffer in HBM, VMEM or SMEM.
    Ref(RefType),
    /// An array of semaphores (`shape` may be empty for a single semaphore).
    Sem { kind: SemKind, shape: Vec<usize> },
}

/// What a semaphore counts (Pallas's `pltpu.SemaphoreType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SemKind {
    /// Signalled with the bytes of a DMA when it completes; waited on by `dma_wait` (`DMA`).
    Dma,
    /// Signalled and waited on by the kernel itself (`REGULAR`).
    Regular,
}

impl Type {
    pub fn dtype(&self) -> Option<DType> {
        match self {
            Type::Scalar(d) | Type::Vector { dtype: d, .. } => Some(*d),
            Type::Ref(r) => Some(r.dtype),
            Type::Sem { .. } => None,
        }
    }
    pub fn as_ref(&self) -> Option<&RefType> {
        match self {
            Type::Ref(r) => Some(r),
            _ => None,
        }
    }
}

impl fmt::Display for Extent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Extent::Fixed(n) => write!(f, "{n}"),
            Extent::Dynamic { max } => write!(f, "?<={max}"),
        }
    }
}

/// A tile printed as nested lists (`[[1, 2], [3, 4]]`) from its elements, formatted, in row-major
/// order: what `debug_print` of a tile shows on every backend.
pub fn fmt_tile(shape: &[usize], elems: &[String]) -> String {
    match shape.split_first() {
        None => elems.first().cloned().unwrap_or_default(),
        Some((&n, rest)) => {
            let inner: usize = rest.iter().product();
            let rows: Vec<String> = (0..n).map(|i| fmt_tile(rest, &elems[i * inner..(i + 1) * inner])).collect();
            format!("[{}]", rows.join(", "))
        }
    }
}

pub(crate) fn fmt_shape<T: fmt::Display>(shape: &[T]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Scalar(d) => write!(f, "{d}"),
            Type::Vector { dtype, shape } => write!(f, "vector<{dtype}{}>", fmt_shape(shape)),
            Type::Ref(r) => write!(f, "ref<{} {}{}>", r.space.name(), r.dtype, fmt_shape(&r.shape)),
            Type::Sem { kind: SemKind::Dma, shape } => write!(f, "dma_sem{}", fmt_shape(shape)),
            Type::Sem { kind: SemKind::Regular, shape } => write!(f, "sem{}", fmt_shape(shape)),
        }
    }
}

/// One instruction: an op, its result (if any) and where the author wrote it.
#[derive(Clone, Debug, PartialEq)]
pub struct Inst {
    pub op: Op,
    pub result: Option<ValueId>,
    pub loc: Loc,
}

/// A straight-line sequence of instructions (a region body).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Block {
    /// Unique among the region bodies of a kernel (0 for the kernel body and index maps): passes
    /// key what they learn about a region by it.
    pub id: u32,
    pub insts: Vec<Inst>,
}

/// How a grid axis may be scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DimSemantics {
    /// Iterations are independent (may be split across cores).
    Parallel,
    /// Iterations run in order and may carry state (scratch, SMEM).
    Arbitrary,
}

impl DimSemantics {
    pub const fn name(self) -> &'static str {
        match self {
            DimSemantics::Parallel => "parallel",
            DimSemantics::Arbitrary => "arbitrary",
        }
    }
}

/// What a kernel parameter is, in Pallas's operand order: scalar prefetch, inputs, outputs, scratch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A scalar-prefetch operand: copied to SMEM before the grid starts; readable and writable.
    Prefetch,
    Input,
    Output,
    Scratch,
}

impl Role {
    pub const fn name(self) -> &'static str {
        match self {
            Role::Prefetch => "prefetch",
            Role::Input => "input",
            Role::Output => "output",
            Role::Scratch => "scratch",
        }
    }
}

/// A BlockSpec: the kernel sees one `block_shape` window of the operand per grid step, at element
/// offset `index_map(grid indices) * block_shape`; the window is copied in (inputs) or out (outputs)
/// whenever its block index changes.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockSpec {
    pub block_shape: Vec<usize>,
    /// Where the kernel's view of the block lives (VMEM, or SMEM for small scalar blocks).
    pub space: MemSpace,
    pub index_map: IndexMap,
    /// How many block buffers the pipeline keeps (Pallas's `pipeline_mode=pl.Buffered(n)`; `None`:
    /// Mosaic's default, two). Semantics are the same for any count; VMEM holds `n` blocks.
    pub buffers: Option<usize>,
}

/// A block-index function: grid indices (and the scalar-prefetch refs) → one block index per dim.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexMap {
    pub grid_indices: Vec<ValueId>,
    pub body: Block,
    pub results: Vec<ValueId>,
    pub loc: Loc,
}

/// A kernel parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub role: Role,
    /// The value the kernel body uses (a ref, or a semaphore array).
    pub value: ValueId,
    /// For operands: the whole array the caller passes (space is where it lives: HBM, or SMEM for
    /// scalar prefetch). `None` for scratch.
    pub array: Option<RefType>,
    pub block: Option<BlockSpec>,
    /// For outputs: the input this output aliases (its index among all operands).
    pub alias_of: Option<usize>,
    pub loc: Loc,
}

/// A built kernel: its launch description and body.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    pub name: String,
    pub loc: Loc,
    pub params: Vec<Param>,
    pub grid: Vec<usize>,
    pub semantics: Vec<DimSemantics>,
    pub vmem_limit: Option<usize>,
    pub body: Block,
    /// The type of every value, indexed by `ValueId`.
    pub values: Vec<Type>,
    /// The type of every mutable local, indexed by `VarId`.
    pub vars: Vec<Type>,
}

impl Kernel {
    pub fn ty(&self, v: ValueId) -> &Type {
        &self.values[v.0 as usize]
    }

    /// Operands in launch order (every parameter but scratch).
    pub fn operands(&self) -> impl Iterator<Item = &Param> {
        self.params.iter().filter(|p| p.role != Role::Scratch)
    }

    pub fn inputs(&self) -> impl Iterator<Item = &Param> {
        self.params.iter().filter(|p| matches!(p.role, Role::Prefetch | Role::Input))
    }

    pub fn outputs(&self) -> impl Iterator<Item = &Param> {
        self.params.iter().filter(|p| p.role == Role::Output)
    }

    /// Visits every instruction (depth first, in program order), including index-map bodies.
    pub fn walk(&self, f: &mut dyn FnMut(&Inst)) {
        for p in &self.params {
            if let Some(b) = &p.block {
                b.index_map.body.walk(f);
            }
        }
        self.body.walk(f);
    }
}

impl Block {
    pub fn walk(&self, f: &mut dyn FnMut(&Inst)) {
        for inst in &self.insts {
            f(inst);
            for region in inst.op.regions() {
                region.walk(f);
            }
        }
    }

    /// The variables `blocks` (the regions of one op) assign that are declared outside them: what
    /// the op carries from one iteration or branch to what follows.
    pub fn carried_vars(blocks: &[&Block]) -> Vec<VarId> {
        let mut written = std::collections::BTreeSet::new();
        let mut declared = std::collections::BTreeSet::new();
        for b in blocks {
            b.walk(&mut |i| match &i.op {
                Op::VarSet { var, .. } => {
                    written.insert(*var);
                }
                Op::VarDecl { var, .. } => {
                    declared.insert(*var);
                }
                _ => {}
            });
        }
        written.difference(&declared).copied().collect()
    }
}
