//! The verifier.
//!
//! [`verify_structure`] checks that a kernel is well formed IR; `build_kernel` runs it after every
//! build, so it is a single linear pass (plus a linear pre-pass that records where every value and
//! variable is defined). [`verify`] adds the hardware rules of a TPU generation: the BlockSpec tiling
//! rule, memory spaces of parameters, and the VMEM and SMEM budgets. Both collect every problem they
//! find; each [`Diagnostic`] names the kernel, the op (or parameter) and the author's source line.
//! [`verify_targets`] applies the hardware rules of several generations: the host backends run it
//! before every launch, so that what runs on the host also compiles for a TPU.
//!
//! Rules about how ops use memory spaces (vector loads and stores only on VMEM refs, scalar accesses
//! only on SMEM refs, no SMEM DMA endpoints, semaphores only indexed and passed to DMAs) are part of
//! the ops' type rules, which [`verify_structure`] re-checks for every instruction.
//! [`verify_structure`] also refuses the strided accesses of packed dtypes that Mosaic cannot lower
//! (`packed.rs`), so that no backend runs a kernel a TPU would refuse.

use super::{Block, Inst, Kernel, Loc, MemSpace, Op, Param, Role, Type, TypeEnv, ValueId, VarId};
use crate::error::{Diagnostic, KernelError};
use crate::target::{self, TargetCheck, TpuTarget, MIB};
use std::collections::HashMap;

mod packed;

/// Checks that the kernel is well-formed IR: definitions dominate uses, index maps only read what
/// they may, every op's recorded result type is what its type rule gives, and the launch description
/// (grid, semantics, parameters, BlockSpecs, aliases) is consistent.
pub fn verify_structure(kernel: &Kernel) -> Result<(), KernelError> {
    let mut errors = Vec::new();
    structure(kernel, &mut errors);
    finish(errors)
}

/// [`verify_structure`] plus the hardware rules of `target`: BlockSpec tiling, memory spaces of
/// parameters, the VMEM budget (`vmem_limit`, or all of the target's VMEM) and the SMEM budget.
pub fn verify(kernel: &Kernel, target: TpuTarget) -> Result<(), KernelError> {
    let mut errors = Vec::new();
    structure(kernel, &mut errors);
    hardware(kernel, target, &mut errors);
    finish(errors)
}

/// The hardware rules of [`verify`] for each generation of `check`, stopping at the first that
/// rejects the kernel. A built kernel's structure is sound ([`verify_structure`] runs when it is
/// built), so the errors are exactly what [`verify`], and so `tpu::compile_for`, reports for that
/// generation. The host backends run this before every launch: it reads the parameters, not the
/// body, so its cost does not grow with the kernel (about a microsecond).
pub fn verify_targets(kernel: &Kernel, check: TargetCheck) -> Result<(), KernelError> {
    for &target in check.targets() {
        let mut errors = Vec::new();
        hardware(kernel, target, &mut errors);
        finish(errors)?;
    }
    Ok(())
}

/// Bytes of VMEM the kernel needs: every VMEM scratch buffer (padded to the native tile) plus two
/// buffers (Pallas double-buffers them) for each operand seen in VMEM.
pub fn vmem_usage(kernel: &Kernel) -> usize {
    buffers(kernel, MemSpace::Vmem).iter().map(Buffer::total).sum()
}

/// Bytes of SMEM the kernel needs: scalar-prefetch arrays, SMEM scratch and (double-buffered) SMEM
/// blocks, one 32-bit word per scalar.
pub fn smem_usage(kernel: &Kernel) -> usize {
    buffers(kernel, MemSpace::Smem).iter().map(Buffer::total).sum()
}

fn finish(errors: Vec<Diagnostic>) -> Result<(), KernelError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(KernelError::new(errors))
    }
}

fn diag(k: &Kernel, op: Option<&str>, loc: Loc, message: String) -> Diagnostic {
    Diagnostic { kernel: k.name.clone(), op: op.map(str::to_string), loc, message }
}

fn val(v: ValueId) -> String {
    format!("%{}", v.0)
}

fn shape_str(shape: &[usize]) -> String {
    super::fmt_shape(shape)
}

