//! The dense reference as one StableHLO program, run on XLA:CPU: ragged paged attention written
//! the way a plain JAX implementation would be, with no kernel. It writes the new K/V rows into
//! the cache (a scatter by slot), gathers every sequence's pages into a dense `[seqs, max_kv]` K and
//! V (page-table gather), gathers the queries into a padded `[seqs, max_q]` batch, and computes
//! masked softmax attention for every (sequence, query) pair with two batched matmuls; each token
//! then takes its row back. Everything is computed in f32 (bf16 inputs are widened).
//!
//! It computes what [`super::reference`] computes (the output, and the updated cache bit for bit)
//! for float caches without q quantization; its cost is that of the padded batch,
//! `seqs · max_q · max_kv`, whatever the sequence lengths.
//!
//! ```no_run
//! # use rpa_kernels::rpa::{dense, testing, RpaOptions};
//! # use rpa_dsl::DType;
//! let x = testing::make_batch(&testing::BatchSpec::new(&[(5, 18), (1, 40)], (4, 2), 128, 16, DType::F32));
//! let (out, cache) = dense::dense_attention(&x, &RpaOptions::default()).unwrap();
//! ```

use super::reference::RpaInputs;
use super::validate::{validate_dynamic, validate_static, RpaError};
use super::RpaOptions;
use rpa_dsl::lower::mlir::{join, Text};
use rpa_dsl::lower::stablehlo::tensor_type;
use rpa_dsl::{Array, DType};

/// The dense program of a batch: its module text and the static padded query length it was
/// specialised on (the longest `q_len`).
#[derive(Clone, Debug)]
pub struct DenseProgram {
    pub mlir: String,
    pub max_q: usize,
}

/// The static sizes of a batch.
#[derive(Clone, Copy, Debug)]
struct Dims {
    tokens: usize,
    hq: usize,
    hkv: usize,
    d: usize,
    pages: usize,
    page_size: usize,
    /// Cache rows per token slot: `cdiv(2·Hkv, packing) · packing` combined heads of `dp` lanes.
    combined: usize,
    dp: usize,
    seqs: usize,
    pps: usize,
    max_q: usize,
    max_kv: usize,
}

/// Emits a StableHLO module: SSA names, one op a line.
struct Emitter {
    text: Text,
}

impl Emitter {
    fn emit(&mut self, rhs: String) -> String {
        self.text.emit(rhs)
    }

    fn iconst(&mut self, v: i64, shape: &[usize]) -> String {
        self.emit(format!("stablehlo.constant dense<{v}> : {}", tensor_type(DType::I32, shape)))
    }

    fn fconst(&mut self, v: f64, shape: &[usize]) -> String {
        let bits = (v as f32).to_bits();
        self.emit(format!("stablehlo.constant dense<0x{bits:08X}> : {}", tensor_type(DType::F32, shape)))
    }

    fn bin(&mut self, op: &str, a: &str, b: &str, dt: DType, shape: &[usize]) -> String {
        self.emit(format!("stablehlo.{op} {a}, {b} : {}", tensor_type(dt, shape)))
    }

    fn un(&mut self, op: &str, a: &str, dt: DType, shape: &[usize]) -> String {
        self.emit(format!("stablehlo.{op} {a} : {}", tensor_type(dt, shape)))
    }

    fn cmp(&mut self, dir: &str, a: &str, b: &str, dt: DType, shape: &[usize]) -> String {
        let kind = if dt.is_float() { "FLOAT" } else { "SIGNED" };
        let t = tensor_type(dt, shape);
        self.emit(format!(
            "stablehlo.compare {dir}, {a}, {b}, {kind} : ({t}, {t}) -> {}",
            tensor_type(DType::Bool, shape)
        ))
    }

    fn select(&mut self, p: &str, a: &str, b: &str, dt: DType, shape: &[usize]) -> String {
        let t = tensor_type(dt, shape);
        self.emit(format!("stablehlo.select {p}, {a}, {b} : ({}, {t}, {t}) -> {t}", tensor_type(DType::Bool, shape)))
    }

