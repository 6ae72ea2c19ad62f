//! Block sizes `(bq, bkv, bq_compute, bkv_compute)`: the defaults of the host backends, upstream's
//! per-generation heuristic for TPUs (rpa.md §3.2), and the VMEM and SMEM a configuration needs.

use super::kernel::{RpaConfig, STATE_LEN};
use super::{BlockSizes, RpaCase};
use rpa_dsl::target::{padded_vmem_bytes, MIB};
use rpa_dsl::{DType, TpuTarget};

/// VMEM bytes of the kernel's scratch buffers for `cfg` (tiles padded as Mosaic pads them; equal to
/// what the verifier counts for the built kernel).
pub fn vmem_bytes(cfg: &RpaConfig) -> usize {
    let BlockSizes { bq, bkv, .. } = cfg.blocks;
    let (hkv, g, dp) = (cfg.num_kv_heads, cfg.group, cfg.head_dim);
    let kv = padded_vmem_bytes(cfg.kv_dtype, &[2, bkv, cfg.row_words(), cfg.kv_dtype.packing(), dp]);
    let q_and_o = 2 * padded_vmem_bytes(cfg.q_dtype, &[2, hkv, bq, g, dp]);
    let m_and_l = 2 * padded_vmem_bytes(cfg.acc_dtype, &[hkv, bq * g, 128]);
    let acc = padded_vmem_bytes(cfg.acc_dtype, &[hkv, bq * g, dp]);
    let lse = if cfg.return_lse { padded_vmem_bytes(DType::F32, &[2, hkv, bq, g, 128]) } else { 0 };
    kv + q_and_o + m_and_l + acc + lse
}

/// SMEM bytes: the scalar-prefetched metadata and the pipeline state, one word per scalar.
pub fn smem_bytes(cfg: &RpaConfig) -> usize {
    let seqs = cfg.max_num_seqs;
    4 * (seqs + seqs * cfg.pages_per_seq + (seqs + 1) + 3 + STATE_LEN)
}

/// VMEM the host defaults stay within, so that they also fit v5e's default scoped VMEM (16 MiB).
pub const HOST_VMEM_BUDGET: usize = 12 * MIB;

/// Default block sizes of the host backends (interpret mode, PJRT-CPU): kv blocks of 256 tokens in
/// whole pages (128 if 256 does not fit); decode q blocks of one token; prefill q blocks of the
/// chunk and mixed q blocks of 128 tokens, halved until they fit the budget (fewer q blocks means
/// each kv block is fetched fewer times); computed in q sub-tiles of 16 tokens so that short q
/// blocks and the causal future cost little.
///
/// Measured (`rpa_profile`, upstream mixed list, heads 32/8, D 128, f32): kv blocks of 256 tokens
/// with q sub-tiles of 16 run half the interpreted instructions of 128 and 8 (103K vs 209K) for the
/// same HBM bytes; wall time is dominated by the arithmetic either way.
pub fn default_block_sizes(cfg: &RpaConfig) -> BlockSizes {
    let ps = cfg.page_size;
    let kv_block = |tokens: usize| (tokens / ps).clamp(1, cfg.pages_per_seq.max(1)) * ps;
    let sized = |bq: usize, bkv: usize| {
        let bq_compute = [16, 8].into_iter().find(|&c| bq.is_multiple_of(c)).unwrap_or(bq);
        BlockSizes { bq, bkv, bq_compute, bkv_compute: bkv }
    };
    let largest_q = match cfg.case {
        RpaCase::Decode => return sized(1, kv_block(256)),
        RpaCase::Prefill => cfg.chunk_prefill_size.clamp(1, 128),
        RpaCase::Mixed => 128,
    };
    let fits = |b: &BlockSizes| vmem_bytes(&RpaConfig { blocks: *b, ..cfg.clone() }) <= HOST_VMEM_BUDGET;
    let halvings = || std::iter::successors(Some(largest_q), |&bq| (bq > 1).then_some(bq / 2));
    [256, 128]
        .into_iter()
        .flat_map(|tokens| halvings().map(move |bq| sized(bq, kv_block(tokens))))
        .find(fits)
        .unwrap_or(sized(1, kv_block(128)))
}

/// The scoped VMEM limit a host kernel of `cfg` declares: `None` while its buffers fit every
/// generation's default scoped VMEM, else the VMEM of the smallest chip (v7x's 64 MiB). The host
/// defaults need it only when even their smallest blocks miss [`HOST_VMEM_BUDGET`] (many kv heads,
/// wide heads or large pages); it keeps such kernels within the checks of every generation.
pub fn host_vmem_limit(cfg: &RpaConfig) -> Option<usize> {
    let smallest = |bytes: fn(TpuTarget) -> usize| TpuTarget::ALL.map(bytes).into_iter().fold(usize::MAX, usize::min);
    (vmem_bytes(cfg) > smallest(TpuTarget::default_scoped_vmem_bytes)).then(|| smallest(TpuTarget::vmem_bytes))
}

