//! Tests of the PJRT binding against real plugins: XLA:CPU (compile + run) and libtpu (compile-only for TPU
//! topologies, no TPU needed).
//!
//! The plugins come from `scripts/install-plugins` (or `RPA_PJRT_CPU_PLUGIN` / `RPA_LIBTPU`). A missing plugin
//! makes these tests FAIL with a message saying so: they never skip. Timings are printed to stderr
//! (`cargo test -p rpa-dsl --test pjrt -- --nocapture`).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rpa_dsl::pjrt::{self, Client, CompileOptions, ErrorCode, ErrorKind, NamedValue, PjrtError, Plugin, Topology};
use rpa_dsl::{Array, DType};

fn expect<T>(what: &str, r: Result<T, PjrtError>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    eprintln!("[pjrt timing] {what}: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    r
}

// ------------------------------------------------------------------------------------------------ XLA:CPU

fn cpu() -> &'static Arc<Plugin> {
    static PLUGIN: OnceLock<Arc<Plugin>> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        let plugin = timed("load XLA:CPU plugin", pjrt::cpu_plugin);
        expect("loading the XLA:CPU PJRT plugin (run scripts/install-plugins)", plugin)
    })
}

fn cpu_client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let client =
            timed("create XLA:CPU client", || Client::new(cpu(), &[("cpu_device_count", NamedValue::Int64(1))]));
        expect("creating the XLA:CPU client", client)
    })
}

const ADD: &str = r#"
module @add {
  func.func public @main(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
    %c = stablehlo.add %a, %b : tensor<2x3xf32>
    return %c : tensor<2x3xf32>
  }
}
"#;

#[test]
fn cpu_plugin_loads_and_reports_its_version() {
    let plugin = cpu();
    let v = plugin.api_version();
    eprintln!(
        "XLA:CPU plugin {}: PJRT C API {v}, PJRT_Api {} bytes",
        plugin.path().display(),
        plugin.api_struct_size()
    );
    assert_eq!(v.major, 0);
    assert!(v.minor >= 57, "{v}");
    let attrs = expect("plugin attributes", plugin.attributes());
    eprintln!("attributes: {attrs:?}");
    assert!(attrs.contains_key("stablehlo_current_version"), "{attrs:?}");
    // Loading again gives the same plugin (a plugin is initialized once per process).
    assert!(Arc::ptr_eq(plugin, &expect("reload", pjrt::cpu_plugin())));
}

#[test]
fn cpu_client_platform_and_devices() {
    let client = cpu_client();
    assert_eq!(expect("platform_name", client.platform_name()), "cpu");
    let devices = expect("devices", client.devices());
    assert_eq!(devices.len(), 1);
    assert_eq!(expect("addressable_devices", client.addressable_devices()).len(), 1);
    assert_eq!(expect("device id", devices[0].id()), 0);
    eprintln!("cpu device kind {:?}, platform version {:?}", devices[0].kind(), client.platform_version());

    let two = expect("client with 2 devices", Client::new(cpu(), &[("cpu_device_count", NamedValue::Int64(2))]));
    assert_eq!(expect("devices", two.devices()).len(), 2);
}

