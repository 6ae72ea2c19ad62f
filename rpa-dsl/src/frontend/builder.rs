//! The builder that records IR while kernel code runs. It is thread-local (operators such as `a + b`
//! cannot take a context argument), one per kernel being built, stacked for nested builds.

use crate::error::{Diagnostic, KernelError};
use crate::ir::*;
use crate::DType;
use std::cell::RefCell;
use std::collections::HashSet;

pub(crate) struct Builder {
    pub name: String,
    pub loc: Loc,
    pub values: Vec<Type>,
    pub vars: Vec<Type>,
    /// Open regions; `blocks[0]` is the kernel body (or an index map being built).
    pub blocks: Vec<Block>,
    /// Region bodies opened so far (each gets the next id).
    pub regions: u32,
    pub errors: Vec<Diagnostic>,
    /// Values whose defining op failed its type rule: their users are not checked again.
    pub poisoned: HashSet<ValueId>,
    /// How many runtime regions (`if`/`for`/`while` on runtime values) enclose the current point.
    pub runtime_depth: usize,
    pub params: Vec<Param>,
    pub grid: Vec<usize>,
    pub semantics: Vec<DimSemantics>,
    pub vmem_limit: Option<usize>,
    /// Grid indices while an index map is being built.
    pub in_index_map: bool,
}

impl TypeEnv for Builder {
    fn value_type(&self, v: ValueId) -> &Type {
        &self.values[v.0 as usize]
    }
    fn var_type(&self, v: VarId) -> &Type {
        &self.vars[v.0 as usize]
    }
}

thread_local! {
    static STACK: RefCell<Vec<Builder>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the active builder. Kernel handles only exist inside a kernel build, so a missing
/// builder is a programming error in the host code, reported as such.
pub(crate) fn with<R>(f: impl FnOnce(&mut Builder) -> R) -> R {
    STACK.with(|s| {
        let mut s = s.borrow_mut();
        let b = s.last_mut().expect(
            "rpa: kernel values and ops can only be used while a kernel is being built \
             (inside a #[tpu_kernel] or #[tpu_fn] function called from a kernel build)",
        );
        f(b)
    })
}

impl Builder {
    pub fn new_value(&mut self, t: Type) -> ValueId {
        self.values.push(t);
        ValueId(self.values.len() as u32 - 1)
    }

    pub fn new_var(&mut self, t: Type) -> VarId {
        self.vars.push(t);
        VarId(self.vars.len() as u32 - 1)
    }

    pub fn error(&mut self, loc: Loc, op: Option<&str>, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            kernel: self.name.clone(),
            op: op.map(str::to_string),
            loc,
            message: message.into(),
        });
    }

    pub fn push_inst(&mut self, op: Op, result: Option<ValueId>, loc: Loc) {
        self.blocks.last_mut().expect("an open region").insts.push(Inst { op, result, loc });
    }

    /// Type-checks `op` with its type rule and appends it; returns its result. On a type error the
    /// diagnostic is recorded and a poisoned result (of `fallback` type) is returned instead.
    pub fn emit(&mut self, op: Op, loc: Loc, fallback: Type) -> Option<ValueId> {
        if op.operands().iter().any(|v| self.poisoned.contains(v)) {
            let v = self.new_value(fallback);
            self.poisoned.insert(v);
            return Some(v);
        }
        match op.result_type(self) {
            Ok(Some(t)) => {
                let v = self.new_value(t);
                self.push_inst(op, Some(v), loc);
                Some(v)
            }
            Ok(None) => {
                self.push_inst(op, None, loc);
                None
            }
            Err(msg) => {
                self.error(loc, Some(op.name()), msg);
                let v = self.new_value(fallback);
                self.poisoned.insert(v);
                Some(v)
            }
        }
    }

    pub fn open_region(&mut self) {
        self.regions += 1;
        self.blocks.push(Block { id: self.regions, insts: Vec::new() });
    }

    pub fn close_region(&mut self) -> Block {
        self.blocks.pop().expect("an open region")
    }

    pub fn dtype_of(&self, v: ValueId) -> Option<DType> {
        self.values[v.0 as usize].dtype()
    }
}

/// Builds a kernel: runs `body` with a fresh builder, then verifies the result.
pub fn build_kernel(name: &str, loc: Loc, body: impl FnOnce()) -> Result<Kernel, KernelError> {
    STACK.with(|s| {
        s.borrow_mut().push(Builder {
            name: name.to_string(),
            loc,
            values: Vec::new(),
            vars: Vec::new(),
            blocks: vec![Block::default()],
            regions: 0,
            errors: Vec::new(),
            poisoned: HashSet::new(),
            runtime_depth: 0,
            params: Vec::new(),
            grid: Vec::new(),
            semantics: Vec::new(),
            vmem_limit: None,
            in_index_map: false,
        })
    });
    // Pop the builder even if the kernel code panics, so the thread stays usable.
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            STACK.with(|s| s.borrow_mut().pop());
        }
    }
    let pop = Pop;
    body();
    let mut b = STACK.with(|s| s.borrow_mut().pop()).expect("builder");
    std::mem::forget(pop);
    if b.blocks.len() != 1 {
        b.error(b.loc, None, "internal: unbalanced regions at the end of the kernel");
    }
    if !b.errors.is_empty() {
        return Err(KernelError::new(b.errors));
    }
    let semantics =
        if b.semantics.is_empty() { vec![DimSemantics::Arbitrary; b.grid.len()] } else { b.semantics.clone() };
    let kernel = Kernel {
        name: b.name,
        loc: b.loc,
        params: b.params,
        grid: b.grid,
        semantics,
        vmem_limit: b.vmem_limit,
        body: b.blocks.pop().unwrap(),
        values: b.values,
        vars: b.vars,
    };
    crate::ir::verify::verify_structure(&kernel)?;
    Ok(kernel)
}

/// The number of runtime regions around the current point (used to catch comptime variables that
/// are assigned inside runtime control flow).
pub fn runtime_depth() -> usize {
    with(|b| b.runtime_depth)
}
