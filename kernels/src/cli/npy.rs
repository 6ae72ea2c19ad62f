//! NumPy `.npy` files: the reader and writer live in [`rpa_dsl::tool::npy`] (the kernel tools of
//! any crate read and write them); here are the tests against the files numpy and ml_dtypes wrote
//! (`tests/fixtures/npy`).

pub use rpa_dsl::tool::npy::*;

#[cfg(test)]
mod tests {
    use super::*;
    use rpa_dsl::{Array, DType};
    use std::path::Path;

    #[test]
    fn every_dtype_round_trips_bit_exactly() {
        for dtype in DType::ALL {
            let values: Vec<f64> = (0..24).map(|i| (i as f64 - 11.0) * 0.375).collect();
            let values: Vec<f64> = match dtype {
                DType::Bool => values.iter().map(|&v| (v > 0.0) as u8 as f64).collect(),
                d if d.is_float() => values,
                _ => values.iter().map(|v| v.round()).collect(),
            };
            let a = Array::from_f64(dtype, &[2, 3, 4], &values);
            let bytes = encode(descr(dtype), a.shape(), &a.to_le_bytes());
            let header_end = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!(header_end % 64, 0, "header padded to 64 bytes");
            let npy = decode(&bytes).unwrap();
            assert_eq!(npy.shape, vec![2, 3, 4]);
            assert_eq!(npy.to_array(dtype).unwrap(), a, "{dtype}");
        }
    }

    /// The fixtures `np.save` wrote (see `tests/fixtures/npy/README.md`): `[[1, -2, 0.5], [-0.25, 0,
    /// NaN]]` in the float types, `[[1, -2, 3], [127, -128, 0]]` in the signed and `[[1, 2, 3], [127,
    /// 255, 0]]` in the unsigned integer types, `[[T, F, T], [T, F, F]]`.
    #[test]
    fn reads_and_writes_what_numpy_and_ml_dtypes_write() {
        let floats = [1.0, -2.0, 0.5, -0.25, 0.0, f64::NAN];
        let (ints, uints, bools) =
            ([1.0, -2.0, 3.0, 127.0, -128.0, 0.0], [1.0, 2.0, 3.0, 127.0, 255.0, 0.0], [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        let cases: [(&str, &str, Option<DType>, &[f64]); 14] = [
            ("float64", "<f8", None, &floats),
            ("float32", "<f4", Some(DType::F32), &floats),
            ("float16", "<f2", Some(DType::F16), &floats),
            ("bfloat16", "<V2", Some(DType::Bf16), &floats),
            ("float8_e4m3fn", "<V1", Some(DType::F8E4M3), &floats),
            ("float8_e5m2", "<f1", Some(DType::F8E5M2), &floats),
            ("int64", "<i8", None, &ints),
            ("int32", "<i4", Some(DType::I32), &ints),
            ("int16", "<i2", Some(DType::I16), &ints),
            ("int8", "|i1", Some(DType::I8), &ints),
            ("uint32", "<u4", Some(DType::U32), &uints),
            ("uint16", "<u2", Some(DType::U16), &uints),
            ("uint8", "|u1", Some(DType::U8), &uints),
            ("bool", "|b1", Some(DType::Bool), &bools),
        ];
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/npy");
        for (name, want_descr, dtype, values) in cases {
            let bytes = std::fs::read(dir.join(format!("{name}.npy"))).unwrap();
            let npy = decode(&bytes).unwrap();
            assert_eq!((npy.descr.as_str(), npy.shape.as_slice()), (want_descr, &[2, 3][..]), "{name}");
            assert_eq!(encode(&npy.descr, &npy.shape, &npy.data), bytes, "{name}: the bytes np.save writes");
            let Some(dtype) = dtype else {
                let err = npy.dtype_among(&[DType::F32, DType::I32]).unwrap_err();
                assert!(err.contains(&format!("'{want_descr}'")) && err.contains("expected f32 or i32"), "{err}");
                continue;
            };
            let got = npy.to_array(dtype).unwrap().to_f64();
            let same = got.iter().zip(values).all(|(g, w)| g == w || (g.is_nan() && w.is_nan()));
            assert!(same, "{name}: {got:?}");
        }
    }

    #[test]
    fn headers_are_padded_as_numpy_pads_them() {
        // What numpy 2.4.6 writes for these shapes: 20 spaces of room for the one-digit first
        // dimension, then 64 more when the header is already aligned; a header longer than 65535
        // bytes makes the file version 2.0.
        let shape: Vec<usize> = [1].into_iter().chain([123; 21]).collect();
        let b = encode("|i1", &shape, &[]);
        let text = format!("{{'descr': '|i1', 'fortran_order': False, 'shape': (1{}), }}", ", 123".repeat(21));
        assert_eq!((&b[..10], b.len()), (&b"\x93NUMPY\x01\x00\xf6\x00"[..], 256));
        assert_eq!(std::str::from_utf8(&b[10..]).unwrap(), format!("{text}{}\n", " ".repeat(20 + 64)));
        let b = encode("<f4", &[1; 22000], &[]);
        assert_eq!((&b[..12], b.len()), (&b"\x93NUMPY\x02\x00\x34\x02\x01\x00"[..], 66112));
    }

    #[test]
    fn descrs_without_type_information_take_the_expected_dtype() {
        let cache_dtypes = [DType::F32, DType::Bf16, DType::F8E4M3, DType::F8E5M2, DType::I8];
        let raw8 = decode(&encode("<V1", &[2], &[0x38, 0x40])).unwrap();
        assert!(raw8.dtype_among(&cache_dtypes).unwrap_err().contains("could be fp8e4m3 or fp8e5m2"));
        assert_eq!(raw8.dtype_among(&[DType::F8E4M3]), Ok(DType::F8E4M3));
        assert_eq!(raw8.to_array(DType::F8E4M3).unwrap().to_f64(), vec![1.0, 2.0]);
        assert!(raw8.to_array(DType::I8).unwrap_err().contains("expected int8"), "raw bytes are not int8");
        let raw16 = decode(&encode("<V2", &[1], &[0x80, 0x3f])).unwrap();
        assert_eq!(raw16.dtype_among(&cache_dtypes), Ok(DType::Bf16));
        assert!(raw16.to_array(DType::F16).is_err(), "f16 has its own descr");
        let e5m2 = decode(&encode("<f1", &[1], &[0x3c])).unwrap();
        assert_eq!(e5m2.dtype_among(&cache_dtypes), Ok(DType::F8E5M2));
        let f32s = decode(&encode("<f4", &[1], &1f32.to_le_bytes())).unwrap();
        let err = f32s.to_array(DType::Bf16).unwrap_err();
        assert_eq!(err, "dtype f32 ('<f4'), expected bf16", "no conversion");
        let bools = decode(&encode("|b1", &[2], &[1, 2])).unwrap();
        assert!(bools.to_array(DType::Bool).is_err(), "2 is not a bool");
    }

    #[test]
    fn reads_numpy_style_headers() {
        // A header without the padding numpy adds.
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
        assert!(decode(&encode("|O", &[1], &[0; 8])).unwrap_err().contains("unsupported dtype '|O'"));
        let c8 = decode(&encode("<c8", &[1], &[0; 8])).unwrap();
        assert!(c8.to_array(DType::F32).unwrap_err().contains("complex64 ('<c8')"));
    }
}
