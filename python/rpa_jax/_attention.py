"""``ragged_paged_attention``: one JAX primitive, lowered to rpa's Mosaic kernels on TPU
(``tpu_custom_call``s) and to rpa's interpret mode on CPU (an XLA FFI handler written in Rust)."""

import dataclasses
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import dispatch
from jax.extend.core import Primitive
from jax.interpreters import mlir

from . import _layout, _rpa

CPU_TARGET = "rpa_ragged_paged_attention"
jax.ffi.register_ffi_target(CPU_TARGET, _rpa.cpu_handler(), platform="cpu")

_METADATA = ("kv_lens", "page_indices", "cu_q_lens", "distribution")


@dataclasses.dataclass(frozen=True)
class _Call:
    """The static part of a call: the Rust request (JSON) and what the lowerings need of it."""

    request: str
    q_scale: float | None
    return_lse: bool
    tpu_generation: str | None


def _option(name, value, kind):
    """``value`` as a JSON-ready option of type ``kind`` (None stays None)."""
    if value is None:
        return None
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"invalid ragged paged attention call: `{name}`: must be an int, got {value!r}")
        return int(value)
    if kind is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"invalid ragged paged attention call: `{name}`: must be a number, got {value!r}") from None
    if kind is bool:
        return bool(value)
    # Block sizes: (bq, bkv, bq_compute, bkv_compute).
    sizes = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(sizes) != 4:
        raise ValueError(
            f"invalid ragged paged attention call: `{name}`: must be (bq_sz, bkv_sz, bq_csz, bkv_csz), got {value!r}"
        )
    return [_option(name, s, int) for s in sizes]


# The keyword options: name → (default, kind). Kinds: float, int, bool, or tuple (block sizes).
OPTIONS = {
    "sm_scale": (1.0, float),
    "sliding_window": (None, int),
    "soft_cap": (None, float),
    "mask_value": (None, float),
    "q_scale": (None, float),
    "k_scale": (None, float),
    "v_scale": (None, float),
    "chunk_prefill_size": (None, int),
    "vmem_limit_bytes": (None, int),
    "d_block_sizes": (None, tuple),
    "p_block_sizes": (None, tuple),
    "m_block_sizes": (None, tuple),
    "causal": (True, bool),
    "update_kv_cache": (True, bool),
    "return_lse": (False, bool),
    "check_metadata": (True, bool),
}


