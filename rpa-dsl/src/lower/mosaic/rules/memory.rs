//! Refs: views, vector and scalar loads and stores.

use super::super::*;

impl<'k> Emitter<'k> {
    pub(crate) fn lower_view(
        &mut self,
        inst: &'k Inst,
        l: &str,
        base: ValueId,
        indexers: &[Indexer],
    ) -> Result<(), KernelError> {
        self.view(inst, base, indexers, l)?;
        if let (Some(r), [Indexer::Slice { start, size: SliceSize::Static(_) }, rest @ ..]) = (inst.result, indexers) {
            if matches!(self.ty(base), Type::Ref(_)) && rest.iter().all(|i| *i == Indexer::Full) {
                self.windows.insert(r, (base, *start));
            }
        }
        Ok(())
    }

    pub(crate) fn lower_ref_reshape(
        &mut self,
        l: &str,
        res: &str,
        rty: &str,
        base: ValueId,
    ) -> Result<(), KernelError> {
        let (bn, bt) = (self.name(base), type_str(self.ty(base)));
        self.line(&format!("{res} = tpu.memref_reshape {bn} : {bt} -> {rty} {l}"));
        Ok(())
    }

    pub(crate) fn lower_ref_bitcast(
        &mut self,
        l: &str,
        res: &str,
        rty: &str,
        base: ValueId,
    ) -> Result<(), KernelError> {
        let (bn, bt) = (self.name(base), type_str(self.ty(base)));
        self.line(&format!("{res} = tpu.memref_bitcast {bn} : {bt} -> {rty} {l}"));
        Ok(())
    }

    pub(crate) fn lower_load(&mut self, l: &str, res: &str, rty: &str, src: ValueId) -> Result<(), KernelError> {
        let (sn, st) = (self.name(src), type_str(self.ty(src)));
        let idx = self.zero_indices(src, l);
        self.line(&format!("{res} = vector.load {sn}[{idx}] : {st}, {rty} {l}"));
        Ok(())
    }

    pub(crate) fn lower_load_strided(
        &mut self,
        l: &str,
        res: &str,
        rty: &str,
        src: ValueId,
        strides: &[usize],
    ) -> Result<(), KernelError> {
        let (sn, st, idx) = self.strided_ref(src, l);
        self.line(&format!(
            "{res} = tpu.strided_load {sn}[{idx}] {{strides = array<i32: {}>}} : {st}, {rty} {l}",
            join(strides)
        ));
        Ok(())
    }

    /// The memref, its type and the indices of a strided access to `r`: a row window is accessed
    /// through its base at its start (Mosaic lowers packed dtypes only so; see `verify::packed`).
    fn strided_ref(&mut self, r: ValueId, l: &str) -> (String, String, String) {
        let Some(&(base, start)) = self.windows.get(&r) else {
            return (self.name(r), type_str(self.ty(r)), self.zero_indices(r, l));
        };
        let first = self.index(start, l);
        let rest = self.zero_indices(base, l);
        let idx = std::iter::once(first).chain(rest.split(", ").skip(1).map(str::to_string)).collect::<Vec<_>>();
        (self.name(base), type_str(self.ty(base)), idx.join(", "))
    }

    pub(crate) fn lower_store(
        &mut self,
        l: &str,
        dst: ValueId,
        value: ValueId,
        mask: Option<ValueId>,
    ) -> Result<(), KernelError> {
        let (dn, dt) = (self.name(dst), type_str(self.ty(dst)));
        let (vn, vt) = (self.name(value), type_str(self.ty(value)));
        let idx = self.zero_indices(dst, l);
        match mask {
            None => self.line(&format!("vector.store {vn}, {dn}[{idx}] : {dt}, {vt} {l}")),
            Some(m) => {
                let (mn, mt) = (self.name(m), type_str(self.ty(m)));
                self.line(&format!(
                    "tpu.vector_store {dn}[{idx}], {vn} masked {mn} {{strides = array<i32>}} : {dt}, {vt}, {mt} {l}"
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn lower_store_strided(
        &mut self,
        l: &str,
        dst: ValueId,
        value: ValueId,
        strides: &[usize],
    ) -> Result<(), KernelError> {
        let (dn, dt, idx) = self.strided_ref(dst, l);
        let (vn, vt) = (self.name(value), type_str(self.ty(value)));
        self.line(&format!(
            "tpu.strided_store {dn}[{idx}], {vn} {{strides = array<i32: {}>}} : {dt}, {vt} {l}",
            join(strides)
        ));
        Ok(())
    }

    pub(crate) fn lower_scalar_load(
        &mut self,
        l: &str,
        res: &str,
        src: ValueId,
        indices: &[ValueId],
    ) -> Result<(), KernelError> {
        let (sn, st) = (self.name(src), type_str(self.ty(src)));
        let idx: Vec<String> = indices.iter().map(|i| self.index(*i, l)).collect();
        self.line(&format!("{res} = memref.load {sn}[{}] : {st} {l}", idx.join(", ")));
        Ok(())
    }

    pub(crate) fn lower_scalar_store(
        &mut self,
        l: &str,
        dst: ValueId,
        indices: &[ValueId],
        value: ValueId,
    ) -> Result<(), KernelError> {
        let (dn, dt) = (self.name(dst), type_str(self.ty(dst)));
        let idx: Vec<String> = indices.iter().map(|i| self.index(*i, l)).collect();
        let vn = self.name(value);
        self.line(&format!("memref.store {vn}, {dn}[{}] : {dt} {l}", idx.join(", ")));
        Ok(())
    }
}
