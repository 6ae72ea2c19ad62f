//! A small reader and writer of NumPy `.npy` files (format versions 1–3, little-endian, C order)
//! that writes the header bytes `np.save` writes.
//!
//! Descrs, as numpy (1.26, 2.4) and ml_dtypes (0.4, 0.7) save them (`tests/fixtures/npy`): f32
//! `'<f4'`, f16 `'<f2'`, i32 `'<i4'`, u32 `'<u4'`, i16 `'<i2'`, int8 `'|i1'`, bool `'|b1'`, and
//! ml_dtypes' `float8_e5m2` `'<f1'`; ml_dtypes' `bfloat16` saves as `'<V2'` and its other fp8 types
//! (`float8_e4m3fn` among them) as `'<V1'`: void, without type information. rpa writes the types
//! NumPy lacks as their bits — bf16 as `'<u2'`, fp8 as `'|u1'` — and `summary.json` names each
//! file's dtype.
//!
//! Reading never converts: a file is read as the dtype its descr names, or, for the descrs without
//! type information (`'<V2'`, `'<u2'`, `'<V1'`, `'|V1'`, `'|u1'`), as a dtype rpa writes as bits of
//! that width (bf16 or u16; fp8e4m3, fp8e5m2 or u8), chosen by what the argument expects
//! ([`Npy::dtype_among`]). Other NumPy types (`'<f8'`, `'<i8'`, …) are read only to be named in errors.

use super::dtype_name;
use crate::{Array, DType};
use std::path::Path;

/// What a descr says about the elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NpyKind {
    /// A dtype rpa has.
    Typed(DType),
    /// Bits without type information.
    Raw { bytes: usize },
    /// A NumPy type rpa has no use for (`'<f8'`, `'<i8'`, `'<c8'`, …).
    Other { bytes: usize },
}

impl NpyKind {
    fn from_descr(descr: &str) -> Result<NpyKind, String> {
        let (order, code) = descr.split_at(descr.len().min(1));
        if !matches!(order, "<" | "|" | "=") {
            return Err(format!("unsupported dtype '{descr}': only little-endian data is read"));
        }
        let (letter, digits) = code.split_at(code.len().min(1));
        let bytes = match digits.parse::<usize>() {
            Ok(b) if b > 0 => b,
            _ => return Err(format!("unsupported dtype '{descr}'")),
        };
        Ok(match (letter, bytes) {
            ("f", 4) => NpyKind::Typed(DType::F32),
            ("f", 2) => NpyKind::Typed(DType::F16),
            ("f", 1) => NpyKind::Typed(DType::F8E5M2),
            ("i", 4) => NpyKind::Typed(DType::I32),
            ("u", 4) => NpyKind::Typed(DType::U32),
            ("i", 2) => NpyKind::Typed(DType::I16),
            ("i", 1) => NpyKind::Typed(DType::I8),
            ("b", 1) => NpyKind::Typed(DType::Bool),
            ("u" | "V", 1 | 2) => NpyKind::Raw { bytes },
            ("f" | "i" | "u" | "c" | "V", _) => NpyKind::Other { bytes },
            _ => return Err(format!("unsupported dtype '{descr}'")),
        })
    }

    /// Bytes per element.
    pub fn bytes(self) -> usize {
        match self {
            NpyKind::Typed(d) => d.bytes(),
            NpyKind::Raw { bytes } | NpyKind::Other { bytes } => bytes,
        }
    }

