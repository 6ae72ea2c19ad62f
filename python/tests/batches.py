"""Ragged batches built the way the upstream tests build them, and an independent f64 numpy
reference of ragged paged attention (tpu-inference v3 semantics, rpa's options)."""

import dataclasses

import ml_dtypes
import numpy as np

import rpa_jax
from rpa_jax import _rpa

# The sequence lists of the upstream RPA tests: (q_len, kv_len) per sequence.
DECODE = [(1, n) for n in (18, 129, 597, 122, 64, 322, 463, 181, 1107, 123, 31, 18, 1229, 229, 87, 1328)]
PREFILL = [(5, 18), (15, 129), (120, 597), (100, 122), (21, 64), (32, 322), (251, 463), (40, 181), (64, 1107),
           (99, 123), (10, 31), (5, 18), (3, 1229), (120, 229), (9, 87), (2, 1328)]
MIXED = [(5, 18), (1, 129), (120, 597), (1, 122), (1, 64), (32, 322), (251, 463), (1, 181), (1, 1107), (99, 123),
         (1, 31), (5, 18), (3, 1229), (117, 229), (1, 87), (1, 1328)]
SMALL = [(5, 18), (1, 40), (24, 61), (1, 17)]

F32, BF16, INT8 = np.dtype(np.float32), np.dtype(ml_dtypes.bfloat16), np.dtype(np.int8)
E4M3, E5M2 = np.dtype(ml_dtypes.float8_e4m3fn), np.dtype(ml_dtypes.float8_e5m2)


@dataclasses.dataclass
class Batch:
    queries: np.ndarray
    keys: np.ndarray
    values: np.ndarray
    kv_cache: np.ndarray
    kv_lens: np.ndarray
    page_indices: np.ndarray
    cu_q_lens: np.ndarray
    distribution: np.ndarray

    def args(self):
        return (self.queries, self.keys, self.values, self.kv_cache, self.kv_lens, self.page_indices,
                self.cu_q_lens, self.distribution)


def _random(rng, shape, dtype):
    if dtype == INT8:
        return rng.integers(-20, 21, shape).astype(INT8)
    return rng.random(shape).astype(dtype)


