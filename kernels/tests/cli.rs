//! The `rpa` binary end to end: exit codes (0 ok, 1 failed check or run error, 2 usage), the key
//! lines of its output, and the files it writes (read back and compared with what the library
//! computes for the same batch).

use clap::Parser;
use rpa_dsl::ir::printer::{print, PrintOptions};
use rpa_dsl::DType;
use rpa_kernels::cli::batch::Batch;
use rpa_kernels::cli::{bench, npy, Cli, Command as Sub};
use rpa_kernels::rpa::launch::{self, Backend, RpaOutput};
use rpa_kernels::rpa::{RpaCase, RpaOptions};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NO_PLUGIN: &str = "/nonexistent/rpa-test-plugin.so";

fn rpa_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rpa"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the rpa binary runs")
}

fn rpa(args: &[&str]) -> Output {
    rpa_env(args, &[])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, showing the output when it differs.
fn expect_code(o: &Output, code: i32, what: &str) {
    assert_eq!(o.status.code(), Some(code), "{what}\n--- stdout\n{}\n--- stderr\n{}", stdout(o), stderr(o));
}

/// A fresh directory for one test.
fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rpa-cli").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The batch the binary builds for these `run` arguments, built by the library.
fn library_batch(run_args: &[&str]) -> Batch {
    let argv = [&["rpa", "run"][..], run_args].concat();
    match Cli::try_parse_from(argv).expect("arguments parse").command {
        Sub::Run(r) => r.batch.load(None).expect("the batch builds"),
        _ => unreachable!(),
    }
}

fn library_run(batch: &Batch, backend: Backend) -> RpaOutput {
    launch::run(backend, &batch.inputs, &batch.opts).expect("the library runs the batch")
}

fn read_npy(path: &Path, dtype: DType) -> rpa_dsl::Array {
    npy::read(path).unwrap().to_array(dtype).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn have_cpu_plugin() -> bool {
    rpa_dsl::pjrt::cpu_plugin_path().exists()
}

fn have_libtpu() -> bool {
    rpa_dsl::pjrt::libtpu_path().exists()
}

/// A tiny batch: 1 decode, 1 prefill chunk of 4, 1 mixed sequence, given out of order.
const TINY: &[&str] = &["--seqs", "7:20,1:9,4:8", "--heads", "4:2", "--chunk", "4", "--page-size", "8"];

#[test]
fn every_subcommand_has_help() {
    let top = rpa(&["--help"]);
    expect_code(&top, 0, "rpa --help");
    for sub in ["demo", "run", "ir", "mosaic", "stablehlo", "compile", "bench", "trace"] {
        assert!(stdout(&top).contains(&format!("  {sub} ")), "rpa --help lists {sub}");
        let o = rpa(&[sub, "--help"]);
        expect_code(&o, 0, sub);
        assert!(stdout(&o).contains(&format!("Usage: rpa {sub}")), "{sub} --help:\n{}", stdout(&o));
    }
    assert!(stdout(&rpa(&["run", "--help"])).contains("--kv-dtype"));
    assert!(!stdout(&rpa(&["bench", "--help"])).contains("--tiny"), "--tiny is hidden");
}

#[test]
fn usage_errors_exit_with_2() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "Usage: rpa <COMMAND>"),
        (&["frobnicate"], "unrecognized subcommand"),
        (&["run"], "--seqs"),
        (&["run", "--seqs", "1:x"], "kv_len `x`"),
        (&["run", "--seqs", "4:2"], "smaller than q_len"),
        (&["run", "--seqs", "1:8", "--heads", "6:4"], "multiple"),
        (&["run", "--seqs", "1:8", "--backend", "gpu"], "invalid value 'gpu'"),
        (&["run", "--seqs", "1:8", "--blocks", "0,16"], "positive"),
        (&["run", "--seqs", "1:8", "--head-dim", "0"], "--head-dim"),
        (&["run", "--seqs", "1:8", "--save-inputs"], "--out"),
        (&["ir", "--kernel", "nope"], "invalid value 'nope'"),
        (&["compile"], "--target"),
        (&["bench", "--backend", "gpu"], "invalid value"),
    ];
    for (args, message) in cases {
        let o = rpa(args);
        expect_code(&o, 2, &format!("{args:?}"));
        assert!(stderr(&o).contains(message), "{args:?}: stderr lacks {message:?}:\n{}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?} printed to stdout: {}", stdout(&o));
    }
}

