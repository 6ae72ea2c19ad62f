//! Interpret-mode memory: separate buffers per memory space, element bit patterns, initialisation
//! tracking, and views (slices, reshapes and TPU-style packing bitcasts) over them.

use super::value::Data;
use crate::dtype::DType;
use crate::ir::MemSpace;

/// One allocation: an operand, a block buffer, or a scratch buffer.
#[derive(Clone)]
pub(crate) struct Buffer {
    pub name: String,
    pub space: MemSpace,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub bits: Vec<u32>,
    /// Whether each element has been written (uninitialised elements hold the poison pattern).
    pub init: Vec<bool>,
}

impl Buffer {
    pub fn poisoned(name: &str, space: MemSpace, dtype: DType, shape: &[usize]) -> Buffer {
        let n: usize = shape.iter().product();
        Buffer {
            name: name.to_string(),
            space,
            dtype,
            shape: shape.to_vec(),
            bits: vec![dtype.poison_bits(); n],
            init: vec![false; n],
        }
    }

    pub fn from_bits(name: &str, space: MemSpace, dtype: DType, shape: &[usize], bits: Vec<u32>) -> Buffer {
        let n = bits.len();
        Buffer { name: name.to_string(), space, dtype, shape: shape.to_vec(), bits, init: vec![true; n] }
    }

    /// The view of the whole buffer.
    pub fn full_view(&self, id: usize) -> View {
        View {
            buf: id,
            dtype: self.dtype,
            shape: self.shape.clone(),
            strides: row_major_strides(&self.shape),
            offset: 0,
            pack: Pack::Same,
        }
    }
}

pub(crate) fn row_major_strides(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![1isize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1] as isize;
    }
    strides
}

/// How one element of a view maps onto the base buffer's elements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Pack {
    /// One base element of the same width.
    Same,
    /// `k` narrow base elements `pos, pos + step, …`; element `j` holds bits `[j·w, (j+1)·w)`.
    Wide { k: usize, step: isize, narrow: DType },
    /// Part `r % k` of base element `r / k` along the packed dimension `dim` (`None` once indexed,
    /// then `row` is the fixed row); `row_stride` is the base stride of that dimension.
    Narrow { k: usize, dim: Option<usize>, row: usize, row_stride: isize },
}

/// A ref at run time: a strided window of a buffer, seen with some dtype.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct View {
    pub buf: usize,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Strides in base elements (for `Narrow`, the packed dimension's entry is unused).
    pub strides: Vec<isize>,
    pub offset: isize,
    pub pack: Pack,
}

/// Where one view element lives.
#[derive(Clone, Copy)]
pub(crate) enum Addr {
    One(usize),
    Wide { pos: usize, k: usize, step: isize, narrow: DType },
    Part { pos: usize, part: usize },
}

impl View {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn bytes(&self) -> usize {
        self.len() * self.dtype.bytes()
    }

    /// The address of the element at multi-index `idx`.
    pub fn addr(&self, idx: &[usize]) -> Addr {
        let mut pos = self.offset;
        for (d, (&i, &s)) in idx.iter().zip(&self.strides).enumerate() {
            if let Pack::Narrow { dim: Some(pd), .. } = self.pack {
                if pd == d {
                    continue;
                }
            }
            pos += i as isize * s;
        }
        match self.pack {
            Pack::Same => Addr::One(pos as usize),
            Pack::Wide { k, step, narrow } => Addr::Wide { pos: pos as usize, k, step, narrow },
            Pack::Narrow { k, dim, row, row_stride } => {
                let r = row + dim.map_or(0, |d| idx[d]);
                Addr::Part { pos: (pos + (r / k) as isize * row_stride) as usize, part: r % k }
            }
        }
    }

