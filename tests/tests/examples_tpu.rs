//! The book's examples compile for every TPU generation, and libtpu's errors on bad kernels come
//! back mapped to the kernel's source line.

use rpa_dsl::prelude::*;
use rpa_dsl::tpu::compile_for;
use rpa_kernels::examples;
use rpa_tests::line_of;

const SOURCE: &str = include_str!("examples_tpu.rs");

#[test]
fn every_example_compiles_for_every_generation() {
    let kernels = [
        examples::elementwise_add(256).unwrap(),
        examples::tiled_matmul(256, 256, 512, 128, 128, 128, DType::Bf16).unwrap(),
        examples::tiled_matmul(256, 256, 512, 128, 128, 128, DType::F32).unwrap(),
        examples::double_buffered_scale(16).unwrap(),
        examples::row_softmax(64, 256).unwrap(),
    ];
    for k in &kernels {
        for t in TpuTarget::ALL {
            let c = compile_for(k, t).unwrap_or_else(|e| panic!("{} on {t}: {e}", k.name));
            assert!(c.code_size > 0 && c.serialized_size > 0, "{c:?}");
        }
    }
}

#[tpu_kernel]
fn misaligned_lanes(
    off: Prefetch![i32, [1]],
    src: In![f32, [8, 256]],
    dst: Out![f32, [8, 128]],
    buf: Vmem![f32, [8, 256]],
    out: Vmem![f32, [8, 128]],
    sems: DmaSems<1>,
) {
    copy(src, buf, sems.at(0)).start_and_wait();
    let tile = buf.view(&[full_dim(), ds(off.get(0), 128)]).load(); // @misaligned
    out.store(tile);
    copy(out, dst, sems.at(0)).start_and_wait();
}

#[test]
fn a_misaligned_dynamic_lane_offset_is_rejected_at_its_line() {
    let k = misaligned_lanes().unwrap();
    let err = compile_for(&k, TpuTarget::V6e).expect_err("libtpu cannot prove the lane offset aligned");
    assert!(err.to_string().contains("libtpu (v6e) rejected the kernel"), "{err}");
    assert_eq!(err.first().loc.line, line_of(SOURCE, "@misaligned"), "{err}");
}

#[tpu_kernel(vmem_limit = 100 << 20)]
fn vmem_hog(src: In![f32, [8, 128]], dst: Out![f32, [8, 128]], big: Vmem![f32, [80, 1024, 256]], sems: DmaSems<1>) {
    copy(src, big.at(0).ds(0, 8).view(&[full_dim(), ds(0, 128)]), sems.at(0)).start_and_wait();
    copy(big.at(0).ds(0, 8).view(&[full_dim(), ds(0, 128)]), dst, sems.at(0)).start_and_wait();
}

#[test]
fn vmem_over_budget_is_rejected_before_libtpu_for_v7x_only() {
    let k = vmem_hog().unwrap();
    let err = compile_for(&k, TpuTarget::V7x).unwrap_err();
    assert!(err.to_string().contains("VMEM over budget on v7x"), "{err}");
    assert!(err.to_string().contains("exceeds the 64.0 MiB of VMEM on v7x"), "{err}");
    compile_for(&k, TpuTarget::V6e).expect("80 MiB fits a v6e");
}

#[tpu_kernel] // the kernel's location is its name, on the next line: @default-limit-hog
fn default_limit_hog(
    src: In![f32, [8, 128]],
    dst: Out![f32, [8, 128]],
    big: Vmem![f32, [40, 1024, 256]],
    sems: DmaSems<1>,
) {
    copy(src, big.at(0).ds(0, 8).view(&[full_dim(), ds(0, 128)]), sems.at(0)).start_and_wait();
    copy(big.at(0).ds(0, 8).view(&[full_dim(), ds(0, 128)]), dst, sems.at(0)).start_and_wait();
}

#[test]
fn without_vmem_limit_the_default_scoped_limit_applies() {
    let k = default_limit_hog().unwrap();
    let err = compile_for(&k, TpuTarget::V6e).unwrap_err();
    assert!(err.to_string().contains("default scoped VMEM limit of v6e"), "{err}");
    // libtpu agrees: without rpa's verifier its own out-of-VMEM error comes back, at the kernel.
    let err = rpa_dsl::tpu::compile_unverified(&k, TpuTarget::V6e).unwrap_err();
    assert!(err.to_string().contains("libtpu (v6e) rejected the kernel"), "{err}");
    assert!(err.to_string().contains("vmem"), "{err}");
    assert_eq!(err.first().loc.line, line_of(SOURCE, "@default-limit-hog") + 1, "{err}");
}

#[tpu_kernel]
fn narrow_infinities(o: Out![bf16, [16, 128]], buf: Vmem![bf16, [16, 128]], sem: DmaSems<1>) {
    buf.store(full(&[16, 128], f32::NEG_INFINITY, Bf16));
    copy(buf, o, sem.at(0)).start_and_wait();
}

#[test]
fn narrow_float_infinities_are_spelled_at_their_width() {
    let k = narrow_infinities().unwrap();
    let mosaic = rpa_dsl::lower::mosaic::lower(&k).unwrap();
    assert!(mosaic.contains("0xFF80 : bf16"), "{mosaic}");
    for t in TpuTarget::ALL {
        compile_for(&k, t).unwrap_or_else(|e| panic!("{t}: {e}"));
    }
}
