//! Narrow floats (bf16, f16, fp8) in the StableHLO program. Their values are kept as their bits
//! (`ui16`, `ui8`) everywhere; arithmetic widens them to f32 and narrows the f32 result back, both
//! with integer ops only. XLA:CPU therefore never sees a narrow float tensor, so nothing it does
//! with one on some hosts (native AVX512-FP16 arithmetic, contracting `fmul`+`fsub` into one
//! rounding, converters that flush subnormals) can change a result: every op rounds once, to
//! nearest even, exactly as interpret mode does, on every CPU.

use super::{tensor_type, Lowerer};
use crate::dtype::DType;

/// The bit layout of a narrow float dtype.
struct Format {
    width: u32,
    exp_bits: u32,
    man_bits: u32,
    bias: i64,
}

impl Format {
    fn of(dt: DType) -> Format {
        let (width, exp_bits, man_bits, bias) = match dt {
            DType::Bf16 => (16, 8, 7, 127),
            DType::F16 => (16, 5, 10, 15),
            DType::F8E4M3 => (8, 4, 3, 7),
            DType::F8E5M2 => (8, 5, 2, 15),
            _ => unreachable!("{dt} is not a narrow float"),
        };
        Format { width, exp_bits, man_bits, bias }
    }

    /// f32 magnitudes (as bits) from this one up are normal numbers of the format.
    fn min_normal_f32_bits(&self) -> i64 {
        (127 - self.bias + 1) << 23
    }
}

/// Whether `dt` is a float narrower than f32.
pub(super) fn is_narrow_float(dt: DType) -> bool {
    matches!(dt, DType::Bf16 | DType::F16 | DType::F8E4M3 | DType::F8E5M2)
}

/// The element type a value of `dt` has in the program: narrow floats are their bits.
pub(super) fn repr(dt: DType) -> DType {
    if is_narrow_float(dt) {
        dt.same_width_uint()
    } else {
        dt
    }
}

