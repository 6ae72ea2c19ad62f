//! Host arrays: the operands and results of a kernel launch on any backend.
//!
//! Elements are stored as their bit patterns (one `u32` per element, whatever the dtype), so every
//! dtype, including bf16 and fp8, round-trips exactly and comparisons can be bit-exact.

use crate::dtype::DType;
use std::fmt;

#[derive(Clone, PartialEq)]
pub struct Array {
    dtype: DType,
    shape: Vec<usize>,
    bits: Vec<u32>,
}

impl fmt::Debug for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Array<{}{:?}>", self.dtype, self.shape)
    }
}

impl Array {
    /// An array from raw element bit patterns.
    pub fn from_bits(dtype: DType, shape: &[usize], bits: Vec<u32>) -> Array {
        assert_eq!(shape.iter().product::<usize>(), bits.len(), "element count of {shape:?}");
        Array { dtype, shape: shape.to_vec(), bits }
    }

    /// An array of `dtype` from wide values, rounded (floats) or wrapped (integers) to the dtype.
    pub fn from_f64(dtype: DType, shape: &[usize], values: &[f64]) -> Array {
        let bits = values
            .iter()
            .map(|&v| if dtype.is_float() { dtype.float_to_bits(v) } else { dtype.int_to_bits(v as i64) })
            .collect();
        Array::from_bits(dtype, shape, bits)
    }

    pub fn from_f32(dtype: DType, shape: &[usize], values: &[f32]) -> Array {
        let v: Vec<f64> = values.iter().map(|&x| x as f64).collect();
        Array::from_f64(dtype, shape, &v)
    }

    pub fn from_i64(dtype: DType, shape: &[usize], values: &[i64]) -> Array {
        let bits = values.iter().map(|&v| dtype.int_to_bits(v)).collect();
        Array::from_bits(dtype, shape, bits)
    }

    pub fn from_i32(shape: &[usize], values: &[i32]) -> Array {
        let v: Vec<i64> = values.iter().map(|&x| x as i64).collect();
        Array::from_i64(DType::I32, shape, &v)
    }

    pub fn filled(dtype: DType, shape: &[usize], value: f64) -> Array {
        let n = shape.iter().product();
        Array::from_f64(dtype, shape, &vec![value; n])
    }

    pub fn zeros(dtype: DType, shape: &[usize]) -> Array {
        Array::filled(dtype, shape, 0.0)
    }

    /// An array filled with the poison pattern (NaN / integer minimum).
    pub fn poison(dtype: DType, shape: &[usize]) -> Array {
        let n = shape.iter().product();
        Array::from_bits(dtype, shape, vec![dtype.poison_bits(); n])
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn len(&self) -> usize {
        self.bits.len()
    }
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }
    pub fn bits(&self) -> &[u32] {
        &self.bits
    }
    pub fn bits_mut(&mut self) -> &mut [u32] {
        &mut self.bits
    }
    pub fn into_bits(self) -> Vec<u32> {
        self.bits
    }

    /// Bytes the array occupies on the device.
    pub fn nbytes(&self) -> usize {
        self.bits.len() * self.dtype.bytes()
    }

    /// Element `i` (row-major) as a wide float.
    pub fn get_f64(&self, i: usize) -> f64 {
        let b = self.bits[i];
        if self.dtype.is_float() {
            self.dtype.float_from_bits(b)
        } else {
            self.dtype.int_from_bits(b) as f64
        }
    }

    pub fn set_f64(&mut self, i: usize, v: f64) {
        self.bits[i] =
            if self.dtype.is_float() { self.dtype.float_to_bits(v) } else { self.dtype.int_to_bits(v as i64) };
    }

    pub fn to_f64(&self) -> Vec<f64> {
        (0..self.len()).map(|i| self.get_f64(i)).collect()
    }

    pub fn to_f32(&self) -> Vec<f32> {
        (0..self.len()).map(|i| self.get_f64(i) as f32).collect()
    }

    pub fn to_i64(&self) -> Vec<i64> {
        self.bits.iter().map(|&b| self.dtype.int_from_bits(b)).collect()
    }

    /// Row-major flat index of a multi-index.
    pub fn flat_index(&self, index: &[usize]) -> usize {
        index.iter().zip(&self.shape).fold(0, |acc, (&i, &n)| acc * n + i)
    }

    /// The same elements with another shape (same element count).
    pub fn reshaped(mut self, shape: &[usize]) -> Array {
        assert_eq!(shape.iter().product::<usize>(), self.bits.len(), "reshape {:?} to {shape:?}", self.shape);
        self.shape = shape.to_vec();
        self
    }

    /// Little-endian bytes in the dtype's width (the layout PJRT host buffers use).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let w = self.dtype.bytes();
        let mut out = Vec::with_capacity(self.bits.len() * w);
        for &b in &self.bits {
            out.extend_from_slice(&b.to_le_bytes()[..w]);
        }
        out
    }

    pub fn from_le_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Array {
        let w = dtype.bytes();
        let bits = bytes
            .chunks_exact(w)
            .map(|c| {
                let mut b = [0u8; 4];
                b[..w].copy_from_slice(c);
                u32::from_le_bytes(b)
            })
            .collect();
        Array::from_bits(dtype, shape, bits)
    }

    /// Largest absolute elementwise difference to `other` (NaN if either has a NaN).
    pub fn max_abs_diff(&self, other: &Array) -> f64 {
        assert_eq!(self.shape, other.shape, "shapes differ");
        let mut m = 0.0f64;
        for i in 0..self.len() {
            let d = (self.get_f64(i) - other.get_f64(i)).abs();
            if d.is_nan() {
                return f64::NAN;
            }
            m = m.max(d);
        }
        m
    }

    /// `|a - b| <= atol + rtol·|b|` elementwise (numpy's `allclose`, NaN never close).
    pub fn all_close(&self, expected: &Array, atol: f64, rtol: f64) -> bool {
        self.shape == expected.shape
            && (0..self.len()).all(|i| {
                let (a, b) = (self.get_f64(i), expected.get_f64(i));
                (a - b).abs() <= atol + rtol * b.abs()
            })
    }
}