/// `512 B`, `32.0 KiB`, `64.0 MiB`.
fn bytes_str(n: usize) -> String {
    if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

// =============================================================================================
// Structure
// =============================================================================================

/// Where a value or variable is defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    /// The value of parameter `i`.
    Param(usize),
    /// Inside the index map of parameter `i` (its grid indices, its instructions).
    Map(usize),
    /// The kernel body (at any depth).
    Body,
}

#[derive(Clone, Copy, Debug)]
struct Def {
    loc: Loc,
    ctx: Ctx,
}

/// Whether a value is visible at the current point of the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vis {
    /// Not defined yet (in program order), or defined in another index map.
    Unseen,
    Live,
    /// Defined in a region that has been closed.
    Dead,
}

struct Env<'a>(&'a Kernel);

impl TypeEnv for Env<'_> {
    fn value_type(&self, v: ValueId) -> &Type {
        &self.0.values[v.0 as usize]
    }
    fn var_type(&self, v: VarId) -> &Type {
        &self.0.vars[v.0 as usize]
    }
}

struct Checker<'a> {
    k: &'a Kernel,
    errors: &'a mut Vec<Diagnostic>,
    defs: Vec<Option<Def>>,
    var_defs: Vec<Option<Def>>,
    vis: Vec<Vis>,
    var_vis: Vec<Vis>,
    /// Values and variables made live in the open regions, to hide when a region closes.
    undo: Vec<ValueId>,
    var_undo: Vec<VarId>,
    /// The context being walked: an index map or the body.
    ctx: Ctx,
}

fn structure(k: &Kernel, errors: &mut Vec<Diagnostic>) {
    let mut c = Checker {
        k,
        errors,
        defs: vec![None; k.values.len()],
        var_defs: vec![None; k.vars.len()],
        vis: vec![Vis::Unseen; k.values.len()],
        var_vis: vec![Vis::Unseen; k.vars.len()],
        undo: Vec::new(),
        var_undo: Vec::new(),
        ctx: Ctx::Body,
    };
    c.launch();
    c.collect_defs();
    c.index_maps();
    c.body();
    if errors.is_empty() {
        packed::strided(k, errors);
    }
}

