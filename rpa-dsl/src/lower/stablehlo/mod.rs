//! Lowering to pure StableHLO ("discharge", as Pallas's HLO interpret mode does): the whole kernel —
//! grid, BlockSpec copies, DMAs, loads, stores and compute — becomes one `func.func @main` that any
//! StableHLO compiler (here XLA:CPU through PJRT) runs with the semantics of interpret mode.
//!
//! - **State.** Every buffer (each operand's array, each BlockSpec'd operand's block buffer, each
//!   scratch buffer, and one i32 counter per DMA semaphore) is a tensor of its declared shape
//!   threaded through the program as SSA values; narrow floats are kept as their bits (`ui16`,
//!   `ui8`), so that moving them never converts. Aliased outputs share their input's buffer; other
//!   outputs and scratch start as the poison pattern ([`DType::poison_bits`]).
//! - **Tiles.** A first pass records every access; a buffer whose accesses are all boxes with
//!   static starts (e.g. the online-softmax state, indexed by unrolled loop counters) is kept as a
//!   grid of tiles cut at every box bound, each its own SSA value: a store replaces whole tiles (no
//!   `dynamic_update_slice`, which XLA:CPU often performs on a copy of the whole buffer when reads
//!   of the old contents are fused after it) and a region carries only the tiles it writes.
//! - **Refs** are a static description (buffer, dtype, max extents, element strides, packing) plus
//!   runtime scalars (flat offset, dynamic extents, packed row), exactly the views of
//!   `interpret::memory`. A load or store of a window that is a box of the buffer (in its own shape,
//!   or of a reshape whose dims are the ratios of the view's strides) is one `dynamic_slice` /
//!   `dynamic_update_slice` (strided loads add a strided `slice`; packing views a dim of `k` elements
//!   combined with shifts). Other windows compute the flat position of every row of contiguous
//!   elements (`iota · strides + offset`) and `gather`/`scatter` rows of the flattened buffer.
//! - **Dynamic sizes** (ragged DMAs of `0..=max` rows): a static window masked by `iota < size`,
//!   shrunk to a static bound of the size when one is known (`min(n, 8)`). A window that is a box
//!   is one `dynamic_slice` / `select` + `dynamic_update_slice`; if it may run past the buffer (a
//!   dynamic start), its start is clamped into the buffer (as `dynamic_slice` would) and the
//!   values shifted by the difference. Other windows gather and scatter rows, masked-out rows going
//!   to an out-of-bounds position, which XLA skips.
//! - **DMAs** copy at `dma_start`; `dma_wait` only takes its bytes off the semaphore counter (for
//!   race-free programs, which interpret mode checks, this is the same result).
//! - **Control flow.** `for`/`while` become `stablehlo.while` and `if` becomes `stablehlo.if`,
//!   carrying the buffers their bodies write and the mutable locals they assign (as in the Mosaic
//!   lowering); an `if` that writes large buffers becomes two loops of at most one trip (XLA copies
//!   the buffers a conditional passes through, and updates loop-carried ones in place). The grid is
//!   a `stablehlo.while` over the row-major flattened grid that evaluates the index maps, copies
//!   input blocks in when their index changes and output blocks out when the next step's index
//!   differs (or at the last step), predicated with `select`s rather than conditionals.
//! - **Numerics** follow interpret mode: narrow floats are their bits (`ui16`, `ui8`) throughout
//!   and compute in f32, widened and rounded back after every op with integer ops ([`floats`]), so
//!   that no host's native half arithmetic or converter changes a result; float → int casts
//!   truncate and saturate (NaN → 0), integer division truncates, shifts past the width give 0 (or
//!   the sign), float max/min and max/min reductions propagate NaN, `rsqrt` is `1 / sqrt`. XLA:CPU
//!   contracts an f32 `a * b + c` into one fused multiply-add on every host with FMA, and flushes
//!   f32 subnormals to zero, where interpret mode rounds twice and keeps them. `erf` is CHLO's
//!   `chlo.erf` (StableHLO has none; XLA expands it), within 3 ulp of interpret mode's.
//! - **Prints.** `debug_print` appends rows to a log buffer the program returns ([`prints`]).

