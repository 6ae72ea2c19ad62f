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

/// bf16 rows `2r` and `2r + 1` share one 32-bit word per lane (low half = even row), as on a TPU;
/// a u32 view of a bf16 buffer, shifts and masks recover each row (RPA's K/V de-interleave).
#[test]
fn packed_bitcast_views_follow_tpu_sublane_packing() {
    let k = build_kernel("unpack", Loc::caller(), || {
        let src = launch::input::<Hbm>("src", DType::Bf16, &[16, 128]);
        let even = launch::output::<Hbm>("even", DType::Bf16, &[8, 128], None);
        let odd = launch::output::<Hbm>("odd", DType::Bf16, &[8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::Bf16, &[16, 128]);
        let ev = launch::scratch_vmem("ev", DType::Bf16, &[8, 128]);
        let od = launch::scratch_vmem("od", DType::Bf16, &[8, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        copy(src, buf, sem.at(0)).start_and_wait();
        let words = buf.bitcast(DType::U32).load(); // u32[8, 128]
        let lo = (words << 16u32).bitcast(DType::F32).cast(DType::Bf16);
        let hi = (words & 0xffff_0000u32).bitcast(DType::F32).cast(DType::Bf16);
        ev.store(lo);
        od.store(hi);
        // And back: packing the halves again reproduces the buffer.
        let repacked = rpa_dsl::frontend::concat(&[ev.load(), od.load()], 0);
        let _ = repacked;
        copy(ev, even, sem.at(0)).start_and_wait();
        copy(od, odd, sem.at(0)).start_and_wait();
    })
    .unwrap();
    let vals: Vec<f64> = (0..16 * 128).map(|i| (i % 97) as f64 * 0.25 - 7.0).collect();
    let src = Array::from_f64(DType::Bf16, &[16, 128], &vals);
    let out = k.interpret(std::slice::from_ref(&src)).unwrap();
    for r in 0..8 {
        for c in 0..128 {
            assert_eq!(out[0].get_f64(r * 128 + c), src.get_f64(2 * r * 128 + c), "even row {r}");
            assert_eq!(out[1].get_f64(r * 128 + c), src.get_f64((2 * r + 1) * 128 + c), "odd row {r}");
        }
    }
}

#[test]
fn strided_loads_pick_every_kth_row() {
    let k = build_kernel("strided", Loc::caller(), || {
        let src = launch::input::<Hbm>("src", DType::F32, &[24, 128]);
        let dst = launch::output::<Hbm>("dst", DType::F32, &[8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[24, 128]);
        let out = launch::scratch_vmem("out", DType::F32, &[8, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        copy(src, buf, sem.at(0)).start_and_wait();
        out.store(buf.load_strided(1, 8, 3));
        copy(out, dst, sem.at(0)).start_and_wait();
    })
    .unwrap();
    let data = ramp(24 * 128);
    let out = k.interpret(&[Array::from_f32(DType::F32, &[24, 128], &data)]).unwrap();
    let got = out[0].to_f32();
    for r in 0..8 {
        assert_eq!(&got[r * 128..(r + 1) * 128], &data[(1 + 3 * r) * 128..(2 + 3 * r) * 128]);
    }
}

#[test]
fn vector_bitcast_packs_rows_like_the_ref_bitcast() {
    let k = build_kernel("vec_bitcast", Loc::caller(), || {
        let src = launch::input::<Hbm>("src", DType::Bf16, &[16, 128]);
        let a = launch::output::<Hbm>("a", DType::U32, &[8, 128], None);
        let b = launch::output::<Hbm>("b", DType::U32, &[8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::Bf16, &[16, 128]);
        let wa = launch::scratch_vmem("wa", DType::U32, &[8, 128]);
        let wb = launch::scratch_vmem("wb", DType::U32, &[8, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        copy(src, buf, sem.at(0)).start_and_wait();
        wa.store(buf.load().bitcast(DType::U32));
        wb.store(buf.bitcast(DType::U32).load());
        copy(wa, a, sem.at(0)).start_and_wait();
        copy(wb, b, sem.at(0)).start_and_wait();
    })
    .unwrap();
    let vals: Vec<f64> = (0..16 * 128).map(|i| i as f64).collect();
    let out = k.interpret(&[Array::from_f64(DType::Bf16, &[16, 128], &vals)]).unwrap();
    assert_eq!(out[0], out[1]);
    let lo = DType::Bf16.float_to_bits(vals[0]);
    let hi = DType::Bf16.float_to_bits(vals[128]);
    assert_eq!(out[0].bits()[0], lo | (hi << 16));
}

#[test]
fn runtime_loops_and_variables_carry_values() {
    // sum_{i < n} i with a `let mut` equivalent built by hand: var + for.
    use rpa_dsl::frontend::control::{ForLoop, MutInit, RuntimeMut as _};
    let k = build_kernel("loop_sum", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[1]);
        let out = launch::output::<Hbm>("out", DType::I32, &[8, 128], None);
        let acc_buf = launch::scratch_vmem("acc", DType::I32, &[8, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        let total = MutInit::new(Scalar::constant(DType::I32, 0.0)).__rpa_into_mut();
        let l = ForLoop::begin(0, n.get(0));
        {
            use rpa_dsl::frontend::control::{AssignTo, RuntimeAssign as _};
            let i = l.index();
            let mut t = total;
            AssignTo::new(&mut t).__rpa_assign(total + i, 0, "total");
        }
        l.end();
        acc_buf.store(rpa_dsl::frontend::full(&[8, 128], total, DType::I32));
        copy(acc_buf, out, sem.at(0)).start_and_wait();
    })
    .unwrap();
    let out = k.interpret(&[Array::from_i32(&[1], &[10])]).unwrap();
    assert!(out[0].to_i64().iter().all(|&v| v == 45), "{:?}", &out[0].to_i64()[..4]);
}
