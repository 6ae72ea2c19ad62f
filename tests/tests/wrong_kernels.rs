//! Deliberately wrong kernels: each is rejected (by the verifier or interpret mode) with a message
//! that names the problem and the source line of the offending op or parameter.

use rpa_dsl::interpret::{run, InterpretOptions};
use rpa_dsl::ir::verify::verify;
use rpa_dsl::prelude::*;
use rpa_dsl::KernelError;
use rpa_tests::line_of;

const SOURCE: &str = include_str!("wrong_kernels.rs");

fn interpret_err(k: &Kernel, inputs: &[Array]) -> KernelError {
    run(k, inputs, &InterpretOptions::default()).expect_err("the kernel must be rejected")
}

#[tpu_kernel]
fn missing_wait(src: In![f32, [8, 128]], dst: Out![f32, [8, 128]], buf: Vmem![f32, [8, 128]], sems: DmaSems<2>) {
    copy(src, buf, sems.at(0)).start();
    copy(src, buf, sems.at(0)).wait();
    buf.store(buf.load() + 1.0);
    copy(buf, dst, sems.at(1)).start(); // @missing-wait
}

#[test]
fn a_copy_that_is_never_waited_is_an_error_at_its_start() {
    let err = interpret_err(&missing_wait().unwrap(), &[Array::zeros(DType::F32, &[8, 128])]);
    assert!(err.first().message.contains("never waited"), "{err}");
    assert_eq!(err.first().loc.line, line_of(SOURCE, "@missing-wait"), "{err}");
}

#[tpu_kernel]
fn out_of_bounds_dma(
    src: In![f32, [16, 128]],
    dst: Out![f32, [16, 128]],
    buf: Vmem![f32, [16, 128]],
    sems: DmaSems<1>,
) {
    copy(src.ds(0, 16), buf, sems.at(0)).start_and_wait();
    copy(buf.ds(8, 16), dst, sems.at(0)).start_and_wait(); // @oob
}

#[test]
fn an_out_of_bounds_dma_is_an_error_at_its_line() {
    let err = interpret_err(&out_of_bounds_dma().unwrap(), &[Array::zeros(DType::F32, &[16, 128])]);
    assert!(err.first().message.contains("out of bounds"), "{err}");
    assert!(err.first().message.contains("`buf`"), "{err}");
    assert_eq!(err.first().loc.line, line_of(SOURCE, "@oob"), "{err}");
}

#[tpu_kernel]
fn unbalanced_semaphore(
    src: In![f32, [8, 128]],
    dst: Out![f32, [8, 128]],
    buf: Vmem![f32, [8, 128]],
    sems: DmaSems<1>,
) {
    let c = copy(src, buf, sems.at(0));
    c.start();
    c.wait();
    c.wait(); // @unbalanced
    copy(buf, dst, sems.at(0)).start_and_wait();
}

#[test]
fn waiting_for_bytes_never_signalled_is_an_error() {
    let err = interpret_err(&unbalanced_semaphore().unwrap(), &[Array::zeros(DType::F32, &[8, 128])]);
    assert!(err.first().message.contains("only 0 bytes were signalled"), "{err}");
    assert_eq!(err.first().loc.line, line_of(SOURCE, "@unbalanced"), "{err}");
}

#[tpu_kernel(grid = [2, 2], semantics = [parallel, arbitrary])]
fn uninitialised_accumulator(
    #[block([8, 128], |i, k| [i, k])] x: In![f32, [16, 256]],
    #[block([8, 128], |i, k| [i, 0])] o: Out![f32, [16, 128]],
    acc: Vmem![f32, [8, 128]],
) {
    // Bug: `acc` is never zeroed at k == 0.
    let k = program_id(1);
    acc.store(acc.load() + x.load()); // @uninit
    if k == 1 {
        o.store(acc.load());
    }
}

#[test]
fn reading_uninitialised_scratch_is_an_error_at_the_load() {
    let err = interpret_err(&uninitialised_accumulator().unwrap(), &[Array::zeros(DType::F32, &[16, 256])]);
    assert!(err.first().message.contains("uninitialised"), "{err}");
    assert!(err.first().message.contains("`acc`"), "{err}");
    assert_eq!(err.first().loc.line, line_of(SOURCE, "@uninit"), "{err}");
}

#[tpu_kernel(grid = [4])]
fn revisited_output(
    #[block([8, 128], |i| [i, 0])] x: In![f32, [32, 128]],
    #[block([8, 128], |i| [i % 2, 0])] o: Out![f32, [16, 128]], // @revisit
) {
    o.store(x.load());
}

#[test]
fn revisiting_an_output_block_is_an_error() {
    let err = interpret_err(&revisited_output().unwrap(), &[Array::zeros(DType::F32, &[32, 128])]);
    assert!(err.first().message.contains("revisited block [0, 0] of output `o`"), "{err}");
    assert_eq!(err.first().loc.line, line_of(SOURCE, "@revisit"), "{err}");
}

