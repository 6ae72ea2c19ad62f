//! Single elements of refs (scalar loads and stores) and the packing of narrow parts into words.

use super::*;

impl Lowerer<'_> {
    /// The flat position of element `idx` of `r`, if it is known while lowering (not for narrow
    /// views).
    pub(super) fn static_pos(r: &RefVal, idx: &[IntExpr]) -> Option<i64> {
        if matches!(r.pack, Pack::Narrow { .. }) || !r.offset.is_static() {
            return None;
        }
        let mut pos = r.offset.constant;
        for (d, i) in idx.iter().enumerate() {
            if r.strides[d] != 0 {
                if !i.is_static() {
                    return None;
                }
                pos += i.constant * r.strides[d];
            }
        }
        Some(pos)
    }

    /// Where element `idx` of `r` lives: the base dtype, its static flat position (if known),
    /// its runtime position and (for narrow packing) its part.
    pub(super) fn element_at(&mut self, r: &RefVal, idx: &[IntExpr]) -> (DType, Option<i64>, String, Option<String>) {
        let at = Self::static_pos(r, idx);
        let idx: Vec<String> = idx.iter().map(|l| self.int_name(l)).collect();
        let (pos, part) = self.addresses(r, &[], Coords::At(&idx));
        (self.bufs[r.buf].dtype, at, pos, part)
    }

    /// One element of `r` at indices `idx`.
    pub(super) fn read_at(&mut self, r: &RefVal, idx: &[IntExpr]) -> String {
        let (bdt, at, pos, part) = self.element_at(r, idx);
        match r.pack.clone() {
            Pack::Same => {
                let e = self.elem_get(r.buf, &pos, at);
                self.view_as(&e, bdt, r.dtype, &[])
            }
            Pack::Wide { k, step, .. } => {
                let parts: Vec<String> = (0..k)
                    .map(|j| {
                        let p = self.shift_pos(&pos, j as i64 * step, &[]);
                        self.elem_get(r.buf, &p, at.map(|a| a + j as i64 * step))
                    })
                    .collect();
                self.pack_wide(&parts, bdt, r.dtype, &[])
            }
            Pack::Narrow { .. } => {
                let word = self.elem_get(r.buf, &pos, None);
                self.narrow_part(&word, bdt, r.dtype, &part.expect("narrow part"), &[])
            }
        }
    }

    /// Writes one element of `r` at indices `idx`.
    pub(super) fn write_at(&mut self, r: &RefVal, idx: &[IntExpr], val: &str) {
        let (bdt, at, pos, part) = self.element_at(r, idx);
        match r.pack.clone() {
            Pack::Same => {
                let e = self.view_as(val, r.dtype, bdt, &[]);
                self.elem_set(r.buf, &pos, at, &e);
            }
            Pack::Wide { k, step, .. } => {
                let parts = self.unpack_wide(val, r.dtype, bdt, k, &[]);
                for (j, e) in parts.iter().enumerate() {
                    let p = self.shift_pos(&pos, j as i64 * step, &[]);
                    self.elem_set(r.buf, &p, at.map(|a| a + j as i64 * step), e);
                }
            }
            Pack::Narrow { .. } => {
                let word = self.elem_get(r.buf, &pos, None);
                let new = self.set_narrow_part(&word, bdt, val, r.dtype, &part.expect("narrow part"), &[]);
                self.elem_set(r.buf, &pos, None, &new);
            }
        }
    }

    /// The canonical coordinates of flat position `pos` (an i32 scalar) of buffer `b`.
    pub(super) fn coords_of(&mut self, b: usize, pos: &str) -> Vec<String> {
        let shape = self.bufs[b].shape.clone();
        let strides = row_major(&shape);
        (0..shape.len())
            .map(|d| {
                if shape[d] == 1 {
                    return self.iconst(0);
                }
                let q = if strides[d] == 1 {
                    pos.to_string()
                } else {
                    let c = self.iconst(strides[d]);
                    self.bin("divide", pos, &c, DType::I32, &[])
                };
                if d == 0 {
                    q
                } else {
                    let c = self.iconst(shape[d] as i64);
                    self.bin("remainder", &q, &c, DType::I32, &[])
                }
            })
            .collect()
    }

    /// The one-element box at flat position `pos` (an i32 scalar, `constant` if known) of buffer `b`.
    pub(super) fn elem_plan(&mut self, b: usize, pos: &str, constant: Option<i64>) -> BoxPlan {
        let shape = self.bufs[b].shape.clone();
        let ones = vec![1; shape.len()];
        match constant {
            Some(p) if p >= 0 && (p as usize) < self.bufs[b].len => {
                let strides = row_major(&shape);
                let k: Vec<i64> = (0..shape.len()).map(|d| (p / strides[d]) % shape[d] as i64).collect();
                let starts = k.iter().map(|&x| self.iconst(x)).collect();
                BoxPlan { shape, sizes: ones, starts, constant: Some(k), map: vec![] }
            }
            _ => {
                let starts = self.coords_of(b, pos);
                BoxPlan { shape, sizes: ones, starts, constant: None, map: vec![] }
            }
        }
    }

    /// Element `pos` (flat, an i32 scalar, `constant` if known) of buffer `b`.
    pub(super) fn elem_get(&mut self, b: usize, pos: &str, constant: Option<i64>) -> String {
        let dt = self.bufs[b].dtype;
        let plan = self.elem_plan(b, pos, constant);
        let one = self.box_get(b, &plan);
        self.reshape(&one, dt, &plan.sizes, &[])
    }

    /// Sets element `pos` (flat, an i32 scalar, `constant` if known) of buffer `b` to the scalar `v`.
    pub(super) fn elem_set(&mut self, b: usize, pos: &str, constant: Option<i64>, v: &str) {
        let dt = self.bufs[b].dtype;
        let plan = self.elem_plan(b, pos, constant);
        let one = self.reshape(v, dt, &[], &plan.sizes);
        self.box_put(b, &plan, &one);
    }

    /// Combines `k` narrow elements (of the buffer dtype) into one `to` element, low bits first.
    pub(super) fn pack_wide(&mut self, parts: &[String], bdt: DType, to: DType, shape: &[usize]) -> String {
        let (wb, ut) = (bdt.bits(), uint(to.bits()));
        let mut acc: Option<String> = None;
        for (j, p) in parts.iter().enumerate() {
            let b = self.bits_of(p, bdt, shape);
            let mut z = self.convert(&b, uint(wb), ut, shape);
            if j > 0 {
                let s = self.splat(ut, shape, (j * wb) as f64);
                z = self.bin("shift_left", &z, &s, ut, shape);
            }
            acc = Some(match acc {
                None => z,
                Some(a) => self.bin("or", &a, &z, ut, shape),
            });
        }
        let acc = acc.expect("k >= 2");
        self.of_bits(&acc, to, shape)
    }

    /// Splits `val` (of the wide dtype `from`) into `k` elements of the buffer dtype.
    pub(super) fn unpack_wide(&mut self, val: &str, from: DType, bdt: DType, k: usize, shape: &[usize]) -> Vec<String> {
        let (wb, ut) = (bdt.bits(), uint(from.bits()));
        let bits = self.bits_of(val, from, shape);
        (0..k)
            .map(|j| {
                let mut part = bits.clone();
                if j > 0 {
                    let s = self.splat(ut, shape, (j * wb) as f64);
                    part = self.bin("shift_right_logical", &part, &s, ut, shape);
                }
                let part = self.convert(&part, ut, uint(wb), shape);
                self.of_bits(&part, bdt, shape)
            })
            .collect()
    }

    /// The shift (in the word's unsigned type) of narrow part `part`.
    pub(super) fn part_shift(&mut self, part: &str, wb: usize, nb: usize, shape: &[usize]) -> String {
        let wn = self.splat(DType::I32, shape, nb as f64);
        let sh = self.bin("multiply", part, &wn, DType::I32, shape);
        self.convert(&sh, DType::I32, uint(wb), shape)
    }

    /// Part `part` of each word (of the buffer dtype `bdt`) as a `to` element.
    pub(super) fn narrow_part(&mut self, word: &str, bdt: DType, to: DType, part: &str, shape: &[usize]) -> String {
        let (wb, nb) = (bdt.bits(), to.bits());
        let bits = self.bits_of(word, bdt, shape);
        let sh = self.part_shift(part, wb, nb, shape);
        let s = self.bin("shift_right_logical", &bits, &sh, uint(wb), shape);
        let t = self.convert(&s, uint(wb), uint(nb), shape);
        self.of_bits(&t, to, shape)
    }

    /// Each word with part `part` replaced by `val` (of dtype `value_dtype`).
    pub(super) fn set_narrow_part(
        &mut self,
        word: &str,
        bdt: DType,
        val: &str,
        value_dtype: DType,
        part: &str,
        shape: &[usize],
    ) -> String {
        let (wb, nb) = (bdt.bits(), value_dtype.bits());
        let ub = uint(wb);
        let bits = self.bits_of(word, bdt, shape);
        let (data, clear) = self.narrow_fields(val, value_dtype, ub, part, shape);
        let kept = self.bin("and", &bits, &clear, ub, shape);
        let _ = nb;
        let new = self.bin("or", &kept, &data, ub, shape);
        self.of_bits(&new, bdt, shape)
    }

    /// `val` shifted into place in a word of `ub`, and the mask that clears its field.
    pub(super) fn narrow_fields(
        &mut self,
        val: &str,
        value_dtype: DType,
        ub: DType,
        part: &str,
        shape: &[usize],
    ) -> (String, String) {
        let nb = value_dtype.bits();
        let v = self.bits_of(val, value_dtype, shape);
        let v = self.convert(&v, uint(nb), ub, shape);
        let sh = self.part_shift(part, ub.bits(), nb, shape);
        let data = self.bin("shift_left", &v, &sh, ub, shape);
        let ones = self.splat(ub, shape, ((1u64 << nb) - 1) as f64);
        let field = self.bin("shift_left", &ones, &sh, ub, shape);
        let clear = self.un("not", &field, ub, shape);
        (data, clear)
    }
}