use crate::dtype::DType;
use crate::error::KernelError;
use crate::ir::schedule::{self, GridDriver};
use crate::ir::view::{row_major, IndexDomain, View};
use crate::ir::*;
use crate::lower::mlir::{join, sanitize, Text};
pub use checks::CheckTable;
use floats::{is_narrow_float, repr};
pub use prints::{PrintLog, PRINT_ROWS};
use std::collections::{BTreeSet, HashMap};

mod boxes;
mod casts;
mod checks;
mod elements;
mod emit;
mod floats;
mod grid;
mod prints;
mod regions;
mod rules;
mod scalars;
mod tiles;
mod views;
mod windows;

type R<T> = Result<T, KernelError>;

/// An `if` whose branches write more than this many bytes of buffers is lowered as loops.
const IF_AS_LOOPS_BYTES: usize = 64 * 1024;

/// A lowered kernel: the module, and what its extra results mean.
pub struct Lowered {
    pub text: String,
    /// In checked mode: the check record (the last result) and what it reports.
    pub checks: Option<CheckTable>,
    /// If the kernel prints: its print count and rows (the two results after the outputs).
    pub prints: Option<PrintLog>,
    /// The shapes of the i32 results after the outputs (print count and rows, check record).
    pub extras: Vec<Vec<usize>>,
}

/// Lowers `kernel` to a StableHLO module whose `@main` takes the scalar-prefetch operands and the
/// inputs (in parameter order, as whole arrays) and returns the outputs (then the print log, if
/// the kernel prints: [`lower_program`]).
pub fn lower(kernel: &Kernel) -> Result<String, KernelError> {
    Ok(lower_program(kernel, false)?.text)
}

/// Lowers `kernel` in checked mode ([`checks`]): `@main` returns one more result, the check record
/// that the table turns into interpret mode's error.
pub fn lower_checked(kernel: &Kernel) -> Result<(String, CheckTable), KernelError> {
    let l = lower_program(kernel, true)?;
    Ok((l.text, l.checks.expect("checked lowering has a table")))
}

/// Lowers `kernel` (in checked mode with `checked`), with what its extra results mean.
pub fn lower_program(kernel: &Kernel, checked: bool) -> Result<Lowered, KernelError> {
    // A first pass records how every buffer is accessed and what each region writes; the second
    // keeps the buffers whose accesses are all static boxes as tiles.
    let mut a = Lowerer::new(kernel, checked)?;
    a.analyzing = true;
    a.module()?;
    let mut l = Lowerer::new(kernel, checked)?;
    l.tiling = a.tilings();
    l.region_writes = std::mem::take(&mut a.region_writes);
    l.module()?;
    let (checks, prints) = (l.check_table(), l.print_log());
    let extra_bufs = l.print_bufs().into_iter().flat_map(|(count, rows)| [count, rows]).chain(l.record_buf());
    let extras = extra_bufs.map(|b| l.bufs[b].shape.clone()).collect();
    Ok(Lowered { text: l.text.into_string(), checks, prints, extras })
}

/// The StableHLO element type (unsigned integers are `ui*`, bool is `i1`).
pub fn elem(dt: DType) -> &'static str {
    match dt {
        DType::F32 => "f32",
        DType::Bf16 => "bf16",
        DType::F16 => "f16",
        DType::F8E4M3 => "f8E4M3FN",
        DType::F8E5M2 => "f8E5M2",
        DType::I32 => "i32",
        DType::U32 => "ui32",
        DType::I16 => "i16",
        DType::U16 => "ui16",
        DType::I8 => "i8",
        DType::U8 => "ui8",
        DType::Bool => "i1",
    }
}