impl Checker<'_> {
    fn err(&mut self, op: Option<&str>, loc: Loc, message: String) {
        self.errors.push(diag(self.k, op, loc, message));
    }

    fn value_ok(&self, v: ValueId) -> bool {
        (v.0 as usize) < self.k.values.len()
    }

    fn var_ok(&self, v: VarId) -> bool {
        (v.0 as usize) < self.k.vars.len()
    }

    fn ty(&self, v: ValueId) -> Option<&Type> {
        self.k.values.get(v.0 as usize)
    }

    fn param_name(&self, i: usize) -> &str {
        &self.k.params[i].name
    }

    // ---- grid, semantics and parameters ----

    fn launch(&mut self) {
        let k = self.k;
        if k.semantics.len() != k.grid.len() {
            let msg = format!(
                "{} dimension semantics for a rank-{} grid {}",
                k.semantics.len(),
                k.grid.len(),
                shape_str(&k.grid)
            );
            self.err(None, k.loc, msg);
        }
        let operands: Vec<&Param> = k.operands().collect();
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut aliased: HashMap<usize, &str> = HashMap::new();
        for (i, p) in k.params.iter().enumerate() {
            let name = Some(p.name.as_str());
            if let Some(&first) = names.get(p.name.as_str()) {
                let msg =
                    format!("two parameters are named `{}` (the first is declared at {})", p.name, k.params[first].loc);
                self.err(name, p.loc, msg);
            } else {
                names.insert(&p.name, i);
            }
            if let Some(prev) = i.checked_sub(1).map(|j| &k.params[j]) {
                if (p.role as usize) < (prev.role as usize) {
                    let msg = format!(
                        "parameter `{}` ({}) comes after `{}` ({}): parameters are scalar prefetch, \
                         then inputs, then outputs, then scratch",
                        p.name,
                        p.role.name(),
                        prev.name,
                        prev.role.name()
                    );
                    self.err(name, p.loc, msg);
                }
            }
            self.param(p);
            if let Some(a) = p.alias_of {
                let msg = match operands.get(a) {
                    _ if p.role != Role::Output => Some(format!(
                        "only outputs can alias an input, but `{}` is {} {}",
                        p.name,
                        if p.role == Role::Input { "an" } else { "a" },
                        p.role.name()
                    )),
                    None => Some(format!(
                        "output `{}` aliases operand {a}, but the kernel has {} operands",
                        p.name,
                        operands.len()
                    )),
                    Some(t) if !matches!(t.role, Role::Input | Role::Prefetch) => {
                        Some(format!("output `{}` aliases `{}`, which is not an input", p.name, t.name))
                    }
                    Some(t) if t.array != p.array || t.array.is_none() => Some(format!(
                        "output `{}` aliases input `{}`, but their array types differ: {} and {}",
                        p.name,
                        t.name,
                        array_str(p),
                        array_str(t)
                    )),
                    Some(t) => aliased
                        .insert(a, &p.name)
                        .map(|other| format!("outputs `{other}` and `{}` both alias input `{}`", p.name, t.name)),
                };
                if let Some(msg) = msg {
                    self.err(name, p.loc, msg);
                }
            }
        }
    }

    /// One parameter's declaration: its value type agrees with its array and BlockSpec.
    fn param(&mut self, p: &Param) {
        let name = Some(p.name.as_str());
        let Some(actual) = self.ty(p.value).cloned() else {
            return; // reported by `collect_defs`
        };
        if p.role == Role::Scratch {
            if p.array.is_some() || p.block.is_some() || p.alias_of.is_some() {
                let msg = format!("scratch `{}` cannot have an array, a BlockSpec or an alias", p.name);
                self.err(name, p.loc, msg);
            }
            if !matches!(actual, Type::Ref(_) | Type::Sem { .. }) {
                let msg = format!("scratch `{}` must be a buffer or a semaphore array, got {actual}", p.name);
                self.err(name, p.loc, msg);
            }
            return;
        }
        let Some(array) = &p.array else {
            let msg = format!("{} `{}` has no array type", p.role.name(), p.name);
            self.err(name, p.loc, msg);
            return;
        };
        if array.static_shape().is_none() {
            let msg = format!("the array of `{}` has a dynamic extent: {}", p.name, array_str(p));
            self.err(name, p.loc, msg);
        }
        let expected = match &p.block {
            None => Type::Ref(array.clone()),
            Some(bs) => {
                if p.role == Role::Prefetch {
                    let msg = format!("scalar-prefetch operand `{}` cannot have a BlockSpec", p.name);
                    self.err(name, p.loc, msg);
                }
                if bs.block_shape.len() != array.shape.len() {
                    let msg = format!(
                        "block shape {} of `{}` has rank {}, but the array {} has rank {}",
                        shape_str(&bs.block_shape),
                        p.name,
                        bs.block_shape.len(),
                        array_str(p),
                        array.shape.len()
                    );
                    self.err(name, p.loc, msg);
                }
                let map = &bs.index_map;
                if map.grid_indices.len() != self.k.grid.len() {
                    let msg = format!(
                        "the index map of `{}` takes {} grid indices, but the grid {} has rank {}",
                        p.name,
                        map.grid_indices.len(),
                        shape_str(&self.k.grid),
                        self.k.grid.len()
                    );
                    self.err(name, map.loc, msg);
                }
                if map.results.len() != bs.block_shape.len() {
                    let msg = format!(
                        "the index map of `{}` returns {} block indices for the rank-{} block {}",
                        p.name,
                        map.results.len(),
                        bs.block_shape.len(),
                        shape_str(&bs.block_shape)
                    );
                    self.err(name, map.loc, msg);
                }
                Type::Ref(super::RefType::fixed(bs.space, array.dtype, &bs.block_shape))
            }
        };
        if actual != expected {
            let msg = format!(
                "the value {} of `{}` has type {actual}, but its declaration gives {expected}",
                val(p.value),
                p.name
            );
            self.err(name, p.loc, msg);
        }
    }

    // ---- definitions ----

    /// Records where every value and variable is defined, reporting double definitions and ids
    /// outside the kernel's tables.
    fn collect_defs(&mut self) {
        let k = self.k;
        for (i, p) in k.params.iter().enumerate() {
            self.record(p.value, Def { loc: p.loc, ctx: Ctx::Param(i) }, Some(&p.name));
        }
        for (i, p) in k.params.iter().enumerate() {
            if let Some(bs) = &p.block {
                let map = &bs.index_map;
                for &g in &map.grid_indices {
                    self.record(g, Def { loc: map.loc, ctx: Ctx::Map(i) }, Some(&p.name));
                }
                self.record_block(&map.body, Ctx::Map(i));
            }
        }
        self.record_block(&k.body, Ctx::Body);
    }

    fn record_block(&mut self, b: &Block, ctx: Ctx) {
        for inst in &b.insts {
            for v in inst.op.region_values() {
                self.record(v, Def { loc: inst.loc, ctx }, Some(inst.op.name()));
            }
            for region in inst.op.regions() {
                self.record_block(region, ctx);
            }
            if let Some(r) = inst.result {
                self.record(r, Def { loc: inst.loc, ctx }, Some(inst.op.name()));
            }
            if let Op::VarDecl { var, .. } = inst.op {
                let def = Def { loc: inst.loc, ctx };
                match self.var_defs.get(var.0 as usize).copied() {
                    None => {
                        let msg = format!(
                            "variable ${} does not exist: the kernel has {} variables",
                            var.0,
                            self.k.vars.len()
                        );
                        self.err(Some("var"), inst.loc, msg);
                    }
                    Some(Some(first)) => {
                        let msg = format!("variable ${} is declared twice (first at {})", var.0, first.loc);
                        self.err(Some("var"), inst.loc, msg);
                    }
                    Some(None) => self.var_defs[var.0 as usize] = Some(def),
                }
            }
        }
    }

    fn record(&mut self, v: ValueId, def: Def, op: Option<&str>) {
        match self.defs.get(v.0 as usize).copied() {
            None => {
                let msg = format!("{} does not exist: the kernel has {} values", val(v), self.k.values.len());
                self.err(op, def.loc, msg);
            }
            Some(Some(first)) => {
                let msg = format!("{} is defined twice (first at {})", val(v), first.loc);
                self.err(op, def.loc, msg);
            }
            Some(None) => self.defs[v.0 as usize] = Some(def),
        }
    }

    // ---- scopes ----

    fn mark(&self) -> (usize, usize) {
        (self.undo.len(), self.var_undo.len())
    }

    fn close(&mut self, mark: (usize, usize), to: Vis) {
        while self.undo.len() > mark.0 {
            let v = self.undo.pop().unwrap();
            self.vis[v.0 as usize] = to;
        }
        while self.var_undo.len() > mark.1 {
            let v = self.var_undo.pop().unwrap();
            self.var_vis[v.0 as usize] = to;
        }
    }

    fn define(&mut self, v: ValueId) {
        if self.value_ok(v) {
            self.vis[v.0 as usize] = Vis::Live;
            self.undo.push(v);
        }
    }

    fn declare(&mut self, v: VarId) {
        if self.var_ok(v) {
            self.var_vis[v.0 as usize] = Vis::Live;
            self.var_undo.push(v);
        }
    }

    /// Where a definition context is, for messages.
    fn ctx_str(&self, ctx: Ctx) -> String {
        match ctx {
            Ctx::Param(i) => {
                let p = &self.k.params[i];
                format!("the {} `{}`", p.role.name(), p.name)
            }
            Ctx::Map(i) => format!("the index map of `{}`", self.param_name(i)),
            Ctx::Body => "the kernel body".into(),
        }
    }

    /// Why `v` is not visible here, or `None` if it is.
    fn invisible(&self, v: ValueId) -> Option<String> {
        let Some(slot) = self.defs.get(v.0 as usize) else {
            return Some(format!("{} does not exist: the kernel has {} values", val(v), self.k.values.len()));
        };
        if self.vis[v.0 as usize] == Vis::Live {
            return None;
        }
        let Some(def) = *slot else {
            return Some(format!("{} is used but never defined", val(v)));
        };
        let dead = self.vis[v.0 as usize] == Vis::Dead;
        Some(match (self.ctx, def.ctx) {
            (Ctx::Map(i), other) if other != Ctx::Map(i) => {
                let what = match other {
                    Ctx::Body => format!("a value of the kernel body (defined at {})", def.loc),
                    Ctx::Param(_) => self.ctx_str(other),
                    Ctx::Map(_) => format!("a value of {}", self.ctx_str(other)),
                };
                format!(
                    "index maps may only use their grid indices, values they define and \
                     scalar-prefetch operands, but {} is {what}",
                    val(v)
                )
            }
            (Ctx::Body, Ctx::Map(j)) => format!(
                "{} belongs to the index map of `{}` and cannot be used in the kernel body",
                val(v),
                self.param_name(j)
            ),
            _ if dead => format!("{} is used outside the region that defines it (at {})", val(v), def.loc),
            _ => format!("{} is used before it is defined (at {})", val(v), def.loc),
        })
    }

    fn var_invisible(&self, v: VarId) -> Option<String> {
        let Some(slot) = self.var_defs.get(v.0 as usize) else {
            return Some(format!("variable ${} does not exist: the kernel has {} variables", v.0, self.k.vars.len()));
        };
        if self.var_vis[v.0 as usize] == Vis::Live {
            return None;
        }
        let Some(def) = *slot else {
            return Some(format!("variable ${} is used but never declared", v.0));
        };
        Some(if def.ctx != self.ctx {
            format!(
                "variable ${} is declared in {} and cannot be used in {}",
                v.0,
                self.ctx_str(def.ctx),
                self.ctx_str(self.ctx)
            )
        } else if self.var_vis[v.0 as usize] == Vis::Dead {
            format!("variable ${} is used outside the region that declares it (at {})", v.0, def.loc)
        } else {
            format!("variable ${} is used before its declaration (at {})", v.0, def.loc)
        })
    }

    // ---- walks ----

    fn index_maps(&mut self) {
        let k = self.k;
        for (i, p) in k.params.iter().enumerate() {
            let Some(bs) = &p.block else { continue };
            let map = &bs.index_map;
            self.ctx = Ctx::Map(i);
            let mark = self.mark();
            for q in k.params.iter().filter(|q| q.role == Role::Prefetch) {
                self.define(q.value);
            }
            for &g in &map.grid_indices {
                if let Some(t) = self.ty(g) {
                    if *t != Type::Scalar(crate::DType::I32) {
                        let msg = format!(
                            "grid index {} of the index map of `{}` must be an i32 scalar, got {t}",
                            val(g),
                            p.name
                        );
                        self.err(Some(&p.name), map.loc, msg);
                    }
                }
                self.define(g);
            }
            self.block(&map.body);
            for (d, &r) in map.results.iter().enumerate() {
                if let Some(why) = self.invisible(r) {
                    let msg = format!("block index {d} of the index map of `{}`: {why}", p.name);
                    self.err(Some(&p.name), map.loc, msg);
                } else if let Some(t) = self.ty(r) {
                    if !matches!(t, Type::Scalar(d) if d.is_int()) {
                        let msg = format!(
                            "the index map of `{}` must return integer scalars, but block index \
                             {d} ({}) is {t}",
                            p.name,
                            val(r)
                        );
                        self.err(Some(&p.name), map.loc, msg);
                    }
                }
            }
            // Values of one index map are invisible to the other maps and to the body.
            self.close(mark, Vis::Unseen);
        }
    }

    fn body(&mut self) {
        let k = self.k;
        self.ctx = Ctx::Body;
        for p in &k.params {
            self.define(p.value);
        }
        self.block(&k.body);
    }

    fn block(&mut self, b: &Block) {
        for inst in &b.insts {
            self.inst(inst);
        }
    }

    fn use_value(&mut self, v: ValueId, inst: &Inst) {
        if let Some(why) = self.invisible(v) {
            self.err(Some(inst.op.name()), inst.loc, why);
        }
    }

    fn inst(&mut self, inst: &Inst) {
        let k = self.k;
        let name = inst.op.name();
        let operands = inst.op.operands();
        for &v in &operands {
            self.use_value(v, inst);
        }
        // Every id the type rule reads must be in the tables before it can run.
        let mut typeable = operands.iter().all(|&v| self.value_ok(v));
        match &inst.op {
            Op::VarGet { var } | Op::VarSet { var, .. } => {
                if let Some(why) = self.var_invisible(*var) {
                    self.err(Some(name), inst.loc, why);
                }
                typeable &= self.var_ok(*var);
            }
            Op::VarDecl { var, .. } => typeable &= self.var_ok(*var),
            Op::While { cond, .. } => typeable &= self.value_ok(*cond),
            Op::ProgramId { axis } | Op::NumPrograms { axis } if *axis >= k.grid.len() => {
                let msg = format!(
                    "grid axis {axis} is out of range for the rank-{} grid {}",
                    k.grid.len(),
                    shape_str(&k.grid)
                );
                self.err(Some(name), inst.loc, msg);
            }
            _ => {}
        }
        if typeable {
            self.result_type(inst);
        }
        match &inst.op {
            Op::For { index, body, .. } => {
                let mark = self.mark();
                if let Some(t) = self.ty(*index) {
                    if *t != Type::Scalar(crate::DType::I32) {
                        let msg = format!("loop index {} must be an i32 scalar, got {t}", val(*index));
                        self.err(Some(name), inst.loc, msg);
                    }
                }
                self.define(*index);
                self.block(body);
                self.close(mark, Vis::Dead);
            }
            Op::If { then_body, else_body, .. } => {
                for region in [then_body, else_body] {
                    let mark = self.mark();
                    self.block(region);
                    self.close(mark, Vis::Dead);
                }
            }
            Op::While { cond_body, cond, body } => {
                // The condition is computed in `cond_body`; the body does not see its values.
                let mark = self.mark();
                self.block(cond_body);
                if let Some(why) = self.invisible(*cond) {
                    let msg = format!("the condition is not computed in the condition region: {why}");
                    self.err(Some(name), inst.loc, msg);
                }
                self.close(mark, Vis::Dead);
                let mark = self.mark();
                self.block(body);
                self.close(mark, Vis::Dead);
            }
            _ => {}
        }
        if let Some(r) = inst.result {
            self.define(r);
        }
        if let Op::VarDecl { var, .. } = inst.op {
            self.declare(var);
        }
    }

    /// Re-runs the op's type rule and compares it with the recorded result.
    fn result_type(&mut self, inst: &Inst) {
        let name = inst.op.name();
        let msg = match (inst.op.result_type(&Env(self.k)), inst.result) {
            (Err(m), _) => Some(m),
            (Ok(None), None) => None,
            (Ok(Some(t)), None) => Some(format!("`{name}` produces a {t}, but the instruction has no result")),
            (Ok(None), Some(r)) => {
                Some(format!("`{name}` produces no value, but the instruction records a result {}", val(r)))
            }
            (Ok(Some(t)), Some(r)) => match self.ty(r) {
                Some(recorded) if *recorded != t => Some(format!(
                    "result type mismatch: the type rule of `{name}` gives {t}, but {} is recorded as \
                     {recorded}",
                    val(r)
                )),
                _ => None,
            },
        };
        if let Some(msg) = msg {
            self.err(Some(name), inst.loc, msg);
        }
    }
}

