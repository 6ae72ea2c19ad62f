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
//!   f32 subnormals to zero, where interpret mode rounds twice and keeps them.

use crate::dtype::DType;
use crate::error::KernelError;
use crate::ir::*;
use crate::lower::mosaic::sanitize;
pub use checks::CheckTable;
use floats::{is_narrow_float, repr};
use std::collections::{BTreeSet, HashMap};

mod checks;
mod floats;

type R<T> = Result<T, KernelError>;

/// An `if` whose branches write more than this many bytes of buffers is lowered as loops.
const IF_AS_LOOPS_BYTES: usize = 64 * 1024;

/// Lowers `kernel` to a StableHLO module whose `@main` takes the scalar-prefetch operands and the
/// inputs (in parameter order, as whole arrays) and returns the outputs.
pub fn lower(kernel: &Kernel) -> Result<String, KernelError> {
    Ok(lower_with(kernel, false)?.0)
}

/// Lowers `kernel` in checked mode ([`checks`]): `@main` returns one more result, the check record
/// that the table turns into interpret mode's error.
pub fn lower_checked(kernel: &Kernel) -> Result<(String, CheckTable), KernelError> {
    let (text, table) = lower_with(kernel, true)?;
    Ok((text, table.expect("checked lowering has a table")))
}

fn lower_with(kernel: &Kernel, checked: bool) -> Result<(String, Option<CheckTable>), KernelError> {
    // A first pass records how every buffer is accessed and what each region writes; the second
    // keeps the buffers whose accesses are all static boxes as tiles.
    let mut a = Lowerer::new(kernel, checked)?;
    a.analyzing = true;
    a.module()?;
    let mut l = Lowerer::new(kernel, checked)?;
    l.tiling = a.tilings();
    l.region_writes = std::mem::take(&mut a.region_writes);
    l.module()?;
    let table = l.check_table();
    Ok((l.out, table))
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
    let dims: String = shape.iter().map(|d| format!("{d}x")).collect();
    format!("tensor<{dims}{}>", elem(dt))
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

fn row_major(shape: &[usize]) -> Vec<i64> {
    let mut s = vec![1i64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1] as i64;
    }
    s
}