    /// Whether data of this kind is read as `dtype`: the dtype the descr names, or bits without
    /// type information of a dtype rpa writes as such bits (see [`descr`]).
    pub fn holds(self, dtype: DType) -> bool {
        match self {
            NpyKind::Typed(d) => d == dtype,
            NpyKind::Raw { bytes } => {
                matches!((bytes, dtype), (2, DType::Bf16 | DType::U16) | (1, DType::F8E4M3 | DType::F8E5M2 | DType::U8))
            }
            NpyKind::Other { .. } => false,
        }
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

/// `a, b or c`.
pub fn dtype_list(dtypes: &[DType]) -> String {
    let names: Vec<&str> = dtypes.iter().map(|&d| dtype_name(d)).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
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

/// The first bytes of every `.npy` file.
pub const MAGIC: &[u8] = b"\x93NUMPY";

/// The bytes of a `.npy` file, as `np.save` writes them: format 1.0 (2.0 when the header needs it),
/// room for the first dimension to grow to 21 digits, then 1 to 64 spaces and a newline so that
/// the data starts at a multiple of 64 bytes.
pub fn encode(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    if let Some(first) = dims.first() {
        header.push_str(&" ".repeat(21usize.saturating_sub(first.len())));
    }
    // Header, padding and newline for a header length field of `len_bytes`.
    let padded = |len_bytes: usize| {
        let unpadded = header.len() + 1;
        unpadded + 64 - (MAGIC.len() + 2 + len_bytes + unpadded) % 64
    };
    let (version, len_bytes) = if padded(2) <= u16::MAX as usize { (1u8, 2) } else { (2u8, 4) };
    let total = padded(len_bytes);
    header.push_str(&" ".repeat(total - header.len() - 1));
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + len_bytes + total + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(total as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(total as u32).to_le_bytes());
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
    let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or("the .npy shape is too large")?;
    let data = &bytes[start + len..];
    if Some(data.len()) != n.checked_mul(kind.bytes()) {
        return Err(format!(
            "{} data bytes for shape {shape:?} of '{descr}', expected {n}×{}",
            data.len(),
            kind.bytes()
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

    /// What the file holds, for messages: `f64 ('<f8')`, `'<V2' (bits without type information: bf16 or u16)`.
    pub fn found(&self) -> String {
        let bits = 8 * self.kind.bytes();
        match self.kind {
            NpyKind::Typed(d) => format!("{} ('{}')", dtype_name(d), self.descr),
            NpyKind::Raw { .. } => {
                let held: Vec<DType> = DType::ALL.into_iter().filter(|&d| self.kind.holds(d)).collect();
                format!("'{}' (bits without type information: {})", self.descr, dtype_list(&held))
            }
            NpyKind::Other { .. } => {
                let name = match &self.descr[1..2] {
                    "c" => "complex",
                    "V" => "void",
                    letter => letter,
                };
                format!("{name}{bits} ('{}')", self.descr)
            }
        }
    }

    /// The one dtype of `expected` the data is read as ([`NpyKind::holds`]): an error names what
    /// the file holds and what was expected, or the candidates when more than one could be meant.
    pub fn dtype_among(&self, expected: &[DType]) -> Result<DType, String> {
        let fits: Vec<DType> = expected.iter().copied().filter(|&d| self.kind.holds(d)).collect();
        match fits[..] {
            [d] => Ok(d),
            [] => Err(format!("dtype {}, expected {}", self.found(), dtype_list(expected))),
            _ => Err(format!("dtype {} could be {}: say which", self.found(), dtype_list(&fits))),
        }
    }

    /// The array as `dtype`, bit for bit: an error unless the file holds `dtype` ([`NpyKind::holds`]).
    pub fn to_array(&self, dtype: DType) -> Result<Array, String> {
        let dtype = self.dtype_among(&[dtype])?;
        let w = self.kind.bytes();
        let bits: Vec<u32> =
            self.data.chunks_exact(w).map(|c| c.iter().rev().fold(0u32, |v, &b| v << 8 | b as u32)).collect();
        if dtype == DType::Bool && bits.iter().any(|&b| b > 1) {
            return Err(format!("'{}' data holds a byte that is neither 0 (False) nor 1 (True)", self.descr));
        }
        Ok(Array::from_bits(dtype, &self.shape, bits))
    }

    /// The values as i32 (`'<i4'` data only).
    pub fn to_i32(&self) -> Result<Vec<i32>, String> {
        Ok(self.to_array(DType::I32)?.bits().iter().map(|&b| b as i32).collect())
    }
}
