//! Lowering to Mosaic: MLIR text in the `tpu` dialect, as Pallas emits it for TPU kernels.
//!
//! The IR's mutable locals become SSA values: a `for`/`while` carries the locals its body writes as
//! `iter_args`, an `if` returns the ones its branches write. Every op carries the author's source
//! location as an MLIR `loc("file":line:col)`, so compiler errors map back to the kernel source.

use crate::dtype::DType;
use crate::error::KernelError;
use crate::ir::*;
use std::collections::HashMap;

/// The Mosaic dialect version our text targets (`stable_mosaic.version`).
pub const MOSAIC_VERSION: u32 = 15;

/// Lowers `kernel` to a Mosaic module (MLIR text).
mod rules;

use super::mlir::{self, join, sanitize, Text};

pub fn lower(kernel: &Kernel) -> Result<String, KernelError> {
    let mut e = Emitter::new(kernel);
    e.module()?;
    Ok(e.text.into_string())
}

pub(crate) fn elem(dt: DType) -> &'static str {
    dt.mlir()
}

fn vector_type(dt: DType, shape: &[usize]) -> String {
    mlir::vector(elem(dt), shape)
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

fn sem_elem(kind: SemKind) -> &'static str {
    match kind {
        SemKind::Dma => "!tpu.dma_semaphore",
        SemKind::Regular => "!tpu.semaphore",
    }
}

fn sem_type(kind: SemKind, shape: &[usize]) -> String {
    format!("memref<{}{}, #tpu.memory_space<semaphore_mem>>", mlir::dims(shape), sem_elem(kind))
}

pub(crate) fn type_str(t: &Type) -> String {
    match t {
        Type::Scalar(d) => elem(*d).to_string(),
        Type::Vector { dtype, shape } => vector_type(*dtype, shape),
        Type::Ref(r) => memref_type(r),
        Type::Sem { kind, shape } => sem_type(*kind, shape),
    }
}

/// The `pipeline_mode` of a window (`Buffered(n)`), as Pallas emits it: `synchronous` for one
/// buffer, `double_buffered` for two (other counts are refused by the verifier's TPU rules).
fn pipeline_mode(buffers: Option<usize>) -> &'static str {
    match buffers {
        Some(1) => ", pipeline_mode = #tpu.pipeline_mode<synchronous>",
        Some(2) => ", pipeline_mode = #tpu.pipeline_mode<double_buffered>",
        _ => "",
    }
}

fn loc_str(l: &Loc) -> String {
    format!("loc({:?}:{}:{})", l.file, l.line, l.col)
}

struct Emitter<'k> {
    k: &'k Kernel,
    text: Text,
    /// Current SSA name of each IR value.
    names: HashMap<ValueId, String>,
    /// Current SSA name of each mutable local.
    vars: HashMap<VarId, String>,
    /// Row windows `base[ds(start, n)]` (the others dimensions whole): a strided access to one
    /// lowers onto `base` at `start`, as Pallas lowers `ref[pl.ds(start, n, stride)]`.
    windows: HashMap<ValueId, (ValueId, ValueId)>,
}

impl<'k> Emitter<'k> {
    fn new(k: &'k Kernel) -> Self {
        Emitter { k, text: Text::new("t"), names: HashMap::new(), vars: HashMap::new(), windows: HashMap::new() }
    }

    fn err(&self, loc: Loc, op: &str, msg: impl Into<String>) -> KernelError {
        KernelError::single(&self.k.name, Some(op), loc, msg)
    }

    fn tmp(&mut self) -> String {
        self.text.fresh()
    }

