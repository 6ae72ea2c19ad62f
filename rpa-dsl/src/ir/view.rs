//! The view algebra, written once for interpret mode and the StableHLO lowering: how indexing,
//! slicing, reshaping, bitcasting and striding a ref map its elements onto its buffer's. Generic
//! over the index domain ([`IndexDomain`]): concrete integers in interpret mode, symbolic i32
//! quantities while lowering.

use crate::dtype::DType;
use crate::ir::{Indexer, SliceSize, ValueId};

/// The index arithmetic, and the bounds checks, of one domain.
pub trait IndexDomain {
    /// An i32 quantity.
    type Int: Clone;
    type Error;
    /// Whether every quantity is known (interpret mode): dynamic extents then become static ones.
    const CONCRETE: bool;
    fn constant(&mut self, v: i64) -> Self::Int;
    /// The quantity's value, if known now.
    fn known(&self, x: &Self::Int) -> Option<i64>;
    /// `a + b · scale`.
    fn add(&mut self, a: &Self::Int, b: &Self::Int, scale: i64) -> Self::Int;
    /// The value of the IR integer scalar `v`.
    fn scalar(&mut self, v: ValueId) -> Self::Int;
    /// A static upper bound of the IR scalar `v`, if one is known (it shrinks dynamic windows).
    fn upper_bound(&self, _v: ValueId) -> Option<i64> {
        None
    }
    /// `x` in the form a view keeps a dynamic extent in.
    fn extent(&mut self, x: &Self::Int) -> Self::Int {
        x.clone()
    }
    /// Index `i` of dimension `d` of `view` must be in `0..extent`.
    fn check_index(&mut self, view: &View<Self::Int>, d: usize, i: &Self::Int) -> Result<(), Self::Error>;
    /// The slice `[start, start + size)` of dimension `d` of `view` must be inside it, and a dynamic
    /// `size` within `0..=max`.
    fn check_slice(
        &mut self,
        view: &View<Self::Int>,
        d: usize,
        start: &Self::Int,
        size: &Self::Int,
        max: Option<usize>,
    ) -> Result<(), Self::Error>;
}

/// How one element of a view maps onto its buffer's elements.
#[derive(Clone, Debug, PartialEq)]
pub enum Pack<I> {
    /// One buffer element of the same width.
    Same,
    /// `k` narrow buffer elements `pos, pos + step, …`; element `j` holds bits `[j·w, (j+1)·w)`.
    Wide { k: usize, step: i64, narrow: DType },
    /// Part `r % k` of buffer element `r / k` along the packed dimension `dim` (`None` once indexed;
    /// then `row` is the fixed row); `row_stride` is the buffer stride of that dimension.
    Narrow { k: usize, dim: Option<usize>, row: I, row_stride: i64 },
}

/// A strided window of a buffer, seen with some dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct View<I> {
    pub buf: usize,
    pub dtype: DType,
    /// Static extents (the bound of a dynamic one).
    pub shape: Vec<usize>,
    /// The runtime extent of each dynamic dimension.
    pub sizes: Vec<Option<I>>,
    /// Whether each dimension's static extent is known to stay inside the buffer from its start
    /// (always for static extents; for a dynamic slice, when its start is known and it fits).
    pub fits: Vec<bool>,
    /// Strides in buffer elements (for `Narrow`, the packed dimension's entry is unused).
    pub strides: Vec<i64>,
    pub offset: I,
    pub pack: Pack<I>,
    /// Built from the whole buffer by indexing and slicing only: each dimension is a window of one
    /// dimension of the buffer's shape (so the offset's digits in that shape are the starts).
    pub canon: bool,
}

/// Row-major strides of `shape`.
pub fn row_major(shape: &[usize]) -> Vec<i64> {
    let mut s = vec![1i64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1] as i64;
    }
    s
}

impl<I: Clone> View<I> {
    /// The whole buffer `buf` of `shape`.
    pub fn whole(buf: usize, dtype: DType, shape: &[usize], zero: I) -> View<I> {
        View {
            buf,
            dtype,
            shape: shape.to_vec(),
            sizes: vec![None; shape.len()],
            fits: vec![true; shape.len()],
            strides: row_major(shape),
            offset: zero,
            pack: Pack::Same,
            canon: true,
        }
    }

