//! Refs: views, vector and scalar loads and stores.

use super::super::*;

impl<'k> Machine<'k> {
    pub(crate) fn exec_view(&mut self, inst: &'k Inst, loc: Loc, base: ValueId, indexers: &[Indexer]) -> R<()> {
        let v = match self.val(base) {
            Val::S(s) => {
                let s = s.clone();
                let strides = row_major_strides(&s.shape);
                let mut base_idx = s.base;
                for (d, ix) in indexers.iter().enumerate() {
                    if let Indexer::At(i) = ix {
                        let i = self.int(*i);
                        if i < 0 || i as usize >= s.shape[d] {
                            return Err(self.err(
                                loc,
                                "view",
                                format!(
                                    "index {i} is out of bounds for dimension {d} (extent {}) of semaphore array `{}`",
                                    s.shape[d], s.name
                                ),
                            ));
                        }
                        base_idx += i as usize * strides[d] as usize;
                    }
                }
                let shape = s.shape[indexers.len()..].to_vec();
                Val::S(Rc::new(SemView { base: base_idx, shape, name: s.name.clone() }))
            }
            _ => Val::R(Rc::new(self.index_view(&self.view(base), indexers, loc)?)),
        };
        self.set(inst, v);
        Ok(())
    }

    pub(crate) fn exec_ref_reshape(&mut self, inst: &'k Inst, loc: Loc, base: ValueId, shape: &[usize]) -> R<()> {
        let v = self.view(base);
        let r = v.reshape(shape).ok_or_else(|| {
            self.err(
                loc,
                "ref_reshape",
                format!(
                    "cannot reshape this view of `{}` ({:?}) to {shape:?} without copying: its strides do not allow it",
                    self.bufs[v.buf].name, v.shape
                ),
            )
        })?;
        self.set(inst, Val::R(Rc::new(r)));
        Ok(())
    }

    pub(crate) fn exec_ref_bitcast(&mut self, inst: &'k Inst, loc: Loc, base: ValueId, to: DType) -> R<()> {
        let v = self.view(base);
        let r = self.bitcast_view(&v, to, loc)?;
        self.set(inst, Val::R(Rc::new(r)));
        Ok(())
    }

    pub(crate) fn exec_load(&mut self, inst: &'k Inst, loc: Loc, src: ValueId) -> R<()> {
        let v = self.view(src);
        let data = self.load(&v, loc, "load")?;
        self.tick(v.len());
        self.set(inst, Val::V(Rc::new(VecVal { shape: v.shape.clone(), data })));
        Ok(())
    }

    pub(crate) fn exec_load_strided(
        &mut self,
        inst: &'k Inst,
        loc: Loc,
        src: ValueId,
        strides: &[usize],
        shape: &[usize],
    ) -> R<()> {
        let v = self.view(src);
        let sv = strided_view(&v, strides, shape);
        self.check_extent(&v, &sv, loc, "load_strided")?;
        let data = self.load(&sv, loc, "load_strided")?;
        self.tick(sv.len());
        self.set(inst, Val::V(Rc::new(VecVal { shape: shape.to_vec(), data })));
        Ok(())
    }

    pub(crate) fn exec_store(&mut self, loc: Loc, dst: ValueId, value: ValueId, mask: Option<ValueId>) -> R<()> {
        let v = self.view(dst);
        let d = self.vv(value);
        let m = mask.map(|m| self.vv(m));
        let m = m.as_ref().map(|m| match &m.data {
            Data::I(m) => m.as_slice(),
            Data::F(_) => unreachable!("type rule: mask is bool"),
        });
        self.store(&v, &d.data, m, loc, "store")?;
        self.tick(v.len());
        Ok(())
    }

    pub(crate) fn exec_store_strided(&mut self, loc: Loc, dst: ValueId, value: ValueId, strides: &[usize]) -> R<()> {
        let v = self.view(dst);
        let d = self.vv(value);
        let sv = strided_view(&v, strides, &d.shape);
        self.check_extent(&v, &sv, loc, "store_strided")?;
        self.store(&sv, &d.data, None, loc, "store_strided")?;
        self.tick(sv.len());
        Ok(())
    }

    pub(crate) fn exec_scalar_load(&mut self, inst: &'k Inst, loc: Loc, src: ValueId, indices: &[ValueId]) -> R<()> {
        let v = self.view(src);
        let addr = self.scalar_addr(&v, indices, loc, "scalar_load")?;
        let buf = &self.bufs[v.buf];
        if self.opts.uninit_reads_are_errors && !is_init(&buf.init, addr) {
            let idx: Vec<i64> = indices.iter().map(|i| self.int(*i)).collect();
            return Err(self.err(
                loc,
                "scalar_load",
                format!("reads uninitialised element {idx:?} of `{}`: write it before reading it", buf.name),
            ));
        }
        let bits = read_bits(&buf.bits, addr, v.dtype);
        let val = if v.dtype.is_float() {
            Val::F(v.dtype.float_from_bits(bits) as f32)
        } else {
            Val::I(v.dtype.int_from_bits(bits))
        };
        self.set(inst, val);
        Ok(())
    }

    pub(crate) fn exec_scalar_store(&mut self, loc: Loc, dst: ValueId, indices: &[ValueId], value: ValueId) -> R<()> {
        let v = self.view(dst);
        let addr = self.scalar_addr(&v, indices, loc, "scalar_store")?;
        let bits = match self.val(value) {
            Val::F(f) => v.dtype.float_to_bits(*f as f64),
            other => v.dtype.int_to_bits(other.int()),
        };
        let buf = &mut self.bufs[v.buf];
        write_bits(&mut buf.bits, &mut buf.init, addr, v.dtype, bits);
        Ok(())
    }
}