/// `tensor<8x128xf32>` (`tensor<f32>` for a scalar).
pub fn tensor_type(dt: DType, shape: &[usize]) -> String {
    crate::lower::mlir::tensor(elem(dt), shape)
}

/// The type of a value of `dt` in the program (narrow floats are their bits: [`floats::repr`]).
fn ty(dt: DType, shape: &[usize]) -> String {
    tensor_type(repr(dt), shape)
}

fn uint(bits: usize) -> DType {
    match bits {
        32 => DType::U32,
        16 => DType::U16,
        _ => DType::U8,
    }
}

/// The `dense<...>` literal of one element bit pattern.
fn literal(dt: DType, bits: u32) -> String {
    if dt.is_float() {
        let w = dt.bits() / 4;
        format!("0x{bits:0w$X}")
    } else if dt == DType::Bool {
        (bits & 0xff != 0).to_string()
    } else {
        dt.int_from_bits(bits).to_string()
    }
}

fn value_bits(dt: DType, v: f64) -> u32 {
    if dt.is_float() {
        dt.float_to_bits(v)
    } else {
        dt.int_to_bits(v as i64)
    }
}

/// A runtime i32 quantity: an optional SSA scalar plus a static part.
#[derive(Clone, Debug, PartialEq)]
struct IntExpr {
    dynamic: Option<String>,
    constant: i64,
}

impl IntExpr {
    fn of(v: i64) -> IntExpr {
        IntExpr { dynamic: None, constant: v }
    }
    fn dynamic(name: String) -> IntExpr {
        IntExpr { dynamic: Some(name), constant: 0 }
    }
    fn is_static(&self) -> bool {
        self.dynamic.is_none()
    }
}

/// A ref at lowering time: the shared view algebra ([`crate::ir::view`]) over symbolic i32
/// quantities (dynamic extents are SSA scalars).
type RefVal = View<IntExpr>;
/// How view elements map onto buffer elements.
type Pack = crate::ir::view::Pack<IntExpr>;

#[derive(Clone, Debug)]
struct SemVal {
    base: IntExpr,
    shape: Vec<usize>,
    /// The semaphore array's name.
    name: String,
}

#[derive(Clone, Debug)]
/// What an IR value is bound to while lowering.
enum Bound {
    /// A scalar or vector tensor, with its value if it is a known integer.
    Tensor {
        name: String,
        constant: Option<i64>,
    },
    Ref(RefVal),
    Sem(SemVal),
}

enum Init {
    Arg(usize, Vec<usize>),
    Poison,
    Zero,
}

struct Buf {
    /// The name interpret mode gives the buffer (the operand's, `x (block)`, the scratch's).
    name: String,
    /// The element type of the buffer's tensor: narrow floats are kept as their bits (`ui16`,
    /// `ui8`), so that copies, selects and updates of them never convert: XLA:CPU computes bf16 ops
    /// in f32, and a bf16 `dynamic_update_slice` of the KV cache cost a conversion of the whole
    /// cache (the bf16 serving batch took 9.1 s per call with bf16 buffers, 1.8 s with bits).
    dtype: DType,
    /// The declared dtype.
    logical: DType,
    /// The canonical shape the buffer's tensor has (its declared shape), and its element count.
    shape: Vec<usize>,
    len: usize,
    init: Init,
}

struct BlockState {
    param: usize,
    hbm: usize,
    vmem: usize,
    array: Vec<usize>,
    block: Vec<usize>,
    /// The block index copied in / being written, per dim (`-1` before the first step).
    cur: Vec<IntExpr>,
}

/// A window that is one `dynamic_slice` of a reshape of the flat buffer.
struct BoxPlan {
    /// The reshape of the buffer.
    shape: Vec<usize>,
    /// The window's extent in each dim of the reshape.
    sizes: Vec<usize>,
    /// i32 scalar starts.
    starts: Vec<String>,
    /// The starts, if they are known while lowering.
    constant: Option<Vec<i64>>,
    /// The dim of the reshape each (stride, extent) dim of the window is (for extents > 1).
    map: Vec<Option<usize>>,
}

