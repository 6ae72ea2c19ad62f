//! A small reader and writer of NumPy `.npy` files (format versions 1–3, little-endian, C order).
//!
//! Written: every [`DType`] in its own width; the types NumPy lacks are written as their raw bits —
//! bf16 as `'<u2'`, fp8 as `'|u1'` — and `summary.json` names each file's dtype. Read: `'<f4'`,
//! `'<f8'`, `'<f2'`, `'<i4'`, `'|i1'`, `'|u1'`, `'<u2'` (16-bit float bits, bf16 unless f16 is asked
//! for), `'|V2'`/`'|V1'` (what `ml_dtypes` arrays save as) and `'|b1'`; a float file converts to a
//! narrower float dtype by rounding to nearest even.

use rpa_dsl::{Array, DType};
use std::path::Path;

/// The element type as stored in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NpyKind {
    F64,
    F32,
    F16,
    I32,
    U32,
    I16,
    I8,
    U8,
    Bool,
    /// 16 raw bits (`'<u2'`, `'|V2'`): bf16 (or f16) bit patterns.
    Bits16,
    /// 8 raw bits (`'|V1'`): fp8 bit patterns.
    Bits8,
}

impl NpyKind {
    fn from_descr(descr: &str) -> Result<NpyKind, String> {
        let (order, code) = descr.split_at(descr.len().min(1));
        if !matches!(order, "<" | "|" | "=") {
            return Err(format!("unsupported dtype '{descr}': only little-endian data is read"));
        }
        Ok(match code {
            "f8" => NpyKind::F64,
            "f4" => NpyKind::F32,
            "f2" => NpyKind::F16,
            "i4" => NpyKind::I32,
            "u4" => NpyKind::U32,
            "i2" => NpyKind::I16,
            "u2" | "V2" => NpyKind::Bits16,
            "i1" => NpyKind::I8,
            "u1" => NpyKind::U8,
            "V1" => NpyKind::Bits8,
            "b1" => NpyKind::Bool,
            _ => return Err(format!("unsupported dtype '{descr}'")),
        })
    }

    /// Bytes per element.
    pub fn bytes(self) -> usize {
        match self {
            NpyKind::F64 => 8,
            NpyKind::F32 | NpyKind::I32 | NpyKind::U32 => 4,
            NpyKind::F16 | NpyKind::I16 | NpyKind::Bits16 => 2,
            NpyKind::I8 | NpyKind::U8 | NpyKind::Bool | NpyKind::Bits8 => 1,
        }
    }

    /// The dtype an array of this kind is read as when nothing else is asked for.
    pub fn natural_dtype(self) -> Option<DType> {
        Some(match self {
            NpyKind::F64 | NpyKind::F32 => DType::F32,
            NpyKind::F16 => DType::F16,
            NpyKind::Bits16 => DType::Bf16,
            NpyKind::I32 => DType::I32,
            NpyKind::U32 => DType::U32,
            NpyKind::I16 => DType::I16,
            NpyKind::I8 => DType::I8,
            NpyKind::U8 => DType::U8,
            NpyKind::Bool => DType::Bool,
            NpyKind::Bits8 => return None,
        })
    }
}

/// The `descr` written for `dtype`.
pub fn descr(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "<f4",
        DType::F16 => "<f2",
        DType::Bf16 | DType::U16 => "<u2",
        DType::F8E4M3 | DType::F8E5M2 | DType::U8 => "|u1",
        DType::I32 => "<i4",
        DType::U32 => "<u4",
        DType::I16 => "<i2",
        DType::I8 => "|i1",
        DType::Bool => "|b1",
    }
}

