//! Launches on a device mesh: interpret mode (devices simulated one by one, epilogue on the host)
//! against the SPMD program on an N-device XLA:CPU client, and against the single-device kernel
//! on the whole arrays. Needs the XLA:CPU plugin (`scripts/install-plugins`).

use rpa_dsl::mesh::{Mesh, MeshLaunch, Sharding};
use rpa_dsl::prelude::*;

/// `o = softmax(x) · w` per row, eight rows per grid step (`w` is one shared block).
#[tpu_kernel(grid = [rows / 8], semantics = [parallel])]
fn softmax_scale(
    #[comptime] rows: usize,
    #[block([8, 128], |i| [i, 0])] x: In![f32, [rows, 128]],
    #[block([8, 128], |i| [0, 0])] w: In![f32, [8, 128]],
    #[block([8, 128], |i| [i, 0])] o: Out![f32, [rows, 128]],
) {
    let v = x.load();
    let e = (v - v.reduce_max(1)).exp();
    o.store(e / e.reduce_sum(1) * w.load());
}

/// Attention of each row over `cols` keys with logits `s` (−∞: masked) and two heads of values
/// `v`: `out[h, r] = Σ_j p_j v[h, r, j]` (on 256 lanes) and its `lse[r] = log Σ_j exp(s_j)` (on
/// 128 lanes).
/// A row with every key masked gets `out = 0 / 0` and `lse = −∞`, as RPA.
#[tpu_kernel]
fn partial_attention(
    #[comptime] cols: usize,
    #[comptime] dt: DType,
    s: In![f32, [8, cols]],
    v: In![f32, [2, 8, cols]],
    out: Out![dt, [2, 8, 256]],
    lse: Out![f32, [8, 128]],
    sv: Vmem![f32, [8, cols]],
    vv: Vmem![f32, [2, 8, cols]],
    ov: Vmem![dt, [2, 8, 256]],
    lv: Vmem![f32, [8, 128]],
    sem: DmaSems<1>,
) {
    copy(s, sv, sem.at(0)).start_and_wait();
    copy(v, vv, sem.at(0)).start_and_wait();
    let logits = sv.load();
    let m = logits.reduce_max(1);
    let e = select(cmp::eq(logits, f32::NEG_INFINITY), zeros(&[8, cols], F32), (logits - m).exp());
    let l = e.reduce_sum(1);
    for h in 0..2 {
        let o = (e * vv.at(h).load()).reduce_sum(1) / l;
        ov.at(h).store(o.broadcast_to(&[8, 256]).cast(dt));
    }
    lv.store((m + l.log()).broadcast_to(&[8, 128]));
    copy(ov, out, sem.at(0)).start_and_wait();
    copy(lv, lse, sem.at(0)).start_and_wait();
}

fn ramp(n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|i| ((i * 37 + 11) % 101) as f32 * scale - 1.0).collect()
}

fn mesh(axes: &[(&str, usize)]) -> Mesh {
    Mesh::new(axes).unwrap()
}

/// Element-wise agreement within `tol` (relative), NaN where the other is NaN.
fn assert_close(got: &Array, want: &Array, tol: f64, what: &str) {
    assert_eq!((got.dtype(), got.shape()), (want.dtype(), want.shape()), "{what}");
    for i in 0..got.len() {
        let (a, b) = (got.get_f64(i), want.get_f64(i));
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * (1.0 + b.abs());
        assert!(ok, "{what}: element {i}: {a} vs {b}");
    }
}

fn cpu_matches_interpret(kernel: &Kernel, launch: &MeshLaunch, inputs: &[Array]) -> Vec<Array> {
    let want = launch.interpret(kernel, inputs).unwrap_or_else(|e| panic!("interpret: {e}"));
    let got = launch.run_cpu(kernel, inputs).unwrap_or_else(|e| panic!("XLA:CPU: {e}"));
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_close(g, w, 1e-6, &format!("{} on {}: output {i}", kernel.name, launch.mesh.describe()));
    }
    want
}

