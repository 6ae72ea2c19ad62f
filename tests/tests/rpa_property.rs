//! Random ragged batches (sizes, distributions, heads, head_dims, page sizes, dtypes incl. fp8 and
//! int8 caches, masks, KV-share, block sizes, log-sum-exp) on the kernels vs the reference. The long
//! run (≥ 10,000 batches) is `cargo run --release -p rpa-kernels --example rpa_fuzz -- 10000`.

use rpa_kernels::rpa::fuzz::check_random_batch;
use rpa_kernels::rpa::launch::Backend;

#[test]
fn forty_random_ragged_batches_match_the_reference_on_interpret_mode() {
    for seed in 0..40 {
        if let Err(e) = check_random_batch(seed, Backend::Interpret) {
            panic!("{e}");
        }
    }
}

#[test]
fn six_random_ragged_batches_match_the_reference_on_pjrt_cpu() {
    for seed in 100..106 {
        if let Err(e) = check_random_batch(seed, Backend::PjrtCpu) {
            panic!("{e}");
        }
    }
}
