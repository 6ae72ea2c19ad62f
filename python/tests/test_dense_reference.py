"""The jax.numpy dense reference that rpa's benchmark compares with computes ragged paged
attention: its output matches the f64 reference and its cache rpa_jax's, bit for bit."""

import pathlib
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from batches import BF16, F32, MIXED, SMALL, make_batch, reference

sys.path.insert(0, str(pathlib.Path(__file__).parents[1]))
import dense_reference  # noqa: E402

import rpa_jax  # noqa: E402


@pytest.mark.parametrize("dtype", [F32, BF16])
@pytest.mark.parametrize("options", [{}, {"sliding_window": 24, "soft_cap": 30.0}, {"causal": False}])
def test_dense_reference_matches(dtype, options):
    batch = make_batch(SMALL, heads=(4, 2), head_dim=128, page_size=16, q_dtype=dtype, kv_dtype=dtype)
    max_q = max(q for q, _ in SMALL)
    sm_scale = 128 ** -0.5
    out, cache = dense_reference.ragged_paged_attention(
        *(jnp.asarray(a) for a in batch.args()), max_q=max_q, sm_scale=sm_scale, **options
    )
    want_out, _, _ = reference(batch, sm_scale=sm_scale, **options)
    tokens = len(want_out)
    tol = 1e-5 if dtype == F32 else 2e-2
    np.testing.assert_allclose(np.asarray(out, np.float64)[:tokens], want_out[:tokens], rtol=tol, atol=tol)
    _, rpa_cache = rpa_jax.ragged_paged_attention(*(jnp.asarray(a) for a in batch.args()), sm_scale=sm_scale, **options)
    assert np.asarray(cache).tobytes() == np.asarray(rpa_cache).tobytes()


def test_the_upstream_mixed_list():
    batch = make_batch(MIXED, heads=(8, 2), head_dim=128, page_size=16)
    out, _ = dense_reference.ragged_paged_attention(
        *(jnp.asarray(a) for a in batch.args()), max_q=max(q for q, _ in MIXED), sm_scale=0.1
    )
    want, _, _ = reference(batch, sm_scale=0.1)
    tokens = len(want)
    np.testing.assert_allclose(np.asarray(out, np.float64)[:tokens], want[:tokens], rtol=1e-5, atol=1e-5)