/// Default block sizes of PJRT-CPU: the host defaults without q sub-tiles. Every sub-tile is
/// unrolled per kv head into the program, and XLA:CPU's compile time grows with it; the wasted
/// rows cost little at run time there.
pub fn cpu_block_sizes(cfg: &RpaConfig) -> BlockSizes {
    let b = default_block_sizes(cfg);
    BlockSizes { bq_compute: b.bq, ..b }
}

/// Upstream's default block sizes for a TPU generation (tpu-inference v3 `get_default_block_sizes`),
/// adjusted to the divisibility rules the heuristic can break: `bq_compute` divides `bq`, kv sizes
/// are whole pages and `bkv_compute` divides `bkv`.
pub fn tpu_block_sizes(target: TpuTarget, cfg: &RpaConfig) -> BlockSizes {
    let ps = cfg.page_size;
    let max_kv = cfg.pages_per_seq * ps;
    let pages = |tokens: usize| (tokens / ps).clamp(1, cfg.pages_per_seq.max(1)) * ps;
    // A kv fetch of about 16 MiB at peak: tokens of 2·Hkv heads (rounded to a power of two).
    let combined = (2 * cfg.num_kv_heads).next_power_of_two();
    let peak = 16 * MIB * cfg.kv_dtype.packing() / 4 / cfg.head_dim / combined;
    let g = cfg.group.next_power_of_two();
    let max_q = match cfg.case {
        RpaCase::Decode => 1,
        RpaCase::Prefill => cfg.chunk_prefill_size,
        RpaCase::Mixed => cfg.max_num_tokens,
    }
    .next_power_of_two();
    let (bq, bkv, bq_c, bkv_c) = match (cfg.case, target) {
        (RpaCase::Decode, _) => (1, peak.min(max_kv), 1, peak.min(max_kv)),
        (_, TpuTarget::V7x) => {
            ((2048 / g).min(max_q / 2), 2048.min(max_kv / 2), (1024 / g).min(max_q / 2), 512.min(max_kv / 2))
        }
        _ => ((1024 / g).min(max_q / 2), 1024.min(max_kv), (512 / g).min(max_q), 512.min(max_kv / 2)),
    };
    let bq_compute = bq_c.clamp(1, bq.max(1));
    let bq = (bq.max(1) / bq_compute) * bq_compute;
    let bkv_compute = pages(bkv_c).min(pages(bkv));
    let bkv = (pages(bkv) / bkv_compute) * bkv_compute;
    fit_tpu_vmem(target, cfg, BlockSizes { bq, bkv, bq_compute, bkv_compute })
}

/// The share of a chip's VMEM the kernel's own buffers may take; the rest is for Mosaic's internal
/// scratch and register spills (libtpu reported 5.5 MiB of spill slots for f32 q blocks of 512
/// tokens × 4 heads on v7x, where the heuristic's blocks alone took all 64 MiB).
pub const TPU_VMEM_SHARE: (usize, usize) = (3, 4);

/// `b` with q blocks, then kv blocks, halved until the buffers fit [`TPU_VMEM_SHARE`] of the VMEM
/// (upstream's heuristic is tuned for 16-bit data; f32 needs twice the room).
fn fit_tpu_vmem(target: TpuTarget, cfg: &RpaConfig, mut b: BlockSizes) -> BlockSizes {
    let budget = target.vmem_bytes() * TPU_VMEM_SHARE.0 / TPU_VMEM_SHARE.1;
    let ps = cfg.page_size;
    // Halves `n` (keeping a multiple of the sub-tile `c`, itself capped): the new (n, c).
    let halve = |n: usize, c: usize| {
        let c = c.min((n / 2).max(1));
        ((n / 2).max(1) / c * c, c)
    };
    while vmem_bytes(&RpaConfig { blocks: b, ..cfg.clone() }) > budget {
        if b.bq > 1 {
            (b.bq, b.bq_compute) = halve(b.bq, b.bq_compute);
        } else if b.bkv > ps {
            let (pages, compute) = halve(b.bkv / ps, b.bkv_compute / ps);
            (b.bkv, b.bkv_compute) = (pages * ps, compute * ps);
        } else {
            break;
        }
    }
    b
}

/// The scoped VMEM limit a TPU launch of `cfg` needs: `None` while the kernel's buffers take at most
/// half the generation's default (the rest is left to Mosaic's temporaries — the logits and
/// probabilities of a compute sub-tile live in VMEM too), else the whole VMEM, as upstream's
/// `vmem_limit_bytes` default does.
pub fn tpu_vmem_limit(target: TpuTarget, cfg: &RpaConfig) -> Option<usize> {
    (vmem_bytes(cfg) > target.default_scoped_vmem_bytes() / 2).then(|| target.vmem_bytes())
}