#[test]
fn split_and_replicated_inputs_on_2_4_and_8_devices() {
    let x = Array::from_f32(F32, &[64, 128], &ramp(64 * 128, 0.03));
    let w = Array::from_f32(F32, &[8, 128], &ramp(8 * 128, 0.5));
    let whole = softmax_scale(64).unwrap().interpret(&[x.clone(), w.clone()]).unwrap();
    for axes in [vec![("d", 2)], vec![("a", 2), ("b", 2)], vec![("a", 2), ("b", 4)]] {
        let m = mesh(&axes);
        let rows = 64 / m.devices();
        let split = axes.iter().fold(Sharding::replicated(), |s, (a, _)| s.and_split(0, a));
        let launch = MeshLaunch::new(m).inputs(vec![split.clone(), Sharding::replicated()]).outputs(vec![split]);
        let kernel = softmax_scale(rows).unwrap();
        let got = cpu_matches_interpret(&kernel, &launch, &[x.clone(), w.clone()]);
        // Rows are independent: the sharded launch computes the single-device result.
        assert_eq!(got[0], whole[0], "{axes:?}");
    }
}

#[test]
fn all_gather_gives_every_device_the_whole_output() {
    let x = Array::from_f32(F32, &[32, 128], &ramp(32 * 128, 0.03));
    let w = Array::from_f32(F32, &[8, 128], &ramp(8 * 128, 0.5));
    let whole = softmax_scale(32).unwrap().interpret(&[x.clone(), w.clone()]).unwrap();
    // Rows split over "tp" and gathered back; "dp" replicates everything.
    let launch = MeshLaunch::new(mesh(&[("dp", 2), ("tp", 2)]))
        .inputs(vec![Sharding::split(0, "tp"), Sharding::replicated()])
        .outputs(vec![Sharding::replicated()])
        .all_gather(0, 0, "tp");
    let got = cpu_matches_interpret(&softmax_scale(16).unwrap(), &launch, &[x, w]);
    assert_eq!(got[0], whole[0]);
}

/// Logits whose rows 1 and 5 are masked on the first half of the keys, and row 6 everywhere;
/// row 3 has a NaN logit in the first half.
fn attention_inputs(cols: usize) -> (Array, Array) {
    let mut s = ramp(8 * cols, 0.05);
    s[3 * cols + 1] = f32::NAN;
    for (r, c) in (0..cols / 2).flat_map(|c| [(1, c), (5, c)]).chain((0..cols).map(|c| (6, c))) {
        s[r * cols + c] = f32::NEG_INFINITY;
    }
    (Array::from_f32(F32, &[8, cols], &s), Array::from_f32(F32, &[2, 8, cols], &ramp(2 * 8 * cols, 0.1)))
}

#[test]
fn lse_merge_of_key_shards_is_attention_over_all_keys() {
    let (s, v) = attention_inputs(256);
    // Keys split over "cp"; out [2, 8, 256] and lse [8, 128] merged: lse's rows are out's dim 1,
    // its lanes copies.
    let launch = MeshLaunch::new(mesh(&[("cp", 2)]))
        .inputs(vec![Sharding::split(1, "cp"), Sharding::split(2, "cp")])
        .outputs(vec![Sharding::replicated(), Sharding::replicated()])
        .lse_merge(0, 1, &[1], "cp");
    // bf16 outputs merge in f32 and round once: within a bf16 step of the whole.
    for (dt, tol) in [(F32, 1e-5), (Bf16, 1e-2)] {
        let whole = partial_attention(256, dt).unwrap().interpret(&[s.clone(), v.clone()]).unwrap();
        let got = cpu_matches_interpret(&partial_attention(128, dt).unwrap(), &launch, &[s.clone(), v.clone()]);
        assert_close(&got[0], &whole[0], tol, &format!("{dt} merged out vs all keys"));
        assert_close(&got[1], &whole[1], 1e-5, &format!("{dt} merged lse vs all keys"));
        // Row 6 has no keys on any device: lse −∞ and out NaN, as the single-device kernel.
        assert_eq!(got[1].get_f64(6 * 128), f64::NEG_INFINITY);
        assert!(got[0].get_f64(6 * 256).is_nan());
        // Row 3's NaN on device 0 makes the merged row NaN, as over all keys.
        assert!(got[1].get_f64(3 * 128).is_nan() && got[0].get_f64(3 * 256).is_nan());
    }
}

