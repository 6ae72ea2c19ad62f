//! Calls on the host: the arrays of one call (from XLA's CPU buffers or from numpy) run through
//! rpa's launcher in interpret mode, the reference semantics.

use crate::request;
use rpa_dsl::{Array, DType};
use rpa_kernels::rpa::launch::{self, Backend, RpaOutput};
use rpa_kernels::rpa::reference::RpaInputs;
use std::time::{Duration, Instant};

/// XLA's dtype codes (`XLA_FFI_DataType`) of the dtypes rpa takes.
const DTYPES: [(i32, DType); 11] = [
    (1, DType::Bool),
    (2, DType::I8),
    (3, DType::I16),
    (4, DType::I32),
    (6, DType::U8),
    (7, DType::U16),
    (8, DType::U32),
    (10, DType::F16),
    (11, DType::F32),
    (16, DType::Bf16),
    (19, DType::F8E5M2),
];
const F8E4M3FN: i32 = 20;

/// The rpa dtype of an XLA dtype code.
pub fn dtype_of_code(code: i32) -> Option<DType> {
    if code == F8E4M3FN {
        return Some(DType::F8E4M3);
    }
    DTYPES.iter().find(|&&(c, _)| c == code).map(|&(_, d)| d)
}

/// The XLA dtype code of an rpa dtype.
pub fn code_of_dtype(dtype: DType) -> i32 {
    if dtype == DType::F8E4M3 {
        return F8E4M3FN;
    }
    DTYPES.iter().find(|&&(_, d)| d == dtype).map_or(0, |&(c, _)| c)
}

/// Bytes per element of an XLA dtype code rpa takes.
pub fn ffi_dtype_bytes(code: i32) -> Option<usize> {
    dtype_of_code(code).map(DType::bytes)
}

/// One array of a call: XLA dtype code, dimensions, little-endian bytes.
pub struct FfiArray {
    pub dtype: i32,
    pub dims: Vec<usize>,
    pub bytes: Vec<u8>,
}

/// One call: the request (options) and the eight operands in `ragged_paged_attention`'s order.
pub struct FfiCall<'a> {
    pub request: &'a str,
    pub inputs: Vec<FfiArray>,
    pub num_results: usize,
}

/// Runs a call from the custom call: `(output, kv_cache[, lse])`.
pub fn run_ffi(call: FfiCall) -> Result<Vec<FfiArray>, String> {
    Ok(run(call)?.0)
}

/// Runs a call and also reports how long rpa's launcher took (without the conversions).
pub fn run(call: FfiCall) -> Result<(Vec<FfiArray>, Duration), String> {
    let parsed = request::parse(call.request).map_err(|e| request::describe(&e))?;
    let opts = parsed.options;
    let want = 2 + opts.return_lse as usize;
    if call.inputs.len() != 8 || call.num_results != want {
        return Err(format!(
            "rpa: the custom call has {} operands and {} results; rpa takes 8 and makes {want}",
            call.inputs.len(),
            call.num_results
        ));
    }
    let x = inputs(call.inputs)?;
    let start = Instant::now();
    let RpaOutput { output, kv_cache, lse, .. } =
        launch::run(Backend::Interpret, &x, &opts).map_err(|e| request::describe(&e))?;
    let took = start.elapsed();
    let results = [Some(output), Some(kv_cache), lse].into_iter().flatten().map(|a| FfiArray {
        dtype: code_of_dtype(a.dtype()),
        dims: a.shape().to_vec(),
        bytes: a.to_le_bytes(),
    });
    Ok((results.collect(), took))
}

fn inputs(arrays: Vec<FfiArray>) -> Result<RpaInputs, String> {
    const NAMES: [&str; 8] =
        ["queries", "keys", "values", "kv_cache", "kv_lens", "page_indices", "cu_q_lens", "distribution"];
    let mut it = arrays.into_iter().zip(NAMES);
    let mut array = || {
        let (a, name) = it.next().expect("eight operands");
        let dtype =
            dtype_of_code(a.dtype).ok_or(format!("rpa: `{name}` has an unsupported dtype (XLA code {})", a.dtype))?;
        Ok::<_, String>((name, Array::from_le_bytes(dtype, &a.dims, &a.bytes)))
    };
    let (queries, keys, values, kv_cache) = (array()?.1, array()?.1, array()?.1, array()?.1);
    let mut metadata = || {
        let (name, a) = array()?;
        if a.dtype() != DType::I32 || a.shape().len() != 1 {
            return Err(format!("rpa: `{name}` must be a 1-D int32 array, got {} {:?}", a.dtype(), a.shape()));
        }
        Ok(a.to_i64().into_iter().map(|v| v as i32).collect::<Vec<i32>>())
    };
    let (kv_lens, page_indices, cu_q_lens) = (metadata()?, metadata()?, metadata()?);
    let distribution: [i32; 3] = metadata()?
        .try_into()
        .map_err(|d: Vec<i32>| format!("rpa: `distribution` must have 3 entries, got {}", d.len()))?;
    Ok(RpaInputs { queries, keys, values, kv_cache, kv_lens, page_indices, cu_q_lens, distribution })
}