#[test]
fn cpu_compile_and_run_add() {
    let client = cpu_client();
    let exe = timed("compile add (XLA:CPU)", || client.compile(ADD, &CompileOptions::default()));
    let exe = expect("compile", exe);
    assert_eq!(expect("num_outputs", exe.num_outputs()), 1);
    assert_eq!(expect("output dtypes", exe.output_dtypes()), [Some(DType::F32)]);
    assert_eq!(expect("output shapes", exe.output_shapes()), [vec![2, 3]]);
    eprintln!("name {:?}, code size {:?}", exe.name(), exe.code_size());
    eprintln!("cost analysis {:?}", exe.cost_analysis());
    eprintln!("memory stats {:?}", exe.memory_stats());
    eprintln!("serialized {:?} bytes", exe.serialized_size());

    let device = &expect("devices", client.addressable_devices())[0];
    let a = Array::from_f32(DType::F32, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = Array::from_f32(DType::F32, &[2, 3], &[0.5, -1.0, 10.0, 0.25, -5.0, 100.0]);
    let (da, db) = timed("2 x buffer_from_host 2x3xf32", || {
        (expect("a", client.buffer_from_host(&a, device)), expect("b", client.buffer_from_host(&b, device)))
    });
    let out = timed("execute add", || exe.execute(&[&da, &db]));
    let mut out = expect("execute", out);
    assert_eq!(out.len(), 1);
    let c = timed("to_host 2x3xf32", || out.remove(0).to_host());
    let c = expect("to_host", c);
    assert_eq!(c.dtype(), DType::F32);
    assert_eq!(c.shape(), [2, 3]);
    assert_eq!(c.to_f32(), [1.5, 1.0, 13.0, 4.25, 0.0, 106.0]);
    // Inputs are not donated by `execute`: still readable, and reusable.
    assert_eq!(expect("a back", da.to_host()), a);
    let again = expect("execute again", exe.execute(&[&da, &db]));
    assert_eq!(expect("to_host", again[0].to_host()).to_f32(), [1.5, 1.0, 13.0, 4.25, 0.0, 106.0]);
}

#[test]
fn cpu_cost_analysis_and_memory_stats() {
    let exe = expect("compile", cpu_client().compile(ADD, &CompileOptions::default()));
    let cost: BTreeMap<String, NamedValue> = expect("cost analysis", exe.cost_analysis());
    assert!(!cost.is_empty());
    let flops = cost.get("flops").and_then(NamedValue::as_f64);
    assert_eq!(flops, Some(6.0), "{cost:?}");
    let stats = expect("memory stats", exe.memory_stats());
    assert_eq!(stats.argument_size_in_bytes, 2 * 6 * 4, "{stats:?}");
    assert_eq!(stats.output_size_in_bytes, 6 * 4, "{stats:?}");
    assert!(expect("serialize", exe.serialized_size()) > 0);
}

/// Bit patterns that exercise every dtype: for 8-bit types all 256, otherwise a spread including NaN payloads,
/// infinities, signed zeros and subnormals.
fn patterns(dtype: DType) -> Vec<u32> {
    match dtype.bits() {
        8 if dtype == DType::Bool => (0..32).map(|i| (i * 7 % 3 == 0) as u32).collect(),
        8 => (0..256).collect(),
        16 => (0..4091u32)
            .map(|i| i.wrapping_mul(40503) & 0xffff)
            .chain([0x7c00, 0xfc00, 0x7e01, 0x8000, 0x0001])
            .collect(),
        _ => (0..4091u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .chain([0x7f80_0000, 0xff80_0000, 0x7fc0_0001, 0x8000_0000, 0x0000_0001])
            .collect(),
    }
}

#[test]
fn cpu_host_buffers_round_trip_bit_exactly() {
    let client = cpu_client();
    let device = &expect("devices", client.addressable_devices())[0];
    // The brief's list first; then every other rpa dtype.
    let dtypes = [DType::F32, DType::Bf16, DType::F16, DType::F8E4M3, DType::I32, DType::U8];
    let rest = DType::ALL.into_iter().filter(|d| !dtypes.contains(d));
    for dtype in dtypes.into_iter().chain(rest) {
        let bits = patterns(dtype);
        let n = bits.len();
        for shape in [vec![n], vec![n / 8, 8], vec![2, n / 16, 8]] {
            let array = Array::from_bits(dtype, &shape, bits.clone());
            let buffer = expect(&format!("buffer_from_host {dtype}{shape:?}"), client.buffer_from_host(&array, device));
            assert_eq!(expect("dtype", buffer.dtype()), dtype);
            assert_eq!(expect("shape", buffer.shape()), shape);
            let back = expect(&format!("to_host {dtype}{shape:?}"), buffer.to_host());
            assert_eq!(back.dtype(), dtype);
            assert_eq!(back.shape(), &shape[..]);
            assert!(back.bits() == array.bits(), "{dtype}{shape:?} did not round-trip bit-exactly");
        }
    }
    // Scalars and empty arrays too.
    for array in [Array::from_f32(DType::F32, &[], &[3.5]), Array::zeros(DType::Bf16, &[0, 4])] {
        let back = expect("to_host", expect("buffer_from_host", client.buffer_from_host(&array, device)).to_host());
        assert_eq!(back, array);
    }
}

#[test]
fn cpu_runs_narrow_dtypes() {
    // bf16 and fp8 arithmetic through XLA:CPU: x * 2 (exact in both formats for these values).
    let client = cpu_client();
    let device = &expect("devices", client.addressable_devices())[0];
    for (dtype, ty) in [(DType::Bf16, "bf16"), (DType::F16, "f16"), (DType::F8E4M3, "f8E4M3FN"), (DType::I32, "i32")] {
        let mlir = format!(
            "func.func @main(%x: tensor<4x{ty}>) -> tensor<4x{ty}> {{\n  %y = stablehlo.add %x, %x : tensor<4x{ty}>\n  return %y : tensor<4x{ty}>\n}}"
        );
        let exe = expect(&format!("compile {ty}"), client.compile(&mlir, &CompileOptions::default()));
        let x = Array::from_f64(dtype, &[4], &[1.0, -2.0, 0.5, 3.0]);
        let dx = expect("upload", client.buffer_from_host(&x, device));
        let y = expect("to_host", expect("execute", exe.execute(&[&dx]))[0].to_host());
        assert_eq!(y.dtype(), dtype);
        let expected = if dtype.is_float() { vec![2.0, -4.0, 1.0, 6.0] } else { vec![2.0, -4.0, 0.0, 6.0] };
        assert_eq!(y.to_f64(), expected, "{ty}");
    }
}

#[test]
fn cpu_execute_donating() {
    let client = cpu_client();
    let device = &expect("devices", client.addressable_devices())[0];
    let mlir = r#"
func.func @main(%a: tensor<4xf32> {tf.aliasing_output = 0 : i32}) -> tensor<4xf32> {
  %c = stablehlo.multiply %a, %a : tensor<4xf32>
  return %c : tensor<4xf32>
}"#;
    let exe = expect("compile", client.compile(mlir, &CompileOptions::default()));
    let a = Array::from_f32(DType::F32, &[4], &[1.0, 2.0, 3.0, 4.0]);
    let da = expect("upload", client.buffer_from_host(&a, device));
    // Not donated: the input stays valid.
    let out = expect("execute", exe.execute(&[&da]));
    assert_eq!(expect("out", out[0].to_host()).to_f32(), [1.0, 4.0, 9.0, 16.0]);
    assert_eq!(expect("input after execute", da.to_host()), a);
    // Donated: the input is consumed.
    let out = expect("execute_donating", exe.execute_donating(vec![da]));
    assert_eq!(expect("out", out[0].to_host()).to_f32(), [1.0, 4.0, 9.0, 16.0]);
}

#[test]
fn cpu_compile_error_carries_the_parse_error() {
    let bad = "func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %c = stablehlo.frobnicate %a : tensor<2xf32>\n  return %c : tensor<2xf32>\n}";
    let err = cpu_client().compile(bad, &CompileOptions::default()).expect_err("bad MLIR must not compile");
    eprintln!("compile error: {err}");
    assert_eq!(err.kind, ErrorKind::Pjrt);
    assert!(err.code.is_some(), "{err:?}");
    assert!(err.message.contains("stablehlo.frobnicate"), "{err:?}");

    let err = cpu_client().compile("this is not MLIR", &CompileOptions::default()).expect_err("garbage");
    eprintln!("compile error: {err}");
    assert_eq!(err.kind, ErrorKind::Pjrt);
    assert!(err.message.to_lowercase().contains("parse") || err.message.contains("expected"), "{err:?}");
}

#[test]
fn cpu_execute_with_wrong_arguments_is_an_error() {
    let client = cpu_client();
    let exe = expect("compile", client.compile(ADD, &CompileOptions::default()));
    let device = &expect("devices", client.addressable_devices())[0];
    let a = expect("upload", client.buffer_from_host(&Array::zeros(DType::F32, &[2, 3]), device));
    let err = exe.execute(&[&a]).expect_err("one argument of two");
    eprintln!("execute error: {err}");
    assert_eq!(err.kind, ErrorKind::Pjrt);
    assert_eq!(err.code, Some(ErrorCode::InvalidArgument), "{err:?}");

    // A buffer of another client is refused before it reaches the plugin.
    let other = expect("client", Client::new(cpu(), &[("cpu_device_count", NamedValue::Int64(1))]));
    let other_device = &expect("devices", other.addressable_devices())[0];
    let b = expect("upload", other.buffer_from_host(&Array::zeros(DType::F32, &[2, 3]), other_device));
    let err = exe.execute(&[&a, &b]).expect_err("foreign buffer");
    assert_eq!(err.kind, ErrorKind::Usage);
    let err = client.buffer_from_host(&Array::zeros(DType::F32, &[1]), other_device).expect_err("foreign device");
    assert_eq!(err.kind, ErrorKind::Usage);
}

#[test]
fn objects_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Arc<Plugin>>();
    check::<Client>();
    check::<pjrt::Device>();
    check::<pjrt::Buffer>();
    check::<pjrt::Executable>();
    check::<pjrt::LoadedExecutable>();
    check::<Topology>();
    check::<PjrtError>();
}

#[test]
fn missing_plugin_says_how_to_install() {
    let err = Plugin::load("/nonexistent/xla_cpu_pjrt.so").expect_err("no such file");
    assert_eq!(err.kind, ErrorKind::PluginNotFound);
    assert!(err.message.contains("run scripts/install-plugins"), "{err}");
    assert!(
        pjrt::cpu_plugin_path().ends_with(".cache/plugins/xla_cpu_pjrt.so")
            || std::env::var_os(pjrt::CPU_PLUGIN_ENV).is_some()
    );
}

// ------------------------------------------------------------------------------------------------ libtpu

fn tpu() -> &'static Arc<Plugin> {
    static PLUGIN: OnceLock<Arc<Plugin>> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        let plugin = timed("load libtpu (TPU_SKIP_MDS_QUERY=1)", pjrt::libtpu);
        expect("loading libtpu (run scripts/install-plugins)", plugin)
    })
}

