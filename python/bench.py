"""rpa_jax benchmark on the upstream mixed list (heads 32/8, head_dim 128, page 16), f32 and bf16:

- jax trace + lower time of ``rpa_jax.ragged_paged_attention`` for a v6e chip (all launches:
  decode and mixed), the first time (kernels built in Rust: IR, verifier, Mosaic text) and again
  (kernels cached per configuration);
- the CPU call time (jitted, cache donated; interpret mode through the XLA FFI handler) against
  rpa's Rust launcher in interpret mode on the same batch (the median of ``--calls`` calls each;
  the Rust time excludes the conversions from and to Python bytes).

Run: .cache/venv/bin/python python/bench.py [--calls N]
"""

import argparse
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent / "tests"))
import conftest  # noqa: E402,F401  (environment: host devices, libtpu for AOT lowering)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

import rpa_jax  # noqa: E402
from batches import BF16, F32, MIXED, make_batch, rust_interpret  # noqa: E402


def lower_seconds(batch, device):
    sharding = NamedSharding(Mesh(np.array([device]), ("x",)), P())
    structs = [jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding) for a in batch.args()]
    start = time.perf_counter()
    # A new function each time: jax traces and lowers it anew (Rust's kernels may be cached).
    jax.jit(lambda *args: rpa_jax.ragged_paged_attention(*args)).trace(*structs).lower()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5)
    calls = parser.parse_args().calls
    from jax.experimental import topologies

    device = topologies.get_topology_desc("v6e:1x1", "tpu", chips_per_host_bounds=[1, 1, 1]).devices[0]
    lower_seconds(make_batch([(1, 8)]), device)  # jax's own first-lowering costs, not rpa's
    print(f"{'batch':<28} {'lower (cold)':>13} {'lower (warm)':>13} {'jax CPU call':>13} {'Rust interpret':>15} {'ratio':>6}")
    for name, dtype in [("mixed (32/8, D128, f32)", F32), ("mixed (32/8, D128, bf16)", BF16)]:
        batch = make_batch(MIXED, heads=(32, 8), head_dim=128, page_size=16, q_dtype=dtype, kv_dtype=dtype)
        cold = lower_seconds(batch, device)
        warm = lower_seconds(batch, device)
        step = jax.jit(rpa_jax.ragged_paged_attention, donate_argnums=3)
        args = [jnp.asarray(a) for a in batch.args()]
        jax.block_until_ready(step(*args))  # compile (donates the cache)
        jax_times = []
        for _ in range(calls):
            args[3] = jax.block_until_ready(jnp.asarray(batch.kv_cache))
            start = time.perf_counter()
            jax.block_until_ready(step(*args))
            jax_times.append(time.perf_counter() - start)
        rust_times = [rust_interpret(batch)[1] for _ in range(calls)]
        jax_ms, rust_ms = 1e3 * statistics.median(jax_times), 1e3 * statistics.median(rust_times)
        print(f"{name:<28} {1e3 * cold:>10.0f} ms {1e3 * warm:>10.0f} ms {jax_ms:>10.0f} ms {rust_ms:>12.0f} ms "
              f"{jax_ms / rust_ms:>6.2f}")


if __name__ == "__main__":
    main()
