//! The `my-kernels` binary: what `rpa_dsl::tool::main` gives a crate for its own kernels — list,
//! ir, mosaic, stablehlo, compile, run, trace — and its errors for bad arguments.

use std::path::PathBuf;
use std::process::{Command, Output};

fn tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_my-kernels")).args(args).output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `args`, expecting `code`; returns stdout and stderr.
fn expect(args: &[&str], code: i32) -> (String, String) {
    let o = tool(args);
    assert_eq!(o.status.code(), Some(code), "{args:?}\nstdout:\n{}\nstderr:\n{}", stdout(&o), stderr(&o));
    (stdout(&o), stderr(&o))
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("my-kernels-tools").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn list_shows_every_kernel_with_its_arguments_and_defaults() {
    let (out, _) = expect(&["list"], 0);
    for line in ["rms_norm  fused RMSNorm", "flash_attention  causal", "paged_gather  double-buffered"] {
        assert!(out.contains(line), "{line}:\n{out}");
    }
    assert!(out.contains("--arg eps=1e-6"), "{out}");
    assert!(out.contains("--arg dtype=f32"), "{out}");
}

#[test]
fn ir_mosaic_and_stablehlo_print_the_kernel_built_from_the_arguments() {
    let (ir, _) = expect(&["ir", "rms_norm", "--arg", "rows=32", "--arg", "block_rows=8"], 0);
    assert!(ir.starts_with("kernel rms_norm grid=[4]"), "{ir}");
    let (ir, _) = expect(&["ir", "rms_norm", "-a", "rows=32,block_rows=16", "--locs"], 0);
    assert!(ir.starts_with("kernel rms_norm grid=[2]") && ir.contains("lib.rs:"), "{ir}");
    let (mosaic, _) = expect(&["mosaic", "flash_attention", "--arg", "seq=128"], 0);
    assert!(mosaic.contains("tpu.assume_multiple") && mosaic.contains("func.func"), "{mosaic}");
    let (custom, _) = expect(&["mosaic", "paged_gather", "--custom-call"], 0);
    assert!(custom.contains("tpu_custom_call"), "{custom}");
    let (hlo, _) = expect(&["stablehlo", "paged_gather"], 0);
    assert!(hlo.contains("func.func public @main") || hlo.contains("func.func @main"), "{hlo}");
    let dir = scratch("ir");
    let file = dir.join("k.ir");
    let (out, _) = expect(&["ir", "paged_gather", "-o", file.to_str().unwrap()], 0);
    assert!(out.starts_with("wrote ") && std::fs::read_to_string(&file).unwrap().starts_with("kernel paged_gather"));
}

#[test]
fn run_checks_each_kernel_against_its_reference() {
    for kernel in ["rms_norm", "flash_attention", "paged_gather"] {
        let (out, _) = expect(&["run", kernel], 0);
        assert!(out.contains("vs the reference") && out.contains(": ok"), "{out}");
        assert!(out.contains("HBM bytes"), "{out}");
    }
    let (out, _) = expect(&["run", "rms_norm", "--no-check"], 0);
    assert!(out.contains("skipped (--no-check)"), "{out}");
}

#[test]
fn run_writes_outputs_and_reads_inputs_as_npy() {
    use rpa_dsl::tool::npy;
    use rpa_dsl::{Array, DType};
    let dir = scratch("npy");
    let x = Array::from_f64(DType::F32, &[16, 128], &(0..2048).map(|i| (i % 13) as f64 - 6.0).collect::<Vec<_>>());
    let w = Array::from_f64(DType::F32, &[1, 128], &[0.5; 128]);
    npy::write_array(&dir.join("x.npy"), &x).unwrap();
    npy::write_array(&dir.join("w.npy"), &w).unwrap();
    let (x_arg, w_arg) = (format!("x={}", dir.join("x.npy").display()), format!("w={}", dir.join("w.npy").display()));
    let out_dir = dir.join("out");
    let args = ["run", "rms_norm", "-a", "rows=16,cols=128,block_rows=8", "--input", &x_arg, "--input", &w_arg];
    let (out, _) = expect(&[&args[..], &["--out", out_dir.to_str().unwrap()]].concat(), 0);
    assert!(out.contains("x f32[16, 128] from ") && out.contains(": ok"), "{out}");
    let o = npy::read(&out_dir.join("o.npy")).unwrap().to_array(DType::F32).unwrap();
    let want = my_kernels::reference::rms_norm(&x.to_f64(), &w.to_f64(), 128, 1e-6);
    assert!(o.to_f64().iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + b.abs())));
    // An input of the wrong shape is refused, naming it.
    let (_, err) = expect(&["run", "rms_norm", "--input", &x_arg], 1);
    assert!(err.contains("--input x:") && err.contains("shape [16, 128]") && err.contains("[64, 256]"), "{err}");
}

#[test]
fn a_tolerance_too_tight_fails_the_check() {
    let (out, err) = expect(&["run", "flash_attention", "-a", "heads=1,seq=128", "--tolerance", "0"], 1);
    assert!(out.contains("MISMATCH"), "{out}");
    assert!(err.contains("check failed: `flash_attention` is out of tolerance"), "{err}");
}

#[test]
fn run_on_pjrt_cpu_matches_the_reference() {
    if !rpa_dsl::pjrt::cpu_plugin_path().exists() {
        eprintln!("skipped: the PJRT-CPU plugin is not installed (scripts/install-plugins)");
        return;
    }
    let (out, _) = expect(&["run", "paged_gather", "--backend", "cpu", "-a", "seqs=2"], 0);
    assert!(out.contains("paged_gather on cpu") && out.contains(": ok"), "{out}");
}

