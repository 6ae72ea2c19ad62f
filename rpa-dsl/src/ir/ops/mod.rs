//! The op set. Every op has four rules, each a named function in a module of its family
//! (elementwise, shape, reductions, matmul, memory, dma, control) in each pass: its type rule in
//! `type_rules/`, its interpret rule in `interpret/exec/rules/`, its Mosaic rule in
//! `lower/mosaic/rules/` and its StableHLO rule in `lower/stablehlo/rules/`. Each pass dispatches with
//! one exhaustive `match` on this enum, so an op without all four rules does not compile.

use super::{Block, Extent, MemSpace, RefType, SemKind, Type, ValueId, VarId};
use crate::dtype::DType;
use type_rules::{control, dma, elementwise, matmul, memory, reductions, shape};

mod type_rules;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    /// Logical not on bools, bitwise not on integers.
    Not,
    Abs,
    Exp,
    Log,
    Tanh,
    Sqrt,
    Rsqrt,
    /// `1 / x`; with `approx` the TPU may use its fast approximate reciprocal (the interpreter is exact).
    Recip {
        approx: bool,
    },
    Sin,
    Cos,
    Erf,
    /// `2ˣ`.
    Exp2,
    /// `ln(1 + x)`, accurate near 0.
    Log1p,
    Floor,
    Ceil,
    /// `1 / (1 + e⁻ˣ)` (`jax.nn.sigmoid`), computed as written.
    Sigmoid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    /// Float division, or integer division truncating toward zero (as Rust and `arith.divsi`).
    Div,
    /// Remainder with the sign of the dividend (as Rust and `arith.remsi`).
    Rem,
    Max,
    Min,
    And,
    Or,
    Xor,
    Shl,
    /// Arithmetic shift for signed integers, logical for unsigned.
    Shr,
    /// `lhsʳʰˢ` of floats (C's `powf`).
    Pow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    Max,
    Min,
}

/// Which extreme an `argmax`/`argmin` finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgOp {
    Max,
    Min,
}

/// A constant's value. Integers and bools use `Int`, floats `Float`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Literal {
    Int(i64),
    Float(f64),
}

/// One index of a ref view.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Indexer {
    /// Select one position and drop the dimension.
    At(ValueId),
    /// A window `[start, start + size)`.
    Slice { start: ValueId, size: SliceSize },
    /// The whole dimension.
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SliceSize {
    Static(usize),
    /// A runtime size with a static upper bound (a DMA of 0..=max rows).
    Dynamic {
        size: ValueId,
        max: usize,
    },
}

