//! A call as the Python side describes it: one JSON object with the static part of the call
//! (dtype and shape of each array, metadata lengths) and its options under their tpu-inference
//! names. The same text is the CPU custom call's attribute, so a compiled or exported program
//! carries everything the handler needs.

use rpa_dsl::DType;
use rpa_kernels::rpa::reference::RpaShapes;
use rpa_kernels::rpa::validate::RpaError;
use rpa_kernels::rpa::{BlockSizes, RpaOptions};
use serde::Deserialize;

/// The JSON request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    queries: (String, Vec<usize>),
    keys: (String, Vec<usize>),
    values: (String, Vec<usize>),
    kv_cache: (String, Vec<usize>),
    kv_lens: usize,
    page_indices: usize,
    cu_q_lens: usize,
    /// The attention sinks' dtype and shape (their values are the call's ninth operand).
    #[serde(default)]
    attention_sink: Option<(String, Vec<usize>)>,
    options: Options,
}

/// The keyword options of `rpa_jax.ragged_paged_attention` (integers signed, so that a negative
/// value reaches the validator's wording instead of a parse error).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    causal: bool,
    update_kv_cache: bool,
    sm_scale: f64,
    sliding_window: Option<i64>,
    soft_cap: Option<f64>,
    mask_value: Option<f64>,
    q_scale: Option<f64>,
    k_scale: Option<f64>,
    v_scale: Option<f64>,
    chunk_prefill_size: Option<i64>,
    vmem_limit_bytes: Option<i64>,
    d_block_sizes: Option<[i64; 4]>,
    p_block_sizes: Option<[i64; 4]>,
    m_block_sizes: Option<[i64; 4]>,
    return_lse: bool,
    check_metadata: bool,
}

/// A parsed request: the static part of the call and its options (`attention_sink`, if the call
/// has sinks, holds zeros of their dtype and shape: the values are an operand).
pub struct Call {
    pub shapes: RpaShapes,
    pub options: RpaOptions,
}

fn invalid(arg: &'static str, message: String) -> RpaError {
    RpaError::Argument { arg, message }
}

/// Parses and converts a request; the error names the argument at fault.
pub fn parse(json: &str) -> Result<Call, RpaError> {
    let r: Request = serde_json::from_str(json)
        .map_err(|e| RpaError::Static(format!("malformed request from rpa_jax ({e}): {json}")))?;
    let spec = |arg: &'static str, (name, shape): (String, Vec<usize>)| {
        DType::from_name(&name)
            .map(|d| (d, shape))
            .ok_or_else(|| invalid(arg, format!("{arg} has dtype {name}, which rpa does not support")))
    };
    let shapes = RpaShapes {
        queries: spec("queries", r.queries)?,
        keys: spec("keys", r.keys)?,
        values: spec("values", r.values)?,
        kv_cache: spec("kv_cache", r.kv_cache)?,
        max_num_seqs: r.kv_lens,
        page_indices_len: r.page_indices,
        cu_q_lens_len: r.cu_q_lens,
    };
    let mut options = options(r.options)?;
    if let Some(sink) = r.attention_sink {
        let (dtype, shape) = spec("attention_sink", sink)?;
        options.attention_sink = Some(rpa_dsl::Array::zeros(dtype, &shape));
    }
    Ok(Call { shapes, options })
}

fn options(o: Options) -> Result<RpaOptions, RpaError> {
    let positive = |arg: &'static str, v: Option<i64>| match v {
        Some(n) if n <= 0 => Err(invalid(arg, format!("{arg} must be positive, got {n}"))),
        _ => Ok(v.map(|n| n as usize)),
    };
    let blocks = |v: Option<[i64; 4]>| {
        // Negative sizes become 0, which the validator refuses ("every size must be positive").
        v.map(|b| {
            let [bq, bkv, bq_compute, bkv_compute] = b.map(|n| n.max(0) as usize);
            BlockSizes { bq, bkv, bq_compute, bkv_compute }
        })
    };
    Ok(RpaOptions {
        causal: o.causal,
        update_kv_cache: o.update_kv_cache,
        sm_scale: o.sm_scale,
        // 0 and below: the validator's "sliding_window must be positive".
        sliding_window: o.sliding_window.map(|w| w.max(0) as usize),
        soft_cap: o.soft_cap,
        mask_value: o.mask_value,
        acc_dtype: None,
        q_scale: o.q_scale,
        k_scale: o.k_scale,
        v_scale: o.v_scale,
        chunk_prefill_size: positive("chunk_prefill_size", o.chunk_prefill_size)?,
        decode_blocks: blocks(o.d_block_sizes),
        prefill_blocks: blocks(o.p_block_sizes),
        mixed_blocks: blocks(o.m_block_sizes),
        vmem_limit: positive("vmem_limit_bytes", o.vmem_limit_bytes)?,
        validate: o.check_metadata,
        return_lse: o.return_lse,
        attention_sink: None, // set by `parse`
    })
}

/// The keyword of `rpa_jax.ragged_paged_attention` that a validator argument name stands for.
pub fn python_argument(arg: &'static str) -> &'static str {
    match arg {
        "decode_blocks" => "d_block_sizes",
        "prefill_blocks" => "p_block_sizes",
        "mixed_blocks" => "m_block_sizes",
        other => other,
    }
}

/// An error as Python sees it: the validator's wording, with option names as Python spells them.
pub fn describe(e: &RpaError) -> String {
    match e {
        RpaError::Argument { arg, message } => {
            RpaError::Argument { arg: python_argument(arg), message: message.clone() }.to_string()
        }
        other => other.to_string(),
    }
}
