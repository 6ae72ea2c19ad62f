"""rpa_jax on JAX's CPU backend (interpret mode through the XLA FFI handler): outputs against the
f64 reference, caches bit-identical to the reference's and to rpa's Rust launcher."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rpa_jax
from batches import BF16, DECODE, E4M3, E5M2, F32, INT8, MIXED, PREFILL, SMALL, make_batch, reference, rust_interpret, same_bits

TOLERANCE = {F32: 1e-5, BF16: 2e-2}


def check(batch, **options):
    """Runs the batch through rpa_jax, checks it against the reference and the Rust launcher."""
    out, cache = rpa_jax.ragged_paged_attention(*map(jnp.asarray, batch.args()), **options)
    ref_options = {k: v for k, v in options.items() if k not in ("chunk_prefill_size", "m_block_sizes")}
    want_out, want_cache, _ = reference(batch, **ref_options)
    owned = want_out.shape[0]
    got = np.asarray(out[:owned]).astype(np.float64)
    tol = TOLERANCE[np.dtype(batch.queries.dtype)]
    np.testing.assert_allclose(got, want_out, atol=tol, rtol=tol)
    assert same_bits(cache, want_cache), "the cache differs from the reference's writes"
    (rust_out, rust_cache), _ = rust_interpret(batch, **options)
    assert same_bits(out, rust_out) and same_bits(cache, rust_cache), "rpa_jax differs from rpa's Rust launcher"
    return out, cache


@pytest.mark.parametrize("dtype", [F32, BF16], ids=["f32", "bf16"])
@pytest.mark.parametrize("name, seqs, distribution", [
    ("decode", DECODE, (16, 16, 16)),
    ("prefill", PREFILL, (0, 0, 16)),
    ("mixed", MIXED, (0, 0, 16)),
    ("mixed, decodes first", sorted(MIXED, key=lambda s: s[0] > 1), (8, 8, 16)),
])
def test_upstream_lists(name, seqs, distribution, dtype):
    check(make_batch(seqs, heads=(4, 2), q_dtype=dtype, kv_dtype=dtype, distribution=distribution))


@pytest.mark.parametrize("q_dtype, kv_dtype, scales", [
    (BF16, BF16, {}),
    (BF16, E4M3, {"k_scale": 0.5, "v_scale": 0.5}),
    (BF16, E5M2, {}),
    (BF16, E4M3, {"q_scale": 0.5, "k_scale": 0.5, "v_scale": 0.5}),
    (F32, INT8, {"k_scale": 0.05, "v_scale": 0.05}),
])
def test_cache_dtypes(q_dtype, kv_dtype, scales):
    check(make_batch(SMALL, heads=(8, 4), q_dtype=q_dtype, kv_dtype=kv_dtype), **scales)


@pytest.mark.parametrize("head_dim", [64, 80, 128, 256])
def test_head_dims(head_dim):
    check(make_batch(SMALL, heads=(4, 1), head_dim=head_dim), sm_scale=head_dim**-0.5)


@pytest.mark.parametrize("options", [
    {"sliding_window": 5},
    {"sliding_window": 128},
    {"soft_cap": 50.0},
    {"causal": False},
    {"sm_scale": 0.125, "mask_value": -1e30},
    {"m_block_sizes": (8, 32, 8, 16)},
])
def test_options(options):
    check(make_batch(MIXED[:6], heads=(4, 4)), **options)


@pytest.mark.parametrize("dtype", [F32, BF16], ids=["f32", "bf16"])
def test_attention_sinks_join_the_softmax_denominator(dtype):
    # Sinks from far below to far above the logits; decode, chunked prefill and mixed sequences.
    seqs = [(1, 30), (1, 9), (8, 40), (8, 8), (17, 33), (1, 50)]
    batch = make_batch(seqs, heads=(8, 2), q_dtype=dtype, kv_dtype=dtype, distribution=(2, 4, 6))
    sinks = np.array([-30.0, 25.0, 30.0, 32.0, 34.0, 40.0, 200.0, 1.5], np.float32)  # logits are ~30 here
    out, _ = check(batch, attention_sink=sinks, chunk_prefill_size=8)
    plain, _ = rpa_jax.ragged_paged_attention(*map(jnp.asarray, batch.args()), chunk_prefill_size=8)
    owned = int(batch.cu_q_lens[6])
    # A large sink takes most of the weight: its head's output shrinks towards 0.
    assert np.abs(np.asarray(out[:owned, 6], np.float32)).max() < 1e-3 * np.abs(np.asarray(plain[:owned, 6], np.float32)).max()


def test_attention_sinks_with_lse():
    batch = make_batch(SMALL)
    sinks = np.linspace(-2.0, 2.0, batch.queries.shape[1]).astype(np.float32)
    _, _, lse = rpa_jax.ragged_paged_attention(*map(jnp.asarray, batch.args()), attention_sink=sinks, return_lse=True)
    _, _, want = reference(batch, attention_sink=sinks)
    np.testing.assert_allclose(np.asarray(lse[: want.shape[0]]), want, rtol=1e-5)


def test_chunked_prefill():
    # Decode [0, 2), prefill chunks of 8 tokens [2, 4), mixed [4, 6).
    seqs = [(1, 30), (1, 9), (8, 40), (8, 8), (17, 33), (1, 50)]
    check(make_batch(seqs, distribution=(2, 4, 6)), chunk_prefill_size=8)


def test_kv_share_reads_the_cache_and_writes_nothing():
    batch = make_batch([(16, 16), (8, 24), (1, 33)], heads=(8, 1), q_dtype=BF16, kv_dtype=BF16,
                       fill_new_slots=True, distribution=(0, 0, 3))
    out, cache = check(batch, update_kv_cache=False, sm_scale=128**-0.5)
    assert same_bits(cache, batch.kv_cache)
    # Other new K/V change nothing: they are not read.
    other = make_batch([(16, 16), (8, 24), (1, 33)], heads=(8, 1), q_dtype=BF16, kv_dtype=BF16, seed=1)
    batch.keys, batch.values = other.keys, other.values
    out2, _ = rpa_jax.ragged_paged_attention(*map(jnp.asarray, batch.args()), update_kv_cache=False,
                                             sm_scale=128**-0.5)
    assert same_bits(out, out2)


def test_unused_pages_and_slots_stay_untouched():
    batch = make_batch(SMALL, spare_pages=6)
    _, cache = rpa_jax.ragged_paged_attention(*map(jnp.asarray, batch.args()))
    cache = np.asarray(cache)
    written = ~np.isnan(reference(batch)[1])
    # Every element no token was written to is the same NaN as before.
    assert same_bits(np.where(written, 0, cache), np.where(written, 0, batch.kv_cache))
    assert np.isnan(cache[~written]).all() and (~written).sum() > 0


def test_return_lse():
    batch = make_batch(SMALL)
    out, cache, lse = rpa_jax.ragged_paged_attention(*map(jnp.asarray, batch.args()), return_lse=True)
    _, _, want = reference(batch)
    np.testing.assert_allclose(np.asarray(lse[: want.shape[0]]), want, rtol=1e-5)
    assert np.isnan(np.asarray(lse[want.shape[0]:])).all()  # tokens no sequence owns


def test_jit_donation_decode_loop_equals_three_rust_calls():
    batch = make_batch([(1, 17), (1, 40), (1, 5)], heads=(4, 2), distribution=(3, 3, 3))

    @jax.jit
    def step(cache, queries, keys, values, kv_lens, page_indices, cu_q_lens, distribution):
        out, cache = rpa_jax.ragged_paged_attention(queries, keys, values, cache, kv_lens, page_indices, cu_q_lens,
                                                    distribution)
        return out, cache

    step = jax.jit(step, donate_argnums=0)
    cache = jnp.asarray(batch.kv_cache)
    rust_cache = batch.kv_cache
    rng = np.random.default_rng(7)
    for _ in range(3):
        pointer = cache.unsafe_buffer_pointer()
        out, cache = step(cache, *(jnp.asarray(a) for a in (batch.queries, batch.keys, batch.values, batch.kv_lens,
                                                              batch.page_indices, batch.cu_q_lens, batch.distribution)))
        assert cache.unsafe_buffer_pointer() == pointer, "the donated cache was not updated in place"
        batch.kv_cache = rust_cache
        (rust_out, rust_cache), _ = rust_interpret(batch)
        assert same_bits(out, rust_out) and same_bits(cache, rust_cache)
        # The next step: one more token per sequence.
        batch.kv_lens = batch.kv_lens + np.array([1, 1, 1, 0], np.int32)
        batch.queries = rng.random(batch.queries.shape).astype(np.float32)
        batch.keys = rng.random(batch.keys.shape).astype(np.float32)
        batch.values = rng.random(batch.values.shape).astype(np.float32)


def test_jax_export_round_trip():
    batch = make_batch(SMALL)
    args = [jnp.asarray(a) for a in batch.args()]
    exported = jax.export.export(
        jax.jit(rpa_jax.ragged_paged_attention),
        disabled_checks=[jax.export.DisabledSafetyCheck.custom_call("rpa_ragged_paged_attention")],
    )(*args)
    restored = jax.export.deserialize(exported.serialize())
    out, cache = restored.call(*args)
    want_out, want_cache = rpa_jax.ragged_paged_attention(*args)
    assert same_bits(out, want_out) and same_bits(cache, want_cache)
