//! A template for your own kernels: copy this crate, replace the kernels, keep the shape.
//!
//! - `src/lib.rs` (here): the kernels, each a `#[tpu_kernel]` function, and [`registry`], which
//!   names them for the tools with their comptime arguments, inputs and references;
//! - `src/reference.rs`: a plain-Rust (f64) reference of every kernel;
//! - `src/main.rs`: the tools — `cargo run -p my-kernels -- list | ir | mosaic | stablehlo |
//!   compile | run | trace` (see `--help`);
//! - `tests/kernels.rs`: each kernel against its reference on interpret mode and PJRT-CPU, and
//!   compiled with libtpu for v5e, v6e and v7x; `tests/tools.rs`: the binary's commands.
//!
//! The three kernels are of the kinds a new user writes: a fused RMSNorm, a causal flash-attention
//! forward pass, and a double-buffered paged gather.

pub mod reference;

use rpa_dsl::prelude::*;
use rpa_dsl::tool::{random_array, Args, KernelSpec, Registry, ToolError};

/// Fused RMSNorm: `o = x / sqrt(mean(x², axis=-1) + eps) · w`, `block_rows` rows per grid step,
/// computed in f32. The weight's block never changes, so one buffer holds it (`Buffered(1)`).
#[tpu_kernel(grid = [rows / block_rows], semantics = [parallel])]
pub fn rms_norm(
    #[comptime] rows: usize,
    #[comptime] cols: usize,
    #[comptime] block_rows: usize,
    #[comptime] eps: f64,
    #[comptime] dtype: DType,
    #[block([block_rows, cols], |i| [i, 0])] x: In![dtype, [rows, cols]],
    #[block([1, cols], |_| [0, 0], Buffered(1))] w: In![dtype, [1, cols]],
    #[block([block_rows, cols], |i| [i, 0])] o: Out![dtype, [rows, cols]],
) {
    let v = x.load().cast(F32);
    let mean_square = (v * v).reduce_sum(1) * (1.0 / cols as f64);
    let normed = v * (mean_square + eps).rsqrt();
    o.store((normed * w.load().cast(F32)).cast(dtype));
}

/// Causal flash attention, forward: for every head and block of `bq` queries, an online softmax
/// over the key/value blocks of `bkv` rows up to the diagonal (a runtime loop: its trip count
/// depends on the query block). The keys and values of a head sit in VMEM; each step reads a block
/// at the dynamic offset `j · bkv`, which `multiple_of` promises Mosaic is aligned.
#[tpu_kernel(grid = [heads, seq / bq], semantics = [parallel, parallel])]
pub fn flash_attention(
    #[comptime] heads: usize,
    #[comptime] seq: usize,
    #[comptime] d: usize,
    #[comptime] bq: usize,
    #[comptime] bkv: usize,
    #[block([1, bq, d], |h, i| [h, i, 0])] q: In![f32, [heads, seq, d]],
    #[block([1, seq, d], |h, i| [h, 0, 0])] k: In![f32, [heads, seq, d]],
    #[block([1, seq, d], |h, i| [h, 0, 0])] v: In![f32, [heads, seq, d]],
    #[block([1, bq, d], |h, i| [h, i, 0])] o: Out![f32, [heads, seq, d]],
) {
    let q_start = program_id(1) * bq;
    let qs = q.at(0).load() * (1.0 / (d as f64).sqrt());
    let rows = iota(I32, &[bq, bkv], 0) + q_start;
    let mut m = full(&[bq, 1], -1e30, F32);
    let mut l = zeros(&[bq, 1], F32);
    let mut acc = zeros(&[bq, d], F32);
    // Key blocks up to the diagonal: those starting before the query block ends.
    for j in 0..cdiv(q_start + bq, bkv) {
        let start = multiple_of(j * bkv, bkv as u32);
        let kb = k.at(0).ds(start, bkv).load();
        let vb = v.at(0).ds(start, bkv).load();
        let cols = iota(I32, &[bq, bkv], 1) + start;
        let s = select(cols <= rows, matmul_t(qs, kb), -1e30);
        let m_new = max(m, s.reduce_max(1));
        let p = (s - m_new).exp();
        let alpha = (m - m_new).exp();
        l = l * alpha + p.reduce_sum(1);
        acc = acc * alpha + matmul(p, vb);
        m = m_new;
    }
    o.at(0).store(acc / l);
}

/// A paged gather: sequence `s` owns the pages `table[s · pages_per_seq..][..pages_per_seq]` of a page pool in HBM, of which
/// `cdiv(lens[s], page)` hold its rows; the kernel copies them into the sequence's contiguous
/// output block (zeros after the last page). Pages stream through two VMEM slots: while page `p`
/// is copied out, page `p + 1` is already on its way into the other slot (one DMA semaphore per
/// slot).
#[tpu_kernel(grid = [seqs], semantics = [parallel])]
pub fn paged_gather(
    #[comptime] seqs: usize,
    #[comptime] pages_per_seq: usize,
    #[comptime] num_pages: usize,
    #[comptime] page: usize,
    #[comptime] d: usize,
    #[comptime] dtype: DType,
    table: Prefetch![i32, [seqs * pages_per_seq]],
    lens: Prefetch![i32, [seqs]],
    pool: In![dtype, [num_pages, page, d]],
    #[block([1, pages_per_seq * page, d], |s| [s, 0, 0])] o: Out![dtype, [seqs, pages_per_seq * page, d]],
    buf: Vmem![dtype, [2, page, d]],
    sems: DmaSems<2>,
) {
    let s = program_id(0);
    let first = s * pages_per_seq; // this sequence's row of the (flattened) page table
    let n = cdiv(lens.get(s), page);
    o.at(0).store(zeros(&[pages_per_seq * page, d], dtype));
    if n > 0 {
        copy(pool.at(table.get(first)), buf.at(0), sems.at(0)).start();
    }
    for p in 0..n {
        let slot = p % 2;
        if p + 1 < n {
            copy(pool.at(table.get(first + p + 1)), buf.at(1 - slot), sems.at(1 - slot)).start();
        }
        copy(pool.at(table.get(first + p)), buf.at(slot), sems.at(slot)).wait();
        let row = multiple_of(p * page, page as u32);
        o.at(0).ds(row, page).store(buf.at(slot).load());
    }
}

