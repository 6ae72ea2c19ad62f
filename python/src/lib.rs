//! `rpa_jax._rpa`: the Rust side of the `rpa_jax` package. The Python side describes a call as a
//! JSON request (see [`request`]); this module validates it, builds its TPU kernels, runs it in
//! interpret mode, and hands XLA the CPU custom call's handler. Errors are Python `ValueError`s
//! with the validator's wording; a panic comes back as a `RuntimeError`, never as a crash.

mod ffi;
mod host;
mod request;
mod tpu;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rpa_kernels::rpa::layout::kv_cache_shape as cache_shape;
use rpa_kernels::rpa::validate::{validate_metadata, validate_shapes, RpaMetadata};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, turning its error into a `ValueError` and a panic into a `RuntimeError`.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(message)) => Err(PyValueError::new_err(message)),
        Err(_) => Err(PyRuntimeError::new_err("rpa: internal error (a bug; please report it)")),
    }
}

fn parse(request: &str) -> Result<request::Call, String> {
    let call = request::parse(request).map_err(|e| request::describe(&e))?;
    validate_shapes(&call.shapes, &call.options).map_err(|e| request::describe(&e))?;
    Ok(call)
}

/// Checks the static part of a call (shapes, dtypes, head counts, options).
#[pyfunction]
fn check(request: &str) -> PyResult<()> {
    guarded(|| parse(request).map(drop))
}

/// Checks a call's metadata (host arrays, as flat int32 lists) against its static part.
#[pyfunction]
fn validate(
    request: &str,
    kv_lens: Vec<i32>,
    page_indices: Vec<i32>,
    cu_q_lens: Vec<i32>,
    distribution: [i32; 3],
) -> PyResult<()> {
    guarded(|| {
        let call = parse(request)?;
        let meta = RpaMetadata { kv_lens: &kv_lens, page_indices: &page_indices, cu_q_lens: &cu_q_lens, distribution };
        validate_metadata(&call.shapes, &meta, &call.options).map_err(|e| request::describe(&e))
    })
}

/// The TPU launches of a call for a generation (`v5e`, `v6e`, `v7x`): `(case, kernel name,
/// backend config, results as (dtype, shape), aliases as (operand, result))` each.
#[pyfunction]
fn tpu_launches(
    request: &str,
    target: &str,
) -> PyResult<Vec<(&'static str, String, String, Vec<(&'static str, Vec<usize>)>, Vec<(usize, usize)>)>> {
    guarded(|| {
        let launches = tpu::launches(request, target)?;
        Ok(launches
            .iter()
            .map(|l| (l.case, l.kernel_name.clone(), l.backend_config.clone(), l.results.clone(), l.aliases.clone()))
            .collect())
    })
}

/// Runs a call in interpret mode on host arrays `(numpy dtype name, shape, bytes)` in
/// `ragged_paged_attention`'s operand order: `([output, kv_cache, lse?] as bytes, seconds the
/// launcher took)`. The GIL is released meanwhile.
#[pyfunction]
fn interpret<'py>(
    py: Python<'py>,
    request: &str,
    arrays: Vec<(String, Vec<usize>, Vec<u8>)>,
    num_results: usize,
) -> PyResult<(Vec<Bound<'py, PyBytes>>, f64)> {
    let (results, took) = py.detach(|| {
        guarded(|| {
            let mut inputs = Vec::new();
            for (name, dims, bytes) in arrays {
                let dtype = rpa_dsl::DType::from_name(&name).ok_or(format!("rpa: unsupported dtype {name}"))?;
                if bytes.len() != dims.iter().product::<usize>() * dtype.bytes() {
                    return Err(format!("rpa: {} bytes do not hold a {name} array of shape {dims:?}", bytes.len()));
                }
                inputs.push(host::array_from_le(dtype, &dims, &bytes));
            }
            host::run(request, inputs, num_results)
        })
    })?;
    let bytes = |a: &rpa_dsl::Array| {
        PyBytes::new_with(py, a.nbytes(), |out| {
            host::write_le(a, out);
            Ok(())
        })
    };
    Ok((results.iter().map(bytes).collect::<PyResult<_>>()?, took.as_secs_f64()))
}

/// The cache shape `[pages, page_size, cdiv(2·Hkv, packing), packing, align(D, 128)]`.
#[pyfunction]
fn kv_cache_shape(
    total_num_pages: usize,
    page_size: usize,
    num_kv_heads: usize,
    head_dim: usize,
    dtype: &str,
) -> PyResult<[usize; 5]> {
    let dtype = rpa_dsl::DType::from_name(dtype)
        .ok_or_else(|| PyValueError::new_err(format!("kv_cache dtype {dtype} is not supported by rpa")))?;
    Ok(cache_shape(total_num_pages, page_size, num_kv_heads, head_dim, dtype))
}

/// The CPU custom call's handler, as the PyCapsule `jax.ffi.register_ffi_target` takes.
#[pyfunction]
fn cpu_handler(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    ffi::handler_capsule(py)
}

#[pymodule]
fn _rpa(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(tpu_launches, m)?)?;
    m.add_function(wrap_pyfunction!(interpret, m)?)?;
    m.add_function(wrap_pyfunction!(kv_cache_shape, m)?)?;
    m.add_function(wrap_pyfunction!(cpu_handler, m)?)?;
    Ok(())
}