#[tpu_kernel(vmem_limit = 110 << 20)]
fn vmem_hog(
    src: In![f32, [8, 128]],
    dst: Out![f32, [8, 128]],
    big: Vmem![f32, [100, 1024, 256]], // @vmem
    sems: DmaSems<1>,
) {
    copy(src, big.at(0).ds(0, 8).view(&[full_dim(), ds(0, 128)]), sems.at(0)).start_and_wait();
    copy(big.at(0).ds(0, 8).view(&[full_dim(), ds(0, 128)]), dst, sems.at(0)).start_and_wait();
}

#[test]
fn vmem_over_budget_is_rejected_for_v7x_but_not_v6e() {
    let k = vmem_hog().unwrap();
    verify(&k, TpuTarget::V6e).expect("100 MiB fits the 128 MiB of a v6e");
    let err = verify(&k, TpuTarget::V7x).unwrap_err();
    assert!(err.to_string().contains("VMEM"), "{err}");
    assert!(err.to_string().contains("v7x"), "{err}");
    assert!(err.diagnostics.iter().any(|d| d.loc.line == line_of(SOURCE, "@vmem")), "{err}");
}

#[tpu_kernel(grid = [4])]
fn bad_tiling(
    #[block([8, 100], |i| [i, 0])] x: In![f32, [32, 200]], // @tiling
    #[block([8, 100], |i| [i, 0])] o: Out![f32, [32, 200]],
) {
    o.store(x.load());
}

#[test]
fn a_block_off_the_native_tiling_is_rejected() {
    let k = bad_tiling().unwrap();
    let err = verify(&k, TpuTarget::V5e).unwrap_err();
    assert!(err.first().message.contains("[8, 100]"), "{err}");
    assert!(err.first().message.contains("tiling"), "{err}");
    assert_eq!(err.first().loc.line, line_of(SOURCE, "@tiling"), "{err}");
}

#[test]
fn a_build_time_type_error_names_the_op_and_line() {
    let line = line!() + 4;
    let err = rpa_dsl::frontend::build_kernel("bad_matmul", Loc::caller(), || {
        let a = zeros(&[8, 128], F32);
        let b = zeros(&[64, 128], F32);
        let _ = matmul(a, b);
    })
    .unwrap_err();
    assert_eq!(err.first().op.as_deref(), Some("matmul"));
    assert!(err.first().message.contains("contraction mismatch"), "{err}");
    assert!(err.first().message.ends_with("`matmul_t(a, b)` (`a @ bᵀ`) fits these shapes"), "{err}");
    assert_eq!(err.first().loc.line, line, "{err}");
    assert!(err.to_string().contains("bad_matmul"), "{err}");
}

#[tpu_fn]
fn copy_rows(from: Ref<Vmem>, to: Ref<Hbm>, sems: Sems, start: usize) {
    copy(from.ds(start, 16), to, sems.at(0)).start_and_wait(); // @helper-oob
}

#[tpu_fn]
fn write_back(buf: Ref<Vmem>, dst: Ref<Hbm>, sems: Sems) {
    copy_rows(buf, dst, sems, 8); // @helper-inner-call
}

#[tpu_kernel]
fn oob_in_helper(src: In![f32, [16, 128]], dst: Out![f32, [16, 128]], buf: Vmem![f32, [16, 128]], sems: DmaSems<1>) {
    copy(src, buf, sems.at(0)).start_and_wait();
    write_back(buf, dst, sems); // @helper-outer-call
}

#[test]
fn an_error_inside_helpers_names_their_call_sites() {
    let err = interpret_err(&oob_in_helper().unwrap(), &[Array::zeros(DType::F32, &[16, 128])]);
    assert!(err.first().message.contains("out of bounds"), "{err}");
    let lines: Vec<u32> = err.first().loc.chain().map(|l| l.line).collect();
    let want = ["@helper-oob", "@helper-inner-call", "@helper-outer-call"].map(|m| line_of(SOURCE, m));
    assert_eq!(lines, want, "{err}");
    let [oob, inner, outer] = want;
    let text = err.to_string();
    let file = file!();
    assert!(text.contains(&format!("{file}:{oob}:")), "{text}");
    assert!(text.contains(&format!(" (called from {file}:{inner}:5, from {file}:{outer}:5): kernel")), "{text}");
}

#[tpu_fn]
fn second_grid_index() -> Scalar {
    program_id(1) // @grid-axis
}

#[tpu_kernel(grid = [2])]
fn grid_axis_in_helper() {
    debug_print("{}", &[second_grid_index()]); // @axis-call
}

#[test]
fn a_verifier_error_inside_a_helper_names_its_call_site() {
    let err = grid_axis_in_helper().unwrap_err();
    assert!(err.first().message.contains("grid axis 1 is out of range"), "{err}");
    let lines: Vec<u32> = err.first().loc.chain().map(|l| l.line).collect();
    assert_eq!(lines, [line_of(SOURCE, "@grid-axis"), line_of(SOURCE, "@axis-call")], "{err}");
    // Outside helpers, a location has no call site.
    let err = out_of_bounds_dma().unwrap();
    assert!(err.body.insts.iter().all(|i| i.loc.caller.is_none()));
}
