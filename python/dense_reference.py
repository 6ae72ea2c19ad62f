"""Ragged paged attention the way a plain jax.numpy program computes it, jitted on XLA: the
comparison point of rpa's benchmark (`cargo bench -p rpa-kernels --bench rpa`).

It writes the new K/V rows into the cache (a scatter by slot), gathers every sequence's pages into
dense `[seqs, pages_per_seq * page_size]` keys and values, gathers the queries into a padded
`[seqs, max_q]` batch, and computes masked softmax attention for every (sequence, query) pair with
two batched matmuls in f32; each token then takes its row back. Its cost is that of the padded
batch, whatever the sequence lengths. Float caches, no q quantization.

As a program: `python dense_reference.py DIR [--calls N]` reads the arrays rpa's benchmark wrote to
DIR (`queries.npy`, ..., and `options.json`), and prints one JSON line: the first call's time
(compile included) and the median of N more calls, in milliseconds.
"""

import argparse
import functools
import json
import pathlib
import statistics
import time

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np


@functools.partial(
    jax.jit,
    static_argnames=("max_q", "sm_scale", "sliding_window", "soft_cap", "mask_value", "causal", "update_kv_cache"),
    donate_argnums=3,
)
def ragged_paged_attention(
    queries,
    keys,
    values,
    kv_cache,
    kv_lens,
    page_indices,
    cu_q_lens,
    distribution,
    *,
    max_q,
    sm_scale,
    sliding_window=None,
    soft_cap=None,
    mask_value=None,
    causal=True,
    update_kv_cache=True,
):
    """`(output [T, Hq, D], kv_cache)` of tpu-inference v3's `ragged_paged_attention`."""
    t, hq, d = queries.shape
    hkv = keys.shape[1]
    pages, ps, words, packing, dp = kv_cache.shape
    combined = words * packing
    seqs = kv_lens.shape[0]
    pps = page_indices.shape[0] // seqs
    flat = kv_cache.reshape(pages * ps, combined, dp)

    live = jnp.arange(seqs) < distribution[2]
    q_len = jnp.where(live, cu_q_lens[1:] - cu_q_lens[:-1], 0)
    kv_len = jnp.where(live, kv_lens, 0)
    table = page_indices.reshape(seqs, pps)

    # 1. The cache update: token i of sequence s goes to position kv_len - q_len + i.
    tok = jnp.arange(t)
    seq_of = jnp.clip(jnp.searchsorted(cu_q_lens[1:], tok, side="right"), 0, seqs - 1)
    owned = tok < cu_q_lens[distribution[2]]
    pos = kv_len[seq_of] - q_len[seq_of] + tok - cu_q_lens[seq_of]
    slot = table[seq_of, jnp.clip(pos // ps, 0, pps - 1)] * ps + pos % ps
    if update_kv_cache:
        rows = jnp.zeros((t, combined, dp), kv_cache.dtype)
        rows = rows.at[:, 0 : 2 * hkv : 2, :d].set(keys).at[:, 1 : 2 * hkv : 2, :d].set(values)
        flat = flat.at[jnp.where(owned, slot, pages * ps)].set(rows, mode="drop")

    # 2. Dense keys and values [S, max_kv, Hkv, D] in f32, in page-table order.
    max_kv = pps * ps
    kv_slot = (table[:, :, None] * ps + jnp.arange(ps)).reshape(seqs, max_kv)
    in_seq = jnp.arange(max_kv)[None, :] < kv_len[:, None]
    k = flat[kv_slot, 0 : 2 * hkv : 2, :d].astype(jnp.float32)
    # Slots past kv_len may hold anything (NaN): their values must not reach 0 · v.
    v = jnp.where(in_seq[:, :, None, None], flat[kv_slot, 1 : 2 * hkv : 2, :d].astype(jnp.float32), 0.0)

    # 3. Queries [S, max_q, Hkv, G, D], and the logits [S, Hkv, G, max_q, max_kv].
    q_tok = cu_q_lens[:-1, None] + jnp.arange(max_q)
    q_valid = jnp.arange(max_q) < q_len[:, None]
    q = queries[jnp.where(q_valid, q_tok, 0)].astype(jnp.float32).reshape(seqs, max_q, hkv, hq // hkv, d)
    s = jnp.einsum("sqhgd,skhd->shgqk", q, k) * sm_scale
    if soft_cap is not None:
        s = soft_cap * jnp.tanh(s / soft_cap)
    q_pos = (kv_len - q_len)[:, None] + jnp.arange(max_q)
    k_pos = jnp.arange(max_kv)
    visible = jnp.ones((seqs, max_q, max_kv), bool)
    if causal:
        visible = k_pos[None, None, :] <= q_pos[:, :, None]
    if sliding_window is not None:
        visible &= k_pos[None, None, :] > q_pos[:, :, None] - sliding_window
    masked = jnp.finfo(jnp.float32).min if mask_value is None else mask_value
    s = jnp.where(visible[:, None, None], s, masked)
    # Keys past kv_len are not part of the sequence.
    s = jnp.where(in_seq[:, None, None, None, :], s, -jnp.inf)
    p = jax.nn.softmax(s, axis=-1)
    o = jnp.einsum("shgqk,skhd->sqhgd", p, v).reshape(seqs, max_q, hq, d)

    # 4. Each token takes its row back; tokens no sequence owns keep their queries.
    i = jnp.clip(tok - cu_q_lens[seq_of], 0, max_q - 1)
    out = jnp.where(owned[:, None, None], o[seq_of, i].astype(queries.dtype), queries)
    return out, flat.reshape(kv_cache.shape)


_NUMPY_DTYPES = {"f32": np.float32, "bf16": ml_dtypes.bfloat16, "f16": np.float16}


def load(directory):
    """The arrays and options rpa's benchmark wrote (bf16 arrays are saved as their bits)."""
    d = pathlib.Path(directory)
    opts = json.loads((d / "options.json").read_text())
    arrays = {}
    for name in ["queries", "keys", "values", "kv_cache", "kv_lens", "page_indices", "cu_q_lens", "distribution"]:
        a = np.load(d / f"{name}.npy")
        dtype = opts["q_dtype"] if name == "queries" else opts["kv_dtype"]
        if name in ("queries", "keys", "values", "kv_cache") and a.dtype.kind == "u":
            a = a.view(_NUMPY_DTYPES[dtype])
        arrays[name] = a
    return arrays, opts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    arrays, opts = load(args.dir)
    static = {k: opts.get(k) for k in ("sm_scale", "sliding_window", "soft_cap", "mask_value")}
    static |= {"causal": opts.get("causal", True), "update_kv_cache": opts.get("update_kv_cache", True)}
    q_lens = np.diff(arrays["cu_q_lens"])[: int(arrays["distribution"][2])]
    static["max_q"] = int(max(1, q_lens.max(initial=1)))
    cpu = jax.devices("cpu")[0]

    def call():
        x = {k: jax.device_put(v, cpu) for k, v in arrays.items()}
        jax.block_until_ready(x)
        start = time.perf_counter()
        jax.block_until_ready(ragged_paged_attention(*(x[k] for k in arrays), **static))
        return (time.perf_counter() - start) * 1e3

    first = call()
    times = [call() for _ in range(args.calls)]
    print(json.dumps({"first_ms": first, "call_ms": statistics.median(times)}))


if __name__ == "__main__":
    main()
