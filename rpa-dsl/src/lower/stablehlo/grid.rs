//! The module: `@main`, the grid loop and its BlockSpec copies.

use super::*;

impl Lowerer<'_> {
    pub(super) fn module(&mut self) -> R<()> {
        let k = self.k;
        let name = sanitize(&k.name);
        self.line(&format!("module @{name} {{"));
        self.text.enter();
        let outs: Vec<(usize, DType, Vec<usize>)> = k
            .outputs()
            .zip(self.outputs.clone())
            .map(|(p, b)| {
                let a = p.array.as_ref().expect("outputs have an array type");
                (b, a.dtype, a.max_shape())
            })
            .collect();
        // An output that aliases an input is that argument's buffer (`tf.aliasing_output`): with
        // the input donated, XLA updates it in place instead of copying it first.
        let mut alias: HashMap<usize, usize> = HashMap::new();
        for (j, (b, dt, shape)) in outs.iter().enumerate() {
            if let Init::Arg(i, arg_shape) = &self.bufs[*b].init {
                if arg_shape == shape && self.args[*i].0 == *dt {
                    alias.entry(*i).or_insert(j);
                }
            }
        }
        let args: Vec<String> = self
            .args
            .iter()
            .enumerate()
            .map(|(i, (dt, s))| match alias.get(&i) {
                Some(j) => format!("%arg{i}: {} {{tf.aliasing_output = {j} : i32}}", tensor_type(*dt, s)),
                None => format!("%arg{i}: {}", tensor_type(*dt, s)),
            })
            .collect();
        let mut out_types: Vec<String> = outs.iter().map(|(_, dt, s)| tensor_type(*dt, s)).collect();
        for b in self.print_bufs().into_iter().flat_map(|(count, rows)| [count, rows]) {
            out_types.push(tensor_type(DType::I32, &self.bufs[b].shape));
        }
        if let Some(r) = self.record_buf() {
            out_types.push(tensor_type(DType::I32, &self.bufs[r].shape));
        }
        self.line(&format!("func.func public @main({}) -> ({}) {{", args.join(", "), out_types.join(", ")));
        self.text.enter();
        for b in 0..self.bufs.len() {
            let (dt, logical, canon) = (self.bufs[b].dtype, self.bufs[b].logical, self.bufs[b].shape.clone());
            let bits = match &self.bufs[b].init {
                Init::Arg(i, shape) => {
                    let shape = shape.clone();
                    let v = self.arg_value(&format!("%arg{i}"), logical, &shape);
                    let v = self.view_as(&v, logical, dt, &shape);
                    let v = self.reshape(&v, dt, &shape, &canon);
                    self.set_whole(b, &v);
                    continue;
                }
                Init::Poison => logical.poison_bits(),
                Init::Zero => value_bits(dt, 0.0),
            };
            match self.tiling[b].clone() {
                None => self.cur[b] = self.splat_bits(dt, &canon, bits),
                Some(t) => {
                    let cover: Vec<(usize, usize)> = t.grid().iter().map(|&n| (0, n)).collect();
                    self.tiles[b] = Tiling::tiles_in(&cover)
                        .iter()
                        .map(|idx| {
                            let sizes = t.tile(idx).2;
                            self.splat_bits(dt, &sizes, bits)
                        })
                        .collect();
                }
            }
        }
        self.grid()?;
        self.check_balance();
        let mut names = Vec::new();
        for (b, logical, shape) in &outs {
            let v = self.whole_as(*b, shape);
            let dt = self.bufs[*b].dtype;
            let v = self.view_as(&v, dt, *logical, shape);
            names.push(self.result_value(&v, *logical, shape));
        }
        for b in self.print_bufs().into_iter().flat_map(|(count, rows)| [count, rows]) {
            names.push(self.whole(b));
        }
        if let Some(r) = self.record_buf() {
            names.push(self.whole(r));
        }
        self.loc = k.loc;
        if names.is_empty() {
            self.line("return");
        } else {
            self.line(&format!("return {} : {}", names.join(", "), out_types.join(", ")));
        }
        self.text.leave();
        self.line("}");
        self.text.leave();
        self.line("}");
        Ok(())
    }

    pub(super) fn unflatten(&mut self, s: &IntExpr, grid: &[usize]) -> Vec<IntExpr> {
        let strides = row_major(grid);
        (0..grid.len())
            .map(|d| match &s.dynamic {
                None => IntExpr::of((s.constant / strides[d]) % grid[d] as i64),
                Some(_) => {
                    let n = self.int_name(s);
                    let q = if strides[d] == 1 {
                        n
                    } else {
                        let c = self.iconst(strides[d]);
                        self.bin("divide", &n, &c, DType::I32, &[])
                    };
                    let r = if d == 0 {
                        q
                    } else {
                        let c = self.iconst(grid[d] as i64);
                        self.bin("remainder", &q, &c, DType::I32, &[])
                    };
                    IntExpr::dynamic(r)
                }
            })
            .collect()
    }

    pub(super) fn grid(&mut self) -> R<()> {
        let grid = self.k.grid.clone();
        let steps: usize = grid.iter().product();
        if steps == 0 {
            return Ok(());
        }
        if steps == 1 {
            return schedule::step(self, &IntExpr::of(0), steps);
        }
        // Everything the steps write: the body's buffers, the block buffers and the output arrays.
        let mut bufs: BTreeSet<usize> = self.writes(&[&self.k.body]).into_iter().collect();
        for b in &self.blocks {
            bufs.insert(b.vmem);
            if self.k.params[b.param].role == Role::Output {
                bufs.insert(b.hbm);
            }
        }
        bufs.extend(self.grid_check_buffers());
        let bufs: Vec<usize> = self.with_check_buffers(bufs).into_iter().collect();
        let bufs = self.carry(&[GRID_KEY], &bufs);
        let i32t = ty(DType::I32, &[]);
        let mut extra = vec![(self.iconst(0), i32t.clone())];
        for b in 0..self.blocks.len() {
            for d in 0..self.blocks[b].cur.len() {
                let c = self.blocks[b].cur[d].clone();
                extra.push((self.int_name(&c), i32t.clone()));
            }
        }
        let last = self.iconst(steps as i64);
        let mut cond = |s: &mut Self, a: &[String]| -> R<String> { Ok(s.compare("LT", &a[0], &last, DType::I32, &[])) };
        let mut body = |s: &mut Self, a: &[String]| -> R<Vec<String>> {
            let mut i = 1;
            for b in 0..s.blocks.len() {
                for d in 0..s.blocks[b].cur.len() {
                    s.blocks[b].cur[d] = IntExpr::dynamic(a[i].clone());
                    i += 1;
                }
            }
            schedule::step(s, &IntExpr::dynamic(a[0].clone()), steps)?;
            let one = s.iconst(1);
            let mut ys = vec![s.bin("add", &a[0], &one, DType::I32, &[])];
            for b in 0..s.blocks.len() {
                for d in 0..s.blocks[b].cur.len() {
                    let c = s.blocks[b].cur[d].clone();
                    ys.push(s.int_name(&c));
                }
            }
            Ok(ys)
        };
        self.region_stack.push(GRID_KEY);
        let r = self.region_while(&extra, &bufs, &[], &mut cond, &mut body);
        self.region_stack.pop();
        r?;
        Ok(())
    }

    /// Evaluates block `b`'s index map at grid indices `g`.
    pub(super) fn index_map(&mut self, b: usize, g: &[IntExpr]) -> R<Vec<IntExpr>> {
        let map = &self.k.params[self.blocks[b].param].block.as_ref().expect("block spec").index_map;
        for (i, gv) in map.grid_indices.iter().enumerate() {
            let l = g.get(i).cloned().unwrap_or(IntExpr::of(0));
            let lv = self.int_value(&l);
            self.vals.insert(*gv, lv);
        }
        self.block(&map.body)?;
        Ok(map.results.iter().map(|r| self.int_of(*r)).collect())
    }

    pub(super) fn any_ne(&mut self, a: &[IntExpr], b: &[IntExpr]) -> Cond<String> {
        if a.iter().chain(b).all(IntExpr::is_static) {
            return Cond::Static(a.iter().zip(b).any(|(x, y)| x.constant != y.constant));
        }
        let mut acc: Option<String> = None;
        for (x, y) in a.iter().zip(b) {
            let (x, y) = (self.int_name(x), self.int_name(y));
            let c = self.compare("NE", &x, &y, DType::I32, &[]);
            acc = Some(match acc {
                None => c,
                Some(p) => self.bin("or", &p, &c, DType::Bool, &[]),
            });
        }
        match acc {
            Some(c) => Cond::Dynamic(c),
            None => Cond::Static(false),
        }
    }

    /// Copies the window of block `idx` between the operand's array and its block buffer.
    /// With `pred`, only where the scalar `pred` is true (computed either way, selected).
    pub(super) fn copy_block(&mut self, b: usize, idx: &[IntExpr], copy_in: bool, pred: Option<&str>) -> R<()> {
        let (hbm, vmem) = (self.blocks[b].hbm, self.blocks[b].vmem);
        let (array, block) = (self.blocks[b].array.clone(), self.blocks[b].block.clone());
        let dt = self.bufs[hbm].dtype;
        let starts: Vec<IntExpr> =
            idx.iter().zip(&block).map(|(i, &bd)| self.int_add(&IntExpr::of(0), i, bd as i64)).collect();
        let even = array.iter().zip(&block).all(|(&a, &bd)| a % bd == 0);
        if even {
            // Whole blocks: a dynamic slice of the array (in bounds for every valid block index).
            let st: Vec<String> = starts.iter().map(|s| self.int_name(s)).collect();
            let constant = starts.iter().all(IntExpr::is_static).then(|| starts.iter().map(|s| s.constant).collect());
            let plan = BoxPlan { shape: array.clone(), sizes: block.clone(), starts: st, constant, map: vec![] };
            if copy_in {
                let new = self.box_get(hbm, &plan);
                let new = match pred {
                    None => new,
                    Some(p) => {
                        let old = self.whole(vmem);
                        self.select(p, &new, &old, &[], dt, &block)
                    }
                };
                self.put_whole(vmem, &new);
                self.set_written(vmem, true, pred);
            } else {
                let mut v = self.whole(vmem);
                if let Some(p) = pred {
                    let old = self.box_get(hbm, &plan);
                    v = self.select(p, &v, &old, &[], dt, &block);
                }
                self.box_put(hbm, &plan, &v);
                self.copy_block_written(vmem, hbm, &plan, pred);
            }
            return Ok(());
        }
        // Edge blocks are clipped: a masked copy of min(block, array - start) elements per dim.
        let hstrides = row_major(&array);
        let mut sizes = Vec::new();
        let mut offset = IntExpr::of(0);
        for d in 0..array.len() {
            offset = self.int_add(&offset, &starts[d], hstrides[d]);
            let a = self.iconst(array[d] as i64);
            let s = self.int_name(&starts[d]);
            let rest = self.bin("subtract", &a, &s, DType::I32, &[]);
            let bd = self.iconst(block[d] as i64);
            let mut size = self.bin("minimum", &rest, &bd, DType::I32, &[]);
            if let (Some(p), 0, false) = (pred, d, copy_in) {
                // Not flushing: an empty copy.
                let zero = self.iconst(0);
                size = self.select(p, &size, &zero, &[], DType::I32, &[]);
            }
            sizes.push(Some(IntExpr::dynamic(size)));
        }
        let href = RefVal {
            shape: block.clone(),
            sizes: sizes.clone(),
            fits: vec![false; block.len()],
            strides: hstrides,
            offset,
            ..full_ref(hbm, dt, &array)
        };
        let vref = RefVal { sizes, ..full_ref(vmem, dt, &block) };
        if copy_in {
            let old = self.whole(vmem);
            let old_written = self.written_buf(vmem).map(|m| (m, self.whole(m)));
            let poison = self.poisoned(vmem);
            self.put_whole(vmem, &poison);
            self.set_written(vmem, false, None);
            self.copy(&href, &vref);
            if let Some(p) = pred {
                let new = self.whole(vmem);
                let new = self.select(p, &new, &old, &[], dt, &block);
                self.put_whole(vmem, &new);
                if let Some((m, old)) = old_written {
                    let (mdt, new) = (self.bufs[m].dtype, self.whole(m));
                    let new = self.select(p, &new, &old, &[], mdt, &block);
                    self.put_whole(m, &new);
                }
            }
        } else {
            self.copy(&vref, &href);
        }
        Ok(())
    }
}