/// A buffer kept as a grid of tiles (separate SSA values) rather than one tensor: every access
/// of it is a box with static starts of its canonical shape, and the tiles are cut at every
/// box's bounds, so an access is whole tiles. A store then replaces tiles (no
/// `dynamic_update_slice`, which XLA:CPU often can only do on a copy of the whole buffer when
/// other reads of the old contents are fused after it), and a region carries only the tiles it
/// writes.
#[derive(Clone, Debug)]
struct Tiling {
    /// Per dim, the sorted tile boundaries, from 0 to the extent.
    bounds: Vec<Vec<usize>>,
}

impl Tiling {
    fn grid(&self) -> Vec<usize> {
        self.bounds.iter().map(|b| b.len() - 1).collect()
    }

    fn count(&self) -> usize {
        self.grid().iter().product()
    }

    /// The tile at grid index `idx`: (flat tile number, starts, sizes).
    fn tile(&self, idx: &[usize]) -> (usize, Vec<usize>, Vec<usize>) {
        let g = self.grid();
        let flat = idx.iter().zip(&g).fold(0, |acc, (&i, &n)| acc * n + i);
        let starts = idx.iter().enumerate().map(|(d, &i)| self.bounds[d][i]).collect();
        let sizes = idx.iter().enumerate().map(|(d, &i)| self.bounds[d][i + 1] - self.bounds[d][i]).collect();
        (flat, starts, sizes)
    }

    /// Per dim, the range of tile indices that the box covers (if its bounds are tile bounds).
    fn cover(&self, starts: &[usize], sizes: &[usize]) -> Option<Vec<(usize, usize)>> {
        (0..self.bounds.len())
            .map(|d| {
                let b = &self.bounds[d];
                let lo = b.binary_search(&starts[d]).ok()?;
                let hi = b.binary_search(&(starts[d] + sizes[d])).ok()?;
                (hi > lo).then_some((lo, hi))
            })
            .collect()
    }

    /// The grid indices of the tiles in `cover`, row-major.
    fn tiles_in(cover: &[(usize, usize)]) -> Vec<Vec<usize>> {
        let mut out = vec![vec![]];
        for &(lo, hi) in cover {
            out = out
                .into_iter()
                .flat_map(|p: Vec<usize>| (lo..hi).map(move |i| [p.clone(), vec![i]].concat()))
                .collect();
        }
        out
    }
}

/// At most this many tiles per buffer.
const MAX_TILES: usize = 1024;

/// What a region carries: a whole buffer or one tile of a tiled buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Buf(usize),
    Tile(usize, usize),
}

/// The region key of the grid loop (other regions are keyed by their IR block's id).
const GRID_KEY: usize = usize::MAX;

/// Where a load or store takes its element coordinates from.
#[derive(Clone, Copy)]
enum Coords<'a> {
    /// Every element of a window (`iota` along each dim).
    Iota,
    /// One element at these i32 scalar indices.
    At(&'a [String]),
}

/// A predicate known while lowering or only at run time.
type Cond<C> = crate::ir::schedule::Cond<C>;