/// The op set. Keep it close to Pallas/Mosaic: each op lowers to one Mosaic op (or a few).
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    // ---- scalars and elementwise (scalar or vector operands, with broadcasting) ----
    Const {
        dtype: DType,
        value: Literal,
    },
    ProgramId {
        axis: usize,
    },
    NumPrograms {
        axis: usize,
    },
    Unary {
        op: UnaryOp,
        x: ValueId,
    },
    Binary {
        op: BinaryOp,
        lhs: ValueId,
        rhs: ValueId,
    },
    Compare {
        op: CmpOp,
        lhs: ValueId,
        rhs: ValueId,
    },
    Select {
        cond: ValueId,
        on_true: ValueId,
        on_false: ValueId,
    },
    Cast {
        x: ValueId,
        to: DType,
    },
    /// Reinterpret bits. Changing the width packs/unpacks along the second-minor dim (TPU sublanes).
    Bitcast {
        x: ValueId,
        to: DType,
    },
    /// `x`, promised to be a multiple of `multiple` (an alignment hint, `pl.multiple_of`); a value
    /// that is not is an error.
    MultipleOf {
        x: ValueId,
        multiple: u32,
    },

    // ---- vector creation and shape ----
    Iota {
        dtype: DType,
        shape: Vec<usize>,
        dim: usize,
    },
    Broadcast {
        x: ValueId,
        shape: Vec<usize>,
    },
    Reshape {
        x: ValueId,
        shape: Vec<usize>,
    },
    Slice {
        x: ValueId,
        start: Vec<usize>,
        shape: Vec<usize>,
    },
    Concat {
        xs: Vec<ValueId>,
        axis: usize,
    },
    /// Rotates along `axis` by the i32 scalar `shift` (`pltpu.roll`, `jnp.roll`): element `i` of the
    /// result is element `(i - shift) mod n` of `x`; a negative shift is an error.
    Roll {
        x: ValueId,
        shift: ValueId,
        axis: usize,
    },
    /// Dimension `d` of the result is dimension `perm[d]` of `x`.
    Transpose {
        x: ValueId,
        perm: Vec<usize>,
    },
    /// The element at static `index` of a vector, as a scalar (`x[i, j]`, `vector.extract`).
    Extract {
        x: ValueId,
        index: Vec<usize>,
    },
    /// Reduction along `axis`, keeping it with extent 1.
    Reduce {
        op: ReduceOp,
        x: ValueId,
        axis: usize,
    },
    /// Reduction of every element to a scalar (`jnp.sum(x)`).
    ReduceAll {
        op: ReduceOp,
        x: ValueId,
    },
    /// The (i32) index of the largest / smallest element along `axis`, keeping it with extent 1:
    /// the first one on ties, the first NaN if there is one (`jnp.argmax` / `jnp.argmin`).
    ArgReduce {
        op: ArgOp,
        x: ValueId,
        axis: usize,
    },
    /// `lhs[m,k] @ rhs[k,n]` (`lhs[k,m]ᵀ`, `rhs[n,k]ᵀ` when transposed), accumulated and returned
    /// in `acc`; with a leading batch dimension on both, one product per batch element.
    Matmul {
        lhs: ValueId,
        rhs: ValueId,
        transpose_lhs: bool,
        transpose_rhs: bool,
        acc: DType,
    },

    // ---- refs ----
    View {
        base: ValueId,
        indexers: Vec<Indexer>,
    },
    RefReshape {
        base: ValueId,
        shape: Vec<usize>,
    },
    RefBitcast {
        base: ValueId,
        to: DType,
    },
    Load {
        src: ValueId,
    },
    /// Element `i` of the result is `src[i · strides]`.
    LoadStrided {
        src: ValueId,
        strides: Vec<usize>,
        shape: Vec<usize>,
    },
    Store {
        dst: ValueId,
        value: ValueId,
        mask: Option<ValueId>,
    },
    /// `dst[i · strides] = value[i]`.
    StoreStrided {
        dst: ValueId,
        value: ValueId,
        strides: Vec<usize>,
    },
    ScalarLoad {
        src: ValueId,
        indices: Vec<ValueId>,
    },
    ScalarStore {
        dst: ValueId,
        indices: Vec<ValueId>,
        value: ValueId,
    },

    // ---- DMA ----
    /// Start copying `src` to `dst`; the semaphore is signalled with the byte count on completion.
    DmaStart {
        src: ValueId,
        dst: ValueId,
        sem: ValueId,
    },
    /// Wait until `sem` has been signalled with as many bytes as `dst` holds, and consume them.
    DmaWait {
        src: ValueId,
        dst: ValueId,
        sem: ValueId,
    },

    /// Adds `amount` (an i32 scalar, ≥ 0) to the regular semaphore `sem` (`pltpu.semaphore_signal`).
    SemSignal {
        sem: ValueId,
        amount: ValueId,
    },
    /// Waits until the regular semaphore `sem` holds `amount`, and takes it
    /// (`pltpu.semaphore_wait`). Nothing else signals a kernel's semaphores while it waits (remote
    /// signals need several devices), so waiting for more than it holds is an error (it would hang).
    SemWait {
        sem: ValueId,
        amount: ValueId,
    },

    // ---- mutable locals ----
    /// Declares a local; without `init` it must be set before it is read.
    VarDecl {
        var: VarId,
        init: Option<ValueId>,
    },
    VarGet {
        var: VarId,
    },
    VarSet {
        var: VarId,
        value: ValueId,
    },

    // ---- structured control flow ----
    /// `for index in lo..hi { body }` with i32 bounds.
    For {
        lo: ValueId,
        hi: ValueId,
        index: ValueId,
        body: Block,
    },
    If {
        cond: ValueId,
        then_body: Block,
        else_body: Block,
    },
    /// Evaluate `cond_body`, test `cond`, run `body`, repeat.
    While {
        cond_body: Block,
        cond: ValueId,
        body: Block,
    },

    // ---- debugging ----
    DebugPrint {
        message: String,
        args: Vec<ValueId>,
    },
}