    /// `x` (of `from`) broadcast to `to`, its dims going to `dims`.
    fn bcast(&mut self, x: &str, dt: DType, from: &[usize], to: &[usize], dims: &[usize]) -> String {
        if from == to {
            return x.to_string();
        }
        self.emit(format!(
            "stablehlo.broadcast_in_dim {x}, dims = [{}] : ({}) -> {}",
            join(dims),
            tensor_type(dt, from),
            tensor_type(dt, to)
        ))
    }

    fn reshape(&mut self, x: &str, dt: DType, from: &[usize], to: &[usize]) -> String {
        if from == to {
            return x.to_string();
        }
        self.emit(format!("stablehlo.reshape {x} : ({}) -> {}", tensor_type(dt, from), tensor_type(dt, to)))
    }

    fn convert(&mut self, x: &str, from: DType, to: DType, shape: &[usize]) -> String {
        if from == to {
            return x.to_string();
        }
        self.emit(format!("stablehlo.convert {x} : ({}) -> {}", tensor_type(from, shape), tensor_type(to, shape)))
    }

    fn iota(&mut self, shape: &[usize], dim: usize) -> String {
        self.emit(format!("stablehlo.iota dim = {dim} : {}", tensor_type(DType::I32, shape)))
    }

    fn slice(
        &mut self,
        x: &str,
        dt: DType,
        shape: &[usize],
        start: &[usize],
        limit: &[usize],
        strides: &[usize],
    ) -> String {
        let out: Vec<usize> = (0..shape.len()).map(|i| (limit[i] - start[i]).div_ceil(strides[i])).collect();
        self.emit(format!(
            "\"stablehlo.slice\"({x}) {{start_indices = array<i64: {}>, limit_indices = array<i64: {}>, \
             strides = array<i64: {}>}} : ({}) -> {}",
            join(start),
            join(limit),
            join(strides),
            tensor_type(dt, shape),
            tensor_type(dt, &out)
        ))
    }

    fn transpose(&mut self, x: &str, dt: DType, shape: &[usize], perm: &[usize]) -> String {
        let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        self.emit(format!(
            "stablehlo.transpose {x}, dims = [{}] : ({}) -> {}",
            join(perm),
            tensor_type(dt, shape),
            tensor_type(dt, &out)
        ))
    }

    /// `x[idx]` along dim 0 for i32 indices `idx` of shape `ishape`: `ishape ++ shape[1..]` (indices
    /// out of range are clamped).
    fn take(&mut self, x: &str, dt: DType, shape: &[usize], idx: &str, ishape: &[usize]) -> String {
        let r = ishape.len();
        let offset_dims: Vec<usize> = (r..r + shape.len() - 1).collect();
        let mut sizes = vec![1];
        sizes.extend_from_slice(&shape[1..]);
        let mut out = ishape.to_vec();
        out.extend_from_slice(&shape[1..]);
        self.emit(format!(
            "\"stablehlo.gather\"({x}, {idx}) {{dimension_numbers = #stablehlo.gather<offset_dims = [{}], \
             collapsed_slice_dims = [0], start_index_map = [0], index_vector_dim = {r}>, \
             slice_sizes = array<i64: {}>, indices_are_sorted = false}} : ({}, {}) -> {}",
            join(&offset_dims),
            join(&sizes),
            tensor_type(dt, shape),
            tensor_type(DType::I32, ishape),
            tensor_type(dt, &out)
        ))
    }

    /// Reduces dim `axis` of the f32 `x` with `op`.
    fn reduce(&mut self, x: &str, shape: &[usize], axis: usize, op: &str, init: f64) -> String {
        let init = self.fconst(init, &[]);
        let out: Vec<usize> = shape.iter().enumerate().filter(|&(d, _)| d != axis).map(|(_, &n)| n).collect();
        let (res, a, b) = (self.text.fresh(), self.text.fresh(), self.text.fresh());
        let st = tensor_type(DType::F32, &[]);
        self.text.line(&format!("{res} = \"stablehlo.reduce\"({x}, {init}) ({{"));
        self.text.line(&format!("^bb0({a}: {st}, {b}: {st}):"));
        self.text.enter();
        let c = self.text.emit(format!("stablehlo.{op} {a}, {b} : {st}"));
        self.text.line(&format!("stablehlo.return {c} : {st}"));
        self.text.leave();
        self.text.line(&format!(
            "}}) {{dimensions = array<i64: {axis}>}} : ({}, {st}) -> {}",
            tensor_type(DType::F32, shape),
            tensor_type(DType::F32, &out)
        ));
        res
    }

