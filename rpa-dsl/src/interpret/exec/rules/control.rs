//! Control flow: mutable locals, `for`, `if`, `while`, `debug_print`.

use super::super::*;

impl<'k> Machine<'k> {
    pub(crate) fn exec_var_decl(&mut self, var: VarId, init: Option<ValueId>) -> R<()> {
        self.vars[var.0 as usize] = init.map(|i| self.val(i).clone()).unwrap_or(Val::Unset);
        Ok(())
    }

    pub(crate) fn exec_var_get(&mut self, inst: &'k Inst, loc: Loc, var: VarId) -> R<()> {
        let v = self.vars[var.0 as usize].clone();
        if v == Val::Unset {
            return Err(self.err(loc, "var_get", "reads a variable before any value was assigned to it"));
        }
        self.set(inst, v);
        Ok(())
    }

    pub(crate) fn exec_var_set(&mut self, var: VarId, value: ValueId) -> R<()> {
        self.vars[var.0 as usize] = self.val(value).clone();
        Ok(())
    }

    pub(crate) fn exec_for(&mut self, lo: ValueId, hi: ValueId, index: ValueId, body: &'k Block) -> R<()> {
        let (lo, hi) = (self.int(lo), self.int(hi));
        for i in lo..hi {
            self.vals[index.0 as usize] = Val::I(i);
            self.exec_block(body)?;
        }
        Ok(())
    }

    pub(crate) fn exec_if(&mut self, cond: ValueId, then_body: &'k Block, else_body: &'k Block) -> R<()> {
        if self.int(cond) != 0 {
            self.exec_block(then_body)?;
        } else {
            self.exec_block(else_body)?;
        }
        Ok(())
    }

    pub(crate) fn exec_while(&mut self, cond_body: &'k Block, cond: ValueId, body: &'k Block) -> R<()> {
        loop {
            self.exec_block(cond_body)?;
            if self.int(cond) == 0 {
                break;
            }
            self.exec_block(body)?;
        }
        Ok(())
    }

    pub(crate) fn exec_debug_print(&mut self, message: &str, args: &[ValueId]) -> R<()> {
        let vals: Vec<String> = args
            .iter()
            .map(|a| match self.val(*a) {
                Val::F(f) => f.to_string(),
                Val::V(t) => {
                    let elems: Vec<String> = match &t.data {
                        Data::F(v) => v.iter().map(f32::to_string).collect(),
                        Data::I(v) => v.iter().map(i64::to_string).collect(),
                    };
                    crate::ir::fmt_tile(&t.shape, &elems)
                }
                v => v.int().to_string(),
            })
            .collect();
        let mut text = message.to_string();
        for v in vals {
            text = text.replacen("{}", &v, 1);
        }
        self.prints.push(text);
        Ok(())
    }
}
