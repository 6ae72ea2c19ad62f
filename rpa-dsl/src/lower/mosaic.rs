//! Lowering to Mosaic: MLIR text in the `tpu` dialect, as Pallas emits it for TPU kernels.
//!
//! The IR's mutable locals become SSA values: a `for`/`while` carries the locals its body writes as
//! `iter_args`, an `if` returns the ones its branches write. Every op carries the author's source
//! location as an MLIR `loc("file":line:col)`, so compiler errors map back to the kernel source.

use crate::dtype::DType;
use crate::error::KernelError;
use crate::ir::*;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

/// The Mosaic dialect version our text targets (`stable_mosaic.version`).
pub const MOSAIC_VERSION: u32 = 15;

/// Lowers `kernel` to a Mosaic module (MLIR text).
pub fn lower(kernel: &Kernel) -> Result<String, KernelError> {
    let mut e = Emitter::new(kernel);
    e.module()?;
    Ok(e.out)
}

pub(crate) fn elem(dt: DType) -> &'static str {
    dt.mlir()
}

pub(crate) fn shape_prefix(shape: &[usize]) -> String {
    shape.iter().map(|d| format!("{d}x")).collect()
}

fn vector_type(dt: DType, shape: &[usize]) -> String {
    if shape.is_empty() {
        elem(dt).to_string()
    } else {
        format!("vector<{}{}>", shape_prefix(shape), elem(dt))
    }
}

fn space(s: MemSpace) -> &'static str {
    match s {
        MemSpace::Hbm => "any",
        MemSpace::Vmem => "vmem",
        MemSpace::Smem => "smem",
    }
}

fn memref_type(r: &RefType) -> String {
    let dims: String = r
        .shape
        .iter()
        .map(|e| match e {
            Extent::Fixed(n) => format!("{n}x"),
            Extent::Dynamic { .. } => "?x".to_string(),
        })
        .collect();
    format!("memref<{dims}{}, #tpu.memory_space<{}>>", elem(r.dtype), space(r.space))
}

fn sem_type(shape: &[usize]) -> String {
    format!("memref<{}!tpu.dma_semaphore, #tpu.memory_space<semaphore_mem>>", shape_prefix(shape))
}

pub(crate) fn type_str(t: &Type) -> String {
    match t {
        Type::Scalar(d) => elem(*d).to_string(),
        Type::Vector { dtype, shape } => vector_type(*dtype, shape),
        Type::Ref(r) => memref_type(r),
        Type::Sem { shape } => sem_type(shape),
    }
}

fn loc_str(l: &Loc) -> String {
    format!("loc({:?}:{}:{})", l.file, l.line, l.col)
}

fn float_lit(dtype: DType, v: f64) -> String {
    if v.is_finite() {
        // MLIR float literals need a decimal point: `2e0` → `2.0e0`.
        let s = format!("{v:e}");
        match s.split_once('e') {
            Some((m, e)) if !m.contains('.') => format!("{m}.0e{e}"),
            _ => s,
        }
    } else {
        // Infinities and NaN as hex bit patterns, which MLIR accepts only at the type's width.
        format!("0x{:0width$X}", dtype.float_to_bits(v), width = dtype.bits() / 4)
    }
}

struct Emitter<'k> {
    k: &'k Kernel,
    out: String,
    indent: usize,
    next_tmp: usize,
    /// Current SSA name of each IR value.
    names: HashMap<ValueId, String>,
    /// Current SSA name of each mutable local.
    vars: HashMap<VarId, String>,
}

impl<'k> Emitter<'k> {
    fn new(k: &'k Kernel) -> Self {
        Emitter { k, out: String::new(), indent: 0, next_tmp: 0, names: HashMap::new(), vars: HashMap::new() }
    }

    fn err(&self, loc: Loc, op: &str, msg: impl Into<String>) -> KernelError {
        KernelError::single(&self.k.name, Some(op), loc, msg)
    }

    fn tmp(&mut self) -> String {
        self.next_tmp += 1;
        format!("%t{}", self.next_tmp)
    }

