//! Mosaic and StableHLO text of the example kernels and of one small RPA configuration, compared
//! with the snapshots in `tests/snapshots/`, so that every change to what the lowerings emit shows
//! in review (without libtpu, nothing else checks the Mosaic text). Snapshots are generated, never
//! hand-written: run with `RPA_UPDATE_SNAPSHOTS=1` to (re)write them, then review the diff.

use rpa_dsl::lower::{mosaic, stablehlo};
use rpa_dsl::{DType, Kernel, TpuTarget};
use rpa_kernels::examples;
use rpa_kernels::rpa::launch::build_for_target;
use rpa_kernels::rpa::testing::{make_batch, BatchSpec};
use rpa_kernels::rpa::{BlockSizes, RpaCase, RpaOptions};
use std::path::PathBuf;

fn check(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("snapshots").join(name);
    let update = std::env::var_os("RPA_UPDATE_SNAPSHOTS").is_some();
    match std::fs::read_to_string(&path) {
        Ok(expected) if !update => {
            assert!(
                text == expected,
                "`{name}` changed; if intended, rerun with RPA_UPDATE_SNAPSHOTS=1 and review the diff"
            )
        }
        _ => {
            std::fs::write(&path, text).unwrap();
            assert!(update, "wrote a new snapshot {}: review and commit it", path.display());
        }
    }
}

/// Mosaic text with its source locations reduced to the file (`loc("kernel.rs")`), so that editing a
/// kernel's source does not change its snapshot unless the emitted ops change.
fn without_line_numbers(mosaic: &str) -> String {
    let mut out = String::with_capacity(mosaic.len());
    let mut rest = mosaic;
    while let Some(i) = rest.find("loc(\"") {
        let close = rest[i..].find(')').map_or(rest.len(), |j| i + j);
        let loc = &rest[i..close];
        let file_end = loc[5..].find('"').map_or(loc.len(), |j| j + 6);
        out.push_str(&rest[..i]);
        out.push_str(&loc[..file_end]);
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

/// Snapshots of `kernel`'s Mosaic and StableHLO text (each lowering twice, to check that it is
/// deterministic), and with `checked` of its checked StableHLO.
fn lowerings(name: &str, kernel: &Kernel, checked: bool) {
    let m = mosaic::lower(kernel).unwrap();
    assert_eq!(m, mosaic::lower(kernel).unwrap());
    check(&format!("{name}.mosaic"), &without_line_numbers(&m));
    let s = stablehlo::lower(kernel).unwrap();
    assert_eq!(s, stablehlo::lower(kernel).unwrap());
    check(&format!("{name}.stablehlo"), &s);
    if checked {
        check(&format!("{name}.checked.stablehlo"), &stablehlo::lower_checked(kernel).unwrap().0);
    }
}

#[test]
fn elementwise_add() {
    lowerings("elementwise_add", &examples::elementwise_add(64).unwrap(), true);
}

#[test]
fn tiled_matmul() {
    lowerings("tiled_matmul", &examples::tiled_matmul(256, 256, 512, 128, 128, 128, DType::Bf16).unwrap(), true);
}

#[test]
fn double_buffered_scale() {
    lowerings("double_buffered_scale", &examples::double_buffered_scale(16).unwrap(), true);
}

#[test]
fn row_softmax() {
    lowerings("row_softmax", &examples::row_softmax(64, 256).unwrap(), true);
}

#[test]
fn rpa_mixed_small() {
    // Two sequences (a prefill chunk and a decode step), 2/1 heads, D 128, bf16, one compute
    // sub-tile per block.
    let x = make_batch(&BatchSpec::new(&[(5, 21), (1, 9)], (2, 1), 128, 16, DType::Bf16));
    let blocks = BlockSizes { bq: 16, bkv: 32, bq_compute: 16, bkv_compute: 32 };
    let opts = RpaOptions { sm_scale: 0.125, mixed_blocks: Some(blocks), ..Default::default() };
    let k = build_for_target(&x, &opts, RpaCase::Mixed, TpuTarget::V6e).unwrap();
    lowerings("rpa_mixed_small", &k, false);
}