struct Lowerer<'k> {
    k: &'k Kernel,
    text: Text,
    vals: HashMap<ValueId, Bound>,
    vars: HashMap<VarId, String>,
    bufs: Vec<Buf>,
    /// The current tensor of each buffer that is not tiled.
    cur: Vec<String>,
    /// The tiling of each buffer (from the analysis pass) and the current tiles of tiled ones.
    tiling: Vec<Option<Tiling>>,
    tiles: Vec<Vec<String>>,
    /// Analysis pass: record accesses instead of relying on a tiling.
    analyzing: bool,
    /// Analysis: the boxes (starts, sizes) each buffer is accessed with (`None`: some access is
    /// not a static box).
    boxes: Vec<Option<Vec<(Vec<usize>, Vec<usize>)>>>,
    /// The boxes each region (by key) writes: (buffer, starts, sizes).
    region_writes: HashMap<usize, Vec<(usize, Vec<usize>, Vec<usize>)>>,
    /// The keys of the regions being lowered.
    region_stack: Vec<usize>,
    ref_buf: HashMap<ValueId, usize>,
    /// Static upper bounds of integer scalars (to shrink dynamic-size windows).
    upper: HashMap<ValueId, i64>,
    sem_buf: Option<usize>,
    blocks: Vec<BlockState>,
    grid_idx: Vec<IntExpr>,
    outputs: Vec<usize>,
    args: Vec<(DType, Vec<usize>)>,
    loc: Loc,
    op: &'static str,
    /// Checked mode's buffers and sites.
    checks: Option<checks::CheckState>,
    /// The print log's buffers and sites, if the kernel prints.
    prints: Option<prints::PrintState>,
}

impl<'k> Lowerer<'k> {
    fn new(k: &'k Kernel, checked: bool) -> R<Self> {
        let mut s = Lowerer {
            k,
            text: Text::new(""),
            vals: HashMap::new(),
            vars: HashMap::new(),
            bufs: Vec::new(),
            cur: Vec::new(),
            tiling: Vec::new(),
            tiles: Vec::new(),
            analyzing: false,
            boxes: Vec::new(),
            region_writes: HashMap::new(),
            region_stack: Vec::new(),
            ref_buf: HashMap::new(),
            upper: HashMap::new(),
            sem_buf: None,
            blocks: Vec::new(),
            grid_idx: Vec::new(),
            outputs: Vec::new(),
            args: Vec::new(),
            loc: k.loc,
            op: "kernel",
            checks: None,
            prints: None,
        };
        let mut param_buf: Vec<Option<usize>> = Vec::new();
        let mut sems = 0usize;
        let mut sem_params = Vec::new();
        for (pi, p) in k.params.iter().enumerate() {
            let err = |m: &str| KernelError::single(&k.name, Some(&p.name), p.loc, m);
            match p.role {
                Role::Prefetch | Role::Input => {
                    let arr = p.array.as_ref().ok_or_else(|| err("operand without an array type"))?;
                    let shape = arr.static_shape().ok_or_else(|| err("operand with a dynamic shape"))?;
                    let id = s.add_buf(&p.name, arr.dtype, &shape, Init::Arg(s.args.len(), shape.clone()));
                    s.args.push((arr.dtype, shape.clone()));
                    param_buf.push(Some(id));
                    s.bind_operand(pi, id, arr.dtype, &shape);
                }
                Role::Output => {
                    let arr = p.array.as_ref().ok_or_else(|| err("operand without an array type"))?;
                    let shape = arr.static_shape().ok_or_else(|| err("operand with a dynamic shape"))?;
                    let id = match p.alias_of.and_then(|i| param_buf.get(i).copied().flatten()) {
                        Some(id) => id,
                        None => s.add_buf(&p.name, arr.dtype, &shape, Init::Poison),
                    };
                    s.outputs.push(id);
                    param_buf.push(Some(id));
                    s.bind_operand(pi, id, arr.dtype, &shape);
                }
                Role::Scratch => {
                    param_buf.push(None);
                    match k.ty(p.value) {
                        Type::Ref(r) => {
                            let shape = r.max_shape();
                            let id = s.add_buf(&p.name, r.dtype, &shape, Init::Poison);
                            s.vals.insert(p.value, Bound::Ref(full_ref(id, r.dtype, &shape)));
                            s.ref_buf.insert(p.value, id);
                        }
                        Type::Sem { shape, .. } => {
                            let sem =
                                SemVal { base: IntExpr::of(sems as i64), shape: shape.clone(), name: p.name.clone() };
                            s.vals.insert(p.value, Bound::Sem(sem));
                            sems += shape.iter().product::<usize>().max(1);
                            sem_params.push(p.value);
                        }
                        t => return Err(err(&format!("scratch of unsupported type {t}"))),
                    }
                }
            }
        }
        if sems > 0 {
            let id = s.add_buf("semaphores", DType::I32, &[sems], Init::Zero);
            s.sem_buf = Some(id);
            for v in sem_params {
                s.ref_buf.insert(v, id);
            }
        }
        // Every ref (and semaphore) value views the buffer of its base.
        let mut ref_buf = std::mem::take(&mut s.ref_buf);
        k.walk(&mut |i| match &i.op {
            Op::View { base, .. } | Op::RefReshape { base, .. } | Op::RefBitcast { base, .. } => {
                if let (Some(r), Some(&b)) = (i.result, ref_buf.get(base)) {
                    ref_buf.insert(r, b);
                }
            }
            _ => {}
        });
        s.ref_buf = ref_buf;
        s.enable_prints();
        if checked {
            s.enable_checks();
        }
        Ok(s)
    }