    /// Calls `f(flat_index, addr)` for every element in row-major order.
    pub fn for_each(&self, mut f: impl FnMut(usize, Addr)) {
        let n = self.len();
        if n == 0 {
            return;
        }
        let rank = self.shape.len();
        // Fast path: unpacked views, walked with an incrementally updated position.
        if self.pack == Pack::Same {
            let mut idx = vec![0usize; rank];
            let mut pos = self.offset;
            for flat in 0..n {
                f(flat, Addr::One(pos as usize));
                let mut d = rank;
                while d > 0 {
                    d -= 1;
                    idx[d] += 1;
                    pos += self.strides[d];
                    if idx[d] < self.shape[d] {
                        break;
                    }
                    pos -= self.strides[d] * self.shape[d] as isize;
                    idx[d] = 0;
                }
            }
            return;
        }
        let mut idx = vec![0usize; rank];
        for flat in 0..n {
            f(flat, self.addr(&idx));
            let mut d = rank;
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                if idx[d] < self.shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }

    /// Calls `f(flat, pos, len, stride)` for each run of an unpacked (`Pack::Same`) view, in
    /// row-major order: view elements `flat..flat + len` are base elements `pos + j·stride`.
    /// Unit dims are dropped and dims contiguous with their inner neighbour merged, so a contiguous
    /// view is one run.
    pub fn runs(&self, mut f: impl FnMut(usize, usize, usize, isize)) {
        debug_assert_eq!(self.pack, Pack::Same);
        let n = self.len();
        if n == 0 {
            return;
        }
        let mut dims: Vec<(usize, isize)> = Vec::with_capacity(self.shape.len());
        for (&e, &s) in self.shape.iter().zip(&self.strides) {
            match dims.last_mut() {
                _ if e == 1 => {}
                Some(last) if last.1 == s * e as isize => *last = (last.0 * e, s),
                _ => dims.push((e, s)),
            }
        }
        let (len, stride) = dims.pop().unwrap_or((1, 1));
        let mut idx = vec![0usize; dims.len()];
        let mut pos = self.offset;
        for r in 0..n / len {
            f(r * len, pos as usize, len, stride);
            let mut d = dims.len();
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                pos += dims[d].1;
                if idx[d] < dims[d].0 {
                    break;
                }
                pos -= dims[d].1 * dims[d].0 as isize;
                idx[d] = 0;
            }
        }
    }

    /// The smallest and largest base element this view touches (for bounds and overlap checks).
    pub fn span(&self) -> Option<(isize, isize)> {
        if self.len() == 0 {
            return None;
        }
        let (mut lo, mut hi) = (self.offset, self.offset);
        for (d, (&n, &s)) in self.shape.iter().zip(&self.strides).enumerate() {
            if let Pack::Narrow { dim: Some(pd), .. } = self.pack {
                if pd == d {
                    continue;
                }
            }
            let ext = (n as isize - 1) * s;
            if ext >= 0 {
                hi += ext
            } else {
                lo += ext
            }
        }
        match self.pack {
            Pack::Same => {}
            Pack::Wide { k, step, .. } => {
                let ext = (k as isize - 1) * step;
                if ext >= 0 {
                    hi += ext
                } else {
                    lo += ext
                }
            }
            Pack::Narrow { k, dim, row, row_stride, .. } => {
                let first = row / k;
                let last = (row + dim.map_or(1, |d| self.shape[d]) - 1) / k;
                lo += first as isize * row_stride;
                hi += last as isize * row_stride;
            }
        }
        Some((lo, hi))
    }

    /// Reinterprets the view with a reshaped (static) shape, if its strides allow it without a copy.
    pub fn reshape(&self, shape: &[usize]) -> Option<View> {
        if matches!(self.pack, Pack::Narrow { .. }) {
            return None;
        }
        // Drop unit dims, then split/merge the remaining ones (numpy's no-copy reshape).
        let old: Vec<(usize, isize)> =
            self.shape.iter().copied().zip(self.strides.iter().copied()).filter(|&(n, _)| n != 1).collect();
        let mut new_strides = vec![0isize; shape.len()];
        let (mut oi, mut ni) = (0usize, 0usize);
        let new_nz: Vec<usize> = (0..shape.len()).filter(|&i| shape[i] != 1).collect();
        while oi < old.len() && ni < new_nz.len() {
            let (mut op, mut np) = (old[oi].0, shape[new_nz[ni]]);
            let (oj0, nj0) = (oi, ni);
            while op != np {
                if op < np {
                    oi += 1;
                    op *= old.get(oi)?.0;
                } else {
                    ni += 1;
                    np *= shape[*new_nz.get(ni)?];
                }
            }
            // The old dims oj0..=oi must be mergeable (contiguous relative to each other).
            for k in oj0..oi {
                if old[k].1 != old[k + 1].1 * old[k + 1].0 as isize {
                    return None;
                }
            }
            let mut stride = old[oi].1;
            for k in (nj0..=ni).rev() {
                new_strides[new_nz[k]] = stride;
                stride *= shape[new_nz[k]] as isize;
            }
            oi += 1;
            ni += 1;
        }
        if oi != old.len() || ni != new_nz.len() {
            return None;
        }
        Some(View { shape: shape.to_vec(), strides: new_strides, ..self.clone() })
    }
}

/// The base positions of a run `(pos, len, stride)` of [`View::runs`].
#[inline]
pub(crate) fn run_positions(pos: usize, len: usize, stride: isize) -> impl Iterator<Item = usize> {
    (0..len).map(move |j| (pos as isize + j as isize * stride) as usize)
}

