use rpa_dsl::DType;
use rpa_kernels::rpa::launch::{ragged_paged_attention_on, Backend};
use rpa_kernels::rpa::testing::{make_batch, BatchSpec, MIXED};
use rpa_kernels::rpa::RpaOptions;
fn main() {
    let x = make_batch(&BatchSpec::new(&MIXED, (32, 8), 128, 16, DType::F32));
    let opts = RpaOptions { sm_scale: 1.0 / (128f64).sqrt(), ..Default::default() };
    for _ in 0..3 {
        let t = std::time::Instant::now();
        ragged_paged_attention_on(Backend::PjrtCpu, &x, &opts).unwrap();
        println!("{:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    }
}
