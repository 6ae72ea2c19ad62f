//! The four example kernels of the book's first chapter, each with a plain-Rust reference.
//!
//! They cover the basic shapes of a TPU kernel: BlockSpec-pipelined elementwise work, a reduction
//! grid axis with an accumulator in scratch, hand-written double-buffered DMAs, and a row-wise
//! softmax.

use rpa_dsl::prelude::*;

/// `o = x + y`, eight rows of 128 lanes per grid step; Pallas copies the blocks in and out.
#[tpu_kernel(grid = [rows / 8], semantics = [parallel])]
pub fn elementwise_add(
    #[comptime] rows: usize,
    #[block([8, 128], |i| [i, 0])] x: In![f32, [rows, 128]],
    #[block([8, 128], |i| [i, 0])] y: In![f32, [rows, 128]],
    #[block([8, 128], |i| [i, 0])] o: Out![f32, [rows, 128]],
) {
    o.store(x.load() + y.load());
}

/// `o = x @ y` over a (m/bm, n/bn, k/bk) grid: the last axis walks the contraction, accumulating
/// in an f32 scratch tile that is zeroed at the first k step and written out at the last.
#[tpu_kernel(grid = [m / bm, n / bn, k / bk], semantics = [parallel, parallel, arbitrary])]
pub fn tiled_matmul(
    #[comptime] m: usize,
    #[comptime] n: usize,
    #[comptime] k: usize,
    #[comptime] bm: usize,
    #[comptime] bn: usize,
    #[comptime] bk: usize,
    #[comptime] dtype: DType,
    #[block([bm, bk], |i, j, kk| [i, kk])] x: In![dtype, [m, k]],
    #[block([bk, bn], |i, j, kk| [kk, j])] y: In![dtype, [k, n]],
    #[block([bm, bn], |i, j, kk| [i, j])] o: Out![dtype, [m, n]],
    acc: Vmem![f32, [bm, bn]],
) {
    let kk = program_id(2);
    if kk == 0 {
        acc.store(zeros(&[bm, bn], F32));
    }
    acc.store(acc.load() + matmul(x.load(), y.load()));
    if kk == num_programs(2) - 1 {
        o.store(acc.load().cast(dtype));
    }
}

/// `dst = 2 · src`, streamed by hand: while block `i` is computed, block `i + 1` is already on
/// its way into the other VMEM slot (two slots, two semaphores).
#[tpu_kernel]
pub fn double_buffered_scale(
    #[comptime] blocks: usize,
    src: In![f32, [blocks * 8, 128]],
    dst: Out![f32, [blocks * 8, 128]],
    buf: Vmem![f32, [2, 8, 128]],
    out: Vmem![f32, [8, 128]],
    sems: DmaSems<2>,
    out_sem: DmaSems<1>,
) {
    copy(src.ds(0, 8), buf.at(0), sems.at(0)).start();
    for i in 0..blocks {
        let slot = i % 2;
        if i + 1 < blocks {
            copy(src.ds((i + 1) * 8, 8), buf.at(1 - slot), sems.at(1 - slot)).start();
        }
        copy(src.ds(i * 8, 8), buf.at(slot), sems.at(slot)).wait();
        out.store(buf.at(slot).load() * 2.0);
        copy(out, dst.ds(i * 8, 8), out_sem.at(0)).start_and_wait();
    }
}

/// Softmax of every row: `exp(x - max) / sum(exp(x - max))`, eight rows per grid step.
#[tpu_kernel(grid = [rows / 8], semantics = [parallel])]
pub fn row_softmax(
    #[comptime] rows: usize,
    #[comptime] cols: usize,
    #[block([8, cols], |i| [i, 0])] x: In![f32, [rows, cols]],
    #[block([8, cols], |i| [i, 0])] o: Out![f32, [rows, cols]],
) {
    let v = x.load();
    let e = (v - v.reduce_max(1)).exp();
    o.store(e / e.reduce_sum(1));
}

/// Plain-Rust references (f64 accumulation) for the examples.
pub mod reference {
    pub fn elementwise_add(x: &[f64], y: &[f64]) -> Vec<f64> {
        x.iter().zip(y).map(|(a, b)| a + b).collect()
    }

    pub fn matmul(x: &[f64], y: &[f64], m: usize, n: usize, k: usize) -> Vec<f64> {
        let mut o = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                o[i * n + j] = (0..k).map(|t| x[i * k + t] * y[t * n + j]).sum();
            }
        }
        o
    }

    pub fn scale(x: &[f64], s: f64) -> Vec<f64> {
        x.iter().map(|a| a * s).collect()
    }

    pub fn row_softmax(x: &[f64], cols: usize) -> Vec<f64> {
        let mut o = Vec::with_capacity(x.len());
        for row in x.chunks(cols) {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            o.extend(e.iter().map(|v| v / s));
        }
        o
    }
}
