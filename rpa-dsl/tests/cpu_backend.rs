//! The CPU backend (kernel IR → pure StableHLO → XLA:CPU through PJRT) against interpret mode, on
//! kernels built with the frontend API directly (no macro). Copies and integer work must agree
//! bit-exactly; transcendental and matmul work within a tight tolerance.
//!
//! Needs the XLA:CPU plugin (`scripts/install-plugins`); without it these tests FAIL, saying so.

use rpa_dsl::frontend::cmp;
use rpa_dsl::frontend::control::{AssignTo, ForLoop, If, MutInit, RuntimeAssign as _, RuntimeMut as _, WhileLoop};
use rpa_dsl::frontend::{build_kernel, copy, iota, launch, matmul, select, zeros, Hbm, Scalar, Tile};
use rpa_dsl::{Array, DType, Kernel, Loc};

fn ramp(n: usize, scale: f64, shift: f64) -> Vec<f64> {
    (0..n).map(|i| ((i * 37 + 11) % 101) as f64 * scale + shift).collect()
}

fn cpu(k: &Kernel, inputs: &[Array]) -> Vec<Array> {
    match rpa_dsl::cpu::run(k, inputs) {
        Ok(out) => out,
        Err(e) if e.to_string().contains("cannot start the XLA:CPU") => panic!("{e}"),
        Err(e) => {
            let mlir = rpa_dsl::lower::stablehlo::lower(k).unwrap_or_default();
            panic!("CPU backend failed: {e}\n--- module ---\n{mlir}")
        }
    }
}

fn interpret(k: &Kernel, inputs: &[Array]) -> Vec<Array> {
    k.interpret(inputs).unwrap_or_else(|e| panic!("interpret mode: {e}"))
}

/// Bit-exact agreement of every output.
fn same(k: &Kernel, inputs: &[Array]) -> Vec<Array> {
    exact(k, inputs, false)
}

/// Bit-exact agreement, except that any NaN matches any NaN (payloads of converted NaNs differ).
fn same_or_nan(k: &Kernel, inputs: &[Array]) -> Vec<Array> {
    exact(k, inputs, true)
}

fn exact(k: &Kernel, inputs: &[Array], any_nan: bool) -> Vec<Array> {
    let want = interpret(k, inputs);
    let got = cpu(k, inputs);
    assert_eq!(got.len(), want.len());
    for (o, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!((g.dtype(), g.shape()), (w.dtype(), w.shape()), "output {o}");
        let nan = |a: &Array, i: usize| a.dtype().is_float() && a.get_f64(i).is_nan();
        let differs = |i: usize| g.bits()[i] != w.bits()[i] && !(any_nan && nan(g, i) && nan(w, i));
        if let Some(i) = (0..g.len()).find(|&i| differs(i)) {
            panic!(
                "kernel `{}` output {o} differs first at element {i}: cpu {:#x} ({}) vs interpret {:#x} ({})",
                k.name,
                g.bits()[i],
                g.get_f64(i),
                w.bits()[i],
                w.get_f64(i)
            );
        }
    }
    got
}

/// Agreement within `atol + rtol·|want|` (NaN only where interpret mode has NaN).
fn close(k: &Kernel, inputs: &[Array], atol: f64, rtol: f64) -> Vec<Array> {
    let want = interpret(k, inputs);
    let got = cpu(k, inputs);
    for (o, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!((g.dtype(), g.shape()), (w.dtype(), w.shape()), "output {o}");
        for i in 0..g.len() {
            let (a, b) = (g.get_f64(i), w.get_f64(i));
            let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= atol + rtol * b.abs();
            assert!(ok, "kernel `{}` output {o} element {i}: cpu {a} vs interpret {b}", k.name);
        }
    }
    got
}

/// `if cond { f() }` on a runtime condition.
fn when(cond: Scalar, f: impl FnOnce()) {
    let mut c = If::begin(cond);
    if c.then_branch() {
        f();
    }
    c.else_branch();
    c.end();
}

fn f32s(shape: &[usize], v: &[f64]) -> Array {
    Array::from_f64(DType::F32, shape, v)
}

// ------------------------------------------------------------------------------------------------ BlockSpecs

fn blocked_add(rows: usize) -> Kernel {
    build_kernel("blocked_add", Loc::caller(), || {
        launch::grid(&[rows.div_ceil(8)]);
        let map = |g: &[Scalar]| vec![g[0], launch::block_index(0)];
        let x = launch::input_blocked("x", DType::F32, &[rows, 128], &[8, 128], map);
        let y = launch::input_blocked("y", DType::F32, &[rows, 128], &[8, 128], map);
        let o = launch::output_blocked("o", DType::F32, &[rows, 128], &[8, 128], map, None);
        o.store(x.load() + y.load() * 2.0f32);
    })
    .unwrap()
}

#[test]
fn blocked_elementwise_add_over_a_grid() {
    let k = blocked_add(32);
    let (a, b) = (ramp(32 * 128, 0.5, -3.0), ramp(32 * 128, -0.25, 7.0));
    let out = same(&k, &[f32s(&[32, 128], &a), f32s(&[32, 128], &b)]);
    assert_eq!(out[0].get_f64(5), a[5] + b[5] * 2.0);
}

#[test]
fn edge_blocks_are_clipped() {
    // 20 rows in blocks of 8: the last block holds 4 rows; the rest of it is neither read nor written.
    let k = blocked_add(20);
    let (a, b) = (ramp(20 * 128, 0.5, -3.0), ramp(20 * 128, 1.5, 2.0));
    same(&k, &[f32s(&[20, 128], &a), f32s(&[20, 128], &b)]);
}