/// The error of a `multiple_of` whose value is not a multiple (interpret mode and checked PJRT-CPU).
pub fn not_a_multiple(value: i64, multiple: u32) -> String {
    format!(
        "{value} is not a multiple of {multiple}: `multiple_of` promises the compiler it is \
         (a TPU would silently misalign the access)"
    )
}

/// The error of a `roll` by a negative shift (interpret mode and checked PJRT-CPU).
pub fn negative_roll(shift: i64) -> String {
    format!(
        "roll by {shift}: the shift must be ≥ 0 (Mosaic takes it modulo the extent as an unsigned \
         number); roll by `n - k` to rotate the other way"
    )
}

/// The dimensions of a matmul of operands of `rank` (2, or 3 with a batch dimension):
/// `(contracting, non-contracting)` of the lhs and of the rhs.
pub fn matmul_dims(rank: usize, transpose_lhs: bool, transpose_rhs: bool) -> [(usize, usize); 2] {
    let (row, col) = (rank - 2, rank - 1);
    let lhs = if transpose_lhs { (row, col) } else { (col, row) };
    let rhs = if transpose_rhs { (col, row) } else { (row, col) };
    [lhs, rhs]
}

/// The errors of regular semaphores (interpret mode and checked PJRT-CPU): a negative amount, a
/// wait for more than the semaphore holds, a semaphore left signalled at the end of the kernel.
pub fn negative_semaphore_amount(amount: i64) -> String {
    format!("semaphore amount {amount} is negative")
}

pub fn semaphore_wait_short(amount: i64, held: i64, sem: &str) -> String {
    format!(
        "waits for {amount} on semaphore `{sem}`, which holds {held}: nothing else signals it while \
         the kernel waits (on a TPU this wait would hang)"
    )
}

pub fn semaphore_left_signalled(held: i64, sem: &str) -> String {
    format!(
        "the kernel ended with semaphore `{sem}` at {held}, last signalled here: every signal needs its \
         wait (a TPU requires every semaphore to be 0 when the kernel ends)"
    )
}

/// What a type rule needs to know about existing values.
pub trait TypeEnv {
    fn value_type(&self, v: ValueId) -> &Type;
    fn var_type(&self, v: VarId) -> &Type;
}

type Rule = Result<Option<Type>, String>;

