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

use super::{Block, Inst, Kernel, Loc, MemSpace, Op, Param, Role, Type, TypeEnv, ValueId, VarId};
use crate::error::{Diagnostic, KernelError};
use crate::target::{self, TargetCheck, TpuTarget, MIB};
use std::collections::HashMap;

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
    /// 2 for BlockSpec'd (double-buffered) operands.
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
            (_, Some(bs), Some(a)) if bs.space == space => (size(a.dtype, &bs.block_shape), 2),
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
mod tests {
    use super::*;
    use crate::frontend::control::*;
    use crate::frontend::{build_kernel, launch, program_id, Hbm, Scalar};
    use crate::DType::*;

    fn map2(g: &[Scalar]) -> Vec<Scalar> {
        vec![g[0], launch::block_index(0)]
    }

    /// `x` (blocked, [32, 128] / [8, 128]) → `o` (same), `o = x + 1`.
    fn add_kernel() -> Kernel {
        build_kernel("add", Loc::caller(), || {
            launch::grid(&[4]);
            let x = launch::input_blocked("x", F32, &[32, 128], &[8, 128], map2);
            let o = launch::output_blocked("o", F32, &[32, 128], &[8, 128], map2, None);
            o.store(x.load() + 1.0f32);
        })
        .unwrap()
    }

    fn errors(r: Result<(), KernelError>) -> Vec<Diagnostic> {
        r.expect_err("the verifier should fail").diagnostics
    }

    /// The one diagnostic whose message contains `needle`.
    fn find(diags: &[Diagnostic], needle: &str) -> Diagnostic {
        let found: Vec<&Diagnostic> = diags.iter().filter(|d| d.message.contains(needle)).collect();
        assert_eq!(found.len(), 1, "one diagnostic with `{needle}` expected in {diags:#?}");
        found[0].clone()
    }

    fn index_of(k: &Kernel, name: &str) -> usize {
        k.body.insts.iter().position(|i| i.op.name() == name).unwrap()
    }

    #[test]
    fn a_good_kernel_verifies_on_every_target() {
        let k = add_kernel();
        for t in TpuTarget::ALL {
            verify(&k, t).unwrap();
        }
        // Two double-buffered 8×128 f32 blocks.
        assert_eq!(vmem_usage(&k), 2 * 2 * 8 * 128 * 4);
        assert_eq!(smem_usage(&k), 0);
    }

    #[test]
    fn tiling_rule() {
        let mut line = 0;
        let k = build_kernel("tiles", Loc::caller(), || {
            launch::grid(&[4]);
            line = line!() + 1;
            let x = launch::input_blocked("x", F32, &[32, 200], &[8, 100], map2);
            let o = launch::output_blocked("o", F32, &[32, 200], &[8, 200], map2, None);
            o.view(&[crate::frontend::full_dim(), crate::frontend::ds(0, 100)]).store(x.load());
        })
        .unwrap();
        verify_structure(&k).unwrap();
        let diags = errors(verify(&k, TpuTarget::V6e));
        assert_eq!(diags.len(), 1, "{diags:#?}");
        let d = &diags[0];
        assert_eq!(
            d.message,
            "block shape [8, 100] of `x` breaks the TPU tiling rule: the last two dimensions must be \
             multiples of (8, 128) for f32 or equal the array's dimensions [32, 200]"
        );
        assert_eq!((d.loc.file, d.loc.line), (file!(), line));
        assert_eq!(d.op.as_deref(), Some("x"));
        assert_eq!(d.kernel, "tiles");
    }