#[test]
fn run_reports_and_writes_what_the_library_computes() {
    for (name, extra, dtype) in [
        ("f32", &["--dtype", "f32", "--lse"][..], DType::F32),
        ("bf16-int8", &["--dtype", "bf16", "--kv-dtype", "int8", "--soft-cap", "30"][..], DType::Bf16),
        ("bf16-fp8-window", &["--kv-dtype", "fp8e5m2", "--sliding-window", "5", "--kv-share"][..], DType::Bf16),
    ] {
        let dir = tmp(&format!("run-{name}"));
        let args = [TINY, extra].concat();
        let o = rpa(&[&["run", "--out", s(&dir)][..], &args].concat());
        expect_code(&o, 0, name);
        let out = stdout(&o);
        for line in ["rpa run — backend: interpret", "max |error|", "bit-exact", "HBM bytes", "ms per call"] {
            assert!(out.contains(line), "{name}: no {line:?} in\n{out}");
        }
        assert!(out.contains("reordered decode → prefill → mixed for the kernels: 1:9,4:8,7:20"), "{out}");
        assert!(out.contains("3 sequences (1 decode, 1 prefill chunk of 4, 1 mixed)"), "{out}");
        let batch = library_batch(&args);
        assert_eq!(batch.inputs.distribution, [1, 2, 3]);
        let want = library_run(&batch, Backend::Interpret);
        let kv_dtype = batch.inputs.kv_cache.dtype();
        assert_eq!(read_npy(&dir.join("output.npy"), dtype), want.output, "{name}: output.npy");
        assert_eq!(read_npy(&dir.join("kv_cache.npy"), kv_dtype), want.kv_cache, "{name}: kv_cache.npy");
        assert_eq!(dir.join("lse.npy").exists(), want.lse.is_some());
        if let Some(lse) = &want.lse {
            let got = read_npy(&dir.join("lse.npy"), DType::F32);
            assert_eq!(got.bits(), lse.bits(), "lse.npy (NaN rows included)");
        }
        let summary = read_json(&dir.join("summary.json"));
        assert_eq!(summary["passed"], true, "{summary}");
        assert_eq!(summary["check"]["cache_bit_exact"], true);
        assert_eq!(summary["distribution"], serde_json::json!([1, 2, 3]));
        assert_eq!(summary["hbm_bytes"], want.report.hbm_bytes());
        assert_eq!(summary["files"]["output.npy"]["dtype"], dtype.name());
        assert_eq!(summary["files"]["output.npy"]["stored_as"], npy::descr(dtype));
    }
}