impl Buffer {
    /// A view's elements as vector data (row-major), and whether any of them has been written
    /// (`true` for an empty view).
    pub fn load(&self, v: &View) -> (Data, bool) {
        let dtype = v.dtype;
        let mut any_init = v.len() == 0;
        let data = match dtype {
            DType::F32 => Data::F(self.gather(v, &mut any_init, f32::from_bits)),
            _ if dtype.is_float() => Data::F(self.gather(v, &mut any_init, |b| dtype.float_from_bits(b) as f32)),
            _ => Data::I(self.gather(v, &mut any_init, |b| dtype.int_from_bits(b))),
        };
        (data, any_init)
    }

    /// A view's elements decoded by `decode`; sets `any_init` if one of them has been written.
    fn gather<T>(&self, v: &View, any_init: &mut bool, decode: impl Fn(u32) -> T) -> Vec<T> {
        let mut out = Vec::with_capacity(v.len());
        if v.pack != Pack::Same {
            v.for_each(|_, a| {
                *any_init |= is_init(&self.init, a);
                out.push(decode(read_bits(&self.bits, a, v.dtype)));
            });
            return out;
        }
        v.runs(|_, p, len, s| {
            if s == 1 {
                *any_init = *any_init || self.init[p..p + len].contains(&true);
                out.extend(self.bits[p..p + len].iter().map(|&b| decode(b)));
            } else {
                for q in run_positions(p, len, s) {
                    *any_init |= self.init[q];
                    out.push(decode(self.bits[q]));
                }
            }
        });
        out
    }

    /// Stores vector data into a view (where `mask` is non-zero), marking the elements written.
    pub fn store(&mut self, v: &View, d: &Data, mask: Option<&[i64]>) {
        let dtype = v.dtype;
        match d {
            Data::F(x) if dtype == DType::F32 => self.scatter(v, x, mask, f32::to_bits),
            Data::F(x) => self.scatter(v, x, mask, |e| dtype.float_to_bits(e as f64)),
            Data::I(x) => self.scatter(v, x, mask, |e| dtype.int_to_bits(e)),
        }
    }

    fn scatter<T: Copy>(&mut self, v: &View, vals: &[T], mask: Option<&[i64]>, encode: impl Fn(T) -> u32) {
        let (bits, init) = (&mut self.bits, &mut self.init);
        let on = |i: usize| mask.is_none_or(|m| m[i] != 0);
        if v.pack != Pack::Same {
            v.for_each(|i, a| {
                if on(i) {
                    write_bits(bits, init, a, v.dtype, encode(vals[i]));
                }
            });
            return;
        }
        v.runs(|i, p, len, s| {
            if s == 1 && mask.is_none() {
                for (b, &x) in bits[p..p + len].iter_mut().zip(&vals[i..i + len]) {
                    *b = encode(x);
                }
                init[p..p + len].fill(true);
            } else {
                for (j, q) in run_positions(p, len, s).enumerate() {
                    if on(i + j) {
                        bits[q] = encode(vals[i + j]);
                        init[q] = true;
                    }
                }
            }
        });
    }

    /// Reads a view's elements (bits and initialisation) in row-major order.
    pub fn snapshot(&self, v: &View) -> (Vec<u32>, Vec<bool>) {
        let mut bits = Vec::with_capacity(v.len());
        let mut init = Vec::with_capacity(v.len());
        if v.pack == Pack::Same {
            v.runs(|_, p, len, s| {
                if s == 1 {
                    bits.extend_from_slice(&self.bits[p..p + len]);
                    init.extend_from_slice(&self.init[p..p + len]);
                } else {
                    for q in run_positions(p, len, s) {
                        bits.push(self.bits[q]);
                        init.push(self.init[q]);
                    }
                }
            });
        } else {
            v.for_each(|_, a| {
                bits.push(read_bits(&self.bits, a, v.dtype));
                init.push(is_init(&self.init, a));
            });
        }
        (bits, init)
    }

    /// Writes elements into a view, keeping their initialisation state (a landing DMA or copy).
    pub fn land(&mut self, v: &View, bits: &[u32], init: &[bool]) {
        let (b, ini) = (&mut self.bits, &mut self.init);
        if v.pack == Pack::Same {
            v.runs(|i, p, len, s| {
                if s == 1 {
                    b[p..p + len].copy_from_slice(&bits[i..i + len]);
                    ini[p..p + len].copy_from_slice(&init[i..i + len]);
                } else {
                    for (j, q) in run_positions(p, len, s).enumerate() {
                        b[q] = bits[i + j];
                        ini[q] = init[i + j];
                    }
                }
            });
            return;
        }
        v.for_each(|i, a| {
            write_bits(b, ini, a, v.dtype, bits[i]);
            if !init[i] {
                match a {
                    Addr::One(p) | Addr::Part { pos: p, .. } => ini[p] = false,
                    Addr::Wide { pos, k, step, .. } => {
                        for j in 0..k {
                            ini[(pos as isize + j as isize * step) as usize] = false;
                        }
                    }
                }
            }
        });
    }
}