/// The lowering walks the grid schedule once, on a symbolic step.
impl<'k> GridDriver for Lowerer<'k> {
    type Int = IntExpr;
    type Bool = String;
    type Error = KernelError;

    fn blocks(&self) -> usize {
        self.blocks.len()
    }

    fn is_output(&self, b: usize) -> bool {
        self.k.params[self.blocks[b].param].role == Role::Output
    }

    fn current(&self, b: usize) -> Vec<IntExpr> {
        self.blocks[b].cur.clone()
    }

    fn set_current(&mut self, b: usize, idx: Vec<IntExpr>) {
        self.blocks[b].cur = idx;
    }

    fn set_grid_indices(&mut self, g: &[IntExpr]) {
        self.grid_idx = g.to_vec();
    }

    fn block_index(&mut self, b: usize, g: &[IntExpr]) -> R<Vec<IntExpr>> {
        (self.loc, self.op) = (self.k.params[self.blocks[b].param].loc, "block_spec");
        self.index_map(b, g)
    }

    fn check_block_index(&mut self, b: usize, idx: &[IntExpr]) -> R<()> {
        Lowerer::check_block_index(self, b, idx);
        Ok(())
    }

    fn differ(&mut self, a: &[IntExpr], b: &[IntExpr]) -> Cond<String> {
        self.any_ne(a, b)
    }

