//! Random ragged batches (sizes, heads, head_dims, page sizes, dtypes, masks, block sizes) on the
//! kernels vs the reference. The long run (≥ 10,000 batches) is
//! `cargo run --release -p rpa-kernels --example rpa_fuzz -- 10000`.

#[test]
fn forty_random_ragged_batches_match_the_reference() {
    for seed in 0..40 {
        if let Err(e) = rpa_kernels::rpa::fuzz::check_random_batch(seed) {
            panic!("{e}");
        }
    }
}
