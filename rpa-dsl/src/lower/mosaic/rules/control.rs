//! Control flow: mutable locals, `for`, `if`, `while`, `debug_print`.

use super::super::*;

impl<'k> Emitter<'k> {
    pub(crate) fn lower_var_decl(&mut self, l: &str, var: VarId, init: Option<ValueId>) -> Result<(), KernelError> {
        let name = match init {
            Some(v) => self.name(v),
            None => {
                let t = self.k.vars[var.0 as usize].clone();
                let (dt, shape) = match &t {
                    Type::Vector { dtype, shape } => (*dtype, shape.clone()),
                    t => (t.dtype().unwrap_or(DType::I32), vec![]),
                };
                self.splat(dt, 0.0, &shape, l)
            }
        };
        self.vars.insert(var, name);
        Ok(())
    }

    pub(crate) fn lower_var_get(&mut self, inst: &'k Inst, var: VarId) -> Result<(), KernelError> {
        let n = self
            .vars
            .get(&var)
            .cloned()
            .ok_or_else(|| self.err(inst.loc, "var_get", "variable read before it is declared"))?;
        self.bind(inst, n);
        Ok(())
    }

    pub(crate) fn lower_var_set(&mut self, var: VarId, value: ValueId) -> Result<(), KernelError> {
        let n = self.name(value);
        self.vars.insert(var, n);
        Ok(())
    }

    pub(crate) fn lower_for(
        &mut self,
        l: &str,
        lo: ValueId,
        hi: ValueId,
        index: ValueId,
        body: &'k Block,
    ) -> Result<(), KernelError> {
        let carried = self.carried(&[body]);
        let inits: Vec<String> = carried.iter().map(|v| self.vars[v].clone()).collect();
        let types: Vec<String> = carried.iter().map(|v| self.var_type(*v)).collect();
        let one = self.constant(DType::I32, 1.0, l);
        let results = self.tmp();
        let iter_names: Vec<String> = carried.iter().map(|_| self.tmp()).collect();
        let head = if carried.is_empty() {
            format!("scf.for %v{} = {} to {} step {one} : i32 {{", index.0, self.name(lo), self.name(hi))
        } else {
            let args: Vec<String> = iter_names.iter().zip(&inits).map(|(a, i)| format!("{a} = {i}")).collect();
            format!(
                "{results}:{} = scf.for %v{} = {} to {} step {one} iter_args({}) -> ({}) : i32 {{",
                carried.len(),
                index.0,
                self.name(lo),
                self.name(hi),
                args.join(", "),
                types.join(", ")
            )
        };
        self.line(&head);
        self.text.enter();
        for (v, n) in carried.iter().zip(&iter_names) {
            self.vars.insert(*v, n.clone());
        }
        self.block(body)?;
        if !carried.is_empty() {
            let ys: Vec<String> = carried.iter().map(|v| self.vars[v].clone()).collect();
            self.line(&format!("scf.yield {} : {}", ys.join(", "), types.join(", ")));
        }
        self.text.leave();
        self.line(&format!("}} {l}"));
        for (i, v) in carried.iter().enumerate() {
            self.vars.insert(*v, format!("{results}#{i}"));
        }
        Ok(())
    }

    pub(crate) fn lower_if(
        &mut self,
        l: &str,
        cond: ValueId,
        then_body: &'k Block,
        else_body: &'k Block,
    ) -> Result<(), KernelError> {
        let carried = self.carried(&[then_body, else_body]);
        let types: Vec<String> = carried.iter().map(|v| self.var_type(*v)).collect();
        let before: Vec<String> = carried.iter().map(|v| self.vars[v].clone()).collect();
        let results = self.tmp();
        let c = self.name(cond);
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
            self.text.enter();
            for (v, n) in carried.iter().zip(&before) {
                self.vars.insert(*v, n.clone());
            }
            self.block(body)?;
            if !carried.is_empty() {
                let ys: Vec<String> = carried.iter().map(|v| self.vars[v].clone()).collect();
                self.line(&format!("scf.yield {} : {}", ys.join(", "), types.join(", ")));
            }
            self.text.leave();
        }
        self.line(&format!("}} {l}"));
        for (i, v) in carried.iter().enumerate() {
            self.vars.insert(*v, format!("{results}#{i}"));
        }
        Ok(())
    }

    pub(crate) fn lower_while(
        &mut self,
        l: &str,
        cond_body: &'k Block,
        cond: ValueId,
        body: &'k Block,
    ) -> Result<(), KernelError> {
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
        self.text.enter();
        for (v, n) in carried.iter().zip(&before_names) {
            self.vars.insert(*v, n.clone());
        }
        self.block(cond_body)?;
        let ys: Vec<String> = carried.iter().map(|v| self.vars[v].clone()).collect();
        let c = self.name(cond);
        if carried.is_empty() {
            self.line(&format!("scf.condition({c})"));
        } else {
            self.line(&format!("scf.condition({c}) {} : {}", ys.join(", "), types.join(", ")));
        }
        self.text.leave();
        self.line("} do {");
        let bb: Vec<String> = after_names.iter().zip(&types).map(|(n, t)| format!("{n}: {t}")).collect();
        self.line(&format!("^bb0({}):", bb.join(", ")));
        self.text.enter();
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
        self.text.leave();
        self.line(&format!("}} {l}"));
        for (i, v) in carried.iter().enumerate() {
            self.vars.insert(*v, format!("{results}#{i}"));
        }
        Ok(())
    }

    pub(crate) fn lower_debug_print(&mut self, message: &str) -> Result<(), KernelError> {
        // Mosaic's debug printing needs runtime support we do not emit: keep it as a comment.
        self.line(&format!("// debug_print {message:?}"));
        Ok(())
    }
}