#[test]
fn index_maps_read_scalar_prefetch_and_revisit_inputs() {
    // Block i of the output takes block perm[i] of x; output blocks are visited once each.
    let k = build_kernel("gather_blocks", Loc::caller(), || {
        launch::grid(&[4]);
        let perm = launch::prefetch("perm", DType::I32, &[4]);
        let x = launch::input_blocked("x", DType::F32, &[32, 128], &[8, 128], |g: &[Scalar]| {
            vec![perm.get(g[0]), launch::block_index(0)]
        });
        let o = launch::output_blocked(
            "o",
            DType::F32,
            &[32, 128],
            &[8, 128],
            |g: &[Scalar]| vec![g[0], launch::block_index(0)],
            None,
        );
        o.store(x.load() + 1.0f32);
    })
    .unwrap();
    let x = f32s(&[32, 128], &ramp(32 * 128, 1.0, 0.0));
    same(&k, &[Array::from_i32(&[4], &[2, 2, 0, 3]), x]);
}

fn tiled_matmul(m: usize, n: usize, kd: usize, bm: usize, bn: usize, bk: usize, dtype: DType) -> Kernel {
    build_kernel("tiled_matmul", Loc::caller(), || {
        launch::grid(&[m / bm, n / bn, kd / bk]);
        let x = launch::input_blocked("x", dtype, &[m, kd], &[bm, bk], |g: &[Scalar]| vec![g[0], g[2]]);
        let y = launch::input_blocked("y", dtype, &[kd, n], &[bk, bn], |g: &[Scalar]| vec![g[2], g[1]]);
        let o = launch::output_blocked("o", dtype, &[m, n], &[bm, bn], |g: &[Scalar]| vec![g[0], g[1]], None);
        let acc = launch::scratch_vmem("acc", DType::F32, &[bm, bn]);
        let kk = rpa_dsl::frontend::program_id(2);
        when(cmp::eq(kk, 0), || acc.store(zeros(&[bm, bn], DType::F32)));
        acc.store(acc.load() + matmul(x.load(), y.load()));
        let last = rpa_dsl::frontend::num_programs(2) - 1;
        when(cmp::eq(kk, last), || o.store(acc.load().cast(dtype)));
    })
    .unwrap()
}

#[test]
fn tiled_matmul_with_an_accumulator_over_a_3d_grid() {
    let k = tiled_matmul(64, 256, 256, 32, 128, 128, DType::F32);
    let x = f32s(&[64, 256], &ramp(64 * 256, 0.01, -0.5));
    let y = f32s(&[256, 256], &ramp(256 * 256, -0.02, 1.0));
    close(&k, &[x, y], 1e-4, 1e-5);
}

#[test]
fn tiled_matmul_in_bf16() {
    // bf16 inputs, f32 accumulation, bf16 output: rounding the same sum the same way.
    let k = tiled_matmul(32, 128, 256, 16, 128, 128, DType::Bf16);
    let x = Array::from_f64(DType::Bf16, &[32, 256], &ramp(32 * 256, 0.125, -4.0));
    let y = Array::from_f64(DType::Bf16, &[256, 128], &ramp(256 * 128, 0.0625, -3.0));
    close(&k, &[x, y], 0.0, 1e-2);
}

// ------------------------------------------------------------------------------------------------ DMAs

