//! Casts and bit reinterpretations between dtypes (narrow floats: [`super::floats`]).

use super::*;

impl Lowerer<'_> {
    /// Narrow floats compute in f32 (exactly, as interpret mode does).
    pub(super) fn upcast(&mut self, x: &str, dt: DType, shape: &[usize]) -> (String, DType) {
        if dt.is_float() && dt != DType::F32 {
            (self.convert(x, dt, DType::F32, shape), DType::F32)
        } else {
            (x.to_string(), dt)
        }
    }

    /// `x` limited to `[lo, hi]`, NaN kept (with compares: XLA:CPU's `maximum`/`minimum` propagate
    /// NaN only with some emitters).
    pub(super) fn clamp(&mut self, x: &str, dt: DType, lo: f64, hi: f64, shape: &[usize]) -> String {
        let (l, h) = (self.splat(dt, shape, lo), self.splat(dt, shape, hi));
        let below = self.compare("LT", x, &l, dt, shape);
        let x = self.select(&below, &l, x, shape, dt, shape);
        let above = self.compare("GT", &x, &h, dt, shape);
        self.select(&above, &h, &x, shape, dt, shape)
    }

    /// Float `maximum`/`minimum` that return NaN if either operand is NaN, as interpret mode.
    pub(super) fn float_minmax(&mut self, op: &str, a: &str, b: &str, dt: DType, shape: &[usize]) -> String {
        let m = self.bin(op, a, b, dt, shape);
        let na = self.compare("NE", a, a, dt, shape);
        let nb = self.compare("NE", b, b, dt, shape);
        let nan = self.bin("or", &na, &nb, DType::Bool, shape);
        let q = self.splat(dt, shape, f64::NAN);
        self.select(&nan, &q, &m, shape, dt, shape)
    }

    /// The bits of `x` as the unsigned integer of its width (bool: 0/1 in a u8).
    pub(super) fn bits_of(&mut self, x: &str, dt: DType, shape: &[usize]) -> String {
        let u = uint(dt.bits());
        if dt == DType::Bool {
            self.convert(x, dt, u, shape)
        } else {
            self.bitcast(x, dt, u, shape)
        }
    }

    pub(super) fn of_bits(&mut self, x: &str, dt: DType, shape: &[usize]) -> String {
        let u = uint(dt.bits());
        if dt == DType::Bool {
            let z = self.splat(u, shape, 0.0);
            self.compare("NE", x, &z, u, shape)
        } else {
            self.bitcast(x, u, dt, shape)
        }
    }

    /// Reinterprets same-width bits.
    pub(super) fn view_as(&mut self, x: &str, from: DType, to: DType, shape: &[usize]) -> String {
        if from == to {
            return x.to_string();
        }
        if from == DType::Bool || to == DType::Bool {
            let b = self.bits_of(x, from, shape);
            return self.of_bits(&b, to, shape);
        }
        self.bitcast(x, from, to, shape)
    }

    pub(super) fn cast(&mut self, x: &str, from: DType, to: DType, shape: &[usize]) -> String {
        if from == to {
            return x.to_string();
        }
        if to == DType::Bool {
            let (x, f) = self.upcast(x, from, shape);
            let z = self.splat(f, shape, 0.0);
            return self.compare("NE", &x, &z, f, shape);
        }
        if to.is_float() {
            return self.convert(x, from, to, shape);
        }
        if from.is_float() {
            // Truncate toward zero, saturate to the target's range, NaN → 0.
            let (x, f) = self.upcast(x, from, shape);
            let (lo, hi) = to.finite_range();
            // The largest float ≤ hi (2^31 - 1 is not an f32).
            let mut hi_f = hi as f32;
            if hi_f as f64 > hi {
                hi_f = f32::from_bits(hi_f.to_bits() - 1);
            }
            let c = self.clamp(&x, f, lo, hi_f as f64, shape);
            let r = self.convert(&c, f, to, shape);
            let chi = self.splat(f, shape, hi_f as f64);
            let big = self.compare("GT", &x, &chi, f, shape);
            let top = self.splat(to, shape, hi);
            let r = self.select(&big, &top, &r, shape, to, shape);
            let nan = self.compare("NE", &x, &x, f, shape);
            let zero = self.splat(to, shape, 0.0);
            return self.select(&nan, &zero, &r, shape, to, shape);
        }
        self.convert(x, from, to, shape)
    }

    /// Width-changing vector bitcast: packs `k` rows of the second-minor dimension into one word
    /// (or unpacks them), low bits first, as TPU sublanes do.
    pub(super) fn repack(&mut self, x: &str, from: DType, to: DType, shape: &[usize]) -> String {
        let rank = shape.len();
        let (fb, tb) = (from.bits(), to.bits());
        let bits = self.bits_of(x, from, shape);
        if tb > fb {
            let k = tb / fb;
            let ut = uint(tb);
            let z = self.convert(&bits, uint(fb), ut, shape);
            let mut split = shape.to_vec();
            split[rank - 2] /= k;
            split.insert(rank - 1, k);
            let z = self.reshape(&z, ut, shape, &split);
            let j = self.iota(ut, &split, rank - 1);
            let w = self.splat(ut, &split, fb as f64);
            let amt = self.bin("multiply", &j, &w, ut, &split);
            let z = self.bin("shift_left", &z, &amt, ut, &split);
            let word = self.reduce(&z, ut, &split, rank - 1, "or", 0);
            let mut out = shape.to_vec();
            out[rank - 2] /= k;
            self.of_bits(&word, to, &out)
        } else {
            let k = fb / tb;
            let uf = uint(fb);
            let mut split = shape.to_vec();
            split.insert(rank - 1, k);
            let dims: Vec<usize> = (0..=rank).filter(|&d| d != rank - 1).collect();
            let z = self.emit(format!(
                "stablehlo.broadcast_in_dim {bits}, dims = [{}] : ({}) -> {}",
                join(&dims),
                ty(uf, shape),
                ty(uf, &split)
            ));
            let j = self.iota(uf, &split, rank - 1);
            let w = self.splat(uf, &split, tb as f64);
            let amt = self.bin("multiply", &j, &w, uf, &split);
            let z = self.bin("shift_right_logical", &z, &amt, uf, &split);
            let z = self.convert(&z, uf, uint(tb), &split);
            let mut out = shape.to_vec();
            out[rank - 2] *= k;
            let z = self.reshape(&z, uint(tb), &split, &out);
            self.of_bits(&z, to, &out)
        }
    }
}