    /// `dot_general` in f32 at full precision.
    fn dot(&mut self, a: &str, ashape: &[usize], b: &str, bshape: &[usize], dims: DotDims, out: &[usize]) -> String {
        self.emit(format!(
            "\"stablehlo.dot_general\"({a}, {b}) {{dot_dimension_numbers = #stablehlo.dot<lhs_batching_dimensions = [{}], \
             rhs_batching_dimensions = [{}], lhs_contracting_dimensions = [{}], rhs_contracting_dimensions = [{}]>, \
             precision_config = [#stablehlo<precision HIGHEST>, #stablehlo<precision HIGHEST>]}} : ({}, {}) -> {}",
            join(&dims.lhs_batch),
            join(&dims.rhs_batch),
            join(&dims.lhs_contract),
            join(&dims.rhs_contract),
            tensor_type(DType::F32, ashape),
            tensor_type(DType::F32, bshape),
            tensor_type(DType::F32, out)
        ))
    }
}

struct DotDims {
    lhs_batch: Vec<usize>,
    rhs_batch: Vec<usize>,
    lhs_contract: Vec<usize>,
    rhs_contract: Vec<usize>,
}

/// The static padded query length of a batch: its longest `q_len` (at least 1).
pub fn padded_q_len(x: &RpaInputs) -> usize {
    let n = x.distribution[2].max(0) as usize;
    (0..n).map(|b| (x.cu_q_lens[b + 1] - x.cu_q_lens[b]).max(0) as usize).max().unwrap_or(0).max(1)
}

/// The dense program for `x` (its shapes and padded query length) and `opts`.
pub fn dense_program(x: &RpaInputs, opts: &RpaOptions) -> Result<DenseProgram, RpaError> {
    validate_static(x, opts)?;
    let kv_dtype = x.kv_cache.dtype();
    if !kv_dtype.is_float() || opts.q_scale.is_some() {
        return Err(RpaError::Static(
            "the dense reference supports float caches without q quantization (no q_scale)".into(),
        ));
    }
    let cs = x.cache_shape();
    let dims = Dims {
        tokens: x.queries.shape()[0],
        hq: x.num_q_heads(),
        hkv: x.num_kv_heads(),
        d: x.head_dim(),
        pages: cs[0],
        page_size: cs[1],
        combined: cs[2] * cs[3],
        dp: cs[4],
        seqs: x.max_num_seqs(),
        pps: x.pages_per_seq(),
        max_q: padded_q_len(x),
        max_kv: x.pages_per_seq() * cs[1],
    };
    let mlir = emit_module(&dims, x.queries.dtype(), kv_dtype, opts);
    Ok(DenseProgram { mlir, max_q: dims.max_q })
}

/// The arguments of the dense program's `@main`, in order.
pub fn dense_inputs(x: &RpaInputs) -> Vec<Array> {
    let ints = |v: &[i32]| Array::from_i32(&[v.len()], v);
    vec![
        x.queries.clone(),
        x.keys.clone(),
        x.values.clone(),
        x.kv_cache.clone(),
        ints(&x.kv_lens),
        ints(&x.page_indices),
        ints(&x.cu_q_lens),
        ints(&x.distribution),
    ]
}

/// Runs the dense reference on XLA:CPU (compiled once per program text): `(output [T, Hq, D] in
/// the query dtype, updated cache)`, as [`super::reference::ragged_paged_attention`] returns them.
pub fn dense_attention(x: &RpaInputs, opts: &RpaOptions) -> Result<(Array, Array), RpaError> {
    let program = dense_program(x, opts)?;
    if opts.validate {
        validate_dynamic(x, opts)?;
    }
    run(&program, x)
}

