"""Bad calls: static errors are ValueErrors at trace time naming the argument (the Rust
validator's wording); bad metadata names the sequence and field, from rpa_jax.validate and from
every CPU call; a kernel's run-time error names its line."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rpa_jax
from batches import BF16, F32, SMALL, make_batch


def call(batch, **options):
    return rpa_jax.ragged_paged_attention(*map(jnp.asarray, batch.args()), **options)


def with_(batch, **changes):
    for k, v in changes.items():
        setattr(batch, k, v)
    return batch


@pytest.mark.parametrize("change, argument", [
    (lambda b: with_(b, keys=b.keys.astype(BF16)), "keys"),
    (lambda b: with_(b, values=b.values.astype(BF16)), "values"),
    (lambda b: with_(b, queries=b.queries.astype(np.int32)), "queries"),
    (lambda b: with_(b, queries=b.queries[:, :3]), "keys"),  # 3 q heads, 2 kv heads
    (lambda b: with_(b, values=b.values[:, :1]), "values"),
    (lambda b: with_(b, kv_cache=b.kv_cache[:, :, :1]), "kv_cache"),
    (lambda b: with_(b, kv_cache=np.zeros(b.kv_cache.shape, np.int32)), "kv_cache"),
    (lambda b: with_(b, queries=b.queries[:, :, :64]), "keys"),
    (lambda b: with_(b, cu_q_lens=b.cu_q_lens[:-1]), "cu_q_lens"),
    (lambda b: with_(b, page_indices=b.page_indices[:-1]), "page_indices"),
    (lambda b: with_(b, kv_lens=b.kv_lens.astype(np.float32)), "kv_lens"),
    (lambda b: with_(b, distribution=b.distribution[:2]), "distribution"),
])
def test_bad_shapes_and_dtypes_name_the_argument(change, argument):
    batch = change(make_batch(SMALL))
    with pytest.raises(ValueError, match=f"`{argument}`"):
        call(batch)


def test_page_size_must_fit_the_packing():
    batch = make_batch(SMALL, q_dtype=BF16, kv_dtype=BF16, page_size=16)
    batch.kv_cache = np.zeros(rpa_jax.get_kv_cache_shape(8, 3, 2, 128, BF16), BF16)
    with pytest.raises(ValueError, match="`kv_cache`: page_size 3 must be a multiple of the bf16 packing 2"):
        call(batch)


@pytest.mark.parametrize("options, argument, words", [
    ({"sliding_window": 0}, "sliding_window", "must be positive"),
    ({"sliding_window": -1}, "sliding_window", "must be positive"),
    ({"soft_cap": 0.0}, "soft_cap", "must not be 0"),
    ({"m_block_sizes": (16, 80, 32, 48)}, "m_block_sizes", "must be a multiple of bq_compute"),
    ({"d_block_sizes": (1, 24, 1, 16)}, "d_block_sizes", "multiple of bkv_compute"),
    ({"p_block_sizes": (1, 2)}, "p_block_sizes", "bq_sz"),
    ({"chunk_prefill_size": 0}, "chunk_prefill_size", "must be positive"),
    ({"sliding_window": 2.5}, "sliding_window", "must be an int"),
])
def test_bad_options_name_the_option(options, argument, words):
    with pytest.raises(ValueError, match=f"`{argument}`.*{words}"):
        call(make_batch(SMALL), **options)


@pytest.mark.parametrize("sinks, got", [
    (np.zeros(2, np.float32), "got float32[2]"),  # 4 query heads
    (np.zeros(4, np.float16), "got float16[4]"),
    (np.zeros((4, 1), np.float32), "got float32[4, 1]"),
    (np.zeros(4, np.int32), "got int32[4]"),
])
def test_bad_attention_sinks_name_the_argument(sinks, got):
    with pytest.raises(ValueError, match=rf"`attention_sink`: attention_sink must be f32 \[num_q_heads\] = f32\[4\], {re.escape(got)}"):
        call(make_batch(SMALL), attention_sink=sinks)


def test_non_finite_attention_sinks_name_the_head():
    sinks = np.array([0.0, np.inf, 0.0, 0.0], np.float32)
    with pytest.raises(Exception, match="`attention_sink`: attention_sink of query head 1 is inf"):
        jax.block_until_ready(call(make_batch(SMALL), attention_sink=sinks))


def test_errors_come_at_trace_time():
    batch = make_batch(SMALL)
    structs = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in batch.args()]
    structs[1] = jax.ShapeDtypeStruct(batch.keys.shape, jnp.bfloat16)
    with pytest.raises(ValueError, match="`keys`"):
        jax.jit(rpa_jax.ragged_paged_attention).trace(*structs)


@pytest.mark.parametrize("change, where", [
    (lambda b: b.kv_lens.__setitem__(1, 0), "sequence 1: `kv_lens`"),
    (lambda b: b.kv_lens.__setitem__(2, 10_000), "sequence 2: `kv_lens`"),
    (lambda b: b.page_indices.__setitem__(0, 999), "sequence 0: `page_indices`"),
    (lambda b: b.distribution.__setitem__(2, 9), "`distribution`"),
    (lambda b: b.cu_q_lens.__setitem__(1, 0), "sequence 0: `cu_q_lens`"),
])
def test_bad_metadata_names_the_sequence_and_field(change, where):
    batch = make_batch(SMALL)
    change(batch)
    with pytest.raises(ValueError, match=where):
        rpa_jax.validate(*batch.args())
    # The CPU path checks the metadata on every call, also under jit.
    with pytest.raises(Exception, match=where):
        jax.block_until_ready(jax.jit(rpa_jax.ragged_paged_attention)(*map(jnp.asarray, batch.args())))


def test_validate_accepts_good_metadata():
    rpa_jax.validate(*make_batch(SMALL).args())


def test_unchecked_bad_metadata_fails_in_the_kernel_at_its_line():
    batch = make_batch(SMALL)
    batch.page_indices[0] = 999  # outside the cache
    with pytest.raises(Exception, match=r"kernel\.rs:\d+"):
        jax.block_until_ready(call(batch, check_metadata=False))
