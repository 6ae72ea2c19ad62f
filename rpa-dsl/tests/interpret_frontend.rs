//! Interpret-mode semantics, on kernels built with the frontend API directly (no macro).

use rpa_dsl::frontend::{build_kernel, copy, launch, Hbm, Scalar};
use rpa_dsl::interpret::{run, InterpretOptions};
use rpa_dsl::{Array, DType, Loc};

fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32 * 0.5 - 3.0).collect()
}

#[test]
fn blocked_elementwise_add_matches_reference() {
    let k = build_kernel("add", Loc::caller(), || {
        launch::grid(&[4]);
        let map = |g: &[Scalar]| vec![g[0], launch::block_index(0)];
        let x = launch::input_blocked("x", DType::F32, &[32, 128], &[8, 128], map);
        let y = launch::input_blocked("y", DType::F32, &[32, 128], &[8, 128], map);
        let o = launch::output_blocked("o", DType::F32, &[32, 128], &[8, 128], map, None);
        o.store(x.load() + y.load() * 2.0f32);
    })
    .unwrap();
    let (a, b) = (ramp(32 * 128), ramp(32 * 128).into_iter().rev().collect::<Vec<_>>());
    let out = k
        .interpret(&[Array::from_f32(DType::F32, &[32, 128], &a), Array::from_f32(DType::F32, &[32, 128], &b)])
        .unwrap();
    let got = out[0].to_f32();
    for i in 0..a.len() {
        assert_eq!(got[i], a[i] + b[i] * 2.0, "element {i}");
    }
}

#[test]
fn missing_wait_is_reported_at_the_dma_start() {
    let line = line!() + 7;
    let k = build_kernel("nowait", Loc::caller(), || {
        let src = launch::input::<Hbm>("src", DType::F32, &[8, 128]);
        let dst = launch::output::<Hbm>("dst", DType::F32, &[8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[8, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        copy(src, buf, sem.at(0)).start_and_wait();
        copy(buf, dst, sem.at(0)).start();
    })
    .unwrap();
    let err = run(&k, &[Array::zeros(DType::F32, &[8, 128])], &InterpretOptions::default()).unwrap_err();
    let d = err.first();
    assert!(d.message.contains("never waited"), "{err}");
    assert_eq!(d.loc.line, line, "{err}");
}

#[test]
fn dma_data_lands_only_at_the_wait() {
    // Reading the destination before the wait is a race; after it, the data is there.
    let k = build_kernel("early_read", Loc::caller(), || {
        let src = launch::input::<Hbm>("src", DType::F32, &[8, 128]);
        let dst = launch::output::<Hbm>("dst", DType::F32, &[8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[8, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        let c = copy(src, buf, sem.at(0));
        c.start();
        let _ = buf.load();
        c.wait();
        copy(buf, dst, sem.at(0)).start_and_wait();
    })
    .unwrap();
    let err = run(&k, &[Array::zeros(DType::F32, &[8, 128])], &InterpretOptions::default()).unwrap_err();
    assert!(err.first().message.contains("still writing"), "{err}");
}

#[test]
fn ragged_dynamic_size_dma_moves_only_its_rows() {
    let k = build_kernel("ragged", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[1]);
        let src = launch::input::<Hbm>("src", DType::F32, &[16, 128]);
        let dst = launch::output::<Hbm>("dst", DType::F32, &[16, 128], Some("src"));
        let buf = launch::scratch_vmem("buf", DType::F32, &[16, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        let rows = n.get(0);
        copy(src.ds(3, rows), buf.ds(0, rows), sem.at(0)).start_and_wait();
        let t = buf.ds(0, 8).load();
        buf.ds(0, 8).store(t * 10.0f32);
        copy(buf.ds(0, rows), dst.ds(3, rows), sem.at(0)).start_and_wait();
    })
    .unwrap();
    let data = ramp(16 * 128);
    let res = run(
        &k,
        &[Array::from_i32(&[1], &[5]), Array::from_f32(DType::F32, &[16, 128], &data)],
        &InterpretOptions::default(),
    )
    .unwrap();
    let got = res.outputs[0].to_f32();
    for r in 0..16 {
        for c in 0..128 {
            let i = r * 128 + c;
            let want = if (3..8).contains(&r) { data[i] * 10.0 } else { data[i] };
            assert_eq!(got[i], want, "row {r} col {c}");
        }
    }
    assert_eq!(res.stats.moved(rpa_dsl::ir::MemSpace::Hbm, rpa_dsl::ir::MemSpace::Vmem), 5 * 128 * 4);
}