fn array_str(p: &Param) -> String {
    match &p.array {
        Some(a) => format!("{}{}", a.dtype, super::fmt_shape(&a.shape)),
        None => "none".into(),
    }
}

// =============================================================================================
// Hardware rules
// =============================================================================================

fn hardware(k: &Kernel, target: TpuTarget, errors: &mut Vec<Diagnostic>) {
    for p in &k.params {
        tiling(k, p, errors);
        param_spaces(k, p, errors);
        pipeline_depth(k, p, errors);
    }
    vmem_budget(k, target, errors);
    smem_budget(k, target, errors);
}

/// The BlockSpec tiling rule: the last two dimensions of a VMEM block are multiples of the native
/// tile (8 · packing, 128) or equal to the array's; a rank-1 block's only dimension is a multiple of
/// 128 or the array's. No block dimension may exceed the array's.
fn tiling(k: &Kernel, p: &Param, errors: &mut Vec<Diagnostic>) {
    let (Some(bs), Some(array)) = (&p.block, &p.array) else { return };
    let block = &bs.block_shape;
    let dims = array.max_shape();
    if block.len() != dims.len() {
        return; // reported by the structure check
    }
    let name = Some(p.name.as_str());
    if let Some(d) = (0..dims.len()).find(|&d| block[d] == 0 || block[d] > dims[d]) {
        let msg = format!(
            "block shape {} of `{}` does not fit the array {}{}: dimension {d} must be between 1 and {}",
            shape_str(block),
            p.name,
            array.dtype,
            shape_str(&dims),
            dims[d]
        );
        errors.push(diag(k, name, p.loc, msg));
        return;
    }
    if bs.space != MemSpace::Vmem {
        return;
    }
    let (sub, lane) = target::native_tile(array.dtype);
    let fits = |d: usize, tile: usize| block[d] % tile == 0 || block[d] == dims[d];
    let n = dims.len();
    let msg = match n {
        0 => None,
        1 if !fits(0, lane) => Some(format!(
            "block shape {} of `{}` breaks the TPU tiling rule: the last dimension must be a multiple \
             of {lane} or equal the array's dimension {}",
            shape_str(block),
            p.name,
            shape_str(&dims)
        )),
        1 => None,
        _ if !fits(n - 2, sub) || !fits(n - 1, lane) => Some(format!(
            "block shape {} of `{}` breaks the TPU tiling rule: the last two dimensions must be \
             multiples of ({sub}, {lane}) for {} or equal the array's {}dimensions {}",
            shape_str(block),
            p.name,
            array.dtype,
            if n > 2 { "last two " } else { "" },
            shape_str(&dims[n - 2..])
        )),
        _ => None,
    };
    if let Some(msg) = msg {
        errors.push(diag(k, name, p.loc, msg));
    }
}

