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

    /// `x` (of `dt` and lse's shape `from`) broadcast to out's shape `to`: lse dim `k` is out dim
    /// `dims[k]`; lse's dims after those are copies, of which the first element is taken.
    fn broadcast(&mut self, x: &str, dt: DType, dims: &[usize], from: &[usize], to: &[usize]) -> String {
        let mut x = x.to_string();
        let mut from_t = tensor_type(dt, from);
        if dims.len() < from.len() {
            let kept = &from[..dims.len()];
            let mut limit = kept.to_vec();
            limit.resize(from.len(), 1);
            let list = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
            let sliced = tensor_type(dt, &limit);
            x = self.op(format!(
                "\"stablehlo.slice\"({x}) {{start_indices = array<i64: {}>, limit_indices = array<i64: {}>, strides = array<i64: {}>}} : ({from_t}) -> {sliced}",
                list(&vec![0; from.len()]),
                list(&limit),
                list(&vec![1; from.len()])
            ));
            from_t = tensor_type(dt, kept);
            x = self.op(format!("stablehlo.reshape {x} : ({sliced}) -> {from_t}"));
        }
        let dims = dims.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
        self.op(format!("stablehlo.broadcast_in_dim {x}, dims = [{dims}] : ({from_t}) -> {}", tensor_type(dt, to)))
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
        let eb = self.broadcast(&e, DType::F32, lse_dims, lse_shape, oshape);
        let weighted = self.binary("multiply", &eb, &x, &of);
        let empty = self.is_neg_inf(lse, &lt, lse_shape);
        let empty = self.broadcast(&empty, DType::Bool, lse_dims, lse_shape, oshape);
        let zero = self.constant("0.0", &of);
        let weighted = self.select(&empty, &zero, &weighted, &ob, &of);
        let acc = self.all_reduce(&weighted, &of, "add", groups);
        let sb = self.broadcast(&s, DType::F32, lse_dims, lse_shape, oshape);
        let q = self.binary("divide", &acc, &sb, &of);
        let all_empty = self.broadcast(&all_empty, DType::Bool, lse_dims, lse_shape, oshape);
        let nan = self.constant(NAN, &of);
        let q = self.select(&all_empty, &nan, &q, &ob, &of);
        let q = if odt == DType::F32 { q } else { self.op(format!("stablehlo.convert {q} : ({of}) -> {ot}")) };
        (q, merged_lse)
    }
}