    fn line(&mut self, s: &str) {
        self.text.line(s);
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
        self.line(&format!("module @{name} attributes {{stable_mosaic.version = {MOSAIC_VERSION} : i64}} {{"));
        self.text.enter();
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
                        "{{transform_indices = @transform_{i}, window_bounds = array<i64: {}>{}}}",
                        b.block_shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
                        pipeline_mode(b.buffers)
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
        self.text.enter();
        self.block(&self.k.body)?;
        self.line("return");
        self.text.leave();
        self.line(&format!("}} {}", loc_str(&self.k.loc)));
        // One transform function per BlockSpec.
        for (i, p) in self.k.params.iter().enumerate() {
            if let Some(b) = &p.block {
                self.transform(i, &b.index_map, &prefetch)?;
            }
        }
        self.text.leave();
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
        self.text.enter();
        self.block(&map.body)?;
        let results: Vec<String> = map.results.iter().map(|r| self.name(*r)).collect();
        self.line(&format!("return {} : {rets} {}", results.join(", "), loc_str(&map.loc)));
        self.text.leave();
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
        Block::carried_vars(blocks).into_iter().filter(|v| self.vars.contains_key(v)).collect()
    }

    fn var_type(&self, v: VarId) -> String {
        type_str(&self.k.vars[v.0 as usize])
    }