/// Mosaic's BlockSpec pipeline keeps one or two buffers per block (`Buffered(1)`, `Buffered(2)`).
fn pipeline_depth(k: &Kernel, p: &Param, errors: &mut Vec<Diagnostic>) {
    if let Some(n) = p.block.as_ref().and_then(|b| b.buffers).filter(|&n| n > 2) {
        let msg = format!(
            "`{}` asks for Buffered({n}): Mosaic pipelines a BlockSpec with 1 or 2 buffers (as Pallas on \
             TPU); for deeper prefetching, stream the operand from HBM with `emit_pipeline` and \
             `PipelineSpec::buffered(n)`",
            p.name
        );
        errors.push(diag(k, Some(&p.name), p.loc, msg));
    }
}

/// Where each kind of parameter may live: operands' arrays in HBM (scalar prefetch in SMEM), blocks
/// in VMEM or SMEM, scratch buffers in VMEM or SMEM.
fn param_spaces(k: &Kernel, p: &Param, errors: &mut Vec<Diagnostic>) {
    let name = Some(p.name.as_str());
    let mut err = |msg: String| errors.push(diag(k, name, p.loc, msg));
    match p.role {
        Role::Prefetch => {
            if let Some(a) = p.array.as_ref().filter(|a| a.space != MemSpace::Smem) {
                err(format!(
                    "scalar-prefetch operand `{}` must be in SMEM, not {}",
                    p.name,
                    a.space.name().to_uppercase()
                ));
            }
        }
        Role::Input | Role::Output => {
            if let Some(a) = p.array.as_ref().filter(|a| a.space == MemSpace::Smem) {
                err(format!(
                    "{} `{}` is an array in {}; arrays are passed in HBM (use a BlockSpec in SMEM \
                     or scalar prefetch for scalars)",
                    p.role.name(),
                    p.name,
                    a.space.name().to_uppercase()
                ));
            }
            if let Some(bs) = p.block.as_ref().filter(|b| b.space == MemSpace::Hbm) {
                err(format!(
                    "the block {} of `{}` is in HBM; blocks are seen in VMEM or SMEM \
                     (leave the operand unblocked to keep it in HBM)",
                    shape_str(&bs.block_shape),
                    p.name
                ));
            }
        }
        Role::Scratch => {
            if let Some(Type::Ref(r)) = k.values.get(p.value.0 as usize) {
                if r.space == MemSpace::Hbm {
                    err(format!("scratch `{}` is in HBM; scratch buffers live in VMEM or SMEM", p.name));
                }
            }
        }
    }
}