    #[test]
    fn tiling_rule_scales_with_packing_and_rank() {
        let mut lines = (0, 0);
        let k = build_kernel("tiles", Loc::caller(), || {
            launch::grid(&[2]);
            let m = |g: &[Scalar]| vec![launch::block_index(0), g[0], launch::block_index(0)];
            lines.0 = line!() + 1;
            launch::input_blocked("a", Bf16, &[2, 64, 256], &[1, 8, 128], m);
            // The full extent is always allowed.
            launch::input_blocked("b", Bf16, &[2, 24, 100], &[1, 24, 100], m);
            lines.1 = line!() + 1;
            launch::input_blocked("c", F32, &[512], &[100], |g: &[Scalar]| vec![g[0]]);
            launch::input_blocked("d", F32, &[512], &[256], |g: &[Scalar]| vec![g[0]]);
        })
        .unwrap();
        let diags = errors(verify(&k, TpuTarget::V5e));
        assert_eq!(diags.len(), 2, "{diags:#?}");
        let a = find(&diags, "`a`");
        assert_eq!(
            a.message,
            "block shape [1, 8, 128] of `a` breaks the TPU tiling rule: the last two dimensions must \
             be multiples of (16, 128) for bf16 or equal the array's last two dimensions [64, 256]"
        );
        assert_eq!(a.loc.line, lines.0);
        let c = find(&diags, "`c`");
        assert_eq!(
            c.message,
            "block shape [100] of `c` breaks the TPU tiling rule: the last dimension must be a \
             multiple of 128 or equal the array's dimension [512]"
        );
        assert_eq!(c.loc.line, lines.1);
    }

    #[test]
    fn block_larger_than_array() {
        let mut line = 0;
        let k = build_kernel("big", Loc::caller(), || {
            launch::grid(&[1]);
            line = line!() + 1;
            launch::input_blocked("x", F32, &[8, 128], &[16, 128], map2);
        })
        .unwrap();
        let d = errors(verify(&k, TpuTarget::V6e)).remove(0);
        assert_eq!(
            d.message,
            "block shape [16, 128] of `x` does not fit the array f32[8, 128]: dimension 0 must be \
             between 1 and 8"
        );
        assert_eq!(d.loc.line, line);
    }

    #[test]
    fn vmem_budget_depends_on_the_target() {
        let mut line = 0;
        let k = build_kernel("big_scratch", Loc::caller(), || {
            launch::grid(&[1]);
            launch::vmem_limit(100 * MIB + MIB);
            launch::input_blocked("x", F32, &[32, 128], &[8, 128], map2);
            line = line!() + 1;
            launch::scratch_vmem("acc", F32, &[25 * 1024, 1024]); // 100 MiB
        })
        .unwrap();
        assert_eq!(vmem_usage(&k), 100 * MIB + 2 * 8 * 128 * 4);
        verify(&k, TpuTarget::V6e).unwrap();
        verify(&k, TpuTarget::V5e).unwrap();
        let diags = errors(verify(&k, TpuTarget::V7x));
        assert_eq!(diags.len(), 2, "{diags:#?}");
        assert_eq!(diags[0].message, "vmem_limit of 101.0 MiB exceeds the 64.0 MiB of VMEM on v7x");
        let d = &diags[1];
        assert_eq!(
            d.message,
            "VMEM over budget on v7x: 100.0 MiB needed (scratch `acc` 100.0 MiB, input `x` 2 × 4.0 \
             KiB) but the limit is 64.0 MiB (the VMEM of v7x)"
        );
        assert_eq!((d.loc.file, d.loc.line), (file!(), line));
        assert_eq!(d.op.as_deref(), Some("acc"));
    }

