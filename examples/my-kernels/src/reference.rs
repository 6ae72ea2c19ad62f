//! Plain-Rust references (f64) of the kernels: what the tests and `my-kernels run` check against.

/// RMSNorm of every row of `x` (`cols` wide) with the weight `w`.
pub fn rms_norm(x: &[f64], w: &[f64], cols: usize, eps: f64) -> Vec<f64> {
    let mut o = Vec::with_capacity(x.len());
    for row in x.chunks(cols) {
        let mean_square = row.iter().map(|v| v * v).sum::<f64>() / cols as f64;
        let scale = 1.0 / (mean_square + eps).sqrt();
        o.extend(row.iter().zip(w).map(|(v, w)| v * scale * w));
    }
    o
}

/// Causal softmax attention of `heads` heads of `[seq, d]` queries, keys and values, scaled by
/// `1 / sqrt(d)`.
pub fn causal_attention(q: &[f64], k: &[f64], v: &[f64], heads: usize, seq: usize, d: usize) -> Vec<f64> {
    let scale = 1.0 / (d as f64).sqrt();
    let mut o = vec![0.0; heads * seq * d];
    for h in 0..heads {
        let at = |row: usize| h * seq * d + row * d..h * seq * d + (row + 1) * d;
        for i in 0..seq {
            let qi = &q[at(i)];
            let scores: Vec<f64> =
                (0..=i).map(|j| qi.iter().zip(&k[at(j)]).map(|(a, b)| a * b).sum::<f64>() * scale).collect();
            let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let p: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
            let sum: f64 = p.iter().sum();
            let out = &mut o[at(i)];
            for (j, pj) in p.iter().enumerate() {
                for (x, vj) in out.iter_mut().zip(&v[at(j)]) {
                    *x += pj / sum * vj;
                }
            }
        }
    }
    o
}

/// The paged gather: sequence `s` gets the pages `table[s, ..]` of `pool` (`[_, page, d]`) that hold
/// its `lens[s]` rows, then zeros; `shape` is `(pages_per_seq, page, d)`.
pub fn paged_gather(table: &[i64], lens: &[i64], pool: &[f64], shape: (usize, usize, usize)) -> Vec<f64> {
    let (pps, page, d) = shape;
    let mut o = vec![0.0; lens.len() * pps * page * d];
    for (s, &len) in lens.iter().enumerate() {
        let pages = (len.max(0) as usize).div_ceil(page);
        for p in 0..pages {
            let src = table[s * pps + p] as usize * page * d;
            let dst = (s * pps + p) * page * d;
            o[dst..dst + page * d].copy_from_slice(&pool[src..src + page * d]);
        }
    }
    o
}
