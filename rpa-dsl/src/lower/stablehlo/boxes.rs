//! Windows that are one box of a reshape of their buffer, and their packing views.

use super::*;

impl Lowerer<'_> {
    /// Whether the window `w` of `r` is a box (one `dynamic_slice`) of some row-major reshape of its
    /// buffer: the reshape has one dimension per window dimension of extent > 1, whose extents are the
    /// ratios of consecutive strides (plus an inner one for the offset's remainder). For views built
    /// by slicing, indexing and reshaping (in bounds, as interpret mode checks), the offset's digits in
    /// that mixed radix are the box's starts.
    ///
    /// Returns the plan and the logical shape of the slice: `w`, with the `k` buffer elements of
    /// each element of a wide (packing) view as an extra dim before the last one.
    pub(super) fn boxed(&mut self, r: &RefVal, w: &[usize]) -> Option<(BoxPlan, Vec<usize>)> {
        let rank = w.len();
        let mut all = Vec::new();
        let mut logical = Vec::new();
        match r.pack {
            Pack::Same => {
                all.extend((0..rank).map(|d| (r.strides[d], w[d])));
                logical.extend_from_slice(w);
            }
            Pack::Wide { k, step, .. } if rank >= 2 => {
                for (d, &n) in w.iter().enumerate() {
                    all.push((r.strides[d], n));
                    logical.push(n);
                    if d == rank - 2 {
                        all.push((step, k));
                        logical.push(k);
                    }
                }
            }
            _ => return None,
        }
        let mut plan = self.box_plan(r, &all)?;
        // Window dim d is entry d of `all`, or d + 1 past a wide view's packing dim.
        plan.map = (0..rank)
            .map(|d| {
                let i = if matches!(r.pack, Pack::Wide { .. }) && d + 1 == rank { d + 1 } else { d };
                plan.map.get(i).copied().flatten()
            })
            .collect();
        Some((plan, logical))
    }

    /// The box of the (stride, extent) dims `all` at `r`'s offset (see [`Self::boxed`]).
    pub(super) fn box_plan(&mut self, r: &RefVal, all: &[(i64, usize)]) -> Option<BoxPlan> {
        if let Some(plan) = self.canonical_plan(r, all) {
            return Some(plan);
        }
        let len = self.bufs[r.buf].len as i64;
        let dims: Vec<(i64, usize)> = all.iter().copied().filter(|&(_, n)| n > 1).collect();
        let mut next = 0;
        let map: Vec<Option<usize>> = all
            .iter()
            .map(|&(_, n)| {
                (n > 1).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect();
        let mut shape = Vec::new();
        let mut sizes = Vec::new();
        let mut strides = Vec::new();
        match dims.first() {
            None => {
                shape.push(len as usize);
                sizes.push(1);
                strides.push(1);
            }
            Some(&(s0, _)) => {
                if s0 <= 0 || len % s0 != 0 {
                    return None;
                }
                shape.push((len / s0) as usize);
                for i in 1..dims.len() {
                    let (prev, cur) = (dims[i - 1].0, dims[i].0);
                    if cur <= 0 || cur >= prev || prev % cur != 0 {
                        return None;
                    }
                    shape.push((prev / cur) as usize);
                }
                sizes.extend(dims.iter().map(|&(_, n)| n));
                strides.extend(dims.iter().map(|&(s, _)| s));
                let inner = dims[dims.len() - 1].0;
                if inner > 1 {
                    shape.push(inner as usize);
                    sizes.push(1);
                    strides.push(1);
                }
            }
        }
        if sizes.iter().zip(&shape).any(|(n, e)| n > e) {
            return None;
        }
        // The starts: the offset's digits (the first one is not reduced).
        let mut constant = None;
        let starts = match &r.offset.dynamic {
            None => {
                let o = r.offset.constant;
                let starts: Vec<i64> = (0..shape.len())
                    .map(|i| if i == 0 { o / strides[i] } else { (o / strides[i]) % shape[i] as i64 })
                    .collect();
                if starts.iter().zip(&sizes).zip(&shape).any(|((&s, &n), &e)| s < 0 || s as usize + n > e) {
                    return None;
                }
                constant = Some(starts.clone());
                starts.into_iter().map(|s| self.iconst(s)).collect()
            }
            Some(_) => {
                let o = self.int_name(&r.offset);
                (0..shape.len())
                    .map(|i| {
                        let q = if strides[i] == 1 {
                            o.clone()
                        } else {
                            let c = self.iconst(strides[i]);
                            self.bin("divide", &o, &c, DType::I32, &[])
                        };
                        if i == 0 {
                            q
                        } else {
                            let c = self.iconst(shape[i] as i64);
                            self.bin("remainder", &q, &c, DType::I32, &[])
                        }
                    })
                    .collect()
            }
        };
        Some(BoxPlan { shape, sizes, starts, constant, map })
    }

    /// The box in the buffer's own (canonical) shape, when each dim of extent > 1 is a window of one
    /// of its dims: the slice then needs no reshape of the buffer, and XLA updates it in place
    /// (a reshape around a `dynamic_update_slice` makes XLA:CPU copy the whole buffer).
    pub(super) fn canonical_plan(&mut self, r: &RefVal, all: &[(i64, usize)]) -> Option<BoxPlan> {
        let shape = self.bufs[r.buf].shape.clone();
        let cs = row_major(&shape);
        let mut sizes = vec![1usize; shape.len()];
        let mut map = vec![None; all.len()];
        let mut c = 0;
        for (i, &(stride, n)) in all.iter().enumerate().filter(|&(_, &(_, n))| n > 1) {
            while c < shape.len() && !(cs[c] == stride && shape[c] >= n) {
                c += 1;
            }
            if c == shape.len() {
                return None;
            }
            sizes[c] = n;
            map[i] = Some(c);
            c += 1;
        }
        let mut constant = None;
        let starts = match &r.offset.dynamic {
            None => {
                let o = r.offset.constant;
                let starts: Vec<i64> =
                    (0..shape.len()).map(|i| if i == 0 { o / cs[i] } else { (o / cs[i]) % shape[i] as i64 }).collect();
                if o < 0 || starts.iter().zip(&sizes).zip(&shape).any(|((&s, &n), &e)| s as usize + n > e) {
                    return None;
                }
                constant = Some(starts.clone());
                starts.into_iter().map(|s| self.iconst(s)).collect()
            }
            // Only views built by indexing and slicing are known to be aligned to the dims.
            Some(_) if !r.canon => return None,
            Some(_) => {
                let o = self.int_name(&r.offset);
                self.coords_of(r.buf, &o)
            }
        };
        Some(BoxPlan { shape, sizes, starts, constant, map })
    }

    /// A box's elements (`logical`, of the buffer dtype) as the view's elements (`w`): packing views
    /// combine their `k` elements (the dim before the last), low bits first.
    pub(super) fn box_to_view(&mut self, v: &str, r: &RefVal, w: &[usize], logical: &[usize]) -> String {
        let bdt = self.bufs[r.buf].dtype;
        if logical.len() == w.len() {
            return self.view_as(v, bdt, r.dtype, w);
        }
        let kd = w.len() - 1;
        let (wb, ut) = (bdt.bits(), uint(r.dtype.bits()));
        let bits = self.bits_of(v, bdt, logical);
        let z = self.convert(&bits, uint(wb), ut, logical);
        let j = self.iota(ut, logical, kd);
        let c = self.splat(ut, logical, wb as f64);
        let amt = self.bin("multiply", &j, &c, ut, logical);
        let z = self.bin("shift_left", &z, &amt, ut, logical);
        let word = self.reduce(&z, ut, logical, kd, "or", 0);
        self.of_bits(&word, r.dtype, w)
    }

    /// The view's elements (`w`) as a box's elements (`logical`, of the buffer dtype).
    pub(super) fn view_to_box(&mut self, v: &str, r: &RefVal, w: &[usize], logical: &[usize]) -> String {
        let bdt = self.bufs[r.buf].dtype;
        if logical.len() == w.len() {
            return self.view_as(v, r.dtype, bdt, w);
        }
        let kd = w.len() - 1;
        let (wb, ut) = (bdt.bits(), uint(r.dtype.bits()));
        let bits = self.bits_of(v, r.dtype, w);
        let b = self.spread(&bits, ut, w, logical);
        let j = self.iota(ut, logical, kd);
        let c = self.splat(ut, logical, wb as f64);
        let amt = self.bin("multiply", &j, &c, ut, logical);
        let b = self.bin("shift_right_logical", &b, &amt, ut, logical);
        let t = self.convert(&b, ut, uint(wb), logical);
        self.of_bits(&t, bdt, logical)
    }

    /// `x` (`w`) repeated along the packing dim of `logical` (if it has one).
    pub(super) fn spread(&mut self, x: &str, dt: DType, w: &[usize], logical: &[usize]) -> String {
        if logical.len() == w.len() {
            return x.to_string();
        }
        let kd = w.len() - 1;
        let dims: Vec<usize> = (0..logical.len()).filter(|&d| d != kd).collect();
        self.emit(format!(
            "stablehlo.broadcast_in_dim {x}, dims = [{}] : ({}) -> {}",
            join(&dims),
            ty(dt, w),
            ty(dt, logical)
        ))
    }
}
