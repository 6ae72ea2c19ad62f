"""rpa's Ragged Paged Attention as a JAX function, with tpu-inference v3's signature.

On TPU the call lowers to rpa's Mosaic kernels (``tpu_custom_call``s: decode, chunked prefill,
mixed); on CPU to rpa's interpret mode through an XLA FFI handler written in Rust.
"""

from ._attention import ragged_paged_attention, validate
from ._layout import get_kv_cache_shape, merge_kv
from ._sharded import sharded_ragged_paged_attention

__all__ = [
    "ragged_paged_attention",
    "sharded_ragged_paged_attention",
    "validate",
    "get_kv_cache_shape",
    "merge_kv",
]