/// Runs a program of [`dense_program`] on the inputs it was built for.
pub fn run(program: &DenseProgram, x: &RpaInputs) -> Result<(Array, Array), RpaError> {
    let outs = rpa_dsl::cpu::run_module(&program.mlir, &dense_inputs(x))
        .map_err(|e| RpaError::Static(format!("dense reference on XLA:CPU: {e}")))?;
    let mut outs = outs.into_iter();
    match (outs.next(), outs.next()) {
        (Some(o), Some(c)) => Ok((o, c)),
        _ => Err(RpaError::Static("dense reference: expected two results".into())),
    }
}

fn emit_module(m: &Dims, q_dtype: DType, kv_dtype: DType, opts: &RpaOptions) -> String {
    let (i32t, f32t, b1) = (DType::I32, DType::F32, DType::Bool);
    let Dims { tokens: t, hq, hkv, d, pages, page_size: ps, combined: c, dp, seqs: s, pps, max_q, max_kv } = *m;
    let g = hq / hkv;
    let row = c * dp;
    let cache_shape = [pages, ps, c / kv_dtype.packing(), kv_dtype.packing(), dp];
    let mut e = Emitter { text: Text::new("v") };
    e.text.line("module @rpa_dense_reference {");
    e.text.enter();
    let args = [
        format!("%q: {}", tensor_type(q_dtype, &[t, hq, d])),
        format!("%k: {}", tensor_type(kv_dtype, &[t, hkv, d])),
        format!("%v: {}", tensor_type(kv_dtype, &[t, hkv, d])),
        format!("%cache: {} {{tf.aliasing_output = 1 : i32}}", tensor_type(kv_dtype, &cache_shape)),
        format!("%kv_lens: {}", tensor_type(i32t, &[s])),
        format!("%page_indices: {}", tensor_type(i32t, &[s * pps])),
        format!("%cu_q_lens: {}", tensor_type(i32t, &[s + 1])),
        format!("%distribution: {}", tensor_type(i32t, &[3])),
    ];
    e.text.line(&format!(
        "func.func public @main({}) -> ({}, {}) {{",
        args.join(", "),
        tensor_type(q_dtype, &[t, hq, d]),
        tensor_type(kv_dtype, &cache_shape)
    ));
    e.text.enter();

    // Per-sequence metadata: sequences past distribution[2] get no tokens and no keys.
    let num_seqs = e.slice("%distribution", i32t, &[3], &[2], &[3], &[1]);
    let num_seqs = e.reshape(&num_seqs, i32t, &[1], &[]);
    let seq_iota = e.iota(&[s], 0);
    let ns = e.bcast(&num_seqs, i32t, &[], &[s], &[]);
    let live = e.cmp("LT", &seq_iota, &ns, i32t, &[s]);
    let cu_lo = e.slice("%cu_q_lens", i32t, &[s + 1], &[0], &[s], &[1]);
    let cu_hi = e.slice("%cu_q_lens", i32t, &[s + 1], &[1], &[s + 1], &[1]);
    let zero_s = e.iconst(0, &[s]);
    let q_len = e.bin("subtract", &cu_hi, &cu_lo, i32t, &[s]);
    let q_len = e.select(&live, &q_len, &zero_s, i32t, &[s]);
    let kv_len = e.select(&live, "%kv_lens", &zero_s, i32t, &[s]);
    // Position of a sequence's first new token.
    let cached = e.bin("subtract", &kv_len, &q_len, i32t, &[s]);

    // Token -> (sequence, index in it): the number of live sequences that end at or before it.
    let tok = e.iota(&[t, s], 0);
    let ends = e.bcast(&cu_hi, i32t, &[s], &[t, s], &[1]);
    let done = e.cmp("LE", &ends, &tok, i32t, &[t, s]);
    let live_ts = e.bcast(&live, b1, &[s], &[t, s], &[1]);
    let done = e.bin("and", &done, &live_ts, b1, &[t, s]);
    let done = e.convert(&done, b1, f32t, &[t, s]);
    let seq_of = e.reduce(&done, &[t, s], 1, "add", 0.0);
    let seq_of = e.convert(&seq_of, f32t, i32t, &[t]);
    let tok = e.iota(&[t], 0);
    let first = e.slice("%cu_q_lens", i32t, &[s + 1], &[0], &[1], &[1]);
    let first = e.reshape(&first, i32t, &[1], &[]);
    let first = e.bcast(&first, i32t, &[], &[t], &[]);
    let ns_t = e.bcast(&num_seqs, i32t, &[], &[t], &[]);
    let owned = e.cmp("LT", &seq_of, &ns_t, i32t, &[t]);
    let started = e.cmp("GE", &tok, &first, i32t, &[t]);
    let owned = e.bin("and", &owned, &started, b1, &[t]);
    let last = e.iconst(s as i64 - 1, &[t]);
    let seq_c = e.bin("minimum", &seq_of, &last, i32t, &[t]);
    let tok_start = e.take(&cu_lo, i32t, &[s], &seq_c, &[t]);
    let idx_in_seq = e.bin("subtract", &tok, &tok_start, i32t, &[t]);

    // 1. The cache update: each owned token's K/V row goes to the slot of its position.
    let mut cache = e.reshape("%cache", kv_dtype, &cache_shape, &[pages * ps, row]);
    if opts.update_kv_cache {
        let tok_cached = e.take(&cached, i32t, &[s], &seq_c, &[t]);
        let pos = e.bin("add", &tok_cached, &idx_in_seq, i32t, &[t]);
        let ps_t = e.iconst(ps as i64, &[t]);
        let page_no = e.bin("divide", &pos, &ps_t, i32t, &[t]);
        let in_page = e.bin("remainder", &pos, &ps_t, i32t, &[t]);
        let pps_t = e.iconst(pps as i64, &[t]);
        let entry = e.bin("multiply", &seq_c, &pps_t, i32t, &[t]);
        let entry = e.bin("add", &entry, &page_no, i32t, &[t]);
        let page = e.take("%page_indices", i32t, &[s * pps], &entry, &[t]);
        let slot = e.bin("multiply", &page, &ps_t, i32t, &[t]);
        let slot = e.bin("add", &slot, &in_page, i32t, &[t]);
        // Tokens no sequence owns go out of bounds: the scatter skips them.
        let oob = e.iconst((pages * ps) as i64, &[t]);
        let slot = e.select(&owned, &slot, &oob, i32t, &[t]);
        // New rows `[T, C, Dp]`: K of head h at combined head 2h, V at 2h + 1, zero-padded.
        let k4 = e.reshape("%k", kv_dtype, &[t, hkv, d], &[t, hkv, 1, d]);
        let v4 = e.reshape("%v", kv_dtype, &[t, hkv, d], &[t, hkv, 1, d]);
        let kv = e.emit(format!(
            "stablehlo.concatenate {k4}, {v4}, dim = 2 : ({}, {}) -> {}",
            tensor_type(kv_dtype, &[t, hkv, 1, d]),
            tensor_type(kv_dtype, &[t, hkv, 1, d]),
            tensor_type(kv_dtype, &[t, hkv, 2, d])
        ));
        let kv = e.reshape(&kv, kv_dtype, &[t, hkv, 2, d], &[t, 2 * hkv, d]);
        let zero = e.emit(format!("stablehlo.constant dense<0.0> : {}", tensor_type(kv_dtype, &[])));
        let kv = e.emit(format!(
            "stablehlo.pad {kv}, {zero}, low = [0, 0, 0], high = [0, {}, {}], interior = [0, 0, 0] : ({}, {}) -> {}",
            c - 2 * hkv,
            dp - d,
            tensor_type(kv_dtype, &[t, 2 * hkv, d]),
            tensor_type(kv_dtype, &[]),
            tensor_type(kv_dtype, &[t, c, dp])
        ));
        let rows = e.reshape(&kv, kv_dtype, &[t, c, dp], &[t, row]);
        let st = tensor_type(kv_dtype, &[]);
        let (res, a, b) = (e.text.fresh(), e.text.fresh(), e.text.fresh());
        e.text.line(&format!("{res} = \"stablehlo.scatter\"({cache}, {slot}, {rows}) ({{"));
        e.text.line(&format!("^bb0({a}: {st}, {b}: {st}):"));
        e.text.enter();
        e.text.line(&format!("stablehlo.return {b} : {st}"));
        e.text.leave();
        e.text.line(&format!(
            "}}) {{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [1], \
             inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1>, \
             indices_are_sorted = false, unique_indices = false}} : ({}, {}, {}) -> {}",
            tensor_type(kv_dtype, &[pages * ps, row]),
            tensor_type(i32t, &[t]),
            tensor_type(kv_dtype, &[t, row]),
            tensor_type(kv_dtype, &[pages * ps, row])
        ));
        cache = res;
    }
    let new_cache = e.reshape(&cache, kv_dtype, &[pages * ps, row], &cache_shape);

    // 2. Dense K and V `[S, max_kv, Hkv, D]` (f32): each sequence's pages, in page-table order.
    let pages_tbl = e.reshape("%page_indices", i32t, &[s * pps], &[s, pps]);
    let lo = e.iconst(0, &[s, pps]);
    let hi = e.iconst(pages as i64 - 1, &[s, pps]);
    let pages_tbl = e.emit(format!("stablehlo.clamp {lo}, {pages_tbl}, {hi} : {}", tensor_type(i32t, &[s, pps])));
    let by_page = e.reshape(&cache, kv_dtype, &[pages * ps, row], &[pages, ps * row]);
    let dense = e.take(&by_page, kv_dtype, &[pages, ps * row], &pages_tbl, &[s, pps]);
    let dense = e.reshape(&dense, kv_dtype, &[s, pps, ps * row], &[s, max_kv, c, dp]);
    let kd = e.slice(&dense, kv_dtype, &[s, max_kv, c, dp], &[0, 0, 0, 0], &[s, max_kv, 2 * hkv, d], &[1, 1, 2, 1]);
    let vd = e.slice(&dense, kv_dtype, &[s, max_kv, c, dp], &[0, 0, 1, 0], &[s, max_kv, 2 * hkv, d], &[1, 1, 2, 1]);
    let kvs = [s, max_kv, hkv, d];
    let kd = e.convert(&kd, kv_dtype, f32t, &kvs);
    let vd = e.convert(&vd, kv_dtype, f32t, &kvs);
    // Slots past kv_len may hold anything (NaN): V is zeroed there (K's logits are masked).
    let key_pos = e.iota(&kvs, 1);
    let kv_len_b = e.bcast(&kv_len, i32t, &[s], &kvs, &[0]);
    let key_live = e.cmp("LT", &key_pos, &kv_len_b, i32t, &kvs);
    let zeros = e.fconst(0.0, &kvs);
    let vd = e.select(&key_live, &vd, &zeros, f32t, &kvs);

    // 3. Queries `[S, max_q, Hkv, G, D]` (f32): token cu_q_lens[s] + i (rows past q_len unused).
    let qi = e.iota(&[s, max_q], 1);
    let cu_b = e.bcast(&cu_lo, i32t, &[s], &[s, max_q], &[0]);
    let q_tok = e.bin("add", &cu_b, &qi, i32t, &[s, max_q]);
    let lo = e.iconst(0, &[s, max_q]);
    let hi = e.iconst(t as i64 - 1, &[s, max_q]);
    let q_tok = e.emit(format!("stablehlo.clamp {lo}, {q_tok}, {hi} : {}", tensor_type(i32t, &[s, max_q])));
    let qd = e.take("%q", q_dtype, &[t, hq, d], &q_tok, &[s, max_q]);
    let qd = e.convert(&qd, q_dtype, f32t, &[s, max_q, hq, d]);
    let qd = e.reshape(&qd, f32t, &[s, max_q, hq, d], &[s, max_q, hkv, g, d]);

    // 4. Logits `[S, Hkv, max_q, G, max_kv]`, scaled, soft-capped, masked.
    let ls = [s, hkv, max_q, g, max_kv];
    let dims = DotDims { lhs_batch: vec![0, 2], rhs_batch: vec![0, 2], lhs_contract: vec![4], rhs_contract: vec![3] };
    let logits = e.dot(&qd, &[s, max_q, hkv, g, d], &kd, &kvs, dims, &ls);
    let scale = opts.sm_scale * opts.k_scale.unwrap_or(1.0);
    let sc = e.fconst(scale, &ls);
    let mut logits = e.bin("multiply", &logits, &sc, f32t, &ls);
    if let Some(cap) = opts.soft_cap {
        let inv = e.fconst(1.0 / cap, &ls);
        let x = e.bin("multiply", &logits, &inv, f32t, &ls);
        let x = e.un("tanh", &x, f32t, &ls);
        let capc = e.fconst(cap, &ls);
        logits = e.bin("multiply", &x, &capc, f32t, &ls);
    }
    let key = e.iota(&ls, 4);
    let qrow = e.iota(&ls, 2);
    let cached_b = e.bcast(&cached, i32t, &[s], &ls, &[0]);
    let q_pos = e.bin("add", &cached_b, &qrow, i32t, &ls);
    let kv_len_l = e.bcast(&kv_len, i32t, &[s], &ls, &[0]);
    let in_seq = e.cmp("LT", &key, &kv_len_l, i32t, &ls);
    let mut visible: Option<String> = None;
    if opts.causal {
        visible = Some(e.cmp("LE", &key, &q_pos, i32t, &ls));
    }
    if let Some(w) = opts.sliding_window {
        let wc = e.iconst(w as i64, &ls);
        let kw = e.bin("add", &key, &wc, i32t, &ls);
        let inside = e.cmp("GT", &kw, &q_pos, i32t, &ls);
        visible = Some(match visible {
            Some(v) => e.bin("and", &v, &inside, b1, &ls),
            None => inside,
        });
    }
    // Keys the sequence does not have take no part; masked ones take `mask_value`, as in the reference.
    if let Some(v) = visible {
        let mv = e.fconst(opts.mask_value(), &ls);
        logits = e.select(&v, &logits, &mv, f32t, &ls);
    }
    let ninf = e.fconst(f64::NEG_INFINITY, &ls);
    let logits = e.select(&in_seq, &logits, &ninf, f32t, &ls);

    // 5. Softmax and the values.
    let rs = [s, hkv, max_q, g];
    let m = e.reduce(&logits, &ls, 4, "maximum", f64::NEG_INFINITY);
    let mb = e.bcast(&m, f32t, &rs, &ls, &[0, 1, 2, 3]);
    let p = e.bin("subtract", &logits, &mb, f32t, &ls);
    let p = e.un("exponential", &p, f32t, &ls);
    let l = e.reduce(&p, &ls, 4, "add", 0.0);
    let os = [s, hkv, max_q, g, d];
    let dims = DotDims { lhs_batch: vec![0, 1], rhs_batch: vec![0, 2], lhs_contract: vec![4], rhs_contract: vec![1] };
    let o = e.dot(&p, &ls, &vd, &kvs, dims, &os);
    let lb = e.bcast(&l, f32t, &rs, &os, &[0, 1, 2, 3]);
    let mut o = e.bin("divide", &o, &lb, f32t, &os);
    if let Some(vs) = opts.v_scale {
        let c = e.fconst(vs, &os);
        o = e.bin("multiply", &o, &c, f32t, &os);
    }

    // 6. Each owned token takes its row; the others keep their queries.
    let o = e.transpose(&o, f32t, &os, &[0, 2, 1, 3, 4]);
    let o = e.reshape(&o, f32t, &[s, max_q, hkv, g, d], &[s * max_q, hq, d]);
    let mq = e.iconst(max_q as i64, &[t]);
    let at = e.bin("multiply", &seq_c, &mq, i32t, &[t]);
    let lo = e.iconst(0, &[t]);
    let hi = e.iconst(max_q as i64 - 1, &[t]);
    let i_c = e.emit(format!("stablehlo.clamp {lo}, {idx_in_seq}, {hi} : {}", tensor_type(i32t, &[t])));
    let at = e.bin("add", &at, &i_c, i32t, &[t]);
    let out = e.take(&o, f32t, &[s * max_q, hq, d], &at, &[t]);
    let out = e.convert(&out, f32t, q_dtype, &[t, hq, d]);
    let owned_b = e.bcast(&owned, b1, &[t], &[t, hq, d], &[0]);
    let out = e.select(&owned_b, &out, "%q", q_dtype, &[t, hq, d]);
    e.text.line(&format!(
        "return {out}, {new_cache} : {}, {}",
        tensor_type(q_dtype, &[t, hq, d]),
        tensor_type(kv_dtype, &cache_shape)
    ));
    e.text.leave();
    e.text.line("}");
    e.text.leave();
    e.text.line("}");
    e.text.into_string()
}
