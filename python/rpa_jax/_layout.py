"""The paged KV cache layout of tpu-inference v3 and the kernel layouts around it, as jnp ops.

``kv_cache[page, row, c // packing, c % packing, d]`` holds combined head ``c`` of token slot
``row`` of ``page``: ``c = 2h`` is K of kv head ``h``, ``c = 2h + 1`` its V. Heads are padded to a
multiple of the packing (32 / bits of the cache dtype) and ``d`` to a multiple of 128 lanes.
"""

import jax.numpy as jnp
import numpy as np

from . import _rpa


def _align(x: int, m: int) -> int:
    return -(-x // m) * m


def packing(dtype) -> int:
    """Values of ``dtype`` per 32-bit word."""
    return 32 // (np.dtype(dtype).itemsize * 8)


def get_kv_cache_shape(total_num_pages, page_size, actual_num_kv_heads, actual_head_dim, kv_dtype):
    """The cache shape ``[pages, page_size, cdiv(2·Hkv, packing), packing, align(D, 128)]``."""
    return tuple(
        _rpa.kv_cache_shape(
            int(total_num_pages), int(page_size), int(actual_num_kv_heads), int(actual_head_dim),
            np.dtype(kv_dtype).name,
        )
    )


def merge_kv(keys, values):
    """New keys and values ``[T, Hkv, D]`` as cache rows ``[T, cdiv(2·Hkv, p), p, align(D, 128)]``
    (K of head h at combined head 2h, V at 2h + 1; padding is zero)."""
    t, hkv, d = keys.shape
    p = packing(keys.dtype)
    combined = jnp.stack([keys, values], axis=2).reshape(t, 2 * hkv, d)
    heads, dp = _align(2 * hkv, p), _align(d, 128)
    combined = jnp.pad(combined, ((0, 0), (0, heads - 2 * hkv), (0, dp - d)))
    return combined.reshape(t, heads // p, p, dp)


def quantize(x, dtype):
    """``x`` (f32) clipped to the finite range of ``dtype`` and rounded to it (integers: to the
    nearest, ties to even)."""
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.integer):
        info = jnp.iinfo(dtype)
        return jnp.round(jnp.clip(x, info.min, info.max)).astype(dtype)
    info = jnp.finfo(dtype)
    return jnp.clip(x, float(info.min), float(info.max)).astype(dtype)


def prepare_queries(queries, num_kv_heads, q_scale, kv_dtype):
    """Queries ``[T, Hq, D]`` → the kernels' ``[Hkv, T, G, align(D, 128)]`` (kv-head-major, zero
    padded), quantized to the cache dtype with ``q_scale`` if given (kept in the query dtype)."""
    t, hq, d = queries.shape
    g = hq // num_kv_heads
    q = queries
    if q_scale is not None:
        q = quantize(q.astype(jnp.float32) / q_scale, kv_dtype).astype(queries.dtype)
    q = q.reshape(t, num_kv_heads, g, d).transpose(1, 0, 2, 3)
    return jnp.pad(q, ((0, 0), (0, 0), (0, 0), (0, _align(d, 128) - d)))


def restore_output(o, head_dim):
    """The kernels' ``[Hkv, T, G, Dp]`` → ``[T, Hq, D]``."""
    hkv, t, g, _ = o.shape
    return o[..., :head_dim].transpose(1, 0, 2, 3).reshape(t, hkv * g, head_dim)


def restore_lse(lse):
    """The kernels' lane-replicated ``[Hkv, T, G, 128]`` → ``[T, Hq]``."""
    hkv, t, g, _ = lse.shape
    return lse[..., 0].transpose(1, 0, 2).reshape(t, hkv * g)


def sinks_per_kv_head(sinks, num_kv_heads):
    """Attention sinks ``f32[Hq]`` in the kernels' layout ``[Hkv, G, 128]`` (each replicated over
    the lanes; rpa's ``launch::sinks_per_kv_head``)."""
    hq = sinks.shape[0]
    grouped = sinks.reshape(num_kv_heads, hq // num_kv_heads, 1)
    return jnp.broadcast_to(grouped, (num_kv_heads, hq // num_kv_heads, 128))