const MINIMAL_KERNEL: &str = include_str!("data/minimal-kernel.stablehlo.mlir");

fn topology(name: &str) -> Topology {
    let t = timed(&format!("create topology {name}"), || {
        Topology::new(tpu(), name, &[("chips_per_host_bounds", NamedValue::Int64List(vec![1, 1, 1]))])
    });
    expect(&format!("topology {name}"), t)
}

fn compile_minimal_kernel(name: &str) {
    let topology = topology(name);
    eprintln!(
        "{name}: platform {:?} {:?}, devices {:?}",
        topology.platform_name(),
        topology.platform_version(),
        topology.device_kinds()
    );
    assert_eq!(expect("platform", topology.platform_name()), "tpu");
    assert!(!expect("device kinds", topology.device_kinds()).is_empty());
    let exe = timed(&format!("AOT compile minimal Mosaic kernel for {name}"), || {
        pjrt::compile_for_topology(tpu(), &topology, MINIMAL_KERNEL, &CompileOptions::default())
    });
    let exe = expect(&format!("compile for {name}"), exe);
    let size = expect("serialize", exe.serialized_size());
    let cost = expect("cost analysis", exe.cost_analysis());
    eprintln!("{name}: serialized {size} bytes, code size {:?}, outputs {:?}", exe.code_size(), exe.num_outputs());
    eprintln!("{name}: cost analysis {cost:?}");
    eprintln!("{name}: memory stats {:?}", exe.memory_stats());
    assert!(size > 0);
    assert!(!cost.is_empty(), "libtpu returned no cost analysis");
    assert_eq!(expect("num_outputs", exe.num_outputs()), 1);
}

