//! Static and dynamic validation of ragged paged attention inputs. The TPU kernels run without
//! bounds checks, so bad metadata must be caught here, before anything is launched; every error
//! names the sequence and the field.

use super::layout::kv_cache_shape;
use super::reference::{RpaInputs, RpaShapes};
use super::{BlockSizes, RpaCase, RpaOptions};
use std::fmt;

/// Why a call was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum RpaError {
    /// Shapes, dtypes or options that can never work.
    Static(String),
    /// Argument (or option) `arg` has a shape, dtype or value that can never work.
    Argument { arg: &'static str, message: String },
    /// Metadata of sequence `seq` (field `field`) is invalid.
    Sequence { seq: usize, field: &'static str, message: String },
    /// Batch-level metadata (`distribution`, `cu_q_lens` totals) is invalid.
    Batch { field: &'static str, message: String },
    /// The kernel failed to build, verify or run.
    Kernel(rpa_dsl::KernelError),
}

impl fmt::Display for RpaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpaError::Static(m) => write!(f, "invalid ragged paged attention call: {m}"),
            RpaError::Argument { arg, message } => {
                write!(f, "invalid ragged paged attention call: `{arg}`: {message}")
            }
            RpaError::Sequence { seq, field, message } => write!(f, "sequence {seq}: `{field}`: {message}"),
            RpaError::Batch { field, message } => write!(f, "`{field}`: {message}"),
            RpaError::Kernel(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RpaError {}

impl From<rpa_dsl::KernelError> for RpaError {
    fn from(e: rpa_dsl::KernelError) -> Self {
        RpaError::Kernel(e)
    }
}

fn bad(arg: &'static str, message: String) -> Result<(), RpaError> {
    Err(RpaError::Argument { arg, message })
}

/// Checks shapes, dtypes, head counts and options (what the kernels are compiled for).
pub fn validate_static(x: &RpaInputs, opts: &RpaOptions) -> Result<(), RpaError> {
    validate_shapes(&x.shapes(), opts)
}

/// [`validate_static`] on the static part of a call alone; every error names the argument.
pub fn validate_shapes(s: &RpaShapes, opts: &RpaOptions) -> Result<(), RpaError> {
    let ((q_dtype, q), (k_dtype, k), (v_dtype, v)) = (&s.queries, &s.keys, &s.values);
    for (arg, shape) in [("queries", q), ("keys", k), ("values", v)] {
        if shape.len() != 3 {
            return bad(arg, format!("{arg} must be [tokens, heads, head_dim], got {shape:?}"));
        }
    }
    if k != v {
        return bad("values", format!("keys {k:?} and values {v:?} differ in shape"));
    }
    if q[0] != k[0] || q[2] != k[2] {
        return bad("keys", format!("queries {q:?} and keys {k:?} must agree in token count and head_dim"));
    }
    let (hq, hkv, d) = (q[1], k[1], q[2]);
    if hkv == 0 || hq % hkv != 0 {
        return bad("keys", format!("num_q_heads ({hq}) must be a multiple of num_kv_heads ({hkv})"));
    }
    let kv_dtype = s.kv_cache.0;
    if !(kv_dtype.is_float() || kv_dtype == rpa_dsl::DType::I8) {
        return bad("kv_cache", format!("the cache dtype must be a float type or i8, got {kv_dtype}"));
    }
    if *k_dtype != kv_dtype || *v_dtype != kv_dtype {
        return bad(
            if *k_dtype != kv_dtype { "keys" } else { "values" },
            format!(
                "keys ({k_dtype}) and values ({v_dtype}) must already be in the cache dtype ({kv_dtype}): quantize them before the call"
            ),
        );
    }
    if !q_dtype.is_float() {
        return bad("queries", format!("queries must be floating point, got {q_dtype}"));
    }
    let cs = &s.kv_cache.1;
    if cs.len() != 5 {
        return bad(
            "kv_cache",
            format!("kv_cache must be 5-D [pages, page_size, heads/packing, packing, head_dim], got {cs:?}"),
        );
    }
    let want = kv_cache_shape(cs[0], cs[1], hkv, d, kv_dtype);
    if cs[..] != want {
        return bad(
            "kv_cache",
            format!("kv_cache shape {cs:?} does not match the layout for {hkv} kv heads, head_dim {d}, {kv_dtype}: {want:?}"),
        );
    }
    let ps = cs[1];
    if !ps.is_multiple_of(kv_dtype.packing()) {
        return bad(
            "kv_cache",
            format!("page_size {ps} must be a multiple of the {kv_dtype} packing {}", kv_dtype.packing()),
        );
    }
    let n = s.max_num_seqs;
    if n == 0 {
        return bad("kv_lens", "kv_lens must have an entry per sequence slot, got none".into());
    }
    if s.cu_q_lens_len != n + 1 {
        return bad(
            "cu_q_lens",
            format!("cu_q_lens must have max_num_seqs + 1 = {} entries, got {}", n + 1, s.cu_q_lens_len),
        );
    }
    if s.page_indices_len == 0 || !s.page_indices_len.is_multiple_of(n) {
        return bad(
            "page_indices",
            format!(
                "page_indices ({} entries) must hold pages_per_seq entries for each of the {n} sequence slots",
                s.page_indices_len
            ),
        );
    }
    if opts.sliding_window == Some(0) {
        return bad("sliding_window", "sliding_window must be positive".into());
    }
    if opts.soft_cap == Some(0.0) {
        return bad("soft_cap", "soft_cap must not be 0".into());
    }
    if let Some(s) = &opts.attention_sink {
        if s.dtype() != rpa_dsl::DType::F32 || s.shape() != [hq] {
            return bad(
                "attention_sink",
                format!("attention_sink must be f32 [num_q_heads] = f32[{hq}], got {}{:?}", s.dtype(), s.shape()),
            );
        }
        if let Some(h) = (0..hq).find(|&h| !s.get_f64(h).is_finite()) {
            return bad(
                "attention_sink",
                format!("attention_sink of query head {h} is {}, not a finite logit", s.get_f64(h)),
            );
        }
    }
    for (case, b) in [
        (RpaCase::Decode, opts.decode_blocks),
        (RpaCase::Prefill, opts.prefill_blocks),
        (RpaCase::Mixed, opts.mixed_blocks),
    ] {
        if let Some(b) = b {
            validate_block_sizes(case, b, ps)?;
        }
    }
    Ok(())
}

/// The divisibility rules of block sizes (upstream's default heuristic can break them).
pub fn validate_block_sizes(case: RpaCase, b: BlockSizes, page_size: usize) -> Result<(), RpaError> {
    let BlockSizes { bq, bkv, bq_compute, bkv_compute } = b;
    let arg = match case {
        RpaCase::Decode => "decode_blocks",
        RpaCase::Prefill => "prefill_blocks",
        RpaCase::Mixed => "mixed_blocks",
    };
    let bad = |m: String| bad(arg, format!("{case:?} block sizes {b:?}: {m}"));
    if bq == 0 || bkv == 0 || bq_compute == 0 || bkv_compute == 0 {
        return bad("every size must be positive".into());
    }
    if bq % bq_compute != 0 {
        return bad(format!("bq {bq} must be a multiple of bq_compute {bq_compute}"));
    }
    if bkv % bkv_compute != 0 {
        return bad(format!("bkv {bkv} must be a multiple of bkv_compute {bkv_compute}"));
    }
    if bkv % page_size != 0 || bkv_compute % page_size != 0 {
        return bad(format!("bkv and bkv_compute must be multiples of page_size {page_size}"));
    }
    Ok(())
}

/// Checks the runtime metadata: `i <= j <= k <= max_num_seqs`, monotone `cu_q_lens` within the
/// token count, `0 < q_len <= kv_len`, enough pages, page ids in range, bucket q_lens, and that no
/// page written by one sequence is used by another.
pub fn validate_dynamic(x: &RpaInputs, opts: &RpaOptions) -> Result<(), RpaError> {
    let meta = RpaMetadata {
        kv_lens: &x.kv_lens,
        page_indices: &x.page_indices,
        cu_q_lens: &x.cu_q_lens,
        distribution: x.distribution,
    };
    validate_metadata(&x.shapes(), &meta, opts)
}

/// The runtime metadata of a call.
#[derive(Clone, Copy, Debug)]
pub struct RpaMetadata<'a> {
    pub kv_lens: &'a [i32],
    pub page_indices: &'a [i32],
    pub cu_q_lens: &'a [i32],
    pub distribution: [i32; 3],
}

/// [`validate_dynamic`] for metadata `x` of a call whose static part `s` passed [`validate_shapes`].
pub fn validate_metadata(s: &RpaShapes, x: &RpaMetadata, opts: &RpaOptions) -> Result<(), RpaError> {
    validate_shard_metadata(s, x, opts, None)
}

/// [`validate_metadata`] for one context-parallel shard: `keys_after[s]` of sequence `s`'s keys
/// lie past this call's `kv_lens[s]` (see `RpaConfig::keys_after`); `kv_len` may be smaller than
/// `q_len`, even 0.
pub fn validate_shard_metadata(
    s: &RpaShapes,
    x: &RpaMetadata,
    opts: &RpaOptions,
    keys_after: Option<&[i32]>,
) -> Result<(), RpaError> {
    let n = x.kv_lens.len();
    if let Some(after) = keys_after.filter(|a| a.len() != n) {
        return bad("keys_after", format!("keys_after must have max_num_seqs = {n} entries, got {}", after.len()));
    }
    let [i, j, k] = x.distribution;
    if !(0 <= i && i <= j && j <= k && k as usize <= n) {
        return Err(RpaError::Batch {
            field: "distribution",
            message: format!("must satisfy 0 <= i <= j <= k <= max_num_seqs ({n}), got ({i}, {j}, {k})"),
        });
    }
    if i < j && opts.chunk_prefill_size.is_none() {
        return Err(RpaError::Batch {
            field: "distribution",
            message: format!("sequences [{i}, {j}) are in the prefill bucket but chunk_prefill_size is not set"),
        });
    }
    let max_tokens = s.num_tokens() as i64;
    let ps = s.page_size();
    let pps = s.pages_per_seq();
    let total_pages = s.total_pages() as i64;
    if x.cu_q_lens[0] < 0 {
        return Err(RpaError::Batch {
            field: "cu_q_lens",
            message: format!("cu_q_lens[0] = {} is negative", x.cu_q_lens[0]),
        });
    }
    let mut page_users: std::collections::HashMap<i32, Vec<(usize, bool)>> = std::collections::HashMap::new();
    for b in 0..k as usize {
        let seq = |field, message: String| Err(RpaError::Sequence { seq: b, field, message });
        let (start, end) = (x.cu_q_lens[b] as i64, x.cu_q_lens[b + 1] as i64);
        let q_len = end - start;
        if q_len <= 0 {
            return seq(
                "cu_q_lens",
                format!("q_len = cu_q_lens[{}] - cu_q_lens[{b}] = {q_len} must be positive", b + 1),
            );
        }
        if end > max_tokens {
            return seq("cu_q_lens", format!("ends at token {end}, past the {max_tokens} query tokens"));
        }
        let kv_len = x.kv_lens[b] as i64;
        let after = keys_after.map_or(0, |a| a[b] as i64);
        if after < 0 || kv_len < 0 {
            let (field, v) = if after < 0 { ("keys_after", after) } else { ("kv_lens", kv_len) };
            return seq(field, format!("{field} {v} is negative"));
        }
        // A shard may hold none of a sequence's keys (its queries then see nothing here).
        if keys_after.is_none() && kv_len < q_len {
            return seq("kv_lens", format!("kv_len {kv_len} is smaller than q_len {q_len}"));
        }
        let pages = (kv_len as usize).div_ceil(ps);
        if pages > pps {
            return seq(
                "kv_lens",
                format!("kv_len {kv_len} needs {pages} pages of {ps} tokens, but a sequence has {pps}"),
            );
        }
        let bucket_len = if (b as i32) < i {
            Some(1)
        } else if (b as i32) < j {
            opts.chunk_prefill_size.map(|c| c as i64)
        } else {
            None
        };
        if let Some(want) = bucket_len {
            if q_len != want {
                let bucket = if (b as i32) < i { "decode" } else { "prefill" };
                return seq("cu_q_lens", format!("q_len {q_len} in the {bucket} bucket, which takes q_len {want}"));
            }
        }
        let first_written = (kv_len + after - q_len).max(0) as usize / ps;
        for p in 0..pages {
            let id = x.page_indices[b * pps + p];
            if id < 0 || id as i64 >= total_pages {
                return seq("page_indices", format!("page {p} is page id {id}, outside [0, {total_pages})"));
            }
            let written = opts.update_kv_cache && p >= first_written;
            let users = page_users.entry(id).or_default();
            if let Some(&(other, _)) = users.iter().find(|&&(s, w)| s != b && (w || written)) {
                return seq(
                    "page_indices",
                    format!("page id {id} is written by one of sequences {other} and {b} while the other uses it"),
                );
            }
            users.push((b, written));
        }
    }
    for b in 0..k as usize {
        if x.cu_q_lens[b + 1] < x.cu_q_lens[b] {
            return Err(RpaError::Sequence { seq: b, field: "cu_q_lens", message: "is not monotone".into() });
        }
    }
    Ok(())
}
