//! Loads and stores of windows that are not boxes: row gathers and scatters, dynamic sizes,
//! copies (DMAs) and the semaphore counters.

use super::*;

impl Lowerer<'_> {
    /// How many leading window dims need their own index: the rest form a contiguous run of buffer
    /// elements (gathered and scattered as one window), which excludes masked and packed dims.
    pub(super) fn split(r: &RefVal, w: &[usize], masked: &[bool]) -> usize {
        let packed = match &r.pack {
            Pack::Narrow { dim, .. } => *dim,
            _ => None,
        };
        let mut expected = 1i64;
        let mut split = w.len();
        for d in (0..w.len()).rev() {
            if masked.get(d).copied().unwrap_or(false) || packed == Some(d) {
                break;
            }
            if w[d] != 1 {
                if r.strides[d] != expected {
                    break;
                }
                expected *= w[d] as i64;
            }
            split = d;
        }
        split
    }

    /// The flat position (and, for narrow views, the part index) of each element: over the leading
    /// window dims `outer` (the others at 0) with `Iota`, or of one element with `At`.
    pub(super) fn addresses(&mut self, r: &RefVal, outer: &[usize], coords: Coords) -> (String, Option<String>) {
        let ish: Vec<usize> = match coords {
            Coords::Iota => outer.to_vec(),
            Coords::At(_) => vec![],
        };
        let i32t = DType::I32;
        let packed = match &r.pack {
            Pack::Narrow { dim, .. } => *dim,
            _ => None,
        };
        let coord = |s: &mut Self, d: usize| -> Option<String> {
            match coords {
                Coords::Iota if d < outer.len() && outer[d] > 1 => Some(s.iota(i32t, &ish, d)),
                Coords::Iota => None,
                Coords::At(c) => Some(c[d].clone()),
            }
        };
        let mut terms: Vec<String> = Vec::new();
        for d in 0..r.shape.len() {
            if packed == Some(d) || r.strides[d] == 0 {
                continue;
            }
            let Some(c) = coord(self, d) else { continue };
            let t = if r.strides[d] == 1 {
                c
            } else {
                let s = self.splat(i32t, &ish, r.strides[d] as f64);
                self.bin("multiply", &c, &s, i32t, &ish)
            };
            terms.push(t);
        }
        let mut constant = r.offset.constant;
        if let Some(o) = &r.offset.dynamic {
            let o = self.bcast(o, i32t, &[], &ish);
            terms.push(o);
        }
        let mut part = None;
        if let Pack::Narrow { k, dim, row, row_stride, .. } = &r.pack {
            let (k, rs) = (*k as i64, *row_stride);
            let c = dim.and_then(|d| coord(self, d));
            match (c, row.is_static()) {
                (None, true) => {
                    constant += (row.constant / k) * rs;
                    part = Some(self.splat(i32t, &ish, (row.constant % k) as f64));
                }
                (c, _) => {
                    let rn = self.int_name(row);
                    let mut rr = self.bcast(&rn, i32t, &[], &ish);
                    if let Some(c) = c {
                        rr = self.bin("add", &rr, &c, i32t, &ish);
                    }
                    let kk = self.splat(i32t, &ish, k as f64);
                    let q = self.bin("divide", &rr, &kk, i32t, &ish);
                    let p = self.bin("remainder", &rr, &kk, i32t, &ish);
                    let s = self.splat(i32t, &ish, rs as f64);
                    terms.push(self.bin("multiply", &q, &s, i32t, &ish));
                    part = Some(p);
                }
            }
        }
        if constant != 0 || terms.is_empty() {
            let c = self.splat(i32t, &ish, constant as f64);
            terms.push(c);
        }
        let mut pos = terms[0].clone();
        for t in &terms[1..] {
            pos = self.bin("add", &pos, t, i32t, &ish);
        }
        (pos, part)
    }

    /// `pos + delta`.
    pub(super) fn shift_pos(&mut self, pos: &str, delta: i64, shape: &[usize]) -> String {
        if delta == 0 {
            return pos.to_string();
        }
        let c = self.splat(DType::I32, shape, delta as f64);
        self.bin("add", pos, &c, DType::I32, shape)
    }

    /// Positions with masked-out lanes moved out of bounds (so scatters skip them).
    pub(super) fn masked_pos(&mut self, pos: &str, mask: Option<&str>, len: usize, ish: &[usize]) -> String {
        match mask {
            None => pos.to_string(),
            Some(m) => {
                let oob = self.splat(DType::I32, ish, len as f64);
                self.select(m, pos, &oob, ish, DType::I32, ish)
            }
        }
    }

    pub(super) fn and_masks(&mut self, a: Option<String>, b: Option<String>, shape: &[usize]) -> Option<String> {
        match (a, b) {
            (Some(x), Some(y)) => Some(self.bin("and", &x, &y, DType::Bool, shape)),
            (x, y) => x.or(y),
        }
    }

    /// Lanes below the runtime size of each dimension that has one, over the leading dims `outer`.
    pub(super) fn size_mask(&mut self, sizes: &[Option<String>], outer: &[usize]) -> Option<String> {
        let mut mask: Option<String> = None;
        for (d, s) in sizes.iter().enumerate().take(outer.len()) {
            if let Some(s) = s {
                let i = self.iota(DType::I32, outer, d);
                let s = self.bcast(s, DType::I32, &[], outer);
                let m = self.compare("LT", &i, &s, DType::I32, outer);
                mask = Some(match mask {
                    None => m,
                    Some(a) => self.bin("and", &a, &m, DType::Bool, outer),
                });
            }
        }
        mask
    }

    /// Rows of `c` consecutive buffer elements at positions `pos` (of shape `outer`): `outer ++ [c]`.
    pub(super) fn gather_rows(
        &mut self,
        buf: &str,
        dt: DType,
        len: usize,
        pos: &str,
        outer: &[usize],
        c: usize,
    ) -> String {
        let k = outer.len();
        let mut out = outer.to_vec();
        out.push(c);
        self.emit(format!(
            "\"stablehlo.gather\"({buf}, {pos}) {{dimension_numbers = #stablehlo.gather<offset_dims = [{k}], \
             start_index_map = [0], index_vector_dim = {k}>, slice_sizes = array<i64: {c}>, indices_are_sorted = false}} \
             : ({}, {}) -> {}",
            ty(dt, &[len]),
            ty(DType::I32, outer),
            ty(dt, &out)
        ))
    }

    /// Writes rows `upd` (`outer ++ [c]`) at positions `pos`, combining with `combiner` (or replacing);
    /// rows at out-of-range positions are skipped.
    pub(super) fn scatter_rows(
        &mut self,
        buf: &str,
        dt: DType,
        len: usize,
        pos: &str,
        upd: &str,
        outer: &[usize],
        c: usize,
        combiner: Option<&str>,
    ) -> String {
        let k = outer.len();
        let mut ushape = outer.to_vec();
        ushape.push(c);
        let res = self.tmp();
        let (a, b) = (self.tmp(), self.tmp());
        let st = ty(dt, &[]);
        self.line(&format!("{res} = \"stablehlo.scatter\"({buf}, {pos}, {upd}) ({{"));
        self.line(&format!("^bb0({a}: {st}, {b}: {st}):"));
        self.text.enter();
        match combiner {
            Some(op) => {
                let r = self.bin(op, &a, &b, dt, &[]);
                self.line(&format!("stablehlo.return {r} : {st}"));
            }
            None => self.line(&format!("stablehlo.return {b} : {st}")),
        }
        self.text.leave();
        self.line(&format!(
            "}}) {{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [{k}], \
             scatter_dims_to_operand_dims = [0], index_vector_dim = {k}>, indices_are_sorted = false, \
             unique_indices = false}} : ({}, {}, {}) -> {}",
            ty(dt, &[len]),
            ty(DType::I32, outer),
            ty(dt, &ushape),
            ty(dt, &[len])
        ));
        res
    }

    /// Reads the window `w` of `r`. `sizes` are the runtime extents of a dynamic-size window (whose
    /// masked-out lanes may run past the buffer: no `dynamic_slice` then).
    pub(super) fn read(&mut self, r: &RefVal, w: &[usize], sizes: &[Option<String>]) -> String {
        let (bdt, len) = (self.bufs[r.buf].dtype, self.bufs[r.buf].len);
        let n: usize = w.iter().product();
        if n == 0 {
            return self.splat(r.dtype, w, 0.0);
        }
        let masked: Vec<bool> = (0..w.len()).map(|d| sizes.get(d).is_some_and(Option::is_some)).collect();
        // The lanes past a runtime size are read too (and ignored); a window that may run past the
        // buffer is read where `dynamic_slice` clamps it to, and shifted back.
        if let Some((b, logical)) = self.boxed(r, w) {
            if let Some((b, shifts)) = self.clamped(b, r, w, &masked) {
                let mut blk = self.box_get(r.buf, &b);
                for &(pd, ref by) in &shifts {
                    blk = self.shift_window(&blk, bdt, &b.sizes, pd, by, false);
                }
                let v = self.reshape(&blk, bdt, &b.sizes, &logical);
                return self.box_to_view(&v, r, w, &logical);
            }
        }
        let buf = self.get_flat(r.buf);
        let split = Self::split(r, w, &masked);
        let (outer, c) = (&w[..split], w[split..].iter().product::<usize>());
        let mut rows = outer.to_vec();
        rows.push(c);
        let (pos, part) = self.addresses(r, outer, Coords::Iota);
        let v = match r.pack.clone() {
            Pack::Same => {
                let g = self.gather_rows(&buf, bdt, len, &pos, outer, c);
                self.view_as(&g, bdt, r.dtype, &rows)
            }
            Pack::Wide { k, step, .. } => {
                let parts: Vec<String> = (0..k)
                    .map(|j| {
                        let p = self.shift_pos(&pos, j as i64 * step, outer);
                        self.gather_rows(&buf, bdt, len, &p, outer, c)
                    })
                    .collect();
                self.pack_wide(&parts, bdt, r.dtype, &rows)
            }
            Pack::Narrow { .. } => {
                let g = self.gather_rows(&buf, bdt, len, &pos, outer, c);
                let part = part.expect("narrow part");
                let part = self.bcast_rows(&part, outer, c);
                self.narrow_part(&g, bdt, r.dtype, &part, &rows)
            }
        };
        self.reshape(&v, r.dtype, &rows, w)
    }

    /// The box `b` of the window `w` of `r` with the start of every dynamic-size dim (`sized`) that
    /// may run past the buffer clamped into it (as `dynamic_slice` would): the window then starts
    /// `by` rows before the view, for each such dim `(reshape dim, by)`. `None` if such a dim has
    /// no dim of its own in the box (a gather or scatter then skips the lanes past the size).
    pub(super) fn clamped(
        &mut self,
        mut b: BoxPlan,
        r: &RefVal,
        w: &[usize],
        sized: &[bool],
    ) -> Option<(BoxPlan, Vec<(usize, String)>)> {
        let mut shifts = Vec::new();
        for d in 0..w.len() {
            if !sized[d] || r.fits[d] || w[d] <= 1 {
                continue;
            }
            let pd = b.map.get(d).copied().flatten()?;
            let (extent, max) = (b.shape[pd] as i64, b.sizes[pd] as i64);
            let start = b.starts[pd].clone();
            let zero = self.iconst(0);
            let lo = self.bin("maximum", &start, &zero, DType::I32, &[]);
            let last = self.iconst(extent - max);
            let clamped = self.bin("minimum", &lo, &last, DType::I32, &[]);
            let by = self.bin("subtract", &start, &clamped, DType::I32, &[]);
            b.starts[pd] = clamped;
            b.constant = None;
            shifts.push((pd, by));
        }
        Some((b, shifts))
    }

    /// `x` moved along dim `d` by the i32 scalar `by` in `[0, extent]` (lanes moved in hold
    /// zeros): `y[i] = x[i + by]` (down), or `y[i + by] = x[i]` (up).
    pub(super) fn shift_window(&mut self, x: &str, dt: DType, shape: &[usize], d: usize, by: &str, up: bool) -> String {
        let n = shape[d] as i64;
        let pad = self.splat(dt, shape, 0.0);
        let mut wide = shape.to_vec();
        wide[d] *= 2;
        let (first, second) = if up { (pad.as_str(), x) } else { (x, pad.as_str()) };
        let t = ty(dt, shape);
        let cat =
            self.emit(format!("stablehlo.concatenate {first}, {second}, dim = {d} : ({t}, {t}) -> {}", ty(dt, &wide)));
        let start = if up {
            let c = self.iconst(n);
            self.bin("subtract", &c, by, DType::I32, &[])
        } else {
            by.to_string()
        };
        let starts: Vec<String> =
            (0..shape.len()).map(|i| if i == d { start.clone() } else { self.iconst(0) }).collect();
        self.dyn_slice(&cat, dt, &wide, &starts, shape)
    }

    /// An `outer`-shaped tensor repeated along a trailing dim of `c`.
    pub(super) fn bcast_rows(&mut self, x: &str, outer: &[usize], c: usize) -> String {
        let mut rows = outer.to_vec();
        rows.push(c);
        let dims: Vec<usize> = (0..outer.len()).collect();
        self.emit(format!(
            "stablehlo.broadcast_in_dim {x}, dims = [{}] : ({}) -> {}",
            join(&dims),
            ty(DType::I32, outer),
            ty(DType::I32, &rows)
        ))
    }

    /// Writes `val` to the window `w` of `r`, only where `mask` (elementwise) is true and below the
    /// runtime `sizes` of a dynamic-size window.
    pub(super) fn write(&mut self, r: &RefVal, w: &[usize], val: &str, mask: Option<&str>, sizes: &[Option<String>]) {
        let (bdt, len) = (self.bufs[r.buf].dtype, self.bufs[r.buf].len);
        let n: usize = w.iter().product();
        if n == 0 {
            return;
        }
        let masked: Vec<bool> =
            (0..w.len()).map(|d| mask.is_some() || sizes.get(d).is_some_and(Option::is_some)).collect();
        let dynamic = sizes.iter().any(Option::is_some);
        let sized: Vec<bool> = (0..w.len()).map(|d| sizes.get(d).is_some_and(Option::is_some)).collect();
        if let Some((b, logical)) = self.boxed(r, w) {
            if let Some((b, shifts)) = self.clamped(b, r, w, &sized) {
                let v = self.view_to_box(val, r, w, &logical);
                let mut v = self.reshape(&v, bdt, &logical, &b.sizes);
                let lanes = if dynamic { self.size_mask(sizes, w) } else { None };
                let mask = self.and_masks(mask.map(str::to_string), lanes, w);
                let mut m = match mask {
                    Some(m) => {
                        let m = self.spread(&m, DType::Bool, w, &logical);
                        Some(self.reshape(&m, DType::Bool, &logical, &b.sizes))
                    }
                    None => None,
                };
                // A window clamped into the buffer: the values (and lanes) move up to their place.
                for &(pd, ref by) in &shifts {
                    v = self.shift_window(&v, bdt, &b.sizes, pd, by, true);
                    m = m.map(|m| self.shift_window(&m, DType::Bool, &b.sizes, pd, by, true));
                }
                if let Some(m) = m {
                    let old = self.box_get(r.buf, &b);
                    v = self.select(&m, &v, &old, &b.sizes, bdt, &b.sizes);
                }
                self.box_put(r.buf, &b, &v);
                return;
            }
        }
        let buf = self.get_flat(r.buf);
        let split = Self::split(r, w, &masked);
        let (outer, c) = (w[..split].to_vec(), w[split..].iter().product::<usize>());
        let mut rows = outer.clone();
        rows.push(c);
        let val = self.reshape(val, r.dtype, w, &rows);
        // With an elementwise mask, every lane is its own row (split = rank, c = 1).
        let row_mask = match mask {
            Some(m) => Some(self.reshape(m, DType::Bool, w, &outer)),
            None => self.size_mask(sizes, &outer),
        };
        let (pos, part) = self.addresses(r, &outer, Coords::Iota);
        let new = match r.pack.clone() {
            Pack::Same => {
                let v = self.view_as(&val, r.dtype, bdt, &rows);
                let pos = self.masked_pos(&pos, row_mask.as_deref(), len, &outer);
                self.scatter_rows(&buf, bdt, len, &pos, &v, &outer, c, None)
            }
            Pack::Wide { k, step, .. } => {
                let parts = self.unpack_wide(&val, r.dtype, bdt, k, &rows);
                let mut cur = buf;
                for (j, e) in parts.iter().enumerate() {
                    let p = self.shift_pos(&pos, j as i64 * step, &outer);
                    let p = self.masked_pos(&p, row_mask.as_deref(), len, &outer);
                    cur = self.scatter_rows(&cur, bdt, len, &p, e, &outer, c, None);
                }
                cur
            }
            Pack::Narrow { .. } => {
                // Clear the parts' fields, then set them (both combiners commute: several parts of
                // one word may be written by one scatter).
                let ub = uint(bdt.bits());
                let part = part.expect("narrow part");
                let part = self.bcast_rows(&part, &outer, c);
                let words = self.bits_of(&buf, bdt, &[len]);
                let (data, clear) = self.narrow_fields(&val, r.dtype, ub, &part, &rows);
                let pos = self.masked_pos(&pos, row_mask.as_deref(), len, &outer);
                let words = self.scatter_rows(&words, ub, len, &pos, &clear, &outer, c, Some("and"));
                let words = self.scatter_rows(&words, ub, len, &pos, &data, &outer, c, Some("or"));
                self.of_bits(&words, bdt, &[len])
            }
        };
        self.put_flat(r.buf, &new);
    }

    /// `dst[...] = src[...]` for same-shaped refs whose extents may be dynamic (a DMA, or a clipped
    /// BlockSpec window); returns the number of bytes moved.
    pub(super) fn copy(&mut self, src: &RefVal, dst: &RefVal) -> IntExpr {
        let rank = src.shape.len();
        let mut w = Vec::with_capacity(rank);
        let mut sizes: Vec<Option<String>> = Vec::with_capacity(rank);
        let mut count = IntExpr::of(1);
        for d in 0..rank {
            let size = match (&src.sizes[d], &dst.sizes[d]) {
                (None, _) => {
                    w.push(src.shape[d]);
                    None
                }
                (Some(_), None) => {
                    w.push(dst.shape[d]);
                    None
                }
                (Some(s), Some(_)) => {
                    w.push(src.shape[d].min(dst.shape[d]));
                    let s = s.clone();
                    Some(self.int_name(&s))
                }
            };
            let factor = match &size {
                None => IntExpr::of(w[d] as i64),
                Some(s) => IntExpr::dynamic(s.clone()),
            };
            count = self.int_mul(&count, &factor);
            sizes.push(size);
        }
        if w.iter().product::<usize>() != 0 {
            let v = self.read(src, &w, &sizes);
            self.write(dst, &w, &v, None, &sizes);
            self.copy_written(src, dst, &w, &sizes);
        }
        self.int_mul(&count, &IntExpr::of(src.dtype.bytes() as i64))
    }

    /// A strided load: the box of the span, then a strided `slice`; else a gather.
    pub(super) fn read_strided(&mut self, r: &RefVal, steps: &[usize], shape: &[usize]) -> String {
        let span: Vec<usize> =
            shape.iter().zip(steps).map(|(&n, &k)| if n == 0 { 0 } else { (n - 1) * k + 1 }).collect();
        let whole =
            RefVal { shape: span.clone(), sizes: vec![None; span.len()], fits: vec![true; span.len()], ..r.clone() };
        if span.iter().product::<usize>() > 0 {
            if let Some((b, lspan)) = self.boxed(&whole, &span) {
                let bdt = self.bufs[r.buf].dtype;
                let blk = self.box_get(r.buf, &b);
                let v = self.reshape(&blk, bdt, &b.sizes, &lspan);
                // The packing dim (if any) is not strided.
                let (mut lsteps, mut lshape) = (steps.to_vec(), shape.to_vec());
                if lspan.len() > span.len() {
                    lsteps.insert(span.len() - 1, 1);
                    lshape.insert(span.len() - 1, lspan[span.len() - 1]);
                }
                let v = self.emit(format!(
                    "\"stablehlo.slice\"({v}) {{start_indices = array<i64: {}>, limit_indices = array<i64: {}>, \
                     strides = array<i64: {}>}} : ({}) -> {}",
                    join(&vec![0; lspan.len()]),
                    join(&lspan),
                    join(&lsteps),
                    ty(bdt, &lspan),
                    ty(bdt, &lshape)
                ));
                return self.box_to_view(&v, r, shape, &lshape);
            }
        }
        let sv = strided(r, steps, shape);
        self.read(&sv, shape, &[])
    }

    pub(super) fn sem_add(&mut self, sem: &SemVal, bytes: &IntExpr, sign: i64) {
        let Some(sb) = self.sem_buf else { return };
        let idx = self.int_name(&sem.base);
        let at = sem.base.is_static().then_some(sem.base.constant);
        let old = self.elem_get(sb, &idx, at);
        let delta = self.int_add(&IntExpr::of(0), bytes, sign);
        let delta = self.int_name(&delta);
        let new = self.bin("add", &old, &delta, DType::I32, &[]);
        self.elem_set(sb, &idx, at, &new);
    }

    /// Bytes a ref holds at run time.
    pub(super) fn ref_bytes(&mut self, r: &RefVal) -> IntExpr {
        let mut count = IntExpr::of(r.dtype.bytes() as i64);
        for d in 0..r.shape.len() {
            let factor = r.sizes[d].clone().unwrap_or(IntExpr::of(r.shape[d] as i64));
            count = self.int_mul(&count, &factor);
        }
        count
    }
}
