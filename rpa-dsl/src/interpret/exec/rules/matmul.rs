//! Matmul.

use super::super::*;

impl<'k> Machine<'k> {
    pub(crate) fn exec_matmul(
        &mut self,
        inst: &'k Inst,
        loc: Loc,
        lhs: ValueId,
        rhs: ValueId,
        transpose_rhs: bool,
        acc: DType,
    ) -> R<()> {
        let (av, bv) = (self.vv(lhs), self.vv(rhs));
        let (m, kk) = (av.shape[0], av.shape[1]);
        let n = if transpose_rhs { bv.shape[0] } else { bv.shape[1] };
        let out = match (&av.data, &bv.data) {
            (Data::F(a), Data::F(b)) => {
                let mut c = matmul_f32(a, b, m, kk, n, transpose_rhs);
                round_vec(acc, &mut c);
                Data::F(c)
            }
            (Data::I(a), Data::I(b)) => {
                let mut c = matmul_i64(a, b, m, kk, n, transpose_rhs);
                wrap_vec(acc, &mut c);
                Data::I(c)
            }
            _ => unreachable!("type rule: matmul operands are both float or both int"),
        };
        let start = self.clock;
        self.tick(m * n * kk / 64);
        if self.opts.trace {
            self.events.push(Event {
                kind: EventKind::Compute,
                track: "compute".into(),
                name: format!("matmul {m}x{kk}x{n}"),
                loc,
                start,
                end: self.clock,
                bytes: 0,
            });
        }
        self.set(inst, Val::V(Rc::new(VecVal { shape: vec![m, n], data: out })));
        Ok(())
    }
}