def options_of(**given) -> dict:
    """The options of a call (defaults for those not given), checked and ready for JSON."""
    unknown = sorted(set(given) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unexpected keyword arguments {unknown}")
    options = {name: _option(name, given.get(name, default), kind) for name, (default, kind) in OPTIONS.items()}
    if options["sm_scale"] is None:
        raise ValueError("invalid ragged paged attention call: `sm_scale`: must be a number, got None")
    return options


def request_of(arrays, options) -> str:
    """The JSON request of a call (the Rust side's `request::Request`); a ninth array is the
    attention sinks (their dtype and shape go into the request, their values are an operand)."""
    queries, keys, values, kv_cache = arrays[:4]
    for name, a in zip(_METADATA, arrays[4:]):
        if a.dtype != jnp.int32 or a.ndim != 1:
            raise ValueError(
                f"invalid ragged paged attention call: `{name}`: must be a 1-D int32 array, got {a.dtype}{list(a.shape)}"
            )
    if arrays[7].shape != (3,):
        raise ValueError(
            f"invalid ragged paged attention call: `distribution`: must be int32[3], got {list(arrays[7].shape)}"
        )
    spec = lambda a: [np.dtype(a.dtype).name, list(a.shape)]  # noqa: E731
    request = {
        "queries": spec(queries),
        "keys": spec(keys),
        "values": spec(values),
        "kv_cache": spec(kv_cache),
        "kv_lens": arrays[4].shape[0],
        "page_indices": arrays[5].shape[0],
        "cu_q_lens": arrays[6].shape[0],
        "attention_sink": spec(arrays[8]) if len(arrays) > 8 else None,
        "options": options,
    }
    return json.dumps(request, sort_keys=True)


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
    sm_scale=1.0,
    sliding_window=None,
    soft_cap=None,
    mask_value=None,
    q_scale=None,
    k_scale=None,
    v_scale=None,
    chunk_prefill_size=None,
    vmem_limit_bytes=None,
    d_block_sizes=None,
    p_block_sizes=None,
    m_block_sizes=None,
    causal=True,
    update_kv_cache=True,
    return_lse=False,
    check_metadata=True,
    attention_sink=None,
    tpu_generation=None,
):
    """Ragged paged attention with tpu-inference v3's signature: ``(output [T, Hq, D], updated
    kv_cache)``, plus the log-sum-exp ``f32[T, Hq]`` with ``return_lse=True``.

    ``queries [T, Hq, D]``; ``keys``, ``values [T, Hkv, D]`` already in the cache dtype;
    ``kv_cache`` in the layout of :func:`get_kv_cache_shape` (f32, bf16, fp8 or int8);
    ``kv_lens i32[S]``, ``page_indices i32[S · pages_per_seq]``, ``cu_q_lens i32[S + 1]``;
    ``distribution i32[3] = (i, j, k)``: decode ``[0, i)``, chunked prefill ``[i, j)`` (needs
    ``chunk_prefill_size``), mixed ``[j, k)``. The cache is donated: under ``jax.jit`` it is updated
    in place. rpa's extras: ``causal`` (upstream ``use_causal_mask``), ``update_kv_cache=False``
    (KV-share), ``return_lse``, ``check_metadata`` (on CPU, validate the metadata on every call),
    ``tpu_generation`` (``v5e``/``v6e``/``v7x`` when the lowering cannot tell from its devices),
    ``attention_sink`` (``f32[Hq]``: one more logit per query head that joins the softmax's
    denominator and has no value, as gpt-oss's sinks).
    """
    arrays = (queries, keys, values, kv_cache, kv_lens, page_indices, cu_q_lens, distribution)
    if attention_sink is not None:
        arrays += (attention_sink,)
    arrays = tuple(a if hasattr(a, "dtype") and hasattr(a, "shape") else jnp.asarray(a) for a in arrays)
    if attention_sink is not None:
        _check_sinks(arrays[8], arrays[0].shape[1])
    options = options_of(
        sm_scale=sm_scale, sliding_window=sliding_window, soft_cap=soft_cap, mask_value=mask_value, q_scale=q_scale,
        k_scale=k_scale, v_scale=v_scale, chunk_prefill_size=chunk_prefill_size, vmem_limit_bytes=vmem_limit_bytes,
        d_block_sizes=d_block_sizes, p_block_sizes=p_block_sizes, m_block_sizes=m_block_sizes, causal=causal,
        update_kv_cache=update_kv_cache, return_lse=return_lse, check_metadata=check_metadata,
    )
    if tpu_generation not in (None, "v5e", "v6e", "v7x"):
        raise ValueError(f"invalid ragged paged attention call: `tpu_generation`: v5e, v6e or v7x, got {tpu_generation!r}")
    request = request_of(arrays, options)
    _rpa.check(request)  # ValueError with the validator's wording, naming the argument.
    call = _Call(request, options["q_scale"], options["return_lse"], tpu_generation)
    return _jitted(*arrays, call=call)


def _check_sinks(sinks, num_q_heads):
    """Attention sinks are ``f32[num_q_heads]`` (the Rust validator checks their values)."""
    if np.dtype(sinks.dtype) != np.float32 or tuple(sinks.shape) != (num_q_heads,):
        raise ValueError(
            "invalid ragged paged attention call: `attention_sink`: attention_sink must be f32 [num_q_heads] = "
            f"f32[{num_q_heads}], got {np.dtype(sinks.dtype).name}{list(sinks.shape)}"
        )


@functools.partial(jax.jit, static_argnames="call", donate_argnums=3)
def _jitted(*arrays, call):
    """``ragged_paged_attention``'s arrays (the attention sinks ninth, if any); the cache donated."""
    return tuple(_rpa_p.bind(*arrays, call=call))


def validate(queries, keys, values, kv_cache, kv_lens, page_indices, cu_q_lens, distribution, **options):
    """Checks a call on host arrays: its static part, then its metadata (lengths, page ids), with
    the errors ``ragged_paged_attention`` would raise (``ValueError`` naming the sequence and field)."""
    meta = [np.asarray(a) for a in (kv_lens, page_indices, cu_q_lens, distribution)]
    options.pop("tpu_generation", None)
    sink = options.pop("attention_sink", None)
    sinks = () if sink is None else (np.asarray(sink),)
    request = request_of((queries, keys, values, kv_cache, *meta, *sinks), options_of(**options))
    _rpa.validate(request, *(m.tolist() for m in meta))


