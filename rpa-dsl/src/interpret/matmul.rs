//! Matrix products of interpret mode.
//!
//! f32 semantics (every code path, every machine): `C[i, j]` starts at `+0` and accumulates
//! `A[i, t] · B[t, j]` for `t = 0, 1, …, k - 1` in order, with a rounded multiply and a rounded add
//! per step (no fused multiply-add, no reassociation). Skipping a step whose `A[i, t]` is zero is
//! exact when row `t` of `B` is finite (`c + ±0 = c`, as `c` never becomes `-0` from `+0`), so it is
//! done then; with a NaN or infinity in the row the step runs (IEEE `0 · inf = NaN`). A NaN result
//! is the canonical `f32::NAN` (arithmetic leaves a NaN's sign and payload unspecified).

/// Rows × columns of `C` held in locals by the register-blocked kernel.
const MR: usize = 4;
const NR: usize = 16;

/// `a[m, k] @ b[k, n]` (or `b[n, k]ᵀ` with `transpose_rhs`) in f32, with the semantics above.
/// Compiled for AVX2 too and picked at run time (same bits: no FMA contraction either way).
#[multiversion::multiversion(targets("x86_64+avx2"))]
pub(crate) fn matmul_f32(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, transpose_rhs: bool) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    if m == 0 || n == 0 || k == 0 {
        return c;
    }
    // magnitude[t]: the largest |x| bit pattern in row t of B (as [k, n]); the row is finite if
    // that is below the infinity pattern. (Integer max, which vectorises.)
    let abs_bits = |x: &f32| x.to_bits() & 0x7fff_ffff;
    let mut magnitude = vec![0u32; k];
    if transpose_rhs {
        for row in b.chunks_exact(k) {
            for (mx, x) in magnitude.iter_mut().zip(row) {
                *mx = (*mx).max(abs_bits(x));
            }
        }
    } else {
        for (mx, row) in magnitude.iter_mut().zip(b.chunks_exact(n)) {
            *mx = row.iter().map(abs_bits).fold(0, u32::max);
        }
    }
    // Per block of MR rows, the steps t it runs: not those whose A entries are all zero while
    // row t of B is finite (exact to skip, see above).
    let mut nonzero = vec![false; k];
    let blocks: Vec<(usize, Vec<u32>)> = (0..m)
        .step_by(MR)
        .map(|i0| {
            nonzero.fill(false);
            for row in a[i0 * k..m.min(i0 + MR) * k].chunks_exact(k) {
                for (nz, &x) in nonzero.iter_mut().zip(row) {
                    *nz |= x != 0.0;
                }
            }
            let run = |t: usize| nonzero[t] || magnitude[t] >= f32::INFINITY.to_bits();
            (i0, (0..k).filter(|&t| run(t)).map(|t| t as u32).collect())
        })
        .collect();
    let mut panel = vec![0f32; k * NR];
    for j0 in (0..n).step_by(NR) {
        let cols = NR.min(n - j0);
        // Columns j0.. of B as rows of NR (stride `ld`): B itself when it is [k, n] and the panel
        // is whole, else packed into `panel` (zero-padded).
        let (bp, ld) = if !transpose_rhs && cols == NR {
            (&b[j0..], n)
        } else {
            if cols < NR {
                panel.fill(0.0);
            }
            if transpose_rhs {
                for (j, row) in b[j0 * k..(j0 + cols) * k].chunks_exact(k).enumerate() {
                    for (t, &x) in row.iter().enumerate() {
                        panel[t * NR + j] = x;
                    }
                }
            } else {
                for t in 0..k {
                    panel[t * NR..t * NR + cols].copy_from_slice(&b[t * n + j0..t * n + j0 + cols]);
                }
            }
            (&panel[..], NR)
        };
        for (i0, steps) in &blocks {
            let (i0, rows) = (*i0, MR.min(m - i0));
            let c = &mut c[i0 * n + j0..];
            if rows == MR {
                tile::<MR>(&a[i0 * k..], (bp, ld), steps, c, (k, n, cols));
            } else {
                for r in 0..rows {
                    tile::<1>(&a[(i0 + r) * k..], (bp, ld), steps, &mut c[r * n..], (k, n, cols));
                }
            }
        }
    }
    canonical_nans(&mut c);
    c
}

fn canonical_nans(c: &mut [f32]) {
    for x in c.iter_mut() {
        *x = if x.is_nan() { f32::NAN } else { *x };
    }
}

/// `R` rows of `C` (`a` starts at their first row) times `NR` columns of B (row `t` at
/// `bp[t · ld..]`) over `steps`, accumulated in registers; the first `cols` columns are stored
/// into `c` (row stride `n`).
#[inline(always)]
fn tile<const R: usize>(
    a: &[f32],
    (bp, ld): (&[f32], usize),
    steps: &[u32],
    c: &mut [f32],
    (k, n, cols): (usize, usize, usize),
) {
    let mut acc = [[0f32; NR]; R];
    for &t in steps {
        let t = t as usize;
        let bv: &[f32; NR] = bp[t * ld..t * ld + NR].try_into().expect("NR columns");
        let av: [f32; R] = std::array::from_fn(|r| a[r * k + t]);
        for r in 0..R {
            for j in 0..NR {
                acc[r][j] += av[r] * bv[j];
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        c[r * n..r * n + cols].copy_from_slice(&acc[..cols]);
    }
}

/// `a[m, k] @ b[k, n]` (or `b[n, k]ᵀ`) on integers, wrapping (the caller wraps to the dtype).
pub(crate) fn matmul_i64(a: &[i64], b: &[i64], m: usize, k: usize, n: usize, transpose_rhs: bool) -> Vec<i64> {
    let mut c = vec![0i64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0i64;
            for t in 0..k {
                let bv = if transpose_rhs { b[j * k + t] } else { b[t * n + j] };
                s = s.wrapping_add(a[i * k + t].wrapping_mul(bv));
            }
            c[i * n + j] = s;
        }
    }
    c
}

/// The definition: one output element at a time, in `k` order, without skipping.
#[cfg(test)]
pub(crate) fn matmul_f32_naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, transpose_rhs: bool) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f32;
            for t in 0..k {
                let bv = if transpose_rhs { b[j * k + t] } else { b[t * n + j] };
                s += a[i * k + t] * bv;
            }
            c[i * n + j] = s;
        }
    }
    canonical_nans(&mut c);
    c
}
