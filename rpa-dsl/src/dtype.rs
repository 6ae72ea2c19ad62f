//! Element types, their bit widths, TPU sublane packing and exact value conversions.
//!
//! Every value the interpreter holds is an `f64` (floats) or `i64` (integers, bools) that is exactly
//! representable in its dtype: arithmetic is done wide and then rounded with [`DType::round`], which is
//! how the TPU behaves for the narrow float types (compute in f32, round to the storage type).

use half::{bf16, f16};

/// `v` as an f32 rounded to odd: exact values stay; others become the f32 toward zero from `v`
/// with its last mantissa bit set. Rounding that to nearest even at 22 or fewer significant bits
/// gives the same result as rounding `v` itself (no double rounding).
fn f32_rounded_to_odd(v: f64) -> f32 {
    let f = v as f32;
    if f as f64 == v || v.is_nan() {
        return f;
    }
    let toward_zero = if (f as f64).abs() > v.abs() { f32::from_bits(f.to_bits() - 1) } else { f };
    f32::from_bits(toward_zero.to_bits() | 1)
}

/// An element type of a kernel value or buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32,
    Bf16,
    F16,
    /// fp8 with 4 exponent bits, 3 mantissa bits, no infinities (`float8_e4m3fn`).
    F8E4M3,
    /// fp8 with 5 exponent bits, 2 mantissa bits (`float8_e5m2`).
    F8E5M2,
    I32,
    U32,
    I16,
    U16,
    I8,
    U8,
    Bool,
}

pub use DType::*;

impl DType {
    /// All dtypes, for exhaustive tests.
    pub const ALL: [DType; 12] = [F32, Bf16, F16, F8E4M3, F8E5M2, I32, U32, I16, U16, I8, U8, Bool];

    /// Storage width in bits. `Bool` is stored as one byte in host arrays and memory.
    pub const fn bits(self) -> usize {
        match self {
            F32 | I32 | U32 => 32,
            Bf16 | F16 | I16 | U16 => 16,
            F8E4M3 | F8E5M2 | I8 | U8 | Bool => 8,
        }
    }

    pub const fn bytes(self) -> usize {
        self.bits() / 8
    }

    /// How many elements share one 32-bit sublane word on the TPU (1 for 32-bit types).
    pub const fn packing(self) -> usize {
        32 / self.bits()
    }

    pub const fn is_float(self) -> bool {
        matches!(self, F32 | Bf16 | F16 | F8E4M3 | F8E5M2)
    }

    pub const fn is_int(self) -> bool {
        matches!(self, I32 | U32 | I16 | U16 | I8 | U8)
    }

    pub const fn is_signed_int(self) -> bool {
        matches!(self, I32 | I16 | I8)
    }

    pub const fn is_unsigned_int(self) -> bool {
        matches!(self, U32 | U16 | U8)
    }

