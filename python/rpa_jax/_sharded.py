"""Tensor parallelism over kv heads, as tpu-inference shards RPA: ``shard_map`` with queries,
keys and values split on their head axis and the cache on its combined-head axis; metadata
replicated."""

import functools

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from ._attention import ragged_paged_attention


def sharded_ragged_paged_attention(
    mesh, axis_name, queries, keys, values, kv_cache, kv_lens, page_indices, cu_q_lens, distribution, **options
):
    """:func:`ragged_paged_attention` with kv heads split over mesh axis ``axis_name``.

    With fewer kv heads than devices on that axis, each kv head is repeated (``jnp.repeat`` of
    keys and values) so that every device holds one, as upstream does; the cache must then be laid
    out for the repeated head count (``get_kv_cache_shape(..., devices, ...)``). Attention sinks
    are split with the query heads.
    """
    devices = mesh.shape[axis_name]
    num_kv_heads = keys.shape[1]
    if num_kv_heads < devices:
        if devices % num_kv_heads:
            raise ValueError(
                f"invalid ragged paged attention call: `keys`: {devices} devices on axis {axis_name!r} "
                f"is not a multiple of num_kv_heads ({num_kv_heads})"
            )
        keys = jnp.repeat(keys, devices // num_kv_heads, axis=1)
        values = jnp.repeat(values, devices // num_kv_heads, axis=1)
    heads = P(None, axis_name, None)
    cache = P(None, None, axis_name, None, None)
    results = (heads, cache) + ((P(None, axis_name),) if options.get("return_lse") else ())
    sink = options.pop("attention_sink", None)
    body = functools.partial(ragged_paged_attention, **options)
    operands = (queries, keys, values, kv_cache, kv_lens, page_indices, cu_q_lens, distribution)
    specs = (heads, heads, heads, cache, P(), P(), P(), P())
    if sink is not None:
        operands, specs = operands + (jnp.asarray(sink),), specs + (P(axis_name),)

    def shard(*args):
        sinks = {"attention_sink": args[8]} if len(args) > 8 else {}
        return body(*args[:8], **sinks)

    return jax.shard_map(shard, mesh=mesh, in_specs=specs, out_specs=results, check_vma=False)(*operands)
