//! Regions (`stablehlo.if`/`while`) and what they carry: written buffers and tiles, mutable locals.

use super::*;

impl<'k> Lowerer<'k> {
    /// Buffers that `blocks` write.
    pub(super) fn writes(&self, blocks: &[&Block]) -> Vec<usize> {
        let mut w = BTreeSet::new();
        for b in blocks {
            b.walk(&mut |i| match &i.op {
                Op::Store { dst, .. } | Op::StoreStrided { dst, .. } | Op::ScalarStore { dst, .. } => {
                    w.extend(self.ref_buf.get(dst).copied());
                }
                Op::DmaStart { dst, .. } => {
                    w.extend(self.ref_buf.get(dst).copied());
                    w.extend(self.sem_buf);
                }
                Op::DmaWait { .. } | Op::SemSignal { .. } | Op::SemWait { .. } => {
                    w.extend(self.sem_buf);
                }
                Op::DebugPrint { .. } => {
                    w.extend(self.print_bufs().into_iter().flat_map(|(count, rows)| [count, rows]));
                }
                _ => {}
            });
        }
        self.with_check_buffers(w).into_iter().collect()
    }

    /// Vars written inside `blocks` that were declared outside them.
    pub(super) fn carried(&self, blocks: &[&Block]) -> Vec<VarId> {
        Block::carried_vars(blocks).into_iter().filter(|v| self.vars.contains_key(v)).collect()
    }

    /// What a region (by `keys`) that writes `bufs` carries: whole buffers, and of tiled buffers
    /// the tiles it writes (all of them if the analysis recorded nothing).
    pub(super) fn carry(&self, keys: &[usize], bufs: &[usize]) -> Vec<Slot> {
        let mut out = Vec::new();
        for &b in bufs {
            let Some(t) = &self.tiling[b] else {
                out.push(Slot::Buf(b));
                continue;
            };
            let mut tiles = BTreeSet::new();
            let mut all = true;
            for key in keys {
                for (wb, st, sz) in self.region_writes.get(key).into_iter().flatten() {
                    if *wb != b {
                        continue;
                    }
                    all = false;
                    match t.cover(st, sz) {
                        Some(cover) => tiles.extend(Tiling::tiles_in(&cover).iter().map(|idx| t.tile(idx).0)),
                        None => tiles.extend(0..t.count()),
                    }
                }
            }
            if all {
                tiles.extend(0..t.count());
            }
            out.extend(tiles.into_iter().map(|i| Slot::Tile(b, i)));
        }
        out
    }

    pub(super) fn slot_shape(&self, s: Slot) -> (DType, Vec<usize>) {
        match s {
            Slot::Buf(b) => (self.bufs[b].dtype, self.bufs[b].shape.clone()),
            Slot::Tile(b, i) => {
                let t = self.tiling[b].as_ref().expect("a tiled buffer");
                let g = t.grid();
                let mut idx = vec![0; g.len()];
                let mut rest = i;
                for d in (0..g.len()).rev() {
                    idx[d] = rest % g[d];
                    rest /= g[d];
                }
                (self.bufs[b].dtype, t.tile(&idx).2)
            }
        }
    }

    pub(super) fn slot_bytes(&self, slots: &[Slot]) -> usize {
        slots
            .iter()
            .map(|&s| {
                let (dt, shape) = self.slot_shape(s);
                shape.iter().product::<usize>() * dt.bytes()
            })
            .sum()
    }

    pub(super) fn state_types(&self, bufs: &[Slot], vars: &[VarId]) -> Vec<String> {
        let mut t: Vec<String> = bufs
            .iter()
            .map(|&s| {
                let (dt, shape) = self.slot_shape(s);
                ty(dt, &shape)
            })
            .collect();
        for v in vars {
            let vt = &self.k.vars[v.0 as usize];
            t.push(match vt {
                Type::Vector { dtype, shape } => ty(*dtype, shape),
                other => ty(other.dtype().unwrap_or(DType::I32), &[]),
            });
        }
        t
    }

    pub(super) fn state(&self, bufs: &[Slot], vars: &[VarId]) -> Vec<String> {
        let mut s: Vec<String> = bufs
            .iter()
            .map(|&s| match s {
                Slot::Buf(b) => self.cur[b].clone(),
                Slot::Tile(b, i) => self.tiles[b][i].clone(),
            })
            .collect();
        s.extend(vars.iter().map(|v| self.vars[v].clone()));
        s
    }

    pub(super) fn set_state(&mut self, bufs: &[Slot], vars: &[VarId], names: &[String]) {
        for (i, &s) in bufs.iter().enumerate() {
            match s {
                Slot::Buf(b) => self.cur[b] = names[i].clone(),
                Slot::Tile(b, t) => self.tiles[b][t] = names[i].clone(),
            }
        }
        for (i, v) in vars.iter().enumerate() {
            self.vars.insert(*v, names[bufs.len() + i].clone());
        }
    }