    #[test]
    fn vmem_limit_is_the_budget_and_is_capped_by_the_target() {
        let mut line = 0;
        let mut k = build_kernel("limited", Loc::caller(), || {
            launch::grid(&[1]);
            launch::vmem_limit(8 * MIB);
            line = line!() + 1;
            launch::input_blocked("x", F32, &[4096, 512], &[2048, 512], map2); // 2 × 4 MiB
            launch::scratch_vmem("s", F32, &[512, 1024]); // 2 MiB
        })
        .unwrap();
        let d = errors(verify(&k, TpuTarget::V6e)).remove(0);
        assert_eq!(
            d.message,
            "VMEM over budget on v6e: 10.0 MiB needed (input `x` 2 × 4.0 MiB, scratch `s` 2.0 MiB) \
             but the limit is 8.0 MiB (vmem_limit)"
        );
        assert_eq!(d.loc.line, line);
        k.vmem_limit = Some(100 * MIB);
        verify(&k, TpuTarget::V6e).unwrap();
        let d = errors(verify(&k, TpuTarget::V7x)).remove(0);
        assert_eq!(d.message, "vmem_limit of 100.0 MiB exceeds the 64.0 MiB of VMEM on v7x");
        assert_eq!(d.loc, k.loc);
    }

    #[test]
    fn smem_budget() {
        let mut line = 0;
        let k = build_kernel("tables", Loc::caller(), || {
            launch::grid(&[1]);
            line = line!() + 1;
            launch::prefetch("pages", I32, &[300_000]);
            launch::scratch_smem("m", F32, &[1024]);
        })
        .unwrap();
        assert_eq!(smem_usage(&k), 300_000 * 4 + 1024 * 4);
        let diags = errors(verify(&k, TpuTarget::V6e));
        assert_eq!(diags.len(), 1, "{diags:#?}");
        assert_eq!(
            diags[0].message,
            "SMEM over budget on v6e: 1.1 MiB needed (prefetch `pages` 1.1 MiB, scratch `m` 4.0 KiB) \
             but the limit is 1.0 MiB (the SMEM of v6e)"
        );
        assert_eq!(diags[0].loc.line, line);
        assert_eq!(diags[0].op.as_deref(), Some("pages"));
    }

    #[test]
    fn use_before_definition() {
        let mut line = 0;
        let mut k = build_kernel("swap", Loc::caller(), || {
            launch::grid(&[4]);
            let x = launch::input_blocked("x", F32, &[32, 128], &[8, 128], map2);
            let o = launch::output_blocked("o", F32, &[32, 128], &[8, 128], map2, None);
            let t = x.load();
            line = line!() + 1;
            let u = t.exp();
            o.store(u);
        })
        .unwrap();
        let (load, exp) = (index_of(&k, "load"), index_of(&k, "exp"));
        k.body.insts.swap(load, exp);
        let diags = errors(verify_structure(&k));
        assert_eq!(diags.len(), 1, "{diags:#?}");
        let d = &diags[0];
        let loaded = k.body.insts[exp].result.unwrap();
        let load_loc = k.body.insts[exp].loc;
        assert_eq!(d.message, format!("%{} is used before it is defined (at {load_loc})", loaded.0));
        assert_eq!(d.op.as_deref(), Some("exp"));
        assert_eq!((d.loc.file, d.loc.line), (file!(), line));
        assert!(d.to_string().contains("kernel `swap`, `exp`: %"), "{d}");
        // `verify` reports the structural error too.
        assert_eq!(errors(verify(&k, TpuTarget::V6e)), diags);
    }

    #[test]
    fn value_used_outside_its_region() {
        let mut lines = (0, 0);
        let err = build_kernel("escape", Loc::caller(), || {
            launch::grid(&[1]);
            let x = launch::input_blocked("x", F32, &[8, 128], &[8, 128], map2);
            let o = launch::output_blocked("o", F32, &[8, 128], &[8, 128], map2, None);
            let lp = ForLoop::begin(0, 4);
            lines.0 = line!() + 1;
            let t = x.load();
            lp.end();
            lines.1 = line!() + 1;
            o.store(t);
        })
        .unwrap_err();
        assert_eq!(err.diagnostics.len(), 1, "{err}");
        let d = err.first();
        let defined_at = format!("is used outside the region that defines it (at {}:{}:", file!(), lines.0);
        assert!(d.message.starts_with('%') && d.message.contains(&defined_at), "{d}");
        assert_eq!((d.op.as_deref(), d.loc.line), (Some("store"), lines.1));
    }