#[test]
fn a_compiled_launch_runs_again_on_new_inputs() {
    let launch = MeshLaunch::new(mesh(&[("tp", 2)]))
        .inputs(vec![Sharding::split(0, "tp"), Sharding::replicated()])
        .outputs(vec![Sharding::split(0, "tp")]);
    let kernel = softmax_scale(8).unwrap();
    let compiled = rpa_dsl::mesh::MeshCpu::global(2).unwrap().compile(&launch, &kernel).unwrap();
    assert!(compiled.mlir().contains("mhlo.num_partitions = 2") && compiled.mlir().contains("sdy.manual_computation"));
    for scale in [0.01, 0.02] {
        let inputs = [Array::from_f32(F32, &[16, 128], &ramp(16 * 128, scale)), Array::filled(F32, &[8, 128], 2.0)];
        let (got, want) = (compiled.run(&inputs).unwrap(), launch.interpret(&kernel, &inputs).unwrap());
        assert_close(&got[0], &want[0], 1e-6, "second run");
    }
}

fn message(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[test]
fn bad_meshes_and_shardings_are_named() {
    assert!(message(Mesh::new(&[("tp", 0)]).unwrap_err()).contains("`tp` has size 0"));
    assert!(message(Mesh::new(&[("tp", 2), ("tp", 2)]).unwrap_err()).contains("`tp` appears twice"));
    assert!(message(Mesh::new(&[("t p", 2)]).unwrap_err()).contains("`t p`"));
    let kernel = softmax_scale(16).unwrap();
    let x = Array::zeros(F32, &[32, 128]);
    let w = Array::zeros(F32, &[8, 128]);
    let base = MeshLaunch::new(mesh(&[("tp", 2)])).outputs(vec![Sharding::split(0, "tp")]);
    let plan_err = |l: &MeshLaunch| message(l.plan(&kernel).unwrap_err());
    let unknown = base.clone().inputs(vec![Sharding::split(0, "cp"), Sharding::replicated()]);
    let e = plan_err(&unknown);
    assert!(e.contains("input `x`") && e.contains("`cp`") && e.contains("tp=2"), "{e}");
    let rank = base.clone().inputs(vec![Sharding::split(2, "tp"), Sharding::replicated()]);
    assert!(plan_err(&rank).contains("splits dim 2 of an array of rank 2"));
    let twice = base.clone().inputs(vec![Sharding::split(0, "tp").and_split(1, "tp"), Sharding::replicated()]);
    assert!(plan_err(&twice).contains("uses mesh axis `tp` twice"));
    assert!(
        plan_err(&base.clone().inputs(vec![Sharding::replicated()])).contains("1 input shardings; the kernel has 2")
    );
    let gathered_but_split =
        base.clone().inputs(vec![Sharding::split(0, "tp"), Sharding::replicated()]).all_gather(0, 0, "tp");
    assert!(plan_err(&gathered_but_split).contains("output `o` is split over mesh axis `tp`"));

    // Global arrays: a dim the mesh axis does not divide, a wrong shape, a wrong count.
    let launch = base.inputs(vec![Sharding::split(0, "tp"), Sharding::replicated()]);
    let odd = Array::zeros(F32, &[33, 128]);
    for run in [MeshLaunch::interpret, MeshLaunch::run_cpu] {
        let e = message(run(&launch, &kernel, &[odd.clone(), w.clone()]).unwrap_err());
        assert!(e.contains("dim 0 of input `x` has size 33, which mesh axes `tp` (2 blocks) do not divide"), "{e}");
        let e = message(run(&launch, &kernel, &[Array::zeros(F32, &[16, 128]), w.clone()]).unwrap_err());
        assert!(e.contains("expects global shape [32, 128]") && e.contains("got [16, 128]"), "{e}");
        let e = message(run(&launch, &kernel, std::slice::from_ref(&x)).unwrap_err());
        assert!(e.contains("expects 2 input arrays (x, w), got 1"), "{e}");
    }
}

/// A kernel with nothing to return.
#[tpu_kernel]
fn no_output(x: In![f32, [8, 128]], buf: Vmem![f32, [8, 128]], sem: DmaSems<1>) {
    copy(x, buf, sem.at(0)).start_and_wait();
}

#[test]
fn a_launch_needs_an_output() {
    let launch = MeshLaunch::new(mesh(&[("tp", 2)])).inputs(vec![Sharding::split(0, "tp")]);
    let e = message(launch.plan(&no_output().unwrap()).unwrap_err());
    assert!(e.contains("a kernel launched on a mesh needs an output"), "{e}");
}

#[test]
fn lse_merge_arguments_are_checked() {
    let kernel = partial_attention(128, F32).unwrap();
    let launch = |lse_dims: &[usize], out: usize, lse: usize| {
        MeshLaunch::new(mesh(&[("cp", 2)]))
            .inputs(vec![Sharding::split(1, "cp"), Sharding::split(2, "cp")])
            .outputs(vec![Sharding::replicated(), Sharding::replicated()])
            .lse_merge(out, lse, lse_dims, "cp")
    };
    assert!(launch(&[1], 0, 1).plan(&kernel).is_ok());
    let e = message(launch(&[1, 2], 0, 1).plan(&kernel).unwrap_err());
    assert!(e.contains("lse dims [1, 2] do not map lse 1 [8, 128] onto out 0 [2, 8, 256]"), "{e}");
    assert!(message(launch(&[0], 0, 1).plan(&kernel).unwrap_err()).contains("lse dims [0] do not map"));
    assert!(message(launch(&[1], 0, 0).plan(&kernel).unwrap_err()).contains("merges output 0 with itself"));
    assert!(message(launch(&[1], 0, 2).plan(&kernel).unwrap_err()).contains("names output 2; the kernel has 2"));
}

#[test]
fn a_mesh_larger_than_the_client_is_refused() {
    let cpu = rpa_dsl::mesh::MeshCpu::new(2).unwrap();
    let launch = MeshLaunch::new(mesh(&[("a", 2), ("b", 2)]))
        .inputs(vec![Sharding::split(0, "a"), Sharding::replicated()])
        .outputs(vec![Sharding::split(0, "a")]);
    let e = message(cpu.run(&launch, &softmax_scale(16).unwrap(), &[Array::zeros(F32, &[32, 128])]).unwrap_err());
    assert!(e.contains("the mesh (a=2, b=2) has 4 devices; this XLA:CPU client has 2"), "{e}");
}

#[test]
fn replicated_outputs_must_agree_across_devices() {
    // Rows split over "tp" but the output declared replicated: the devices disagree.
    let launch = MeshLaunch::new(mesh(&[("tp", 2)]))
        .inputs(vec![Sharding::split(0, "tp"), Sharding::replicated()])
        .outputs(vec![Sharding::replicated()]);
    let x = Array::from_f32(F32, &[32, 128], &ramp(32 * 128, 0.03));
    let w = Array::filled(F32, &[8, 128], 1.0);
    let e = message(launch.interpret(&softmax_scale(16).unwrap(), &[x, w]).unwrap_err());
    assert!(e.contains("output `o`: devices 0 and 1 hold different values"), "{e}");
}

/// `o = x[8·at[0] .. 8·at[0] + 8]` (printing `at[0]`: the per-device print log is an extra result
/// of the SPMD program).
#[tpu_kernel]
fn pick_rows(
    at: Prefetch![i32, [1]],
    x: In![f32, [16, 128]],
    o: Out![f32, [8, 128]],
    buf: Vmem![f32, [8, 128]],
    sem: DmaSems<1>,
) {
    debug_print("rows of block {}", &[at.get(0)]);
    copy(x.ds(at.get(0) * 8, 8), buf, sem.at(0)).start_and_wait();
    copy(buf, o, sem.at(0)).start_and_wait();
}

#[test]
fn checked_mode_names_the_device() {
    let launch = MeshLaunch::new(mesh(&[("tp", 2)]))
        .inputs(vec![Sharding::split(0, "tp"), Sharding::replicated()])
        .outputs(vec![Sharding::split(0, "tp")]);
    let x = Array::from_f32(F32, &[16, 128], &ramp(16 * 128, 0.1));
    let kernel = pick_rows().unwrap();
    let got = cpu_matches_interpret(&kernel, &launch, &[Array::from_i32(&[2], &[1, 0]), x.clone()]);
    assert_eq!(got[0].bits()[..8 * 128], x.bits()[8 * 128..]);
    // Each device printed its index; both backends return the lines by device.
    let inputs = [Array::from_i32(&[2], &[1, 0]), x.clone()];
    let want = ["[device 0] rows of block 1", "[device 1] rows of block 0"];
    let opts = rpa_dsl::interpret::InterpretOptions::default();
    assert_eq!(launch.interpret_with_prints(&kernel, &inputs, &opts).unwrap().1, want);
    let compiled = rpa_dsl::mesh::MeshCpu::global(2).unwrap().compile(&launch, &kernel).unwrap();
    assert_eq!(compiled.run_with_prints(&inputs).unwrap().1, want);
    // Device 1's index is out of bounds: both backends say so, naming the device.
    let bad = [Array::from_i32(&[2], &[0, 5]), x];
    for run in [MeshLaunch::interpret, MeshLaunch::run_cpu] {
        let e = message(run(&launch, &kernel, &bad).unwrap_err());
        assert!(e.contains("on device 1 (tp=1)") && e.contains("out of bounds"), "{e}");
    }
}

/// `x ← 2·x + 1`, in place.
#[tpu_kernel(grid = [rows / 8], semantics = [parallel])]
fn double_in_place(
    #[comptime] rows: usize,
    #[block([8, 128], |i| [i, 0])] x: In![f32, [rows, 128]],
    #[alias(x)]
    #[block([8, 128], |i| [i, 0])]
    o: Out![f32, [rows, 128]],
) {
    o.store(x.load() * 2.0 + 1.0);
}

#[test]
fn an_output_aliasing_a_like_sharded_input_updates_it_in_place() {
    let x = Array::from_f32(F32, &[32, 128], &ramp(32 * 128, 0.1));
    let kernel = double_in_place(8).unwrap();
    let split = Sharding::split(0, "a").and_split(0, "b");
    let launch = MeshLaunch::new(mesh(&[("a", 2), ("b", 2)])).inputs(vec![split.clone()]).outputs(vec![split]);
    assert_eq!(launch.plan(&kernel).unwrap().aliases, [Some(0)]);
    let compiled = rpa_dsl::mesh::MeshCpu::global(4).unwrap().compile(&launch, &kernel).unwrap();
    assert!(compiled.mlir().contains("tf.aliasing_output = 0 : i32"));
    let got = compiled.run(std::slice::from_ref(&x)).unwrap();
    assert_eq!(got, launch.interpret(&kernel, std::slice::from_ref(&x)).unwrap());
    // Gathered, the result is no longer the input's shards: no alias.
    let gathered = MeshLaunch::new(mesh(&[("a", 4)]))
        .inputs(vec![Sharding::split(0, "a")])
        .outputs(vec![Sharding::replicated()])
        .all_gather(0, 0, "a");
    assert_eq!(gathered.plan(&kernel).unwrap().aliases, [None]);
    cpu_matches_interpret(&kernel, &gathered, &[x]);
}