/// A parsed `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Npy {
    pub kind: NpyKind,
    pub descr: String,
    pub shape: Vec<usize>,
    /// Little-endian element data.
    pub data: Vec<u8>,
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// The bytes of a `.npy` file (format 1.0, or 2.0 when the header needs it).
pub fn encode(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let (version, len_bytes) = if header.len() + 11 < 65535 { (1u8, 2) } else { (2u8, 4) };
    let unpadded = MAGIC.len() + 2 + len_bytes + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(unpadded + 64 + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Parses the bytes of a `.npy` file.
pub fn decode(bytes: &[u8]) -> Result<Npy, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not an .npy file (no \\x93NUMPY magic)".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    let header = bytes.get(start..start + len).ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "the .npy header is not text")?;
    let value_of = |key: &str| -> Result<&str, String> {
        let at = header.find(&format!("'{key}'")).ok_or_else(|| format!("the .npy header has no '{key}'"))?;
        let rest = header[at + key.len() + 2..].trim_start();
        Ok(rest.strip_prefix(':').ok_or_else(|| format!("malformed '{key}' in the .npy header"))?.trim_start())
    };
    let d = value_of("descr")?;
    let descr = d
        .strip_prefix('\'')
        .and_then(|r| r.split('\'').next())
        .ok_or_else(|| format!("malformed descr in the .npy header: {header}"))?
        .to_string();
    let kind = NpyKind::from_descr(&descr)?;
    let fortran = value_of("fortran_order")?.starts_with("True");
    let s = value_of("shape")?;
    let inner = s.strip_prefix('(').and_then(|r| r.split(')').next()).ok_or("malformed shape in the .npy header")?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.trim_end_matches('L').parse::<usize>().map_err(|_| format!("bad dimension '{p}' in the .npy shape")))
        .collect::<Result<Vec<_>, _>>()?;
    if fortran && shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err("Fortran-ordered .npy arrays are not supported (save with np.ascontiguousarray)".into());
    }
    let n: usize = shape.iter().product();
    let data = &bytes[start + len..];
    if data.len() != n * kind.bytes() {
        return Err(format!(
            "{} data bytes for shape {shape:?} of '{descr}', expected {}",
            data.len(),
            n * kind.bytes()
        ));
    }
    Ok(Npy { kind, descr, shape, data: data.to_vec() })
}