impl Op {
    /// The op's name in printed IR and messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Const { .. } => "const",
            Op::ProgramId { .. } => "program_id",
            Op::NumPrograms { .. } => "num_programs",
            Op::Unary { op, .. } => match op {
                UnaryOp::Neg => "neg",
                UnaryOp::Not => "not",
                UnaryOp::Abs => "abs",
                UnaryOp::Exp => "exp",
                UnaryOp::Log => "log",
                UnaryOp::Tanh => "tanh",
                UnaryOp::Sqrt => "sqrt",
                UnaryOp::Rsqrt => "rsqrt",
                UnaryOp::Recip { approx: false } => "recip",
                UnaryOp::Recip { approx: true } => "recip_approx",
                UnaryOp::Sin => "sin",
                UnaryOp::Cos => "cos",
                UnaryOp::Erf => "erf",
                UnaryOp::Exp2 => "exp2",
                UnaryOp::Log1p => "log1p",
                UnaryOp::Floor => "floor",
                UnaryOp::Ceil => "ceil",
                UnaryOp::Sigmoid => "sigmoid",
            },
            Op::Binary { op, .. } => match op {
                BinaryOp::Add => "add",
                BinaryOp::Sub => "sub",
                BinaryOp::Mul => "mul",
                BinaryOp::Div => "div",
                BinaryOp::Rem => "rem",
                BinaryOp::Max => "max",
                BinaryOp::Min => "min",
                BinaryOp::And => "and",
                BinaryOp::Or => "or",
                BinaryOp::Xor => "xor",
                BinaryOp::Shl => "shl",
                BinaryOp::Shr => "shr",
                BinaryOp::Pow => "pow",
            },
            Op::Compare { op, .. } => match op {
                CmpOp::Eq => "eq",
                CmpOp::Ne => "ne",
                CmpOp::Lt => "lt",
                CmpOp::Le => "le",
                CmpOp::Gt => "gt",
                CmpOp::Ge => "ge",
            },
            Op::Select { .. } => "select",
            Op::Cast { .. } => "cast",
            Op::Bitcast { .. } => "bitcast",
            Op::MultipleOf { .. } => "multiple_of",
            Op::Iota { .. } => "iota",
            Op::Broadcast { .. } => "broadcast",
            Op::Reshape { .. } => "reshape",
            Op::Slice { .. } => "slice",
            Op::Concat { .. } => "concat",
            Op::Roll { .. } => "roll",
            Op::Transpose { .. } => "transpose",
            Op::Reduce { op, .. } => match op {
                ReduceOp::Sum => "reduce_sum",
                ReduceOp::Max => "reduce_max",
                ReduceOp::Min => "reduce_min",
            },
            Op::Extract { .. } => "extract",
            Op::ReduceAll { op, .. } => match op {
                ReduceOp::Sum => "sum_all",
                ReduceOp::Max => "max_all",
                ReduceOp::Min => "min_all",
            },
            Op::ArgReduce { op: ArgOp::Max, .. } => "argmax",
            Op::ArgReduce { op: ArgOp::Min, .. } => "argmin",
            Op::Matmul { .. } => "matmul",
            Op::View { .. } => "view",
            Op::RefReshape { .. } => "ref_reshape",
            Op::RefBitcast { .. } => "ref_bitcast",
            Op::Load { .. } => "load",
            Op::LoadStrided { .. } => "load_strided",
            Op::Store { .. } => "store",
            Op::StoreStrided { .. } => "store_strided",
            Op::ScalarLoad { .. } => "scalar_load",
            Op::ScalarStore { .. } => "scalar_store",
            Op::DmaStart { .. } => "dma_start",
            Op::DmaWait { .. } => "dma_wait",
            Op::SemSignal { .. } => "semaphore_signal",
            Op::SemWait { .. } => "semaphore_wait",
            Op::VarDecl { .. } => "var",
            Op::VarGet { .. } => "var_get",
            Op::VarSet { .. } => "var_set",
            Op::For { .. } => "for",
            Op::If { .. } => "if",
            Op::While { .. } => "while",
            Op::DebugPrint { .. } => "debug_print",
        }
    }

    /// Values the op reads (not counting values defined inside its regions).
    pub fn operands(&self) -> Vec<ValueId> {
        match self {
            Op::Const { .. } | Op::ProgramId { .. } | Op::NumPrograms { .. } | Op::Iota { .. } => vec![],
            Op::VarGet { .. } => vec![],
            Op::Unary { x, .. }
            | Op::Cast { x, .. }
            | Op::Bitcast { x, .. }
            | Op::MultipleOf { x, .. }
            | Op::Broadcast { x, .. }
            | Op::Reshape { x, .. }
            | Op::Slice { x, .. }
            | Op::Transpose { x, .. }
            | Op::Extract { x, .. }
            | Op::Reduce { x, .. }
            | Op::ReduceAll { x, .. }
            | Op::ArgReduce { x, .. } => vec![*x],
            Op::Roll { x, shift, .. } => vec![*x, *shift],
            Op::Binary { lhs, rhs, .. } | Op::Compare { lhs, rhs, .. } | Op::Matmul { lhs, rhs, .. } => {
                vec![*lhs, *rhs]
            }
            Op::Select { cond, on_true, on_false } => vec![*cond, *on_true, *on_false],
            Op::Concat { xs, .. } => xs.clone(),
            Op::View { base, indexers } => {
                let mut v = vec![*base];
                for ix in indexers {
                    match ix {
                        Indexer::At(i) => v.push(*i),
                        Indexer::Slice { start, size } => {
                            v.push(*start);
                            if let SliceSize::Dynamic { size, .. } = size {
                                v.push(*size);
                            }
                        }
                        Indexer::Full => {}
                    }
                }
                v
            }
            Op::RefReshape { base, .. } | Op::RefBitcast { base, .. } => vec![*base],
            Op::Load { src } | Op::LoadStrided { src, .. } => vec![*src],
            Op::Store { dst, value, mask } => {
                let mut v = vec![*dst, *value];
                v.extend(mask);
                v
            }
            Op::StoreStrided { dst, value, .. } => vec![*dst, *value],
            Op::ScalarLoad { src, indices } => std::iter::once(*src).chain(indices.iter().copied()).collect(),
            Op::ScalarStore { dst, indices, value } => {
                std::iter::once(*dst).chain(indices.iter().copied()).chain([*value]).collect()
            }
            Op::DmaStart { src, dst, sem } | Op::DmaWait { src, dst, sem } => vec![*src, *dst, *sem],
            Op::SemSignal { sem, amount } | Op::SemWait { sem, amount } => vec![*sem, *amount],
            Op::VarDecl { init, .. } => init.iter().copied().collect(),
            Op::VarSet { value, .. } => vec![*value],
            Op::For { lo, hi, .. } => vec![*lo, *hi],
            Op::If { cond, .. } => vec![*cond],
            Op::While { .. } => vec![],
            Op::DebugPrint { args, .. } => args.clone(),
        }
    }

    /// Nested regions, in program order.
    pub fn regions(&self) -> Vec<&Block> {
        match self {
            Op::For { body, .. } => vec![body],
            Op::If { then_body, else_body, .. } => vec![then_body, else_body],
            Op::While { cond_body, body, .. } => vec![cond_body, body],
            _ => vec![],
        }
    }

    pub fn regions_mut(&mut self) -> Vec<&mut Block> {
        match self {
            Op::For { body, .. } => vec![body],
            Op::If { then_body, else_body, .. } => vec![then_body, else_body],
            Op::While { cond_body, body, .. } => vec![cond_body, body],
            _ => vec![],
        }
    }

    /// Values the op defines for its regions (the loop index).
    pub fn region_values(&self) -> Vec<ValueId> {
        match self {
            Op::For { index, .. } => vec![*index],
            _ => vec![],
        }
    }

    /// The type rule: the result type, or why the operands are not acceptable.
    pub fn result_type(&self, env: &dyn TypeEnv) -> Rule {
        match self {
            Op::Const { dtype, value } => elementwise::const_(*dtype, value),
            Op::ProgramId { .. } | Op::NumPrograms { .. } => elementwise::grid_index(),
            Op::Unary { op, x } => elementwise::unary(env, self.name(), *op, *x),
            Op::Binary { op, lhs, rhs } => elementwise::binary(env, self.name(), *op, *lhs, *rhs),
            Op::Compare { lhs, rhs, .. } => elementwise::compare(env, *lhs, *rhs),
            Op::Select { cond, on_true, on_false } => elementwise::select(env, *cond, *on_true, *on_false),
            Op::Cast { x, to } => elementwise::cast(env, *x, *to),
            Op::Bitcast { x, to } => elementwise::bitcast(env, *x, *to),
            Op::MultipleOf { x, multiple } => elementwise::multiple_of(env, *x, *multiple),
            Op::Iota { dtype, shape, dim } => elementwise::iota(*dtype, shape, *dim),
            Op::Broadcast { x, shape } => shape::broadcast(env, *x, shape),
            Op::Reshape { x, shape } => shape::reshape(env, *x, shape),
            Op::Slice { x, start, shape } => shape::slice(env, *x, start, shape),
            Op::Concat { xs, axis } => shape::concat(env, xs, *axis),
            Op::Roll { x, shift, axis } => shape::roll(env, *x, *shift, *axis),
            Op::Transpose { x, perm } => shape::transpose(env, *x, perm),
            Op::Extract { x, index } => shape::extract(env, *x, index),
            Op::Reduce { op, x, axis } => reductions::reduce(env, *op, *x, *axis),
            Op::ReduceAll { op, x } => reductions::reduce_all(env, *op, *x),
            Op::ArgReduce { x, axis, .. } => reductions::arg_reduce(env, *x, *axis),
            Op::Matmul { lhs, rhs, transpose_lhs, transpose_rhs, acc } => {
                matmul::matmul(env, *lhs, *rhs, [*transpose_lhs, *transpose_rhs], *acc)
            }
            Op::View { base, indexers } => memory::view(env, *base, indexers),
            Op::RefReshape { base, shape } => memory::ref_reshape(env, *base, shape),
            Op::RefBitcast { base, to } => memory::ref_bitcast(env, *base, *to),
            Op::Load { src } => memory::load(env, *src),
            Op::LoadStrided { src, strides, shape } => memory::load_strided(env, *src, strides, shape),
            Op::Store { dst, value, mask } => memory::store(env, *dst, *value, *mask),
            Op::StoreStrided { dst, value, strides } => memory::store_strided(env, *dst, *value, strides),
            Op::ScalarLoad { src, indices } => memory::scalar_load(env, *src, indices),
            Op::ScalarStore { dst, indices, value } => memory::scalar_store(env, *dst, indices, *value),
            Op::DmaStart { src, dst, sem } | Op::DmaWait { src, dst, sem } => dma::dma(env, *src, *dst, *sem),
            Op::SemSignal { sem, amount } | Op::SemWait { sem, amount } => dma::semaphore(env, *sem, *amount),
            Op::VarDecl { var, init } => control::var_decl(env, *var, *init),
            Op::VarGet { var } => control::var_get(env, *var),
            Op::VarSet { var, value } => control::var_set(env, *var, *value),
            Op::For { lo, hi, .. } => control::for_(env, *lo, *hi),
            Op::If { cond, .. } | Op::While { cond, .. } => control::condition(env, *cond),
            Op::DebugPrint { message, args } => control::debug_print(env, message, args),
        }
    }
}

