//! Synchronisation and tooling ops of issue 13 — regular semaphores, `debug_print` on every
//! backend, `Buffered(n)` BlockSpecs, the `emit_pipeline` helper and the cost estimate — against
//! interpret mode on PJRT-CPU, with their errors, and libtpu compiles for every generation.
//!
//! Needs the XLA:CPU plugin and libtpu (`scripts/install-plugins`).

mod common;

use common::*;
use rpa_dsl::frontend::control::ForLoop;
use rpa_dsl::frontend::{build_kernel, copy, launch, semaphore_signal, semaphore_wait, Hbm};
use rpa_dsl::{Array, DType, Kernel, Loc};

fn ok(k: Result<Kernel, rpa_dsl::KernelError>) -> Kernel {
    k.unwrap_or_else(|e| panic!("{e}"))
}

/// The line of this file with `marker` (once in the code, once in the test).
fn line_of(marker: &str) -> u32 {
    let src = include_str!("ops_sync.rs");
    let hits: Vec<usize> = src.lines().enumerate().filter(|(_, l)| l.contains(marker)).map(|(i, _)| i).collect();
    assert_eq!(hits.len(), 2, "{marker}");
    hits[0] as u32 + 1
}

// ------------------------------------------------------------------------------------------ semaphores

/// Copies `n[0]` rows of 8 from `src` to `dst`, counting each copied block on a regular semaphore
/// (`signal(1)` per block) and waiting for `n[1]` of them at the end, in two waits.
fn counted_copy() -> Kernel {
    ok(build_kernel("counted_copy", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[2]);
        let src = launch::input::<Hbm>("src", DType::F32, &[32, 128]);
        let dst = launch::output::<Hbm>("dst", DType::F32, &[32, 128], None);
        let dma = launch::dma_sems("dma", &[1]);
        let done = launch::semaphores("done", &[2]);
        let l = ForLoop::begin(0, n.get(0));
        {
            let i = l.index();
            copy(src.ds(i * 8, 8), dst.ds(i * 8, 8), dma.at(0)).start_and_wait();
            semaphore_signal(done.at(1), 1); // @signal
        }
        l.end();
        let half = n.get(1) / 2;
        done.at(1).wait(half);
        semaphore_wait(done.at(1), n.get(1) - half); // @wait
    }))
}

fn rows() -> Array {
    Array::from_f64(DType::F32, &[32, 128], &ramp(32 * 128, 1.0, 0.0))
}

#[test]
fn regular_semaphores_count_signals_and_waits() {
    let k = counted_copy();
    let out = same(&k, &[Array::from_i32(&[2], &[3, 3]), rows()]);
    assert_eq!(out[0].get_f64(2 * 1024 + 5), rows().get_f64(2 * 1024 + 5));
}

#[test]
fn a_wait_for_more_than_was_signalled_is_an_error_at_its_line() {
    let k = counted_copy();
    let e =
        same_error(&k, &[Array::from_i32(&[2], &[3, 5]), rows()], "waits for 3 on semaphore `done[1]`, which holds 1");
    assert_eq!((e.first().op.as_deref(), e.first().loc.line), (Some("semaphore_wait"), line_of("@wait")));
}

#[test]
fn a_semaphore_left_signalled_is_reported_at_its_last_signal() {
    let k = counted_copy();
    let e = same_error(&k, &[Array::from_i32(&[2], &[4, 3]), rows()], "ended with semaphore `done[1]` at 1");
    assert_eq!((e.first().op.as_deref(), e.first().loc.line), (Some("semaphore_signal"), line_of("@signal")));
}

#[test]
fn a_negative_amount_is_an_error() {
    let k = ok(build_kernel("negative_signal", Loc::caller(), || {
        let n = launch::prefetch("n", DType::I32, &[1]);
        let o = launch::output::<Hbm>("o", DType::F32, &[8, 128], None);
        let buf = launch::scratch_vmem("buf", DType::F32, &[8, 128]);
        let (dma, s) = (launch::dma_sems("dma", &[1]), launch::semaphores("s", &[1]));
        buf.store(rpa_dsl::frontend::zeros(&[8, 128], DType::F32));
        copy(buf, o, dma.at(0)).start_and_wait();
        s.at(0).signal(n.get(0));
        s.at(0).wait(n.get(0));
    }));
    same(&k, &[Array::from_i32(&[1], &[2])]);
    same_error(&k, &[Array::from_i32(&[1], &[-2])], "semaphore amount -2 is negative");
}

#[test]
fn dma_and_regular_semaphores_are_not_interchangeable() {
    let e = build_kernel("mixed_sems", Loc::caller(), || {
        let src = launch::input::<Hbm>("src", DType::F32, &[8, 128]);
        let buf = launch::scratch_vmem("buf", DType::F32, &[8, 128]);
        let (dma, regular) = (launch::dma_sems("dma", &[1]), launch::semaphores("regular", &[1]));
        copy(src, buf, regular.at(0)).start();
        dma.at(0).signal(1);
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("a DMA signals a DMA semaphore (`DmaSems`), not a regular one (`Semaphores`)"), "{e}");
    assert!(e.contains("a DMA semaphore is signalled by its DMAs"), "{e}");
}

#[test]
fn regular_semaphores_compile_for_every_generation() {
    compiles_everywhere(&counted_copy());
}