fn join<T: std::fmt::Display>(xs: &[T]) -> String {
    xs.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
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
struct Lin {
    dynamic: Option<String>,
    konst: i64,
}

impl Lin {
    fn k(v: i64) -> Lin {
        Lin { dynamic: None, konst: v }
    }
    fn dynamic(name: String) -> Lin {
        Lin { dynamic: Some(name), konst: 0 }
    }
    fn is_static(&self) -> bool {
        self.dynamic.is_none()
    }
}

/// How view elements map onto buffer elements (as `interpret::memory::Pack`).
#[derive(Clone, Debug)]
enum Pack {
    Same,
    /// `k` narrow buffer elements `pos, pos + step, …`; element `j` holds bits `[j·w, (j+1)·w)`.
    Wide {
        k: usize,
        step: i64,
    },
    /// Part `r % k` of buffer element `r / k` along dimension `dim` (`None` once indexed; then
    /// `row` is the fixed row).
    Narrow {
        k: usize,
        dim: Option<usize>,
        row: Lin,
        row_stride: i64,
    },
}

/// A ref at lowering time.
#[derive(Clone, Debug)]
struct RefVal {
    buf: usize,
    dtype: DType,
    /// Static (maximum) extents.
    shape: Vec<usize>,
    /// The runtime extent (an i32 scalar) of each dynamic dimension.
    sizes: Vec<Option<String>>,
    /// Whether the dimension's maximum extent is known to stay inside the buffer from its start
    /// (always for static extents; for a dynamic slice with a static start that fits).
    fits: Vec<bool>,
    /// Strides in buffer elements (for `Narrow`, the packed dimension's entry is unused).
    strides: Vec<i64>,
    offset: Lin,
    pack: Pack,
    /// Built from the whole buffer by indexing and slicing only: each dim is a window of one dim of
    /// the buffer's canonical shape (so the offset's digits in that shape are the window's starts).
    canon: bool,
}

#[derive(Clone, Debug)]
struct SemVal {
    base: Lin,
    shape: Vec<usize>,
    /// The semaphore array's name.
    name: String,
}

#[derive(Clone, Debug)]
enum Lv {
    /// A scalar or vector tensor, with its value if it is a known integer.
    T {
        name: String,
        konst: Option<i64>,
    },
    R(RefVal),
    S(SemVal),
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

struct BlockSt {
    param: usize,
    hbm: usize,
    vmem: usize,
    array: Vec<usize>,
    block: Vec<usize>,
    /// The block index copied in / being written, per dim (`-1` before the first step).
    cur: Vec<Lin>,
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
    konst: Option<Vec<i64>>,
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

/// The region key of the grid loop (other regions are keyed by the address of their IR block).
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
enum Cond {
    Static(bool),
    Dyn(String),
}

struct Lowerer<'k> {
    k: &'k Kernel,
    out: String,
    indent: usize,
    next: usize,
    vals: HashMap<ValueId, Lv>,
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
    blocks: Vec<BlockSt>,
    grid_idx: Vec<Lin>,
    outputs: Vec<usize>,
    args: Vec<(DType, Vec<usize>)>,
    loc: Loc,
    op: &'static str,
    /// Checked mode's buffers and sites.
    checks: Option<checks::CheckState>,
}

impl<'k> Lowerer<'k> {
    fn new(k: &'k Kernel, checked: bool) -> R<Self> {
        let mut s = Lowerer {
            k,
            out: String::new(),
            indent: 0,
            next: 0,
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
                            s.vals.insert(p.value, Lv::R(full_ref(id, r.dtype, &shape)));
                            s.ref_buf.insert(p.value, id);
                        }
                        Type::Sem { shape } => {
                            let sem = SemVal { base: Lin::k(sems as i64), shape: shape.clone(), name: p.name.clone() };
                            s.vals.insert(p.value, Lv::S(sem));
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
                self.blocks.push(BlockSt {
                    param: pi,
                    hbm,
                    vmem,
                    array: shape.to_vec(),
                    block: bs.block_shape.clone(),
                    cur: vec![Lin::k(-1); bs.block_shape.len()],
                });
                vmem
            }
        };
        let view_shape = p.block.as_ref().map_or(shape.to_vec(), |b| b.block_shape.clone());
        self.vals.insert(p.value, Lv::R(full_ref(id, dtype, &view_shape)));
        self.ref_buf.insert(p.value, id);
    }

    fn err(&self, msg: impl Into<String>) -> KernelError {
        KernelError::single(&self.k.name, Some(self.op), self.loc, msg)
    }

    // ------------------------------------------------------------------------------------ text

    fn tmp(&mut self) -> String {
        self.next += 1;
        format!("%{}", self.next)
    }

    fn line(&mut self, s: &str) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(s);
        self.out.push('\n');
    }

    /// Emits `%t = rhs` and returns `%t`.
    fn emit(&mut self, rhs: String) -> String {
        let t = self.tmp();
        self.line(&format!("{t} = {rhs}"));
        t
    }

    fn splat_bits(&mut self, dt: DType, shape: &[usize], bits: u32) -> String {
        self.emit(format!("stablehlo.constant dense<{}> : {}", literal(repr(dt), bits), ty(dt, shape)))
    }

    /// Buffer `b` filled with its declared dtype's poison pattern.
    fn poisoned(&mut self, b: usize) -> String {
        let (dt, shape) = (self.bufs[b].dtype, self.bufs[b].shape.clone());
        self.splat_bits(dt, &shape, self.bufs[b].logical.poison_bits())
    }

    fn splat(&mut self, dt: DType, shape: &[usize], v: f64) -> String {
        self.splat_bits(dt, shape, value_bits(dt, v))
    }

    fn iconst(&mut self, v: i64) -> String {
        self.splat(DType::I32, &[], v as f64)
    }

    fn bin(&mut self, op: &str, a: &str, b: &str, dt: DType, shape: &[usize]) -> String {
        self.emit(format!("stablehlo.{op} {a}, {b} : {}", ty(dt, shape)))
    }

    fn un(&mut self, op: &str, a: &str, dt: DType, shape: &[usize]) -> String {
        self.emit(format!("stablehlo.{op} {a} : {}", ty(dt, shape)))
    }

    /// Converts values (floats round to nearest even; narrow floats go through f32 with integer ops).
    fn convert(&mut self, a: &str, from: DType, to: DType, shape: &[usize]) -> String {
        if from == to {
            return a.to_string();
        }
        if is_narrow_float(from) {
            let x = self.widen(a, from, shape);
            return self.convert(&x, DType::F32, to, shape);
        }
        if is_narrow_float(to) {
            let x = match from {
                DType::I32 | DType::U32 => self.int_to_f32_odd(a, from, shape),
                _ => self.convert(a, from, DType::F32, shape),
            };
            return self.narrow(&x, to, shape);
        }
        self.emit(format!("stablehlo.convert {a} : ({}) -> {}", ty(from, shape), ty(to, shape)))
    }

    fn bitcast(&mut self, a: &str, from: DType, to: DType, shape: &[usize]) -> String {
        if elem(repr(from)) == elem(repr(to)) {
            return a.to_string();
        }
        self.emit(format!("stablehlo.bitcast_convert {a} : ({}) -> {}", ty(from, shape), ty(to, shape)))
    }

    fn compare(&mut self, dir: &str, a: &str, b: &str, dt: DType, shape: &[usize]) -> String {
        if is_narrow_float(dt) {
            let (a, b) = (self.widen(a, dt, shape), self.widen(b, dt, shape));
            return self.compare(dir, &a, &b, DType::F32, shape);
        }
        let kind = if dt.is_float() {
            "FLOAT"
        } else if dt.is_signed_int() {
            "SIGNED"
        } else {
            "UNSIGNED"
        };
        let t = ty(dt, shape);
        self.emit(format!("stablehlo.compare {dir}, {a}, {b}, {kind} : ({t}, {t}) -> {}", ty(DType::Bool, shape)))
    }

    fn select(&mut self, p: &str, a: &str, b: &str, pshape: &[usize], dt: DType, shape: &[usize]) -> String {
        let t = ty(dt, shape);
        self.emit(format!("stablehlo.select {p}, {a}, {b} : ({}, {t}, {t}) -> {t}", ty(DType::Bool, pshape)))
    }

    /// Numpy broadcasting (dims aligned at the right).
    fn bcast(&mut self, a: &str, dt: DType, from: &[usize], to: &[usize]) -> String {
        if from == to {
            return a.to_string();
        }
        let dims: Vec<usize> = (to.len() - from.len()..to.len()).collect();
        self.emit(format!(
            "stablehlo.broadcast_in_dim {a}, dims = [{}] : ({}) -> {}",
            join(&dims),
            ty(dt, from),
            ty(dt, to)
        ))
    }

    fn reshape(&mut self, a: &str, dt: DType, from: &[usize], to: &[usize]) -> String {
        if from == to {
            return a.to_string();
        }
        self.emit(format!("stablehlo.reshape {a} : ({}) -> {}", ty(dt, from), ty(dt, to)))
    }

    fn iota(&mut self, dt: DType, shape: &[usize], dim: usize) -> String {
        if is_narrow_float(dt) {
            let i = self.iota(DType::I32, shape, dim);
            return self.convert(&i, DType::I32, dt, shape);
        }
        self.emit(format!("stablehlo.iota dim = {dim} : {}", ty(dt, shape)))
    }

    fn dyn_slice(&mut self, a: &str, dt: DType, from: &[usize], starts: &[String], sizes: &[usize]) -> String {
        if sizes == from {
            // The whole tensor (its starts can only be 0).
            return a.to_string();
        }
        let idx_t = vec![ty(DType::I32, &[]); starts.len()];
        self.emit(format!(
            "stablehlo.dynamic_slice {a}, {}, sizes = [{}] : ({}, {}) -> {}",
            starts.join(", "),
            join(sizes),
            ty(dt, from),
            idx_t.join(", "),
            ty(dt, sizes)
        ))
    }

    fn dyn_update(
        &mut self,
        a: &str,
        upd: &str,
        dt: DType,
        shape: &[usize],
        ushape: &[usize],
        starts: &[String],
    ) -> String {
        if ushape == shape {
            return upd.to_string();
        }
        let idx_t = vec![ty(DType::I32, &[]); starts.len()];
        self.emit(format!(
            "stablehlo.dynamic_update_slice {a}, {upd}, {} : ({}, {}, {}) -> {}",
            starts.join(", "),
            ty(dt, shape),
            ty(dt, ushape),
            idx_t.join(", "),
            ty(dt, shape)
        ))
    }

    fn reduce(&mut self, x: &str, dt: DType, shape: &[usize], axis: usize, op: &str, init_bits: u32) -> String {
        let init = self.splat_bits(dt, &[], init_bits);
        let out: Vec<usize> = shape.iter().enumerate().filter(|&(d, _)| d != axis).map(|(_, &n)| n).collect();
        let res = self.tmp();
        let (a, b) = (self.tmp(), self.tmp());
        let st = ty(dt, &[]);
        self.line(&format!("{res} = \"stablehlo.reduce\"({x}, {init}) ({{"));
        self.line(&format!("^bb0({a}: {st}, {b}: {st}):"));
        self.indent += 1;
        let c = if dt.is_float() && (op == "maximum" || op == "minimum") {
            // NaN-propagating (XLA:CPU's vectorised max/min reductions drop NaNs; interpret mode
            // propagates them), in the reducer itself rather than with a second reduction.
            self.float_minmax(op, &a, &b, dt, &[])
        } else {
            self.bin(op, &a, &b, dt, &[])
        };
        self.line(&format!("stablehlo.return {c} : {st}"));
        self.indent -= 1;
        self.line(&format!("}}) {{dimensions = array<i64: {axis}>}} : ({}, {st}) -> {}", ty(dt, shape), ty(dt, &out)));
        res
    }

    // ------------------------------------------------------------------------------------ scalars

    fn lin_name(&mut self, l: &Lin) -> String {
        match &l.dynamic {
            None => self.iconst(l.konst),
            Some(d) if l.konst == 0 => d.clone(),
            Some(d) => {
                let c = self.iconst(l.konst);
                self.bin("add", d, &c, DType::I32, &[])
            }
        }
    }

    /// `a + b · scale`.
    fn lin_add(&mut self, a: &Lin, b: &Lin, scale: i64) -> Lin {
        let konst = a.konst + b.konst * scale;
        let dynamic = match (&a.dynamic, &b.dynamic) {
            (x, None) => x.clone(),
            (x, Some(bd)) => {
                let scaled = if scale == 1 {
                    bd.clone()
                } else {
                    let c = self.iconst(scale);
                    self.bin("multiply", bd, &c, DType::I32, &[])
                };
                Some(match x {
                    None => scaled,
                    Some(ad) => self.bin("add", ad, &scaled, DType::I32, &[]),
                })
            }
        };
        Lin { dynamic, konst }
    }

    fn lin_mul(&mut self, a: &Lin, b: &Lin) -> Lin {
        match (a.is_static(), b.is_static()) {
            (true, _) => self.lin_add(&Lin::k(0), b, a.konst),
            (_, true) => self.lin_add(&Lin::k(0), a, b.konst),
            _ => {
                let (x, y) = (self.lin_name(a), self.lin_name(b));
                Lin::dynamic(self.bin("multiply", &x, &y, DType::I32, &[]))
            }
        }
    }

    fn tensor(&self, v: ValueId) -> String {
        match self.vals.get(&v) {
            Some(Lv::T { name, .. }) => name.clone(),
            other => panic!("stablehlo lowering: value {v:?} is not a tensor ({other:?})"),
        }
    }

    fn refval(&self, v: ValueId) -> R<RefVal> {
        match self.vals.get(&v) {
            Some(Lv::R(r)) => Ok(r.clone()),
            _ => Err(self.err(format!("value %v{} is not a ref", v.0))),
        }
    }

    fn semval(&self, v: ValueId) -> R<SemVal> {
        match self.vals.get(&v) {
            Some(Lv::S(s)) => Ok(s.clone()),
            _ => Err(self.err(format!("value %v{} is not a semaphore", v.0))),
        }
    }

    fn vdt(&self, v: ValueId) -> DType {
        self.k.ty(v).dtype().unwrap_or(DType::I32)
    }

    fn vshape(&self, v: ValueId) -> Vec<usize> {
        match self.k.ty(v) {
            Type::Vector { shape, .. } => shape.clone(),
            _ => vec![],
        }
    }

    /// An integer scalar as an i32 `Lin`.
    fn lin_of(&mut self, v: ValueId) -> Lin {
        match self.vals.get(&v) {
            Some(Lv::T { konst: Some(k), .. }) => Lin::k(*k),
            _ => {
                let (n, dt) = (self.tensor(v), self.vdt(v));
                Lin::dynamic(self.convert(&n, dt, DType::I32, &[]))
            }
        }
    }

    fn konst(&self, v: ValueId) -> Option<i64> {
        match self.vals.get(&v) {
            Some(Lv::T { konst, .. }) => *konst,
            _ => None,
        }
    }

    /// A static upper bound of an integer scalar, if one is known.
    fn ub(&self, v: ValueId) -> Option<i64> {
        self.konst(v).or_else(|| self.upper.get(&v).copied())
    }

    /// An upper bound of `a op b` from bounds of the operands (assuming no overflow).
    fn binary_ub(&self, op: BinaryOp, a: ValueId, b: ValueId) -> Option<i64> {
        let (ua, ub, kb) = (self.ub(a), self.ub(b), self.konst(b));
        match op {
            BinaryOp::Min => match (ua, ub) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            },
            BinaryOp::Max => Some(ua?.max(ub?)),
            BinaryOp::Add => Some(ua? + ub?),
            BinaryOp::Sub => Some(ua? - kb?),
            BinaryOp::Mul => match (ua, kb, self.konst(a), ub) {
                (Some(x), Some(c), _, _) | (_, _, Some(c), Some(x)) if c >= 0 => Some(x * c),
                _ => None,
            },
            BinaryOp::Div => match (ua, kb) {
                (Some(x), Some(c)) if c > 0 && x >= 0 => Some(x / c),
                _ => None,
            },
            BinaryOp::Rem => match kb {
                Some(c) if c > 0 => Some(c - 1),
                _ => None,
            },
            _ => None,
        }
    }

    fn bind(&mut self, inst: &Inst, name: String, konst: Option<i64>) {
        if let Some(r) = inst.result {
            self.vals.insert(r, Lv::T { name, konst });
        }
    }

    fn lin_value(&mut self, l: &Lin) -> Lv {
        let name = self.lin_name(l);
        Lv::T { name, konst: l.is_static().then_some(l.konst) }
    }

    // ------------------------------------------------------------------------------------ numerics

    /// Narrow floats compute in f32 (exactly, as interpret mode does).
    fn upcast(&mut self, x: &str, dt: DType, shape: &[usize]) -> (String, DType) {
        if dt.is_float() && dt != DType::F32 {
            (self.convert(x, dt, DType::F32, shape), DType::F32)
        } else {
            (x.to_string(), dt)
        }
    }

    /// `x` limited to `[lo, hi]`, NaN kept (with compares: XLA:CPU's `maximum`/`minimum` propagate
    /// NaN only with some emitters).
    fn clamp(&mut self, x: &str, dt: DType, lo: f64, hi: f64, shape: &[usize]) -> String {
        let (l, h) = (self.splat(dt, shape, lo), self.splat(dt, shape, hi));
        let below = self.compare("LT", x, &l, dt, shape);
        let x = self.select(&below, &l, x, shape, dt, shape);
        let above = self.compare("GT", &x, &h, dt, shape);
        self.select(&above, &h, &x, shape, dt, shape)
    }

    /// Float `maximum`/`minimum` that return NaN if either operand is NaN, as interpret mode.
    fn float_minmax(&mut self, op: &str, a: &str, b: &str, dt: DType, shape: &[usize]) -> String {
        let m = self.bin(op, a, b, dt, shape);
        let na = self.compare("NE", a, a, dt, shape);
        let nb = self.compare("NE", b, b, dt, shape);
        let nan = self.bin("or", &na, &nb, DType::Bool, shape);
        let q = self.splat(dt, shape, f64::NAN);
        self.select(&nan, &q, &m, shape, dt, shape)
    }

    /// The bits of `x` as the unsigned integer of its width (bool: 0/1 in a u8).
    fn bits_of(&mut self, x: &str, dt: DType, shape: &[usize]) -> String {
        let u = uint(dt.bits());
        if dt == DType::Bool {
            self.convert(x, dt, u, shape)
        } else {
            self.bitcast(x, dt, u, shape)
        }
    }

    fn of_bits(&mut self, x: &str, dt: DType, shape: &[usize]) -> String {
        let u = uint(dt.bits());
        if dt == DType::Bool {
            let z = self.splat(u, shape, 0.0);
            self.compare("NE", x, &z, u, shape)
        } else {
            self.bitcast(x, u, dt, shape)
        }
    }

    /// Reinterprets same-width bits.
    fn view_as(&mut self, x: &str, from: DType, to: DType, shape: &[usize]) -> String {
        if from == to {
            return x.to_string();
        }
        if from == DType::Bool || to == DType::Bool {
            let b = self.bits_of(x, from, shape);
            return self.of_bits(&b, to, shape);
        }
        self.bitcast(x, from, to, shape)
    }

    fn cast(&mut self, x: &str, from: DType, to: DType, shape: &[usize]) -> String {
        if from == to {
            return x.to_string();
        }
        if to == DType::Bool {
            let (x, f) = self.upcast(x, from, shape);
            let z = self.splat(f, shape, 0.0);
            return self.compare("NE", &x, &z, f, shape);
        }
        if to.is_float() {
            return self.convert(x, from, to, shape);
        }
        if from.is_float() {
            // Truncate toward zero, saturate to the target's range, NaN → 0.
            let (x, f) = self.upcast(x, from, shape);
            let (lo, hi) = to.finite_range();
            // The largest float ≤ hi (2^31 - 1 is not an f32).
            let mut hi_f = hi as f32;
            if hi_f as f64 > hi {
                hi_f = f32::from_bits(hi_f.to_bits() - 1);
            }
            let c = self.clamp(&x, f, lo, hi_f as f64, shape);
            let r = self.convert(&c, f, to, shape);
            let chi = self.splat(f, shape, hi_f as f64);
            let big = self.compare("GT", &x, &chi, f, shape);
            let top = self.splat(to, shape, hi);
            let r = self.select(&big, &top, &r, shape, to, shape);
            let nan = self.compare("NE", &x, &x, f, shape);
            let zero = self.splat(to, shape, 0.0);
            return self.select(&nan, &zero, &r, shape, to, shape);
        }
        self.convert(x, from, to, shape)
    }

    /// Width-changing vector bitcast: packs `k` rows of the second-minor dimension into one word
    /// (or unpacks them), low bits first, as TPU sublanes do.
    fn repack(&mut self, x: &str, from: DType, to: DType, shape: &[usize]) -> String {
        let rank = shape.len();
        let (fb, tb) = (from.bits(), to.bits());
        let bits = self.bits_of(x, from, shape);
        if tb > fb {
            let k = tb / fb;
            let ut = uint(tb);
            let z = self.convert(&bits, uint(fb), ut, shape);
            let mut split = shape.to_vec();
            split[rank - 2] /= k;
            split.insert(rank - 1, k);
            let z = self.reshape(&z, ut, shape, &split);
            let j = self.iota(ut, &split, rank - 1);
            let w = self.splat(ut, &split, fb as f64);
            let amt = self.bin("multiply", &j, &w, ut, &split);
            let z = self.bin("shift_left", &z, &amt, ut, &split);
            let word = self.reduce(&z, ut, &split, rank - 1, "or", 0);
            let mut out = shape.to_vec();
            out[rank - 2] /= k;
            self.of_bits(&word, to, &out)
        } else {
            let k = fb / tb;
            let uf = uint(fb);
            let mut split = shape.to_vec();
            split.insert(rank - 1, k);
            let dims: Vec<usize> = (0..=rank).filter(|&d| d != rank - 1).collect();
            let z = self.emit(format!(
                "stablehlo.broadcast_in_dim {bits}, dims = [{}] : ({}) -> {}",
                join(&dims),
                ty(uf, shape),
                ty(uf, &split)
            ));
            let j = self.iota(uf, &split, rank - 1);
            let w = self.splat(uf, &split, tb as f64);
            let amt = self.bin("multiply", &j, &w, uf, &split);
            let z = self.bin("shift_right_logical", &z, &amt, uf, &split);
            let z = self.convert(&z, uf, uint(tb), &split);
            let mut out = shape.to_vec();
            out[rank - 2] *= k;
            let z = self.reshape(&z, uint(tb), &split, &out);
            self.of_bits(&z, to, &out)
        }
    }

    // ------------------------------------------------------------------------------------ memory

    /// Whether the window `w` of `r` is a box (one `dynamic_slice`) of some row-major reshape of its
    /// buffer: the reshape has one dimension per window dimension of extent > 1, whose extents are the
    /// ratios of consecutive strides (plus an inner one for the offset's remainder). For views built
    /// by slicing, indexing and reshaping (in bounds, as interpret mode checks), the offset's digits in
    /// that mixed radix are the box's starts.
    ///
    /// Returns the plan and the logical shape of the slice: `w`, with the `k` buffer elements of
    /// each element of a wide (packing) view as an extra dim before the last one.
    fn boxed(&mut self, r: &RefVal, w: &[usize]) -> Option<(BoxPlan, Vec<usize>)> {
        let rank = w.len();
        let mut all = Vec::new();
        let mut logical = Vec::new();
        match r.pack {
            Pack::Same => {
                all.extend((0..rank).map(|d| (r.strides[d], w[d])));
                logical.extend_from_slice(w);
            }
            Pack::Wide { k, step } if rank >= 2 => {
                for (d, &n) in w.iter().enumerate() {
                    all.push((r.strides[d], n));
                    logical.push(n);
                    if d == rank - 2 {
                        all.push((step, k));
                        logical.push(k);
                    }
                }
            }
            _ => return None,
        }
        let mut plan = self.box_plan(r, &all)?;
        // Window dim d is entry d of `all`, or d + 1 past a wide view's packing dim.
        plan.map = (0..rank)
            .map(|d| {
                let i = if matches!(r.pack, Pack::Wide { .. }) && d + 1 == rank { d + 1 } else { d };
                plan.map.get(i).copied().flatten()
            })
            .collect();
        Some((plan, logical))
    }

    /// The box of the (stride, extent) dims `all` at `r`'s offset (see [`Self::boxed`]).
    fn box_plan(&mut self, r: &RefVal, all: &[(i64, usize)]) -> Option<BoxPlan> {
        if let Some(plan) = self.canonical_plan(r, all) {
            return Some(plan);
        }
        let len = self.bufs[r.buf].len as i64;
        let dims: Vec<(i64, usize)> = all.iter().copied().filter(|&(_, n)| n > 1).collect();
        let mut next = 0;
        let map: Vec<Option<usize>> = all
            .iter()
            .map(|&(_, n)| {
                (n > 1).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect();
        let mut shape = Vec::new();
        let mut sizes = Vec::new();
        let mut strides = Vec::new();
        match dims.first() {
            None => {
                shape.push(len as usize);
                sizes.push(1);
                strides.push(1);
            }
            Some(&(s0, _)) => {
                if s0 <= 0 || len % s0 != 0 {
                    return None;
                }
                shape.push((len / s0) as usize);
                for i in 1..dims.len() {
                    let (prev, cur) = (dims[i - 1].0, dims[i].0);
                    if cur <= 0 || cur >= prev || prev % cur != 0 {
                        return None;
                    }
                    shape.push((prev / cur) as usize);
                }
                sizes.extend(dims.iter().map(|&(_, n)| n));
                strides.extend(dims.iter().map(|&(s, _)| s));
                let inner = dims[dims.len() - 1].0;
                if inner > 1 {
                    shape.push(inner as usize);
                    sizes.push(1);
                    strides.push(1);
                }
            }
        }
        if sizes.iter().zip(&shape).any(|(n, e)| n > e) {
            return None;
        }
        // The starts: the offset's digits (the first one is not reduced).
        let mut konst = None;
        let starts = match &r.offset.dynamic {
            None => {
                let o = r.offset.konst;
                let starts: Vec<i64> = (0..shape.len())
                    .map(|i| if i == 0 { o / strides[i] } else { (o / strides[i]) % shape[i] as i64 })
                    .collect();
                if starts.iter().zip(&sizes).zip(&shape).any(|((&s, &n), &e)| s < 0 || s as usize + n > e) {
                    return None;
                }
                konst = Some(starts.clone());
                starts.into_iter().map(|s| self.iconst(s)).collect()
            }
            Some(_) => {
                let o = self.lin_name(&r.offset);
                (0..shape.len())
                    .map(|i| {
                        let q = if strides[i] == 1 {
                            o.clone()
                        } else {
                            let c = self.iconst(strides[i]);
                            self.bin("divide", &o, &c, DType::I32, &[])
                        };
                        if i == 0 {
                            q
                        } else {
                            let c = self.iconst(shape[i] as i64);
                            self.bin("remainder", &q, &c, DType::I32, &[])
                        }
                    })
                    .collect()
            }
        };
        Some(BoxPlan { shape, sizes, starts, konst, map })
    }

    /// The box in the buffer's own (canonical) shape, when each dim of extent > 1 is a window of one
    /// of its dims: the slice then needs no reshape of the buffer, and XLA updates it in place
    /// (a reshape around a `dynamic_update_slice` makes XLA:CPU copy the whole buffer).
    fn canonical_plan(&mut self, r: &RefVal, all: &[(i64, usize)]) -> Option<BoxPlan> {
        let shape = self.bufs[r.buf].shape.clone();
        let cs = row_major(&shape);
        let mut sizes = vec![1usize; shape.len()];
        let mut map = vec![None; all.len()];
        let mut c = 0;
        for (i, &(stride, n)) in all.iter().enumerate().filter(|&(_, &(_, n))| n > 1) {
            while c < shape.len() && !(cs[c] == stride && shape[c] >= n) {
                c += 1;
            }
            if c == shape.len() {
                return None;
            }
            sizes[c] = n;
            map[i] = Some(c);
            c += 1;
        }
        let mut konst = None;
        let starts = match &r.offset.dynamic {
            None => {
                let o = r.offset.konst;
                let starts: Vec<i64> =
                    (0..shape.len()).map(|i| if i == 0 { o / cs[i] } else { (o / cs[i]) % shape[i] as i64 }).collect();
                if o < 0 || starts.iter().zip(&sizes).zip(&shape).any(|((&s, &n), &e)| s as usize + n > e) {
                    return None;
                }
                konst = Some(starts.clone());
                starts.into_iter().map(|s| self.iconst(s)).collect()
            }
            // Only views built by indexing and slicing are known to be aligned to the dims.
            Some(_) if !r.canon => return None,
            Some(_) => {
                let o = self.lin_name(&r.offset);
                self.coords_of(r.buf, &o)
            }
        };
        Some(BoxPlan { shape, sizes, starts, konst, map })
    }

    // ------------------------------------------------------------------------------------ tiles

    /// After the analysis pass: the tiling of each buffer whose accesses were all static boxes
    /// (cut at every box bound), if that makes more than one tile.
    fn tilings(&self) -> Vec<Option<Tiling>> {
        (0..self.bufs.len())
            .map(|b| {
                let boxes = self.boxes[b].as_ref()?;
                let shape = &self.bufs[b].shape;
                let bounds: Vec<Vec<usize>> = (0..shape.len())
                    .map(|d| {
                        let mut cut: BTreeSet<usize> = [0, shape[d]].into();
                        for (st, sz) in boxes {
                            cut.insert(st[d]);
                            cut.insert(st[d] + sz[d]);
                        }
                        cut.into_iter().collect()
                    })
                    .collect();
                let t = Tiling { bounds };
                (t.count() > 1 && t.count() <= MAX_TILES).then_some(t)
            })
            .collect()
    }

    /// Analysis: buffer `b` is accessed with box `plan` (written if `write`).
    fn note_box(&mut self, b: usize, plan: &BoxPlan, write: bool) {
        if !self.analyzing {
            return;
        }
        let shape = self.bufs[b].shape.clone();
        let fixed = match &plan.konst {
            Some(k) if plan.shape == shape && k.iter().all(|&x| x >= 0) => {
                Some((k.iter().map(|&x| x as usize).collect::<Vec<_>>(), plan.sizes.clone()))
            }
            _ => None,
        };
        match (&fixed, &mut self.boxes[b]) {
            (Some(bx), Some(list)) => list.push(bx.clone()),
            _ => self.boxes[b] = None,
        }
        if write {
            let (st, sz) = fixed.unwrap_or_else(|| (vec![0; shape.len()], shape.clone()));
            self.note_write(b, st, sz);
        }
    }

    /// Analysis: buffer `b` is accessed in a way that is not a static box.
    fn note_untiled(&mut self, b: usize, write: bool) {
        if self.analyzing {
            self.boxes[b] = None;
            if write {
                let shape = self.bufs[b].shape.clone();
                self.note_write(b, vec![0; shape.len()], shape);
            }
        }
    }

    fn note_write(&mut self, b: usize, starts: Vec<usize>, sizes: Vec<usize>) {
        for key in self.region_stack.clone() {
            self.region_writes.entry(key).or_default().push((b, starts.clone(), sizes.clone()));
        }
    }

    /// The tiles of tiled buffer `b` covering the static box `plan`, if it is one.
    fn plan_cover(&self, b: usize, plan: &BoxPlan) -> Option<(Tiling, Vec<(usize, usize)>, Vec<usize>)> {
        let t = self.tiling[b].as_ref()?;
        let k = plan.konst.as_ref()?;
        if plan.shape != self.bufs[b].shape || k.iter().any(|&x| x < 0) {
            return None;
        }
        let starts: Vec<usize> = k.iter().map(|&x| x as usize).collect();
        let cover = t.cover(&starts, &plan.sizes)?;
        Some((t.clone(), cover, starts))
    }

    /// The tiles in `cover` of tiled buffer `b`, concatenated: `(value, shape)`.
    fn assemble(
        &mut self,
        b: usize,
        t: &Tiling,
        cover: &[(usize, usize)],
        prefix: &mut Vec<usize>,
    ) -> (String, Vec<usize>) {
        let d = prefix.len();
        if d == cover.len() {
            let (flat, _, sizes) = t.tile(prefix);
            return (self.tiles[b][flat].clone(), sizes);
        }
        let mut parts = Vec::new();
        for i in cover[d].0..cover[d].1 {
            prefix.push(i);
            parts.push(self.assemble(b, t, cover, prefix));
            prefix.pop();
        }
        if parts.len() == 1 {
            return parts.pop().expect("one part");
        }
        let dt = self.bufs[b].dtype;
        let mut shape = parts[0].1.clone();
        shape[d] = parts.iter().map(|p| p.1[d]).sum();
        let names: Vec<String> = parts.iter().map(|p| p.0.clone()).collect();
        let types: Vec<String> = parts.iter().map(|p| ty(dt, &p.1)).collect();
        let v = self.emit(format!(
            "stablehlo.concatenate {}, dim = {d} : ({}) -> {}",
            names.join(", "),
            types.join(", "),
            ty(dt, &shape)
        ));
        (v, shape)
    }

    /// Stores `v` (the box at `starts` of `sizes`) into the tiles of `cover`.
    fn scatter_tiles(
        &mut self,
        b: usize,
        t: &Tiling,
        cover: &[(usize, usize)],
        starts: &[usize],
        sizes: &[usize],
        v: &str,
    ) {
        let dt = self.bufs[b].dtype;
        for idx in Tiling::tiles_in(cover) {
            let (flat, ts, tz) = t.tile(&idx);
            self.tiles[b][flat] = if tz == sizes {
                v.to_string()
            } else {
                let lo: Vec<usize> = ts.iter().zip(starts).map(|(a, b)| a - b).collect();
                self.static_slice(v, dt, sizes, &lo, &tz)
            };
        }
    }

    /// `x[start : start + sizes]` with static bounds.
    fn static_slice(&mut self, x: &str, dt: DType, shape: &[usize], start: &[usize], sizes: &[usize]) -> String {
        if start.iter().all(|&s| s == 0) && sizes == shape {
            return x.to_string();
        }
        let limit: Vec<usize> = start.iter().zip(sizes).map(|(s, n)| s + n).collect();
        self.emit(format!(
            "\"stablehlo.slice\"({x}) {{start_indices = array<i64: {}>, limit_indices = array<i64: {}>, \
             strides = array<i64: {}>}} : ({}) -> {}",
            join(start),
            join(&limit),
            join(&vec![1; shape.len()]),
            ty(dt, shape),
            ty(dt, sizes)
        ))
    }

    /// The whole tensor of buffer `b` (in its canonical shape).
    fn whole(&mut self, b: usize) -> String {
        match self.tiling[b].clone() {
            None => self.cur[b].clone(),
            Some(t) => {
                let cover: Vec<(usize, usize)> = t.grid().iter().map(|&n| (0, n)).collect();
                self.assemble(b, &t, &cover, &mut Vec::new()).0
            }
        }
    }

    /// Sets the whole tensor of buffer `b` (in its canonical shape).
    fn set_whole(&mut self, b: usize, v: &str) {
        match self.tiling[b].clone() {
            None => self.cur[b] = v.to_string(),
            Some(t) => {
                let cover: Vec<(usize, usize)> = t.grid().iter().map(|&n| (0, n)).collect();
                let shape = self.bufs[b].shape.clone();
                if self.tiles[b].len() != t.count() {
                    self.tiles[b] = vec![String::new(); t.count()];
                }
                self.scatter_tiles(b, &t, &cover, &vec![0; shape.len()], &shape, v);
            }
        }
    }

    /// Replaces the whole tensor of buffer `b` (in its canonical shape).
    fn put_whole(&mut self, b: usize, v: &str) {
        if self.analyzing {
            let shape = self.bufs[b].shape.clone();
            self.note_write(b, vec![0; shape.len()], shape);
        }
        self.set_whole(b, v);
    }

    /// The box `plan` of buffer `b`.
    fn box_get(&mut self, b: usize, plan: &BoxPlan) -> String {
        self.note_box(b, plan, false);
        if let Some((t, cover, _)) = self.plan_cover(b, plan) {
            let (v, shape) = self.assemble(b, &t, &cover, &mut Vec::new());
            debug_assert_eq!(shape, plan.sizes);
            return v;
        }
        let dt = self.bufs[b].dtype;
        let nd = self.whole_as(b, &plan.shape);
        self.dyn_slice(&nd, dt, &plan.shape, &plan.starts, &plan.sizes)
    }

    /// Stores `v` into the box `plan` of buffer `b`.
    fn box_put(&mut self, b: usize, plan: &BoxPlan, v: &str) {
        self.note_box(b, plan, true);
        if let Some((t, cover, starts)) = self.plan_cover(b, plan) {
            self.scatter_tiles(b, &t, &cover, &starts, &plan.sizes, v);
            return;
        }
        let dt = self.bufs[b].dtype;
        let nd = self.whole_as(b, &plan.shape);
        let nd = self.dyn_update(&nd, v, dt, &plan.shape, &plan.sizes, &plan.starts);
        let canon = self.bufs[b].shape.clone();
        let nd = self.reshape(&nd, dt, &plan.shape, &canon);
        self.set_whole(b, &nd);
    }

    fn whole_as(&mut self, b: usize, shape: &[usize]) -> String {
        let (dt, canon) = (self.bufs[b].dtype, self.bufs[b].shape.clone());
        let w = self.whole(b);
        self.reshape(&w, dt, &canon, shape)
    }

    /// The buffer's tensor with `shape` (a reshape of its canonical shape), for an access that is
    /// not a box.
    fn get_as(&mut self, b: usize, shape: &[usize]) -> String {
        self.note_untiled(b, false);
        self.whole_as(b, shape)
    }

    /// Sets the buffer's tensor from `v` of `shape`, after an update that is not a box.
    fn put_as(&mut self, b: usize, v: &str, shape: &[usize]) {
        self.note_untiled(b, true);
        let (dt, canon) = (self.bufs[b].dtype, self.bufs[b].shape.clone());
        let v = self.reshape(v, dt, shape, &canon);
        self.set_whole(b, &v);
    }

    fn get_flat(&mut self, b: usize) -> String {
        let len = self.bufs[b].len;
        self.get_as(b, &[len])
    }

    fn put_flat(&mut self, b: usize, v: &str) {
        let len = self.bufs[b].len;
        self.put_as(b, v, &[len]);
    }

    /// A box's elements (`logical`, of the buffer dtype) as the view's elements (`w`): packing views
    /// combine their `k` elements (the dim before the last), low bits first.
    fn box_to_view(&mut self, v: &str, r: &RefVal, w: &[usize], logical: &[usize]) -> String {
        let bdt = self.bufs[r.buf].dtype;
        if logical.len() == w.len() {
            return self.view_as(v, bdt, r.dtype, w);
        }
        let kd = w.len() - 1;
        let (wb, ut) = (bdt.bits(), uint(r.dtype.bits()));
        let bits = self.bits_of(v, bdt, logical);
        let z = self.convert(&bits, uint(wb), ut, logical);
        let j = self.iota(ut, logical, kd);
        let c = self.splat(ut, logical, wb as f64);
        let amt = self.bin("multiply", &j, &c, ut, logical);
        let z = self.bin("shift_left", &z, &amt, ut, logical);
        let word = self.reduce(&z, ut, logical, kd, "or", 0);
        self.of_bits(&word, r.dtype, w)
    }

    /// The view's elements (`w`) as a box's elements (`logical`, of the buffer dtype).
    fn view_to_box(&mut self, v: &str, r: &RefVal, w: &[usize], logical: &[usize]) -> String {
        let bdt = self.bufs[r.buf].dtype;
        if logical.len() == w.len() {
            return self.view_as(v, r.dtype, bdt, w);
        }
        let kd = w.len() - 1;
        let (wb, ut) = (bdt.bits(), uint(r.dtype.bits()));
        let bits = self.bits_of(v, r.dtype, w);
        let b = self.spread(&bits, ut, w, logical);
        let j = self.iota(ut, logical, kd);
        let c = self.splat(ut, logical, wb as f64);
        let amt = self.bin("multiply", &j, &c, ut, logical);
        let b = self.bin("shift_right_logical", &b, &amt, ut, logical);
        let t = self.convert(&b, ut, uint(wb), logical);
        self.of_bits(&t, bdt, logical)
    }

    /// `x` (`w`) repeated along the packing dim of `logical` (if it has one).
    fn spread(&mut self, x: &str, dt: DType, w: &[usize], logical: &[usize]) -> String {
        if logical.len() == w.len() {
            return x.to_string();
        }
        let kd = w.len() - 1;
        let dims: Vec<usize> = (0..logical.len()).filter(|&d| d != kd).collect();
        self.emit(format!(
            "stablehlo.broadcast_in_dim {x}, dims = [{}] : ({}) -> {}",
            join(&dims),
            ty(dt, w),
            ty(dt, logical)
        ))
    }

    /// How many leading window dims need their own index: the rest form a contiguous run of buffer
    /// elements (gathered and scattered as one window), which excludes masked and packed dims.
    fn split(r: &RefVal, w: &[usize], masked: &[bool]) -> usize {
        let packed = match &r.pack {
            Pack::Narrow { dim, .. } => *dim,
            _ => None,
        };
        let mut expected = 1i64;
        let mut split = w.len();
        for d in (0..w.len()).rev() {
            if masked.get(d).copied().unwrap_or(false) || packed == Some(d) {
                break;
            }
            if w[d] != 1 {
                if r.strides[d] != expected {
                    break;
                }
                expected *= w[d] as i64;
            }
            split = d;
        }
        split
    }

    /// The flat position (and, for narrow views, the part index) of each element: over the leading
    /// window dims `outer` (the others at 0) with `Iota`, or of one element with `At`.
    fn addresses(&mut self, r: &RefVal, outer: &[usize], coords: Coords) -> (String, Option<String>) {
        let ish: Vec<usize> = match coords {
            Coords::Iota => outer.to_vec(),
            Coords::At(_) => vec![],
        };
        let i32t = DType::I32;
        let packed = match &r.pack {
            Pack::Narrow { dim, .. } => *dim,
            _ => None,
        };
        let coord = |s: &mut Self, d: usize| -> Option<String> {
            match coords {
                Coords::Iota if d < outer.len() && outer[d] > 1 => Some(s.iota(i32t, &ish, d)),
                Coords::Iota => None,
                Coords::At(c) => Some(c[d].clone()),
            }
        };
        let mut terms: Vec<String> = Vec::new();
        for d in 0..r.shape.len() {
            if packed == Some(d) || r.strides[d] == 0 {
                continue;
            }
            let Some(c) = coord(self, d) else { continue };
            let t = if r.strides[d] == 1 {
                c
            } else {
                let s = self.splat(i32t, &ish, r.strides[d] as f64);
                self.bin("multiply", &c, &s, i32t, &ish)
            };
            terms.push(t);
        }
        let mut konst = r.offset.konst;
        if let Some(o) = &r.offset.dynamic {
            let o = self.bcast(o, i32t, &[], &ish);
            terms.push(o);
        }
        let mut part = None;
        if let Pack::Narrow { k, dim, row, row_stride } = &r.pack {
            let (k, rs) = (*k as i64, *row_stride);
            let c = dim.and_then(|d| coord(self, d));
            match (c, row.is_static()) {
                (None, true) => {
                    konst += (row.konst / k) * rs;
                    part = Some(self.splat(i32t, &ish, (row.konst % k) as f64));
                }
                (c, _) => {
                    let rn = self.lin_name(row);
                    let mut rr = self.bcast(&rn, i32t, &[], &ish);
                    if let Some(c) = c {
                        rr = self.bin("add", &rr, &c, i32t, &ish);
                    }
                    let kk = self.splat(i32t, &ish, k as f64);
                    let q = self.bin("divide", &rr, &kk, i32t, &ish);
                    let p = self.bin("remainder", &rr, &kk, i32t, &ish);
                    let s = self.splat(i32t, &ish, rs as f64);
                    terms.push(self.bin("multiply", &q, &s, i32t, &ish));
                    part = Some(p);
                }
            }
        }
        if konst != 0 || terms.is_empty() {
            let c = self.splat(i32t, &ish, konst as f64);
            terms.push(c);
        }
        let mut pos = terms[0].clone();
        for t in &terms[1..] {
            pos = self.bin("add", &pos, t, i32t, &ish);
        }
        (pos, part)
    }

    /// `pos + delta`.
    fn shift_pos(&mut self, pos: &str, delta: i64, shape: &[usize]) -> String {
        if delta == 0 {
            return pos.to_string();
        }
        let c = self.splat(DType::I32, shape, delta as f64);
        self.bin("add", pos, &c, DType::I32, shape)
    }

    /// Positions with masked-out lanes moved out of bounds (so scatters skip them).
    fn masked_pos(&mut self, pos: &str, mask: Option<&str>, len: usize, ish: &[usize]) -> String {
        match mask {
            None => pos.to_string(),
            Some(m) => {
                let oob = self.splat(DType::I32, ish, len as f64);
                self.select(m, pos, &oob, ish, DType::I32, ish)
            }
        }
    }

    fn and_masks(&mut self, a: Option<String>, b: Option<String>, shape: &[usize]) -> Option<String> {
        match (a, b) {
            (Some(x), Some(y)) => Some(self.bin("and", &x, &y, DType::Bool, shape)),
            (x, y) => x.or(y),
        }
    }

    /// Lanes below the runtime size of each dimension that has one, over the leading dims `outer`.
    fn size_mask(&mut self, sizes: &[Option<String>], outer: &[usize]) -> Option<String> {
        let mut mask: Option<String> = None;
        for (d, s) in sizes.iter().enumerate().take(outer.len()) {
            if let Some(s) = s {
                let i = self.iota(DType::I32, outer, d);
                let s = self.bcast(s, DType::I32, &[], outer);
                let m = self.compare("LT", &i, &s, DType::I32, outer);
                mask = Some(match mask {
                    None => m,
                    Some(a) => self.bin("and", &a, &m, DType::Bool, outer),
                });
            }
        }
        mask
    }

    /// Rows of `c` consecutive buffer elements at positions `pos` (of shape `outer`): `outer ++ [c]`.
    fn gather_rows(&mut self, buf: &str, dt: DType, len: usize, pos: &str, outer: &[usize], c: usize) -> String {
        let k = outer.len();
        let mut out = outer.to_vec();
        out.push(c);
        self.emit(format!(
            "\"stablehlo.gather\"({buf}, {pos}) {{dimension_numbers = #stablehlo.gather<offset_dims = [{k}], \
             start_index_map = [0], index_vector_dim = {k}>, slice_sizes = array<i64: {c}>, indices_are_sorted = false}} \
             : ({}, {}) -> {}",
            ty(dt, &[len]),
            ty(DType::I32, outer),
            ty(dt, &out)
        ))
    }

    /// Writes rows `upd` (`outer ++ [c]`) at positions `pos`, combining with `combiner` (or replacing);
    /// rows at out-of-range positions are skipped.
    fn scatter_rows(
        &mut self,
        buf: &str,
        dt: DType,
        len: usize,
        pos: &str,
        upd: &str,
        outer: &[usize],
        c: usize,
        combiner: Option<&str>,
    ) -> String {
        let k = outer.len();
        let mut ushape = outer.to_vec();
        ushape.push(c);
        let res = self.tmp();
        let (a, b) = (self.tmp(), self.tmp());
        let st = ty(dt, &[]);
        self.line(&format!("{res} = \"stablehlo.scatter\"({buf}, {pos}, {upd}) ({{"));
        self.line(&format!("^bb0({a}: {st}, {b}: {st}):"));
        self.indent += 1;
        match combiner {
            Some(op) => {
                let r = self.bin(op, &a, &b, dt, &[]);
                self.line(&format!("stablehlo.return {r} : {st}"));
            }
            None => self.line(&format!("stablehlo.return {b} : {st}")),
        }
        self.indent -= 1;
        self.line(&format!(
            "}}) {{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [{k}], \
             scatter_dims_to_operand_dims = [0], index_vector_dim = {k}>, indices_are_sorted = false, \
             unique_indices = false}} : ({}, {}, {}) -> {}",
            ty(dt, &[len]),
            ty(DType::I32, outer),
            ty(dt, &ushape),
            ty(dt, &[len])
        ));
        res
    }

    /// The flat position of element `idx` of `r`, if it is known while lowering (not for narrow
    /// views).
    fn static_pos(r: &RefVal, idx: &[Lin]) -> Option<i64> {
        if matches!(r.pack, Pack::Narrow { .. }) || !r.offset.is_static() {
            return None;
        }
        let mut pos = r.offset.konst;
        for (d, i) in idx.iter().enumerate() {
            if r.strides[d] != 0 {
                if !i.is_static() {
                    return None;
                }
                pos += i.konst * r.strides[d];
            }
        }
        Some(pos)
    }

    /// Where element `idx` of `r` lives: the base dtype, its static flat position (if known),
    /// its runtime position and (for narrow packing) its part.
    fn element_at(&mut self, r: &RefVal, idx: &[Lin]) -> (DType, Option<i64>, String, Option<String>) {
        let at = Self::static_pos(r, idx);
        let idx: Vec<String> = idx.iter().map(|l| self.lin_name(l)).collect();
        let (pos, part) = self.addresses(r, &[], Coords::At(&idx));
        (self.bufs[r.buf].dtype, at, pos, part)
    }

    /// One element of `r` at indices `idx`.
    fn read_at(&mut self, r: &RefVal, idx: &[Lin]) -> String {
        let (bdt, at, pos, part) = self.element_at(r, idx);
        match r.pack.clone() {
            Pack::Same => {
                let e = self.elem_get(r.buf, &pos, at);
                self.view_as(&e, bdt, r.dtype, &[])
            }
            Pack::Wide { k, step } => {
                let parts: Vec<String> = (0..k)
                    .map(|j| {
                        let p = self.shift_pos(&pos, j as i64 * step, &[]);
                        self.elem_get(r.buf, &p, at.map(|a| a + j as i64 * step))
                    })
                    .collect();
                self.pack_wide(&parts, bdt, r.dtype, &[])
            }
            Pack::Narrow { .. } => {
                let word = self.elem_get(r.buf, &pos, None);
                self.narrow_part(&word, bdt, r.dtype, &part.expect("narrow part"), &[])
            }
        }
    }

    /// Writes one element of `r` at indices `idx`.
    fn write_at(&mut self, r: &RefVal, idx: &[Lin], val: &str) {
        let (bdt, at, pos, part) = self.element_at(r, idx);
        match r.pack.clone() {
            Pack::Same => {
                let e = self.view_as(val, r.dtype, bdt, &[]);
                self.elem_set(r.buf, &pos, at, &e);
            }
            Pack::Wide { k, step } => {
                let parts = self.unpack_wide(val, r.dtype, bdt, k, &[]);
                for (j, e) in parts.iter().enumerate() {
                    let p = self.shift_pos(&pos, j as i64 * step, &[]);
                    self.elem_set(r.buf, &p, at.map(|a| a + j as i64 * step), e);
                }
            }
            Pack::Narrow { .. } => {
                let word = self.elem_get(r.buf, &pos, None);
                let new = self.set_narrow_part(&word, bdt, val, r.dtype, &part.expect("narrow part"), &[]);
                self.elem_set(r.buf, &pos, None, &new);
            }
        }
    }

    /// The canonical coordinates of flat position `pos` (an i32 scalar) of buffer `b`.
    fn coords_of(&mut self, b: usize, pos: &str) -> Vec<String> {
        let shape = self.bufs[b].shape.clone();
        let strides = row_major(&shape);
        (0..shape.len())
            .map(|d| {
                if shape[d] == 1 {
                    return self.iconst(0);
                }
                let q = if strides[d] == 1 {
                    pos.to_string()
                } else {
                    let c = self.iconst(strides[d]);
                    self.bin("divide", pos, &c, DType::I32, &[])
                };
                if d == 0 {
                    q
                } else {
                    let c = self.iconst(shape[d] as i64);
                    self.bin("remainder", &q, &c, DType::I32, &[])
                }
            })
            .collect()
    }

    /// The one-element box at flat position `pos` (an i32 scalar, `konst` if known) of buffer `b`.
    fn elem_plan(&mut self, b: usize, pos: &str, konst: Option<i64>) -> BoxPlan {
        let shape = self.bufs[b].shape.clone();
        let ones = vec![1; shape.len()];
        match konst {
            Some(p) if p >= 0 && (p as usize) < self.bufs[b].len => {
                let strides = row_major(&shape);
                let k: Vec<i64> = (0..shape.len()).map(|d| (p / strides[d]) % shape[d] as i64).collect();
                let starts = k.iter().map(|&x| self.iconst(x)).collect();
                BoxPlan { shape, sizes: ones, starts, konst: Some(k), map: vec![] }
            }
            _ => {
                let starts = self.coords_of(b, pos);
                BoxPlan { shape, sizes: ones, starts, konst: None, map: vec![] }
            }
        }
    }

    /// Element `pos` (flat, an i32 scalar, `konst` if known) of buffer `b`.
    fn elem_get(&mut self, b: usize, pos: &str, konst: Option<i64>) -> String {
        let dt = self.bufs[b].dtype;
        let plan = self.elem_plan(b, pos, konst);
        let one = self.box_get(b, &plan);
        self.reshape(&one, dt, &plan.sizes, &[])
    }

    /// Sets element `pos` (flat, an i32 scalar, `konst` if known) of buffer `b` to the scalar `v`.
    fn elem_set(&mut self, b: usize, pos: &str, konst: Option<i64>, v: &str) {
        let dt = self.bufs[b].dtype;
        let plan = self.elem_plan(b, pos, konst);
        let one = self.reshape(v, dt, &[], &plan.sizes);
        self.box_put(b, &plan, &one);
    }

    /// Combines `k` narrow elements (of the buffer dtype) into one `to` element, low bits first.
    fn pack_wide(&mut self, parts: &[String], bdt: DType, to: DType, shape: &[usize]) -> String {
        let (wb, ut) = (bdt.bits(), uint(to.bits()));
        let mut acc: Option<String> = None;
        for (j, p) in parts.iter().enumerate() {
            let b = self.bits_of(p, bdt, shape);
            let mut z = self.convert(&b, uint(wb), ut, shape);
            if j > 0 {
                let s = self.splat(ut, shape, (j * wb) as f64);
                z = self.bin("shift_left", &z, &s, ut, shape);
            }
            acc = Some(match acc {
                None => z,
                Some(a) => self.bin("or", &a, &z, ut, shape),
            });
        }
        let acc = acc.expect("k >= 2");
        self.of_bits(&acc, to, shape)
    }

    /// Splits `val` (of the wide dtype `from`) into `k` elements of the buffer dtype.
    fn unpack_wide(&mut self, val: &str, from: DType, bdt: DType, k: usize, shape: &[usize]) -> Vec<String> {
        let (wb, ut) = (bdt.bits(), uint(from.bits()));
        let bits = self.bits_of(val, from, shape);
        (0..k)
            .map(|j| {
                let mut part = bits.clone();
                if j > 0 {
                    let s = self.splat(ut, shape, (j * wb) as f64);
                    part = self.bin("shift_right_logical", &part, &s, ut, shape);
                }
                let part = self.convert(&part, ut, uint(wb), shape);
                self.of_bits(&part, bdt, shape)
            })
            .collect()
    }

    /// The shift (in the word's unsigned type) of narrow part `part`.
    fn part_shift(&mut self, part: &str, wb: usize, nb: usize, shape: &[usize]) -> String {
        let wn = self.splat(DType::I32, shape, nb as f64);
        let sh = self.bin("multiply", part, &wn, DType::I32, shape);
        self.convert(&sh, DType::I32, uint(wb), shape)
    }

    /// Part `part` of each word (of the buffer dtype `bdt`) as a `to` element.
    fn narrow_part(&mut self, word: &str, bdt: DType, to: DType, part: &str, shape: &[usize]) -> String {
        let (wb, nb) = (bdt.bits(), to.bits());
        let bits = self.bits_of(word, bdt, shape);
        let sh = self.part_shift(part, wb, nb, shape);
        let s = self.bin("shift_right_logical", &bits, &sh, uint(wb), shape);
        let t = self.convert(&s, uint(wb), uint(nb), shape);
        self.of_bits(&t, to, shape)
    }

    /// Each word with part `part` replaced by `val` (of dtype `vdt`).
    fn set_narrow_part(
        &mut self,
        word: &str,
        bdt: DType,
        val: &str,
        vdt: DType,
        part: &str,
        shape: &[usize],
    ) -> String {
        let (wb, nb) = (bdt.bits(), vdt.bits());
        let ub = uint(wb);
        let bits = self.bits_of(word, bdt, shape);
        let (data, clear) = self.narrow_fields(val, vdt, ub, part, shape);
        let kept = self.bin("and", &bits, &clear, ub, shape);
        let _ = nb;
        let new = self.bin("or", &kept, &data, ub, shape);
        self.of_bits(&new, bdt, shape)
    }

    /// `val` shifted into place in a word of `ub`, and the mask that clears its field.
    fn narrow_fields(&mut self, val: &str, vdt: DType, ub: DType, part: &str, shape: &[usize]) -> (String, String) {
        let nb = vdt.bits();
        let v = self.bits_of(val, vdt, shape);
        let v = self.convert(&v, uint(nb), ub, shape);
        let sh = self.part_shift(part, ub.bits(), nb, shape);
        let data = self.bin("shift_left", &v, &sh, ub, shape);
        let ones = self.splat(ub, shape, ((1u64 << nb) - 1) as f64);
        let field = self.bin("shift_left", &ones, &sh, ub, shape);
        let clear = self.un("not", &field, ub, shape);
        (data, clear)
    }

    /// Reads the window `w` of `r`. `sizes` are the runtime extents of a dynamic-size window (whose
    /// masked-out lanes may run past the buffer: no `dynamic_slice` then).
    fn read(&mut self, r: &RefVal, w: &[usize], sizes: &[Option<String>]) -> String {
        let (bdt, len) = (self.bufs[r.buf].dtype, self.bufs[r.buf].len);
        let n: usize = w.iter().product();
        if n == 0 {
            return self.splat(r.dtype, w, 0.0);
        }
        let masked: Vec<bool> = (0..w.len()).map(|d| sizes.get(d).is_some_and(Option::is_some)).collect();
        // The lanes past a runtime size are read too (and ignored); a window that may run past the
        // buffer is read where `dynamic_slice` clamps it to, and shifted back.
        if let Some((b, logical)) = self.boxed(r, w) {
            if let Some((b, shifts)) = self.clamped(b, r, w, &masked) {
                let mut blk = self.box_get(r.buf, &b);
                for &(pd, ref by) in &shifts {
                    blk = self.shift_window(&blk, bdt, &b.sizes, pd, by, false);
                }
                let v = self.reshape(&blk, bdt, &b.sizes, &logical);
                return self.box_to_view(&v, r, w, &logical);
            }
        }
        let buf = self.get_flat(r.buf);
        let split = Self::split(r, w, &masked);
        let (outer, c) = (&w[..split], w[split..].iter().product::<usize>());
        let mut rows = outer.to_vec();
        rows.push(c);
        let (pos, part) = self.addresses(r, outer, Coords::Iota);
        let v = match r.pack.clone() {
            Pack::Same => {
                let g = self.gather_rows(&buf, bdt, len, &pos, outer, c);
                self.view_as(&g, bdt, r.dtype, &rows)
            }
            Pack::Wide { k, step } => {
                let parts: Vec<String> = (0..k)
                    .map(|j| {
                        let p = self.shift_pos(&pos, j as i64 * step, outer);
                        self.gather_rows(&buf, bdt, len, &p, outer, c)
                    })
                    .collect();
                self.pack_wide(&parts, bdt, r.dtype, &rows)
            }
            Pack::Narrow { .. } => {
                let g = self.gather_rows(&buf, bdt, len, &pos, outer, c);
                let part = part.expect("narrow part");
                let part = self.bcast_rows(&part, outer, c);
                self.narrow_part(&g, bdt, r.dtype, &part, &rows)
            }
        };
        self.reshape(&v, r.dtype, &rows, w)
    }

    /// The box `b` of the window `w` of `r` with the start of every dynamic-size dim (`sized`) that
    /// may run past the buffer clamped into it (as `dynamic_slice` would): the window then starts
    /// `by` rows before the view, for each such dim `(reshape dim, by)`. `None` if such a dim has
    /// no dim of its own in the box (a gather or scatter then skips the lanes past the size).
    fn clamped(
        &mut self,
        mut b: BoxPlan,
        r: &RefVal,
        w: &[usize],
        sized: &[bool],
    ) -> Option<(BoxPlan, Vec<(usize, String)>)> {
        let mut shifts = Vec::new();
        for d in 0..w.len() {
            if !sized[d] || r.fits[d] || w[d] <= 1 {
                continue;
            }
            let pd = b.map.get(d).copied().flatten()?;
            let (extent, max) = (b.shape[pd] as i64, b.sizes[pd] as i64);
            let start = b.starts[pd].clone();
            let zero = self.iconst(0);
            let lo = self.bin("maximum", &start, &zero, DType::I32, &[]);
            let last = self.iconst(extent - max);
            let clamped = self.bin("minimum", &lo, &last, DType::I32, &[]);
            let by = self.bin("subtract", &start, &clamped, DType::I32, &[]);
            b.starts[pd] = clamped;
            b.konst = None;
            shifts.push((pd, by));
        }
        Some((b, shifts))
    }

    /// `x` moved along dim `d` by the i32 scalar `by` in `[0, extent]` (lanes moved in hold
    /// zeros): `y[i] = x[i + by]` (down), or `y[i + by] = x[i]` (up).
    fn shift_window(&mut self, x: &str, dt: DType, shape: &[usize], d: usize, by: &str, up: bool) -> String {
        let n = shape[d] as i64;
        let pad = self.splat(dt, shape, 0.0);
        let mut wide = shape.to_vec();
        wide[d] *= 2;
        let (first, second) = if up { (pad.as_str(), x) } else { (x, pad.as_str()) };
        let t = ty(dt, shape);
        let cat =
            self.emit(format!("stablehlo.concatenate {first}, {second}, dim = {d} : ({t}, {t}) -> {}", ty(dt, &wide)));
        let start = if up {
            let c = self.iconst(n);
            self.bin("subtract", &c, by, DType::I32, &[])
        } else {
            by.to_string()
        };
        let starts: Vec<String> =
            (0..shape.len()).map(|i| if i == d { start.clone() } else { self.iconst(0) }).collect();
        self.dyn_slice(&cat, dt, &wide, &starts, shape)
    }

    /// An `outer`-shaped tensor repeated along a trailing dim of `c`.
    fn bcast_rows(&mut self, x: &str, outer: &[usize], c: usize) -> String {
        let mut rows = outer.to_vec();
        rows.push(c);
        let dims: Vec<usize> = (0..outer.len()).collect();
        self.emit(format!(
            "stablehlo.broadcast_in_dim {x}, dims = [{}] : ({}) -> {}",
            join(&dims),
            ty(DType::I32, outer),
            ty(DType::I32, &rows)
        ))
    }

    /// Writes `val` to the window `w` of `r`, only where `mask` (elementwise) is true and below the
    /// runtime `sizes` of a dynamic-size window.
    fn write(&mut self, r: &RefVal, w: &[usize], val: &str, mask: Option<&str>, sizes: &[Option<String>]) {
        let (bdt, len) = (self.bufs[r.buf].dtype, self.bufs[r.buf].len);
        let n: usize = w.iter().product();
        if n == 0 {
            return;
        }
        let masked: Vec<bool> =
            (0..w.len()).map(|d| mask.is_some() || sizes.get(d).is_some_and(Option::is_some)).collect();
        let dynamic = sizes.iter().any(Option::is_some);
        let sized: Vec<bool> = (0..w.len()).map(|d| sizes.get(d).is_some_and(Option::is_some)).collect();
        if let Some((b, logical)) = self.boxed(r, w) {
            if let Some((b, shifts)) = self.clamped(b, r, w, &sized) {
                let v = self.view_to_box(val, r, w, &logical);
                let mut v = self.reshape(&v, bdt, &logical, &b.sizes);
                let lanes = if dynamic { self.size_mask(sizes, w) } else { None };
                let mask = self.and_masks(mask.map(str::to_string), lanes, w);
                let mut m = match mask {
                    Some(m) => {
                        let m = self.spread(&m, DType::Bool, w, &logical);
                        Some(self.reshape(&m, DType::Bool, &logical, &b.sizes))
                    }
                    None => None,
                };
                // A window clamped into the buffer: the values (and lanes) move up to their place.
                for &(pd, ref by) in &shifts {
                    v = self.shift_window(&v, bdt, &b.sizes, pd, by, true);
                    m = m.map(|m| self.shift_window(&m, DType::Bool, &b.sizes, pd, by, true));
                }
                if let Some(m) = m {
                    let old = self.box_get(r.buf, &b);
                    v = self.select(&m, &v, &old, &b.sizes, bdt, &b.sizes);
                }
                self.box_put(r.buf, &b, &v);
                return;
            }
        }
        let buf = self.get_flat(r.buf);
        let split = Self::split(r, w, &masked);
        let (outer, c) = (w[..split].to_vec(), w[split..].iter().product::<usize>());
        let mut rows = outer.clone();
        rows.push(c);
        let val = self.reshape(val, r.dtype, w, &rows);
        // With an elementwise mask, every lane is its own row (split = rank, c = 1).
        let row_mask = match mask {
            Some(m) => Some(self.reshape(m, DType::Bool, w, &outer)),
            None => self.size_mask(sizes, &outer),
        };
        let (pos, part) = self.addresses(r, &outer, Coords::Iota);
        let new = match r.pack.clone() {
            Pack::Same => {
                let v = self.view_as(&val, r.dtype, bdt, &rows);
                let pos = self.masked_pos(&pos, row_mask.as_deref(), len, &outer);
                self.scatter_rows(&buf, bdt, len, &pos, &v, &outer, c, None)
            }
            Pack::Wide { k, step } => {
                let parts = self.unpack_wide(&val, r.dtype, bdt, k, &rows);
                let mut cur = buf;
                for (j, e) in parts.iter().enumerate() {
                    let p = self.shift_pos(&pos, j as i64 * step, &outer);
                    let p = self.masked_pos(&p, row_mask.as_deref(), len, &outer);
                    cur = self.scatter_rows(&cur, bdt, len, &p, e, &outer, c, None);
                }
                cur
            }
            Pack::Narrow { .. } => {
                // Clear the parts' fields, then set them (both combiners commute: several parts of
                // one word may be written by one scatter).
                let ub = uint(bdt.bits());
                let part = part.expect("narrow part");
                let part = self.bcast_rows(&part, &outer, c);
                let words = self.bits_of(&buf, bdt, &[len]);
                let (data, clear) = self.narrow_fields(&val, r.dtype, ub, &part, &rows);
                let pos = self.masked_pos(&pos, row_mask.as_deref(), len, &outer);
                let words = self.scatter_rows(&words, ub, len, &pos, &clear, &outer, c, Some("and"));
                let words = self.scatter_rows(&words, ub, len, &pos, &data, &outer, c, Some("or"));
                self.of_bits(&words, bdt, &[len])
            }
        };
        self.put_flat(r.buf, &new);
    }

    /// `dst[...] = src[...]` for same-shaped refs whose extents may be dynamic (a DMA, or a clipped
    /// BlockSpec window); returns the number of bytes moved.
    fn copy(&mut self, src: &RefVal, dst: &RefVal) -> Lin {
        let rank = src.shape.len();
        let mut w = Vec::with_capacity(rank);
        let mut sizes: Vec<Option<String>> = Vec::with_capacity(rank);
        let mut count = Lin::k(1);
        for d in 0..rank {
            let size = match (&src.sizes[d], &dst.sizes[d]) {
                (None, _) => {
                    w.push(src.shape[d]);
                    None
                }
                (Some(_), None) => {
                    w.push(dst.shape[d]);
                    None
                }
                (Some(s), Some(_)) => {
                    w.push(src.shape[d].min(dst.shape[d]));
                    Some(s.clone())
                }
            };
            let factor = match &size {
                None => Lin::k(w[d] as i64),
                Some(s) => Lin::dynamic(s.clone()),
            };
            count = self.lin_mul(&count, &factor);
            sizes.push(size);
        }
        if w.iter().product::<usize>() != 0 {
            let v = self.read(src, &w, &sizes);
            self.write(dst, &w, &v, None, &sizes);
            self.copy_written(src, dst, &w, &sizes);
        }
        self.lin_mul(&count, &Lin::k(src.dtype.bytes() as i64))
    }

    /// A strided load: the box of the span, then a strided `slice`; else a gather.
    fn read_strided(&mut self, r: &RefVal, steps: &[usize], shape: &[usize]) -> String {
        let span: Vec<usize> =
            shape.iter().zip(steps).map(|(&n, &k)| if n == 0 { 0 } else { (n - 1) * k + 1 }).collect();
        let whole =
            RefVal { shape: span.clone(), sizes: vec![None; span.len()], fits: vec![true; span.len()], ..r.clone() };
        if span.iter().product::<usize>() > 0 {
            if let Some((b, lspan)) = self.boxed(&whole, &span) {
                let bdt = self.bufs[r.buf].dtype;
                let blk = self.box_get(r.buf, &b);
                let v = self.reshape(&blk, bdt, &b.sizes, &lspan);
                // The packing dim (if any) is not strided.
                let (mut lsteps, mut lshape) = (steps.to_vec(), shape.to_vec());
                if lspan.len() > span.len() {
                    lsteps.insert(span.len() - 1, 1);
                    lshape.insert(span.len() - 1, lspan[span.len() - 1]);
                }
                let v = self.emit(format!(
                    "\"stablehlo.slice\"({v}) {{start_indices = array<i64: {}>, limit_indices = array<i64: {}>, \
                     strides = array<i64: {}>}} : ({}) -> {}",
                    join(&vec![0; lspan.len()]),
                    join(&lspan),
                    join(&lsteps),
                    ty(bdt, &lspan),
                    ty(bdt, &lshape)
                ));
                return self.box_to_view(&v, r, shape, &lshape);
            }
        }
        let sv = strided(r, steps, shape);
        self.read(&sv, shape, &[])
    }

    fn sem_add(&mut self, sem: &SemVal, bytes: &Lin, sign: i64) {
        let Some(sb) = self.sem_buf else { return };
        let idx = self.lin_name(&sem.base);
        let at = sem.base.is_static().then_some(sem.base.konst);
        let old = self.elem_get(sb, &idx, at);
        let delta = self.lin_add(&Lin::k(0), bytes, sign);
        let delta = self.lin_name(&delta);
        let new = self.bin("add", &old, &delta, DType::I32, &[]);
        self.elem_set(sb, &idx, at, &new);
    }

    /// Bytes a ref holds at run time.
    fn ref_bytes(&mut self, r: &RefVal) -> Lin {
        let mut count = Lin::k(r.dtype.bytes() as i64);
        for d in 0..r.shape.len() {
            let factor = match r.sizes[d].clone() {
                None => Lin::k(r.shape[d] as i64),
                Some(s) => Lin::dynamic(s),
            };
            count = self.lin_mul(&count, &factor);
        }
        count
    }

    // ------------------------------------------------------------------------------------ views

    fn view(&mut self, base: ValueId, indexers: &[Indexer]) -> R<Lv> {
        match self.vals.get(&base).cloned() {
            Some(Lv::S(s)) => {
                let strides = row_major(&s.shape);
                let mut b = s.base.clone();
                for (d, ix) in indexers.iter().enumerate() {
                    if let Indexer::At(i) = ix {
                        let i = self.lin_of(*i);
                        self.check_sem_index(&s, d, &i);
                        b = self.lin_add(&b, &i, strides[d]);
                    }
                }
                let shape = s.shape[indexers.len().min(s.shape.len())..].to_vec();
                Ok(Lv::S(SemVal { base: b, shape, name: s.name }))
            }
            Some(Lv::R(r)) => {
                let mut v = r.clone();
                let (mut shape, mut sizes, mut strides, mut fits) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                let mut packed_dim = match &r.pack {
                    Pack::Narrow { dim, .. } => *dim,
                    _ => None,
                };
                let mut new_packed = None;
                for d in 0..r.shape.len() {
                    let ix = indexers.get(d).unwrap_or(&Indexer::Full);
                    let is_packed = packed_dim == Some(d);
                    match ix {
                        Indexer::Full => {
                            if is_packed {
                                new_packed = Some(shape.len());
                            }
                            shape.push(r.shape[d]);
                            sizes.push(r.sizes[d].clone());
                            fits.push(r.fits[d]);
                            strides.push(r.strides[d]);
                        }
                        Indexer::At(i) => {
                            let i = self.lin_of(*i);
                            self.check_index(&r, d, &i);
                            if is_packed {
                                if let Pack::Narrow { row, .. } = &mut v.pack {
                                    let old = row.clone();
                                    *row = self.lin_add(&old, &i, 1);
                                }
                                packed_dim = None;
                            } else {
                                v.offset = self.lin_add(&v.offset, &i, r.strides[d]);
                            }
                        }
                        Indexer::Slice { start, size } => {
                            let s = self.lin_of(*start);
                            if is_packed {
                                if let Pack::Narrow { row, .. } = &mut v.pack {
                                    let old = row.clone();
                                    *row = self.lin_add(&old, &s, 1);
                                }
                                new_packed = Some(shape.len());
                            } else {
                                v.offset = self.lin_add(&v.offset, &s, r.strides[d]);
                            }
                            match size {
                                SliceSize::Static(n) => {
                                    self.check_slice(&r, d, &s, &Lin::k(*n as i64), None);
                                    shape.push(*n);
                                    sizes.push(None);
                                    fits.push(true);
                                }
                                SliceSize::Dynamic { size, max } => {
                                    let n = self.lin_of(*size);
                                    self.check_slice(&r, d, &s, &n, Some(*max));
                                    // A known bound of the size shrinks the window.
                                    let max = &self.ub(*size).map_or(*max, |u| (u.max(0) as usize).min(*max));
                                    shape.push(*max);
                                    sizes.push(Some(self.lin_name(&n)));
                                    fits.push(
                                        r.fits[d]
                                            && s.is_static()
                                            && s.konst >= 0
                                            && s.konst as usize + max <= r.shape[d],
                                    );
                                }
                            }
                            strides.push(r.strides[d]);
                        }
                    }
                }
                if let Pack::Narrow { dim, .. } = &mut v.pack {
                    *dim = if packed_dim.is_some() { new_packed } else { None };
                }
                v.shape = shape;
                v.sizes = sizes;
                v.fits = fits;
                v.strides = strides;
                Ok(Lv::R(v))
            }
            _ => Err(self.err("view of a value that is not a ref or semaphore")),
        }
    }

    /// A no-copy reshape of a view (numpy's rules, as interpret mode).
    fn ref_reshape(&self, r: &RefVal, shape: &[usize]) -> Option<RefVal> {
        if matches!(r.pack, Pack::Narrow { .. }) || r.sizes.iter().any(Option::is_some) {
            return None;
        }
        let old: Vec<(usize, i64)> =
            r.shape.iter().copied().zip(r.strides.iter().copied()).filter(|&(n, _)| n != 1).collect();
        let mut new_strides = vec![0i64; shape.len()];
        let (mut oi, mut ni) = (0usize, 0usize);
        let new_nz: Vec<usize> = (0..shape.len()).filter(|&i| shape[i] != 1).collect();
        while oi < old.len() && ni < new_nz.len() {
            let (mut op, mut np) = (old[oi].0, shape[new_nz[ni]]);
            let (oj0, nj0) = (oi, ni);
            while op != np {
                if op < np {
                    oi += 1;
                    op *= old.get(oi)?.0;
                } else {
                    ni += 1;
                    np *= shape[*new_nz.get(ni)?];
                }
            }
            for k in oj0..oi {
                if old[k].1 != old[k + 1].1 * old[k + 1].0 as i64 {
                    return None;
                }
            }
            let mut stride = old[oi].1;
            for k in (nj0..=ni).rev() {
                new_strides[new_nz[k]] = stride;
                stride *= shape[new_nz[k]] as i64;
            }
            oi += 1;
            ni += 1;
        }
        if oi != old.len() || ni != new_nz.len() {
            return None;
        }
        Some(RefVal {
            shape: shape.to_vec(),
            sizes: vec![None; shape.len()],
            fits: vec![true; shape.len()],
            strides: new_strides,
            canon: r.canon && shape == r.shape.as_slice(),
            ..r.clone()
        })
    }

    fn ref_bitcast(&self, r: &RefVal, to: DType) -> R<RefVal> {
        let from = r.dtype;
        if from.bits() == to.bits() {
            return Ok(RefVal { dtype: to, ..r.clone() });
        }
        if !matches!(r.pack, Pack::Same) {
            return Err(self.err("only one width-changing bitcast per view is supported"));
        }
        let rank = r.shape.len();
        if rank < 2 {
            return Err(self.err("a width-changing bitcast needs rank >= 2"));
        }
        let d = rank - 2;
        let mut out = r.clone();
        out.dtype = to;
        out.canon = false;
        if to.bits() > from.bits() {
            let k = to.bits() / from.bits();
            out.shape[d] = r.shape[d] / k;
            out.strides[d] = r.strides[d] * k as i64;
            out.pack = Pack::Wide { k, step: r.strides[d] };
        } else {
            let k = from.bits() / to.bits();
            out.shape[d] = r.shape[d] * k;
            out.pack = Pack::Narrow { k, dim: Some(d), row: Lin::k(0), row_stride: r.strides[d] };
        }
        Ok(out)
    }

    // ------------------------------------------------------------------------------------ regions

    /// Buffers that `blocks` write.
    fn writes(&self, blocks: &[&Block]) -> Vec<usize> {
        let mut w = BTreeSet::new();
        for b in blocks {
            b.walk(&mut |i| match &i.op {
                Op::Store { dst, .. } | Op::StoreStrided { dst, .. } | Op::ScalarStore { dst, .. } => {
                    w.extend(self.ref_buf.get(dst).copied());
                }
                Op::DmaStart { dst, .. } => {
                    w.extend(self.ref_buf.get(dst).copied());
                    w.extend(self.sem_buf);
                }
                Op::DmaWait { .. } => {
                    w.extend(self.sem_buf);
                }
                _ => {}
            });
        }
        self.with_check_buffers(w).into_iter().collect()
    }

    /// Vars written inside `blocks` that were declared outside them.
    fn carried(&self, blocks: &[&Block]) -> Vec<VarId> {
        let mut written = BTreeSet::new();
        let mut declared = BTreeSet::new();
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
        written.difference(&declared).copied().filter(|v| self.vars.contains_key(v)).collect()
    }

    /// What a region (by `keys`) that writes `bufs` carries: whole buffers, and of tiled buffers
    /// the tiles it writes (all of them if the analysis recorded nothing).
    fn carry(&self, keys: &[usize], bufs: &[usize]) -> Vec<Slot> {
        let mut out = Vec::new();
        for &b in bufs {
            let Some(t) = &self.tiling[b] else {
                out.push(Slot::Buf(b));
                continue;
            };
            let mut tiles = BTreeSet::new();
            let mut all = true;
            for key in keys {
                for (wb, st, sz) in self.region_writes.get(key).into_iter().flatten() {
                    if *wb != b {
                        continue;
                    }
                    all = false;
                    match t.cover(st, sz) {
                        Some(cover) => tiles.extend(Tiling::tiles_in(&cover).iter().map(|idx| t.tile(idx).0)),
                        None => tiles.extend(0..t.count()),
                    }
                }
            }
            if all {
                tiles.extend(0..t.count());
            }
            out.extend(tiles.into_iter().map(|i| Slot::Tile(b, i)));
        }
        out
    }

    fn slot_shape(&self, s: Slot) -> (DType, Vec<usize>) {
        match s {
            Slot::Buf(b) => (self.bufs[b].dtype, self.bufs[b].shape.clone()),
            Slot::Tile(b, i) => {
                let t = self.tiling[b].as_ref().expect("a tiled buffer");
                let g = t.grid();
                let mut idx = vec![0; g.len()];
                let mut rest = i;
                for d in (0..g.len()).rev() {
                    idx[d] = rest % g[d];
                    rest /= g[d];
                }
                (self.bufs[b].dtype, t.tile(&idx).2)
            }
        }
    }

    fn slot_bytes(&self, slots: &[Slot]) -> usize {
        slots
            .iter()
            .map(|&s| {
                let (dt, shape) = self.slot_shape(s);
                shape.iter().product::<usize>() * dt.bytes()
            })
            .sum()
    }

    fn state_types(&self, bufs: &[Slot], vars: &[VarId]) -> Vec<String> {
        let mut t: Vec<String> = bufs
            .iter()
            .map(|&s| {
                let (dt, shape) = self.slot_shape(s);
                ty(dt, &shape)
            })
            .collect();
        for v in vars {
            let vt = &self.k.vars[v.0 as usize];
            t.push(match vt {
                Type::Vector { dtype, shape } => ty(*dtype, shape),
                other => ty(other.dtype().unwrap_or(DType::I32), &[]),
            });
        }
        t
    }

    fn state(&self, bufs: &[Slot], vars: &[VarId]) -> Vec<String> {
        let mut s: Vec<String> = bufs
            .iter()
            .map(|&s| match s {
                Slot::Buf(b) => self.cur[b].clone(),
                Slot::Tile(b, i) => self.tiles[b][i].clone(),
            })
            .collect();
        s.extend(vars.iter().map(|v| self.vars[v].clone()));
        s
    }

    fn set_state(&mut self, bufs: &[Slot], vars: &[VarId], names: &[String]) {
        for (i, &s) in bufs.iter().enumerate() {
            match s {
                Slot::Buf(b) => self.cur[b] = names[i].clone(),
                Slot::Tile(b, t) => self.tiles[b][t] = names[i].clone(),
            }
        }
        for (i, v) in vars.iter().enumerate() {
            self.vars.insert(*v, names[bufs.len() + i].clone());
        }
    }

    fn results(res: &str, n: usize) -> Vec<String> {
        if n == 1 {
            vec![res.to_string()]
        } else {
            (0..n).map(|i| format!("{res}#{i}")).collect()
        }
    }

    fn ret(&mut self, names: &[String], types: &[String]) {
        if names.is_empty() {
            self.line("stablehlo.return");
        } else {
            self.line(&format!("stablehlo.return {} : {}", names.join(", "), types.join(", ")));
        }
    }

    /// `if cond { then } else { els }`, carrying `bufs` and `vars`.
    fn region_if(
        &mut self,
        cond: Cond,
        bufs: &[Slot],
        vars: &[VarId],
        then_f: &mut dyn FnMut(&mut Self) -> R<()>,
        else_f: &mut dyn FnMut(&mut Self) -> R<()>,
    ) -> R<()> {
        let c = match cond {
            Cond::Static(true) => return then_f(self),
            Cond::Static(false) => return else_f(self),
            Cond::Dyn(c) => c,
        };
        if bufs.is_empty() && vars.is_empty() {
            return Ok(());
        }
        let types = self.state_types(bufs, vars);
        let before = self.state(bufs, vars);
        let res = self.tmp();
        let n = types.len();
        let lhs = if n == 1 { res.clone() } else { format!("{res}:{n}") };
        self.line(&format!("{lhs} = \"stablehlo.if\"({c}) ({{"));
        self.indent += 1;
        then_f(self)?;
        let ys = self.state(bufs, vars);
        self.ret(&ys, &types);
        self.indent -= 1;
        self.line("}, {");
        self.indent += 1;
        self.set_state(bufs, vars, &before);
        else_f(self)?;
        let ys = self.state(bufs, vars);
        self.ret(&ys, &types);
        self.indent -= 1;
        self.line(&format!("}}) : ({}) -> ({})", ty(DType::Bool, &[]), types.join(", ")));
        let rs = Self::results(&res, n);
        self.set_state(bufs, vars, &rs);
        Ok(())
    }

    /// A `stablehlo.while` over `extra` loop values (name, type) plus `bufs` and `vars`: `cond_f`
    /// gets the extra values and returns the predicate; `body_f` gets them, runs with the state
    /// bound and returns the next extra values. Returns the final extra values.
    fn region_while(
        &mut self,
        extra: &[(String, String)],
        bufs: &[Slot],
        vars: &[VarId],
        cond_f: &mut dyn FnMut(&mut Self, &[String]) -> R<String>,
        body_f: &mut dyn FnMut(&mut Self, &[String]) -> R<Vec<String>>,
    ) -> R<Vec<String>> {
        let mut types: Vec<String> = extra.iter().map(|(_, t)| t.clone()).collect();
        types.extend(self.state_types(bufs, vars));
        let mut inits: Vec<String> = extra.iter().map(|(n, _)| n.clone()).collect();
        inits.extend(self.state(bufs, vars));
        let args: Vec<String> = inits.iter().map(|_| self.tmp()).collect();
        let res = self.tmp();
        let n = types.len();
        let lhs = if n == 1 { res.clone() } else { format!("{res}:{n}") };
        let binds: Vec<String> = args.iter().zip(&inits).map(|(a, i)| format!("{a} = {i}")).collect();
        self.line(&format!("{lhs} = stablehlo.while({}) : {}", binds.join(", "), types.join(", ")));
        self.line("cond {");
        self.indent += 1;
        let ne = extra.len();
        let p = cond_f(self, &args[..ne])?;
        self.line(&format!("stablehlo.return {p} : {}", ty(DType::Bool, &[])));
        self.indent -= 1;
        self.line("} do {");
        self.indent += 1;
        self.set_state(bufs, vars, &args[ne..]);
        let mut ys = body_f(self, &args[..ne])?;
        ys.extend(self.state(bufs, vars));
        self.ret(&ys, &types);
        self.indent -= 1;
        self.line("}");
        let rs = Self::results(&res, n);
        self.set_state(bufs, vars, &rs[ne..]);
        Ok(rs[..ne].to_vec())
    }

    // ------------------------------------------------------------------------------------ module

    fn module(&mut self) -> R<()> {
        let k = self.k;
        let name = sanitize(&k.name);
        self.line(&format!("module @{name} {{"));
        self.indent += 1;
        let outs: Vec<(usize, DType, Vec<usize>)> = k
            .outputs()
            .zip(self.outputs.clone())
            .map(|(p, b)| {
                let a = p.array.as_ref().expect("outputs have an array type");
                (b, a.dtype, a.max_shape())
            })
            .collect();
        // An output that aliases an input is that argument's buffer (`tf.aliasing_output`): with
        // the input donated, XLA updates it in place instead of copying it first.
        let mut alias: HashMap<usize, usize> = HashMap::new();
        for (j, (b, dt, shape)) in outs.iter().enumerate() {
            if let Init::Arg(i, arg_shape) = &self.bufs[*b].init {
                if arg_shape == shape && self.args[*i].0 == *dt {
                    alias.entry(*i).or_insert(j);
                }
            }
        }
        let args: Vec<String> = self
            .args
            .iter()
            .enumerate()
            .map(|(i, (dt, s))| match alias.get(&i) {
                Some(j) => format!("%arg{i}: {} {{tf.aliasing_output = {j} : i32}}", tensor_type(*dt, s)),
                None => format!("%arg{i}: {}", tensor_type(*dt, s)),
            })
            .collect();
        let mut out_types: Vec<String> = outs.iter().map(|(_, dt, s)| tensor_type(*dt, s)).collect();
        if let Some(r) = self.record_buf() {
            out_types.push(tensor_type(DType::I32, &self.bufs[r].shape));
        }
        self.line(&format!("func.func public @main({}) -> ({}) {{", args.join(", "), out_types.join(", ")));
        self.indent += 1;
        for b in 0..self.bufs.len() {
            let (dt, logical, canon) = (self.bufs[b].dtype, self.bufs[b].logical, self.bufs[b].shape.clone());
            let bits = match &self.bufs[b].init {
                Init::Arg(i, shape) => {
                    let shape = shape.clone();
                    let v = self.arg_value(&format!("%arg{i}"), logical, &shape);
                    let v = self.view_as(&v, logical, dt, &shape);
                    let v = self.reshape(&v, dt, &shape, &canon);
                    self.set_whole(b, &v);
                    continue;
                }
                Init::Poison => logical.poison_bits(),
                Init::Zero => value_bits(dt, 0.0),
            };
            match self.tiling[b].clone() {
                None => self.cur[b] = self.splat_bits(dt, &canon, bits),
                Some(t) => {
                    let cover: Vec<(usize, usize)> = t.grid().iter().map(|&n| (0, n)).collect();
                    self.tiles[b] = Tiling::tiles_in(&cover)
                        .iter()
                        .map(|idx| {
                            let sizes = t.tile(idx).2;
                            self.splat_bits(dt, &sizes, bits)
                        })
                        .collect();
                }
            }
        }
        self.grid()?;
        self.check_balance();
        let mut names = Vec::new();
        for (b, logical, shape) in &outs {
            let v = self.whole_as(*b, shape);
            let dt = self.bufs[*b].dtype;
            let v = self.view_as(&v, dt, *logical, shape);
            names.push(self.result_value(&v, *logical, shape));
        }
        if let Some(r) = self.record_buf() {
            names.push(self.whole(r));
        }
        self.loc = k.loc;
        if names.is_empty() {
            self.line("return");
        } else {
            self.line(&format!("return {} : {}", names.join(", "), out_types.join(", ")));
        }
        self.indent -= 1;
        self.line("}");
        self.indent -= 1;
        self.line("}");
        Ok(())
    }

    fn unflatten(&mut self, s: &Lin, grid: &[usize]) -> Vec<Lin> {
        let strides = row_major(grid);
        (0..grid.len())
            .map(|d| match &s.dynamic {
                None => Lin::k((s.konst / strides[d]) % grid[d] as i64),
                Some(_) => {
                    let n = self.lin_name(s);
                    let q = if strides[d] == 1 {
                        n
                    } else {
                        let c = self.iconst(strides[d]);
                        self.bin("divide", &n, &c, DType::I32, &[])
                    };
                    let r = if d == 0 {
                        q
                    } else {
                        let c = self.iconst(grid[d] as i64);
                        self.bin("remainder", &q, &c, DType::I32, &[])
                    };
                    Lin::dynamic(r)
                }
            })
            .collect()
    }

    fn grid(&mut self) -> R<()> {
        let grid = self.k.grid.clone();
        let steps: usize = grid.iter().product();
        if steps == 0 {
            return Ok(());
        }
        if steps == 1 {
            return self.step(&Lin::k(0), &grid);
        }
        // Everything the steps write: the body's buffers, the block buffers and the output arrays.
        let mut bufs: BTreeSet<usize> = self.writes(&[&self.k.body]).into_iter().collect();
        for b in &self.blocks {
            bufs.insert(b.vmem);
            if self.k.params[b.param].role == Role::Output {
                bufs.insert(b.hbm);
            }
        }
        bufs.extend(self.grid_check_buffers());
        let bufs: Vec<usize> = self.with_check_buffers(bufs).into_iter().collect();
        let bufs = self.carry(&[GRID_KEY], &bufs);
        let i32t = ty(DType::I32, &[]);
        let mut extra = vec![(self.iconst(0), i32t.clone())];
        for b in 0..self.blocks.len() {
            for d in 0..self.blocks[b].cur.len() {
                let c = self.blocks[b].cur[d].clone();
                extra.push((self.lin_name(&c), i32t.clone()));
            }
        }
        let last = self.iconst(steps as i64);
        let mut cond = |s: &mut Self, a: &[String]| -> R<String> { Ok(s.compare("LT", &a[0], &last, DType::I32, &[])) };
        let mut body = |s: &mut Self, a: &[String]| -> R<Vec<String>> {
            let mut i = 1;
            for b in 0..s.blocks.len() {
                for d in 0..s.blocks[b].cur.len() {
                    s.blocks[b].cur[d] = Lin::dynamic(a[i].clone());
                    i += 1;
                }
            }
            s.step(&Lin::dynamic(a[0].clone()), &grid)?;
            let one = s.iconst(1);
            let mut ys = vec![s.bin("add", &a[0], &one, DType::I32, &[])];
            for b in 0..s.blocks.len() {
                for d in 0..s.blocks[b].cur.len() {
                    let c = s.blocks[b].cur[d].clone();
                    ys.push(s.lin_name(&c));
                }
            }
            Ok(ys)
        };
        self.region_stack.push(GRID_KEY);
        let r = self.region_while(&extra, &bufs, &[], &mut cond, &mut body);
        self.region_stack.pop();
        r?;
        Ok(())
    }

    /// Evaluates block `b`'s index map at grid indices `g`.
    fn index_map(&mut self, b: usize, g: &[Lin]) -> R<Vec<Lin>> {
        let map = &self.k.params[self.blocks[b].param].block.as_ref().expect("block spec").index_map;
        for (i, gv) in map.grid_indices.iter().enumerate() {
            let l = g.get(i).cloned().unwrap_or(Lin::k(0));
            let lv = self.lin_value(&l);
            self.vals.insert(*gv, lv);
        }
        self.block(&map.body)?;
        Ok(map.results.iter().map(|r| self.lin_of(*r)).collect())
    }

    fn any_ne(&mut self, a: &[Lin], b: &[Lin]) -> Cond {
        if a.iter().chain(b).all(Lin::is_static) {
            return Cond::Static(a.iter().zip(b).any(|(x, y)| x.konst != y.konst));
        }
        let mut acc: Option<String> = None;
        for (x, y) in a.iter().zip(b) {
            let (x, y) = (self.lin_name(x), self.lin_name(y));
            let c = self.compare("NE", &x, &y, DType::I32, &[]);
            acc = Some(match acc {
                None => c,
                Some(p) => self.bin("or", &p, &c, DType::Bool, &[]),
            });
        }
        match acc {
            Some(c) => Cond::Dyn(c),
            None => Cond::Static(false),
        }
    }

    /// One grid step at flat step `s`.
    fn step(&mut self, s: &Lin, grid: &[usize]) -> R<()> {
        let steps: usize = grid.iter().product();
        self.grid_idx = self.unflatten(s, grid);
        let g = self.grid_idx.clone();
        for b in 0..self.blocks.len() {
            let p = &self.k.params[self.blocks[b].param];
            (self.loc, self.op) = (p.loc, "block_spec");
            let idx = self.index_map(b, &g)?;
            self.check_block_index(b, &idx);
            let cur = self.blocks[b].cur.clone();
            let changed = self.any_ne(&idx, &cur);
            let vmem = self.blocks[b].vmem;
            if p.role == Role::Output {
                match &changed {
                    Cond::Static(false) => {}
                    Cond::Static(true) => {
                        let t = self.splat_bits(DType::Bool, &[], 1);
                        self.check_revisit(b, &idx, &t);
                    }
                    Cond::Dyn(c) => self.check_revisit(b, &idx, c),
                }
                // A new output block starts uninitialised.
                match changed {
                    Cond::Static(false) => {}
                    Cond::Static(true) => {
                        let poison = self.poisoned(vmem);
                        self.put_whole(vmem, &poison);
                        self.set_written(vmem, false, None);
                    }
                    Cond::Dyn(c) => {
                        let (dt, shape) = (self.bufs[vmem].dtype, self.bufs[vmem].shape.clone());
                        let poison = self.poisoned(vmem);
                        let old = self.whole(vmem);
                        let new = self.select(&c, &poison, &old, &[], dt, &shape);
                        self.put_whole(vmem, &new);
                        self.set_written(vmem, false, Some(&c));
                    }
                }
            } else {
                let idx2 = idx.clone();
                // Predicated rather than a `stablehlo.if`: XLA copies whole buffers that a conditional
                // updates in place.
                match changed {
                    Cond::Static(false) => {}
                    Cond::Static(true) => self.copy_block(b, &idx2, true, None)?,
                    Cond::Dyn(c) => self.copy_block(b, &idx2, true, Some(&c))?,
                }
            }
            self.blocks[b].cur = idx;
        }
        self.block(&self.k.body)?;
        let outs: Vec<usize> =
            (0..self.blocks.len()).filter(|&b| self.k.params[self.blocks[b].param].role == Role::Output).collect();
        if outs.is_empty() {
            return Ok(());
        }
        // Write back the output blocks whose index changes at the next step (or at the end).
        let next = self.lin_add(s, &Lin::k(1), 1);
        let (is_last, wrapped) = match &next.dynamic {
            None => (Cond::Static(next.konst as usize == steps), Lin::k(next.konst % steps as i64)),
            Some(_) => {
                let n = self.lin_name(&next);
                let c = self.iconst(steps as i64);
                let last = self.compare("EQ", &n, &c, DType::I32, &[]);
                (Cond::Dyn(last), Lin::dynamic(self.bin("remainder", &n, &c, DType::I32, &[])))
            }
        };
        let g_next = self.unflatten(&wrapped, grid);
        for b in outs {
            let p = &self.k.params[self.blocks[b].param];
            (self.loc, self.op) = (p.loc, "block_spec");
            let flush = match &is_last {
                Cond::Static(true) => Cond::Static(true),
                _ => {
                    let nidx = self.index_map(b, &g_next)?;
                    let cur = self.blocks[b].cur.clone();
                    match (&is_last, self.any_ne(&nidx, &cur)) {
                        (_, Cond::Static(true)) => Cond::Static(true),
                        (Cond::Static(false), c) => c,
                        (Cond::Dyn(l), Cond::Static(false)) => Cond::Dyn(l.clone()),
                        (Cond::Dyn(l), Cond::Dyn(c)) => Cond::Dyn(self.bin("or", l, &c, DType::Bool, &[])),
                        (Cond::Static(true), _) => unreachable!(),
                    }
                }
            };
            let cur = self.blocks[b].cur.clone();
            match flush {
                Cond::Static(false) => {}
                Cond::Static(true) => self.copy_block(b, &cur, false, None)?,
                Cond::Dyn(c) => self.copy_block(b, &cur, false, Some(&c))?,
            }
        }
        Ok(())
    }

    /// Copies the window of block `idx` between the operand's array and its block buffer.
    /// With `pred`, only where the scalar `pred` is true (computed either way, selected).
    fn copy_block(&mut self, b: usize, idx: &[Lin], copy_in: bool, pred: Option<&str>) -> R<()> {
        let (hbm, vmem) = (self.blocks[b].hbm, self.blocks[b].vmem);
        let (array, block) = (self.blocks[b].array.clone(), self.blocks[b].block.clone());
        let dt = self.bufs[hbm].dtype;
        let starts: Vec<Lin> = idx.iter().zip(&block).map(|(i, &bd)| self.lin_add(&Lin::k(0), i, bd as i64)).collect();
        let even = array.iter().zip(&block).all(|(&a, &bd)| a % bd == 0);
        if even {
            // Whole blocks: a dynamic slice of the array (in bounds for every valid block index).
            let st: Vec<String> = starts.iter().map(|s| self.lin_name(s)).collect();
            let konst = starts.iter().all(Lin::is_static).then(|| starts.iter().map(|s| s.konst).collect());
            let plan = BoxPlan { shape: array.clone(), sizes: block.clone(), starts: st, konst, map: vec![] };
            if copy_in {
                let new = self.box_get(hbm, &plan);
                let new = match pred {
                    None => new,
                    Some(p) => {
                        let old = self.whole(vmem);
                        self.select(p, &new, &old, &[], dt, &block)
                    }
                };
                self.put_whole(vmem, &new);
                self.set_written(vmem, true, pred);
            } else {
                let mut v = self.whole(vmem);
                if let Some(p) = pred {
                    let old = self.box_get(hbm, &plan);
                    v = self.select(p, &v, &old, &[], dt, &block);
                }
                self.box_put(hbm, &plan, &v);
                self.copy_block_written(vmem, hbm, &plan, pred);
            }
            return Ok(());
        }
        // Edge blocks are clipped: a masked copy of min(block, array - start) elements per dim.
        let hstrides = row_major(&array);
        let mut sizes = Vec::new();
        let mut offset = Lin::k(0);
        for d in 0..array.len() {
            offset = self.lin_add(&offset, &starts[d], hstrides[d]);
            let a = self.iconst(array[d] as i64);
            let s = self.lin_name(&starts[d]);
            let rest = self.bin("subtract", &a, &s, DType::I32, &[]);
            let bd = self.iconst(block[d] as i64);
            let mut size = self.bin("minimum", &rest, &bd, DType::I32, &[]);
            if let (Some(p), 0, false) = (pred, d, copy_in) {
                // Not flushing: an empty copy.
                let zero = self.iconst(0);
                size = self.select(p, &size, &zero, &[], DType::I32, &[]);
            }
            sizes.push(Some(size));
        }
        let href = RefVal {
            buf: hbm,
            dtype: dt,
            shape: block.clone(),
            sizes: sizes.clone(),
            fits: vec![false; block.len()],
            strides: hstrides,
            offset,
            pack: Pack::Same,
            canon: true,
        };
        let vref = RefVal { sizes, ..full_ref(vmem, dt, &block) };
        if copy_in {
            let old = self.whole(vmem);
            let old_written = self.written_buf(vmem).map(|m| (m, self.whole(m)));
            let poison = self.poisoned(vmem);
            self.put_whole(vmem, &poison);
            self.set_written(vmem, false, None);
            self.copy(&href, &vref);
            if let Some(p) = pred {
                let new = self.whole(vmem);
                let new = self.select(p, &new, &old, &[], dt, &block);
                self.put_whole(vmem, &new);
                if let Some((m, old)) = old_written {
                    let (mdt, new) = (self.bufs[m].dtype, self.whole(m));
                    let new = self.select(p, &new, &old, &[], mdt, &block);
                    self.put_whole(m, &new);
                }
            }
        } else {
            self.copy(&vref, &href);
        }
        Ok(())
    }

    // ------------------------------------------------------------------------------------ ops

    fn block(&mut self, b: &'k Block) -> R<()> {
        for inst in &b.insts {
            self.inst(inst)?;
        }
        Ok(())
    }

    /// Lowers `blocks` as the body of the region keyed by `region` (its writes are recorded).
    fn keyed_block(&mut self, region: &'k Block, blocks: &[&'k Block]) -> R<()> {
        self.region_stack.push(key(region));
        let mut r = Ok(());
        for b in blocks {
            r = self.block(b);
            if r.is_err() {
                break;
            }
        }
        self.region_stack.pop();
        r
    }

    fn result_shape(&self, inst: &Inst) -> Vec<usize> {
        match inst.result.map(|r| self.k.ty(r)) {
            Some(Type::Vector { shape, .. }) => shape.clone(),
            _ => vec![],
        }
    }

    /// An operand broadcast to `shape`.
    fn operand(&mut self, v: ValueId, shape: &[usize]) -> String {
        let (n, dt, sh) = (self.tensor(v), self.vdt(v), self.vshape(v));
        self.bcast(&n, dt, &sh, shape)
    }

    fn inst(&mut self, inst: &'k Inst) -> R<()> {
        self.loc = inst.loc;
        self.op = inst.op.name();
        match &inst.op {
            Op::Const { dtype, value } => {
                let (bits, konst) = match value {
                    Literal::Int(i) => {
                        let w = dtype.wrap(*i);
                        (dtype.int_to_bits(w), Some(w))
                    }
                    Literal::Float(f) => {
                        let v = if *dtype == DType::F32 { *f as f32 } else { dtype.round(*f as f32 as f64) as f32 };
                        (dtype.float_to_bits(v as f64), None)
                    }
                };
                let n = self.splat_bits(*dtype, &[], bits);
                self.bind(inst, n, konst.filter(|_| dtype.is_int() || *dtype == DType::Bool));
            }
            Op::ProgramId { axis } => {
                let l = self.grid_idx.get(*axis).cloned().unwrap_or(Lin::k(0));
                let lv = self.lin_value(&l);
                if let Some(r) = inst.result {
                    self.vals.insert(r, lv);
                }
            }
            Op::NumPrograms { axis } => {
                let n = self.k.grid.get(*axis).copied().unwrap_or(1) as i64;
                let c = self.iconst(n);
                self.bind(inst, c, Some(n));
            }
            Op::Unary { op, x } => {
                let (dt, sh, xn) = (self.vdt(*x), self.vshape(*x), self.tensor(*x));
                let r = if dt.is_float() {
                    let (x, f) = self.upcast(&xn, dt, &sh);
                    let y = match op {
                        UnaryOp::Neg => self.un("negate", &x, f, &sh),
                        UnaryOp::Abs => self.un("abs", &x, f, &sh),
                        UnaryOp::Exp => self.un("exponential", &x, f, &sh),
                        UnaryOp::Log => self.un("log", &x, f, &sh),
                        UnaryOp::Tanh => self.un("tanh", &x, f, &sh),
                        UnaryOp::Sqrt => self.un("sqrt", &x, f, &sh),
                        UnaryOp::Rsqrt => {
                            // `1 / sqrt(x)` with both roundings, as interpret mode: the barrier keeps
                            // XLA from rewriting it to its approximate rsqrt.
                            let s = self.un("sqrt", &x, f, &sh);
                            let s = self.emit(format!("stablehlo.optimization_barrier {s} : {}", ty(f, &sh)));
                            let one = self.splat(f, &sh, 1.0);
                            self.bin("divide", &one, &s, f, &sh)
                        }
                        UnaryOp::Recip { .. } => {
                            let one = self.splat(f, &sh, 1.0);
                            self.bin("divide", &one, &x, f, &sh)
                        }
                        UnaryOp::Not => x.clone(),
                    };
                    self.convert(&y, f, dt, &sh)
                } else {
                    match op {
                        UnaryOp::Neg => self.un("negate", &xn, dt, &sh),
                        UnaryOp::Abs => self.un("abs", &xn, dt, &sh),
                        UnaryOp::Not => self.un("not", &xn, dt, &sh),
                        _ => return Err(self.err(format!("`{}` on {dt}", inst.op.name()))),
                    }
                };
                self.bind(inst, r, None);
            }
            Op::Binary { op, lhs, rhs } => {
                let dt = self.vdt(*lhs);
                let sh = self.result_shape(inst);
                let (a, b) = (self.operand(*lhs, &sh), self.operand(*rhs, &sh));
                let konst = match (self.vals.get(lhs), self.vals.get(rhs)) {
                    (Some(Lv::T { konst: Some(x), .. }), Some(Lv::T { konst: Some(y), .. })) if dt == DType::I32 => {
                        let (x, y) = (*x as i32, *y as i32);
                        match op {
                            BinaryOp::Add => Some(x.wrapping_add(y) as i64),
                            BinaryOp::Sub => Some(x.wrapping_sub(y) as i64),
                            BinaryOp::Mul => Some(x.wrapping_mul(y) as i64),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                let r = if dt.is_float() {
                    let (a, f) = self.upcast(&a, dt, &sh);
                    let (b, _) = self.upcast(&b, dt, &sh);
                    let name = match op {
                        BinaryOp::Add => "add",
                        BinaryOp::Sub => "subtract",
                        BinaryOp::Mul => "multiply",
                        BinaryOp::Div => "divide",
                        BinaryOp::Rem => "remainder",
                        BinaryOp::Max => "maximum",
                        BinaryOp::Min => "minimum",
                        _ => return Err(self.err(format!("`{}` on {dt}", inst.op.name()))),
                    };
                    let y = if matches!(op, BinaryOp::Max | BinaryOp::Min) {
                        self.float_minmax(name, &a, &b, f, &sh)
                    } else {
                        self.bin(name, &a, &b, f, &sh)
                    };
                    self.convert(&y, f, dt, &sh)
                } else {
                    let name = match op {
                        BinaryOp::Add => "add",
                        BinaryOp::Sub => "subtract",
                        BinaryOp::Mul => "multiply",
                        BinaryOp::Div => "divide",
                        BinaryOp::Rem => "remainder",
                        BinaryOp::Max => "maximum",
                        BinaryOp::Min => "minimum",
                        BinaryOp::And => "and",
                        BinaryOp::Or => "or",
                        BinaryOp::Xor => "xor",
                        BinaryOp::Shl => "shift_left",
                        BinaryOp::Shr if dt.is_unsigned_int() => "shift_right_logical",
                        BinaryOp::Shr => "shift_right_arithmetic",
                    };
                    if matches!(op, BinaryOp::Div | BinaryOp::Rem) && self.konst(*rhs).is_none_or(|k| k == 0) {
                        self.check_divisor(&b, dt, &sh, *op == BinaryOp::Rem);
                    }
                    self.bin(name, &a, &b, dt, &sh)
                };
                if let (Some(res), true) = (inst.result, dt.is_int() && sh.is_empty()) {
                    if let Some(u) = self.binary_ub(*op, *lhs, *rhs) {
                        self.upper.insert(res, u);
                    }
                }
                self.bind(inst, r, konst);
            }
            Op::Compare { op, lhs, rhs } => {
                let dt = self.vdt(*lhs);
                let sh = self.result_shape(inst);
                let (a, b) = (self.operand(*lhs, &sh), self.operand(*rhs, &sh));
                let (a, f) = self.upcast(&a, dt, &sh);
                let (b, _) = self.upcast(&b, dt, &sh);
                let dir = match op {
                    CmpOp::Eq => "EQ",
                    CmpOp::Ne => "NE",
                    CmpOp::Lt => "LT",
                    CmpOp::Le => "LE",
                    CmpOp::Gt => "GT",
                    CmpOp::Ge => "GE",
                };
                let r = self.compare(dir, &a, &b, f, &sh);
                self.bind(inst, r, None);
            }
            Op::Select { cond, on_true, on_false } => {
                let sh = self.result_shape(inst);
                let dt = self.vdt(*on_true);
                let c = self.operand(*cond, &sh);
                let (a, b) = (self.operand(*on_true, &sh), self.operand(*on_false, &sh));
                let r = self.select(&c, &a, &b, &sh, dt, &sh);
                self.bind(inst, r, None);
            }
            Op::Cast { x, to } => {
                let (dt, sh, xn) = (self.vdt(*x), self.vshape(*x), self.tensor(*x));
                let konst = match self.vals.get(x) {
                    Some(Lv::T { konst: Some(k), .. }) if to.is_int() => Some(to.wrap(*k)),
                    _ => None,
                };
                let r = self.cast(&xn, dt, *to, &sh);
                self.bind(inst, r, konst);
            }
            Op::Bitcast { x, to } => {
                let (dt, sh, xn) = (self.vdt(*x), self.vshape(*x), self.tensor(*x));
                let r = if dt.bits() == to.bits() {
                    self.view_as(&xn, dt, *to, &sh)
                } else {
                    self.repack(&xn, dt, *to, &sh)
                };
                self.bind(inst, r, None);
            }
            Op::Iota { dtype, shape, dim } => {
                let r = self.iota(*dtype, shape, *dim);
                self.bind(inst, r, None);
            }
            Op::Broadcast { x, shape } => {
                let r = self.operand(*x, shape);
                self.bind(inst, r, None);
            }
            Op::Reshape { x, shape } => {
                let (dt, sh, xn) = (self.vdt(*x), self.vshape(*x), self.tensor(*x));
                let r = self.reshape(&xn, dt, &sh, shape);
                self.bind(inst, r, None);
            }
            Op::Slice { x, start, shape } => {
                let (dt, sh, xn) = (self.vdt(*x), self.vshape(*x), self.tensor(*x));
                let limit: Vec<usize> = start.iter().zip(shape).map(|(s, n)| s + n).collect();
                let r = self.emit(format!(
                    "\"stablehlo.slice\"({xn}) {{start_indices = array<i64: {}>, limit_indices = array<i64: {}>, \
                     strides = array<i64: {}>}} : ({}) -> {}",
                    join(start),
                    join(&limit),
                    join(&vec![1; sh.len()]),
                    ty(dt, &sh),
                    ty(dt, shape)
                ));
                self.bind(inst, r, None);
            }
            Op::Concat { xs, axis } => {
                let dt = self.vdt(xs[0]);
                let names: Vec<String> = xs.iter().map(|x| self.tensor(*x)).collect();
                let types: Vec<String> = xs.iter().map(|x| ty(dt, &self.vshape(*x))).collect();
                let sh = self.result_shape(inst);
                let r = if xs.len() == 1 {
                    names[0].clone()
                } else {
                    self.emit(format!(
                        "stablehlo.concatenate {}, dim = {axis} : ({}) -> {}",
                        names.join(", "),
                        types.join(", "),
                        ty(dt, &sh)
                    ))
                };
                self.bind(inst, r, None);
            }
            Op::Reduce { op, x, axis } => {
                let (dt, sh, xn) = (self.vdt(*x), self.vshape(*x), self.tensor(*x));
                let (x, f) = self.upcast(&xn, dt, &sh);
                let (name, init) = match op {
                    ReduceOp::Sum => ("add", 0.0),
                    ReduceOp::Max if f.is_float() => ("maximum", f64::NEG_INFINITY),
                    ReduceOp::Min if f.is_float() => ("minimum", f64::INFINITY),
                    ReduceOp::Max => ("maximum", f.finite_range().0),
                    ReduceOp::Min => ("minimum", f.finite_range().1),
                };
                let red = self.reduce(&x, f, &sh, *axis, name, value_bits(f, init));
                let mut out = sh.clone();
                out[*axis] = 1;
                let red_shape: Vec<usize> =
                    sh.iter().enumerate().filter(|&(d, _)| d != *axis).map(|(_, &n)| n).collect();
                let r = self.reshape(&red, f, &red_shape, &out);
                let r = self.convert(&r, f, dt, &out);
                self.bind(inst, r, None);
            }
            Op::Matmul { lhs, rhs, transpose_rhs, acc } => {
                let (ld, ls, ln) = (self.vdt(*lhs), self.vshape(*lhs), self.tensor(*lhs));
                let (rd, rs, rn) = (self.vdt(*rhs), self.vshape(*rhs), self.tensor(*rhs));
                let cdt = if acc.is_float() { DType::F32 } else { *acc };
                let a = self.convert(&ln, ld, cdt, &ls);
                let b = self.convert(&rn, rd, cdt, &rs);
                let n = if *transpose_rhs { rs[0] } else { rs[1] };
                let out = vec![ls[0], n];
                let r = self.emit(format!(
                    "\"stablehlo.dot_general\"({a}, {b}) {{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [1], \
                     rhs_contracting_dimensions = [{}]>, precision_config = [#stablehlo<precision HIGHEST>, \
                     #stablehlo<precision HIGHEST>]}} : ({}, {}) -> {}",
                    if *transpose_rhs { 1 } else { 0 },
                    ty(cdt, &ls),
                    ty(cdt, &rs),
                    ty(cdt, &out)
                ));
                let r = self.convert(&r, cdt, *acc, &out);
                self.bind(inst, r, None);
            }
            Op::View { base, indexers } => {
                let v = self.view(*base, indexers)?;
                if let Some(r) = inst.result {
                    self.vals.insert(r, v);
                }
            }
            Op::RefReshape { base, shape } => {
                let r = self.refval(*base)?;
                let v = self.ref_reshape(&r, shape).ok_or_else(|| {
                    self.err(format!("cannot reshape this view ({:?}) to {shape:?} without copying", r.shape))
                })?;
                if let Some(res) = inst.result {
                    self.vals.insert(res, Lv::R(v));
                }
            }
            Op::RefBitcast { base, to } => {
                let r = self.refval(*base)?;
                let v = self.ref_bitcast(&r, *to)?;
                if let Some(res) = inst.result {
                    self.vals.insert(res, Lv::R(v));
                }
            }
            Op::Load { src } => {
                let r = self.refval(*src)?;
                let shape = r.shape.clone();
                self.check_load(&r, &shape, &[]);
                let v = self.read(&r, &shape, &[]);
                self.bind(inst, v, None);
            }
            Op::LoadStrided { src, strides, shape } => {
                let r = self.refval(*src)?;
                let sv = strided(&r, strides, shape);
                self.check_strided(&sv, &r.shape);
                self.check_load(&sv, shape, &[]);
                let v = self.read_strided(&r, strides, shape);
                self.bind(inst, v, None);
            }
            Op::Store { dst, value, mask } => {
                let r = self.refval(*dst)?;
                let (v, shape) = (self.tensor(*value), r.shape.clone());
                let m = mask.map(|m| self.tensor(m));
                self.write(&r, &shape, &v, m.as_deref(), &[]);
                self.mark_written(&r, &shape, m.as_deref(), &[]);
            }
            Op::StoreStrided { dst, value, strides } => {
                let r = self.refval(*dst)?;
                let (v, vs) = (self.tensor(*value), self.vshape(*value));
                let sv = strided(&r, strides, &vs);
                self.check_strided(&sv, &r.shape);
                self.write(&sv, &vs, &v, None, &[]);
                self.mark_written(&sv, &vs, None, &[]);
            }
            Op::ScalarLoad { src, indices } => {
                let r = self.refval(*src)?;
                let idx: Vec<Lin> = indices.iter().map(|i| self.lin_of(*i)).collect();
                for (d, i) in idx.iter().enumerate() {
                    self.check_index(&r, d, i);
                }
                self.check_load_at(&r, &idx);
                let v = self.read_at(&r, &idx);
                self.bind(inst, v, None);
            }
            Op::ScalarStore { dst, indices, value } => {
                let r = self.refval(*dst)?;
                let idx: Vec<Lin> = indices.iter().map(|i| self.lin_of(*i)).collect();
                for (d, i) in idx.iter().enumerate() {
                    self.check_index(&r, d, i);
                }
                let v = self.tensor(*value);
                self.write_at(&r, &idx, &v);
                self.mark_written_at(&r, &idx);
            }
            Op::DmaStart { src, dst, sem } => {
                let (s, d, m) = (self.refval(*src)?, self.refval(*dst)?, self.semval(*sem)?);
                let bytes = self.copy(&s, &d);
                self.note_copy(&m, &bytes);
                self.sem_add(&m, &bytes, 1);
            }
            Op::DmaWait { dst, sem, .. } => {
                let (d, m) = (self.refval(*dst)?, self.semval(*sem)?);
                let bytes = self.ref_bytes(&d);
                self.check_wait(&m, &bytes);
                self.sem_add(&m, &bytes, -1);
            }
            Op::VarDecl { var, init } => {
                let name = match init {
                    Some(v) => self.tensor(*v),
                    None => {
                        let (dt, shape) = match &self.k.vars[var.0 as usize] {
                            Type::Vector { dtype, shape } => (*dtype, shape.clone()),
                            t => (t.dtype().unwrap_or(DType::I32), vec![]),
                        };
                        self.splat(dt, &shape, 0.0)
                    }
                };
                self.vars.insert(*var, name);
            }
            Op::VarGet { var } => {
                let n = self.vars.get(var).cloned().ok_or_else(|| self.err("variable read before it is declared"))?;
                self.bind(inst, n, None);
            }
            Op::VarSet { var, value } => {
                let n = self.tensor(*value);
                self.vars.insert(*var, n);
            }
            Op::For { lo, hi, index, body } => {
                let bufs = self.writes(&[body]);
                let vars = self.carried(&[body]);
                if bufs.is_empty() && vars.is_empty() {
                    return Ok(());
                }
                let (lo, hi) = (self.lin_of(*lo), self.lin_of(*hi));
                let (lo, hi) = (self.lin_name(&lo), self.lin_name(&hi));
                let extra = [(lo, ty(DType::I32, &[]))];
                let index = *index;
                let slots = self.carry(&[key(body)], &bufs);
                let mut cond = |s: &mut Self, a: &[String]| Ok(s.compare("LT", &a[0], &hi, DType::I32, &[]));
                let mut run = |s: &mut Self, a: &[String]| {
                    s.vals.insert(index, Lv::T { name: a[0].clone(), konst: None });
                    s.keyed_block(body, &[body])?;
                    let one = s.iconst(1);
                    Ok(vec![s.bin("add", &a[0], &one, DType::I32, &[])])
                };
                self.region_while(&extra, &slots, &vars, &mut cond, &mut run)?;
            }
            Op::If { cond, then_body, else_body } => {
                let bufs = self.writes(&[then_body, else_body]);
                let vars = self.carried(&[then_body, else_body]);
                let c = match self.vals.get(cond) {
                    Some(Lv::T { konst: Some(k), .. }) => Cond::Static(*k != 0),
                    _ => Cond::Dyn(self.tensor(*cond)),
                };
                // XLA:CPU copies every buffer a conditional passes through, in both branches: an `if`
                // that writes large buffers becomes two loops of at most one trip each (`while c`
                // then `while !c`), whose carried buffers XLA updates in place.
                let slots = self.carry(&[key(then_body), key(else_body)], &bufs);
                let bytes = self.slot_bytes(&slots);
                match c {
                    Cond::Dyn(c) if bytes > IF_AS_LOOPS_BYTES => {
                        let not_c = self.un("not", &c, DType::Bool, &[]);
                        for (flag, body) in [(c, then_body), (not_c, else_body)] {
                            if body.insts.is_empty() {
                                continue;
                            }
                            let slots = self.carry(&[key(body)], &bufs);
                            let extra = [(flag, ty(DType::Bool, &[]))];
                            let mut test = |_: &mut Self, a: &[String]| Ok(a[0].clone());
                            let mut run = |s: &mut Self, _: &[String]| {
                                s.keyed_block(body, &[body])?;
                                Ok(vec![s.splat(DType::Bool, &[], 0.0)])
                            };
                            self.region_while(&extra, &slots, &vars, &mut test, &mut run)?;
                        }
                    }
                    c => {
                        self.region_if(c, &slots, &vars, &mut |s| s.keyed_block(then_body, &[then_body]), &mut |s| {
                            s.keyed_block(else_body, &[else_body])
                        })?
                    }
                }
            }
            Op::While { cond_body, cond, body } => {
                let bufs = self.writes(&[cond_body, body]);
                let vars = self.carried(&[cond_body, body]);
                self.block(cond_body)?;
                if bufs.is_empty() && vars.is_empty() {
                    return Ok(());
                }
                // The condition region runs before the loop and at the end of every iteration, so
                // its side effects (and the variables it assigns) are carried like the body's.
                let c0 = self.tensor(*cond);
                let extra = [(c0, ty(DType::Bool, &[]))];
                let cond = *cond;
                let slots = self.carry(&[key(body)], &bufs);
                let mut test = |_: &mut Self, a: &[String]| Ok(a[0].clone());
                let mut run = |s: &mut Self, _: &[String]| {
                    s.keyed_block(body, &[body, cond_body])?;
                    Ok(vec![s.tensor(cond)])
                };
                self.region_while(&extra, &slots, &vars, &mut test, &mut run)?;
            }
            Op::DebugPrint { .. } => {}
        }
        Ok(())
    }
}

/// The key of the region whose body is `b`.
fn key(b: &Block) -> usize {
    b as *const Block as usize
}

fn full_ref(buf: usize, dtype: DType, shape: &[usize]) -> RefVal {
    RefVal {
        buf,
        dtype,
        shape: shape.to_vec(),
        sizes: vec![None; shape.len()],
        fits: vec![true; shape.len()],
        strides: row_major(shape),
        offset: Lin::k(0),
        pack: Pack::Same,
        canon: true,
    }
}

/// Element `i` of the result is element `i · strides` of `r`.
fn strided(r: &RefVal, strides: &[usize], shape: &[usize]) -> RefVal {
    RefVal {
        shape: shape.to_vec(),
        sizes: vec![None; shape.len()],
        fits: vec![true; shape.len()],
        strides: r.strides.iter().zip(strides).map(|(&s, &k)| s * k as i64).collect(),
        canon: false,
        ..r.clone()
    }
}
