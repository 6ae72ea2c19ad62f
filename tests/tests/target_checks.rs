//! The verifier's TPU checks run before every backend: a kernel that interpret mode or PJRT-CPU
//! runs also compiles for every TPU generation (or those selected with a `TargetCheck`), and the
//! refusal is `tpu::compile_for`'s, at the same source line.

use rpa_dsl::cpu::CpuBackend;
use rpa_dsl::interpret::{run, InterpretOptions};
use rpa_dsl::ir::verify::verify_targets;
use rpa_dsl::prelude::*;
use rpa_dsl::tpu::compile_for;
use rpa_tests::line_of;

const SOURCE: &str = include_str!("target_checks.rs");

fn ramp(shape: &[usize]) -> Array {
    let n: usize = shape.iter().product();
    Array::from_f64(DType::F32, shape, &(0..n).map(|i| (i % 97) as f64 - 48.0).collect::<Vec<_>>())
}

/// The error `compile_for` gives on `target` (its verifier refuses before libtpu is needed).
fn compile_error(k: &Kernel, target: TpuTarget) -> KernelError {
    compile_for(k, target).expect_err("the verifier refuses the kernel")
}

fn interpret_error(k: &Kernel, inputs: &[Array], targets: TargetCheck) -> KernelError {
    run(k, inputs, &InterpretOptions { targets, ..Default::default() }).expect_err("interpret mode refuses the kernel")
}

fn cpu_backend(targets: TargetCheck) -> CpuBackend {
    CpuBackend::new().unwrap_or_else(|e| panic!("{e} (run scripts/install-plugins)")).with_targets(targets)
}

/// `x` [32, 200] → `o = x + 1`, in [8, 100] blocks: 100 lanes break the (8, 128) tiling rule.
#[tpu_kernel(grid = [8])]
fn untiled(
    #[block([8, 100], |i| [i / 2, i % 2])] x: In![f32, [32, 200]], // @untiled
    #[block([8, 100], |i| [i / 2, i % 2])] o: Out![f32, [32, 200]],
) {
    o.store(x.load() + 1.0);
}

/// A 64 MiB VMEM scratch of which the kernel uses one tile (four times v5e's default scoped VMEM).
#[tpu_kernel]
fn vmem_64_mib(
    src: In![f32, [8, 128]],
    dst: Out![f32, [8, 128]],
    big: Vmem![f32, [64, 1024, 256]], // @vmem64
    sems: DmaSems<1>,
) {
    let tile = big.at(63).ds(1016, 8).view(&[full_dim(), ds(128, 128)]);
    copy(src, tile, sems.at(0)).start_and_wait();
    copy(tile, dst, sems.at(0)).start_and_wait();
}

/// 80 MiB of VMEM under a 100 MiB `vmem_limit`: a v5e or v6e (128 MiB of VMEM) runs it, a v7x
/// (64 MiB) cannot.
#[tpu_kernel(vmem_limit = 100 << 20)]
fn v6e_sized(
    src: In![f32, [8, 128]],
    dst: Out![f32, [8, 128]],
    big: Vmem![f32, [80, 1024, 256]], // @vmem80
    sems: DmaSems<1>,
) {
    let tile = big.at(79).ds(1016, 8).view(&[full_dim(), ds(128, 128)]);
    copy(src, tile, sems.at(0)).start_and_wait();
    copy(tile, dst, sems.at(0)).start_and_wait();
}

#[test]
fn an_untiled_block_is_refused_before_an_interpret_launch_as_compile_for_refuses_it() {
    let k = untiled().unwrap();
    let want = compile_error(&k, TpuTarget::V5e);
    assert!(want.first().message.contains("block shape [8, 100] of `x` breaks the TPU tiling rule"), "{want}");
    assert_eq!(want.first().loc.line, line_of(SOURCE, "@untiled"), "{want}");
    let x = ramp(&[32, 200]);
    assert_eq!(interpret_error(&k, std::slice::from_ref(&x), TargetCheck::All), want);
    assert_eq!(k.interpret(std::slice::from_ref(&x)).unwrap_err(), want);
    // Refused before the launch: a missing input is not even looked at.
    assert_eq!(interpret_error(&k, &[], TargetCheck::All), want);
    // Every generation has the same tiling rule.
    for t in TpuTarget::ALL {
        assert_eq!(interpret_error(&k, std::slice::from_ref(&x), TargetCheck::Only(t)).first(), want.first());
    }
}

