//! PJRT-CPU's checked mode reports the run-time errors interpret mode reports, as the same
//! diagnostic (kernel, op, source line, message); unchecked, the same kernels run to completion.
//!
//! Needs the XLA:CPU plugin (`scripts/install-plugins`).

use rpa_dsl::cpu::CpuBackend;
use rpa_dsl::frontend::control::If;
use rpa_dsl::frontend::{build_kernel, copy, launch, Hbm, Scalar};
use rpa_dsl::{Array, DType, Kernel, KernelError, Loc};

fn checked() -> &'static CpuBackend {
    CpuBackend::global().unwrap_or_else(|e| panic!("{e}"))
}

/// Interpret mode and checked PJRT-CPU refuse `k` on `inputs` with the same diagnostic, which
/// contains `expect`; unchecked PJRT-CPU runs it.
fn same_error(k: &Kernel, inputs: &[Array], expect: &str) -> KernelError {
    let want = match k.interpret(inputs) {
        Err(e) => e,
        Ok(_) => panic!("interpret mode accepted `{}`", k.name),
    };
    assert!(want.to_string().contains(expect), "interpret mode said: {want}");
    let got = match checked().run(k, inputs) {
        Err(e) => e,
        Ok(_) => panic!("checked PJRT-CPU accepted `{}` (interpret mode: {want})", k.name),
    };
    assert_eq!(got.first(), want.first(), "checked PJRT-CPU vs interpret mode");
    let unchecked = CpuBackend::global_unchecked().unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = unchecked.run(k, inputs) {
        panic!("unchecked PJRT-CPU refused `{}`: {e}", k.name);
    }
    got
}

fn when(cond: Scalar, f: impl FnOnce()) {
    let mut c = If::begin(cond);
    if c.then_branch() {
        f();
    }
    c.else_branch();
    c.end();
}

fn pool() -> Array {
    Array::from_f64(DType::F32, &[8, 8, 128], &(0..8 * 8 * 128).map(|i| i as f64).collect::<Vec<_>>())
}