fn make(dtype: DType, shape: Option<Vec<usize>>) -> Type {
    match shape {
        None => Type::Scalar(dtype),
        Some(shape) => Type::Vector { dtype, shape },
    }
}

/// A scalar (shape `None`) or a vector.
fn elementwise(t: &Type, what: &str) -> Result<(DType, Option<Vec<usize>>), String> {
    match t {
        Type::Scalar(d) => Ok((*d, None)),
        Type::Vector { dtype, shape } => Ok((*dtype, Some(shape.clone()))),
        t => Err(format!("{what} must be a scalar or a vector, got {t}; load refs first")),
    }
}

fn vector(t: &Type, what: &str) -> Result<(DType, Vec<usize>), String> {
    match t {
        Type::Vector { dtype, shape } => Ok((*dtype, shape.clone())),
        t => Err(format!("{what} must be a vector, got {t}")),
    }
}

fn as_ref(t: &Type) -> Result<RefType, String> {
    match t {
        Type::Ref(r) => Ok(r.clone()),
        t => Err(format!("expected a ref, got {t}")),
    }
}

fn vmem_ref(t: &Type, what: &str) -> Result<RefType, String> {
    let r = as_ref(t)?;
    match r.space {
        MemSpace::Vmem => Ok(r),
        MemSpace::Hbm => {
            Err(format!("vector {what} an HBM ref: HBM is reachable only by DMA; copy the data to a VMEM buffer first"))
        }
        MemSpace::Smem => Err(format!("vector {what} an SMEM ref: SMEM holds scalars; use `get`/`set`")),
    }
}

