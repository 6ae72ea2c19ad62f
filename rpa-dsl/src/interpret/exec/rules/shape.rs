//! Shape: broadcasts, reshapes, slices, concatenations.

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
}