    #[test]
    fn variable_used_outside_its_region() {
        let mut line = 0;
        let err = build_kernel("var_escape", Loc::caller(), || {
            launch::grid(&[1]);
            let x = launch::input_blocked("x", F32, &[8, 128], &[8, 128], map2);
            let o = launch::output_blocked("o", F32, &[8, 128], &[8, 128], map2, None);
            let lp = ForLoop::begin(0, 4);
            let v = MutInit::new(x.load()).__rpa_into_mut();
            lp.end();
            line = line!() + 1;
            o.store(v);
        })
        .unwrap_err();
        let d = err.first();
        assert!(d.message.starts_with("variable $0 is used outside the region that declares it"), "{d}");
        assert_eq!((d.op.as_deref(), d.loc.line), (Some("var_get"), line));
    }

    #[test]
    fn variable_used_before_its_declaration() {
        let mut line = 0;
        let mut k = build_kernel("vars", Loc::caller(), || {
            launch::grid(&[1]);
            let x = launch::input_blocked("x", F32, &[8, 128], &[8, 128], map2);
            let o = launch::output_blocked("o", F32, &[8, 128], &[8, 128], map2, None);
            let v = MutInit::new(x.load()).__rpa_into_mut();
            line = line!() + 1;
            o.store(v);
        })
        .unwrap();
        let (decl, get) = (index_of(&k, "var"), index_of(&k, "var_get"));
        k.body.insts.swap(decl, get);
        let diags = errors(verify_structure(&k));
        let d = find(&diags, "variable $0 is used before its declaration");
        assert_eq!((d.op.as_deref(), d.loc.line), (Some("var_get"), line));
    }

    #[test]
    fn index_maps_only_see_grid_indices_and_prefetch() {
        let mut line = 0;
        let err = build_kernel("maps", Loc::caller(), || {
            launch::grid(&[4]);
            let pages = launch::prefetch("pages", I32, &[4]);
            // Reading scalar prefetch is fine.
            launch::input_blocked("x", F32, &[32, 128], &[8, 128], |g: &[Scalar]| {
                vec![pages.get(g[0]), launch::block_index(0)]
            });
            let p = program_id(0);
            line = line!() + 1;
            launch::input_blocked("y", F32, &[32, 128], &[8, 128], |_: &[Scalar]| vec![p, launch::block_index(0)]);
        })
        .unwrap_err();
        assert_eq!(err.diagnostics.len(), 1, "{err}");
        let d = err.first();
        assert!(
            d.message.starts_with(
                "block index 0 of the index map of `y`: index maps may only use their grid indices, \
                 values they define and scalar-prefetch operands, but %"
            ),
            "{d}"
        );
        assert!(d.message.contains("is a value of the kernel body (defined at"), "{d}");
        assert_eq!((d.op.as_deref(), d.loc.line), (Some("y"), line));
    }

    #[test]
    fn index_map_values_are_not_visible_in_the_body() {
        let mut k = add_kernel();
        let g = k.params[0].block.as_ref().unwrap().index_map.grid_indices[0];
        let store = index_of(&k, "store");
        if let Op::Store { value, .. } = &mut k.body.insts[store].op {
            *value = g;
        }
        let diags = errors(verify_structure(&k));
        let d = find(&diags, "belongs to the index map of `x`");
        assert_eq!(
            d.message,
            format!("%{} belongs to the index map of `x` and cannot be used in the kernel body", g.0)
        );
    }

    #[test]
    fn result_types_are_rechecked() {
        let mut k = add_kernel();
        let load = index_of(&k, "load");
        let r = k.body.insts[load].result.unwrap();
        k.values[r.0 as usize] = Type::Vector { dtype: Bf16, shape: vec![8, 128] };
        let diags = errors(verify_structure(&k));
        let d = find(&diags, "result type mismatch");
        assert_eq!(
            d.message,
            format!(
                "result type mismatch: the type rule of `load` gives vector<f32[8, 128]>, but %{} is \
                 recorded as vector<bf16[8, 128]>",
                r.0
            )
        );
        assert_eq!(d.loc, k.body.insts[load].loc);
        // The add now mixes bf16 and f32: its type rule fails too.
        find(&diags, "operand dtypes differ");
    }