    fn constant(&mut self, dt: DType, v: f64, loc: &str) -> String {
        let t = self.tmp();
        let lit = if dt.is_float() {
            mlir::float_literal(dt, v)
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
            Op::Const { dtype, value } => self.lower_const(l, &res, *dtype, value),
            Op::ProgramId { axis } => self.lower_program_id(inst, *axis),
            Op::NumPrograms { axis } => self.lower_num_programs(l, &res, *axis),
            Op::Unary { op, x } => self.lower_unary(inst, l, &res, &rty, *op, *x),
            Op::Binary { op, lhs, rhs } => self.lower_binary(inst, l, &res, &rty, *op, *lhs, *rhs),
            Op::Compare { op, lhs, rhs } => self.lower_compare(inst, l, &res, *op, *lhs, *rhs),
            Op::Select { cond, on_true, on_false } => {
                self.lower_select(inst, l, &res, &rty, *cond, *on_true, *on_false)
            }
            Op::Cast { x, to } => self.lower_cast(inst, l, &res, &rty, *x, *to),
            Op::Bitcast { x, .. } => self.lower_bitcast(l, &res, &rty, *x),
            Op::MultipleOf { x, multiple } => self.lower_multiple_of(l, &res, &rty, *x, *multiple),
            Op::Iota { dim, .. } => self.lower_iota(l, &res, &rty, *dim),
            Op::Broadcast { x, shape } => self.lower_broadcast(inst, l, *x, shape),
            Op::Reshape { x, .. } => self.lower_reshape(l, &res, &rty, *x),
            Op::Slice { x, start, shape } => self.lower_slice(l, &res, &rty, *x, start, shape),
            Op::Concat { xs, axis } => self.lower_concat(l, &res, &rty, xs, *axis),
            Op::Roll { x, shift, axis } => self.lower_roll(l, &res, &rty, *x, *shift, *axis),
            Op::Transpose { x, perm } => self.lower_transpose(l, &res, &rty, *x, perm),
            Op::Extract { x, index } => self.lower_extract(inst, l, *x, index),
            Op::Reduce { op, x, axis } => self.lower_reduce(l, &res, &rty, *op, *x, *axis),
            Op::ReduceAll { op, x } => self.lower_reduce_all(inst, l, *op, *x),
            Op::ArgReduce { op, x, axis } => self.lower_arg_reduce(l, &res, *op, *x, *axis),
            Op::Matmul { lhs, rhs, transpose_lhs, transpose_rhs, acc } => {
                self.lower_matmul(inst, l, &res, &rty, *lhs, *rhs, [*transpose_lhs, *transpose_rhs], *acc)
            }
            Op::View { base, indexers } => self.lower_view(inst, l, *base, indexers),
            Op::RefReshape { base, .. } => self.lower_ref_reshape(l, &res, &rty, *base),
            Op::RefBitcast { base, .. } => self.lower_ref_bitcast(l, &res, &rty, *base),
            Op::Load { src } => self.lower_load(l, &res, &rty, *src),
            Op::LoadStrided { src, strides, .. } => self.lower_load_strided(l, &res, &rty, *src, strides),
            Op::Store { dst, value, mask } => self.lower_store(l, *dst, *value, *mask),
            Op::StoreStrided { dst, value, strides } => self.lower_store_strided(l, *dst, *value, strides),
            Op::ScalarLoad { src, indices } => self.lower_scalar_load(l, &res, *src, indices),
            Op::ScalarStore { dst, indices, value } => self.lower_scalar_store(l, *dst, indices, *value),
            Op::DmaStart { src, dst, sem } => self.lower_dma_start(l, *src, *dst, *sem),
            Op::DmaWait { src, dst, sem } => self.lower_dma_wait(l, *src, *dst, *sem),
            Op::SemSignal { sem, amount } => self.lower_sem_signal(l, *sem, *amount),
            Op::SemWait { sem, amount } => self.lower_sem_wait(l, *sem, *amount),
            Op::VarDecl { var, init } => self.lower_var_decl(l, *var, *init),
            Op::VarGet { var } => self.lower_var_get(inst, *var),
            Op::VarSet { var, value } => self.lower_var_set(*var, *value),
            Op::For { lo, hi, index, body } => self.lower_for(l, *lo, *hi, *index, body),
            Op::If { cond, then_body, else_body } => self.lower_if(l, *cond, then_body, else_body),
            Op::While { cond_body, cond, body } => self.lower_while(l, cond_body, *cond, body),
            Op::DebugPrint { message, args } => self.lower_debug_print(l, message, args),
        }
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
            mlir::float_literal(dt, v)
        } else if dt == DType::Bool {
            (v != 0.0).to_string()
        } else {
            (v as i64).to_string()
        };
        self.line(&format!("{t} = arith.constant dense<{lit}> : {} {l}", vector_type(dt, shape)));
        t
    }

    /// A vector of a narrow dtype widened (exactly) to 32 bits, and the wide dtype; 32-bit vectors
    /// as they are.
    fn widen_to_32(&mut self, l: &str, x: &str, dt: DType, shape: &[usize]) -> (String, DType) {
        let (to, op) = match dt {
            _ if dt.bits() == 32 => return (x.to_string(), dt),
            _ if dt.is_float() => (DType::F32, "arith.extf"),
            DType::Bool | DType::U16 | DType::U8 => (DType::U32, "arith.extui"),
            _ => (DType::I32, "arith.extsi"),
        };
        let t = self.tmp();
        self.line(&format!("{t} = {op} {x} : {} to {} {l}", vector_type(dt, shape), vector_type(to, shape)));
        (t, to)
    }

    /// The 32-bit scalar `x` (of `wide`) narrowed back to `dt` (`x` itself if `dt` is `wide`).
    fn narrow_from_32(&mut self, l: &str, x: &str, wide: DType, dt: DType) -> String {
        if dt == wide {
            return x.to_string();
        }
        let t = self.tmp();
        if dt == DType::Bool {
            let zero = self.constant(wide, 0.0, l);
            self.line(&format!("{t} = arith.cmpi ne, {x}, {zero} : i32 {l}"));
        } else {
            let op = if dt.is_float() { "arith.truncf" } else { "arith.trunci" };
            self.line(&format!("{t} = {op} {x} : {} to {} {l}", elem(wide), elem(dt)));
        }
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
            Type::Sem { shape, .. } => (shape.len(), true),
            _ => return Err(self.err(inst.loc, "view", "view of a non-ref")),
        };
        let mut offsets = Vec::new();
        let mut dyn_sizes = Vec::new();
        let mut sliced: Vec<String> = Vec::new();
        let mut squeeze = false;
        let base_shape: Vec<String> = match &bt {
            Type::Ref(r) => r.shape.iter().map(|e| e.fixed().map_or("?".into(), |n| n.to_string())).collect(),
            Type::Sem { shape, .. } => shape.iter().map(|n| n.to_string()).collect(),
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
            Type::Sem { kind, .. } => (sem_elem(*kind).to_string(), "#tpu.memory_space<semaphore_mem>".to_string()),
            _ => unreachable!("checked above"),
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
