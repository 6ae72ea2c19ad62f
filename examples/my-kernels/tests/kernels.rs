//! Every kernel against its plain-Rust reference on interpret mode and PJRT-CPU, at the registry's
//! defaults and at other arguments, and compiled with libtpu for v5e, v6e and v7x. PJRT-CPU and
//! libtpu tests are skipped (with a note) when `scripts/install-plugins` has not installed them.

use my_kernels::{reference, registry};
use rpa_dsl::prelude::*;

/// The arguments each kernel is checked at: its defaults, then other shapes and dtypes.
const CASES: &[(&str, &[&str])] = &[
    ("rms_norm", &[]),
    ("rms_norm", &["rows=48", "cols=128", "block_rows=8", "eps=0.5"]),
    ("rms_norm", &["dtype=bf16"]),
    ("flash_attention", &[]),
    ("flash_attention", &["heads=1", "seq=128", "bq=32", "bkv=64"]),
    ("flash_attention", &["heads=1", "seq=128", "bq=64", "bkv=32"]),
    ("paged_gather", &[]),
    ("paged_gather", &["seqs=5", "pages_per_seq=3", "num_pages=7", "dtype=bf16"]),
];

/// Runs `name` with `args` through `run` and checks the outputs against the reference.
fn check_case(name: &str, args: &[&str], run: impl Fn(&Kernel, &[Array]) -> Vec<Array>) {
    let registry = registry();
    let spec = registry.find(name).unwrap();
    let given: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let args = spec.args(&given).unwrap();
    let kernel = spec.build(&args).unwrap();
    let inputs = spec.make_inputs(&args, &kernel, 7).unwrap();
    let outputs = run(&kernel, &inputs);
    let tolerance = if args.dtype("dtype").is_ok_and(|d| d == Bf16) { 1e-2 } else { spec.default_tolerance() };
    for c in spec.check(&args, &inputs, &outputs, tolerance).expect("a reference").unwrap() {
        assert!(c.ok(), "{name} {}: {} (max |error| {:e})", args.describe(), c.verdict(), c.max_abs_err);
    }
}

#[test]
fn every_kernel_matches_its_reference_on_interpret_mode() {
    for (name, args) in CASES {
        check_case(name, args, |k, x| k.interpret(x).unwrap_or_else(|e| panic!("{name}: {e}")));
    }
}

#[test]
fn every_kernel_matches_its_reference_on_pjrt_cpu() {
    if !rpa_dsl::pjrt::cpu_plugin_path().exists() {
        eprintln!("skipped: the PJRT-CPU plugin is not installed (scripts/install-plugins)");
        return;
    }
    for (name, args) in CASES {
        check_case(name, args, |k, x| rpa_dsl::cpu::run(k, x).unwrap_or_else(|e| panic!("{name}: {e}")));
    }
}

#[test]
fn every_kernel_compiles_for_every_generation() {
    if !rpa_dsl::pjrt::libtpu_path().exists() {
        eprintln!("skipped: libtpu is not installed (scripts/install-plugins)");
        return;
    }
    for spec in registry().kernels() {
        let kernel = spec.build(&spec.args(&[]).unwrap()).unwrap();
        for t in TpuTarget::ALL {
            let c = rpa_dsl::tpu::compile_for(&kernel, t).unwrap_or_else(|e| panic!("{} on {t}: {e}", spec.name()));
            assert!(c.code_size > 0, "{} on {t}: {c:?}", spec.name());
        }
    }
}

#[test]
fn the_references_agree_with_hand_computed_values() {
    // RMSNorm of [3, 4] (mean square 12.5) with weights [1, 2].
    let o = reference::rms_norm(&[3.0, 4.0], &[1.0, 2.0], 2, 0.0);
    let r = 12.5f64.sqrt();
    assert_eq!(o, vec![3.0 / r, 8.0 / r]);
    // The first query attends to the first key only; the second to both, equally when q·k ties.
    let o = reference::causal_attention(&[1.0, 0.0], &[1.0, 1.0], &[2.0, 4.0], 1, 2, 1);
    assert_eq!(o, vec![2.0, 3.0]);
    // Sequence 0 has 3 rows of pages of 2: pages 1 and 0; sequence 1 is empty.
    let pool = [10.0, 11.0, 20.0, 21.0];
    let o = reference::paged_gather(&[1, 0, 1, 1], &[3, 0], &pool, (2, 2, 1));
    assert_eq!(o, vec![20.0, 21.0, 10.0, 11.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn the_flash_attention_loop_promises_aligned_offsets() {
    let k = my_kernels::flash_attention(1, 128, 128, 64, 64).unwrap();
    let mosaic = rpa_dsl::lower::mosaic::lower(&k).unwrap();
    assert!(mosaic.contains("tpu.assume_multiple"), "multiple_of lowers to tpu.assume_multiple");
    assert!(mosaic.contains("scf.for"), "the key loop is a runtime loop");
}

#[test]
fn the_paged_gather_double_buffers_its_pages() {
    let registry = registry();
    let spec = registry.find("paged_gather").unwrap();
    let args = spec.args(&[]).unwrap();
    let kernel = spec.build(&args).unwrap();
    let inputs = spec.make_inputs(&args, &kernel, 0).unwrap();
    let opts = rpa_dsl::interpret::InterpretOptions { trace: true, ..Default::default() };
    let out = rpa_dsl::interpret::run(&kernel, &inputs, &opts).unwrap();
    // Both slots' semaphores carry DMAs, and some DMA is in flight while another lands.
    let dmas: Vec<_> = out.events.iter().filter(|e| e.kind == rpa_dsl::interpret::EventKind::Dma).collect();
    let tracks: std::collections::BTreeSet<&str> = dmas.iter().map(|e| e.track.as_str()).collect();
    assert_eq!(tracks.len(), 2, "{tracks:?}");
    let overlap = dmas.iter().any(|a| dmas.iter().any(|b| a.start < b.start && b.start < a.end));
    assert!(overlap, "the next page's copy starts before the current one is waited on");
}