    /// The Rust-style name used in printed IR and messages.
    pub const fn name(self) -> &'static str {
        match self {
            F32 => "f32",
            Bf16 => "bf16",
            F16 => "f16",
            F8E4M3 => "f8e4m3fn",
            F8E5M2 => "f8e5m2",
            I32 => "i32",
            U32 => "u32",
            I16 => "i16",
            U16 => "u16",
            I8 => "i8",
            U8 => "u8",
            Bool => "bool",
        }
    }

    /// Parses the names printed by [`DType::name`] (and common aliases).
    pub fn from_name(name: &str) -> Option<DType> {
        Some(match name {
            "f32" | "float32" => F32,
            "bf16" | "bfloat16" => Bf16,
            "f16" | "float16" => F16,
            "f8e4m3fn" | "fp8_e4m3fn" | "float8_e4m3fn" | "e4m3" => F8E4M3,
            "f8e5m2" | "fp8_e5m2" | "float8_e5m2" | "e5m2" => F8E5M2,
            "i32" | "int32" => I32,
            "u32" | "uint32" => U32,
            "i16" | "int16" => I16,
            "u16" | "uint16" => U16,
            "i8" | "int8" => I8,
            "u8" | "uint8" => U8,
            "bool" => Bool,
            _ => return None,
        })
    }

    /// The integer dtype of the same width (for bitcasts of packed data).
    pub const fn same_width_uint(self) -> DType {
        match self.bits() {
            32 => U32,
            16 => U16,
            _ => U8,
        }
    }

    /// Smallest and largest finite value (floats) or the integer range.
    pub fn finite_range(self) -> (f64, f64) {
        match self {
            F32 => (f32::MIN as f64, f32::MAX as f64),
            Bf16 => (bf16::MIN.to_f64(), bf16::MAX.to_f64()),
            F16 => (f16::MIN.to_f64(), f16::MAX.to_f64()),
            F8E4M3 => (-448.0, 448.0),
            F8E5M2 => (-57344.0, 57344.0),
            I32 => (i32::MIN as f64, i32::MAX as f64),
            U32 => (0.0, u32::MAX as f64),
            I16 => (i16::MIN as f64, i16::MAX as f64),
            U16 => (0.0, u16::MAX as f64),
            I8 => (i8::MIN as f64, i8::MAX as f64),
            U8 => (0.0, u8::MAX as f64),
            Bool => (0.0, 1.0),
        }
    }

    /// The bit pattern that uninitialised memory holds: NaN for floats, the minimum for integers,
    /// `false` for bools (as in Pallas's TPU interpret mode).
    pub fn poison_bits(self) -> u32 {
        match self {
            F32 => f32::NAN.to_bits(),
            Bf16 => bf16::NAN.to_bits() as u32,
            F16 => f16::NAN.to_bits() as u32,
            F8E4M3 => 0x7f,
            F8E5M2 => 0x7e,
            I32 => i32::MIN as u32,
            I16 => i16::MIN as u16 as u32,
            I8 => i8::MIN as u8 as u32,
            U32 | U16 | U8 | Bool => 0,
        }
    }

    /// Decodes a float element from its bit pattern.
    pub fn float_from_bits(self, bits: u32) -> f64 {
        match self {
            F32 => f32::from_bits(bits) as f64,
            Bf16 => bf16::from_bits(bits as u16).to_f64(),
            F16 => f16::from_bits(bits as u16).to_f64(),
            F8E4M3 => float8::F8E4M3::from_bits(bits as u8).to_f32() as f64,
            F8E5M2 => float8::F8E5M2::from_bits(bits as u8).to_f32() as f64,
            _ => self.int_from_bits(bits) as f64,
        }
    }

    /// Decodes an integer (or bool) element from its bit pattern, sign-extending signed types.
    pub fn int_from_bits(self, bits: u32) -> i64 {
        match self {
            I32 => bits as i32 as i64,
            U32 => bits as i64,
            I16 => bits as u16 as i16 as i64,
            U16 => (bits & 0xffff) as i64,
            I8 => bits as u8 as i8 as i64,
            U8 => (bits & 0xff) as i64,
            Bool => (bits & 0xff != 0) as i64,
            _ => self.float_from_bits(bits) as i64,
        }
    }

    /// Encodes a float value (rounding to nearest even; fp8 saturates finite values past its
    /// largest finite value to it, and e4m3fn, which has no infinities, saturates them too).
    pub fn float_to_bits(self, v: f64) -> u32 {
        match self {
            F32 => (v as f32).to_bits(),
            // `half`'s f64 conversion drops low bits just above a tie (f32 0x3c6e8001 → 0x3c6e, should
            // be 0x3c6f); its f32 one rounds correctly, and an f32 rounded to odd keeps what it needs.
            Bf16 => bf16::from_f32(f32_rounded_to_odd(v)).to_bits() as u32,
            F16 => f16::from_f32(f32_rounded_to_odd(v)).to_bits() as u32,
            F8E4M3 => float8::F8E4M3::from_f64(v).to_bits() as u32,
            F8E5M2 if v.is_infinite() => {
                if v < 0.0 {
                    0xfc
                } else {
                    0x7c
                }
            }
            F8E5M2 => float8::F8E5M2::from_f64(v).to_bits() as u32,
            _ => self.int_to_bits(v as i64),
        }
    }

    /// Encodes an integer value, wrapping it to the dtype's width.
    pub fn int_to_bits(self, v: i64) -> u32 {
        match self {
            I32 | U32 => v as u32,
            I16 | U16 => v as u16 as u32,
            I8 | U8 => v as u8 as u32,
            Bool => (v != 0) as u32,
            _ => self.float_to_bits(v as f64),
        }
    }

    /// Rounds a wide float to this (float) dtype, exactly as storing and reloading it would.
    pub fn round(self, v: f64) -> f64 {
        match self {
            F32 => v as f32 as f64,
            _ if self.is_float() => self.float_from_bits(self.float_to_bits(v)),
            _ => v,
        }
    }

    /// Wraps a wide integer to this (integer) dtype.
    pub fn wrap(self, v: i64) -> i64 {
        self.int_from_bits(self.int_to_bits(v))
    }

    /// The MLIR element type as Mosaic and StableHLO print it (integers are signless).
    pub const fn mlir(self) -> &'static str {
        match self {
            F32 => "f32",
            Bf16 => "bf16",
            F16 => "f16",
            F8E4M3 => "f8E4M3FN",
            F8E5M2 => "f8E5M2",
            I32 | U32 => "i32",
            I16 | U16 => "i16",
            I8 | U8 => "i8",
            Bool => "i1",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_dtype_through_bits() {
        for dt in DType::ALL {
            let v = if dt.is_float() {
                1.5
            } else if dt == Bool {
                1.0
            } else {
                3.0
            };
            let bits = dt.float_to_bits(v);
            assert_eq!(dt.float_from_bits(bits), v, "{dt}");
        }
    }

    #[test]
    fn narrow_floats_round_to_nearest_even() {
        // 1 + 2^-8 lies exactly between two bf16 values; ties go to the even mantissa (1.0).
        assert_eq!(Bf16.round(1.0 + 2f64.powi(-8)), 1.0);
        assert_eq!(Bf16.round(1.0 + 3.0 * 2f64.powi(-8)), 1.0 + 2f64.powi(-6));
        assert_eq!(F8E4M3.round(1000.0), 448.0);
        assert!(F32.float_from_bits(F32.poison_bits()).is_nan());
        assert!(F8E4M3.float_from_bits(F8E4M3.poison_bits()).is_nan());
    }

    #[test]
    fn bf16_rounds_f32_values_just_above_a_tie_up() {
        let v = f32::from_bits(0x3c6e_8001) as f64;
        assert_eq!(Bf16.float_to_bits(v), 0x3c6f);
        assert_eq!(Bf16.float_to_bits(f32::from_bits(0x3c6e_8000) as f64), 0x3c6e);
    }

    /// The nearest value of `dt` to `v` (ties to the even bit pattern; past the largest finite value
    /// by half a step or more, infinity), by search over every value of the format.
    fn nearest(dt: DType, grid: &[(f64, u32)], v: f64) -> f64 {
        let i = grid.partition_point(|&(g, _)| g < v);
        let (hi, lo) = (grid.get(i).copied(), i.checked_sub(1).map(|j| grid[j]));
        match (lo, hi) {
            (_, Some((g, _))) if g == v => g,
            (Some((l, lb)), Some((h, hb))) => {
                let mid = (l + h) / 2.0;
                if v < mid || (v == mid && lb % 2 == 0) {
                    l
                } else if v > mid || hb % 2 == 0 {
                    h
                } else {
                    l
                }
            }
            (Some((l, _)), None) => {
                let step = l - dt.float_from_bits(dt.float_to_bits(l) - 1);
                if v >= l + step / 2.0 {
                    f64::INFINITY
                } else {
                    l
                }
            }
            _ => unreachable!("below the most negative finite value"),
        }
    }

    #[test]
    fn f64_values_round_once_to_bf16_and_f16() {
        // Values just off the midpoints between neighbours, by less than an f32 ulp: rounding them
        // to f32 first would land on the midpoint and break the tie the wrong way.
        for dt in [Bf16, F16] {
            let mut grid: Vec<(f64, u32)> = (0..1u32 << 16)
                .map(|b| (dt.float_from_bits(b), b))
                .filter(|(v, _)| v.is_finite() && *v >= 0.0)
                .collect();
            grid.sort_by(|a, b| a.0.total_cmp(&b.0));
            grid.dedup_by(|a, b| a.0 == b.0);
            for w in grid.windows(2).step_by(7) {
                let mid = (w[0].0 + w[1].0) / 2.0;
                for v in [mid, mid * (1.0 + 1e-12), mid * (1.0 - 1e-12), w[0].0 * (1.0 + 1e-13)] {
                    let want = nearest(dt, &grid, v);
                    assert_eq!(dt.round(v), want, "{dt} {v:e}");
                    assert_eq!(dt.round(-v), -want, "{dt} {:e}", -v);
                }
            }
        }
    }

    #[test]
    fn integers_wrap_and_sign_extend() {
        assert_eq!(I8.wrap(200), -56);
        assert_eq!(U16.wrap(-1), 65535);
        assert_eq!(I32.int_from_bits(I32.poison_bits()), i32::MIN as i64);
        assert_eq!(DType::from_name("bfloat16"), Some(Bf16));
    }
}
