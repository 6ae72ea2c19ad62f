//! Shape: broadcasts, reshapes, slices, concatenations, rolls, transposes, extracts.

use super::super::*;

impl<'k> Machine<'k> {
    pub(crate) fn exec_broadcast(&mut self, inst: &'k Inst, x: ValueId, shape: &[usize]) -> R<()> {
        let xv = self.vv(x);
        let data = match &xv.data {
            Data::F(v) => Data::F(expand(v, &xv.shape, shape)),
            Data::I(v) => Data::I(expand(v, &xv.shape, shape)),
        };
        self.set(inst, Val::V(Rc::new(VecVal { shape: shape.to_vec(), data })));
        Ok(())
    }

    pub(crate) fn exec_reshape(&mut self, inst: &'k Inst, x: ValueId, shape: &[usize]) -> R<()> {
        let (d, _) = self.data(x);
        self.set(inst, Val::V(Rc::new(VecVal { shape: shape.to_vec(), data: d })));
        self.tick(0);
        Ok(())
    }

    pub(crate) fn exec_slice(&mut self, inst: &'k Inst, x: ValueId, start: &[usize], shape: &[usize]) -> R<()> {
        let xv = self.vv(x);
        let (d, sh) = (&xv.data, &xv.shape);
        let whole = View::whole(0, DType::F32, sh, 0);
        let offset = start.iter().zip(&whole.strides).map(|(&s, &st)| s as i64 * st).sum();
        let view = View { shape: shape.to_vec(), offset, ..whole };
        let data = gather(d, &view);
        self.set(inst, Val::V(Rc::new(VecVal { shape: shape.to_vec(), data })));
        Ok(())
    }

    pub(crate) fn exec_concat(&mut self, inst: &'k Inst, xs: &[ValueId], axis: usize) -> R<()> {
        let parts: Vec<Rc<VecVal>> = xs.iter().map(|x| self.vv(*x)).collect();
        let out_shape = self.result_shape(inst).expect("vector");
        let outer: usize = out_shape[..axis].iter().product();
        let inner: usize = out_shape[axis + 1..].iter().product();
        let data = match &parts[0].data {
            Data::F(_) => {
                let mut out = Vec::with_capacity(out_shape.iter().product());
                for o in 0..outer {
                    for p in &parts {
                        let chunk = p.shape[axis] * inner;
                        if let Data::F(v) = &p.data {
                            out.extend_from_slice(&v[o * chunk..(o + 1) * chunk]);
                        }
                    }
                }
                Data::F(out)
            }
            Data::I(_) => {
                let mut out = Vec::with_capacity(out_shape.iter().product());
                for o in 0..outer {
                    for p in &parts {
                        let chunk = p.shape[axis] * inner;
                        if let Data::I(v) = &p.data {
                            out.extend_from_slice(&v[o * chunk..(o + 1) * chunk]);
                        }
                    }
                }
                Data::I(out)
            }
        };
        self.set(inst, Val::V(Rc::new(VecVal { shape: out_shape, data })));
        Ok(())
    }

    pub(crate) fn exec_roll(&mut self, inst: &'k Inst, loc: Loc, x: ValueId, shift: ValueId, axis: usize) -> R<()> {
        let s = self.int(shift);
        if s < 0 {
            return Err(self.err(loc, "roll", negative_roll(s)));
        }
        let xv = self.vv(x);
        let sh = &xv.shape;
        let n = sh[axis];
        let inner: usize = sh[axis + 1..].iter().product();
        // Each run of `n · inner` elements rotates by `s · inner` (`rotate_right`: i ← i - s).
        let by = (s as usize % n.max(1)) * inner;
        fn rotate<T: Copy>(v: &[T], run: usize, by: usize) -> Vec<T> {
            let mut out = v.to_vec();
            if run > 0 {
                out.chunks_exact_mut(run).for_each(|c| c.rotate_right(by));
            }
            out
        }
        let data = match &xv.data {
            Data::F(v) => Data::F(rotate(v, n * inner, by)),
            Data::I(v) => Data::I(rotate(v, n * inner, by)),
        };
        self.tick(data.len());
        self.set(inst, Val::V(Rc::new(VecVal { shape: sh.clone(), data })));
        Ok(())
    }

    pub(crate) fn exec_transpose(&mut self, inst: &'k Inst, x: ValueId, perm: &[usize]) -> R<()> {
        let xv = self.vv(x);
        let whole = View::whole(0, DType::F32, &xv.shape, 0);
        let view = View {
            shape: perm.iter().map(|&d| xv.shape[d]).collect(),
            strides: perm.iter().map(|&d| whole.strides[d]).collect(),
            ..whole
        };
        let data = gather(&xv.data, &view);
        self.tick(data.len());
        self.set(inst, Val::V(Rc::new(VecVal { shape: view.shape.clone(), data })));
        Ok(())
    }

    pub(crate) fn exec_extract(&mut self, inst: &'k Inst, x: ValueId, index: &[usize]) -> R<()> {
        let xv = self.vv(x);
        let flat = index.iter().zip(&xv.shape).fold(0, |acc, (&i, &n)| acc * n + i);
        let v = match &xv.data {
            Data::F(v) => Val::F(v[flat]),
            Data::I(v) => Val::I(v[flat]),
        };
        self.set(inst, v);
        Ok(())
    }
}
