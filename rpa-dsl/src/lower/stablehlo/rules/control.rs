//! Control-flow rules: mutable locals, `for`, `if`, `while`, `debug_print`.

use super::super::*;

impl<'k> Lowerer<'k> {
    pub(crate) fn lower_var_decl(&mut self, var: VarId, init: Option<ValueId>) -> R<()> {
        let name = match init {
            Some(v) => self.tensor(v),
            None => {
                let (dt, shape) = match &self.k.vars[var.0 as usize] {
                    Type::Vector { dtype, shape } => (*dtype, shape.clone()),
                    t => (t.dtype().unwrap_or(DType::I32), vec![]),
                };
                self.splat(dt, &shape, 0.0)
            }
        };
        self.vars.insert(var, name);
        Ok(())
    }

    pub(crate) fn lower_var_get(&mut self, inst: &'k Inst, var: VarId) -> R<()> {
        let n = self.vars.get(&var).cloned().ok_or_else(|| self.err("variable read before it is declared"))?;
        self.bind(inst, n, None);
        Ok(())
    }

    pub(crate) fn lower_var_set(&mut self, var: VarId, value: ValueId) -> R<()> {
        let n = self.tensor(value);
        self.vars.insert(var, n);
        Ok(())
    }

    pub(crate) fn lower_for(&mut self, lo: ValueId, hi: ValueId, index: ValueId, body: &'k Block) -> R<()> {
        let bufs = self.writes(&[body]);
        let vars = self.carried(&[body]);
        if bufs.is_empty() && vars.is_empty() {
            return Ok(());
        }
        let (lo, hi) = (self.int_of(lo), self.int_of(hi));
        let (lo, hi) = (self.int_name(&lo), self.int_name(&hi));
        let extra = [(lo, ty(DType::I32, &[]))];
        let slots = self.carry(&[key(body)], &bufs);
        let mut cond = |s: &mut Self, a: &[String]| Ok(s.compare("LT", &a[0], &hi, DType::I32, &[]));
        let mut run = |s: &mut Self, a: &[String]| {
            s.vals.insert(index, Bound::Tensor { name: a[0].clone(), constant: None });
            s.keyed_block(body, &[body])?;
            let one = s.iconst(1);
            Ok(vec![s.bin("add", &a[0], &one, DType::I32, &[])])
        };
        self.region_while(&extra, &slots, &vars, &mut cond, &mut run)?;
        Ok(())
    }

    pub(crate) fn lower_if(&mut self, cond: ValueId, then_body: &'k Block, else_body: &'k Block) -> R<()> {
        let bufs = self.writes(&[then_body, else_body]);
        let vars = self.carried(&[then_body, else_body]);
        let c = match self.vals.get(&cond) {
            Some(Bound::Tensor { constant: Some(k), .. }) => Cond::Static(*k != 0),
            _ => Cond::Dynamic(self.tensor(cond)),
        };
        // XLA:CPU copies every buffer a conditional passes through, in both branches: an `if`
        // that writes large buffers becomes two loops of at most one trip each (`while c`
        // then `while !c`), whose carried buffers XLA updates in place.
        let slots = self.carry(&[key(then_body), key(else_body)], &bufs);
        let bytes = self.slot_bytes(&slots);
        match c {
            Cond::Dynamic(c) if bytes > IF_AS_LOOPS_BYTES => {
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
            c => self.region_if(c, &slots, &vars, &mut |s| s.keyed_block(then_body, &[then_body]), &mut |s| {
                s.keyed_block(else_body, &[else_body])
            })?,
        }
        Ok(())
    }

    pub(crate) fn lower_while(&mut self, cond_body: &'k Block, cond: ValueId, body: &'k Block) -> R<()> {
        let bufs = self.writes(&[cond_body, body]);
        let vars = self.carried(&[cond_body, body]);
        self.block(cond_body)?;
        if bufs.is_empty() && vars.is_empty() {
            return Ok(());
        }
        // The condition region runs before the loop and at the end of every iteration, so
        // its side effects (and the variables it assigns) are carried like the body's.
        let c0 = self.tensor(cond);
        let extra = [(c0, ty(DType::Bool, &[]))];
        let slots = self.carry(&[key(body)], &bufs);
        let mut test = |_: &mut Self, a: &[String]| Ok(a[0].clone());
        let mut run = |s: &mut Self, _: &[String]| {
            s.keyed_block(body, &[body, cond_body])?;
            Ok(vec![s.tensor(cond)])
        };
        self.region_while(&extra, &slots, &vars, &mut test, &mut run)?;
        Ok(())
    }

    /// Appends the print to the program's print log (see `prints`).
    pub(crate) fn lower_debug_print(&mut self, message: &str, args: &[ValueId]) -> R<()> {
        self.log_print(message, args);
        Ok(())
    }
}