fn smem_ref(t: &Type) -> Result<RefType, String> {
    let r = as_ref(t)?;
    if r.space != MemSpace::Smem {
        return Err(format!(
            "scalar access to a {} ref: scalar reads and writes need SMEM (vector refs use `load`/`store`)",
            r.space.name().to_uppercase()
        ));
    }
    Ok(r)
}

fn scalar_indices(env: &dyn TypeEnv, r: &RefType, indices: &[ValueId]) -> Result<(), String> {
    if indices.len() != r.shape.len() {
        return Err(format!("{} indices for a rank-{} SMEM ref", indices.len(), r.shape.len()));
    }
    for i in indices {
        match env.value_type(*i) {
            Type::Scalar(d) if d.is_int() => {}
            t => return Err(format!("index must be an integer scalar, got {t}")),
        }
    }
    Ok(())
}

fn strided_fits(r: &RefType, strides: &[usize], shape: &[usize]) -> Result<(), String> {
    if strides.len() != r.shape.len() || shape.len() != r.shape.len() {
        return Err(format!(
            "strided access to a rank-{} ref needs {} strides and sizes",
            r.shape.len(),
            r.shape.len()
        ));
    }
    for d in 0..shape.len() {
        if strides[d] == 0 {
            return Err("strides must be positive".into());
        }
        let span = if shape[d] == 0 { 0 } else { (shape[d] - 1) * strides[d] + 1 };
        if span > r.shape[d].max() {
            return Err(format!("strided access spans {span} elements of dimension {d}, which has {}", r.shape[d]));
        }
    }
    Ok(())
}