    fn or(&mut self, a: &String, b: &String) -> String {
        self.bin("or", a, b, DType::Bool, &[])
    }

    fn unflatten(&mut self, s: &IntExpr) -> Vec<IntExpr> {
        let grid = self.k.grid.clone();
        Lowerer::unflatten(self, s, &grid)
    }

    fn next_step(&mut self, s: &IntExpr, steps: usize) -> (Cond<String>, IntExpr) {
        let next = self.int_add(s, &IntExpr::of(1), 1);
        match &next.dynamic {
            None => (Cond::Static(next.constant as usize == steps), IntExpr::of(next.constant % steps as i64)),
            Some(_) => {
                let n = self.int_name(&next);
                let c = self.iconst(steps as i64);
                let last = self.compare("EQ", &n, &c, DType::I32, &[]);
                (Cond::Dynamic(last), IntExpr::dynamic(self.bin("remainder", &n, &c, DType::I32, &[])))
            }
        }
    }

    fn start_output(&mut self, b: usize, idx: &[IntExpr], when: &Cond<String>) -> R<()> {
        let vmem = self.blocks[b].vmem;
        let (dt, shape) = (self.bufs[vmem].dtype, self.bufs[vmem].shape.clone());
        let poison = self.poisoned(vmem);
        match when {
            Cond::Static(_) => {
                let t = self.splat_bits(DType::Bool, &[], 1);
                self.check_revisit(b, idx, &t);
                self.put_whole(vmem, &poison);
                self.set_written(vmem, false, None);
            }
            Cond::Dynamic(c) => {
                self.check_revisit(b, idx, c);
                let old = self.whole(vmem);
                let new = self.select(c, &poison, &old, &[], dt, &shape);
                self.put_whole(vmem, &new);
                self.set_written(vmem, false, Some(c));
            }
        }
        Ok(())
    }

    fn copy_block(&mut self, b: usize, idx: &[IntExpr], copy_in: bool, when: &Cond<String>) -> R<()> {
        let pred = match when {
            Cond::Static(_) => None,
            Cond::Dynamic(c) => Some(c.as_str()),
        };
        Lowerer::copy_block(self, b, idx, copy_in, pred)
    }

    fn body(&mut self) -> R<()> {
        self.block(&self.k.body)
    }
}
