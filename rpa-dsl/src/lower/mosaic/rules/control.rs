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

    /// Mosaic's print op, as Pallas lowers a scalar `debug_print`: each `{}` becomes `$` with the
    /// argument's format (`f`, `u` or `s`) and index; the arguments are 32-bit (narrower scalars are
    /// widened).
    pub(crate) fn lower_debug_print(&mut self, l: &str, message: &str, args: &[ValueId]) -> Result<(), KernelError> {
        if let [a] = args {
            if let Type::Vector { dtype, shape } = self.ty(*a) {
                self.log_tile(l, message, *a, *dtype, shape);
                return Ok(());
            }
        }
        let mut names = Vec::new();
        let mut types = Vec::new();
        let mut tag = String::new();
        let mut rest = message;
        for (i, &a) in args.iter().enumerate() {
            let dt = self.ty(a).dtype().unwrap_or(DType::I32);
            let (v, wide) = self.scalar_to_32(l, a, dt);
            let spec = if wide.is_float() {
                "f"
            } else if wide.is_unsigned_int() {
                "u"
            } else {
                "s"
            };
            match rest.split_once("{}") {
                Some((before, after)) => {
                    tag.push_str(before);
                    tag.push_str(&format!("${spec}{i}"));
                    rest = after;
                }
                None => break,
            }
            names.push(v);
            types.push(elem(wide).to_string());
        }
        tag.push_str(rest);
        let tag = mlir_string(&tag);
        if names.is_empty() {
            self.line(&format!("tpu.log {tag} {l}"));
        } else {
            self.line(&format!(
                "tpu.log {tag} {{formatted = true}} : [{}] : {} {l}",
                names.join(", "),
                types.join(", ")
            ));
        }
        Ok(())
    }

    /// A tile print as Pallas lowers it: the tile stored to a VMEM buffer of a region, logged by
    /// `tpu.log_buffer` after the message (its trailing `{}` dropped).
    /// Bool tiles are logged as 32-bit 0s and 1s (Mosaic has no 1-bit buffers).
    fn log_tile(&mut self, l: &str, message: &str, a: ValueId, dtype: DType, shape: &[usize]) {
        let (vn, dtype) = match dtype {
            DType::Bool => self.widen_to_32(l, &self.name(a), dtype, shape),
            _ => (self.name(a), dtype),
        };
        let vt = vector_type(dtype, shape);
        let mt = format!("memref<{}{}, #tpu.memory_space<vmem>>", mlir::dims(shape), elem(dtype));
        let tag = mlir_string(message.strip_suffix("{}").unwrap_or(message));
        let (buf, zero) = (self.tmp(), self.tmp());
        let idx = vec![zero.as_str(); shape.len()].join(", ");
        self.line("\"tpu.region\"() ({");
        self.text.enter();
        self.line(&format!("{buf} = memref.alloca() : {mt} {l}"));
        self.line(&format!("{zero} = arith.constant 0 : index {l}"));
        self.line(&format!("vector.store {vn}, {buf}[{idx}] : {mt}, {vt} {l}"));
        self.line(&format!("tpu.log_buffer {tag} {{shape = array<i64: {}>}} : {buf} : {mt} {l}", join(shape)));
        self.line("\"tpu.yield\"() : () -> ()");
        self.text.leave();
        self.line(&format!("}}) : () -> () {l}"));
    }

    /// The scalar `a` of `dt` as a 32-bit scalar (widened exactly) and its dtype.
    fn scalar_to_32(&mut self, l: &str, a: ValueId, dt: DType) -> (String, DType) {
        let (to, op) = match dt {
            _ if dt.bits() == 32 => return (self.name(a), dt),
            _ if dt.is_float() => (DType::F32, "arith.extf"),
            DType::Bool | DType::U16 | DType::U8 => (DType::U32, "arith.extui"),
            _ => (DType::I32, "arith.extsi"),
        };
        let t = self.tmp();
        self.line(&format!("{t} = {op} {} : {} to {} {l}", self.name(a), elem(dt), elem(to)));
        (t, to)
    }
}

/// `s` as an MLIR string literal.
fn mlir_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