/// Reads one view element's bit pattern from `bits`.
#[inline]
pub(crate) fn read_bits(bits: &[u32], addr: Addr, dtype: DType) -> u32 {
    match addr {
        Addr::One(p) => bits[p],
        Addr::Wide { pos, k, step, narrow } => {
            let w = narrow.bits();
            let mask = if w == 32 { u32::MAX } else { (1u32 << w) - 1 };
            let mut out = 0u32;
            for j in 0..k {
                out |= (bits[(pos as isize + j as isize * step) as usize] & mask) << (j * w);
            }
            out
        }
        Addr::Part { pos, part, .. } => {
            let w = dtype.bits();
            let mask = if w == 32 { u32::MAX } else { (1u32 << w) - 1 };
            (bits[pos] >> (part * w)) & mask
        }
    }
}

/// Writes one view element's bit pattern into `bits` (and marks the touched elements initialised).
#[inline]
pub(crate) fn write_bits(bits: &mut [u32], init: &mut [bool], addr: Addr, dtype: DType, value: u32) {
    match addr {
        Addr::One(p) => {
            bits[p] = value;
            init[p] = true;
        }
        Addr::Wide { pos, k, step, narrow } => {
            let w = narrow.bits();
            let mask = if w == 32 { u32::MAX } else { (1u32 << w) - 1 };
            for j in 0..k {
                let p = (pos as isize + j as isize * step) as usize;
                bits[p] = (value >> (j * w)) & mask;
                init[p] = true;
            }
        }
        Addr::Part { pos, part, .. } => {
            let w = dtype.bits();
            let mask = if w == 32 { u32::MAX } else { (1u32 << w) - 1 };
            bits[pos] = (bits[pos] & !(mask << (part * w))) | ((value & mask) << (part * w));
            init[pos] = true;
        }
    }
}

/// Whether the element at `addr` has been written.
#[inline]
pub(crate) fn is_init(init: &[bool], addr: Addr) -> bool {
    match addr {
        Addr::One(p) | Addr::Part { pos: p, .. } => init[p],
        Addr::Wide { pos, k, step, .. } => (0..k).all(|j| init[(pos as isize + j as isize * step) as usize]),
    }
}

/// The base elements a view touches, as sorted, disjoint `[lo, hi]` runs (exact for unpacked
/// views; one covering span for packed ones). Used to tell real DMA races from views that merely
/// interleave (e.g. different tokens of the same heads).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Footprint {
    pub span: Option<(isize, isize)>,
    pub runs: Vec<(isize, isize)>,
}

impl Footprint {
    pub fn of(v: &View) -> Footprint {
        let span = v.span();
        let Some(sp) = span else { return Footprint::default() };
        if v.pack != Pack::Same || v.strides.iter().any(|&s| s < 0) {
            return Footprint { span, runs: vec![sp] };
        }
        // The longest suffix of dims that is contiguous forms one run.
        let rank = v.shape.len();
        let mut run_len = 1isize;
        let mut split = rank;
        while split > 0 {
            let d = split - 1;
            if v.shape[d] == 1 || v.strides[d] == run_len {
                run_len *= v.shape[d] as isize;
                split -= 1;
            } else {
                break;
            }
        }
        let outer: usize = v.shape[..split].iter().product();
        let mut runs = Vec::with_capacity(outer);
        let mut idx = vec![0usize; split];
        for _ in 0..outer {
            let start: isize = v.offset + idx.iter().zip(&v.strides).map(|(&i, &s)| i as isize * s).sum::<isize>();
            runs.push((start, start + run_len - 1));
            let mut d = split;
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                if idx[d] < v.shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        runs.sort_unstable();
        let mut merged: Vec<(isize, isize)> = Vec::with_capacity(runs.len());
        for r in runs {
            match merged.last_mut() {
                Some(last) if r.0 <= last.1 + 1 => last.1 = last.1.max(r.1),
                _ => merged.push(r),
            }
        }
        Footprint { span, runs: merged }
    }

    /// Whether the two footprints share an element.
    pub fn overlaps(&self, other: &Footprint) -> bool {
        let (Some(a), Some(b)) = (self.span, other.span) else { return false };
        if a.1 < b.0 || b.1 < a.0 {
            return false;
        }
        let (mut i, mut j) = (0, 0);
        while i < self.runs.len() && j < other.runs.len() {
            let (x, y) = (self.runs[i], other.runs[j]);
            if x.1 < y.0 {
                i += 1;
            } else if y.1 < x.0 {
                j += 1;
            } else {
                return true;
            }
        }
        false
    }
}