    fn add_buf(&mut self, name: &str, logical: DType, shape: &[usize], init: Init) -> usize {
        let dtype = match logical {
            DType::Bf16 | DType::F16 => DType::U16,
            DType::F8E4M3 | DType::F8E5M2 => DType::U8,
            dt => dt,
        };
        let (name, shape) = (name.to_string(), shape.to_vec());
        self.bufs.push(Buf { name, dtype, logical, len: shape.iter().product(), shape, init });
        self.cur.push(String::new());
        self.tiling.push(None);
        self.tiles.push(Vec::new());
        self.boxes.push(Some(Vec::new()));
        self.bufs.len() - 1
    }

    fn bind_operand(&mut self, pi: usize, hbm: usize, dtype: DType, shape: &[usize]) {
        let p = &self.k.params[pi];
        let id = match &p.block {
            None => hbm,
            Some(bs) => {
                let vmem = self.add_buf(&format!("{} (block)", p.name), dtype, &bs.block_shape, Init::Poison);
                self.blocks.push(BlockState {
                    param: pi,
                    hbm,
                    vmem,
                    array: shape.to_vec(),
                    block: bs.block_shape.clone(),
                    cur: vec![IntExpr::of(-1); bs.block_shape.len()],
                });
                vmem
            }
        };
        let view_shape = p.block.as_ref().map_or(shape.to_vec(), |b| b.block_shape.clone());
        self.vals.insert(p.value, Bound::Ref(full_ref(id, dtype, &view_shape)));
        self.ref_buf.insert(p.value, id);
    }

    fn err(&self, msg: impl Into<String>) -> KernelError {
        KernelError::single(&self.k.name, Some(self.op), self.loc, msg)
    }

    fn result_shape(&self, inst: &Inst) -> Vec<usize> {
        match inst.result.map(|r| self.k.ty(r)) {
            Some(Type::Vector { shape, .. }) => shape.clone(),
            _ => vec![],
        }
    }

    /// An operand broadcast to `shape`.
    fn operand(&mut self, v: ValueId, shape: &[usize]) -> String {
        let (n, dt, sh) = (self.tensor(v), self.value_dtype(v), self.value_shape(v));
        self.bcast(&n, dt, &sh, shape)
    }