#[test]
fn tpu_plugin_loads_and_reports_its_version() {
    let plugin = tpu();
    let v = plugin.api_version();
    eprintln!("libtpu {}: PJRT C API {v}, PJRT_Api {} bytes", plugin.path().display(), plugin.api_struct_size());
    assert_eq!(v.major, 0);
    eprintln!("attributes: {:?}", plugin.attributes());
}

#[test]
fn tpu_compile_only_v5e() {
    compile_minimal_kernel("v5e:1x1");
}

#[test]
fn tpu_compile_only_v6e() {
    compile_minimal_kernel("v6e:1x1");
}

#[test]
fn tpu_compile_only_tpu7x() {
    compile_minimal_kernel("tpu7x:1x1x1");
}

#[test]
fn tpu_broken_mosaic_body_is_an_error() {
    let start = MINIMAL_KERNEL.find("body\\22:\\22").expect("body") + "body\\22:\\22".len();
    let end = start + MINIMAL_KERNEL[start..].find("\\22").expect("end of body");
    let broken = format!("{}{}{}", &MINIMAL_KERNEL[..start], "Z2FyYmFnZQ==", &MINIMAL_KERNEL[end..]); // "garbage"
    let topology = topology("v6e:1x1");
    let err = pjrt::compile_for_topology(tpu(), &topology, broken, &CompileOptions::default())
        .expect_err("a garbage Mosaic body must not compile");
    eprintln!("broken Mosaic error: {err}");
    assert_eq!(err.kind, ErrorKind::Pjrt);
    let m = err.message.to_lowercase();
    assert!(m.contains("mosaic") || m.contains("parse"), "{err}");
}

#[test]
fn tpu_topology_options_are_checked() {
    let err = Topology::new(tpu(), "v5e:1x1", &[("no_such_option", NamedValue::Int64(1))]).expect_err("unknown option");
    assert_eq!(err.code, Some(ErrorCode::InvalidArgument), "{err}");
    assert!(err.message.contains("no_such_option"), "{err}");
    let bigger = Topology::new(tpu(), "v5e:2x2", &[("chips_per_host_bounds", NamedValue::Int64List(vec![2, 2, 1]))]);
    assert_eq!(expect("v5e:2x2", bigger).device_kinds().map(|k| k.len()), Ok(4));
}

#[test]
fn tpu_bad_topology_is_an_error() {
    let err = Topology::new(tpu(), "v999:1x1", &[]).expect_err("no such TPU");
    eprintln!("bad topology error: {err}");
    assert_eq!(err.kind, ErrorKind::Pjrt);
}