    /// The view indexed by `indexers` (one per leading dimension; the rest are whole), checking
    /// every index and slice against the extents.
    pub fn index<D: IndexDomain<Int = I>>(&self, dom: &mut D, indexers: &[Indexer]) -> Result<View<I>, D::Error> {
        let mut v = self.clone();
        let (mut shape, mut sizes, mut strides, mut fits) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut packed_dim = match &self.pack {
            Pack::Narrow { dim, .. } => *dim,
            _ => None,
        };
        let mut new_packed = None;
        for d in 0..self.shape.len() {
            let is_packed = packed_dim == Some(d);
            // An index or a slice start moves the offset, or the row of the packed dimension.
            let advance = |dom: &mut D, v: &mut View<I>, by: &I| match &mut v.pack {
                Pack::Narrow { row, .. } if is_packed => *row = dom.add(row, by, 1),
                _ => v.offset = dom.add(&v.offset, by, self.strides[d]),
            };
            match indexers.get(d).unwrap_or(&Indexer::Full) {
                Indexer::Full => {
                    if is_packed {
                        new_packed = Some(shape.len());
                    }
                    shape.push(self.shape[d]);
                    sizes.push(self.sizes[d].clone());
                    fits.push(self.fits[d]);
                    strides.push(self.strides[d]);
                }
                Indexer::At(i) => {
                    let i = dom.scalar(*i);
                    dom.check_index(self, d, &i)?;
                    advance(dom, &mut v, &i);
                    if is_packed {
                        packed_dim = None;
                    }
                }
                Indexer::Slice { start, size } => {
                    let s = dom.scalar(*start);
                    let (n, max) = match size {
                        SliceSize::Static(n) => (dom.constant(*n as i64), None),
                        SliceSize::Dynamic { size, max } => (dom.scalar(*size), Some(*max)),
                    };
                    dom.check_slice(self, d, &s, &n, max)?;
                    advance(dom, &mut v, &s);
                    if is_packed {
                        new_packed = Some(shape.len());
                    }
                    match (size, dom.known(&n)) {
                        (SliceSize::Static(n), _) => {
                            shape.push(*n);
                            sizes.push(None);
                            fits.push(true);
                        }
                        (SliceSize::Dynamic { .. }, Some(n)) if D::CONCRETE => {
                            shape.push(n as usize);
                            sizes.push(None);
                            fits.push(true);
                        }
                        (SliceSize::Dynamic { size, max }, _) => {
                            // A known bound of the size shrinks the window.
                            let max = dom.upper_bound(*size).map_or(*max, |u| (u.max(0) as usize).min(*max));
                            let start = dom.known(&s);
                            shape.push(max);
                            sizes.push(Some(dom.extent(&n)));
                            fits.push(
                                self.fits[d] && start.is_some_and(|s| s >= 0 && s as usize + max <= self.shape[d]),
                            );
                        }
                    }
                    strides.push(self.strides[d]);
                }
            }
        }
        if let Pack::Narrow { dim, .. } = &mut v.pack {
            *dim = if packed_dim.is_some() { new_packed } else { None };
        }
        Ok(View { shape, sizes, fits, strides, ..v })
    }

    /// The view with a static `shape`, if its strides allow it without a copy (numpy's rules:
    /// unit dims drop out, the others split or merge where contiguous).
    pub fn reshape(&self, shape: &[usize]) -> Option<View<I>> {
        if matches!(self.pack, Pack::Narrow { .. }) || self.sizes.iter().any(Option::is_some) {
            return None;
        }
        let old: Vec<(usize, i64)> =
            self.shape.iter().copied().zip(self.strides.iter().copied()).filter(|&(n, _)| n != 1).collect();
        let mut new_strides = vec![0i64; shape.len()];
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
            // The old dims oj0..=oi must be contiguous relative to each other.
            if (oj0..oi).any(|k| old[k].1 != old[k + 1].1 * old[k + 1].0 as i64) {
                return None;
            }
            let mut stride = old[oi].1;
            for k in (nj0..=ni).rev() {
                new_strides[new_nz[k]] = stride;
                stride *= shape[new_nz[k]] as i64;
            }
            oi += 1;
            ni += 1;
        }
        if oi != old.len() || ni != new_nz.len() {
            return None;
        }
        Some(View {
            shape: shape.to_vec(),
            sizes: vec![None; shape.len()],
            fits: vec![true; shape.len()],
            strides: new_strides,
            canon: self.canon && shape == self.shape.as_slice(),
            ..self.clone()
        })
    }

    /// The view seen as `to`. A width-changing bitcast packs (or unpacks) rows of the second-minor
    /// dimension, as TPU sublanes do: once per view.
    pub fn bitcast(&self, to: DType, zero: I) -> Result<View<I>, &'static str> {
        let from = self.dtype;
        if from.bits() == to.bits() {
            return Ok(View { dtype: to, ..self.clone() });
        }
        if !matches!(self.pack, Pack::Same) {
            return Err("only one width-changing bitcast per view is supported");
        }
        let rank = self.shape.len();
        if rank < 2 {
            return Err("a width-changing bitcast needs rank >= 2");
        }
        let d = rank - 2;
        let mut out = View { dtype: to, canon: false, ..self.clone() };
        if to.bits() > from.bits() {
            let k = to.bits() / from.bits();
            out.shape[d] = self.shape[d] / k;
            out.strides[d] = self.strides[d] * k as i64;
            out.pack = Pack::Wide { k, step: self.strides[d], narrow: from };
        } else {
            let k = from.bits() / to.bits();
            out.shape[d] = self.shape[d] * k;
            out.pack = Pack::Narrow { k, dim: Some(d), row: zero, row_stride: self.strides[d] };
        }
        Ok(out)
    }

    /// Element `i` of the result is element `i · steps` of the view (per dimension).
    pub fn strided(&self, steps: &[usize], shape: &[usize]) -> View<I> {
        View {
            shape: shape.to_vec(),
            sizes: vec![None; shape.len()],
            fits: vec![true; shape.len()],
            strides: self.strides.iter().zip(steps).map(|(&s, &k)| s * k as i64).collect(),
            canon: false,
            ..self.clone()
        }
    }

    /// Elements (static extents).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