#[test]
fn saved_inputs_and_json_files_rerun_the_same_call() {
    let dir = tmp("roundtrip");
    let (first, again, json_out) = (dir.join("first"), dir.join("again"), dir.join("json"));
    let args = [TINY, &["--dtype", "f32", "--lse"]].concat();
    expect_code(&rpa(&[&["run", "--out", s(&first), "--save-inputs"][..], &args].concat()), 0, "save");
    for f in ["queries", "keys", "values", "kv_cache", "kv_lens", "page_indices", "cu_q_lens", "distribution"] {
        assert!(first.join("inputs").join(format!("{f}.npy")).exists(), "{f}.npy saved");
    }
    let o = rpa(&["run", "--input", s(&first.join("inputs")), "--out", s(&again)]);
    expect_code(&o, 0, "rerun from .npy files");
    assert!(stdout(&o).contains("3 sequences (1 decode, 1 prefill chunk of 4, 1 mixed)"), "{}", stdout(&o));
    let o = rpa(&["run", "--input", s(&first.join("inputs")), "--seqs", "1:9"]);
    expect_code(&o, 2, "--seqs with .npy files");
    assert!(stderr(&o).contains("--seqs shapes a generated batch"), "{}", stderr(&o));
    let json = dir.join("batch.json");
    std::fs::write(&json, r#"{"seqs": [[7, 20], [1, 9], [4, 8]], "heads": "4:2", "chunk": 4, "page_size": 8, "dtype": "f32", "lse": true}"#)
        .unwrap();
    expect_code(&rpa(&["run", "--input", s(&json), "--out", s(&json_out)]), 0, "run from JSON");
    for f in ["output.npy", "kv_cache.npy", "lse.npy"] {
        let a = std::fs::read(first.join(f)).unwrap();
        assert_eq!(a, std::fs::read(again.join(f)).unwrap(), "{f} from the .npy inputs");
        assert_eq!(a, std::fs::read(json_out.join(f)).unwrap(), "{f} from the JSON batch");
    }
    // Flags override the file's fields.
    let o = rpa(&["run", "--input", s(&json), "--seqs", "1:5,1:12"]);
    expect_code(&o, 0, "override");
    assert!(stdout(&o).contains("2 sequences (2 decode, 0 prefill chunks of 4, 0 mixed)"), "{}", stdout(&o));
    // A file with an unknown field or bad sequences is refused (exit 1), naming the file.
    std::fs::write(&json, r#"{"seqs": "1:9", "sequences": 3}"#).unwrap();
    let o = rpa(&["run", "--input", s(&json)]);
    expect_code(&o, 1, "unknown field");
    assert!(stderr(&o).contains("batch.json") && stderr(&o).contains("sequences"), "{}", stderr(&o));
}

#[test]
fn failed_checks_and_refused_batches_exit_with_1() {
    // A tolerance of zero: the f32 kernels are close to the f64 reference, not equal.
    let o = rpa(&[&["run", "--tolerance", "0", "--dtype", "f32"][..], TINY].concat());
    expect_code(&o, 1, "zero tolerance");
    assert!(stdout(&o).contains("MISMATCH") && stdout(&o).contains("first mismatch"), "{}", stdout(&o));
    assert!(stderr(&o).contains("check failed: the output is out of tolerance"), "{}", stderr(&o));
    // Refused by the library's validation.
    let o = rpa(&["run", "--seqs", "1:9", "--heads", "4:2", "--kv-dtype", "fp8e4m3", "--page-size", "2"]);
    expect_code(&o, 1, "page size vs packing");
    assert!(stderr(&o).contains("packing"), "{}", stderr(&o));
    // Bad metadata in saved inputs: a kv_len smaller than its q_len.
    let dir = tmp("bad-inputs");
    expect_code(&rpa(&[&["run", "--out", s(&dir), "--save-inputs"][..], TINY].concat()), 0, "save");
    let inputs = dir.join("inputs");
    let mut kv = npy::read(&inputs.join("kv_lens.npy")).unwrap().to_i32().unwrap();
    kv[2] = 3;
    npy::write_i32(&inputs.join("kv_lens.npy"), &[kv.len()], &kv).unwrap();
    for extra in [&[][..], &["--no-validate"]] {
        // Also when the calls skip validation: the batch is validated once before them.
        let o = rpa(&[&["run", "--input", s(&inputs)][..], extra].concat());
        expect_code(&o, 1, "bad kv_lens");
        assert!(stderr(&o).contains("sequence 2") && stderr(&o).contains("kv_lens"), "{}", stderr(&o));
    }
    std::fs::remove_file(inputs.join("values.npy")).unwrap();
    let o = rpa(&["run", "--input", s(&inputs)]);
    expect_code(&o, 1, "missing file");
    assert!(stderr(&o).contains("values.npy"), "{}", stderr(&o));
}

/// Saves the inputs of a `run` with `args` into `dir/inputs` and returns that directory.
fn saved_inputs(dir: &Path, args: &[&str]) -> PathBuf {
    expect_code(&rpa(&[&["run", "--out", s(dir), "--save-inputs"][..], args].concat()), 0, "save inputs");
    dir.join("inputs")
}

/// Writes `array` as `np.save` writes an array of its dtype (the descrs of numpy 1.26–2.4 with
/// ml_dtypes 0.4–0.7; `npy::encode` writes numpy's header bytes, see `tests/fixtures/npy`).
fn save_as_numpy(path: &Path, array: &rpa_dsl::Array) {
    let descr = match array.dtype() {
        DType::F32 => "<f4",
        DType::F16 => "<f2",
        DType::Bf16 => "<V2",
        DType::F8E4M3 => "<V1",
        DType::F8E5M2 => "<f1",
        DType::I8 => "|i1",
        DType::I32 => "<i4",
        d => panic!("no RPA input is {d}"),
    };
    std::fs::write(path, npy::encode(descr, array.shape(), &array.to_le_bytes())).unwrap();
}

/// Writes `values` as f64 (`'<f8'`) or i64 (`'<i8'`) data.
fn save_wide(path: &Path, shape: &[usize], values: &[f64], float: bool) {
    let bytes: Vec<u8> = if float {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    } else {
        values.iter().flat_map(|&v| (v as i64).to_le_bytes()).collect()
    };
    std::fs::write(path, npy::encode(if float { "<f8" } else { "<i8" }, shape, &bytes)).unwrap();
}

#[test]
fn input_arrays_of_another_dtype_are_refused_naming_the_one_expected() {
    let dir = tmp("wrong-dtypes");
    let inputs = saved_inputs(&dir, &[TINY, &["--dtype", "f32"]].concat());
    let refused = |what: &str, needles: &[&str]| {
        let o = rpa(&["run", "--input", s(&inputs)]);
        expect_code(&o, 1, what);
        for n in needles {
            assert!(stderr(&o).contains(n), "{what}: stderr lacks {n:?}:\n{}", stderr(&o));
        }
    };
    let queries = read_npy(&inputs.join("queries.npy"), DType::F32);
    save_wide(&inputs.join("queries.npy"), queries.shape(), &queries.to_f64(), true);
    refused("f64 queries", &["queries.npy: dtype f64 ('<f8'), expected f32 (--dtype)"]);
    // Without batch.json, any query dtype of --dtype would do.
    std::fs::remove_file(inputs.join("batch.json")).unwrap();
    refused("f64 queries", &["queries.npy: dtype f64 ('<f8'), expected f32, bf16 or f16 (--dtype)"]);
    save_as_numpy(&inputs.join("queries.npy"), &queries);
    let keys = read_npy(&inputs.join("keys.npy"), DType::F32);
    save_as_numpy(&inputs.join("keys.npy"), &rpa_dsl::Array::from_f64(DType::Bf16, keys.shape(), &keys.to_f64()));
    refused("bf16 keys", &["keys.npy: dtype '<V2' (bits without type information: bf16 or u16), expected f32"]);
    save_as_numpy(&inputs.join("keys.npy"), &keys);
    let kv_lens = npy::read(&inputs.join("kv_lens.npy")).unwrap().to_i32().unwrap();
    let wide: Vec<f64> = kv_lens.iter().map(|&v| v as f64).collect();
    save_wide(&inputs.join("kv_lens.npy"), &[wide.len()], &wide, false);
    refused("i64 kv_lens", &["kv_lens.npy: dtype i64 ('<i8'), expected i32 (the metadata are int32)"]);
    npy::write_i32(&inputs.join("kv_lens.npy"), &[kv_lens.len()], &kv_lens).unwrap();
    expect_code(&rpa(&["run", "--input", s(&inputs), "--chunk", "4"]), 0, "the same arrays as saved");
    // A JSON batch names its dtypes with the flags' names.
    let json = dir.join("batch.json");
    for (field, value, expected) in
        [("dtype", "f64", "f32, bf16 or f16"), ("kv_dtype", "float8_e4m3fnuz", "fp8e4m3, fp8e5m2 or int8")]
    {
        std::fs::write(&json, format!(r#"{{"seqs": "1:9", "{field}": "{value}"}}"#)).unwrap();
        let o = rpa(&["run", "--input", s(&json)]);
        expect_code(&o, 1, field);
        let message = format!("`{field}` is \"{value}\", expected");
        assert!(stderr(&o).contains(s(&json)) && stderr(&o).contains(&message), "{}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{}", stderr(&o));
    }
}

#[test]
fn every_numpy_and_ml_dtypes_dtype_round_trips_through_input() {
    // The RPA inputs in every dtype they can have, saved as numpy and ml_dtypes save them.
    for (q, kv) in
        [("f32", "f32"), ("bf16", "bf16"), ("f16", "f16"), ("bf16", "fp8e4m3"), ("f32", "fp8e5m2"), ("bf16", "int8")]
    {
        let args = [TINY, &["--dtype", q, "--kv-dtype", kv]].concat();
        let batch = library_batch(&args);
        let x = &batch.inputs;
        let dir = tmp(&format!("numpy-{q}-{kv}"));
        let inputs = dir.join("inputs");
        std::fs::create_dir_all(&inputs).unwrap();
        let i32s = |v: &[i32], shape: &[usize]| rpa_dsl::Array::from_i32(shape, v);
        let (seqs, pps) = (x.max_num_seqs(), x.pages_per_seq());
        for (name, a) in [
            ("queries", x.queries.clone()),
            ("keys", x.keys.clone()),
            ("values", x.values.clone()),
            ("kv_cache", x.kv_cache.clone()),
            ("kv_lens", i32s(&x.kv_lens, &[seqs])),
            ("page_indices", i32s(&x.page_indices, &[seqs, pps])),
            ("cu_q_lens", i32s(&x.cu_q_lens, &[seqs + 1])),
            ("distribution", i32s(&x.distribution, &[3])),
        ] {
            save_as_numpy(&inputs.join(format!("{name}.npy")), &a);
        }
        // No batch.json: the dtypes come from the files, except for the raw bytes of '<V1'.
        let run = [&["run", "--input", s(&inputs), "--chunk", "4", "--out", s(&dir)][..]].concat();
        let o = rpa(&run);
        if kv == "fp8e4m3" {
            expect_code(&o, 1, "'<V1' without --kv-dtype");
            let message = "kv_cache.npy: dtype '<V1' (bits without type information: fp8e4m3, fp8e5m2 or u8) could \
                           be fp8e4m3 or fp8e5m2: say which (--kv-dtype)";
            assert!(stderr(&o).contains(message), "{}", stderr(&o));
            expect_code(&rpa(&[&run[..], &["--kv-dtype", kv]].concat()), 0, "'<V1' with --kv-dtype");
        } else {
            expect_code(&o, 0, &format!("{q} queries, {kv} cache"));
        }
        let want = library_run(&batch, Backend::Interpret);
        assert_eq!(read_npy(&dir.join("output.npy"), x.queries.dtype()), want.output, "{q}/{kv}: output");
        assert_eq!(read_npy(&dir.join("kv_cache.npy"), x.kv_cache.dtype()), want.kv_cache, "{q}/{kv}: cache");
    }
    // The other types numpy writes are read, and refused naming what they are.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/npy");
    let inputs = saved_inputs(&tmp("numpy-others"), &[TINY, &["--dtype", "f32"]].concat());
    for (file, found) in [
        ("float64", "f64 ('<f8')"),
        ("int64", "i64 ('<i8')"),
        ("int16", "i16 ('<i2')"),
        ("uint32", "u32 ('<u4')"),
        ("uint16", "'<u2' (bits without type information: bf16 or u16)"),
        ("uint8", "'|u1' (bits without type information: fp8e4m3, fp8e5m2 or u8)"),
        ("bool", "bool ('|b1')"),
    ] {
        std::fs::copy(fixtures.join(format!("{file}.npy")), inputs.join("cu_q_lens.npy")).unwrap();
        let o = rpa(&["run", "--input", s(&inputs)]);
        expect_code(&o, 1, file);
        let message = format!("cu_q_lens.npy: dtype {found}, expected i32");
        assert!(stderr(&o).contains(&message), "{file}: {}", stderr(&o));
    }
}

#[test]
fn nan_in_the_inputs_matches_where_the_reference_is_nan() {
    let dir = tmp("nan-inputs");
    let inputs = saved_inputs(&dir, &[TINY, &["--dtype", "f32", "--lse"]].concat());
    let mut queries = read_npy(&inputs.join("queries.npy"), DType::F32);
    queries.set_f64(5 * 4 * 128 + 130, f64::NAN); // token 5, head 1
    npy::write_array(&inputs.join("queries.npy"), &queries).unwrap();
    let batch = library_batch(&["--input", s(&inputs)]);
    let reference = rpa_kernels::rpa::reference::run(&batch.inputs, &batch.opts);
    let nan = reference.output.to_f64().iter().filter(|v| v.is_nan()).count();
    assert_eq!(nan, 128, "the NaN query makes its output row NaN");
    let o = rpa(&["run", "--input", s(&inputs), "--out", s(&dir)]);
    expect_code(&o, 0, "NaN where the reference is NaN");
    let line = format!("{nan} elements NaN in the reference and the output (NaN inputs)");
    assert!(stdout(&o).contains(&line), "{}", stdout(&o));
    assert!(stdout(&o).contains("lse max |error|") && !stdout(&o).contains("MISMATCH"), "{}", stdout(&o));
    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["check"]["output"]["nan_in_both"], nan);
    assert_eq!(summary["check"]["lse"]["nan_in_both"], 1, "{summary}");
    assert_eq!(summary["passed"], true);
}

#[test]
fn nan_where_the_reference_is_a_number_is_a_mismatch_counted() {
    let batch = library_batch(&[TINY, &["--dtype", "f32"]].concat());
    let mut out = library_run(&batch, Backend::Interpret);
    let tolerance = batch.tolerance();
    assert!(rpa_kernels::cli::run::check(&batch, &out, tolerance).passed());
    for i in [3, 700, 4000] {
        out.output.set_f64(i, f64::NAN);
    }
    let c = rpa_kernels::cli::run::check(&batch, &out, tolerance);
    assert!(!c.passed());
    assert_eq!((c.output.mismatches, c.output.nan_mismatches, c.output.nan_in_both), (3, 3, 0));
    assert_eq!(c.output.first_mismatch.map(|m| m.0), Some(3));
    assert!(c.output.max_abs_err.is_finite(), "the error of the other elements");
    let x = &batch.inputs;
    let len = x.cu_q_lens[x.distribution[2] as usize] as usize * x.num_q_heads() * x.head_dim();
    let verdict = format!("MISMATCH (3 of {len} elements, 3 of them NaN where the other is not)");
    assert_eq!(c.output.verdict(), verdict);
}

/// Whole kv blocks of 8: the kernels give every masked logit `mask_value`, keys past `kv_len` in a
/// sequence's last kv block included, where the f64 reference leaves those keys out; the two agree
/// for a mask value whose `exp` does not vanish only when no block ends past `kv_len`.
const WHOLE_BLOCKS: &[&str] =
    &["--seqs", "1:16,4:16,5:24", "--heads", "4:2", "--chunk", "4", "--page-size", "8", "--blocks", "8,8"];

#[test]
fn q_scale_mask_value_and_block_flags_replay_the_library_call() {
    let cases: [(&str, &[&str], &[&str], fn(&mut RpaOptions)); 2] = [
        ("q-scale", &[TINY, &["--kv-dtype", "fp8e4m3"]].concat(), &["--q-scale", "0.5"], |o| o.q_scale = Some(0.5)),
        ("mask-value", &[WHOLE_BLOCKS, &["--dtype", "f32"]].concat(), &["--mask-value", "-2.5"], |o| {
            o.mask_value = Some(-2.5)
        }),
    ];
    for (name, base, flags, set) in cases {
        let batch = library_batch(base);
        let mut opts = batch.opts.clone();
        set(&mut opts);
        let want = launch::run(Backend::Interpret, &batch.inputs, &opts).unwrap();
        let plain = library_run(&batch, Backend::Interpret);
        assert_ne!(want.output, plain.output, "{name} changes the output");
        let dir = tmp(&format!("flag-{name}"));
        let o = rpa(&[&["run", "--out", s(&dir)][..], base, flags].concat());
        expect_code(&o, 0, name);
        assert_eq!(read_npy(&dir.join("output.npy"), want.output.dtype()), want.output, "{name}: bit-identical");
        assert_eq!(read_npy(&dir.join("kv_cache.npy"), want.kv_cache.dtype()), want.kv_cache, "{name}: cache");
        // And through the saved inputs' batch.json.
        let again = dir.join("again");
        expect_code(&rpa(&[&["run", "--save-inputs", "--out", s(&dir)][..], base, flags].concat()), 0, name);
        expect_code(&rpa(&["run", "--input", s(&dir.join("inputs")), "--out", s(&again)]), 0, name);
        assert_eq!(read_npy(&again.join("output.npy"), want.output.dtype()), want.output, "{name}: rerun");
    }
    // Per-kernel block sizes reach the kernels (their names carry them).
    let blocks = ["--decode-blocks", "1,8", "--prefill-blocks", "4,16,2,8", "--mixed-blocks", "8,24"];
    let o = rpa(&[&["run", "--acc-dtype", "bf16", "--no-validate", "--mask-value=-inf"][..], TINY, &blocks].concat());
    expect_code(&o, 0, "per-kernel blocks");
    for kernel in ["rpa_decode_p8_bq1_1_bkv8_8", "rpa_prefill_p8_bq4_2_bkv16_8", "rpa_mixed_p8_bq8_8_bkv24_24"] {
        assert!(stdout(&o).contains(kernel), "no {kernel} in\n{}", stdout(&o));
    }
    for option in ["mask value -inf", "bf16 accumulator", "calls without validation"] {
        assert!(stdout(&o).contains(option), "no {option:?} in\n{}", stdout(&o));
    }
}

#[test]
fn other_backends_need_their_plugins() {
    let args = [&["run", "--dtype", "f32"][..], TINY].concat();
    let o = rpa_env(&[&args[..], &["--backend", "cpu"]].concat(), &[("RPA_PJRT_CPU_PLUGIN", NO_PLUGIN)]);
    expect_code(&o, 1, "cpu without the plugin");
    assert!(
        stderr(&o).contains("PJRT-CPU plugin is not installed") && stderr(&o).contains(NO_PLUGIN),
        "{}",
        stderr(&o)
    );
    let o = rpa_env(&[&args[..], &["--backend", "tpu-v6e"]].concat(), &[("RPA_LIBTPU", NO_PLUGIN)]);
    expect_code(&o, 1, "tpu without libtpu");
    assert!(stderr(&o).contains("libtpu is not installed"), "{}", stderr(&o));
    if !have_cpu_plugin() {
        eprintln!("skipping the PJRT-CPU run: plugin not installed (scripts/install-plugins)");
        return;
    }
    // Decode sequences only: one kernel for XLA:CPU to compile.
    let dir = tmp("cpu");
    let decode = ["--seqs", "1:9,1:30", "--heads", "4:2", "--dtype", "f32"];
    let o = rpa(&[&["run", "--backend", "cpu", "--out", s(&dir)][..], &decode].concat());
    expect_code(&o, 0, "cpu");
    assert!(stdout(&o).contains("backend: cpu") && stdout(&o).contains("(compiles)"), "{}", stdout(&o));
    assert!(stdout(&o).contains("updated cache   bit-exact"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("HBM bytes"), "bytes are counted on interpret mode only");
    // XLA:CPU rounds differently from interpret mode, but writes the same cache.
    let want = library_run(&library_batch(&decode), Backend::Interpret);
    assert!(read_npy(&dir.join("output.npy"), DType::F32).all_close(&want.output, 1e-5, 1e-5));
    assert_eq!(read_npy(&dir.join("kv_cache.npy"), DType::F32), want.kv_cache);
}

#[test]
fn ir_mosaic_and_stablehlo_print_the_kernels() {
    let args = [TINY, &["--dtype", "f32"]].concat();
    let batch = library_batch(&args);
    let decode = launch::build(&batch.inputs, &batch.opts, RpaCase::Decode).unwrap();
    let o = rpa(&[&["ir", "--kernel", "rpa-decode"][..], &args].concat());
    expect_code(&o, 0, "ir");
    assert_eq!(stdout(&o), print(&decode, PrintOptions::default()));
    let o = rpa(&[&["ir", "--kernel", "rpa-decode", "--locs"][..], &args].concat());
    assert_eq!(stdout(&o), print(&decode, PrintOptions { locs: true }));
    let dir = tmp("show");
    let file = dir.join("softmax.ir");
    let o = rpa(&["ir", "--kernel", "row_softmax", "-o", s(&file)]);
    expect_code(&o, 0, "ir -o");
    let softmax = rpa_kernels::examples::row_softmax(64, 256).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), print(&softmax, PrintOptions::default()));
    let o = rpa(&["mosaic", "--kernel", "row_softmax"]);
    expect_code(&o, 0, "mosaic");
    assert_eq!(stdout(&o), rpa_dsl::lower::mosaic::lower(&softmax).unwrap());
    let o = rpa(&["mosaic", "--kernel", "row-softmax", "--custom-call"]);
    assert!(stdout(&o).contains("stablehlo.custom_call @tpu_custom_call"), "{}", stdout(&o));
    let mixed = launch::build(&batch.inputs, &batch.opts, RpaCase::Mixed).unwrap();
    let o = rpa(&[&["stablehlo", "--kernel", "rpa-mixed"][..], &args].concat());
    expect_code(&o, 0, "stablehlo");
    assert_eq!(stdout(&o), rpa_dsl::lower::stablehlo::lower(&mixed).unwrap());
    // The default batch has all three kernels; --target picks that generation's block sizes.
    let o = rpa(&["ir", "--kernel", "rpa-prefill", "--target", "v7x"]);
    expect_code(&o, 0, "ir --target");
    assert!(stdout(&o).starts_with("kernel rpa_prefill_p16_"), "{}", &stdout(&o)[..80]);
}

#[test]
fn compile_reports_resources_or_the_compiler_error() {
    let tiny = ["--kernel", "rpa-decode", "--seqs", "1:40", "--heads", "8:8"];
    let o = rpa_env(&[&["compile", "--target", "v5e"][..], &tiny].concat(), &[("RPA_LIBTPU", NO_PLUGIN)]);
    expect_code(&o, 1, "compile without libtpu");
    assert!(stderr(&o).contains("libtpu is not installed"), "{}", stderr(&o));
    if !have_libtpu() {
        eprintln!("skipping the libtpu compiles: libtpu not installed (scripts/install-plugins)");
        return;
    }
    // As a user runs it (a fresh environment): libtpu's host-detection complaints are not shown.
    let mut fresh = Command::new(env!("CARGO_BIN_EXE_rpa"));
    fresh.args([&["compile", "--target", "v6e"][..], &tiny].concat());
    for var in ["TPU_SKIP_MDS_QUERY", "TPU_WORKER_HOSTNAMES", "TPU_ACCELERATOR_TYPE"] {
        fresh.env_remove(var);
    }
    let o = fresh.output().expect("the rpa binary runs");
    expect_code(&o, 0, "compile");
    // (libtpu may still log an unrelated hugepage notice, depending on where it is mapped.)
    for complaint in ["could not determine TPU", "TPU_WORKER_HOSTNAMES", "TPU_ACCELERATOR_TYPE"] {
        assert!(!stderr(&o).contains(complaint), "libtpu complained about the host:\n{}", stderr(&o));
    }
    let out = stdout(&o);
    for line in ["v6e rpa-decode", "block sizes", "VMEM", "SMEM", "code size", "cost analysis", "1 kernel compiled"] {
        assert!(out.contains(line), "no {line:?} in\n{out}");
    }
    // Blocks that need more VMEM than the limit: the verifier's error, at the kernel's source line.
    let big =
        ["--kernel", "rpa-decode", "--seqs", "1:300", "--heads", "8:8", "--blocks", "1,256", "--vmem-limit-mib", "1"];
    let o = rpa(&[&["compile", "--target", "v5e"][..], &big].concat());
    expect_code(&o, 1, "over budget");
    assert!(stdout(&o).contains("FAILED"), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("kernels/src/rpa/kernel.rs:") && err.contains("VMEM over budget"), "{err}");
    assert!(err.contains("1 of 1 compiles failed"), "{err}");
}

#[test]
fn trace_writes_one_chrome_trace_for_all_kernels() {
    let dir = tmp("trace");
    let file = dir.join("nested").join("trace.json");
    let o = rpa(&[&["trace", "--out", s(&file)][..], TINY].concat());
    expect_code(&o, 0, "trace");
    let trace = read_json(&file);
    let events = trace["traceEvents"].as_array().expect("traceEvents");
    let mut names = BTreeMap::new();
    for e in events.iter().filter(|e| e["ph"] == "M" && e["name"] == "thread_name") {
        names.insert((e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()), e["args"]["name"].as_str().unwrap());
    }
    let mut per_track: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        assert!(e["ts"].is_u64() && e["dur"].is_u64(), "{e}");
        *per_track.entry((e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap())).or_default() += 1;
    }
    assert!(per_track.len() >= 2, "{per_track:?}");
    let pids: BTreeSet<u64> = per_track.keys().map(|k| k.0).collect();
    assert_eq!(pids, BTreeSet::from([1, 2, 3]), "one process per kernel");
    for pid in pids {
        assert!(per_track.keys().any(|k| k.0 == pid && names.get(k) == Some(&"compute")), "compute track of {pid}");
    }
    let out = stdout(&o);
    assert!(out.contains("pid 1 rpa-decode") && out.contains("pid 3 rpa-mixed"), "{out}");
    let compute_events: usize =
        per_track.iter().filter(|(k, _)| names.get(k) == Some(&"compute")).map(|(_, n)| n).sum();
    let printed: usize = out
        .lines()
        .filter(|l| l.trim_start().starts_with("compute "))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(printed, compute_events, "the printed event counts match the file");
}

#[test]
fn bench_writes_csv_json_and_svg() {
    let dir = tmp("bench");
    let backend = if have_cpu_plugin() { "both" } else { "interpret" };
    let o = rpa(&["bench", "--tiny", "--backend", backend, "--out", s(&dir)]);
    expect_code(&o, 0, "bench --tiny");
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(bench::CSV_HEADER));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let points = bench::Sweep::tiny().points().len();
    let backends = if backend == "both" { 2 } else { 1 };
    assert_eq!(rows.len(), points * backends, "{csv}");
    assert!(rows.iter().all(|r| r.len() == bench::CSV_HEADER.split(',').count()));
    for r in rows.iter().filter(|r| r[6] == "interpret") {
        assert!(r[7].parse::<f64>().unwrap() > 0.0 && r[10].parse::<f64>().unwrap() >= 1.0, "{r:?}");
    }
    let json = read_json(&dir.join("results.json"));
    assert_eq!(json["points"].as_array().unwrap().len(), points);
    assert_eq!(json["sweep"]["name"], "tiny");
    let mut svgs = vec!["time_vs_context_interpret.svg", "bytes_ratio_vs_context.svg"];
    if backend == "both" {
        svgs.push("time_vs_context_cpu.svg");
        assert!(json["points"].as_array().unwrap().iter().all(|p| p["cpu_cache_matches_interpret"] == true));
    }
    for f in svgs {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(text.starts_with("<svg") || text.starts_with("<?xml"), "{f}: {}", &text[..60.min(text.len())]);
        assert!(text.trim_end().ends_with("</svg>"), "{f}");
    }
    assert!(stdout(&o).contains("2 points in"), "{}", stdout(&o));
}

