//! Views of refs: indexing, slicing, reshaping and bitcasting (as `interpret::memory`).

use super::*;

impl Lowerer<'_> {
    pub(super) fn view(&mut self, base: ValueId, indexers: &[Indexer]) -> R<Bound> {
        match self.vals.get(&base).cloned() {
            Some(Bound::Sem(s)) => {
                let strides = row_major(&s.shape);
                let mut b = s.base.clone();
                for (d, ix) in indexers.iter().enumerate() {
                    if let Indexer::At(i) = ix {
                        let i = self.int_of(*i);
                        self.check_sem_index(&s, d, &i);
                        b = self.int_add(&b, &i, strides[d]);
                    }
                }
                let shape = s.shape[indexers.len().min(s.shape.len())..].to_vec();
                Ok(Bound::Sem(SemVal { base: b, shape, name: s.name }))
            }
            Some(Bound::Ref(r)) => {
                let mut v = r.clone();
                let (mut shape, mut sizes, mut strides, mut fits) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                let mut packed_dim = match &r.pack {
                    Pack::Narrow { dim, .. } => *dim,
                    _ => None,
                };
                let mut new_packed = None;
                for d in 0..r.shape.len() {
                    let ix = indexers.get(d).unwrap_or(&Indexer::Full);
                    let is_packed = packed_dim == Some(d);
                    match ix {
                        Indexer::Full => {
                            if is_packed {
                                new_packed = Some(shape.len());
                            }
                            shape.push(r.shape[d]);
                            sizes.push(r.sizes[d].clone());
                            fits.push(r.fits[d]);
                            strides.push(r.strides[d]);
                        }
                        Indexer::At(i) => {
                            let i = self.int_of(*i);
                            self.check_index(&r, d, &i);
                            if is_packed {
                                if let Pack::Narrow { row, .. } = &mut v.pack {
                                    let old = row.clone();
                                    *row = self.int_add(&old, &i, 1);
                                }
                                packed_dim = None;
                            } else {
                                v.offset = self.int_add(&v.offset, &i, r.strides[d]);
                            }
                        }
                        Indexer::Slice { start, size } => {
                            let s = self.int_of(*start);
                            if is_packed {
                                if let Pack::Narrow { row, .. } = &mut v.pack {
                                    let old = row.clone();
                                    *row = self.int_add(&old, &s, 1);
                                }
                                new_packed = Some(shape.len());
                            } else {
                                v.offset = self.int_add(&v.offset, &s, r.strides[d]);
                            }
                            match size {
                                SliceSize::Static(n) => {
                                    self.check_slice(&r, d, &s, &IntExpr::of(*n as i64), None);
                                    shape.push(*n);
                                    sizes.push(None);
                                    fits.push(true);
                                }
                                SliceSize::Dynamic { size, max } => {
                                    let n = self.int_of(*size);
                                    self.check_slice(&r, d, &s, &n, Some(*max));
                                    // A known bound of the size shrinks the window.
                                    let max = &self.upper_bound(*size).map_or(*max, |u| (u.max(0) as usize).min(*max));
                                    shape.push(*max);
                                    sizes.push(Some(self.int_name(&n)));
                                    fits.push(
                                        r.fits[d]
                                            && s.is_static()
                                            && s.constant >= 0
                                            && s.constant as usize + max <= r.shape[d],
                                    );
                                }
                            }
                            strides.push(r.strides[d]);
                        }
                    }
                }
                if let Pack::Narrow { dim, .. } = &mut v.pack {
                    *dim = if packed_dim.is_some() { new_packed } else { None };
                }
                v.shape = shape;
                v.sizes = sizes;
                v.fits = fits;
                v.strides = strides;
                Ok(Bound::Ref(v))
            }
            _ => Err(self.err("view of a value that is not a ref or semaphore")),
        }
    }

    /// A no-copy reshape of a view (numpy's rules, as interpret mode).
    pub(super) fn ref_reshape(&self, r: &RefVal, shape: &[usize]) -> Option<RefVal> {
        if matches!(r.pack, Pack::Narrow { .. }) || r.sizes.iter().any(Option::is_some) {
            return None;
        }
        let old: Vec<(usize, i64)> =
            r.shape.iter().copied().zip(r.strides.iter().copied()).filter(|&(n, _)| n != 1).collect();
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
            for k in oj0..oi {
                if old[k].1 != old[k + 1].1 * old[k + 1].0 as i64 {
                    return None;
                }
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
        Some(RefVal {
            shape: shape.to_vec(),
            sizes: vec![None; shape.len()],
            fits: vec![true; shape.len()],
            strides: new_strides,
            canon: r.canon && shape == r.shape.as_slice(),
            ..r.clone()
        })
    }

    pub(super) fn ref_bitcast(&self, r: &RefVal, to: DType) -> R<RefVal> {
        let from = r.dtype;
        if from.bits() == to.bits() {
            return Ok(RefVal { dtype: to, ..r.clone() });
        }
        if !matches!(r.pack, Pack::Same) {
            return Err(self.err("only one width-changing bitcast per view is supported"));
        }
        let rank = r.shape.len();
        if rank < 2 {
            return Err(self.err("a width-changing bitcast needs rank >= 2"));
        }
        let d = rank - 2;
        let mut out = r.clone();
        out.dtype = to;
        out.canon = false;
        if to.bits() > from.bits() {
            let k = to.bits() / from.bits();
            out.shape[d] = r.shape[d] / k;
            out.strides[d] = r.strides[d] * k as i64;
            out.pack = Pack::Wide { k, step: r.strides[d] };
        } else {
            let k = from.bits() / to.bits();
            out.shape[d] = r.shape[d] * k;
            out.pack = Pack::Narrow { k, dim: Some(d), row: IntExpr::of(0), row_stride: r.strides[d] };
        }
        Ok(out)
    }
}
