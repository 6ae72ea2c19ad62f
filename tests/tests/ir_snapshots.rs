//! Printed IR of the example kernels, compared with the snapshots in `tests/snapshots/`.
//! Snapshots are generated, never hand-written: run with `RPA_UPDATE_SNAPSHOTS=1` to (re)write
//! them, then review the diff.

use rpa_dsl::ir::printer::{print, PrintOptions};
use rpa_dsl::{DType, Kernel};
use rpa_kernels::examples;
use std::path::PathBuf;

fn check(name: &str, kernel: Kernel) {
    let text = print(&kernel, PrintOptions::default());
    // Printing is deterministic.
    assert_eq!(text, print(&kernel, PrintOptions::default()));
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("snapshots").join(format!("{name}.ir"));
    let update = std::env::var_os("RPA_UPDATE_SNAPSHOTS").is_some();
    match std::fs::read_to_string(&path) {
        Ok(expected) if !update => {
            assert_eq!(text, expected, "printed IR of `{name}` changed; if intended, rerun with RPA_UPDATE_SNAPSHOTS=1")
        }
        _ => {
            std::fs::write(&path, &text).unwrap();
            assert!(update, "wrote a new snapshot {}: review and commit it", path.display());
        }
    }
}

#[test]
fn elementwise_add_ir() {
    check("elementwise_add", examples::elementwise_add(64).unwrap());
}

#[test]
fn tiled_matmul_ir() {
    check("tiled_matmul", examples::tiled_matmul(256, 256, 512, 128, 128, 128, DType::Bf16).unwrap());
}

#[test]
fn double_buffered_scale_ir() {
    check("double_buffered_scale", examples::double_buffered_scale(16).unwrap());
}

#[test]
fn row_softmax_ir() {
    check("row_softmax", examples::row_softmax(64, 256).unwrap());
}

#[test]
fn locations_name_the_kernel_source() {
    let k = examples::row_softmax(64, 256).unwrap();
    let text = print(&k, PrintOptions { locs: true });
    assert!(text.contains("kernels/src/examples.rs:"), "{text}");
}