#[test]
fn demo_runs_on_a_machine_without_plugins() {
    let o = rpa_env(&["demo"], &[("RPA_LIBTPU", NO_PLUGIN), ("RPA_PJRT_CPU_PLUGIN", NO_PLUGIN)]);
    expect_code(&o, 0, "demo");
    let out = stdout(&o);
    for line in [
        "rpa demo — backend: interpret (the reference semantics)",
        "12 sequences (6 decode, 2 prefill chunks, 4 mixed)",
        "updated cache   bit-exact",
        "HBM bytes",
        "PJRT-CPU        plugin not installed",
        "TPU             libtpu not installed",
        "The book's example kernels:",
    ] {
        assert!(out.contains(line), "no {line:?} in\n{out}");
    }
    for k in ["elementwise_add", "tiled_matmul", "double_buffered_scale", "row_softmax"] {
        let line = out.lines().find(|l| l.trim_start().starts_with(k)).unwrap_or_else(|| panic!("{k} in\n{out}"));
        assert!(line.ends_with(" ok"), "{line}");
    }
}

/// The `rpa …` lines of the book's command page (`docs/06-the-rpa-command.md`), as argument lists.
fn documented_commands() -> Vec<Vec<String>> {
    let page = include_str!("../../docs/06-the-rpa-command.md");
    let mut in_sh = false;
    let mut commands = Vec::new();
    for line in page.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        let line = line.split(" #").next().unwrap_or("").trim();
        if in_sh && line.starts_with("rpa ") {
            commands.push(line.split_whitespace().map(String::from).collect());
        }
    }
    commands
}

