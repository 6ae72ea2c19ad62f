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

/// An array from a buffer's little-endian bytes (`bytes` holds exactly its elements).
pub fn array_from_le(dtype: DType, dims: &[usize], bytes: &[u8]) -> Array {
    let bits: Vec<u32> = match dtype.bytes() {
        4 => bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        2 => bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as u32).collect(),
        _ => bytes.iter().map(|&b| b as u32).collect(),
    };
    Array::from_bits(dtype, dims, bits)
}

/// Writes an array's elements as little-endian bytes into `out` (exactly their size).
pub fn write_le(array: &Array, out: &mut [u8]) {
    let bits = array.bits();
    match array.dtype().bytes() {
        4 => out.chunks_exact_mut(4).zip(bits).for_each(|(o, &b)| o.copy_from_slice(&b.to_le_bytes())),
        2 => out.chunks_exact_mut(2).zip(bits).for_each(|(o, &b)| o.copy_from_slice(&(b as u16).to_le_bytes())),
        _ => out.iter_mut().zip(bits).for_each(|(o, &b)| *o = b as u8),
    }
}

/// Runs a call in `ragged_paged_attention`'s operand order (the attention sinks ninth, if the
/// request has them), under the options of `request`:
/// `([output, kv_cache, lse?], how long rpa's launcher took)`.
pub fn run(request: &str, inputs: Vec<Array>, num_results: usize) -> Result<(Vec<Array>, Duration), String> {
    let parsed = request::parse(request).map_err(|e| request::describe(&e))?;
    let mut opts = parsed.options;
    let (operands, want) = (8 + opts.attention_sink.is_some() as usize, 2 + opts.return_lse as usize);
    if inputs.len() != operands || num_results != want {
        return Err(format!(
            "rpa: the call has {} operands and {num_results} results; rpa takes {operands} and makes {want}",
            inputs.len()
        ));
    }
    let mut inputs = inputs;
    if opts.attention_sink.is_some() {
        opts.attention_sink = inputs.pop(); // the sinks' values, in place of the request's zeros
    }
    let x = rpa_inputs(inputs)?;
    let start = Instant::now();
    let RpaOutput { output, kv_cache, lse, .. } =
        launch::run(Backend::Interpret, &x, &opts).map_err(|e| request::describe(&e))?;
    let took = start.elapsed();
    Ok(([Some(output), Some(kv_cache), lse].into_iter().flatten().collect(), took))
}

fn rpa_inputs(arrays: Vec<Array>) -> Result<RpaInputs, String> {
    const METADATA: [&str; 4] = ["kv_lens", "page_indices", "cu_q_lens", "distribution"];
    let mut it = arrays.into_iter();
    let mut next = || it.next().expect("eight operands");
    let (queries, keys, values, kv_cache) = (next(), next(), next(), next());
    let mut metadata = Vec::new();
    for name in METADATA {
        let a = next();
        if a.dtype() != DType::I32 || a.shape().len() != 1 {
            return Err(format!("rpa: `{name}` must be a 1-D int32 array, got {} {:?}", a.dtype(), a.shape()));
        }
        metadata.push(a.into_bits().into_iter().map(|b| b as i32).collect::<Vec<i32>>());
    }
    let [kv_lens, page_indices, cu_q_lens, distribution] = <[Vec<i32>; 4]>::try_from(metadata).expect("four");
    let distribution: [i32; 3] = distribution
        .try_into()
        .map_err(|d: Vec<i32>| format!("rpa: `distribution` must have 3 entries, got {}", d.len()))?;
    Ok(RpaInputs { queries, keys, values, kv_cache, kv_lens, page_indices, cu_q_lens, distribution })
}
