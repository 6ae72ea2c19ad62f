//! Buffers kept as grids of tiles, and whole-buffer and box access to every buffer.

use super::*;

impl Lowerer<'_> {
    /// After the analysis pass: the tiling of each buffer whose accesses were all static boxes
    /// (cut at every box bound), if that makes more than one tile.
    pub(super) fn tilings(&self) -> Vec<Option<Tiling>> {
        (0..self.bufs.len())
            .map(|b| {
                let boxes = self.boxes[b].as_ref()?;
                let shape = &self.bufs[b].shape;
                let bounds: Vec<Vec<usize>> = (0..shape.len())
                    .map(|d| {
                        let mut cut: BTreeSet<usize> = [0, shape[d]].into();
                        for (st, sz) in boxes {
                            cut.insert(st[d]);
                            cut.insert(st[d] + sz[d]);
                        }
                        cut.into_iter().collect()
                    })
                    .collect();
                let t = Tiling { bounds };
                (t.count() > 1 && t.count() <= MAX_TILES).then_some(t)
            })
            .collect()
    }

    /// Analysis: buffer `b` is accessed with box `plan` (written if `write`).
    pub(super) fn note_box(&mut self, b: usize, plan: &BoxPlan, write: bool) {
        if !self.analyzing {
            return;
        }
        let shape = self.bufs[b].shape.clone();
        let fixed = match &plan.constant {
            Some(k) if plan.shape == shape && k.iter().all(|&x| x >= 0) => {
                Some((k.iter().map(|&x| x as usize).collect::<Vec<_>>(), plan.sizes.clone()))
            }
            _ => None,
        };
        match (&fixed, &mut self.boxes[b]) {
            (Some(bx), Some(list)) => list.push(bx.clone()),
            _ => self.boxes[b] = None,
        }
        if write {
            let (st, sz) = fixed.unwrap_or_else(|| (vec![0; shape.len()], shape.clone()));
            self.note_write(b, st, sz);
        }
    }

    /// Analysis: buffer `b` is accessed in a way that is not a static box.
    pub(super) fn note_untiled(&mut self, b: usize, write: bool) {
        if self.analyzing {
            self.boxes[b] = None;
            if write {
                let shape = self.bufs[b].shape.clone();
                self.note_write(b, vec![0; shape.len()], shape);
            }
        }
    }

    pub(super) fn note_write(&mut self, b: usize, starts: Vec<usize>, sizes: Vec<usize>) {
        for key in self.region_stack.clone() {
            self.region_writes.entry(key).or_default().push((b, starts.clone(), sizes.clone()));
        }
    }

    /// The tiles of tiled buffer `b` covering the static box `plan`, if it is one.
    pub(super) fn plan_cover(&self, b: usize, plan: &BoxPlan) -> Option<(Tiling, Vec<(usize, usize)>, Vec<usize>)> {
        let t = self.tiling[b].as_ref()?;
        let k = plan.constant.as_ref()?;
        if plan.shape != self.bufs[b].shape || k.iter().any(|&x| x < 0) {
            return None;
        }
        let starts: Vec<usize> = k.iter().map(|&x| x as usize).collect();
        let cover = t.cover(&starts, &plan.sizes)?;
        Some((t.clone(), cover, starts))
    }

    /// The tiles in `cover` of tiled buffer `b`, concatenated: `(value, shape)`.
    pub(super) fn assemble(
        &mut self,
        b: usize,
        t: &Tiling,
        cover: &[(usize, usize)],
        prefix: &mut Vec<usize>,
    ) -> (String, Vec<usize>) {
        let d = prefix.len();
        if d == cover.len() {
            let (flat, _, sizes) = t.tile(prefix);
            return (self.tiles[b][flat].clone(), sizes);
        }
        let mut parts = Vec::new();
        for i in cover[d].0..cover[d].1 {
            prefix.push(i);
            parts.push(self.assemble(b, t, cover, prefix));
            prefix.pop();
        }
        if parts.len() == 1 {
            return parts.pop().expect("one part");
        }
        let dt = self.bufs[b].dtype;
        let mut shape = parts[0].1.clone();
        shape[d] = parts.iter().map(|p| p.1[d]).sum();
        let names: Vec<String> = parts.iter().map(|p| p.0.clone()).collect();
        let types: Vec<String> = parts.iter().map(|p| ty(dt, &p.1)).collect();
        let v = self.emit(format!(
            "stablehlo.concatenate {}, dim = {d} : ({}) -> {}",
            names.join(", "),
            types.join(", "),
            ty(dt, &shape)
        ));
        (v, shape)
    }

    /// Stores `v` (the box at `starts` of `sizes`) into the tiles of `cover`.
    pub(super) fn scatter_tiles(
        &mut self,
        b: usize,
        t: &Tiling,
        cover: &[(usize, usize)],
        starts: &[usize],
        sizes: &[usize],
        v: &str,
    ) {
        let dt = self.bufs[b].dtype;
        for idx in Tiling::tiles_in(cover) {
            let (flat, ts, tz) = t.tile(&idx);
            self.tiles[b][flat] = if tz == sizes {
                v.to_string()
            } else {
                let lo: Vec<usize> = ts.iter().zip(starts).map(|(a, b)| a - b).collect();
                self.static_slice(v, dt, sizes, &lo, &tz)
            };
        }
    }

    /// The whole tensor of buffer `b` (in its canonical shape).
    pub(super) fn whole(&mut self, b: usize) -> String {
        match self.tiling[b].clone() {
            None => self.cur[b].clone(),
            Some(t) => {
                let cover: Vec<(usize, usize)> = t.grid().iter().map(|&n| (0, n)).collect();
                self.assemble(b, &t, &cover, &mut Vec::new()).0
            }
        }
    }

    /// Sets the whole tensor of buffer `b` (in its canonical shape).
    pub(super) fn set_whole(&mut self, b: usize, v: &str) {
        match self.tiling[b].clone() {
            None => self.cur[b] = v.to_string(),
            Some(t) => {
                let cover: Vec<(usize, usize)> = t.grid().iter().map(|&n| (0, n)).collect();
                let shape = self.bufs[b].shape.clone();
                if self.tiles[b].len() != t.count() {
                    self.tiles[b] = vec![String::new(); t.count()];
                }
                self.scatter_tiles(b, &t, &cover, &vec![0; shape.len()], &shape, v);
            }
        }
    }

    /// Replaces the whole tensor of buffer `b` (in its canonical shape).
    pub(super) fn put_whole(&mut self, b: usize, v: &str) {
        if self.analyzing {
            let shape = self.bufs[b].shape.clone();
            self.note_write(b, vec![0; shape.len()], shape);
        }
        self.set_whole(b, v);
    }

    /// The box `plan` of buffer `b`.
    pub(super) fn box_get(&mut self, b: usize, plan: &BoxPlan) -> String {
        self.note_box(b, plan, false);
        if let Some((t, cover, _)) = self.plan_cover(b, plan) {
            let (v, shape) = self.assemble(b, &t, &cover, &mut Vec::new());
            debug_assert_eq!(shape, plan.sizes);
            return v;
        }
        let dt = self.bufs[b].dtype;
        let nd = self.whole_as(b, &plan.shape);
        self.dyn_slice(&nd, dt, &plan.shape, &plan.starts, &plan.sizes)
    }

    /// Stores `v` into the box `plan` of buffer `b`.
    pub(super) fn box_put(&mut self, b: usize, plan: &BoxPlan, v: &str) {
        self.note_box(b, plan, true);
        if let Some((t, cover, starts)) = self.plan_cover(b, plan) {
            self.scatter_tiles(b, &t, &cover, &starts, &plan.sizes, v);
            return;
        }
        let dt = self.bufs[b].dtype;
        let nd = self.whole_as(b, &plan.shape);
        let nd = self.dyn_update(&nd, v, dt, &plan.shape, &plan.sizes, &plan.starts);
        let canon = self.bufs[b].shape.clone();
        let nd = self.reshape(&nd, dt, &plan.shape, &canon);
        self.set_whole(b, &nd);
    }

    pub(super) fn whole_as(&mut self, b: usize, shape: &[usize]) -> String {
        let (dt, canon) = (self.bufs[b].dtype, self.bufs[b].shape.clone());
        let w = self.whole(b);
        self.reshape(&w, dt, &canon, shape)
    }

    /// The buffer's tensor with `shape` (a reshape of its canonical shape), for an access that is
    /// not a box.
    pub(super) fn get_as(&mut self, b: usize, shape: &[usize]) -> String {
        self.note_untiled(b, false);
        self.whole_as(b, shape)
    }

    /// Sets the buffer's tensor from `v` of `shape`, after an update that is not a box.
    pub(super) fn put_as(&mut self, b: usize, v: &str, shape: &[usize]) {
        self.note_untiled(b, true);
        let (dt, canon) = (self.bufs[b].dtype, self.bufs[b].shape.clone());
        let v = self.reshape(v, dt, shape, &canon);
        self.set_whole(b, &v);
    }

    pub(super) fn get_flat(&mut self, b: usize) -> String {
        let len = self.bufs[b].len;
        self.get_as(b, &[len])
    }

    pub(super) fn put_flat(&mut self, b: usize, v: &str) {
        let len = self.bufs[b].len;
        self.put_as(b, v, &[len]);
    }
}
