//! Matmul.

use super::super::*;

impl<'k> Machine<'k> {
    /// `acc`-accumulated products, one per batch element; a transposed lhs is transposed first (the
    /// sums run over the contraction in order either way).
    pub(crate) fn exec_matmul(
        &mut self,
        inst: &'k Inst,
        loc: Loc,
        lhs: ValueId,
        rhs: ValueId,
        [transpose_lhs, transpose_rhs]: [bool; 2],
        acc: DType,
    ) -> R<()> {
        let (av, bv) = (self.vv(lhs), self.vv(rhs));
        let rank = av.shape.len();
        let batch: usize = av.shape[..rank - 2].iter().product();
        let [(lk, lm), (_, rn)] = matmul_dims(rank, transpose_lhs, transpose_rhs);
        let (m, kk, n) = (av.shape[lm], av.shape[lk], bv.shape[rn]);
        let (a_len, b_len) = (m * kk, kk * n);
        let out = match (&av.data, &bv.data) {
            (Data::F(a), Data::F(b)) => {
                let mut c = Vec::with_capacity(batch * m * n);
                for i in 0..batch {
                    let ai = lhs_rows(&a[i * a_len..(i + 1) * a_len], kk, m, transpose_lhs);
                    c.extend(matmul_f32(&ai, &b[i * b_len..(i + 1) * b_len], m, kk, n, transpose_rhs));
                }
                round_vec(acc, &mut c);
                Data::F(c)
            }
            (Data::I(a), Data::I(b)) => {
                let mut c = Vec::with_capacity(batch * m * n);
                for i in 0..batch {
                    let ai = lhs_rows(&a[i * a_len..(i + 1) * a_len], kk, m, transpose_lhs);
                    c.extend(matmul_i64(&ai, &b[i * b_len..(i + 1) * b_len], m, kk, n, transpose_rhs));
                }
                wrap_vec(acc, &mut c);
                Data::I(c)
            }
            _ => unreachable!("type rule: matmul operands are both float or both int"),
        };
        let start = self.clock;
        self.tick(batch * m * n * kk / 64);
        if self.opts.trace {
            let b = if batch > 1 { format!("{batch}x") } else { String::new() };
            self.events.push(Event {
                kind: EventKind::Compute,
                track: "compute".into(),
                name: format!("matmul {b}{m}x{kk}x{n}"),
                loc,
                start,
                end: self.clock,
                bytes: 0,
            });
        }
        let mut shape = av.shape[..rank - 2].to_vec();
        shape.extend([m, n]);
        self.set(inst, Val::V(Rc::new(VecVal { shape, data: out })));
        Ok(())
    }
}

/// The lhs as `[m, k]` rows: `a` itself, or `a[k, m]` transposed.
fn lhs_rows<T: Copy>(a: &[T], k: usize, m: usize, transposed: bool) -> std::borrow::Cow<'_, [T]> {
    if !transposed {
        return std::borrow::Cow::Borrowed(a);
    }
    std::borrow::Cow::Owned((0..m * k).map(|i| a[(i % k) * m + i / k]).collect())
}