/// Gathers pages `pages[i]` of an 8-page pool through VMEM, one DMA each.
fn paged_gather() -> Kernel {
    build_kernel("paged_gather", Loc::caller(), || {
        let pages = launch::prefetch("pages", DType::I32, &[4]);
        let pool = launch::input::<Hbm>("pool", DType::F32, &[8, 8, 128]);
        let out = launch::output::<Hbm>("out", DType::F32, &[4, 8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[8, 128]);
        let sems = launch::dma_sems("sems", &[2]);
        for i in 0..4 {
            copy(pool.at(pages.get(i)), buf, sems.at(0)).start_and_wait();
            copy(buf, out.at(i), sems.at(1)).start_and_wait();
        }
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_dma_from_a_page_id_out_of_the_pool_is_reported_at_its_line() {
    let k = paged_gather();
    let good = [Array::from_i32(&[4], &[3, 0, 7, 3]), pool()];
    let want = k.interpret(&good).unwrap();
    assert_eq!(checked().run(&k, &good).unwrap()[0].bits(), want[0].bits());
    let e = same_error(&k, &[Array::from_i32(&[4], &[3, 0, 9, 3]), pool()], "index 9 is out of bounds");
    assert!(e.to_string().contains("of `pool`"), "{e}");
    same_error(&k, &[Array::from_i32(&[4], &[3, -1, 2, 3]), pool()], "index -1 is out of bounds");
}

#[test]
fn a_wait_no_copy_signals_is_reported() {
    let k = build_kernel("unsignalled", Loc::caller(), || {
        let src = launch::input::<Hbm>("src", DType::F32, &[8, 128]);
        let out = launch::output::<Hbm>("out", DType::F32, &[8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[8, 128]);
        let sems = launch::dma_sems("sems", &[2]);
        copy(src, buf, sems.at(0)).start();
        copy(src, buf, sems.at(1)).wait();
        copy(buf, out, sems.at(0)).start_and_wait();
    })
    .unwrap();
    let x = Array::from_f64(DType::F32, &[8, 128], &[1.0; 1024]);
    same_error(&k, &[x], "but only 0 bytes were signalled");
}

#[test]
fn a_copy_never_waited_is_reported_at_its_start() {
    let k = build_kernel("never_waited", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[1]);
        let src = launch::input::<Hbm>("src", DType::F32, &[8, 128]);
        let out = launch::output::<Hbm>("out", DType::F32, &[8, 128], None);
        let sems = launch::dma_sems("sems", &[1]);
        copy(src, out, sems.at(0)).start();
        when(rpa_dsl::frontend::cmp::gt(n.get(0), 0), || copy(src, out, sems.at(0)).wait());
    })
    .unwrap();
    let x = Array::from_f64(DType::F32, &[8, 128], &[1.0; 1024]);
    assert!(checked().run(&k, &[Array::from_i32(&[1], &[1]), x.clone()]).is_ok());
    same_error(&k, &[Array::from_i32(&[1], &[0]), x], "the kernel ended with a DMA that was never waited");
}

#[test]
fn a_load_of_scratch_nothing_wrote_is_reported() {
    // The accumulator is zeroed only when the flag is set; the load after it reads nothing written.
    let k = build_kernel("uninit_acc", Loc::caller(), || {
        let flag = launch::prefetch("flag", DType::I32, &[1]);
        let x = launch::input::<Hbm>("x", DType::F32, &[8, 128]);
        let out = launch::output::<Hbm>("out", DType::F32, &[8, 128], None);
        let acc = launch::scratch_vmem("acc", DType::F32, &[8, 128]);
        let buf = launch::scratch_vmem("buf", DType::F32, &[8, 128]);
        let sems = launch::dma_sems("sems", &[1]);
        when(rpa_dsl::frontend::cmp::gt(flag.get(0), 0), || acc.store(rpa_dsl::frontend::zeros(&[8, 128], DType::F32)));
        copy(x, buf, sems.at(0)).start_and_wait();
        acc.store(acc.load() + buf.load());
        copy(acc, out, sems.at(0)).start_and_wait();
    })
    .unwrap();
    let x = Array::from_f64(DType::F32, &[8, 128], &[2.0; 1024]);
    let ok = checked().run(&k, &[Array::from_i32(&[1], &[1]), x.clone()]).unwrap();
    assert_eq!(ok[0].get_f64(7), 2.0);
    let e = same_error(&k, &[Array::from_i32(&[1], &[0]), x], "reads only uninitialised memory of `acc`");
    assert_eq!(e.first().op.as_deref(), Some("load"));
}

#[test]
fn a_scalar_read_of_an_unwritten_smem_element_is_reported() {
    let k = build_kernel("uninit_smem", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[1]);
        let out = launch::output::<Hbm>("out", DType::I32, &[8, 128], None);
        let flags = launch::scratch_smem("flags", DType::I32, &[4]);
        let tile = launch::scratch_vmem("tile", DType::I32, &[8, 128]);
        let sems = launch::dma_sems("sems", &[1]);
        flags.set(0, 5);
        flags.set(1, 6);
        let v = flags.get(n.get(0));
        tile.store(rpa_dsl::frontend::full(&[8, 128], v, DType::I32));
        copy(tile, out, sems.at(0)).start_and_wait();
    })
    .unwrap();
    let ok = checked().run(&k, &[Array::from_i32(&[1], &[1])]).unwrap();
    assert_eq!(ok[0].get_f64(0), 6.0);
    same_error(&k, &[Array::from_i32(&[1], &[2])], "reads uninitialised element [2] of `flags`");
    same_error(&k, &[Array::from_i32(&[1], &[4])], "index 4 is out of bounds for dimension 0 (extent 4) of `flags`");
}

#[test]
fn a_block_index_out_of_the_array_is_reported_at_the_index_map() {
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
    let x = Array::from_f64(DType::F32, &[32, 128], &[1.0; 32 * 128]);
    assert!(checked().run(&k, &[Array::from_i32(&[4], &[3, 2, 1, 0]), x.clone()]).is_ok());
    same_error(&k, &[Array::from_i32(&[4], &[3, 2, 7, 0]), x], "block index [7, 0] of `x` is out of bounds");
}

#[test]
fn dynamic_slices_past_their_bound_or_the_array_are_reported() {
    let k = build_kernel("ragged_rows", Loc::caller(), || {
        let meta = launch::prefetch("meta", DType::I32, &[2]);
        let src = launch::input::<Hbm>("src", DType::F32, &[32, 128]);
        let out = launch::output::<Hbm>("out", DType::F32, &[8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[8, 128]);
        let sems = launch::dma_sems("sems", &[1]);
        let (start, rows) = (meta.get(0), meta.get(1));
        buf.store(rpa_dsl::frontend::zeros(&[8, 128], DType::F32));
        copy(src.ds_max(start, rows, 8), buf.ds_max(0, rows, 8), sems.at(0)).start_and_wait();
        copy(buf, out, sems.at(0)).start_and_wait();
    })
    .unwrap();
    let x = Array::from_f64(DType::F32, &[32, 128], &(0..32 * 128).map(|i| i as f64).collect::<Vec<_>>());
    let ok = checked().run(&k, &[Array::from_i32(&[2], &[24, 5]), x.clone()]).unwrap();
    assert_eq!(ok[0].bits(), k.interpret(&[Array::from_i32(&[2], &[24, 5]), x.clone()]).unwrap()[0].bits());
    same_error(&k, &[Array::from_i32(&[2], &[28, 5]), x.clone()], "slice [28, 33) is out of bounds");
    same_error(&k, &[Array::from_i32(&[2], &[0, 9]), x], "dynamic slice size 9 of dimension 0");
}

#[test]
fn integer_division_by_zero_is_reported() {
    let k = build_kernel("divide", Loc::caller(), || {
        let d = launch::prefetch("d", DType::I32, &[1]);
        let out = launch::output::<Hbm>("out", DType::I32, &[8, 128], None);
        let tile = launch::scratch_vmem("tile", DType::I32, &[8, 128]);
        let sems = launch::dma_sems("sems", &[1]);
        let q = Scalar::constant(DType::I32, 100.0) / d.get(0);
        tile.store(rpa_dsl::frontend::full(&[8, 128], q, DType::I32));
        copy(tile, out, sems.at(0)).start_and_wait();
    })
    .unwrap();
    assert_eq!(checked().run(&k, &[Array::from_i32(&[1], &[7])]).unwrap()[0].get_f64(3), 14.0);
    same_error(&k, &[Array::from_i32(&[1], &[0])], "integer division by zero");
}

#[test]
fn an_output_block_revisited_later_is_reported() {
    let k = build_kernel("scatter_blocks", Loc::caller(), || {
        launch::grid(&[4]);
        let perm = launch::prefetch("perm", DType::I32, &[4]);
        let x = launch::input_blocked("x", DType::F32, &[32, 128], &[8, 128], |g: &[Scalar]| {
            vec![g[0], launch::block_index(0)]
        });
        let o = launch::output_blocked(
            "o",
            DType::F32,
            &[32, 128],
            &[8, 128],
            |g: &[Scalar]| vec![perm.get(g[0]), launch::block_index(0)],
            None,
        );
        o.store(x.load() * 3.0f32);
    })
    .unwrap();
    let x = Array::from_f64(DType::F32, &[32, 128], &(0..32 * 128).map(|i| i as f64).collect::<Vec<_>>());
    let good = [Array::from_i32(&[4], &[2, 0, 3, 1]), x.clone()];
    assert_eq!(checked().run(&k, &good).unwrap()[0].bits(), k.interpret(&good).unwrap()[0].bits());
    // Consecutive steps on one block are fine; coming back to block 0 at step 3 is not.
    let twice = [Array::from_i32(&[4], &[1, 1, 0, 2]), x.clone()];
    assert_eq!(checked().run(&k, &twice).unwrap()[0].bits(), k.interpret(&twice).unwrap()[0].bits());
    same_error(&k, &[Array::from_i32(&[4], &[0, 1, 2, 0]), x], "revisited block [0, 0] of output `o` at grid step [3]");
}
