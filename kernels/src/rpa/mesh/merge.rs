//! The context-parallel merge: partial attentions over disjoint key ranges, each with its
//! log-sum-exp, combine exactly into the attention over all keys:
//! `lse = log Σ_c exp(lse_c)`, `out = Σ_c exp(lse_c − lse) · out_c`.
//! A range with no visible key has `lse_c = −∞` and adds nothing; attention sinks join as one more
//! term with `lse = sink` and output 0.

use super::RpaMesh;
use crate::rpa::reference::RpaInputs;
use crate::rpa::RpaOptions;
use rpa_dsl::{Array, DType};

/// One device's result: `[tokens, heads, D]` and, if any, its f32 log-sum-exp `[tokens, heads]`.
#[derive(Clone, Debug)]
pub struct Partial {
    pub output: Array,
    pub lse: Option<Array>,
}

/// The merged, gathered results of a mesh call.
pub struct Merged {
    pub output: Array,
    pub head_shards: Vec<Array>,
    pub lse: Option<Array>,
}

/// Merges each tp rank's partials over `cp`, then gathers the tp ranks' heads.
pub fn merge_mesh(mesh: RpaMesh, x: &RpaInputs, opts: &RpaOptions, mut parts: Vec<Partial>) -> Merged {
    let mut shards = Vec::with_capacity(mesh.tp);
    for t in 0..mesh.tp {
        let of_t: Vec<Partial> = (0..mesh.cp).map(|c| parts[c * mesh.tp + t].clone()).collect();
        let sinks = opts.attention_sink.as_ref().map(|s| {
            let heads = mesh.q_heads(x.num_q_heads(), t);
            heads.map(|h| s.get_f64(h)).collect::<Vec<_>>()
        });
        shards.push(if mesh.cp == 1 {
            of_t.into_iter().next().expect("cp 1")
        } else {
            merge_lse(&of_t, sinks.as_deref())
        });
    }
    parts.clear();
    let output = gather_heads(shards.iter().map(|s| &s.output));
    let lse = opts.return_lse.then(|| gather_heads(shards.iter().map(|s| s.lse.as_ref().expect("lse"))));
    Merged { output, head_shards: shards.into_iter().map(|s| s.output).collect(), lse }
}

/// Merges partials of the same heads over disjoint key ranges. Tokens no sequence owns (NaN
/// log-sum-exp everywhere) keep the first partial's row.
pub fn merge_lse(parts: &[Partial], sinks: Option<&[f64]>) -> Partial {
    let first = &parts[0].output;
    let (t, h, d) = (first.shape()[0], first.shape()[1], first.shape()[2]);
    let lses: Vec<&Array> = parts.iter().map(|p| p.lse.as_ref().expect("a cp partial has its lse")).collect();
    let mut output = first.clone();
    let mut lse = Array::from_f64(DType::F32, &[t, h], &vec![f64::NAN; t * h]);
    for tok in 0..t {
        for head in 0..h {
            let i = tok * h + head;
            let mut terms: Vec<f64> = lses.iter().map(|l| l.get_f64(i)).collect();
            if terms.iter().all(|v| v.is_nan()) {
                continue;
            }
            terms.extend(sinks.map(|s| s[head]));
            let m = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let total =
                if m == f64::NEG_INFINITY { m } else { m + terms.iter().map(|v| (v - m).exp()).sum::<f64>().ln() };
            lse.set_f64(i, total);
            for x in 0..d {
                let mut acc = 0.0;
                for (p, l) in parts.iter().zip(&lses) {
                    let li = l.get_f64(i);
                    if li > f64::NEG_INFINITY {
                        acc += (li - total).exp() * p.output.get_f64(i * d + x);
                    }
                }
                output.set_f64(i * d + x, acc);
            }
        }
    }
    Partial { output, lse: Some(lse) }
}

/// `[tokens, heads_t, ...]` per tp rank → `[tokens, Σ heads_t, ...]`.
pub fn gather_heads<'a>(shards: impl Iterator<Item = &'a Array>) -> Array {
    let shards: Vec<&Array> = shards.collect();
    let (t, inner) = (shards[0].shape()[0], shards[0].shape()[2..].iter().product::<usize>());
    let heads: usize = shards.iter().map(|s| s.shape()[1]).sum();
    let mut bits = Vec::with_capacity(t * heads * inner);
    for tok in 0..t {
        for s in &shards {
            let row = s.shape()[1] * inner;
            bits.extend_from_slice(&s.bits()[tok * row..(tok + 1) * row]);
        }
    }
    let mut shape = vec![t, heads];
    shape.extend_from_slice(&shards[0].shape()[2..]);
    Array::from_bits(shards[0].dtype(), &shape, bits)
}