/// The inputs of [`paged_gather`]: a page table that scatters each sequence over the pool, and
/// lengths from full down to empty.
fn paged_gather_inputs(a: &Args, seed: u64) -> Result<Vec<Array>, ToolError> {
    let (seqs, pps, num_pages) = (a.usize("seqs")?, a.usize("pages_per_seq")?, a.usize("num_pages")?);
    let (page, d, dtype) = (a.usize("page")?, a.usize("d")?, a.dtype("dtype")?);
    if num_pages == 0 {
        return Err("num_pages must be at least 1".into());
    }
    let table: Vec<i32> = (0..seqs * pps).map(|i| ((i * 7 + seed as usize) % num_pages) as i32).collect();
    let max_len = pps * page;
    let lens: Vec<i32> = (0..seqs).map(|s| (max_len >> s).saturating_sub(s) as i32).collect();
    let pool = random_array(dtype, &[num_pages, page, d], seed);
    Ok(vec![Array::from_i32(&[seqs * pps], &table), Array::from_i32(&[seqs], &lens), pool])
}

/// The kernels, their comptime arguments (with the defaults the tests use), inputs and references.
pub fn registry() -> Registry {
    Registry::new("my-kernels")
        .about("my-kernels: a template crate's kernels in the rpa tools")
        .kernel(
            KernelSpec::new("rms_norm", "fused RMSNorm: x / sqrt(mean(x²) + eps) · w", |a| {
                let (rows, cols, block_rows) = (a.usize("rows")?, a.usize("cols")?, a.usize("block_rows")?);
                if block_rows == 0 || rows % block_rows != 0 {
                    return Err(format!("block_rows ({block_rows}) must divide rows ({rows})").into());
                }
                Ok(rms_norm(rows, cols, block_rows, a.f64("eps")?, a.dtype("dtype")?)?)
            })
            .arg("rows", 64usize, "rows of x")
            .arg("cols", 256usize, "columns of x (normalised over)")
            .arg("block_rows", 16usize, "rows per grid step (divides rows)")
            .arg("eps", 1e-6, "added to the mean square")
            .arg("dtype", F32, "dtype of x, w and o (computed in f32)")
            .reference(|a, x| {
                Ok(vec![reference::rms_norm(&x[0].to_f64(), &x[1].to_f64(), a.usize("cols")?, a.f64("eps")?)])
            })
            .tolerance(1e-5),
        )
        .kernel(
            KernelSpec::new("flash_attention", "causal flash attention forward, one pass per query block", |a| {
                let (seq, bq, bkv) = (a.usize("seq")?, a.usize("bq")?, a.usize("bkv")?);
                if bq == 0 || bkv == 0 || seq % bq != 0 || seq % bkv != 0 {
                    return Err(format!("bq ({bq}) and bkv ({bkv}) must divide seq ({seq})").into());
                }
                Ok(flash_attention(a.usize("heads")?, seq, a.usize("d")?, bq, bkv)?)
            })
            .arg("heads", 2usize, "attention heads")
            .arg("seq", 256usize, "sequence length (queries and keys)")
            .arg("d", 128usize, "head dimension")
            .arg("bq", 64usize, "queries per grid step")
            .arg("bkv", 64usize, "keys per inner step")
            .reference(|a, x| {
                let (heads, seq, d) = (a.usize("heads")?, a.usize("seq")?, a.usize("d")?);
                Ok(vec![reference::causal_attention(&x[0].to_f64(), &x[1].to_f64(), &x[2].to_f64(), heads, seq, d)])
            })
            .tolerance(1e-4),
        )
        .kernel(
            KernelSpec::new("paged_gather", "double-buffered gather of each sequence's pages", |a| {
                let (pps, num_pages) = (a.usize("pages_per_seq")?, a.usize("num_pages")?);
                Ok(paged_gather(a.usize("seqs")?, pps, num_pages, a.usize("page")?, a.usize("d")?, a.dtype("dtype")?)?)
            })
            .arg("seqs", 3usize, "sequences (grid steps)")
            .arg("pages_per_seq", 4usize, "pages of a sequence's table")
            .arg("num_pages", 16usize, "pages in the pool")
            .arg("page", 16usize, "rows per page")
            .arg("d", 128usize, "row width")
            .arg("dtype", F32, "element dtype")
            .inputs(|a, _, seed| paged_gather_inputs(a, seed))
            .reference(|a, x| {
                let table: Vec<i64> = x[0].to_i64();
                let lens: Vec<i64> = x[1].to_i64();
                let shape = (a.usize("pages_per_seq")?, a.usize("page")?, a.usize("d")?);
                Ok(vec![reference::paged_gather(&table, &lens, &x[2].to_f64(), shape)])
            })
            .tolerance(0.0),
        )
}