/// Reads a `.npy` file.
pub fn read(path: &Path) -> Result<Npy, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `array` (see the module documentation for the dtypes).
pub fn write_array(path: &Path, array: &Array) -> Result<(), String> {
    let bytes = encode(descr(array.dtype()), array.shape(), &array.to_le_bytes());
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes an i32 array.
pub fn write_i32(path: &Path, shape: &[usize], values: &[i32]) -> Result<(), String> {
    write_array(path, &Array::from_i32(shape, values))
}

impl Npy {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn raw(&self, i: usize) -> u64 {
        let w = self.kind.bytes();
        let mut b = [0u8; 8];
        b[..w].copy_from_slice(&self.data[i * w..(i + 1) * w]);
        u64::from_le_bytes(b)
    }

    /// Element `i` as a wide value (raw-bit kinds give their bits).
    fn value(&self, i: usize) -> f64 {
        let r = self.raw(i);
        match self.kind {
            NpyKind::F64 => f64::from_bits(r),
            NpyKind::F32 => f32::from_bits(r as u32) as f64,
            NpyKind::F16 => DType::F16.float_from_bits(r as u32),
            NpyKind::I32 => r as u32 as i32 as f64,
            NpyKind::I16 => r as u16 as i16 as f64,
            NpyKind::I8 => r as u8 as i8 as f64,
            NpyKind::U32 | NpyKind::U8 | NpyKind::Bool | NpyKind::Bits16 | NpyKind::Bits8 => r as f64,
        }
    }

    /// The array as `want` (default: the file's natural dtype). Raw 16-bit data becomes bf16 or f16
    /// bits, raw 8-bit data fp8 (or u8) bits; float data is rounded to a narrower float dtype;
    /// integer data must fit the integer dtype.
    pub fn to_array(&self, want: Option<DType>) -> Result<Array, String> {
        let dtype = match want.or(self.kind.natural_dtype()) {
            Some(d) => d,
            None => return Err(format!("'{}' holds raw 8-bit values: say which fp8 dtype they are", self.descr)),
        };
        let n = self.len();
        let bits_of = |this: &Npy| (0..n).map(|i| this.raw(i) as u32).collect::<Vec<u32>>();
        let mismatch = || format!("cannot read '{}' data as {dtype}", self.descr);
        let bits = match (self.kind, dtype) {
            (NpyKind::Bits16, DType::Bf16 | DType::F16 | DType::U16) => bits_of(self),
            (NpyKind::F16, DType::F16) => bits_of(self),
            (NpyKind::U8 | NpyKind::Bits8, DType::F8E4M3 | DType::F8E5M2 | DType::U8) => bits_of(self),
            (NpyKind::F64 | NpyKind::F32 | NpyKind::F16, d) if d.is_float() => {
                (0..n).map(|i| d.float_to_bits(self.value(i))).collect()
            }
            (k, d)
                if !matches!(k, NpyKind::F64 | NpyKind::F32 | NpyKind::F16 | NpyKind::Bits16 | NpyKind::Bits8)
                    && (d.is_int() || d == DType::Bool) =>
            {
                let (lo, hi) = d.finite_range();
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    let v = self.value(i);
                    if v < lo || v > hi {
                        return Err(format!("value {v} of '{}' data does not fit {d}", self.descr));
                    }
                    out.push(d.int_to_bits(v as i64));
                }
                out
            }
            _ => return Err(mismatch()),
        };
        Ok(Array::from_bits(dtype, &self.shape, bits))
    }

    /// The values as i32 (integer data only).
    pub fn to_i32(&self) -> Result<Vec<i32>, String> {
        Ok(self.to_array(Some(DType::I32))?.to_i64().into_iter().map(|v| v as i32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_round_trips_bit_exactly() {
        for dtype in DType::ALL {
            let values: Vec<f64> = (0..24).map(|i| (i as f64 - 11.0) * 0.375).collect();
            let values: Vec<f64> = if dtype.is_float() { values } else { values.iter().map(|v| v.round()).collect() };
            let a = Array::from_f64(dtype, &[2, 3, 4], &values);
            let bytes = encode(descr(dtype), a.shape(), &a.to_le_bytes());
            let header_end = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!(header_end % 64, 0, "header padded to 64 bytes");
            let npy = decode(&bytes).unwrap();
            assert_eq!(npy.shape, vec![2, 3, 4]);
            let back = npy.to_array(Some(dtype)).unwrap();
            assert_eq!(back, a, "{dtype}");
        }
    }

    #[test]
    fn natural_dtypes_and_conversions() {
        let a = Array::from_f64(DType::F32, &[3], &[1.0, 1.00390625, -2.5]);
        let npy = decode(&encode("<f4", &[3], &a.to_le_bytes())).unwrap();
        assert_eq!(npy.to_array(None).unwrap(), a);
        // f32 data read as bf16 rounds to nearest even.
        assert_eq!(npy.to_array(Some(DType::Bf16)).unwrap().to_f64(), vec![1.0, 1.0, -2.5]);
        let bf = Array::from_f64(DType::Bf16, &[3], &[1.0, 0.5, -3.0]);
        assert_eq!(decode(&encode("<u2", &[3], &bf.to_le_bytes())).unwrap().to_array(None).unwrap(), bf);
        let raw8 = decode(&encode("|u1", &[2], &[0x38, 0x40])).unwrap();
        assert_eq!(raw8.to_array(Some(DType::F8E4M3)).unwrap().to_f64(), vec![1.0, 2.0]);
        let ints = decode(&encode("<i4", &[2, 2], &Array::from_i32(&[2, 2], &[1, -2, 3, 400]).to_le_bytes())).unwrap();
        assert_eq!(ints.to_i32().unwrap(), vec![1, -2, 3, 400]);
        assert!(ints.to_array(Some(DType::I8)).is_err(), "400 does not fit i8");
        assert!(ints.to_array(Some(DType::F32)).is_err(), "integers are not read as floats");
    }

    #[test]
    fn reads_numpy_style_headers() {
        // Header as numpy writes it for a 0-d and a 1-d array.
        let h = "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }";
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&(h.len() as u16 + 1).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.push(b'\n');
        for v in [7i32, 8, 9] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(decode(&b).unwrap().to_i32().unwrap(), vec![7, 8, 9]);
        assert!(decode(&b[..b.len() - 1]).is_err(), "truncated data");
        assert!(decode(b"PK\x03\x04 not npy").is_err());
        let big = encode(">f4", &[1], &[0, 0, 0, 0]);
        assert!(decode(&big).unwrap_err().contains("little-endian"));
    }
}
