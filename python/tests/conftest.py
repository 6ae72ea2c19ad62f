"""Test environment: four host devices (shard_map tests) and the project's pinned libtpu for
ahead-of-time TPU compiles (no TPU needed), set before jax is imported."""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIBTPU = ROOT / ".cache" / "plugins" / "libtpu.so"

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
if LIBTPU.exists():
    os.environ.setdefault("TPU_LIBRARY_PATH", str(LIBTPU))
# libtpu without a TPU host: no metadata-server look-ups, a host description, and no exclusive
# lock (other processes on this machine may hold libtpu too).
for var, value in [
    ("TPU_SKIP_MDS_QUERY", "1"),
    ("TPU_WORKER_HOSTNAMES", "localhost"),
    ("TPU_ACCELERATOR_TYPE", "v5litepod-1"),
    ("ALLOW_MULTIPLE_LIBTPU_LOAD", "1"),
]:
    os.environ.setdefault(var, value)