# The primitive: operands in `ragged_paged_attention`'s order (the attention sinks ninth, if any),
# results (output, kv_cache[, lse]).
_rpa_p = Primitive("rpa_ragged_paged_attention")
_rpa_p.multiple_results = True
_rpa_p.def_impl(functools.partial(dispatch.apply_primitive, _rpa_p))


@_rpa_p.def_abstract_eval
def _abstract_eval(queries, keys, values, kv_cache, *metadata, call):
    results = [jax.core.ShapedArray(queries.shape, queries.dtype), jax.core.ShapedArray(kv_cache.shape, kv_cache.dtype)]
    if call.return_lse:
        results.append(jax.core.ShapedArray(queries.shape[:2], jnp.float32))
    return results


def _cpu_lowering(ctx, *args, call):
    # The cache (operand 3) is result 1: updated in place when donated.
    rule = jax.ffi.ffi_lowering(CPU_TARGET, operand_output_aliases={3: 1})
    return rule(ctx, *args, request=call.request)


mlir.register_lowering(_rpa_p, _cpu_lowering, platform="cpu")


def _device_kinds(ctx):
    """The kinds of the devices the module is lowered for: its device assignment, else its
    backend's devices (a compile-only client of a topology in AOT compiles)."""
    devices = getattr(ctx.module_context.axis_context, "device_assignment", None)
    if devices is None:
        backend = ctx.module_context.get_backend(optional=True)
        try:
            devices = backend.devices() if backend is not None else ()
        except Exception:  # A backend without devices: the caller names the generation.
            devices = ()
    return [getattr(d, "device_kind", "") for d in devices]


def _generation(kind: str) -> str | None:
    for marker, generation in (("v5", "v5e"), ("v6", "v6e"), ("7x", "v7x"), ("v7", "v7x")):
        if marker in kind:
            return generation
    return None


@functools.lru_cache(maxsize=256)
def _launches(request, generation):
    return _rpa.tpu_launches(request, generation)


def _tpu_lowering(ctx, *args, call):
    generation = call.tpu_generation
    if generation is None:
        found = {_generation(k) for k in _device_kinds(ctx)} - {None}
        if len(found) != 1:
            raise ValueError(
                "invalid ragged paged attention call: `tpu_generation`: the lowering cannot tell the TPU generation "
                "from its devices; pass tpu_generation='v5e', 'v6e' or 'v7x'"
            )
        generation = found.pop()
    launches = _launches(call.request, generation)
    impl = functools.partial(_tpu_launch_chain, call=call, launches=launches)
    return mlir.lower_fun(impl, multiple_results=True)(ctx, *args)


def _tpu_launch_chain(
    queries, keys, values, kv_cache, kv_lens, page_indices, cu_q_lens, distribution, *sinks, call, launches
):
    """Layouts in jnp, then the decode, prefill and mixed kernels over the same output and cache."""
    q = _layout.prepare_queries(queries, keys.shape[1], call.q_scale, kv_cache.dtype)
    kv_new = _layout.merge_kv(keys, values)
    sinks = tuple(_layout.sinks_per_kv_head(s, keys.shape[1]) for s in sinks)
    tokens = jnp.arange(queries.shape[0])
    lse = jnp.full(queries.shape[:2], jnp.nan, jnp.float32) if call.return_lse else None
    # The sequences of each case: decode [0, i), prefill [i, j), mixed [j, k).
    first_seq = {"decode": 0, "prefill": distribution[0], "mixed": distribution[1]}
    end_seq = {"decode": distribution[0], "prefill": distribution[1], "mixed": distribution[2]}
    for case, _name, backend_config, results, aliases in launches:
        outs = jax.ffi.ffi_call(
            "tpu_custom_call",
            [jax.ShapeDtypeStruct(tuple(shape), jnp.dtype(dtype)) for dtype, shape in results],
            input_output_aliases=dict(aliases),
            custom_call_api_version=1,
            legacy_backend_config=backend_config,
        )(kv_lens, page_indices, cu_q_lens, distribution, q, kv_new, kv_cache, *sinks)
        q, kv_cache = outs[0], outs[1]
        if lse is not None:
            # This launch wrote the tokens of its sequences only.
            mine = (tokens >= cu_q_lens[first_seq[case]]) & (tokens < cu_q_lens[end_seq[case]])
            lse = jnp.where(mine[:, None], _layout.restore_lse(outs[2]), lse)
    results = [_layout.restore_output(q, queries.shape[2]), kv_cache]
    return results + ([lse] if lse is not None else [])


mlir.register_lowering(_rpa_p, _tpu_lowering, platform="tpu")