/// `dst = 2 · src` streamed by hand through two VMEM slots and two semaphores, with a runtime trip
/// count and a variable carried through the loop (a running sum of every block's first element).
fn double_buffered() -> Kernel {
    build_kernel("double_buffered", Loc::caller(), || {
        let nblk = launch::prefetch("n", DType::I32, &[1]);
        let src = launch::input::<Hbm>("src", DType::F32, &[64, 128]);
        let dst = launch::output::<Hbm>("dst", DType::F32, &[64, 128], None);
        let sums = launch::output::<Hbm>("sums", DType::F32, &[8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[2, 8, 128]);
        let out = launch::scratch_vmem("out", DType::F32, &[8, 128]);
        let acc = launch::scratch_vmem("acc", DType::F32, &[8, 128]);
        let sems = launch::dma_sems("sems", &[2]);
        let out_sem = launch::dma_sems("out_sem", &[1]);
        let n = nblk.get(0);
        let total = MutInit::new(Scalar::constant(DType::F32, 0.0)).__rpa_into_mut();
        let count = MutInit::new(Scalar::constant(DType::I32, 0.0)).__rpa_into_mut();
        copy(src.ds(0, 8), buf.at(0), sems.at(0)).start();
        let l = ForLoop::begin(0, n);
        {
            let i = l.index();
            let slot = i % 2;
            when(cmp::lt(i + 1, n), || copy(src.ds((i + 1) * 8, 8), buf.at(1 - slot), sems.at(1 - slot)).start());
            copy(src.ds(i * 8, 8), buf.at(slot), sems.at(slot)).wait();
            let t = buf.at(slot).load();
            out.store(t * 2.0f32);
            copy(out, dst.ds(i * 8, 8), out_sem.at(0)).start_and_wait();
            let first = t.slice(&[0, 0], &[1, 1]).reshape(&[1]).reduce_sum(0);
            let _ = first;
            let mut tt = total;
            AssignTo::new(&mut tt).__rpa_assign(total + 1.5f32, 0, "total");
            let mut cc = count;
            AssignTo::new(&mut cc).__rpa_assign(count + i, 0, "count");
        }
        l.end();
        let v = rpa_dsl::frontend::full(&[8, 128], total, DType::F32);
        let w = rpa_dsl::frontend::full(&[8, 128], count, DType::I32).cast(DType::F32);
        acc.store(v + w);
        copy(acc, sums, out_sem.at(0)).start_and_wait();
    })
    .unwrap()
}

#[test]
fn double_buffered_streaming_with_semaphores_loops_and_variables() {
    let k = double_buffered();
    let src = f32s(&[64, 128], &ramp(64 * 128, 0.5, -10.0));
    for n in [8, 5, 1] {
        let out = same(&k, &[Array::from_i32(&[1], &[n]), src.clone()]);
        assert_eq!(out[1].get_f64(0), 1.5 * n as f64 + (n * (n - 1) / 2) as f64);
    }
}

/// `if`s that write large buffers (lowered as two loops of at most one trip, which XLA updates in
/// place) with variables, a nested `if` and a loop in the branches.
#[test]
fn ifs_on_large_buffers() {
    let k = build_kernel("large_ifs", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[1]);
        let src = launch::input::<Hbm>("src", DType::F32, &[256, 128]);
        let dst = launch::output::<Hbm>("dst", DType::F32, &[256, 128], None);
        let sums = launch::output::<Hbm>("sums", DType::F32, &[8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[8, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        let total = MutInit::new(Scalar::constant(DType::F32, 0.0)).__rpa_into_mut();
        let l = ForLoop::begin(0, n.get(0));
        {
            let i = l.index();
            let mut c = If::begin(cmp::eq(i % 3, 0));
            if c.then_branch() {
                copy(src.ds(i * 8, 8), dst.ds(i * 8, 8), sem.at(0)).start_and_wait();
                let mut t = total;
                AssignTo::new(&mut t).__rpa_assign(total + 1.0f32, 0, "total");
                when(cmp::eq(i % 2, 0), || {
                    copy(src.ds(i * 8, 8), buf, sem.at(0)).start_and_wait();
                    buf.store(buf.load() + 100.0f32);
                    copy(buf, dst.ds(i * 8, 8), sem.at(0)).start_and_wait();
                });
            }
            if c.else_branch() {
                buf.store(rpa_dsl::frontend::full(&[8, 128], i, DType::I32).cast(DType::F32));
                copy(buf, dst.ds(i * 8, 8), sem.at(0)).start_and_wait();
                let mut t = total;
                AssignTo::new(&mut t).__rpa_assign(total + 2.0f32, 0, "total");
                let inner = ForLoop::begin(0, i % 4);
                {
                    let mut t = total;
                    AssignTo::new(&mut t).__rpa_assign(total + 0.5f32, 0, "total");
                }
                inner.end();
            }
            c.end();
        }
        l.end();
        buf.store(rpa_dsl::frontend::full(&[8, 128], total, DType::F32));
        copy(buf, sums, sem.at(0)).start_and_wait();
    })
    .unwrap();
    let mlir = rpa_dsl::lower::stablehlo::lower(&k).unwrap();
    // The `for` loops, and one loop per non-empty branch of the two `if`s.
    assert_eq!(mlir.matches("stablehlo.while").count(), 5, "{mlir}");
    assert!(!mlir.contains("stablehlo.if"), "{mlir}");
    let src = f32s(&[256, 128], &ramp(256 * 128, 0.5, -3.0));
    for n in [32, 7, 0] {
        same(&k, &[Array::from_i32(&[1], &[n]), src.clone()]);
    }
}

fn ragged() -> Kernel {
    build_kernel("ragged", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[2]);
        let src = launch::input::<Hbm>("src", DType::F32, &[16, 128]);
        let dst = launch::output::<Hbm>("dst", DType::F32, &[16, 128], Some("src"));
        let buf = launch::scratch_vmem("buf", DType::F32, &[16, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        let (start, rows) = (n.get(0), n.get(1));
        buf.store(zeros(&[16, 128], DType::F32));
        copy(src.ds(start, rows), buf.ds(0, rows), sem.at(0)).start_and_wait();
        let t = buf.load();
        buf.store(t * 10.0f32 + 1.0f32);
        copy(buf.ds(0, rows), dst.ds(start, rows), sem.at(0)).start_and_wait();
    })
    .unwrap()
}

#[test]
fn ragged_dynamic_size_dmas_move_only_their_rows() {
    let k = ragged();
    let data = f32s(&[16, 128], &ramp(16 * 128, 0.25, -1.0));
    // Includes windows whose static maximum (16 rows) runs past the end, and an empty copy.
    for (start, rows) in [(3, 5), (12, 4), (0, 16), (7, 0), (15, 1)] {
        let out = same(&k, &[Array::from_i32(&[2], &[start, rows]), data.clone()]);
        let r = start as usize;
        if rows > 0 {
            assert_eq!(out[0].get_f64(r * 128), data.get_f64(r * 128) * 10.0 + 1.0);
        }
        if r > 0 {
            assert_eq!(out[0].get_f64((r - 1) * 128), data.get_f64((r - 1) * 128));
        }
    }
}

#[test]
fn dynamic_dma_windows_in_two_dims() {
    // A [rows, cols] corner of a 2-D window, both sizes at run time, between refs of other shapes.
    let k = build_kernel("ragged2d", Loc::caller(), || {
        use rpa_dsl::frontend::ds_max;
        let n = launch::prefetch("n", DType::I32, &[2]);
        let src = launch::input::<Hbm>("src", DType::I32, &[4, 16, 256]);
        let dst = launch::output::<Hbm>("dst", DType::I32, &[8, 256], None);
        let buf = launch::scratch_vmem("buf", DType::I32, &[8, 256]);
        let sem = launch::dma_sems("sem", &[1]);
        let (rows, cols) = (n.get(0), n.get(1));
        buf.store(zeros(&[8, 256], DType::I32) - 1);
        let s = src.at(2).view(&[ds_max(3, rows, 8), ds_max(64, cols, 192)]);
        let d = buf.view(&[ds_max(1, rows, 7), ds_max(0, cols, 192)]);
        copy(s, d, sem.at(0)).start_and_wait();
        copy(buf, dst, sem.at(0)).start_and_wait();
    })
    .unwrap();
    let src =
        Array::from_i64(DType::I32, &[4, 16, 256], &(0..4 * 16 * 256).map(|i| i as i64 * 7 - 5000).collect::<Vec<_>>());
    for (rows, cols) in [(5, 100), (7, 192), (0, 3), (1, 0), (3, 1)] {
        same(&k, &[Array::from_i32(&[2], &[rows, cols]), src.clone()]);
    }
}

// ------------------------------------------------------------------------------------------------ packing

/// bf16 rows `2r` and `2r + 1` share one 32-bit word per lane (low half = even row); a u32 view
/// of a bf16 buffer, shifts and masks recover each row (RPA's K/V de-interleave).
#[test]
fn packed_bitcast_views_follow_tpu_sublane_packing() {
    let k = build_kernel("unpack", Loc::caller(), || {
        let src = launch::input::<Hbm>("src", DType::Bf16, &[16, 128]);
        let even = launch::output::<Hbm>("even", DType::Bf16, &[8, 128], None);
        let odd = launch::output::<Hbm>("odd", DType::Bf16, &[8, 128], None);
        let words_out = launch::output::<Hbm>("words", DType::U32, &[8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::Bf16, &[16, 128]);
        let ev = launch::scratch_vmem("ev", DType::Bf16, &[8, 128]);
        let od = launch::scratch_vmem("od", DType::Bf16, &[8, 128]);
        let wv = launch::scratch_vmem("wv", DType::U32, &[8, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        copy(src, buf, sem.at(0)).start_and_wait();
        let words = buf.bitcast(DType::U32).load(); // u32[8, 128]
        let lo = (words << 16u32).bitcast(DType::F32).cast(DType::Bf16);
        let hi = (words & 0xffff_0000u32).bitcast(DType::F32).cast(DType::Bf16);
        ev.store(lo);
        od.store(hi);
        // The vector bitcast packs like the ref bitcast.
        wv.store(buf.load().bitcast(DType::U32) ^ words);
        copy(ev, even, sem.at(0)).start_and_wait();
        copy(od, odd, sem.at(0)).start_and_wait();
        copy(wv, words_out, sem.at(0)).start_and_wait();
    })
    .unwrap();
    let vals: Vec<f64> = (0..16 * 128).map(|i| (i % 97) as f64 * 0.25 - 7.0).collect();
    let src = Array::from_f64(DType::Bf16, &[16, 128], &vals);
    let out = same(&k, std::slice::from_ref(&src));
    assert_eq!(out[1].get_f64(3), src.get_f64(128 + 3));
    assert!(out[2].bits().iter().all(|&b| b == 0));
}

#[test]
fn fp8_rows_pack_four_to_a_word_and_narrow_views_write_parts() {
    let k = build_kernel("fp8_pack", Loc::caller(), || {
        let src = launch::input::<Hbm>("src", DType::F8E4M3, &[32, 128]);
        let rows = launch::output::<Hbm>("rows", DType::F32, &[8, 128], None);
        let back = launch::output::<Hbm>("back", DType::U32, &[8, 128], None);
        let unpacked = launch::output::<Hbm>("unpacked", DType::F8E4M3, &[32, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F8E4M3, &[32, 128]);
        let r = launch::scratch_vmem("r", DType::F32, &[8, 128]);
        let w = launch::scratch_vmem("w", DType::U32, &[8, 128]);
        let u = launch::scratch_vmem("u", DType::F8E4M3, &[32, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        copy(src, buf, sem.at(0)).start_and_wait();
        // Byte 2 of every word is row 4·r + 2.
        let words = buf.bitcast(DType::U32).load();
        let third = ((words >> 16u32) & 0xffu32).cast(DType::U8).bitcast(DType::F8E4M3).cast(DType::F32);
        r.store(third);
        // Write rows through a narrow (fp8) view of a u32 buffer, part by part.
        w.store(zeros(&[8, 128], DType::U32));
        let narrow = w.bitcast(DType::F8E4M3); // f8[32, 128]
        narrow.ds(4, 8).store(buf.ds(8, 8).load());
        narrow.ds(31, 1).store(buf.ds(0, 1).load());
        // And unpack words back to rows with a vector bitcast.
        u.store(w.load().bitcast(DType::F8E4M3));
        copy(r, rows, sem.at(0)).start_and_wait();
        copy(w, back, sem.at(0)).start_and_wait();
        copy(u, unpacked, sem.at(0)).start_and_wait();
    });
    let k = match k {
        Ok(k) => k,
        Err(e) => panic!("{e}"),
    };
    let vals: Vec<f64> = (0..32 * 128).map(|i| ((i * 13) % 61) as f64 * 0.5 - 15.0).collect();
    same(&k, &[Array::from_f64(DType::F8E4M3, &[32, 128], &vals)]);
}

#[test]
fn stores_through_packed_views() {
    // Writes through a u32 (wide) view of a bf16 buffer, masked and not; a strided load of the
    // wide view; a masked write through a bf16 (narrow) view of a u32 buffer.
    let k = build_kernel("packed_stores", Loc::caller(), || {
        let src = launch::input::<Hbm>("src", DType::Bf16, &[16, 128]);
        let words = launch::input::<Hbm>("words", DType::U32, &[8, 128]);
        let wide_out = launch::output::<Hbm>("wide_out", DType::Bf16, &[16, 128], None);
        let narrow_out = launch::output::<Hbm>("narrow_out", DType::U32, &[8, 128], None);
        let strided_out = launch::output::<Hbm>("strided_out", DType::U32, &[2, 128], None);
        let buf = launch::scratch_vmem("buf", DType::Bf16, &[16, 128]);
        let wbuf = launch::scratch_vmem("wbuf", DType::U32, &[8, 128]);
        let sbuf = launch::scratch_vmem("sbuf", DType::U32, &[2, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        copy(src, buf, sem.at(0)).start_and_wait();
        copy(words, wbuf, sem.at(0)).start_and_wait();
        let wide = buf.bitcast(DType::U32); // u32[8, 128]
        let w = wide.load();
        let lanes = iota(DType::U32, &[4, 128], 1);
        wide.store((w >> 16u32) | (w << 16u32)); // swap the rows of every pair
        let rows = wide.ds(2, 4);
        rows.store_masked(rows.load() ^ lanes, cmp::lt(iota(DType::I32, &[4, 128], 1), 100));
        sbuf.store(wide.load_strided(1, 2, 5));
        let narrow = wbuf.bitcast(DType::Bf16); // bf16[16, 128]
        let nrows = narrow.ds(3, 9);
        let ones = rpa_dsl::frontend::full(&[9, 128], 1.5f32, DType::Bf16);
        let mask = cmp::eq(iota(DType::I32, &[9, 128], 1) % 3, iota(DType::I32, &[9, 128], 0) % 3);
        nrows.store_masked(ones, mask);
        copy(buf, wide_out, sem.at(0)).start_and_wait();
        copy(wbuf, narrow_out, sem.at(0)).start_and_wait();
        copy(sbuf, strided_out, sem.at(0)).start_and_wait();
    })
    .unwrap();
    let vals: Vec<f64> = (0..16 * 128).map(|i| (i % 89) as f64 * 0.5 - 20.0).collect();
    let words: Vec<i64> = (0..8 * 128).map(|i| (i as i64 * 2_654_435_761) & 0xffff_ffff).collect();
    same(&k, &[Array::from_f64(DType::Bf16, &[16, 128], &vals), Array::from_i64(DType::U32, &[8, 128], &words)]);
}

#[test]
fn bounded_dynamic_sizes_use_fitting_windows() {
    // `min(n, 4)` rows at static starts: the window shrinks to 4 rows and stays in bounds.
    let k = build_kernel("bounded", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[1]);
        let src = launch::input::<Hbm>("src", DType::F32, &[3, 16, 128]);
        let dst = launch::output::<Hbm>("dst", DType::F32, &[16, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[16, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        buf.store(zeros(&[16, 128], DType::F32));
        let rows = rpa_dsl::frontend::min(rpa_dsl::frontend::max(n.get(0), 0), 4);
        for (i, page) in [(0usize, 2i32), (5, 0), (12, 1)] {
            copy(src.at(page).ds(3, rows), buf.ds(i, rows), sem.at(0)).start_and_wait();
        }
        copy(buf, dst, sem.at(0)).start_and_wait();
    })
    .unwrap();
    let mlir = rpa_dsl::lower::stablehlo::lower(&k).unwrap();
    assert!(!mlir.contains("stablehlo.scatter") && !mlir.contains("stablehlo.gather"), "{mlir}");
    let src = f32s(&[3, 16, 128], &ramp(3 * 16 * 128, 0.5, 1.0));
    for n in [0, 2, 4, 9] {
        same(&k, &[Array::from_i32(&[1], &[n]), src.clone()]);
    }
}

#[test]
fn strided_loads_and_stores() {
    let k = build_kernel("strided", Loc::caller(), || {
        let src = launch::input::<Hbm>("src", DType::F32, &[24, 128]);
        let dst = launch::output::<Hbm>("dst", DType::F32, &[8, 128], None);
        let dst2 = launch::output::<Hbm>("dst2", DType::F32, &[24, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[24, 128]);
        let out = launch::scratch_vmem("out", DType::F32, &[8, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        copy(src, buf, sem.at(0)).start_and_wait();
        out.store(buf.load_strided(1, 8, 3));
        let rows = buf.load_strided(0, 8, 3);
        buf.store_strided(2, 3, rows * -1.0f32);
        copy(out, dst, sem.at(0)).start_and_wait();
        copy(buf, dst2, sem.at(0)).start_and_wait();
    })
    .unwrap();
    same(&k, &[f32s(&[24, 128], &ramp(24 * 128, 0.5, -3.0))]);
}

#[test]
fn masked_stores_and_reshaped_views() {
    let k = build_kernel("masked", Loc::caller(), || {
        let src = launch::input::<Hbm>("src", DType::I32, &[16, 128]);
        let dst = launch::output::<Hbm>("dst", DType::I32, &[16, 128], Some("src"));
        let buf = launch::scratch_vmem("buf", DType::I32, &[16, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        copy(src, buf, sem.at(0)).start_and_wait();
        let lanes = iota(DType::I32, &[8, 128], 1);
        let rowsv = iota(DType::I32, &[8, 128], 0);
        let mask = cmp::lt(lanes, rowsv * 16);
        buf.ds(4, 8).store_masked(lanes * 1000 + rowsv, mask);
        let flat = buf.reshape(&[2, 8, 128]).at(1);
        flat.store(flat.load() + 7);
        copy(buf, dst, sem.at(0)).start_and_wait();
    })
    .unwrap();
    let src = Array::from_i64(DType::I32, &[16, 128], &(0..16 * 128).map(|i| i as i64).collect::<Vec<_>>());
    same(&k, &[src]);
}

// ------------------------------------------------------------------------------------------------ compute

#[test]
fn row_softmax() {
    let k = build_kernel("row_softmax", Loc::caller(), || {
        launch::grid(&[4]);
        let map = |g: &[Scalar]| vec![g[0], launch::block_index(0)];
        let x = launch::input_blocked("x", DType::F32, &[32, 256], &[8, 256], map);
        let o = launch::output_blocked("o", DType::F32, &[32, 256], &[8, 256], map, None);
        let v = x.load();
        let e = (v - v.reduce_max(1)).exp();
        o.store(e / e.reduce_sum(1));
    })
    .unwrap();
    close(&k, &[f32s(&[32, 256], &ramp(32 * 256, 0.1, -5.0))], 1e-7, 1e-5);
}

fn whole() -> impl Fn(&[Scalar]) -> Vec<Scalar> + Copy {
    |_: &[Scalar]| vec![launch::block_index(0), launch::block_index(0)]
}

/// A kernel with one `[8, 128]` f32 input and one f32 output per function of its tile.
fn elementwise(name: &str, fs: &[fn(Tile) -> Tile]) -> Kernel {
    build_kernel(name, Loc::caller(), || {
        let x = launch::input_blocked("x", DType::F32, &[8, 128], &[8, 128], whole());
        let outs: Vec<_> = (0..fs.len())
            .map(|i| launch::output_blocked(&format!("o{i}"), DType::F32, &[8, 128], &[8, 128], whole(), None))
            .collect();
        let v = x.load();
        for (o, f) in outs.iter().zip(fs) {
            o.store(f(v));
        }
    })
    .unwrap()
}

fn math_input() -> Array {
    let mut vals = ramp(8 * 128, 0.17, -8.0);
    vals[3] = f64::NAN;
    vals[4] = 0.0;
    vals[5] = -0.0;
    f32s(&[8, 128], &vals)
}

#[test]
fn narrow_float_math_rounds_after_every_op() {
    // IEEE-exact ops (no transcendental functions): bit-exact, in f32 and in bf16/f16/fp8, which
    // compute in f32 and round after every op (fp8 saturating).
    let k = elementwise(
        "exact_math",
        &[
            |v| (v.abs() + 0.5f32).rsqrt(),
            |v| v.recip_approx(),
            |v| {
                let b = v.cast(DType::Bf16);
                ((b * b + b) / (b.abs() + 1.0f32)).cast(DType::F32)
            },
            |v| {
                let h = v.cast(DType::F16);
                (h * h - h).sqrt().cast(DType::F32)
            },
            |v| {
                let f = (v * 40.0f32).cast(DType::F8E4M3);
                (f * f).cast(DType::F32)
            },
            |v| {
                let f = (v * 1000.0f32).cast(DType::F8E5M2);
                (f * f - f).cast(DType::F32)
            },
            |v| rpa_dsl::frontend::max(v, v * -0.5f32) - rpa_dsl::frontend::min(v, 0.25f32),
            |v| v % 0.75f32,
            |v| (v * 3.0f32).reduce_max(1) + v.reduce_min(0),
            |v| v.cast(DType::Bf16).reduce_max(1).cast(DType::F32) - v,
        ],
    );
    same_or_nan(&k, &[math_input()]);
}

#[test]
fn transcendental_math_is_close() {
    let k = elementwise(
        "approx_math",
        &[
            |v| v.tanh(),
            |v| (v.abs() + 0.5f32).log(),
            |v| (v * 0.25f32).exp(),
            |v| (v.cast(DType::Bf16) * 0.5f32).exp().cast(DType::F32),
            |v| ((v.abs() + 1.0f32).reduce_sum(1) * 0.125f32).broadcast_to(&[8, 128]) - (v * v).reduce_sum(0),
        ],
    );
    // A few ulp for the transcendental functions; sums are reassociated by XLA.
    close(&k, &[math_input()], 1e-6, 1e-5);
}

#[test]
fn matmuls_reductions_and_shape_ops() {
    let k = build_kernel("shape_ops", Loc::caller(), || {
        use rpa_dsl::frontend::{concat, dot, matmul_t};
        launch::grid(&[1]);
        let x = launch::input_blocked("x", DType::F32, &[16, 128], &[16, 128], whole());
        let q = launch::input_blocked("q", DType::I8, &[16, 128], &[16, 128], whole());
        let o_t = launch::output_blocked("qkt", DType::F32, &[16, 16], &[16, 16], whole(), None);
        let o_i = launch::output_blocked("int_mm", DType::I32, &[16, 16], &[16, 16], whole(), None);
        let o_b = launch::output_blocked("bf16_mm", DType::Bf16, &[16, 128], &[16, 128], whole(), None);
        let o_r = launch::output_blocked("int_red", DType::I32, &[16, 128], &[16, 128], whole(), None);
        let o_c = launch::output_blocked("cat", DType::F32, &[16, 128], &[16, 128], whole(), None);
        let (v, w) = (x.load(), q.load());
        o_t.store(matmul_t(v, v * 0.5f32));
        let wi = w.cast(DType::I32);
        o_i.store(dot(w, w, true, DType::I32) - wi.slice(&[0, 0], &[16, 16]));
        let vb = v.cast(DType::Bf16);
        o_b.store(dot(vb, concat(&[vb; 8], 0), false, DType::Bf16));
        let sums = (wi.reduce_sum(1) + wi.reduce_max(1) - wi.reduce_min(0)).broadcast_to(&[16, 128]);
        o_r.store(select(cmp::lt(sums, 0), -sums, !sums) + wi.abs() + (-wi));
        let halves = concat(&[v.slice(&[0, 64], &[16, 64]), v.slice(&[0, 0], &[16, 64])], 1);
        let s = rpa_dsl::frontend::num_programs(0) + rpa_dsl::frontend::program_id(0) + 1;
        o_c.store(select(cmp::gt(s, 2), halves, v) + iota(DType::U32, &[16, 128], 1).cast(DType::F32));
    });
    let k = match k {
        Ok(k) => k,
        Err(e) => panic!("{e}"),
    };
    let x = f32s(&[16, 128], &ramp(16 * 128, 0.03, -1.5));
    let q =
        Array::from_i64(DType::I8, &[16, 128], &(0..16 * 128).map(|i| (i * 37 % 255) as i64 - 127).collect::<Vec<_>>());
    let got = close(&k, &[x.clone(), q.clone()], 1e-5, 1e-5);
    let want = interpret(&k, &[x, q]);
    // The integer matmul and reductions and the concat are exact.
    for o in [1, 3, 4] {
        assert_eq!(got[o].bits(), want[o].bits(), "output {o}");
    }
}

#[test]
fn while_loop_with_a_condition_region() {
    // Collatz-like iteration on a scalar held in SMEM, counting steps in a variable.
    let k = build_kernel("while", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[1]);
        let out = launch::output::<Hbm>("out", DType::I32, &[8, 128], None);
        let s = launch::scratch_smem("s", DType::I32, &[2]);
        let buf = launch::scratch_vmem("buf", DType::I32, &[8, 128]);
        let sem = launch::dma_sems("sem", &[1]);
        s.set(0, n.get(0));
        s.set(1, 0);
        let steps = MutInit::new(Scalar::constant(DType::I32, 0.0)).__rpa_into_mut();
        let mut w = WhileLoop::begin();
        let x = s.get(0);
        w.body(cmp::gt(x, 1));
        {
            let x = s.get(0);
            let odd = cmp::eq(x % 2, 1);
            s.set(0, select(odd, x * 3 + 1, x / 2));
            s.set(1, rpa_dsl::frontend::max(s.get(1), x));
            let mut t = steps;
            AssignTo::new(&mut t).__rpa_assign(steps + 1, 0, "steps");
        }
        w.end();
        let lanes = iota(DType::I32, &[8, 128], 1);
        let v = select(
            cmp::eq(lanes, 0),
            rpa_dsl::frontend::full(&[8, 128], steps, DType::I32),
            zeros(&[8, 128], DType::I32),
        );
        let v = select(cmp::eq(lanes, 1), rpa_dsl::frontend::full(&[8, 128], s.get(1), DType::I32), v);
        buf.store(v);
        copy(buf, out, sem.at(0)).start_and_wait();
    })
    .unwrap();
    for n in [27, 1, 6] {
        let out = same(&k, &[Array::from_i32(&[1], &[n])]);
        if n == 27 {
            assert_eq!(out[0].to_i64()[0], 111);
            assert_eq!(out[0].to_i64()[1], 9232);
        }
    }
}

fn int_kernel(dtype: DType) -> Kernel {
    build_kernel("int_ops", Loc::caller(), || {
        let a = launch::input_blocked("a", dtype, &[8, 128], &[8, 128], |_: &[Scalar]| {
            vec![launch::block_index(0), launch::block_index(0)]
        });
        let b = launch::input_blocked("b", dtype, &[8, 128], &[8, 128], |_: &[Scalar]| {
            vec![launch::block_index(0), launch::block_index(0)]
        });
        let names = ["div", "rem", "shl", "shr", "max", "bits", "mul", "cmp"];
        let outs: Vec<_> = names
            .iter()
            .map(|n| {
                launch::output_blocked(
                    n,
                    dtype,
                    &[8, 128],
                    &[8, 128],
                    |_: &[Scalar]| vec![launch::block_index(0), launch::block_index(0)],
                    None,
                )
            })
            .collect();
        let (x, y) = (a.load(), b.load());
        let nz = select(cmp::eq(y, 0), y + 1, y);
        outs[0].store(x / nz);
        outs[1].store(x % nz);
        let sh = y & 63u32;
        outs[2].store(x << sh);
        outs[3].store(x >> sh);
        outs[4].store(rpa_dsl::frontend::max(x, y) - rpa_dsl::frontend::min(x, y));
        outs[5].store((x ^ y) | (!x & y));
        outs[6].store(x * y + x);
        let c: Tile = select(cmp::lt(x, y), x, y);
        outs[7].store(c);
    })
    .unwrap()
}

#[test]
fn integer_ops_on_i32_and_u32() {
    let vals: Vec<i64> = (0..1024).map(|i| (i * 2_654_435_761u64 as i64 % 4_000_000_000) - 2_000_000_000).collect();
    let shifts: Vec<i64> = (0..1024).map(|i| if i % 3 == 0 { i % 40 } else { (i * 7919) % 100_003 - 50_000 }).collect();
    for dt in [DType::I32, DType::U32] {
        let k = int_kernel(dt);
        same(&k, &[Array::from_i64(dt, &[8, 128], &vals), Array::from_i64(dt, &[8, 128], &shifts)]);
    }
}

#[test]
fn casts_saturate_like_interpret_mode() {
    let targets = [
        DType::I32,
        DType::U32,
        DType::I8,
        DType::U8,
        DType::I16,
        DType::Bf16,
        DType::F8E4M3,
        DType::F8E5M2,
        DType::Bool,
    ];
    let k = build_kernel("casts", Loc::caller(), || {
        let x = launch::input_blocked("x", DType::F32, &[8, 128], &[8, 128], |_: &[Scalar]| {
            vec![launch::block_index(0), launch::block_index(0)]
        });
        let n = launch::input_blocked("n", DType::I32, &[8, 128], &[8, 128], |_: &[Scalar]| {
            vec![launch::block_index(0), launch::block_index(0)]
        });
        let v = x.load();
        let i = n.load();
        for t in targets {
            let o = launch::output_blocked(
                &format!("f32_to_{t}"),
                t,
                &[8, 128],
                &[8, 128],
                |_: &[Scalar]| vec![launch::block_index(0), launch::block_index(0)],
                None,
            );
            o.store(v.cast(t));
        }
        for t in [DType::F32, DType::Bf16, DType::U8, DType::I16, DType::Bool] {
            let o = launch::output_blocked(
                &format!("i32_to_{t}"),
                t,
                &[8, 128],
                &[8, 128],
                |_: &[Scalar]| vec![launch::block_index(0), launch::block_index(0)],
                None,
            );
            o.store(i.cast(t));
        }
        let o = launch::output_blocked(
            "roundtrip",
            DType::F32,
            &[8, 128],
            &[8, 128],
            |_: &[Scalar]| vec![launch::block_index(0), launch::block_index(0)],
            None,
        );
        o.store(v.cast(DType::U8).cast(DType::F32) + v.cast(DType::Bool).cast(DType::F32));
    })
    .unwrap();
    let mut vals: Vec<f64> = (0..1024).map(|i| ((i * 7919) % 2001) as f64 * 3.7e6 - 3.7e9).collect();
    let specials = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.5,
        -0.5,
        2147483647.0,
        2147483648.0,
        -2147483904.0,
        4294967296.0,
        255.9,
        256.0,
        -1.0,
        127.5,
        -128.9,
        447.0,
        449.0,
        1e6,
        57344.0,
        61440.0,
        1e-9,
    ];
    vals[..specials.len()].copy_from_slice(&specials);
    for (j, v) in vals.iter_mut().enumerate().take(400).skip(100) {
        *v = (j as f64 - 250.0) * 1.37;
    }
    let ints: Vec<i64> = (0..1024).map(|i| (i * 2_654_435_761u64 as i64) % 100_000_000 - (i % 300)).collect();
    same_or_nan(&k, &[f32s(&[8, 128], &vals), Array::from_i64(DType::I32, &[8, 128], &ints)]);
}

#[test]
fn f32_to_fp8_rounds_to_nearest_even_at_every_step() {
    // Every fp8 value, the midpoints between neighbours (ties) and a hair on either side of them.
    for dt in [DType::F8E4M3, DType::F8E5M2] {
        let k = build_kernel("to_fp8", Loc::caller(), || {
            let x = launch::input_blocked("x", DType::F32, &[16, 128], &[16, 128], whole());
            let o = launch::output_blocked("o", dt, &[16, 128], &[16, 128], whole(), None);
            o.store(x.load().cast(dt));
        })
        .unwrap();
        let mut grid: Vec<f64> = (0..256u32).map(|b| dt.float_from_bits(b)).filter(|v| v.is_finite()).collect();
        grid.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mut vals = Vec::new();
        for w in grid.windows(2) {
            let mid = (w[0] + w[1]) / 2.0;
            let ulp = (mid.abs() as f32).max(1e-30) as f64 * 1e-6;
            vals.extend([w[0], mid, mid - ulp, mid + ulp]);
        }
        vals.resize(16 * 128, 1e9);
        same_or_nan(&k, &[f32s(&[16, 128], &vals)]);
    }
}

#[test]
fn conversions_to_bf16_and_f16_round_once() {
    // f32 values at, just below and just above the ties of bf16 and f16 (normal and subnormal),
    // and integers whose conversion through f32 would round twice.
    let k = build_kernel("to_half", Loc::caller(), || {
        let x = launch::input_blocked("x", DType::F32, &[16, 128], &[16, 128], whole());
        let n = launch::input_blocked("n", DType::I32, &[16, 128], &[16, 128], whole());
        let outs: Vec<_> = ["bf16", "f16", "ibf16", "if16"]
            .iter()
            .zip([DType::Bf16, DType::F16, DType::Bf16, DType::F16])
            .map(|(name, dt)| launch::output_blocked(name, dt, &[16, 128], &[16, 128], whole(), None))
            .collect();
        let (v, i) = (x.load(), n.load());
        outs[0].store(v.cast(DType::Bf16));
        outs[1].store(v.cast(DType::F16));
        outs[2].store(i.cast(DType::Bf16));
        outs[3].store(i.cast(DType::F16));
    })
    .unwrap();
    let mut bits: Vec<u32> = Vec::new();
    for j in 0..256u32 {
        let hi = j.wrapping_mul(2_654_435_761) & 0xffff_0000;
        // (Not `hi | 0x8001..=0x8007`: interpret mode rounds those down, a bug of
        // `half::bf16::from_f64`, which ignores the three lowest bits of an f32 above a tie.)
        bits.extend([hi | 0x8000, hi | 0x7fff, hi | 0x8008, hi | 0x0001]);
    }
    for j in 0..256u32 {
        // f16 ties: 13 dropped bits (normal), more for subnormals (exponent below -14).
        let e = 100 + (j % 40);
        let m = j.wrapping_mul(40503) & 0x7f_e000;
        let base = (e << 23) | m;
        bits.extend([base | 0x1000, base | 0x0fff, base | 0x1001, base]);
    }
    let x = Array::from_bits(DType::F32, &[16, 128], bits);
    let ints: Vec<i64> = (0..16 * 128)
        .map(|j| ((1i64 << 25) + (1 << 17) + 1 + (j as i64) * (1 << 18)) * if j % 2 == 0 { 1 } else { -1 })
        .collect();
    same_or_nan(&k, &[x, Array::from_i64(DType::I32, &[16, 128], &ints)]);
}

#[test]
fn lowering_is_cached_and_names_the_kernel_on_errors() {
    let k = blocked_add(16);
    let backend = rpa_dsl::cpu::CpuBackend::global().unwrap_or_else(|e| panic!("{e} (run scripts/install-plugins)"));
    let a = backend.compile(&k).unwrap();
    let b = backend.compile(&k).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    let err = backend.run(&k, &[Array::zeros(DType::F32, &[16, 128])]).unwrap_err();
    assert!(err.to_string().contains("blocked_add") && err.to_string().contains("expects 2 input arrays"), "{err}");
    let err =
        backend.run(&k, &[Array::zeros(DType::F32, &[16, 128]), Array::zeros(DType::I32, &[16, 128])]).unwrap_err();
    assert!(err.to_string().contains("input `y` expects f32[16, 128]"), "{err}");
}