#[test]
fn an_untiled_block_is_refused_before_a_pjrt_cpu_launch_as_compile_for_refuses_it() {
    let k = untiled().unwrap();
    let want = compile_error(&k, TpuTarget::V5e);
    let x = ramp(&[32, 200]);
    assert_eq!(rpa_dsl::cpu::run(&k, std::slice::from_ref(&x)).unwrap_err(), want);
    let backend = cpu_backend(TargetCheck::All);
    assert_eq!(backend.compile(&k).unwrap_err(), want);
    assert_eq!(backend.cached(), 0, "nothing was compiled");
}

#[test]
fn a_64_mib_vmem_scratch_is_refused_before_interpret_and_pjrt_cpu_launches() {
    let k = vmem_64_mib().unwrap();
    let want = compile_error(&k, TpuTarget::V5e);
    assert_eq!(
        want.first().message,
        "VMEM over budget on v5e: 64.0 MiB needed (scratch `big` 64.0 MiB) but the limit is 16.0 MiB \
         (the default scoped VMEM limit of v5e; raise it with `vmem_limit`)"
    );
    assert_eq!(want.first().loc.line, line_of(SOURCE, "@vmem64"), "{want}");
    assert_eq!(want.first().op.as_deref(), Some("big"));
    let src = ramp(&[8, 128]);
    assert_eq!(interpret_error(&k, std::slice::from_ref(&src), TargetCheck::All), want);
    assert_eq!(rpa_dsl::cpu::run(&k, std::slice::from_ref(&src)).unwrap_err(), want);
}

#[test]
fn a_kernel_only_v7x_refuses_runs_for_v6e_and_the_default_names_v7x() {
    let k = v6e_sized().unwrap();
    let src = ramp(&[8, 128]);
    let inputs = std::slice::from_ref(&src);
    // The default checks every generation; v5e and v6e accept it, so v7x's refusal is reported.
    let want = compile_error(&k, TpuTarget::V7x);
    assert_eq!(want.first().message, "vmem_limit of 100.0 MiB exceeds the 64.0 MiB of VMEM on v7x");
    let over = &want.diagnostics[1];
    assert!(over.message.starts_with("VMEM over budget on v7x: 80.0 MiB needed"), "{want}");
    assert_eq!(over.loc.line, line_of(SOURCE, "@vmem80"), "{want}");
    assert_eq!(verify_targets(&k, TargetCheck::All).unwrap_err(), want);
    assert_eq!(interpret_error(&k, inputs, TargetCheck::All), want);
    assert_eq!(rpa_dsl::cpu::run(&k, inputs).unwrap_err(), want);
    // Selected for v6e, both backends run it.
    let v6e = TargetCheck::Only(TpuTarget::V6e);
    let opts = InterpretOptions { targets: v6e, ..Default::default() };
    assert_eq!(run(&k, inputs, &opts).unwrap().outputs, inputs);
    assert_eq!(cpu_backend(v6e).run(&k, inputs).unwrap(), inputs);
    assert_eq!(interpret_error(&k, inputs, TargetCheck::Only(TpuTarget::V7x)), want);
}

#[test]
fn host_only_runs_a_kernel_no_tpu_would_compile() {
    let k = untiled().unwrap();
    let x = ramp(&[32, 200]);
    let want: Vec<f64> = x.to_f64().iter().map(|v| v + 1.0).collect();
    let opts = InterpretOptions { targets: TargetCheck::HostOnly, ..Default::default() };
    let out = run(&k, std::slice::from_ref(&x), &opts).unwrap().outputs;
    assert_eq!(out[0].to_f64(), want);
    let out = cpu_backend(TargetCheck::HostOnly).run(&k, std::slice::from_ref(&x)).unwrap();
    assert_eq!(out[0].to_f64(), want);
}