def make_batch(seq_lens, heads=(4, 2), head_dim=128, page_size=16, q_dtype=F32, kv_dtype=F32, seed=0,
               distribution=None, fill_new_slots=False, spare_pages=3, spare_seqs=1):
    """Random queries and new K/V, each sequence's pages scattered over the cache, and NaN (int8:
    -128) in every cache element that holds no cached token: page tails, unused pages, padding,
    and the slots the new tokens will take (unless ``fill_new_slots``, for KV-share)."""
    rng = np.random.default_rng(seed)
    hq, hkv = heads
    num_seqs = len(seq_lens)
    max_seqs = num_seqs + spare_seqs
    tokens = sum(q for q, _ in seq_lens) + 3  # a few tokens no sequence owns
    pages_per_seq = max(-(-kv // page_size) for _, kv in seq_lens) + 1
    total_pages = sum(-(-kv // page_size) for _, kv in seq_lens) + spare_pages
    shape = rpa_jax.get_kv_cache_shape(total_pages, page_size, hkv, head_dim, kv_dtype)
    empty = -128 if kv_dtype == INT8 else np.nan
    cache = np.full(shape, empty, dtype=np.float64).astype(kv_dtype)
    page_ids = rng.permutation(total_pages)
    page_indices = np.zeros(max_seqs * pages_per_seq, np.int32)
    used = 0
    for b, (q_len, kv_len) in enumerate(seq_lens):
        n = -(-kv_len // page_size)
        page_indices[b * pages_per_seq:b * pages_per_seq + n] = page_ids[used:used + n]
        used += n
        filled = kv_len if fill_new_slots else kv_len - q_len
        for pos in range(filled):
            page, row = page_indices[b * pages_per_seq + pos // page_size], pos % page_size
            for c in range(2 * hkv):
                cache[page, row, c // shape[3], c % shape[3], :head_dim] = _random(rng, head_dim, kv_dtype)
    cu = np.zeros(max_seqs + 1, np.int32)
    cu[1:num_seqs + 1] = np.cumsum([q for q, _ in seq_lens])
    cu[num_seqs + 1:] = cu[num_seqs]
    kv_lens = np.zeros(max_seqs, np.int32)
    kv_lens[:num_seqs] = [kv for _, kv in seq_lens]
    if distribution is None:
        distribution = (0, 0, num_seqs)
    return Batch(
        queries=_random(rng, (tokens, hq, head_dim), q_dtype),
        keys=_random(rng, (tokens, hkv, head_dim), kv_dtype),
        values=_random(rng, (tokens, hkv, head_dim), kv_dtype),
        kv_cache=cache,
        kv_lens=kv_lens,
        page_indices=page_indices,
        cu_q_lens=cu,
        distribution=np.asarray(distribution, np.int32),
    )


def _quantize(x, dtype):
    if dtype == INT8:
        return np.round(np.clip(x, -128, 127))
    info = ml_dtypes.finfo(dtype)
    return np.clip(x, float(info.min), float(info.max)).astype(dtype).astype(np.float64)


def reference(b: Batch, sm_scale=1.0, sliding_window=None, soft_cap=None, mask_value=None, q_scale=None,
              k_scale=None, v_scale=None, causal=True, update_kv_cache=True, attention_sink=None):
    """``(output rows of the owned tokens, updated cache, lse rows)`` in f64 (the cache in its dtype).
    An attention sink (one per query head) is one more logit with no value."""
    cache = b.kv_cache.copy()
    _, ps, _, packing, _ = cache.shape
    tokens, hq, d = b.queries.shape
    hkv = b.keys.shape[1]
    g = hq // hkv
    pps = len(b.page_indices) // len(b.kv_lens)
    mask_value = float(np.finfo(np.float32).min) if mask_value is None else mask_value
    num_seqs = int(b.distribution[2])
    owned = int(b.cu_q_lens[num_seqs])
    out = np.zeros((owned, hq, d))
    lse = np.zeros((owned, hq))
    for s in range(num_seqs):
        q0, q1, kv_len = int(b.cu_q_lens[s]), int(b.cu_q_lens[s + 1]), int(b.kv_lens[s])
        q_len = q1 - q0
        slot = lambda pos: (b.page_indices[s * pps + pos // ps], pos % ps)  # noqa: E731
        if update_kv_cache:
            for i in range(q_len):
                # The whole row: padding lanes and heads are written as zeros (upstream's merge_kv).
                page, row = slot(kv_len - q_len + i)
                cache[page, row] = 0
                for h in range(hkv):
                    cache[page, row, (2 * h) // packing, (2 * h) % packing, :d] = b.keys[q0 + i, h]
                    cache[page, row, (2 * h + 1) // packing, (2 * h + 1) % packing, :d] = b.values[q0 + i, h]
        k = np.zeros((kv_len, hkv, d))
        v = np.zeros((kv_len, hkv, d))
        for pos in range(kv_len):
            page, row = slot(pos)
            for h in range(hkv):
                k[pos, h] = cache[page, row, (2 * h) // packing, (2 * h) % packing, :d].astype(np.float64)
                v[pos, h] = cache[page, row, (2 * h + 1) // packing, (2 * h + 1) % packing, :d].astype(np.float64)
        q = b.queries[q0:q1].astype(np.float64)
        if q_scale is not None:
            q = _quantize(q / q_scale, cache.dtype)
        scale = sm_scale * (k_scale or 1.0) * (q_scale or 1.0)
        logits = np.einsum("qhd,khd->hqk", q, np.repeat(k, g, axis=1)) * scale
        if soft_cap is not None:
            logits = soft_cap * np.tanh(logits / soft_cap)
        pos_q = kv_len - q_len + np.arange(q_len)[:, None]
        pos_k = np.arange(kv_len)[None, :]
        visible = np.ones((q_len, kv_len), bool)
        if causal:
            visible &= pos_k <= pos_q
        if sliding_window is not None:
            visible &= pos_k > pos_q - sliding_window
        logits = np.where(visible[None], logits, mask_value)
        m = logits.max(axis=-1, keepdims=True)
        sink = None if attention_sink is None else np.asarray(attention_sink, np.float64)[:, None, None]
        if sink is not None:
            m = np.maximum(m, sink)
        p = np.exp(logits - m)
        l = p.sum(axis=-1, keepdims=True) + (0.0 if sink is None else np.exp(sink - m))
        lse[q0:q1] = (m + np.log(l))[..., 0].T
        out[q0:q1] = np.einsum("hqk,khd->qhd", p / l, np.repeat(v, g, axis=1)) * (v_scale or 1.0)
    return out, cache, lse


def rust_interpret(b: Batch, **options):
    """rpa's launcher in interpret mode (Rust), called directly: ``(output, cache[, lse]), seconds``."""
    from rpa_jax._attention import options_of, request_of

    options = dict(options)
    sink = options.pop("attention_sink", None)
    args = [np.asarray(a) for a in b.args()] + ([] if sink is None else [np.asarray(sink, np.float32)])
    request = request_of(args, options_of(**options))
    arrays = [(a.dtype.name, list(a.shape), a.tobytes()) for a in args]
    results, seconds = _rpa.interpret(request, arrays, 3 if options.get("return_lse") else 2)
    shapes = [(args[0].dtype, args[0].shape), (args[3].dtype, args[3].shape), (np.float32, args[0].shape[:2])]
    arrays = [np.frombuffer(r, dtype).reshape(shape) for r, (dtype, shape) in zip(results, shapes)]
    return arrays, seconds


def same_bits(a, b):
    """Bit-identical arrays (NaN payloads included)."""
    a, b = np.asarray(a), np.asarray(b)
    width = {1: np.uint8, 2: np.uint16, 4: np.uint32}[a.dtype.itemsize]
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(width), b.view(width))