/// Numpy-style broadcasting of two shapes aligned at the right.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let x = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let y = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = match (x, y) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

fn binary_operands(a: &Type, b: &Type) -> Result<(DType, Option<Vec<usize>>), String> {
    let (ad, ash) = elementwise(a, "lhs")?;
    let (bd, bsh) = elementwise(b, "rhs")?;
    if ad != bd {
        return Err(format!("operand dtypes differ: {ad} and {bd}; cast one of them"));
    }
    let shape = match (ash, bsh) {
        (None, None) => None,
        (Some(s), None) | (None, Some(s)) => Some(s),
        (Some(x), Some(y)) => {
            Some(broadcast_shapes(&x, &y).ok_or_else(|| format!("shapes {x:?} and {y:?} do not broadcast"))?)
        }
    };
    Ok((ad, shape))
}

/// The shape after reinterpreting `from` elements as `to`: the second-minor dim (the sublanes) is
/// scaled by the width ratio, as TPU packing works.
pub fn bitcast_shape(from: DType, to: DType, shape: &[usize]) -> Result<Vec<usize>, String> {
    if from.bits() == to.bits() {
        return Ok(shape.to_vec());
    }
    if shape.len() < 2 {
        return Err(format!(
            "bitcast {from} → {to} changes the width, which packs along the second-minor dimension; it needs rank ≥ 2"
        ));
    }
    let mut out = shape.to_vec();
    let d = shape.len() - 2;
    if to.bits() > from.bits() {
        let ratio = to.bits() / from.bits();
        if !shape[d].is_multiple_of(ratio) {
            return Err(format!(
                "bitcast {from} → {to} packs {ratio} rows into one, but the second-minor extent {} is not a multiple of {ratio}",
                shape[d]
            ));
        }
        out[d] = shape[d] / ratio;
    } else {
        out[d] = shape[d] * (from.bits() / to.bits());
    }
    Ok(out)
}
