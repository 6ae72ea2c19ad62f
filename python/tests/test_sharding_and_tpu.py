"""rpa_jax under shard_map (tensor parallel over kv heads on four host devices) and compiled ahead
of time for TPU topologies with the project's pinned libtpu (no TPU needed)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import rpa_jax
from batches import BF16, F32, MIXED, SMALL, make_batch, same_bits
from conftest import LIBTPU


def cpu_mesh():
    return Mesh(np.array(jax.devices("cpu")[:4]), ("model",))


def test_shard_map_over_kv_heads_equals_the_unsharded_call():
    batch = make_batch(MIXED[:8], heads=(16, 8))
    args = [jnp.asarray(a) for a in batch.args()]
    want_out, want_cache = rpa_jax.ragged_paged_attention(*args)
    args[3] = jnp.asarray(batch.kv_cache)  # the call donated the cache
    out, cache = jax.jit(functools.partial(rpa_jax.sharded_ragged_paged_attention, cpu_mesh(), "model"))(*args)
    assert same_bits(out, want_out) and same_bits(cache, want_cache)


def test_attention_sinks_are_split_with_the_query_heads():
    batch = make_batch(MIXED[:8], heads=(16, 8))
    sinks = np.linspace(-3.0, 3.0, 16).astype(np.float32)
    args = [jnp.asarray(a) for a in batch.args()]
    want_out, _ = rpa_jax.ragged_paged_attention(*args, attention_sink=sinks)
    args[3] = jnp.asarray(batch.kv_cache)
    out, _ = rpa_jax.sharded_ragged_paged_attention(cpu_mesh(), "model", *args, attention_sink=sinks)
    assert same_bits(out, want_out)


def test_fewer_kv_heads_than_devices_are_replicated():
    # 2 kv heads on 4 devices: each kv head is repeated twice; the cache holds 4 heads.
    batch = make_batch(SMALL, heads=(8, 2), q_dtype=BF16, kv_dtype=BF16)
    args = [jnp.asarray(a) for a in batch.args()]
    want_out, want_cache = rpa_jax.ragged_paged_attention(*args)
    wide = make_batch(SMALL, heads=(8, 4), q_dtype=BF16, kv_dtype=BF16)
    # The same cached tokens, each head twice (bf16 packs K and V of one head per word).
    wide_cache = np.repeat(np.asarray(batch.kv_cache), 2, axis=2)
    args[3] = jnp.asarray(wide_cache)
    assert wide_cache.shape == wide.kv_cache.shape
    out, cache = rpa_jax.sharded_ragged_paged_attention(cpu_mesh(), "model", *args)
    np.testing.assert_array_equal(np.asarray(out, np.float32), np.asarray(want_out, np.float32))
    assert same_bits(np.asarray(cache)[:, :, ::2], want_cache) and same_bits(np.asarray(cache)[:, :, 1::2], want_cache)


needs_libtpu = pytest.mark.skipif(not LIBTPU.exists(), reason="scripts/install-plugins installs libtpu")


def abstract_args(batch, sharding):
    return [jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding) for a in batch.args()]


def topology(name):
    from jax.experimental import topologies

    single = {} if "2x2" in name else {"chips_per_host_bounds": [1, 1, 1]}
    return topologies.get_topology_desc(name, "tpu", **single)


@needs_libtpu
@pytest.mark.parametrize("name", ["v5e:1x1", "v6e:1x1", "tpu7x:1x1x1"])
def test_aot_compiles_for_tpu(name):
    batch = make_batch(SMALL, heads=(8, 2), q_dtype=BF16, kv_dtype=BF16)
    device = topology(name).devices[0]
    sharding = NamedSharding(Mesh(np.array([device]), ("x",)), P())
    lowered = jax.jit(rpa_jax.ragged_paged_attention).trace(*abstract_args(batch, sharding)).lower()
    text = lowered.as_text()
    assert text.count("tpu_custom_call") == 2  # decode and mixed
    compiled = lowered.compile()
    assert compiled.output_shardings is not None


@needs_libtpu
def test_aot_compiles_with_attention_sinks():
    batch = make_batch(SMALL, heads=(8, 2), q_dtype=BF16, kv_dtype=BF16)
    device = topology("v6e:1x1").devices[0]
    sharding = NamedSharding(Mesh(np.array([device]), ("x",)), P())
    sinks = jax.ShapeDtypeStruct((8,), jnp.float32, sharding=sharding)
    f = jax.jit(lambda *args: rpa_jax.ragged_paged_attention(*args[:8], attention_sink=args[8]))
    lowered = f.trace(*abstract_args(batch, sharding), sinks).lower()
    # The sinks reach both kernels in their layout [Hkv, G, 128].
    assert lowered.as_text().count("tensor<2x4x128xf32>") >= 2
    lowered.compile()


@needs_libtpu
def test_aot_compiles_sharded_over_v6e_2x2():
    batch = make_batch(SMALL, heads=(16, 8), q_dtype=BF16, kv_dtype=BF16)
    mesh = Mesh(np.array(topology("v6e:2x2").devices), ("model",))
    specs = [P(None, "model", None)] * 3 + [P(None, None, "model", None, None)] + [P()] * 4
    structs = [jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=NamedSharding(mesh, s)) for a, s in zip(batch.args(), specs)]
    f = jax.jit(functools.partial(rpa_jax.sharded_ragged_paged_attention, mesh, "model"), donate_argnums=3)
    lowered = f.trace(*structs).lower()
    # Each device runs the kernels on its 2 of the 8 kv heads: new keys [tokens, 2, 128].
    assert f"tensor<{batch.keys.shape[0]}x2x128xbf16>" in lowered.as_text()
    lowered.compile()


def test_tpu_export_carries_the_mosaic_kernels():
    batch = make_batch(SMALL, q_dtype=BF16, kv_dtype=BF16)
    f = jax.jit(functools.partial(rpa_jax.ragged_paged_attention, tpu_generation="v6e", chunk_prefill_size=8))
    exported = jax.export.export(f, platforms=["tpu"])(*[jax.ShapeDtypeStruct(a.shape, a.dtype) for a in batch.args()])
    text = exported.mlir_module()
    assert text.count("tpu_custom_call") == 3  # decode, prefill, mixed
    assert "custom_call_config" in text
