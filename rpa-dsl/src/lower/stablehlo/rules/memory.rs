//! Ref rules: views, vector and scalar loads and stores.

use super::super::*;

impl<'k> Lowerer<'k> {
    pub(crate) fn lower_view(&mut self, inst: &'k Inst, base: ValueId, indexers: &[Indexer]) -> R<()> {
        let v = self.view(base, indexers)?;
        if let Some(r) = inst.result {
            self.vals.insert(r, v);
        }
        Ok(())
    }

    pub(crate) fn lower_ref_reshape(&mut self, inst: &'k Inst, base: ValueId, shape: &[usize]) -> R<()> {
        let r = self.refval(base)?;
        let v = r.reshape(shape).ok_or_else(|| {
            self.err(format!("cannot reshape this view ({:?}) to {shape:?} without copying", r.shape))
        })?;
        if let Some(res) = inst.result {
            self.vals.insert(res, Bound::Ref(v));
        }
        Ok(())
    }

    pub(crate) fn lower_ref_bitcast(&mut self, inst: &'k Inst, base: ValueId, to: DType) -> R<()> {
        let r = self.refval(base)?;
        let v = self.ref_bitcast(&r, to)?;
        if let Some(res) = inst.result {
            self.vals.insert(res, Bound::Ref(v));
        }
        Ok(())
    }

    pub(crate) fn lower_load(&mut self, inst: &'k Inst, src: ValueId) -> R<()> {
        let r = self.refval(src)?;
        let shape = r.shape.clone();
        self.check_load(&r, &shape, &[]);
        let v = self.read(&r, &shape, &[]);
        self.bind(inst, v, None);
        Ok(())
    }

    pub(crate) fn lower_load_strided(
        &mut self,
        inst: &'k Inst,
        src: ValueId,
        strides: &[usize],
        shape: &[usize],
    ) -> R<()> {
        let r = self.refval(src)?;
        let sv = strided(&r, strides, shape);
        self.check_strided(&sv, &r.shape);
        self.check_load(&sv, shape, &[]);
        let v = self.read_strided(&r, strides, shape);
        self.bind(inst, v, None);
        Ok(())
    }

    pub(crate) fn lower_store(&mut self, dst: ValueId, value: ValueId, mask: Option<ValueId>) -> R<()> {
        let r = self.refval(dst)?;
        let (v, shape) = (self.tensor(value), r.shape.clone());
        let m = mask.map(|m| self.tensor(m));
        self.write(&r, &shape, &v, m.as_deref(), &[]);
        self.mark_written(&r, &shape, m.as_deref(), &[]);
        Ok(())
    }

    pub(crate) fn lower_store_strided(&mut self, dst: ValueId, value: ValueId, strides: &[usize]) -> R<()> {
        let r = self.refval(dst)?;
        let (v, vs) = (self.tensor(value), self.value_shape(value));
        let sv = strided(&r, strides, &vs);
        self.check_strided(&sv, &r.shape);
        self.write(&sv, &vs, &v, None, &[]);
        self.mark_written(&sv, &vs, None, &[]);
        Ok(())
    }

    pub(crate) fn lower_scalar_load(&mut self, inst: &'k Inst, src: ValueId, indices: &[ValueId]) -> R<()> {
        let r = self.refval(src)?;
        let idx: Vec<IntExpr> = indices.iter().map(|i| self.int_of(*i)).collect();
        for (d, i) in idx.iter().enumerate() {
            self.check_index(&r, d, i);
        }
        self.check_load_at(&r, &idx);
        let v = self.read_at(&r, &idx);
        self.bind(inst, v, None);
        Ok(())
    }

    pub(crate) fn lower_scalar_store(&mut self, dst: ValueId, indices: &[ValueId], value: ValueId) -> R<()> {
        let r = self.refval(dst)?;
        let idx: Vec<IntExpr> = indices.iter().map(|i| self.int_of(*i)).collect();
        for (d, i) in idx.iter().enumerate() {
            self.check_index(&r, d, i);
        }
        let v = self.tensor(value);
        self.write_at(&r, &idx, &v);
        self.mark_written_at(&r, &idx);
        Ok(())
    }
}
