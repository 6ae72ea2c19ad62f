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
    pub(crate) fn poisoned(name: &str, space: MemSpace, dtype: DType, shape: &[usize]) -> Buffer {
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

    pub(crate) fn from_bits(name: &str, space: MemSpace, dtype: DType, shape: &[usize], bits: Vec<u32>) -> Buffer {
        let n = bits.len();
        Buffer { name: name.to_string(), space, dtype, shape: shape.to_vec(), bits, init: vec![true; n] }
    }

    /// The view of the whole buffer.
    pub(crate) fn full_view(&self, id: usize) -> View {
        View::whole(id, self.dtype, &self.shape, 0)
    }
}

pub(crate) use crate::ir::view::row_major as row_major_strides;

/// A ref at run time: a strided window of a buffer, seen with some dtype (the shared view algebra
/// in the concrete domain, where every extent is static).
pub(crate) type View = crate::ir::view::View<i64>;
/// How one element of a view maps onto the base buffer's elements.
pub(crate) type Pack = crate::ir::view::Pack<i64>;

/// Where one view element lives.
#[derive(Clone, Copy)]
pub(crate) enum Addr {
    One(usize),
    Wide { pos: usize, k: usize, step: i64, narrow: DType },
    Part { pos: usize, part: usize },
}

impl View {
    pub(crate) fn bytes(&self) -> usize {
        self.len() * self.dtype.bytes()
    }

    /// The address of the element at multi-index `idx`.
    pub(crate) fn addr(&self, idx: &[usize]) -> Addr {
        let mut pos = self.offset;
        for (d, (&i, &s)) in idx.iter().zip(&self.strides).enumerate() {
            if let Pack::Narrow { dim: Some(pd), .. } = self.pack {
                if pd == d {
                    continue;
                }
            }
            pos += i as i64 * s;
        }
        match self.pack {
            Pack::Same => Addr::One(pos as usize),
            Pack::Wide { k, step, narrow } => Addr::Wide { pos: pos as usize, k, step, narrow },
            Pack::Narrow { k, dim, row, row_stride } => {
                let r = row as usize + dim.map_or(0, |d| idx[d]);
                Addr::Part { pos: (pos + (r / k) as i64 * row_stride) as usize, part: r % k }
            }
        }
    }

    /// Calls `f(flat_index, addr)` for every element in row-major order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(usize, Addr)) {
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
                    pos -= self.strides[d] * self.shape[d] as i64;
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
    pub(crate) fn runs(&self, mut f: impl FnMut(usize, usize, usize, i64)) {
        debug_assert_eq!(self.pack, Pack::Same);
        let n = self.len();
        if n == 0 {
            return;
        }
        let mut dims: Vec<(usize, i64)> = Vec::with_capacity(self.shape.len());
        for (&e, &s) in self.shape.iter().zip(&self.strides) {
            match dims.last_mut() {
                _ if e == 1 => {}
                Some(last) if last.1 == s * e as i64 => *last = (last.0 * e, s),
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
                pos -= dims[d].1 * dims[d].0 as i64;
                idx[d] = 0;
            }
        }
    }

    /// The smallest and largest base element this view touches (for bounds and overlap checks).
    pub(crate) fn span(&self) -> Option<(i64, i64)> {
        if self.is_empty() {
            return None;
        }
        let (mut lo, mut hi) = (self.offset, self.offset);
        for (d, (&n, &s)) in self.shape.iter().zip(&self.strides).enumerate() {
            if let Pack::Narrow { dim: Some(pd), .. } = self.pack {
                if pd == d {
                    continue;
                }
            }
            let ext = (n as i64 - 1) * s;
            if ext >= 0 {
                hi += ext
            } else {
                lo += ext
            }
        }
        match self.pack {
            Pack::Same => {}
            Pack::Wide { k, step, .. } => {
                let ext = (k as i64 - 1) * step;
                if ext >= 0 {
                    hi += ext
                } else {
                    lo += ext
                }
            }
            Pack::Narrow { k, dim, row, row_stride, .. } => {
                let (row, k) = (row as usize, k);
                let first = row / k;
                let last = (row + dim.map_or(1, |d| self.shape[d]) - 1) / k;
                lo += first as i64 * row_stride;
                hi += last as i64 * row_stride;
            }
        }
        Some((lo, hi))
    }
}

/// The base positions of a run `(pos, len, stride)` of [`View::runs`].
#[inline]
pub(crate) fn run_positions(pos: usize, len: usize, stride: i64) -> impl Iterator<Item = usize> {
    (0..len).map(move |j| (pos as i64 + j as i64 * stride) as usize)
}

impl Buffer {
    /// A view's elements as vector data (row-major), and whether any of them has been written
    /// (`true` for an empty view).
    pub(crate) fn load(&self, v: &View) -> (Data, bool) {
        let dtype = v.dtype;
        let mut any_init = v.is_empty();
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
    pub(crate) fn store(&mut self, v: &View, d: &Data, mask: Option<&[i64]>) {
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
    pub(crate) fn snapshot(&self, v: &View) -> (Vec<u32>, Vec<bool>) {
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
    pub(crate) fn land(&mut self, v: &View, bits: &[u32], init: &[bool]) {
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
                            ini[(pos as i64 + j as i64 * step) as usize] = false;
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
                out |= (bits[(pos as i64 + j as i64 * step) as usize] & mask) << (j * w);
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
                let p = (pos as i64 + j as i64 * step) as usize;
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
        Addr::Wide { pos, k, step, .. } => (0..k).all(|j| init[(pos as i64 + j as i64 * step) as usize]),
    }
}

/// The base elements a view touches, as sorted, disjoint `[lo, hi]` runs (exact for unpacked
/// views; one covering span for packed ones). Used to tell real DMA races from views that merely
/// interleave (e.g. different tokens of the same heads).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Footprint {
    pub span: Option<(i64, i64)>,
    pub runs: Vec<(i64, i64)>,
}

impl Footprint {
    pub(crate) fn of(v: &View) -> Footprint {
        let span = v.span();
        let Some(sp) = span else { return Footprint::default() };
        if v.pack != Pack::Same || v.strides.iter().any(|&s| s < 0) {
            return Footprint { span, runs: vec![sp] };
        }
        // The longest suffix of dims that is contiguous forms one run.
        let rank = v.shape.len();
        let mut run_len = 1i64;
        let mut split = rank;
        while split > 0 {
            let d = split - 1;
            if v.shape[d] == 1 || v.strides[d] == run_len {
                run_len *= v.shape[d] as i64;
                split -= 1;
            } else {
                break;
            }
        }
        let outer: usize = v.shape[..split].iter().product();
        let mut runs = Vec::with_capacity(outer);
        let mut idx = vec![0usize; split];
        for _ in 0..outer {
            let start: i64 = v.offset + idx.iter().zip(&v.strides).map(|(&i, &s)| i as i64 * s).sum::<i64>();
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
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(runs.len());
        for r in runs {
            match merged.last_mut() {
                Some(last) if r.0 <= last.1 + 1 => last.1 = last.1.max(r.1),
                _ => merged.push(r),
            }
        }
        Footprint { span, runs: merged }
    }

    /// Whether the two footprints share an element.
    pub(crate) fn overlaps(&self, other: &Footprint) -> bool {
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