impl Lowerer<'_> {
    /// An argument of `@main` (narrow floats in their own type) as a value of the program.
    pub(super) fn arg_value(&mut self, x: &str, dt: DType, shape: &[usize]) -> String {
        if !is_narrow_float(dt) {
            return x.to_string();
        }
        let (from, to) = (tensor_type(dt, shape), tensor_type(repr(dt), shape));
        self.emit(format!("stablehlo.bitcast_convert {x} : ({from}) -> {to}"))
    }

    /// A value of the program as a result of `@main`.
    pub(super) fn result_value(&mut self, x: &str, dt: DType, shape: &[usize]) -> String {
        if !is_narrow_float(dt) {
            return x.to_string();
        }
        let (from, to) = (tensor_type(repr(dt), shape), tensor_type(dt, shape));
        self.emit(format!("stablehlo.bitcast_convert {x} : ({from}) -> {to}"))
    }

    /// The bits of the narrow float `dt` nearest to the f32 `x` (ties to even), as interpret mode
    /// rounds ([`DType::float_to_bits`]): f16 and bf16 overflow to infinity, fp8 saturates finite
    /// values to its largest finite one (e5m2 keeps infinities), NaN stays NaN.
    pub(super) fn narrow(&mut self, x: &str, dt: DType, shape: &[usize]) -> String {
        let f = Format::of(dt);
        let u = DType::U32;
        let c = |s: &mut Self, v: i64| s.splat(u, shape, v as f64);
        let bits = self.bitcast(x, DType::F32, u, shape);
        let mask = c(self, 0x7fff_ffff);
        let a = self.bin("and", &bits, &mask, u, shape);
        let shift = c(self, 31);
        let sign = self.bin("shift_right_logical", &bits, &shift, u, shape);
        let to_top = c(self, f.width as i64 - 1);
        let sign = self.bin("shift_left", &sign, &to_top, u, shape);

        // Normal in the format: round away the low `drop` mantissa bits, then rebias.
        let drop = 23 - f.man_bits as i64;
        let drop = c(self, drop);
        let rounded = self.round_shift(&a, &drop, shape);
        let rebias = c(self, ((127 - f.bias) << f.man_bits) & 0xffff_ffff);
        let mut value = self.bin("subtract", &rounded, &rebias, u, shape);
        if dt != DType::Bf16 {
            // Subnormal in the format (bf16 shares f32's exponent range: its subnormals are f32's,
            // which the normal path already rounds): the significand shifted by 151 - bias -
            // man_bits - exponent, at most 31 (zero and f32 subnormals then round to 0).
            let man_mask = c(self, 0x7f_ffff);
            let man = self.bin("and", &a, &man_mask, u, shape);
            let implicit = c(self, 0x80_0000);
            let sig = self.bin("or", &man, &implicit, u, shape);
            let e23 = c(self, 23);
            let exp = self.bin("shift_right_logical", &a, &e23, u, shape);
            let top = c(self, 151 - f.bias - f.man_bits as i64);
            let by = self.bin("subtract", &top, &exp, u, shape);
            let by = self.bin("minimum", &by, &shift, u, shape);
            let sub = self.round_shift(&sig, &by, shape);
            let min_normal = c(self, f.min_normal_f32_bits());
            let tiny = self.compare("LT", &a, &min_normal, u, shape);
            value = self.select(&tiny, &sub, &value, shape, u, shape);
            // Past the largest finite value: infinity, or (fp8) saturation at the largest finite.
            let limit = match dt {
                DType::F16 => 0x7c00,
                DType::F8E4M3 => 0x7e,
                _ => 0x7b,
            };
            let limit = c(self, limit);
            value = self.bin("minimum", &value, &limit, u, shape);
            if dt == DType::F8E5M2 {
                // e5m2 keeps infinities.
                let (inf, inf8) = (c(self, 0x7f80_0000), c(self, 0x7c));
                let is_inf = self.compare("EQ", &a, &inf, u, shape);
                value = self.select(&is_inf, &inf8, &value, shape, u, shape);
            }
        }
        let nan = self.nan_bits(&bits, &a, dt, shape);
        let inf = c(self, 0x7f80_0000);
        let is_nan = self.compare("GT", &a, &inf, u, shape);
        let value = self.select(&is_nan, &nan, &value, shape, u, shape);
        let value = self.bin("or", &value, &sign, u, shape);
        self.convert(&value, u, repr(dt), shape)
    }

    /// The f32 value of the narrow float bits `x` of `dt` (exact).
    pub(super) fn widen(&mut self, x: &str, dt: DType, shape: &[usize]) -> String {
        let f = Format::of(dt);
        let u = DType::U32;
        let c = |s: &mut Self, v: i64| s.splat(u, shape, v as f64);
        let h = self.convert(x, repr(dt), u, shape);
        if dt == DType::Bf16 {
            let sh = c(self, 16);
            let bits = self.bin("shift_left", &h, &sh, u, shape);
            return self.bitcast(&bits, u, DType::F32, shape);
        }
        let top = c(self, f.width as i64 - 1);
        let sign = self.bin("shift_right_logical", &h, &top, u, shape);
        let s31 = c(self, 31);
        let sign = self.bin("shift_left", &sign, &s31, u, shape);
        let mb = c(self, f.man_bits as i64);
        let exp = self.bin("shift_right_logical", &h, &mb, u, shape);
        let exp_mask = c(self, (1 << f.exp_bits) - 1);
        let exp = self.bin("and", &exp, &exp_mask, u, shape);
        let man_mask = c(self, (1 << f.man_bits) - 1);
        let man = self.bin("and", &h, &man_mask, u, shape);
        // Normal: rebias the exponent, widen the mantissa.
        let rebias = c(self, 127 - f.bias);
        let e = self.bin("add", &exp, &rebias, u, shape);
        let e23 = c(self, 23);
        let e = self.bin("shift_left", &e, &e23, u, shape);
        let widen_by = c(self, 23 - f.man_bits as i64);
        let m = self.bin("shift_left", &man, &widen_by, u, shape);
        let normal = self.bin("or", &e, &m, u, shape);
        // Subnormal (and zero): mantissa · 2^(1 - bias - man_bits), a normal f32.
        let mf = self.convert(&man, u, DType::F32, shape);
        let unit = self.splat(DType::F32, shape, 2f64.powi((1 - f.bias - f.man_bits as i64) as i32));
        let sub = self.bin("multiply", &mf, &unit, DType::F32, shape);
        let sub = self.bitcast(&sub, DType::F32, u, shape);
        let zero = c(self, 0);
        let is_sub = self.compare("EQ", &exp, &zero, u, shape);
        let value = self.select(&is_sub, &sub, &normal, shape, u, shape);
        let value = self.bin("or", &value, &sign, u, shape);
        let value = self.widen_special(&value, &exp, &man, &sign, dt, shape);
        self.bitcast(&value, u, DType::F32, shape)
    }

    /// Infinities and NaNs of f16 and the fp8 formats, as `half` and `float8` decode them (fp8 NaN
    /// goes through f16's canonical NaN and loses its sign).
    fn widen_special(&mut self, value: &str, exp: &str, man: &str, sign: &str, dt: DType, shape: &[usize]) -> String {
        let u = DType::U32;
        let c = |s: &mut Self, v: i64| s.splat(u, shape, v as f64);
        let zero = c(self, 0);
        match dt {
            DType::F8E4M3 => {
                // No infinities; exponent 15 with mantissa 7 is NaN.
                let (e15, m7) = (c(self, 15), c(self, 7));
                let at_top = self.compare("EQ", exp, &e15, u, shape);
                let full = self.compare("EQ", man, &m7, u, shape);
                let nan = self.bin("and", &at_top, &full, DType::Bool, shape);
                let q = c(self, 0x7fff_e000);
                self.select(&nan, &q, value, shape, u, shape)
            }
            _ => {
                let max_exp = c(self, (1 << Format::of(dt).exp_bits) - 1);
                let at_top = self.compare("EQ", exp, &max_exp, u, shape);
                let inf = c(self, 0x7f80_0000);
                let inf = self.bin("or", &inf, sign, u, shape);
                let is_inf = self.compare("EQ", man, &zero, u, shape);
                let nan = if dt == DType::F16 {
                    let q = c(self, 0x7fc0_0000);
                    let s13 = c(self, 13);
                    let payload = self.bin("shift_left", man, &s13, u, shape);
                    let q = self.bin("or", &q, &payload, u, shape);
                    self.bin("or", &q, sign, u, shape)
                } else {
                    c(self, 0x7fff_e000)
                };
                let special = self.select(&is_inf, &inf, &nan, shape, u, shape);
                self.select(&at_top, &special, value, shape, u, shape)
            }
        }
    }

    /// The NaN bits (before the sign is or-ed in) that `dt` keeps for an f32 NaN with bits `bits`.
    fn nan_bits(&mut self, bits: &str, a: &str, dt: DType, shape: &[usize]) -> String {
        let u = DType::U32;
        let c = |s: &mut Self, v: i64| s.splat(u, shape, v as f64);
        match dt {
            // The high half, quieted.
            DType::Bf16 => {
                let s16 = c(self, 16);
                let hi = self.bin("shift_right_logical", bits, &s16, u, shape);
                let quiet = c(self, 0x40);
                self.bin("or", &hi, &quiet, u, shape)
            }
            // Quiet NaN with the top 10 mantissa bits.
            DType::F16 => {
                let s13 = c(self, 13);
                let man = self.bin("shift_right_logical", a, &s13, u, shape);
                let low = c(self, 0x3ff);
                let man = self.bin("and", &man, &low, u, shape);
                let q = c(self, 0x7e00);
                self.bin("or", &q, &man, u, shape)
            }
            DType::F8E4M3 => c(self, 0x7f),
            // 0x7e with the top two mantissa bits.
            _ => {
                let s21 = c(self, 21);
                let man = self.bin("shift_right_logical", a, &s21, u, shape);
                let three = c(self, 3);
                let man = self.bin("and", &man, &three, u, shape);
                let q = c(self, 0x7e);
                self.bin("or", &q, &man, u, shape)
            }
        }
    }

    /// `x >> by` rounded to nearest, ties to even (u32; `by` in 1..=31).
    fn round_shift(&mut self, x: &str, by: &str, shape: &[usize]) -> String {
        let u = DType::U32;
        let one = self.splat(u, shape, 1.0);
        let kept = self.bin("shift_right_logical", x, by, u, shape);
        let lsb = self.bin("and", &kept, &one, u, shape);
        let by1 = self.bin("subtract", by, &one, u, shape);
        let half = self.bin("shift_left", &one, &by1, u, shape);
        let bias = self.bin("subtract", &half, &one, u, shape);
        let t = self.bin("add", x, &bias, u, shape);
        let t = self.bin("add", &t, &lsb, u, shape);
        self.bin("shift_right_logical", &t, by, u, shape)
    }

    /// The i32/u32 `x` as an f32 rounded to odd: the magnitude keeps its top 24 significant bits,
    /// the last of them set if any bit below was, so that narrowing it rounds once, as interpret
    /// mode does from the exact integer.
    pub(super) fn int_to_f32_odd(&mut self, x: &str, from: DType, shape: &[usize]) -> String {
        let u = DType::U32;
        let c = |s: &mut Self, v: i64| s.splat(u, shape, v as f64);
        let bits = self.bitcast(x, from, u, shape);
        let zero = c(self, 0);
        let (mag, negative) = if from == DType::I32 {
            let iz = self.splat(DType::I32, shape, 0.0);
            let negative = self.compare("LT", x, &iz, DType::I32, shape);
            let neg = self.bin("subtract", &zero, &bits, u, shape);
            (self.select(&negative, &neg, &bits, shape, u, shape), Some(negative))
        } else {
            (bits, None)
        };
        let lz = self.un("count_leading_zeros", &mag, u, shape);
        // Bits below the top 24 significant ones: 8 - leading zeros, if positive.
        let eight = c(self, 8);
        let short = self.compare("LT", &lz, &eight, u, shape);
        let extra = self.bin("subtract", &eight, &lz, u, shape);
        let extra = self.select(&short, &extra, &zero, shape, u, shape);
        let kept = self.bin("shift_right_logical", &mag, &extra, u, shape);
        let back = self.bin("shift_left", &kept, &extra, u, shape);
        let inexact = self.compare("NE", &back, &mag, u, shape);
        let sticky = self.convert(&inexact, DType::Bool, u, shape);
        let kept = self.bin("or", &kept, &sticky, u, shape);
        let mag = self.bin("shift_left", &kept, &extra, u, shape);
        let f = self.convert(&mag, u, DType::F32, shape);
        match negative {
            Some(negative) => {
                let neg = self.un("negate", &f, DType::F32, shape);
                self.select(&negative, &neg, &f, shape, DType::F32, shape)
            }
            None => f,
        }
    }
}