#[test]
fn the_book_shows_every_subcommand_with_flags_that_parse() {
    let commands = documented_commands();
    let shown: BTreeSet<&str> = commands.iter().map(|c| c[1].as_str()).collect();
    for sub in ["demo", "run", "ir", "mosaic", "stablehlo", "compile", "bench", "trace"] {
        assert!(shown.contains(sub), "the command page shows no `rpa {sub}`");
    }
    for c in &commands {
        if let Err(e) = Cli::try_parse_from(c) {
            panic!("documented `{}` does not parse:\n{e}", c.join(" "));
        }
    }
    // The cheap ones (interpret mode, nothing written) also run and succeed.
    let runs_here = |c: &[String]| {
        ["run", "ir", "mosaic", "stablehlo"].contains(&c[1].as_str())
            && !c.iter().any(|a| a.starts_with('-') && ["--out", "-o", "--input", "--backend"].contains(&a.as_str()))
    };
    let mut ran = 0;
    for c in commands.iter().filter(|c| runs_here(c)) {
        let args: Vec<&str> = c[1..].iter().map(String::as_str).collect();
        let o = rpa(&args);
        expect_code(&o, 0, &c.join(" "));
        ran += 1;
    }
    assert!(ran >= 5, "ran {ran} documented commands");
}

