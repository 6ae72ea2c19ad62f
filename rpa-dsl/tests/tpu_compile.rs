//! Kernels built with the frontend API, lowered to Mosaic and AOT-compiled by libtpu for every TPU
//! generation (no TPU needed; needs `scripts/install-plugins`).

use rpa_dsl::frontend::{build_kernel, copy, launch, matmul, zeros, Hbm, Scalar};
use rpa_dsl::tpu::{compile_for, stablehlo_module};
use rpa_dsl::{DType, Kernel, Loc, TpuTarget};

fn blocked_add() -> Kernel {
    build_kernel("blocked_add", Loc::caller(), || {
        launch::grid(&[4]);
        let map = |g: &[Scalar]| vec![g[0], launch::block_index(0)];
        let x = launch::input_blocked("x", DType::F32, &[32, 128], &[8, 128], map);
        let y = launch::input_blocked("y", DType::F32, &[32, 128], &[8, 128], map);
        let o = launch::output_blocked("o", DType::F32, &[32, 128], &[8, 128], map, None);
        o.store((x.load() + y.load() * 2.0f32).exp());
    })
    .unwrap()
}

fn streaming() -> Kernel {
    use rpa_dsl::frontend::control::{ForLoop, If, MutInit, RuntimeMut as _};
    build_kernel("streaming", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[1]);
        let src = launch::input::<Hbm>("src", DType::F32, &[64, 128]);
        let dst = launch::output::<Hbm>("dst", DType::F32, &[64, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[2, 8, 128]);
        let acc = launch::scratch_vmem("acc", DType::F32, &[8, 128]);
        let sems = launch::dma_sems("sems", &[2]);
        acc.store(zeros(&[8, 128], DType::F32));
        let total = MutInit::new(Scalar::constant(DType::F32, 0.0)).__rpa_into_mut();
        let _ = total;
        let l = ForLoop::begin(0, n.get(0));
        {
            let i = l.index();
            let slot = i % 2;
            copy(src.ds(i * 8, 8), buf.at(slot), sems.at(slot)).start_and_wait();
            let mut c = If::begin(rpa_dsl::frontend::cmp::gt(i, 0));
            if c.then_branch() {
                acc.store(acc.load() + matmul(buf.at(slot).load(), zeros(&[128, 128], DType::F32)));
            }
            c.else_branch();
            c.end();
        }
        l.end();
        copy(acc, dst.ds(0, 8), sems.at(0)).start_and_wait();
    })
    .unwrap()
}

#[test]
fn example_kernels_compile_for_every_tpu_generation() {
    for k in [blocked_add(), streaming()] {
        for t in TpuTarget::ALL {
            let c = compile_for(&k, t)
                .unwrap_or_else(|e| panic!("{e}\n--- module ---\n{}", rpa_dsl::lower::mosaic::lower(&k).unwrap()));
            assert!(c.serialized_size > 0 && c.code_size > 0, "{c:?}");
        }
    }
}

#[test]
fn the_wrapper_names_the_custom_call_and_aliases() {
    let m = stablehlo_module(&blocked_add()).unwrap();
    assert!(m.contains("stablehlo.custom_call @tpu_custom_call"), "{m}");
    assert!(m.contains("needs_layout_passes"), "{m}");
}

/// Execution takes the same path with a libtpu client; this machine has no TPU, so the client
/// refuses, and the error says so instead of hanging or crashing.
#[test]
fn running_without_a_tpu_fails_with_a_clear_error() {
    let k = blocked_add();
    let x = rpa_dsl::Array::zeros(DType::F32, &[32, 128]);
    match rpa_dsl::tpu::run(&k, &[x.clone(), x]) {
        Err(e) => assert!(e.to_string().contains("TPU client (is a TPU attached?)"), "{e}"),
        Ok(out) => assert_eq!(out.len(), 1, "ran on an attached TPU"),
    }
}

/// libtpu has no unordered float predicates (`arith.cmpf une` is refused): `!=` and casts of
/// floats to bool (true for NaN, as in interpret mode) lower to `!(x oeq y)`.
#[test]
fn float_inequality_and_casts_to_bool_compile_for_every_generation() {
    let k = build_kernel("float_ne", Loc::caller(), || {
        let v = launch::prefetch("v", DType::F32, &[1]);
        let map = |_: &[Scalar]| vec![launch::block_index(0), launch::block_index(0)];
        let x = launch::input_blocked("x", DType::F32, &[8, 128], &[8, 128], map);
        let o = launch::output_blocked("o", DType::F32, &[8, 128], &[8, 128], map, None);
        let t = x.load();
        let s = v.get(0);
        let ne = rpa_dsl::frontend::cmp::ne(t, t * 2.0f32) & t.cast(DType::Bool);
        let scalar = rpa_dsl::frontend::cmp::ne(s, 1.0f32) & s.cast(DType::Bool);
        o.store(rpa_dsl::frontend::select(ne & scalar, t, t + 1.0f32));
    })
    .unwrap();
    for t in TpuTarget::ALL {
        compile_for(&k, t).unwrap_or_else(|e| panic!("{t}: {e}"));
    }
}