    pub(super) fn results(res: &str, n: usize) -> Vec<String> {
        if n == 1 {
            vec![res.to_string()]
        } else {
            (0..n).map(|i| format!("{res}#{i}")).collect()
        }
    }

    pub(super) fn ret(&mut self, names: &[String], types: &[String]) {
        if names.is_empty() {
            self.line("stablehlo.return");
        } else {
            self.line(&format!("stablehlo.return {} : {}", names.join(", "), types.join(", ")));
        }
    }

    /// `if cond { then } else { els }`, carrying `bufs` and `vars`.
    pub(super) fn region_if(
        &mut self,
        cond: Cond<String>,
        bufs: &[Slot],
        vars: &[VarId],
        then_f: &mut dyn FnMut(&mut Self) -> R<()>,
        else_f: &mut dyn FnMut(&mut Self) -> R<()>,
    ) -> R<()> {
        let c = match cond {
            Cond::Static(true) => return then_f(self),
            Cond::Static(false) => return else_f(self),
            Cond::Dynamic(c) => c,
        };
        if bufs.is_empty() && vars.is_empty() {
            return Ok(());
        }
        let types = self.state_types(bufs, vars);
        let before = self.state(bufs, vars);
        let res = self.tmp();
        let n = types.len();
        let lhs = if n == 1 { res.clone() } else { format!("{res}:{n}") };
        self.line(&format!("{lhs} = \"stablehlo.if\"({c}) ({{"));
        self.text.enter();
        then_f(self)?;
        let ys = self.state(bufs, vars);
        self.ret(&ys, &types);
        self.text.leave();
        self.line("}, {");
        self.text.enter();
        self.set_state(bufs, vars, &before);
        else_f(self)?;
        let ys = self.state(bufs, vars);
        self.ret(&ys, &types);
        self.text.leave();
        self.line(&format!("}}) : ({}) -> ({})", ty(DType::Bool, &[]), types.join(", ")));
        let rs = Self::results(&res, n);
        self.set_state(bufs, vars, &rs);
        Ok(())
    }

    /// A `stablehlo.while` over `extra` loop values (name, type) plus `bufs` and `vars`: `cond_f`
    /// gets the extra values and returns the predicate; `body_f` gets them, runs with the state
    /// bound and returns the next extra values. Returns the final extra values.
    pub(super) fn region_while(
        &mut self,
        extra: &[(String, String)],
        bufs: &[Slot],
        vars: &[VarId],
        cond_f: &mut dyn FnMut(&mut Self, &[String]) -> R<String>,
        body_f: &mut dyn FnMut(&mut Self, &[String]) -> R<Vec<String>>,
    ) -> R<Vec<String>> {
        let mut types: Vec<String> = extra.iter().map(|(_, t)| t.clone()).collect();
        types.extend(self.state_types(bufs, vars));
        let mut inits: Vec<String> = extra.iter().map(|(n, _)| n.clone()).collect();
        inits.extend(self.state(bufs, vars));
        let args: Vec<String> = inits.iter().map(|_| self.tmp()).collect();
        let res = self.tmp();
        let n = types.len();
        let lhs = if n == 1 { res.clone() } else { format!("{res}:{n}") };
        let binds: Vec<String> = args.iter().zip(&inits).map(|(a, i)| format!("{a} = {i}")).collect();
        self.line(&format!("{lhs} = stablehlo.while({}) : {}", binds.join(", "), types.join(", ")));
        self.line("cond {");
        self.text.enter();
        let ne = extra.len();
        let p = cond_f(self, &args[..ne])?;
        self.line(&format!("stablehlo.return {p} : {}", ty(DType::Bool, &[])));
        self.text.leave();
        self.line("} do {");
        self.text.enter();
        self.set_state(bufs, vars, &args[ne..]);
        let mut ys = body_f(self, &args[..ne])?;
        ys.extend(self.state(bufs, vars));
        self.ret(&ys, &types);
        self.text.leave();
        self.line("}");
        let rs = Self::results(&res, n);
        self.set_state(bufs, vars, &rs[ne..]);
        Ok(rs[..ne].to_vec())
    }

    pub(super) fn block(&mut self, b: &'k Block) -> R<()> {
        for inst in &b.insts {
            self.inst(inst)?;
        }
        Ok(())
    }

    /// Lowers `blocks` as the body of the region keyed by `region` (its writes are recorded).
    pub(super) fn keyed_block(&mut self, region: &'k Block, blocks: &[&'k Block]) -> R<()> {
        self.region_stack.push(key(region));
        let mut r = Ok(());
        for b in blocks {
            r = self.block(b);
            if r.is_err() {
                break;
            }
        }
        self.region_stack.pop();
        r
    }
}
