//! The op set and each op's type rule. The interpreter rule is in `interpret::exec`, the lowering
//! rules in `lower::*`; all of them `match` this enum exhaustively, so an op without a rule does not
//! compile.

use super::{Block, Extent, MemSpace, RefType, Type, ValueId, VarId};
use crate::dtype::DType;

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
    /// Reduction along `axis`, keeping it with extent 1.
    Reduce {
        op: ReduceOp,
        x: ValueId,
        axis: usize,
    },
    /// `lhs[m,k] @ rhs[k,n]` (or `rhs[n,k]ᵀ`), accumulated and returned in `acc`.
    Matmul {
        lhs: ValueId,
        rhs: ValueId,
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
            Op::Iota { .. } => "iota",
            Op::Broadcast { .. } => "broadcast",
            Op::Reshape { .. } => "reshape",
            Op::Slice { .. } => "slice",
            Op::Concat { .. } => "concat",
            Op::Reduce { op, .. } => match op {
                ReduceOp::Sum => "reduce_sum",
                ReduceOp::Max => "reduce_max",
                ReduceOp::Min => "reduce_min",
            },
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
            | Op::Broadcast { x, .. }
            | Op::Reshape { x, .. }
            | Op::Slice { x, .. }
            | Op::Reduce { x, .. } => vec![*x],
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
        let ty = |v: &ValueId| env.value_type(*v).clone();
        match self {
            Op::Const { dtype, value } => {
                match (dtype.is_float(), value) {
                    (true, Literal::Float(_)) | (false, Literal::Int(_)) => {}
                    _ => return Err(format!("constant {value:?} does not fit dtype {dtype}")),
                }
                Ok(Some(Type::Scalar(*dtype)))
            }
            Op::ProgramId { .. } | Op::NumPrograms { .. } => Ok(Some(Type::Scalar(DType::I32))),
            Op::Unary { op, x } => {
                let (dtype, shape) = elementwise(&ty(x), "operand")?;
                match op {
                    UnaryOp::Neg | UnaryOp::Abs if dtype == DType::Bool || dtype.is_unsigned_int() => {
                        return Err(format!("`{}` needs a float or signed integer operand, got {dtype}", self.name()));
                    }
                    UnaryOp::Not if dtype.is_float() => {
                        return Err(format!("`not` needs a bool or integer operand, got {dtype}"));
                    }
                    UnaryOp::Exp
                    | UnaryOp::Log
                    | UnaryOp::Tanh
                    | UnaryOp::Sqrt
                    | UnaryOp::Rsqrt
                    | UnaryOp::Recip { .. }
                        if !dtype.is_float() =>
                    {
                        return Err(format!("`{}` needs a float operand, got {dtype}; cast it first", self.name()));
                    }
                    _ => {}
                }
                Ok(Some(make(dtype, shape)))
            }
            Op::Binary { op, lhs, rhs } => {
                let (dtype, shape) = binary_operands(&ty(lhs), &ty(rhs))?;
                match op {
                    BinaryOp::And | BinaryOp::Or | BinaryOp::Xor if dtype.is_float() => {
                        Err(format!("`{}` needs bool or integer operands, got {dtype}", self.name()))
                    }
                    BinaryOp::Shl | BinaryOp::Shr if !dtype.is_int() => {
                        Err(format!("`{}` needs integer operands, got {dtype}", self.name()))
                    }
                    BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem
                        if dtype == DType::Bool =>
                    {
                        Err(format!("`{}` is not defined on bool", self.name()))
                    }
                    _ => Ok(Some(make(dtype, shape))),
                }
            }
            Op::Compare { lhs, rhs, .. } => {
                let (_, shape) = binary_operands(&ty(lhs), &ty(rhs))?;
                Ok(Some(make(DType::Bool, shape)))
            }
            Op::Select { cond, on_true, on_false } => {
                let (dtype, shape) = binary_operands(&ty(on_true), &ty(on_false))?;
                let (cdt, cshape) = elementwise(&ty(cond), "condition")?;
                if cdt != DType::Bool {
                    return Err(format!("select condition must be bool, got {cdt}"));
                }
                let shape = match (cshape, shape) {
                    (None, s) | (s, None) => s,
                    (Some(c), Some(s)) => Some(
                        broadcast_shapes(&c, &s)
                            .ok_or_else(|| format!("select condition shape {c:?} does not broadcast to {s:?}"))?,
                    ),
                };
                Ok(Some(make(dtype, shape)))
            }
            Op::Cast { x, to } => {
                let (_, shape) = elementwise(&ty(x), "operand")?;
                Ok(Some(make(*to, shape)))
            }
            Op::Bitcast { x, to } => {
                let (dtype, shape) = elementwise(&ty(x), "operand")?;
                let shape = match shape {
                    None if dtype.bits() != to.bits() => {
                        return Err(format!("scalar bitcast {dtype} → {to} changes the width"));
                    }
                    None => None,
                    Some(s) => Some(bitcast_shape(dtype, *to, &s)?),
                };
                Ok(Some(make(*to, shape)))
            }
            Op::Iota { dtype, shape, dim } => {
                if !dtype.is_int() {
                    return Err(format!("iota needs an integer dtype, got {dtype}"));
                }
                if *dim >= shape.len() {
                    return Err(format!("iota dimension {dim} out of range for shape {shape:?}"));
                }
                Ok(Some(Type::Vector { dtype: *dtype, shape: shape.clone() }))
            }
            Op::Broadcast { x, shape } => {
                let (dtype, from) = elementwise(&ty(x), "operand")?;
                let from = from.unwrap_or_default();
                if broadcast_shapes(&from, shape).as_deref() != Some(shape.as_slice()) {
                    return Err(format!("cannot broadcast shape {from:?} to {shape:?}"));
                }
                Ok(Some(Type::Vector { dtype, shape: shape.clone() }))
            }
            Op::Reshape { x, shape } => {
                let (dtype, from) = vector(&ty(x), "operand")?;
                if from.iter().product::<usize>() != shape.iter().product::<usize>() {
                    return Err(format!("cannot reshape {from:?} to {shape:?}: element counts differ"));
                }
                Ok(Some(Type::Vector { dtype, shape: shape.clone() }))
            }
            Op::Slice { x, start, shape } => {
                let (dtype, from) = vector(&ty(x), "operand")?;
                if start.len() != from.len() || shape.len() != from.len() {
                    return Err(format!("slice of a rank-{} vector needs {} starts and sizes", from.len(), from.len()));
                }
                for d in 0..from.len() {
                    if start[d] + shape[d] > from[d] {
                        return Err(format!(
                            "slice [{}, {}) of dimension {d} is out of bounds for extent {}",
                            start[d],
                            start[d] + shape[d],
                            from[d]
                        ));
                    }
                }
                Ok(Some(Type::Vector { dtype, shape: shape.clone() }))
            }
            Op::Concat { xs, axis } => {
                let first = xs.first().ok_or("concat needs at least one operand")?;
                let (dtype, mut shape) = vector(&ty(first), "operand")?;
                if *axis >= shape.len() {
                    return Err(format!("concat axis {axis} out of range for rank {}", shape.len()));
                }
                for x in &xs[1..] {
                    let (d, s) = vector(&ty(x), "operand")?;
                    let mut a = s.clone();
                    let mut b = shape.clone();
                    a[*axis] = 0;
                    b[*axis] = 0;
                    if d != dtype || a != b {
                        return Err(format!(
                            "concat operands must agree in dtype and in every dimension but {axis}: {dtype}{shape:?} vs {d}{s:?}"
                        ));
                    }
                    shape[*axis] += s[*axis];
                }
                Ok(Some(Type::Vector { dtype, shape }))
            }
            Op::Reduce { op, x, axis } => {
                let (dtype, mut shape) = vector(&ty(x), "operand")?;
                if *axis >= shape.len() {
                    return Err(format!("reduction axis {axis} out of range for shape {shape:?}"));
                }
                if dtype == DType::Bool || (*op == ReduceOp::Sum && !dtype.is_float() && !dtype.is_int()) {
                    return Err(format!("cannot reduce {dtype}"));
                }
                shape[*axis] = 1;
                Ok(Some(Type::Vector { dtype, shape }))
            }
            Op::Matmul { lhs, rhs, transpose_rhs, acc } => {
                let (ld, ls) = vector(&ty(lhs), "lhs")?;
                let (rd, rs) = vector(&ty(rhs), "rhs")?;
                if ls.len() != 2 || rs.len() != 2 {
                    return Err(format!("matmul needs 2-D operands, got {ls:?} and {rs:?}"));
                }
                let (rk, n) = if *transpose_rhs { (rs[1], rs[0]) } else { (rs[0], rs[1]) };
                if ls[1] != rk {
                    return Err(format!(
                        "matmul contraction mismatch: lhs {ls:?} · rhs{} {rs:?}",
                        if *transpose_rhs { "ᵀ" } else { "" }
                    ));
                }
                if ld.is_float() != rd.is_float() || ld == DType::Bool || rd == DType::Bool {
                    return Err(format!("matmul operands must both be float or both integer, got {ld} and {rd}"));
                }
                if acc.is_float() != ld.is_float() {
                    return Err(format!("matmul of {ld} cannot accumulate in {acc}"));
                }
                Ok(Some(Type::Vector { dtype: *acc, shape: vec![ls[0], n] }))
            }
            Op::View { base, indexers } => {
                let index_ok = |v: &ValueId, what: &str| match env.value_type(*v) {
                    Type::Scalar(d) if d.is_int() => Ok(()),
                    t => Err(format!("{what} must be an integer scalar, got {t}")),
                };
                match ty(base) {
                    Type::Sem { shape } => {
                        if indexers.len() > shape.len() {
                            return Err(format!(
                                "{} indices for a rank-{} semaphore array",
                                indexers.len(),
                                shape.len()
                            ));
                        }
                        let mut out = Vec::new();
                        for (d, ix) in indexers.iter().enumerate() {
                            match ix {
                                Indexer::At(i) => index_ok(i, "semaphore index")?,
                                Indexer::Full => out.push(shape[d]),
                                Indexer::Slice { .. } => return Err("semaphore arrays can only be indexed".into()),
                            }
                        }
                        out.extend_from_slice(&shape[indexers.len()..]);
                        Ok(Some(Type::Sem { shape: out }))
                    }
                    Type::Ref(r) => {
                        if indexers.len() > r.shape.len() {
                            return Err(format!("{} indices for a rank-{} ref", indexers.len(), r.shape.len()));
                        }
                        let mut shape = Vec::new();
                        for (d, ix) in indexers.iter().enumerate() {
                            let ext = r.shape[d];
                            match ix {
                                Indexer::At(i) => index_ok(i, "index")?,
                                Indexer::Full => shape.push(ext),
                                Indexer::Slice { start, size } => {
                                    index_ok(start, "slice start")?;
                                    match size {
                                        SliceSize::Static(n) => {
                                            if *n > ext.max() {
                                                return Err(format!(
                                                    "slice of {n} elements is larger than dimension {d} ({ext})"
                                                ));
                                            }
                                            shape.push(Extent::Fixed(*n));
                                        }
                                        SliceSize::Dynamic { size, max } => {
                                            index_ok(size, "slice size")?;
                                            if *max > ext.max() {
                                                return Err(format!(
                                                    "dynamic slice bound {max} is larger than dimension {d} ({ext})"
                                                ));
                                            }
                                            shape.push(Extent::Dynamic { max: *max });
                                        }
                                    }
                                }
                            }
                        }
                        shape.extend_from_slice(&r.shape[indexers.len()..]);
                        Ok(Some(Type::Ref(RefType { space: r.space, dtype: r.dtype, shape })))
                    }
                    t => Err(format!("only refs and semaphore arrays can be viewed, got {t}")),
                }
            }
            Op::RefReshape { base, shape } => {
                let r = as_ref(&ty(base))?;
                let from = r.static_shape().ok_or("cannot reshape a ref with a dynamic extent")?;
                if from.iter().product::<usize>() != shape.iter().product::<usize>() {
                    return Err(format!("cannot reshape ref {from:?} to {shape:?}: element counts differ"));
                }
                Ok(Some(Type::Ref(RefType::fixed(r.space, r.dtype, shape))))
            }
            Op::RefBitcast { base, to } => {
                let r = as_ref(&ty(base))?;
                let from = r.static_shape().ok_or("cannot bitcast a ref with a dynamic extent")?;
                let shape = bitcast_shape(r.dtype, *to, &from)?;
                Ok(Some(Type::Ref(RefType::fixed(r.space, *to, &shape))))
            }
            Op::Load { src } => {
                let r = vmem_ref(&ty(src), "load from")?;
                let shape =
                    r.static_shape().ok_or("cannot load a ref with a dynamic extent: vectors have static shapes")?;
                Ok(Some(Type::Vector { dtype: r.dtype, shape }))
            }
            Op::LoadStrided { src, strides, shape } => {
                let r = vmem_ref(&ty(src), "load from")?;
                strided_fits(&r, strides, shape)?;
                Ok(Some(Type::Vector { dtype: r.dtype, shape: shape.clone() }))
            }
            Op::Store { dst, value, mask } => {
                let r = vmem_ref(&ty(dst), "store to")?;
                let shape = r.static_shape().ok_or("cannot store to a ref with a dynamic extent")?;
                let (vd, vs) = vector(&ty(value), "stored value")?;
                if vd != r.dtype || vs != shape {
                    return Err(format!("stored value {vd}{vs:?} does not match the ref {}{shape:?}", r.dtype));
                }
                if let Some(m) = mask {
                    let (md, ms) = vector(&ty(m), "mask")?;
                    if md != DType::Bool || ms != shape {
                        return Err(format!("store mask must be bool{shape:?}, got {md}{ms:?}"));
                    }
                }
                Ok(None)
            }
            Op::StoreStrided { dst, value, strides } => {
                let r = vmem_ref(&ty(dst), "store to")?;
                let (vd, vs) = vector(&ty(value), "stored value")?;
                if vd != r.dtype {
                    return Err(format!("stored value dtype {vd} does not match the ref's {}", r.dtype));
                }
                strided_fits(&r, strides, &vs)?;
                Ok(None)
            }
            Op::ScalarLoad { src, indices } => {
                let r = smem_ref(&ty(src))?;
                scalar_indices(env, &r, indices)?;
                Ok(Some(Type::Scalar(r.dtype)))
            }
            Op::ScalarStore { dst, indices, value } => {
                let r = smem_ref(&ty(dst))?;
                scalar_indices(env, &r, indices)?;
                match ty(value) {
                    Type::Scalar(d) if d == r.dtype => Ok(None),
                    t => Err(format!("stored value {t} does not match the ref's dtype {}", r.dtype)),
                }
            }
            Op::DmaStart { src, dst, sem } | Op::DmaWait { src, dst, sem } => {
                let s = as_ref(&ty(src))?;
                let d = as_ref(&ty(dst))?;
                for (what, r) in [("source", &s), ("destination", &d)] {
                    if r.space == MemSpace::Smem {
                        return Err(format!(
                            "DMA {what} is in SMEM; DMAs move data between HBM and VMEM (write scalars with `set`)"
                        ));
                    }
                }
                if s.dtype != d.dtype {
                    return Err(format!("DMA source is {} but destination is {}", s.dtype, d.dtype));
                }
                if s.shape.len() != d.shape.len() {
                    return Err(format!(
                        "DMA source shape {} and destination shape {} differ in rank",
                        super::fmt_shape(&s.shape),
                        super::fmt_shape(&d.shape)
                    ));
                }
                for (a, b) in s.shape.iter().zip(&d.shape) {
                    if let (Some(x), Some(y)) = (a.fixed(), b.fixed()) {
                        if x != y {
                            return Err(format!(
                                "DMA source shape {} does not match destination shape {}",
                                super::fmt_shape(&s.shape),
                                super::fmt_shape(&d.shape)
                            ));
                        }
                    }
                }
                match ty(sem) {
                    Type::Sem { shape } if shape.is_empty() => Ok(None),
                    t => Err(format!("DMA needs a single semaphore (index the array with `.at(i)`), got {t}")),
                }
            }
            Op::VarDecl { var, init } => {
                let vt = env.var_type(*var);
                if let Some(init) = init {
                    if &ty(init) != vt {
                        return Err(format!("variable of type {vt} initialised with {}", ty(init)));
                    }
                }
                if matches!(vt, Type::Ref(_) | Type::Sem { .. }) {
                    return Err(format!("variables hold scalars and vectors, not {vt}"));
                }
                Ok(None)
            }
            Op::VarGet { var } => Ok(Some(env.var_type(*var).clone())),
            Op::VarSet { var, value } => {
                let vt = env.var_type(*var);
                if &ty(value) != vt {
                    return Err(format!("cannot assign a {} to a variable of type {vt}", ty(value)));
                }
                Ok(None)
            }
            Op::For { lo, hi, .. } => {
                for (what, v) in [("start", lo), ("end", hi)] {
                    if ty(v) != Type::Scalar(DType::I32) {
                        return Err(format!("loop {what} must be an i32 scalar, got {}", ty(v)));
                    }
                }
                Ok(None)
            }
            Op::If { cond, .. } | Op::While { cond, .. } => match ty(cond) {
                Type::Scalar(DType::Bool) => Ok(None),
                t => Err(format!("condition must be a bool scalar, got {t}")),
            },
            Op::DebugPrint { args, .. } => {
                for a in args {
                    if !matches!(ty(a), Type::Scalar(_)) {
                        return Err(format!("debug_print takes scalars, got {}", ty(a)));
                    }
                }
                Ok(None)
            }
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