#[test]
fn run_on_a_mesh_simulates_the_devices_and_checks_the_merge() {
    let o = rpa(&["run", "--seqs", "1:40,5:18,7:90", "--heads", "4:2", "--devices", "4", "--tp", "2", "--cp", "2"]);
    expect_code(&o, 0, "a 2 × 2 mesh run");
    let out = stdout(&o);
    assert!(out.contains("4 devices = tp 2 × cp 2: 2 q / 1 kv heads per device"), "{out}");
    assert!(out.contains("updated cache   bit-exact"), "{out}");
    let per_device = out.lines().find(|l| l.contains("HBM bytes")).expect("a bytes line");
    assert_eq!(per_device.matches(',').count(), 3, "one count per device: {per_device}");
}

#[test]
fn bad_meshes_are_usage_errors_naming_the_value() {
    let o = rpa(&["run", "--seqs", "1:40", "--devices", "4", "--tp", "3"]);
    expect_code(&o, 2, "tp · cp ≠ devices");
    assert!(stderr(&o).contains("tp · cp = 3 · 1 = 3 is not the 4 devices"), "{}", stderr(&o));
    let o = rpa(&["run", "--seqs", "1:40", "--heads", "6:3", "--tp", "2"]);
    expect_code(&o, 2, "tp does not split the heads");
    assert!(stderr(&o).contains("tp = 2 splits neither the 3 kv heads"), "{}", stderr(&o));
}

#[test]
fn run_on_a_mesh_of_cpu_devices() {
    if !have_cpu_plugin() {
        eprintln!("skipped: the PJRT-CPU plugin is not installed");
        return;
    }
    let o = rpa(&["run", "--seqs", "1:40,5:18", "--heads", "4:2", "--devices", "2", "--cp", "2", "--backend", "cpu"]);
    expect_code(&o, 0, "a cp 2 run on PJRT-CPU");
    let out = stdout(&o);
    assert!(out.contains("one SPMD program on PJRT-CPU devices") && out.contains("bit-exact"), "{out}");
}
