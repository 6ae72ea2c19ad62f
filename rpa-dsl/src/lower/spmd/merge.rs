//! The log-sum-exp merge ([`Collective::LseMerge`](crate::mesh::Collective)) in StableHLO: the
//! same f32 steps as its host semantics in `mesh::collective`.

use super::Region;
use crate::lower::stablehlo::tensor_type;
use crate::DType;

const NEG_INF: &str = "0xFF800000";
const NAN: &str = "0x7FC00000";

impl Region {
    fn constant(&mut self, bits: &str, t: &str) -> String {
        self.op(format!("stablehlo.constant dense<{bits}> : {t}"))
    }

    fn binary(&mut self, op: &str, a: &str, b: &str, t: &str) -> String {
        self.op(format!("stablehlo.{op} {a}, {b} : {t}"))
    }

    fn select(&mut self, c: &str, a: &str, b: &str, ct: &str, t: &str) -> String {
        self.op(format!("stablehlo.select {c}, {a}, {b} : ({ct}, {t}, {t}) -> {t}"))
    }

    fn is_neg_inf(&mut self, x: &str, t: &str, shape: &[usize]) -> String {
        let ninf = self.constant(NEG_INF, t);
        let bt = tensor_type(DType::Bool, shape);
        self.op(format!("stablehlo.compare EQ, {x}, {ninf}, FLOAT : ({t}, {t}) -> {bt}"))
    }

    fn broadcast(&mut self, x: &str, dims: &[usize], from: &str, to: &str) -> String {
        let dims = dims.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
        self.op(format!("stablehlo.broadcast_in_dim {x}, dims = [{dims}] : ({from}) -> {to}"))
    }

    /// Merges `out` (of type `out_t`) and `lse` (f32 of shape `lse_shape`) over `groups`:
    /// `m = max lse_i` (0 where it is −∞), `e_i = exp(lse_i − m)`, `s = Σ e_i`,
    /// `lse = m + log s`, `out = Σ_{lse_i > −∞} e_i · out_i / s` (NaN where every `lse_i` is −∞).
    pub(super) fn lse_merge(
        &mut self,
        out_t: &(DType, Vec<usize>),
        lse_shape: &[usize],
        out: &str,
        lse: &str,
        lse_dims: &[usize],
        groups: &[Vec<usize>],
    ) -> (String, String) {
        let (odt, oshape) = (out_t.0, &out_t.1);
        let lt = tensor_type(DType::F32, lse_shape);
        let (ot, of) = (tensor_type(odt, oshape), tensor_type(DType::F32, oshape));
        let (lb, ob) = (tensor_type(DType::Bool, lse_shape), tensor_type(DType::Bool, oshape));
        let m = self.all_reduce(lse, &lt, "maximum", groups);
        let all_empty = self.is_neg_inf(&m, &lt, lse_shape);
        let zero = self.constant("0.0", &lt);
        let m = self.select(&all_empty, &zero, &m, &lb, &lt);
        let d = self.binary("subtract", lse, &m, &lt);
        let e = self.op(format!("stablehlo.exponential {d} : {lt}"));
        let s = self.all_reduce(&e, &lt, "add", groups);
        let log_s = self.op(format!("stablehlo.log {s} : {lt}"));
        let merged_lse = self.binary("add", &m, &log_s, &lt);
        let x = if odt == DType::F32 {
            out.to_string()
        } else {
            self.op(format!("stablehlo.convert {out} : ({ot}) -> {of}"))
        };
        let eb = self.broadcast(&e, lse_dims, &lt, &of);
        let weighted = self.binary("multiply", &eb, &x, &of);
        let empty = self.is_neg_inf(lse, &lt, lse_shape);
        let empty = self.broadcast(&empty, lse_dims, &lb, &ob);
        let zero = self.constant("0.0", &of);
        let weighted = self.select(&empty, &zero, &weighted, &ob, &of);
        let acc = self.all_reduce(&weighted, &of, "add", groups);
        let sb = self.broadcast(&s, lse_dims, &lt, &of);
        let q = self.binary("divide", &acc, &sb, &of);
        let all_empty = self.broadcast(&all_empty, lse_dims, &lb, &ob);
        let nan = self.constant(NAN, &of);
        let q = self.select(&all_empty, &nan, &q, &ob, &of);
        let q = if odt == DType::F32 { q } else { self.op(format!("stablehlo.convert {q} : ({of}) -> {ot}")) };
        (q, merged_lse)
    }
}