    fn line(&mut self, s: &str) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(s);
        self.out.push('\n');
    }

    fn name(&self, v: ValueId) -> String {
        self.names.get(&v).cloned().unwrap_or_else(|| format!("%v{}", v.0))
    }

    fn ty(&self, v: ValueId) -> &'k Type {
        self.k.ty(v)
    }

    fn grid(&self) -> Vec<usize> {
        if self.k.grid.is_empty() {
            vec![1]
        } else {
            self.k.grid.clone()
        }
    }

    fn module(&mut self) -> Result<(), KernelError> {
        let name = sanitize(&self.k.name);
        writeln!(self.out, "module @{name} attributes {{stable_mosaic.version = {MOSAIC_VERSION} : i64}} {{").unwrap();
        self.indent = 1;
        let grid = self.grid();
        let mut args: Vec<String> = (0..grid.len()).map(|i| format!("%g{i}: i32")).collect();
        let prefetch: Vec<&Param> = self.k.params.iter().filter(|p| p.role == Role::Prefetch).collect();
        for p in &self.k.params {
            args.push(format!("%v{}: {}", p.value.0, type_str(self.ty(p.value))));
        }
        let semantics: Vec<String> = if self.k.grid.is_empty() {
            vec!["#tpu.dimension_semantics<arbitrary>".into()]
        } else {
            self.k.semantics.iter().map(|s| format!("#tpu.dimension_semantics<{}>", s.name())).collect()
        };
        let mut windows = Vec::new();
        for (i, p) in self.k.params.iter().enumerate() {
            if matches!(p.role, Role::Input | Role::Output) {
                match &p.block {
                    Some(b) => windows.push(format!(
                        "{{transform_indices = @transform_{i}, window_bounds = array<i64: {}>}}",
                        b.block_shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
                    )),
                    None => windows.push("{}".into()),
                }
            }
        }
        let scratch = self.k.params.iter().filter(|p| p.role == Role::Scratch).count();
        let bounds: Vec<String> = grid.iter().map(|d| d.to_string()).collect();
        self.line(&format!(
            "func.func @{name}({}) attributes {{dimension_semantics = [{}], iteration_bounds = array<i64: {}>, scalar_prefetch = {} : i64, scratch_operands = {scratch} : i64, tpu.core_type = #tpu.core_type<tc>, window_params = [{}]}} {{",
            args.join(", "),
            semantics.join(", "),
            bounds.join(", "),
            prefetch.len(),
            windows.join(", ")
        ));
        self.indent += 1;
        self.block(&self.k.body)?;
        self.line("return");
        self.indent -= 1;
        self.line(&format!("}} {}", loc_str(&self.k.loc)));
        // One transform function per BlockSpec.
        for (i, p) in self.k.params.iter().enumerate() {
            if let Some(b) = &p.block {
                self.transform(i, &b.index_map, &prefetch)?;
            }
        }
        self.indent = 0;
        self.line("}");
        Ok(())
    }

    fn transform(&mut self, i: usize, map: &'k IndexMap, prefetch: &[&Param]) -> Result<(), KernelError> {
        self.names.clear();
        self.vars.clear();
        let mut args: Vec<String> = Vec::new();
        for (gi, g) in map.grid_indices.iter().enumerate() {
            args.push(format!("%v{}: i32", g.0));
            let _ = gi;
        }
        // Pad to the grid rank (index maps may take fewer grid indices).
        for gi in map.grid_indices.len()..self.grid().len() {
            args.push(format!("%unused{gi}: i32"));
        }
        for p in prefetch {
            args.push(format!("%v{}: {}", p.value.0, type_str(self.ty(p.value))));
        }
        let rets = vec!["i32"; map.results.len()].join(", ");
        self.line(&format!("func.func @transform_{i}({}) -> ({rets}) {{", args.join(", ")));
        self.indent += 1;
        self.block(&map.body)?;
        let results: Vec<String> = map.results.iter().map(|r| self.name(*r)).collect();
        self.line(&format!("return {} : {rets} {}", results.join(", "), loc_str(&map.loc)));
        self.indent -= 1;
        self.line("}");
        Ok(())
    }

    fn block(&mut self, b: &'k Block) -> Result<(), KernelError> {
        for inst in &b.insts {
            self.inst(inst)?;
        }
        Ok(())
    }

    /// Vars written inside `blocks` that were declared outside them.
    fn carried(&self, blocks: &[&'k Block]) -> Vec<VarId> {
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

    fn var_type(&self, v: VarId) -> String {
        type_str(&self.k.vars[v.0 as usize])
    }

    fn constant(&mut self, dt: DType, v: f64, loc: &str) -> String {
        let t = self.tmp();
        let lit = if dt.is_float() {
            float_lit(dt, v)
        } else if dt == DType::Bool {
            (v != 0.0).to_string()
        } else {
            (v as i64).to_string()
        };
        // A bool attribute carries its type: `arith.constant true`, not `true : i1`.
        let ty = if dt == DType::Bool { String::new() } else { format!(" : {}", elem(dt)) };
        self.line(&format!("{t} = arith.constant {lit}{ty} {loc}"));
        t
    }

    fn index(&mut self, v: ValueId, loc: &str) -> String {
        let t = self.tmp();
        let n = self.name(v);
        self.line(&format!("{t} = arith.index_cast {n} : i32 to index {loc}"));
        t
    }

    fn zero_index(&mut self, loc: &str) -> String {
        let t = self.tmp();
        self.line(&format!("{t} = arith.constant 0 : index {loc}"));
        t
    }

    /// `v` as a value of type `target` (broadcast scalars and size-1 dims; same dtype).
    fn broadcast_to(&mut self, v: ValueId, target: &[usize], loc: &str) -> String {
        let n = self.name(v);
        match self.ty(v) {
            Type::Vector { shape, .. } if shape.as_slice() == target => n,
            Type::Vector { dtype, shape } => {
                let (dtype, shape) = (*dtype, shape.clone());
                let t = self.tmp();
                self.line(&format!(
                    "{t} = vector.broadcast {n} : {} to {} {loc}",
                    vector_type(dtype, &shape),
                    vector_type(dtype, target)
                ));
                t
            }
            Type::Scalar(dt) if !target.is_empty() => {
                let dt = *dt;
                let t = self.tmp();
                self.line(&format!("{t} = vector.broadcast {n} : {} to {} {loc}", elem(dt), vector_type(dt, target)));
                t
            }
            _ => n,
        }
    }

    fn result_shape(&self, inst: &Inst) -> Vec<usize> {
        match inst.result.map(|r| self.ty(r)) {
            Some(Type::Vector { shape, .. }) => shape.clone(),
            _ => vec![],
        }
    }

    fn bind(&mut self, inst: &Inst, name: String) {
        if let Some(r) = inst.result {
            self.names.insert(r, name);
        }
    }

    fn res(&self, inst: &Inst) -> String {
        inst.result.map(|r| format!("%v{}", r.0)).unwrap_or_default()
    }

    fn inst(&mut self, inst: &'k Inst) -> Result<(), KernelError> {
        let loc = loc_str(&inst.loc);
        let l = loc.as_str();
        let res = self.res(inst);
        let rty = inst.result.map(|r| type_str(self.ty(r))).unwrap_or_default();
        match &inst.op {
            Op::Const { dtype, value } => {
                let lit = match value {
                    Literal::Int(i) if *dtype == DType::Bool => (*i != 0).to_string(),
                    Literal::Int(i) => i.to_string(),
                    Literal::Float(f) => float_lit(*dtype, *f),
                };
                let ty = if *dtype == DType::Bool { String::new() } else { format!(" : {}", elem(*dtype)) };
                self.line(&format!("{res} = arith.constant {lit}{ty} {l}"));
            }
            Op::ProgramId { axis } => {
                self.bind(inst, format!("%g{axis}"));
            }
            Op::NumPrograms { axis } => {
                let n = self.grid().get(*axis).copied().unwrap_or(1);
                self.line(&format!("{res} = arith.constant {n} : i32 {l}"));
            }
            Op::Unary { op, x } => {
                let dt = self.ty(*x).dtype().unwrap_or(DType::F32);
                let xn = self.name(*x);
                let s = match op {
                    UnaryOp::Neg if dt.is_float() => format!("arith.negf {xn} : {rty}"),
                    UnaryOp::Neg => {
                        let z = self.zero_like(dt, &self.result_shape(inst), l);
                        format!("arith.subi {z}, {xn} : {rty}")
                    }
                    UnaryOp::Not => {
                        let ones = if dt == DType::Bool { 1.0 } else { -1.0 };
                        let shape = self.result_shape(inst);
                        let c = self.splat(dt, ones, &shape, l);
                        format!("arith.xori {xn}, {c} : {rty}")
                    }
                    UnaryOp::Abs if dt.is_float() => format!("math.absf {xn} : {rty}"),
                    UnaryOp::Abs => format!("math.absi {xn} : {rty}"),
                    UnaryOp::Exp => format!("math.exp {xn} : {rty}"),
                    UnaryOp::Log => format!("math.log {xn} : {rty}"),
                    UnaryOp::Tanh => format!("math.tanh {xn} : {rty}"),
                    UnaryOp::Sqrt => format!("math.sqrt {xn} : {rty}"),
                    UnaryOp::Rsqrt => format!("math.rsqrt {xn} : {rty}"),
                    UnaryOp::Recip { approx: true } => {
                        format!("tpu.reciprocal {xn} {{approx = true}} : {rty} -> {rty}")
                    }
                    UnaryOp::Recip { approx: false } => {
                        let shape = self.result_shape(inst);
                        let one = self.splat(dt, 1.0, &shape, l);
                        format!("arith.divf {one}, {xn} : {rty}")
                    }
                };
                self.line(&format!("{res} = {s} {l}"));
            }
            Op::Binary { op, lhs, rhs } => {
                let dt = self.ty(*lhs).dtype().unwrap_or(DType::F32);
                let shape = self.result_shape(inst);
                let (a, b) = (self.broadcast_to(*lhs, &shape, l), self.broadcast_to(*rhs, &shape, l));
                let (f, u) = (dt.is_float(), dt.is_unsigned_int());
                let name = match op {
                    BinaryOp::Add if f => "arith.addf",
                    BinaryOp::Add => "arith.addi",
                    BinaryOp::Sub if f => "arith.subf",
                    BinaryOp::Sub => "arith.subi",
                    BinaryOp::Mul if f => "arith.mulf",
                    BinaryOp::Mul => "arith.muli",
                    BinaryOp::Div if f => "arith.divf",
                    BinaryOp::Div if u => "arith.divui",
                    BinaryOp::Div => "arith.divsi",
                    BinaryOp::Rem if f => "arith.remf",
                    BinaryOp::Rem if u => "arith.remui",
                    BinaryOp::Rem => "arith.remsi",
                    BinaryOp::Max if f => "arith.maximumf",
                    BinaryOp::Max if u => "arith.maxui",
                    BinaryOp::Max => "arith.maxsi",
                    BinaryOp::Min if f => "arith.minimumf",
                    BinaryOp::Min if u => "arith.minui",
                    BinaryOp::Min => "arith.minsi",
                    BinaryOp::And => "arith.andi",
                    BinaryOp::Or => "arith.ori",
                    BinaryOp::Xor => "arith.xori",
                    BinaryOp::Shl => "arith.shli",
                    BinaryOp::Shr if u => "arith.shrui",
                    BinaryOp::Shr => "arith.shrsi",
                };
                self.line(&format!("{res} = {name} {a}, {b} : {rty} {l}"));
            }
            Op::Compare { op, lhs, rhs } => {
                let dt = self.ty(*lhs).dtype().unwrap_or(DType::F32);
                let shape = self.result_shape(inst);
                let (a, b) = (self.broadcast_to(*lhs, &shape, l), self.broadcast_to(*rhs, &shape, l));
                let ot = vector_type(dt, &shape);
                let pred = match (op, dt.is_float(), dt.is_unsigned_int() || dt == DType::Bool) {
                    (CmpOp::Eq, true, _) => "oeq",
                    (CmpOp::Ne, true, _) => "une",
                    (CmpOp::Lt, true, _) => "olt",
                    (CmpOp::Le, true, _) => "ole",
                    (CmpOp::Gt, true, _) => "ogt",
                    (CmpOp::Ge, true, _) => "oge",
                    (CmpOp::Eq, false, _) => "eq",
                    (CmpOp::Ne, false, _) => "ne",
                    (CmpOp::Lt, false, true) => "ult",
                    (CmpOp::Le, false, true) => "ule",
                    (CmpOp::Gt, false, true) => "ugt",
                    (CmpOp::Ge, false, true) => "uge",
                    (CmpOp::Lt, false, false) => "slt",
                    (CmpOp::Le, false, false) => "sle",
                    (CmpOp::Gt, false, false) => "sgt",
                    (CmpOp::Ge, false, false) => "sge",
                };
                let cmp = if dt.is_float() { "arith.cmpf" } else { "arith.cmpi" };
                self.line(&format!("{res} = {cmp} {pred}, {a}, {b} : {ot} {l}"));
            }
            Op::Select { cond, on_true, on_false } => {
                let shape = self.result_shape(inst);
                let c = if shape.is_empty() || matches!(self.ty(*cond), Type::Vector { .. }) {
                    self.broadcast_to(*cond, &shape, l)
                } else {
                    self.name(*cond)
                };
                let (a, b) = (self.broadcast_to(*on_true, &shape, l), self.broadcast_to(*on_false, &shape, l));
                let ct = if matches!(self.ty(*cond), Type::Scalar(_)) && !shape.is_empty() && c == self.name(*cond) {
                    "i1".to_string()
                } else {
                    vector_type(DType::Bool, &shape)
                };
                self.line(&format!("{res} = arith.select {c}, {a}, {b} : {ct}, {rty} {l}"));
            }
            Op::Cast { x, to } => {
                let from = self.ty(*x).dtype().unwrap_or(DType::F32);
                let xn = self.name(*x);
                let xt = type_str(self.ty(*x));
                if from.mlir() == to.mlir() && from.is_float() == to.is_float() {
                    // Same storage (e.g. i32 → u32): nothing to emit.
                    self.bind(inst, xn);
                    return Ok(());
                }
                let op = match (from.is_float(), to.is_float()) {
                    (true, true) if to.bits() > from.bits() => "arith.extf",
                    (true, true) if to.bits() < from.bits() => "arith.truncf",
                    (true, true) => "arith.extf",
                    (true, false) if to.is_unsigned_int() => "arith.fptoui",
                    (true, false) => "arith.fptosi",
                    (false, true) if from.is_unsigned_int() || from == DType::Bool => "arith.uitofp",
                    (false, true) => "arith.sitofp",
                    (false, false) if to.bits() > from.bits() && (from.is_unsigned_int() || from == DType::Bool) => {
                        "arith.extui"
                    }
                    (false, false) if to.bits() > from.bits() => "arith.extsi",
                    (false, false) => "arith.trunci",
                };
                if *to == DType::Bool {
                    let shape = self.result_shape(inst);
                    let z = self.zero_like(from, &shape, l);
                    let (cmp, pred) = if from.is_float() { ("arith.cmpf", "une") } else { ("arith.cmpi", "ne") };
                    self.line(&format!("{res} = {cmp} {pred}, {xn}, {z} : {xt} {l}"));
                } else {
                    self.line(&format!("{res} = {op} {xn} : {xt} to {rty} {l}"));
                }
            }
            Op::Bitcast { x, .. } => {
                let (xn, xt) = (self.name(*x), type_str(self.ty(*x)));
                if matches!(self.ty(*x), Type::Scalar(_)) {
                    self.line(&format!("{res} = arith.bitcast {xn} : {xt} to {rty} {l}"));
                } else {
                    self.line(&format!("{res} = tpu.bitcast {xn} : {xt} -> {rty} {l}"));
                }
            }
            Op::Iota { dim, .. } => {
                self.line(&format!("{res} = tpu.iota {{dimensions = array<i32: {dim}>}} : {rty} {l}"));
            }
            Op::Broadcast { x, shape } => {
                let n = self.broadcast_to(*x, shape, l);
                self.bind(inst, n);
            }
            Op::Reshape { x, .. } => {
                let (xn, xt) = (self.name(*x), type_str(self.ty(*x)));
                self.line(&format!("{res} = vector.shape_cast {xn} : {xt} to {rty} {l}"));
            }
            Op::Slice { x, start, shape } => {
                let (xn, xt) = (self.name(*x), type_str(self.ty(*x)));
                let ones = vec!["1"; shape.len()].join(", ");
                self.line(&format!(
                    "{res} = vector.extract_strided_slice {xn} offsets = [{}], sizes = [{}], strides = [{ones}] : {xt} to {rty} {l}",
                    join(start),
                    join(shape)
                ));
            }
            Op::Concat { xs, axis } => {
                let names: Vec<String> = xs.iter().map(|x| self.name(*x)).collect();
                let types: Vec<String> = xs.iter().map(|x| type_str(self.ty(*x))).collect();
                self.line(&format!(
                    "{res} = tpu.concatenate {} in {axis} : {} -> {rty} {l}",
                    names.join(", "),
                    types.join(", ")
                ));
            }
            Op::Reduce { op, x, axis } => {
                let Type::Vector { dtype, shape } = self.ty(*x) else { unreachable!("type rule") };
                let (dtype, shape) = (*dtype, shape.clone());
                let mut reduced = shape.clone();
                reduced.remove(*axis);
                let (kind, init) = match (op, dtype.is_float()) {
                    (ReduceOp::Sum, true) => ("add", 0.0),
                    (ReduceOp::Sum, false) => ("add", 0.0),
                    (ReduceOp::Max, true) => ("maximumf", f64::NEG_INFINITY),
                    (ReduceOp::Max, false) => {
                        (if dtype.is_unsigned_int() { "maxui" } else { "maxsi" }, dtype.finite_range().0)
                    }
                    (ReduceOp::Min, true) => ("minimumf", f64::INFINITY),
                    (ReduceOp::Min, false) => {
                        (if dtype.is_unsigned_int() { "minui" } else { "minsi" }, dtype.finite_range().1)
                    }
                };
                let acc = self.splat(dtype, init, &reduced, l);
                let t = self.tmp();
                self.line(&format!(
                    "{t} = vector.multi_reduction <{kind}>, {}, {acc} [{axis}] : {} to {} {l}",
                    self.name(*x),
                    vector_type(dtype, &shape),
                    vector_type(dtype, &reduced)
                ));
                self.line(&format!("{res} = vector.shape_cast {t} : {} to {rty} {l}", vector_type(dtype, &reduced)));
            }
            Op::Matmul { lhs, rhs, transpose_rhs, acc } => {
                let shape = self.result_shape(inst);
                let zero = self.splat(*acc, 0.0, &shape, l);
                let dims = if *transpose_rhs {
                    "#tpu.dot_dimension_numbers<[1], [1], [0], [0], [0, 0, 1, 0], [], []>"
                } else {
                    "#tpu.dot_dimension_numbers<[1], [0], [0], [1], [0, 0, 1, 1], [], []>"
                };
                self.line(&format!(
                    "{res} = tpu.matmul {}, {}, {zero} {{dimension_numbers = {dims}, transpose_lhs_hint = false}} : {}, {}, {rty} -> {rty} {l}",
                    self.name(*lhs),
                    self.name(*rhs),
                    type_str(self.ty(*lhs)),
                    type_str(self.ty(*rhs)),
                ));
            }
            Op::View { base, indexers } => self.view(inst, *base, indexers, l)?,
            Op::RefReshape { base, .. } => {
                let (bn, bt) = (self.name(*base), type_str(self.ty(*base)));
                self.line(&format!("{res} = tpu.memref_reshape {bn} : {bt} -> {rty} {l}"));
            }
            Op::RefBitcast { base, .. } => {
                let (bn, bt) = (self.name(*base), type_str(self.ty(*base)));
                self.line(&format!("{res} = tpu.memref_bitcast {bn} : {bt} -> {rty} {l}"));
            }
            Op::Load { src } => {
                let (sn, st) = (self.name(*src), type_str(self.ty(*src)));
                let idx = self.zero_indices(*src, l);
                self.line(&format!("{res} = vector.load {sn}[{idx}] : {st}, {rty} {l}"));
            }
            Op::LoadStrided { src, strides, .. } => {
                let (sn, st) = (self.name(*src), type_str(self.ty(*src)));
                let idx = self.zero_indices(*src, l);
                self.line(&format!(
                    "{res} = tpu.strided_load {sn}[{idx}] {{strides = array<i32: {}>}} : {st}, {rty} {l}",
                    join(strides)
                ));
            }
            Op::Store { dst, value, mask } => {
                let (dn, dt) = (self.name(*dst), type_str(self.ty(*dst)));
                let (vn, vt) = (self.name(*value), type_str(self.ty(*value)));
                let idx = self.zero_indices(*dst, l);
                match mask {
                    None => self.line(&format!("vector.store {vn}, {dn}[{idx}] : {dt}, {vt} {l}")),
                    Some(m) => {
                        let (mn, mt) = (self.name(*m), type_str(self.ty(*m)));
                        self.line(&format!(
                            "tpu.vector_store {dn}[{idx}], {vn} masked {mn} {{strides = array<i32>}} : {dt}, {vt}, {mt} {l}"
                        ));
                    }
                }
            }
            Op::StoreStrided { dst, value, strides } => {
                let (dn, dt) = (self.name(*dst), type_str(self.ty(*dst)));
                let (vn, vt) = (self.name(*value), type_str(self.ty(*value)));
                let idx = self.zero_indices(*dst, l);
                self.line(&format!(
                    "tpu.strided_store {vn}, {dn}[{idx}] {{strides = array<i32: {}>}} : {dt}, {vt} {l}",
                    join(strides)
                ));
            }
            Op::ScalarLoad { src, indices } => {
                let (sn, st) = (self.name(*src), type_str(self.ty(*src)));
                let idx: Vec<String> = indices.iter().map(|i| self.index(*i, l)).collect();
                self.line(&format!("{res} = memref.load {sn}[{}] : {st} {l}", idx.join(", ")));
            }
            Op::ScalarStore { dst, indices, value } => {
                let (dn, dt) = (self.name(*dst), type_str(self.ty(*dst)));
                let idx: Vec<String> = indices.iter().map(|i| self.index(*i, l)).collect();
                let vn = self.name(*value);
                self.line(&format!("memref.store {vn}, {dn}[{}] : {dt} {l}", idx.join(", ")));
            }
            Op::DmaStart { src, dst, sem } => {
                let (s, d, m) = (self.typed(*src), self.typed(*dst), self.typed(*sem));
                self.line(&format!("tpu.enqueue_dma source({s}) target({d}) target_semaphore({m}) {l}"));
            }
            Op::DmaWait { src, dst, sem } => {
                let (s, d, m) = (self.typed(*src), self.typed(*dst), self.typed(*sem));
                self.line(&format!("tpu.wait_dma2 semaphore({m}) src({s}) dst({d}) {l}"));
            }
            Op::VarDecl { var, init } => {
                let name = match init {
                    Some(v) => self.name(*v),
                    None => {
                        let t = self.k.vars[var.0 as usize].clone();
                        let (dt, shape) = match &t {
                            Type::Vector { dtype, shape } => (*dtype, shape.clone()),
                            t => (t.dtype().unwrap_or(DType::I32), vec![]),
                        };
                        self.splat(dt, 0.0, &shape, l)
                    }
                };
                self.vars.insert(*var, name);
            }
            Op::VarGet { var } => {
                let n = self
                    .vars
                    .get(var)
                    .cloned()
                    .ok_or_else(|| self.err(inst.loc, "var_get", "variable read before it is declared"))?;
                self.bind(inst, n);
            }
            Op::VarSet { var, value } => {
                let n = self.name(*value);
                self.vars.insert(*var, n);
            }
            Op::For { lo, hi, index, body } => {
                let carried = self.carried(&[body]);
                let inits: Vec<String> = carried.iter().map(|v| self.vars[v].clone()).collect();
                let types: Vec<String> = carried.iter().map(|v| self.var_type(*v)).collect();
                let one = self.constant(DType::I32, 1.0, l);
                let results = self.tmp();
                let iter_names: Vec<String> = carried.iter().map(|_| self.tmp()).collect();
                let head = if carried.is_empty() {
                    format!("scf.for %v{} = {} to {} step {one} : i32 {{", index.0, self.name(*lo), self.name(*hi))
                } else {
                    let args: Vec<String> = iter_names.iter().zip(&inits).map(|(a, i)| format!("{a} = {i}")).collect();
                    format!(
                        "{results}:{} = scf.for %v{} = {} to {} step {one} iter_args({}) -> ({}) : i32 {{",
                        carried.len(),
                        index.0,
                        self.name(*lo),
                        self.name(*hi),
                        args.join(", "),
                        types.join(", ")
                    )
                };
                self.line(&head);
                self.indent += 1;
                for (v, n) in carried.iter().zip(&iter_names) {
                    self.vars.insert(*v, n.clone());
                }
                self.block(body)?;
                if !carried.is_empty() {
                    let ys: Vec<String> = carried.iter().map(|v| self.vars[v].clone()).collect();
                    self.line(&format!("scf.yield {} : {}", ys.join(", "), types.join(", ")));
                }
                self.indent -= 1;
                self.line(&format!("}} {l}"));
                for (i, v) in carried.iter().enumerate() {
                    self.vars.insert(*v, format!("{results}#{i}"));
                }
            }
            Op::If { cond, then_body, else_body } => {
                let carried = self.carried(&[then_body, else_body]);
                let types: Vec<String> = carried.iter().map(|v| self.var_type(*v)).collect();
                let before: Vec<String> = carried.iter().map(|v| self.vars[v].clone()).collect();
                let results = self.tmp();
                let c = self.name(*cond);
                if carried.is_empty() {
                    self.line(&format!("scf.if {c} {{"));
                } else {
                    self.line(&format!("{results}:{} = scf.if {c} -> ({}) {{", carried.len(), types.join(", ")));
                }
                for (bi, body) in [then_body, else_body].into_iter().enumerate() {
                    if bi == 1 {
                        if carried.is_empty() && body.insts.is_empty() {
                            break;
                        }
                        self.line("} else {");
                    }
                    self.indent += 1;
                    for (v, n) in carried.iter().zip(&before) {
                        self.vars.insert(*v, n.clone());
                    }
                    self.block(body)?;
                    if !carried.is_empty() {
                        let ys: Vec<String> = carried.iter().map(|v| self.vars[v].clone()).collect();
                        self.line(&format!("scf.yield {} : {}", ys.join(", "), types.join(", ")));
                    }
                    self.indent -= 1;
                }
                self.line(&format!("}} {l}"));
                for (i, v) in carried.iter().enumerate() {
                    self.vars.insert(*v, format!("{results}#{i}"));
                }
            }
            Op::While { cond_body, cond, body } => {
                let carried = self.carried(&[cond_body, body]);
                let types: Vec<String> = carried.iter().map(|v| self.var_type(*v)).collect();
                let inits: Vec<String> = carried.iter().map(|v| self.vars[v].clone()).collect();
                let results = self.tmp();
                let before_names: Vec<String> = carried.iter().map(|_| self.tmp()).collect();
                let after_names: Vec<String> = carried.iter().map(|_| self.tmp()).collect();
                let args: Vec<String> = before_names.iter().zip(&inits).map(|(a, i)| format!("{a} = {i}")).collect();
                let lhs = if carried.is_empty() { String::new() } else { format!("{results}:{} = ", carried.len()) };
                self.line(&format!(
                    "{lhs}scf.while ({}) : ({}) -> ({}) {{",
                    args.join(", "),
                    types.join(", "),
                    types.join(", ")
                ));
                self.indent += 1;
                for (v, n) in carried.iter().zip(&before_names) {
                    self.vars.insert(*v, n.clone());
                }
                self.block(cond_body)?;
                let ys: Vec<String> = carried.iter().map(|v| self.vars[v].clone()).collect();
                let c = self.name(*cond);
                if carried.is_empty() {
                    self.line(&format!("scf.condition({c})"));
                } else {
                    self.line(&format!("scf.condition({c}) {} : {}", ys.join(", "), types.join(", ")));
                }
                self.indent -= 1;
                self.line("} do {");
                let bb: Vec<String> = after_names.iter().zip(&types).map(|(n, t)| format!("{n}: {t}")).collect();
                self.line(&format!("^bb0({}):", bb.join(", ")));
                self.indent += 1;
                for (v, n) in carried.iter().zip(&after_names) {
                    self.vars.insert(*v, n.clone());
                }
                self.block(body)?;
                let ys: Vec<String> = carried.iter().map(|v| self.vars[v].clone()).collect();
                if carried.is_empty() {
                    self.line("scf.yield");
                } else {
                    self.line(&format!("scf.yield {} : {}", ys.join(", "), types.join(", ")));
                }
                self.indent -= 1;
                self.line(&format!("}} {l}"));
                for (i, v) in carried.iter().enumerate() {
                    self.vars.insert(*v, format!("{results}#{i}"));
                }
            }
            Op::DebugPrint { message, .. } => {
                // Mosaic's debug printing needs runtime support we do not emit: keep it as a comment.
                self.line(&format!("// debug_print {message:?}"));
            }
        }
        Ok(())
    }

    fn typed(&self, v: ValueId) -> String {
        format!("{} : {}", self.name(v), type_str(self.ty(v)))
    }

    fn zero_indices(&mut self, r: ValueId, l: &str) -> String {
        let rank = match self.ty(r) {
            Type::Ref(r) => r.shape.len(),
            _ => 0,
        };
        let z = self.zero_index(l);
        vec![z; rank].join(", ")
    }

    fn splat(&mut self, dt: DType, v: f64, shape: &[usize], l: &str) -> String {
        if shape.is_empty() {
            return self.constant(dt, v, l);
        }
        let t = self.tmp();
        let lit = if dt.is_float() {
            float_lit(dt, v)
        } else if dt == DType::Bool {
            (v != 0.0).to_string()
        } else {
            (v as i64).to_string()
        };
        self.line(&format!("{t} = arith.constant dense<{lit}> : {} {l}", vector_type(dt, shape)));
        t
    }

    fn zero_like(&mut self, dt: DType, shape: &[usize], l: &str) -> String {
        self.splat(dt, 0.0, shape, l)
    }

    fn view(&mut self, inst: &Inst, base: ValueId, indexers: &[Indexer], l: &str) -> Result<(), KernelError> {
        let res = self.res(inst);
        let bt = self.ty(base).clone();
        let (rank, is_sem) = match &bt {
            Type::Ref(r) => (r.shape.len(), false),
            Type::Sem { shape } => (shape.len(), true),
            _ => return Err(self.err(inst.loc, "view", "view of a non-ref")),
        };
        let mut offsets = Vec::new();
        let mut dyn_sizes = Vec::new();
        let mut sliced: Vec<String> = Vec::new();
        let mut squeeze = false;
        let base_shape: Vec<String> = match &bt {
            Type::Ref(r) => r.shape.iter().map(|e| e.fixed().map_or("?".into(), |n| n.to_string())).collect(),
            Type::Sem { shape } => shape.iter().map(|n| n.to_string()).collect(),
            _ => vec![],
        };
        for (d, dim) in base_shape.iter().enumerate().take(rank) {
            match indexers.get(d).unwrap_or(&Indexer::Full) {
                Indexer::Full => {
                    offsets.push(self.constant(DType::I32, 0.0, l));
                    sliced.push(dim.clone());
                }
                Indexer::At(i) => {
                    offsets.push(self.name(*i));
                    sliced.push("1".into());
                    squeeze = true;
                }
                Indexer::Slice { start, size } => {
                    offsets.push(self.name(*start));
                    match size {
                        SliceSize::Static(n) => sliced.push(n.to_string()),
                        SliceSize::Dynamic { size, .. } => {
                            dyn_sizes.push(self.name(*size));
                            sliced.push("?".into());
                        }
                    }
                }
            }
        }
        let (elem_part, space_part) = match &bt {
            Type::Ref(r) => (elem(r.dtype).to_string(), format!("#tpu.memory_space<{}>", space(r.space))),
            _ => ("!tpu.dma_semaphore".to_string(), "#tpu.memory_space<semaphore_mem>".to_string()),
        };
        let sliced_ty =
            format!("memref<{}{elem_part}, {space_part}>", sliced.iter().map(|d| format!("{d}x")).collect::<String>());
        let dyn_part = if dyn_sizes.is_empty() { String::new() } else { format!(" <{}>", dyn_sizes.join(", ")) };
        let target = if squeeze { self.tmp() } else { res.clone() };
        self.line(&format!(
            "{target} = tpu.memref_slice {}[{}]{dyn_part} : {} -> {sliced_ty} {l}",
            self.name(base),
            offsets.join(", "),
            type_str(&bt)
        ));
        if squeeze {
            let rty = type_str(self.ty(inst.result.expect("view result")));
            self.line(&format!("{res} = tpu.memref_squeeze {target} : {sliced_ty} -> {rty} {l}"));
        }
        let _ = is_sem;
        Ok(())
    }
}

fn join(v: &[usize]) -> String {
    v.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
}

/// A symbol name MLIR accepts unquoted.
pub(crate) fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}