/// A buffer that counts against a memory budget.
struct Buffer<'a> {
    param: &'a Param,
    bytes: usize,
    /// 2 for BlockSpec'd (double-buffered) operands, `n` for `Buffered(n)` ones.
    copies: usize,
}

impl Buffer<'_> {
    fn total(&self) -> usize {
        self.bytes * self.copies
    }

    fn describe(&self) -> String {
        let what = format!("{} `{}`", self.param.role.name(), self.param.name);
        if self.copies == 1 {
            format!("{what} {}", bytes_str(self.bytes))
        } else {
            format!("{what} {} × {}", self.copies, bytes_str(self.bytes))
        }
    }
}

/// The buffers of the kernel in VMEM or SMEM, in parameter order.
fn buffers(k: &Kernel, space: MemSpace) -> Vec<Buffer<'_>> {
    let size = |dtype, shape: &[usize]| match space {
        MemSpace::Smem => target::smem_bytes(shape),
        _ => target::padded_vmem_bytes(dtype, shape),
    };
    let mut out = Vec::new();
    for p in &k.params {
        let (bytes, copies) = match (p.role, &p.block, &p.array) {
            (Role::Scratch, _, _) => match k.values.get(p.value.0 as usize) {
                Some(Type::Ref(r)) if r.space == space => (size(r.dtype, &r.max_shape()), 1),
                _ => continue,
            },
            (_, Some(bs), Some(a)) if bs.space == space => (size(a.dtype, &bs.block_shape), bs.buffers.unwrap_or(2)),
            (Role::Prefetch, None, Some(a)) if a.space == space => (size(a.dtype, &a.max_shape()), 1),
            // An unblocked operand seen in VMEM/SMEM is one whole-array block.
            (_, None, Some(a)) if a.space == space => (size(a.dtype, &a.max_shape()), 2),
            _ => continue,
        };
        out.push(Buffer { param: p, bytes, copies });
    }
    out
}