    #[test]
    fn memory_spaces_of_ops() {
        let mut lines = (0, 0);
        let mut k = build_kernel("spaces", Loc::caller(), || {
            launch::grid(&[1]);
            let h = launch::input::<Hbm>("h", F32, &[8, 128]);
            let o = launch::output_blocked("o", F32, &[8, 128], &[8, 128], map2, None);
            let buf = launch::scratch_vmem("buf", F32, &[8, 128]);
            let sems = launch::dma_sems("sems", &[1]);
            lines.0 = line!() + 1;
            crate::frontend::copy(h, buf, sems.at(0)).start_and_wait();
            lines.1 = line!() + 1;
            o.store(buf.load());
        })
        .unwrap();
        let pages = k.values.len();
        k.values.push(Type::Ref(crate::ir::RefType::fixed(MemSpace::Smem, F32, &[8, 128])));
        let (h, sems) = (k.params[0].value, k.params[3].value);
        for inst in &mut k.body.insts {
            match &mut inst.op {
                Op::Load { src } => *src = h,
                Op::DmaStart { dst, .. } => *dst = ValueId(pages as u32),
                Op::Store { value, .. } => *value = sems,
                _ => {}
            }
        }
        let diags = errors(verify(&k, TpuTarget::V6e));
        let load = find(&diags, "HBM is reachable only by DMA");
        assert_eq!((load.op.as_deref(), load.loc.line), (Some("load"), lines.1));
        let dma = find(&diags, "DMA destination is in SMEM");
        assert_eq!((dma.op.as_deref(), dma.loc.line), (Some("dma_start"), lines.0));
        let sem = find(&diags, "stored value must be a vector, got dma_sem[1]");
        assert_eq!(sem.op.as_deref(), Some("store"));
    }

    #[test]
    fn scratch_in_hbm() {
        let mut line = 0;
        let mut k = build_kernel("hbm_scratch", Loc::caller(), || {
            launch::grid(&[1]);
            line = line!() + 1;
            launch::scratch_vmem("s", F32, &[8, 128]);
        })
        .unwrap();
        let s = k.params[0].value.0 as usize;
        k.values[s] = Type::Ref(crate::ir::RefType::fixed(MemSpace::Hbm, F32, &[8, 128]));
        verify_structure(&k).unwrap();
        let d = errors(verify(&k, TpuTarget::V6e)).remove(0);
        assert_eq!(d.message, "scratch `s` is in HBM; scratch buffers live in VMEM or SMEM");
        assert_eq!(d.loc.line, line);
    }

    #[test]
    fn launch_description() {
        let mut k = add_kernel();
        k.semantics.push(crate::ir::DimSemantics::Parallel);
        // Drop a block index of `x`; give `o` a rank-3 array; alias `o` to `x`.
        k.params[0].block.as_mut().unwrap().index_map.results.pop();
        k.params[1].array = Some(crate::ir::RefType::fixed(MemSpace::Hbm, F32, &[1, 32, 128]));
        k.params[1].alias_of = Some(0);
        let diags = errors(verify_structure(&k));
        let d = find(&diags, "dimension semantics");
        assert_eq!(d.message, "2 dimension semantics for a rank-1 grid [4]");
        assert_eq!(d.loc, k.loc);
        let d = find(&diags, "block indices");
        assert_eq!(d.message, "the index map of `x` returns 1 block indices for the rank-2 block [8, 128]");
        assert_eq!(d.loc, k.params[0].loc);
        find(&diags, "block shape [8, 128] of `o` has rank 2, but the array f32[1, 32, 128] has rank 3");
        find(&diags, "output `o` aliases input `x`, but their array types differ: f32[1, 32, 128] and f32[32, 128]");
    }