    fn inst(&mut self, inst: &'k Inst) -> R<()> {
        self.loc = inst.loc;
        self.op = inst.op.name();
        match &inst.op {
            Op::Const { dtype, value } => self.lower_const(inst, *dtype, *value),
            Op::ProgramId { axis } => self.lower_program_id(inst, *axis),
            Op::NumPrograms { axis } => self.lower_num_programs(inst, *axis),
            Op::Unary { op, x } => self.lower_unary(inst, *op, *x),
            Op::Binary { op, lhs, rhs } => self.lower_binary(inst, *op, *lhs, *rhs),
            Op::Compare { op, lhs, rhs } => self.lower_compare(inst, *op, *lhs, *rhs),
            Op::Select { cond, on_true, on_false } => self.lower_select(inst, *cond, *on_true, *on_false),
            Op::Cast { x, to } => self.lower_cast(inst, *x, *to),
            Op::Bitcast { x, to } => self.lower_bitcast(inst, *x, *to),
            Op::MultipleOf { x, multiple } => self.lower_multiple_of(inst, *x, *multiple),
            Op::Iota { dtype, shape, dim } => self.lower_iota(inst, *dtype, shape, *dim),
            Op::Broadcast { x, shape } => self.lower_broadcast(inst, *x, shape),
            Op::Reshape { x, shape } => self.lower_reshape(inst, *x, shape),
            Op::Slice { x, start, shape } => self.lower_slice(inst, *x, start, shape),
            Op::Concat { xs, axis } => self.lower_concat(inst, xs, *axis),
            Op::Roll { x, shift, axis } => self.lower_roll(inst, *x, *shift, *axis),
            Op::Transpose { x, perm } => self.lower_transpose(inst, *x, perm),
            Op::Extract { x, index } => self.lower_extract(inst, *x, index),
            Op::Reduce { op, x, axis } => self.lower_reduce(inst, *op, *x, *axis),
            Op::ReduceAll { op, x } => self.lower_reduce_all(inst, *op, *x),
            Op::ArgReduce { op, x, axis } => self.lower_arg_reduce(inst, *op, *x, *axis),
            Op::Matmul { lhs, rhs, transpose_lhs, transpose_rhs, acc } => {
                self.lower_matmul(inst, *lhs, *rhs, [*transpose_lhs, *transpose_rhs], *acc)
            }
            Op::View { base, indexers } => self.lower_view(inst, *base, indexers),
            Op::RefReshape { base, shape } => self.lower_ref_reshape(inst, *base, shape),
            Op::RefBitcast { base, to } => self.lower_ref_bitcast(inst, *base, *to),
            Op::Load { src } => self.lower_load(inst, *src),
            Op::LoadStrided { src, strides, shape } => self.lower_load_strided(inst, *src, strides, shape),
            Op::Store { dst, value, mask } => self.lower_store(*dst, *value, *mask),
            Op::StoreStrided { dst, value, strides } => self.lower_store_strided(*dst, *value, strides),
            Op::ScalarLoad { src, indices } => self.lower_scalar_load(inst, *src, indices),
            Op::ScalarStore { dst, indices, value } => self.lower_scalar_store(*dst, indices, *value),
            Op::DmaStart { src, dst, sem } => self.lower_dma_start(*src, *dst, *sem),
            Op::DmaWait { dst, sem, .. } => self.lower_dma_wait(*dst, *sem),
            Op::SemSignal { sem, amount } => self.lower_sem_signal(*sem, *amount),
            Op::SemWait { sem, amount } => self.lower_sem_wait(*sem, *amount),
            Op::VarDecl { var, init } => self.lower_var_decl(*var, *init),
            Op::VarGet { var } => self.lower_var_get(inst, *var),
            Op::VarSet { var, value } => self.lower_var_set(*var, *value),
            Op::For { lo, hi, index, body } => self.lower_for(*lo, *hi, *index, body),
            Op::If { cond, then_body, else_body } => self.lower_if(*cond, then_body, else_body),
            Op::While { cond_body, cond, body } => self.lower_while(cond_body, *cond, body),
            Op::DebugPrint { message, args } => self.lower_debug_print(message, args),
        }
    }
}

/// The key of the region whose body is `b`.
fn key(b: &Block) -> usize {
    b.id as usize
}

fn full_ref(buf: usize, dtype: DType, shape: &[usize]) -> RefVal {
    View::whole(buf, dtype, shape, IntExpr::of(0))
}

/// Element `i` of the result is element `i · strides` of `r`.
fn strided(r: &RefVal, strides: &[usize], shape: &[usize]) -> RefVal {
    r.strided(strides, shape)
}
