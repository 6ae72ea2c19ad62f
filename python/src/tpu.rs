//! The TPU kernels of a call: built for its static shapes and options and a TPU generation, as
//! the `tpu_custom_call`s JAX emits (decode, chunked prefill when `chunk_prefill_size` is set, and
//! mixed, chained over the same output and cache as upstream). Built once per configuration.

use crate::request;
use rpa_dsl::ir::verify::verify;
use rpa_dsl::lower::{custom_call, mosaic};
use rpa_dsl::{DType, TpuTarget};
use rpa_kernels::rpa::launch::build_for_shapes;
use rpa_kernels::rpa::validate::{validate_shapes, RpaError};
use rpa_kernels::rpa::RpaCase;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// One kernel launch as a `tpu_custom_call`.
#[derive(Clone, Debug)]
pub struct Launch {
    /// `decode`, `prefill` or `mixed`.
    pub case: &'static str,
    pub kernel_name: String,
    /// The custom call's backend config (JSON with the Mosaic text).
    pub backend_config: String,
    /// Results `(numpy dtype name, shape)`.
    pub results: Vec<(&'static str, Vec<usize>)>,
    /// `(operand, result)` pairs that share a buffer.
    pub aliases: Vec<(usize, usize)>,
}

type Cache = Mutex<HashMap<(String, TpuTarget), Arc<Vec<Launch>>>>;

/// The launches of the call `request` for `target`, built on first use.
pub fn launches(request: &str, target: &str) -> Result<Arc<Vec<Launch>>, String> {
    let target =
        TpuTarget::from_name(target).ok_or(format!("rpa: unknown TPU generation `{target}` (v5e, v6e, v7x)"))?;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (request.to_string(), target);
    if let Some(hit) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(hit.clone());
    }
    let built = Arc::new(build(request, target).map_err(|e| request::describe(&e))?);
    cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, built.clone());
    Ok(built)
}

fn build(request: &str, target: TpuTarget) -> Result<Vec<Launch>, RpaError> {
    let call = request::parse(request)?;
    validate_shapes(&call.shapes, &call.options)?;
    let prefill = call.options.chunk_prefill_size.is_some();
    let cases =
        [(RpaCase::Decode, "decode", true), (RpaCase::Prefill, "prefill", prefill), (RpaCase::Mixed, "mixed", true)];
    let mut launches = Vec::new();
    for (case, name, launched) in cases {
        if !launched {
            continue;
        }
        let kernel = build_for_shapes(&call.shapes, &call.options, case, target)?;
        verify(&kernel, target)?;
        let text = mosaic::lower(&kernel)?;
        let inputs: Vec<_> = kernel.inputs().collect();
        let operands: Vec<_> = kernel.operands().collect();
        let results: Vec<_> = kernel.outputs().collect();
        let aliases = results
            .iter()
            .enumerate()
            .filter_map(|(r, p)| {
                let operand = operands.get(p.alias_of?)?;
                Some((inputs.iter().position(|q| q.name == operand.name)?, r))
            })
            .collect();
        let results = results
            .iter()
            .map(|p| {
                let array = p.array.as_ref().expect("an output is an array");
                (numpy_name(array.dtype), array.static_shape().unwrap_or_default())
            })
            .collect();
        launches.push(Launch {
            case: name,
            kernel_name: kernel.name.clone(),
            backend_config: custom_call::backend_config(&kernel, &text),
            results,
            aliases,
        });
    }
    Ok(launches)
}

/// numpy's name of an rpa dtype.
pub fn numpy_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "float32",
        DType::Bf16 => "bfloat16",
        DType::F16 => "float16",
        DType::F8E4M3 => "float8_e4m3fn",
        DType::F8E5M2 => "float8_e5m2",
        DType::I32 => "int32",
        DType::U32 => "uint32",
        DType::I16 => "int16",
        DType::U16 => "uint16",
        DType::I8 => "int8",
        DType::U8 => "uint8",
        DType::Bool => "bool",
    }
}