    #[test]
    fn aliases() {
        let mut k = build_kernel("alias", Loc::caller(), || {
            launch::grid(&[1]);
            launch::input::<Hbm>("x", F32, &[8, 128]);
            launch::output::<Hbm>("o", F32, &[8, 128], Some("x"));
            launch::output::<Hbm>("p", F32, &[8, 128], None);
        })
        .unwrap();
        verify(&k, TpuTarget::V7x).unwrap();
        k.params[2].alias_of = Some(0);
        let d = errors(verify_structure(&k)).remove(0);
        assert_eq!(d.message, "outputs `o` and `p` both alias input `x`");
        k.params[2].alias_of = Some(1);
        let d = errors(verify_structure(&k)).remove(0);
        assert_eq!(d.message, "output `p` aliases `o`, which is not an input");
        k.params[2].alias_of = Some(5);
        let d = errors(verify_structure(&k)).remove(0);
        assert_eq!(d.message, "output `p` aliases operand 5, but the kernel has 3 operands");
        assert_eq!(d.op.as_deref(), Some("p"));
    }

    #[test]
    fn program_id_axis() {
        let mut line = 0;
        let err = build_kernel("axis", Loc::caller(), || {
            launch::grid(&[4]);
            line = line!() + 1;
            let _ = program_id(1);
        })
        .unwrap_err();
        let d = err.first();
        assert_eq!(d.message, "grid axis 1 is out of range for the rank-1 grid [4]");
        assert_eq!((d.op.as_deref(), d.loc.line), (Some("program_id"), line));
    }

    #[test]
    fn double_definitions_and_missing_values() {
        let mut k = add_kernel();
        let load = index_of(&k, "load");
        let x = k.params[0].value;
        k.body.insts[load].result = Some(x);
        let n = k.values.len() as u32;
        let store = index_of(&k, "store");
        if let Op::Store { value, .. } = &mut k.body.insts[store].op {
            *value = ValueId(n + 5);
        }
        let diags = errors(verify_structure(&k));
        let d = find(&diags, "is defined twice");
        assert_eq!(d.message, format!("%{} is defined twice (first at {})", x.0, k.params[0].loc));
        assert_eq!(d.loc, k.body.insts[load].loc);
        find(&diags, &format!("%{} does not exist: the kernel has {n} values", n + 5));
    }

    #[test]
    fn while_condition_and_loop_index_scopes() {
        let mut k = build_kernel("loops", Loc::caller(), || {
            launch::grid(&[1]);
            let s = launch::scratch_smem("s", I32, &[1]);
            let mut w = WhileLoop::begin();
            let c = crate::frontend::cmp::lt(s.get(0), 4);
            w.body(c);
            s.set(0, s.get(0) + 1);
            w.end();
            let lp = ForLoop::begin(0, 4);
            s.set(0, lp.index());
            lp.end();
        })
        .unwrap();
        verify(&k, TpuTarget::V5e).unwrap();
        // Use the loop index after the loop.
        let f = index_of(&k, "for");
        let Op::For { index, .. } = k.body.insts[f].op else { unreachable!() };
        k.body.insts.push(Inst {
            op: Op::ScalarStore { dst: k.params[0].value, indices: vec![index], value: index },
            result: None,
            loc: k.loc,
        });
        let diags = errors(verify_structure(&k));
        assert_eq!(diags.len(), 2, "{diags:#?}");
        assert!(diags[0].message.contains("is used outside the region that defines it"));
    }

    #[test]
    fn messages_display_kernel_op_and_location() {
        let mut k = add_kernel();
        k.semantics.clear();
        let e = verify_structure(&k).unwrap_err();
        assert_eq!(e.to_string(), format!("{}: kernel `add`: 0 dimension semantics for a rank-1 grid [4]", k.loc));
    }
}