/// `VMEM over budget on v7x: 70.0 MiB needed (scratch `acc` 64.0 MiB, …) but the limit is 64.0 MiB
/// (the VMEM of v7x)`, at the largest buffer's declaration.
fn over_budget(
    k: &Kernel,
    what: &str,
    target: TpuTarget,
    mut bufs: Vec<Buffer<'_>>,
    limit: usize,
    limit_why: String,
    errors: &mut Vec<Diagnostic>,
) {
    let total: usize = bufs.iter().map(Buffer::total).sum();
    if total <= limit {
        return;
    }
    bufs.sort_by_key(|b| std::cmp::Reverse(b.total())); // stable: ties in parameter order
    const SHOWN: usize = 3;
    let mut parts: Vec<String> = bufs.iter().take(SHOWN).map(Buffer::describe).collect();
    if bufs.len() > SHOWN {
        parts.push(format!("and {} smaller", bufs.len() - SHOWN));
    }
    let (mut need, mut have) = (bytes_str(total), bytes_str(limit));
    if need == have {
        // Rounded alike: show the exact byte counts.
        (need, have) = (format!("{need} ({total} bytes)"), format!("{have} ({limit} bytes)"));
    }
    let msg = format!(
        "{what} over budget on {target}: {need} needed ({}) but the limit is {have} ({limit_why})",
        parts.join(", "),
    );
    let (op, loc) = match bufs.first() {
        Some(b) => (Some(b.param.name.as_str()), b.param.loc),
        None => (None, k.loc),
    };
    errors.push(diag(k, op, loc, msg));
}

fn vmem_budget(k: &Kernel, target: TpuTarget, errors: &mut Vec<Diagnostic>) {
    let capacity = target.vmem_bytes();
    let (limit, why) = match k.vmem_limit {
        Some(l) if l > capacity => {
            let msg = format!("vmem_limit of {} exceeds the {} of VMEM on {target}", bytes_str(l), bytes_str(capacity));
            errors.push(diag(k, None, k.loc, msg));
            (capacity, format!("the VMEM of {target}"))
        }
        Some(l) => (l, "vmem_limit".to_string()),
        None => (
            target.default_scoped_vmem_bytes(),
            format!("the default scoped VMEM limit of {target}; raise it with `vmem_limit`"),
        ),
    };
    over_budget(k, "VMEM", target, buffers(k, MemSpace::Vmem), limit, why, errors);
}

fn smem_budget(k: &Kernel, target: TpuTarget, errors: &mut Vec<Diagnostic>) {
    let why = format!("the SMEM of {target}");
    over_budget(k, "SMEM", target, buffers(k, MemSpace::Smem), target.smem_bytes(), why, errors);
}

#[cfg(test)]
mod tests;