#[test]
fn compile_reports_resources_for_one_generation() {
    if !rpa_dsl::pjrt::libtpu_path().exists() {
        eprintln!("skipped: libtpu is not installed (scripts/install-plugins)");
        return;
    }
    let (out, _) = expect(&["compile", "rms_norm", "--target", "v6e", "-a", "rows=16,block_rows=8"], 0);
    assert!(
        out.contains("v6e rms_norm (rows=16") && out.contains("VMEM") && out.contains("1 kernel compiled"),
        "{out}"
    );
}

#[test]
fn trace_writes_a_chrome_trace() {
    let dir = scratch("trace");
    let file = dir.join("t.json");
    let (out, _) = expect(&["trace", "paged_gather", "--out", file.to_str().unwrap()], 0);
    assert!(out.contains("sems[0]") && out.contains("sems[1]") && out.contains("events"), "{out}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"traceEvents\"") && text.contains("paged_gather"), "{text}");
}

#[test]
fn bad_arguments_are_usage_errors_naming_the_argument() {
    let cases: &[(&[&str], &str)] = &[
        (&["ir", "rms_nrom"], "no kernel `rms_nrom` (the kernels: rms_norm, flash_attention, paged_gather)"),
        (&["ir", "rms_norm", "--arg", "rowz=8"], "--arg rowz: kernel `rms_norm` has no argument `rowz`"),
        (&["ir", "rms_norm", "--arg", "rows=-8"], "--arg rows: `-8` is not a non-negative integer"),
        (&["ir", "rms_norm", "--arg", "eps=tiny"], "--arg eps: `tiny` is not a number"),
        (&["ir", "rms_norm", "--arg", "dtype=f64"], "--arg dtype: `f64` is not a dtype"),
        (&["ir", "rms_norm", "--arg", "rows"], "--arg `rows`: expected NAME=VALUE"),
        (&["run", "paged_gather", "--input", "pool"], "--input `pool`: expected NAME=FILE.npy"),
        (&["run", "paged_gather", "--input", "poll=p.npy"], "kernel `paged_gather` has no input `poll`"),
    ];
    for (args, message) in cases {
        let (_, err) = expect(args, 2);
        assert!(err.contains(message), "{args:?}: {err}");
    }
    // clap's own usage errors.
    expect(&["run", "rms_norm", "--backend", "gpu"], 2);
    expect(&["compile", "--target", "v4"], 2);
    expect(&[], 2);
    let (help, _) = expect(&["--help"], 0);
    assert!(help.contains("my-kernels: a template crate's kernels") && help.contains("trace"), "{help}");
}

#[test]
fn bad_arguments_the_builder_refuses_fail_with_its_message() {
    let (_, err) = expect(&["ir", "rms_norm", "--arg", "block_rows=24"], 1);
    assert!(err.contains("block_rows (24) must divide rows (64)"), "{err}");
    // Shapes too large for a host run are refused before anything is allocated.
    let (_, err) = expect(&["run", "rms_norm", "-a", "rows=4000000000,block_rows=8"], 1);
    assert!(
        err.contains("`rms_norm` (rows=4000000000 cols=256 block_rows=8 eps=1e-6 dtype=f32): its operands take"),
        "{err}"
    );
    assert!(err.contains("more than the 4.00 GiB the tools allocate for a host run"), "{err}");
    let (_, err) = expect(&["ir", "flash_attention", "-a", "bq=48"], 1);
    assert!(err.contains("building `flash_attention` (heads=2 seq=256 d=128 bq=48 bkv=64): bq (48)"), "{err}");
    // A shape the TPU rules refuse: the verifier's diagnostic at the kernel's source line.
    let (_, err) = expect(&["run", "rms_norm", "-a", "block_rows=4"], 1);
    assert!(err.contains("`rms_norm` failed on interpret: examples/my-kernels/src/lib.rs:"), "{err}");
    assert!(err.contains("block shape [4, 256] of `x` breaks the TPU tiling rule"), "{err}");
}

/// The `my-kernels …` lines of the `sh` blocks of `docs/09-your-kernels-in-the-tools.md`.
fn book_commands() -> Vec<Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/09-your-kernels-in-the-tools.md");
    let md = std::fs::read_to_string(path).unwrap();
    let mut in_sh = false;
    let mut commands = Vec::new();
    for line in md.lines() {
        match line.trim().strip_prefix("```") {
            Some(info) => in_sh = !in_sh && info == "sh",
            None if in_sh => {
                if let Some(rest) = line.trim().strip_prefix("my-kernels ") {
                    commands.push(rest.split_whitespace().map(String::from).collect());
                }
            }
            None => {}
        }
    }
    commands
}

#[test]
fn every_command_of_the_book_chapter_runs() {
    let commands = book_commands();
    assert!(commands.len() >= 10, "{commands:?}");
    let dir = scratch("book");
    let cpu = rpa_dsl::pjrt::cpu_plugin_path().exists();
    let libtpu = rpa_dsl::pjrt::libtpu_path().exists();
    for args in &commands {
        if (args[0] == "compile" && !libtpu) || (args.iter().any(|a| a == "cpu") && !cpu) {
            eprintln!("skipped (plugin not installed): my-kernels {}", args.join(" "));
            continue;
        }
        let o = Command::new(env!("CARGO_BIN_EXE_my-kernels")).args(args).current_dir(&dir).output().unwrap();
        assert!(o.status.success(), "my-kernels {}\n{}{}", args.join(" "), stdout(&o), stderr(&o));
    }
    assert!(
        dir.join("out/o.npy").exists() && dir.join("trace.json").exists() && dir.join("paged_gather.mlir").exists()
    );
}
