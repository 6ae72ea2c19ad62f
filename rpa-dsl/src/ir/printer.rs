//! Stable text form of a kernel.
//!
//! One line per parameter and instruction, nested regions indented by two spaces, values as `%N`
//! (their [`ValueId`]) and mutable locals as `$N` (their [`VarId`]). The text depends only on the IR
//! (no hash-map order, no addresses), so it is deterministic and diff-friendly:
//!
//! ```text
//! kernel add grid=[4] semantics=[arbitrary] vmem_limit=none {
//!   params {
//!     %2 = input x: hbm f32[32, 128] block [8, 128] in vmem map(%0) {
//!       %1 = const 0 : i32
//!     } -> [%0, %1]
//!     %5 = output o: hbm f32[32, 128] block [8, 128] in vmem map(%3) {
//!       %4 = const 0 : i32
//!     } -> [%3, %4]
//!   }
//!   %6 = load %2 : vector<f32[8, 128]>
//!   %7 = const 1.0 : f32
//!   %8 = add %6, %7 : vector<f32[8, 128]>
//!   store %8 to %5
//! }
//! ```
//!
//! Every instruction line is `[%R = ]op operands attributes[ : result type]`; region ops open a `{`
//! and close it on a line of its own. With [`PrintOptions::locs`] each parameter, instruction and the
//! kernel header end in `  // file:line:col`.

use super::{
    fmt_shape, Block, DimSemantics, Indexer, Inst, Kernel, Literal, Loc, Op, Param, RefType, SliceSize, Type, ValueId,
    VarId,
};
use crate::dtype::DType;
use crate::target::MIB;
use std::fmt;

/// How to print a kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PrintOptions {
    /// Append `  // file:line:col` (the author's source location) to every line that has one.
    pub locs: bool,
}

/// The kernel as stable text (see the module documentation for the format).
pub fn print(kernel: &Kernel, opts: PrintOptions) -> String {
    let mut p = Printer { k: kernel, opts, out: String::new(), indent: 0 };
    p.kernel();
    p.out
}

/// Prints with source locations (`print(kernel, PrintOptions { locs: true })`).
impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print(self, PrintOptions { locs: true }))
    }
}

struct Printer<'a> {
    k: &'a Kernel,
    opts: PrintOptions,
    out: String,
    indent: usize,
}

fn val(v: ValueId) -> String {
    format!("%{}", v.0)
}

fn var(v: VarId) -> String {
    format!("${}", v.0)
}

fn vals(vs: &[ValueId]) -> String {
    vs.iter().map(|&v| val(v)).collect::<Vec<_>>().join(", ")
}

/// `hbm f32[32, 128]`
fn ref_type(r: &RefType) -> String {
    format!("{} {}{}", r.space.name(), r.dtype, fmt_shape(&r.shape))
}

fn literal(dtype: DType, value: &Literal) -> String {
    match (dtype, value) {
        (DType::Bool, Literal::Int(0)) => "false".into(),
        (DType::Bool, Literal::Int(1)) => "true".into(),
        (_, Literal::Int(i)) => i.to_string(),
        // `{:?}` is the shortest representation that round-trips (`1.0`, `1e-7`, `NaN`, `inf`).
        (_, Literal::Float(x)) => format!("{x:?}"),
    }
}

/// `64MiB` when the limit is a whole number of MiB, else the byte count (`1000B`).
fn limit(bytes: Option<usize>) -> String {
    match bytes {
        None => "none".into(),
        Some(b) if b % MIB == 0 && b > 0 => format!("{}MiB", b / MIB),
        Some(b) => format!("{b}B"),
    }
}

fn indexer(ix: &Indexer) -> String {
    match ix {
        Indexer::At(i) => val(*i),
        Indexer::Slice { start, size: SliceSize::Static(n) } => format!("ds({}, {n})", val(*start)),
        Indexer::Slice { start, size: SliceSize::Dynamic { size, max } } => {
            format!("ds({}, {}<={max})", val(*start), val(*size))
        }
        Indexer::Full => ":".into(),
    }
}

impl Printer<'_> {
    fn line(&mut self, text: &str, loc: Option<Loc>) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        if let (true, Some(loc)) = (self.opts.locs, loc) {
            self.out.push_str("  // ");
            self.out.push_str(&loc.to_string());
        }
        self.out.push('\n');
    }

    /// The recorded type of a value (robust against a malformed values table).
    fn ty(&self, v: ValueId) -> String {
        match self.k.values.get(v.0 as usize) {
            Some(t) => t.to_string(),
            None => "<no type>".into(),
        }
    }

    fn var_ty(&self, v: VarId) -> String {
        match self.k.vars.get(v.0 as usize) {
            Some(t) => t.to_string(),
            None => "<no type>".into(),
        }
    }

    fn kernel(&mut self) {
        let k = self.k;
        let sems: Vec<&str> = k.semantics.iter().map(|s: &DimSemantics| s.name()).collect();
        let head = format!(
            "kernel {} grid={} semantics=[{}] vmem_limit={} {{",
            k.name,
            fmt_shape(&k.grid),
            sems.join(", "),
            limit(k.vmem_limit)
        );
        self.line(&head, Some(k.loc));
        self.indent += 1;
        self.line("params {", None);
        self.indent += 1;
        for p in &k.params {
            self.param(p);
        }
        self.indent -= 1;
        self.line("}", None);
        self.insts(&k.body);
        self.indent -= 1;
        self.line("}", None);
    }

    fn param(&mut self, p: &Param) {
        let mut text = format!("{} = {} {}: ", val(p.value), p.role.name(), p.name);
        match &p.array {
            Some(a) => text.push_str(&ref_type(a)),
            None => match self.k.values.get(p.value.0 as usize) {
                Some(Type::Ref(r)) => text.push_str(&ref_type(r)),
                Some(t) => text.push_str(&t.to_string()),
                None => text.push_str("<no type>"),
            },
        }
        if let Some(i) = p.alias_of {
            match self.k.operands().nth(i) {
                Some(target) => text.push_str(&format!(" aliases {}", target.name)),
                None => text.push_str(&format!(" aliases operand#{i}")),
            }
        }
        let Some(bs) = &p.block else {
            self.line(&text, Some(p.loc));
            return;
        };
        let map = &bs.index_map;
        text.push_str(&format!(
            " block {} in {} map({})",
            fmt_shape(&bs.block_shape),
            bs.space.name(),
            vals(&map.grid_indices)
        ));
        if let Some(n) = bs.buffers {
            text.push_str(&format!(" buffered({n})"));
        }
        let results = format!("[{}]", vals(&map.results));
        if map.body.insts.is_empty() {
            text.push_str(&format!(" -> {results}"));
            self.line(&text, Some(p.loc));
        } else {
            text.push_str(" {");
            self.line(&text, Some(p.loc));
            self.block(&map.body);
            self.line(&format!("}} -> {results}"), None);
        }
    }

    /// The instructions of a region, one level deeper.
    fn block(&mut self, b: &Block) {
        self.indent += 1;
        self.insts(b);
        self.indent -= 1;
    }

    fn insts(&mut self, b: &Block) {
        for inst in &b.insts {
            self.inst(inst);
        }
    }

    fn inst(&mut self, inst: &Inst) {
        let res = inst.result.map(|r| format!("{} = ", val(r))).unwrap_or_default();
        let suffix = inst.result.map(|r| format!(" : {}", self.ty(r))).unwrap_or_default();
        let loc = Some(inst.loc);
        // `typed`: whether the line ends with the recorded result type. Ops whose attributes are
        // their type (`const`, `iota`) print the attributes in that place instead.
        let (text, typed) = match &inst.op {
            Op::Const { dtype, value } => (format!("const {} : {dtype}", literal(*dtype, value)), false),
            Op::ProgramId { axis } => (format!("program_id {axis}"), true),
            Op::NumPrograms { axis } => (format!("num_programs {axis}"), true),
            Op::Unary { op: _, x } => (format!("{} {}", inst.op.name(), val(*x)), true),
            Op::Binary { op: _, lhs, rhs } | Op::Compare { op: _, lhs, rhs } => {
                (format!("{} {}, {}", inst.op.name(), val(*lhs), val(*rhs)), true)
            }
            Op::Select { cond, on_true, on_false } => (format!("select {}", vals(&[*cond, *on_true, *on_false])), true),
            Op::Cast { x, to } => (format!("cast {} to {to}", val(*x)), true),
            Op::Bitcast { x, to } => (format!("bitcast {} to {to}", val(*x)), true),
            Op::MultipleOf { x, multiple } => (format!("multiple_of {} by {multiple}", val(*x)), true),
            Op::Iota { dtype, shape, dim } => {
                let t = Type::Vector { dtype: *dtype, shape: shape.clone() };
                (format!("iota dim={dim} : {t}"), false)
            }
            Op::Broadcast { x, shape } => (format!("broadcast {} to {}", val(*x), fmt_shape(shape)), true),
            Op::Reshape { x, shape } => (format!("reshape {} to {}", val(*x), fmt_shape(shape)), true),
            Op::Slice { x, start, shape } => {
                (format!("slice {} start={} shape={}", val(*x), fmt_shape(start), fmt_shape(shape)), true)
            }
            Op::Concat { xs, axis } => (format!("concat {} axis={axis}", vals(xs)), true),
            Op::Roll { x, shift, axis } => (format!("roll {} by {} axis={axis}", val(*x), val(*shift)), true),
            Op::Transpose { x, perm } => (format!("transpose {} perm={}", val(*x), fmt_shape(perm)), true),
            Op::Extract { x, index } => (format!("extract {}{}", val(*x), fmt_shape(index)), true),
            Op::Reduce { op: _, x, axis } | Op::ArgReduce { op: _, x, axis } => {
                (format!("{} {} axis={axis}", inst.op.name(), val(*x)), true)
            }
            Op::ReduceAll { op: _, x } => (format!("{} {}", inst.op.name(), val(*x)), true),
            Op::Matmul { lhs, rhs, transpose_lhs, transpose_rhs, acc } => {
                let tl = if *transpose_lhs { " transpose_lhs" } else { "" };
                let tr = if *transpose_rhs { " transpose_rhs" } else { "" };
                (format!("matmul {}, {}{tl}{tr} acc={acc}", val(*lhs), val(*rhs)), true)
            }
            Op::View { base, indexers } => {
                let ixs: Vec<String> = indexers.iter().map(indexer).collect();
                (format!("view {}[{}]", val(*base), ixs.join(", ")), true)
            }
            Op::RefReshape { base, shape } => (format!("ref_reshape {} to {}", val(*base), fmt_shape(shape)), true),
            Op::RefBitcast { base, to } => (format!("ref_bitcast {} to {to}", val(*base)), true),
            Op::Load { src } => (format!("load {}", val(*src)), true),
            Op::LoadStrided { src, strides, shape } => {
                (format!("load_strided {} strides={} shape={}", val(*src), fmt_shape(strides), fmt_shape(shape)), true)
            }
            Op::Store { dst, value, mask } => {
                let m = mask.map(|m| format!(" mask {}", val(m))).unwrap_or_default();
                (format!("store {} to {}{m}", val(*value), val(*dst)), true)
            }
            Op::StoreStrided { dst, value, strides } => {
                (format!("store_strided {} to {} strides={}", val(*value), val(*dst), fmt_shape(strides)), true)
            }
            Op::ScalarLoad { src, indices } => (format!("scalar_load {}[{}]", val(*src), vals(indices)), true),
            Op::ScalarStore { dst, indices, value } => {
                (format!("scalar_store {} to {}[{}]", val(*value), val(*dst), vals(indices)), true)
            }
            Op::DmaStart { src, dst, sem } | Op::DmaWait { src, dst, sem } => {
                (format!("{} {} -> {}, sem {}", inst.op.name(), val(*src), val(*dst), val(*sem)), true)
            }
            Op::SemSignal { sem, amount } | Op::SemWait { sem, amount } => {
                (format!("{} {} by {}", inst.op.name(), val(*sem), val(*amount)), true)
            }
            Op::VarDecl { var: v, init } => {
                let init = init.map(|i| format!(" = {}", val(i))).unwrap_or_default();
                (format!("var {} : {}{init}", var(*v), self.var_ty(*v)), true)
            }
            Op::VarGet { var: v } => (format!("var_get {}", var(*v)), true),
            Op::VarSet { var: v, value } => (format!("var_set {} = {}", var(*v), val(*value)), true),
            Op::For { lo, hi, index, body } => {
                let head = format!("{res}for {} in {}..{}{suffix} {{", val(*index), val(*lo), val(*hi));
                self.line(&head, loc);
                self.block(body);
                self.line("}", None);
                return;
            }
            Op::If { cond, then_body, else_body } => {
                self.line(&format!("{res}if {}{suffix} {{", val(*cond)), loc);
                self.block(then_body);
                if !else_body.insts.is_empty() {
                    self.line("} else {", None);
                    self.block(else_body);
                }
                self.line("}", None);
                return;
            }
            Op::While { cond_body, cond, body } => {
                self.line(&format!("{res}while{suffix} {{"), loc);
                self.block(cond_body);
                self.line(&format!("}} condition({}) do {{", val(*cond)), None);
                self.block(body);
                self.line("}", None);
                return;
            }
            Op::DebugPrint { message, args } => {
                let args = if args.is_empty() { String::new() } else { format!(" {}", vals(args)) };
                (format!("debug_print {message:?}{args}"), true)
            }
        };
        let suffix = if typed { suffix.as_str() } else { "" };
        self.line(&format!("{res}{text}{suffix}"), loc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::control::*;
    use crate::frontend::{build_kernel, cmp, copy, launch, program_id, zeros, Hbm, Scalar};
    use crate::ir::{ArgOp, BinaryOp, BlockSpec, CmpOp, Extent, IndexMap, MemSpace, ReduceOp, Role, SemKind, UnaryOp};
    use crate::DType::{self, *};

    /// A kernel with a blocked operand, an HBM operand, a DMA, a variable, a loop and an `if`.
    /// Returns the kernel and the lines of the DMA and of the loop.
    fn demo() -> (Kernel, u32, u32) {
        let mut lines = (0, 0);
        let k = build_kernel("demo", Loc::caller(), || {
            launch::grid(&[4]);
            let x = launch::input_blocked("x", F32, &[32, 128], &[8, 128], |g: &[Scalar]| {
                vec![g[0], launch::block_index(0)]
            });
            let y = launch::input::<Hbm>("y", F32, &[8, 128]);
            let o = launch::output_blocked(
                "o",
                F32,
                &[32, 128],
                &[8, 128],
                |g: &[Scalar]| vec![g[0], launch::block_index(0)],
                None,
            );
            let buf = launch::scratch_vmem("buf", F32, &[8, 128]);
            let sem = launch::dma_sems("sem", &[2]);
            lines.0 = line!() + 1;
            copy(y, buf, sem.at(0)).start_and_wait();
            let mut acc = MutInit::new(x.load()).__rpa_into_mut();
            lines.1 = line!() + 1;
            let lp = ForLoop::begin(0, 4);
            let sum = acc + buf.load();
            AssignTo::new(&mut acc).__rpa_assign(sum, 0, "acc");
            lp.end();
            let mut branch = If::begin(cmp::gt(program_id(0), 1));
            if branch.then_branch() {
                o.store(acc);
            }
            if branch.else_branch() {
                o.store(zeros(&[8, 128], F32));
            }
            branch.end();
        })
        .unwrap();
        (k, lines.0, lines.1)
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l.trim() == line)
    }

    #[test]
    fn prints_a_small_kernel() {
        let (k, _, _) = demo();
        let text = print(&k, PrintOptions::default());
        let expected = [
            "kernel demo grid=[4] semantics=[arbitrary] vmem_limit=none {",
            "params {",
            "%2 = input x: hbm f32[32, 128] block [8, 128] in vmem map(%0) {",
            "%1 = const 0 : i32",
            "} -> [%0, %1]",
            "%3 = input y: hbm f32[8, 128]",
            "%6 = output o: hbm f32[32, 128] block [8, 128] in vmem map(%4) {",
            "%7 = scratch buf: vmem f32[8, 128]",
            "%8 = scratch sem: dma_sem[2]",
            "%9 = const 0 : i32",
            "%10 = view %8[%9] : dma_sem[]",
            "dma_start %3 -> %7, sem %10",
            "dma_wait %3 -> %7, sem %10",
            "%11 = load %2 : vector<f32[8, 128]>",
            "var $0 : vector<f32[8, 128]> = %11",
            "for %14 in %12..%13 {",
            "%15 = load %7 : vector<f32[8, 128]>",
            "%16 = var_get $0 : vector<f32[8, 128]>",
            "%17 = add %16, %15 : vector<f32[8, 128]>",
            "var_set $0 = %17",
            "%18 = program_id 0 : i32",
            "%20 = gt %18, %19 : bool",
            "if %20 {",
            "%21 = var_get $0 : vector<f32[8, 128]>",
            "store %21 to %6",
            "} else {",
            "%23 = broadcast %22 to [8, 128] : vector<f32[8, 128]>",
        ];
        for line in expected {
            assert!(has_line(&text, line), "missing line `{line}` in\n{text}");
        }
        assert!(!text.contains("//"), "no locations without `locs`:\n{text}");
        // Nesting is visible in the indentation.
        assert!(text.contains("\n    %16 = var_get $0"), "{text}");
        assert!(text.ends_with("}\n"));
        // Deterministic.
        assert_eq!(text, print(&k, PrintOptions::default()));
        assert_eq!(k.to_string(), print(&k, PrintOptions { locs: true }));
        assert_eq!(k.clone().to_string(), k.to_string());
    }

    #[test]
    fn prints_locations() {
        let (k, dma_line, for_line) = demo();
        let text = print(&k, PrintOptions { locs: true });
        let at = |line: u32| format!("  // {}:{line}:", file!());
        let dma = text.lines().find(|l| l.trim_start().starts_with("dma_start")).unwrap();
        assert!(dma.contains(&at(dma_line)), "{dma}");
        let for_ = text.lines().find(|l| l.trim_start().starts_with("for ")).unwrap();
        assert!(for_.contains(&at(for_line)), "{for_}");
        assert!(for_.ends_with(&format!("{}", k.body.insts.iter().find(|i| i.op.name() == "for").unwrap().loc)));
        // Closing braces carry no location; every other line of the body does.
        for l in text.lines() {
            let t = l.trim();
            let bare = t == "}" || t == "} else {" || t == "params {" || t.starts_with("} ->");
            assert_eq!(!bare, t.contains(&format!("  // {}:", file!())), "{l}");
        }
    }

    fn inst(op: Op, result: Option<u32>) -> Inst {
        Inst { op, result: result.map(ValueId), loc: Loc { file: "k.rs", line: 7, col: 3, caller: None } }
    }

    /// Every op variant, printed from a hand-built (not necessarily well-typed) kernel.
    /// One instruction of every op (results and operands are arbitrary ids).
    fn one_of_every_op() -> Vec<Inst> {
        let v = ValueId;
        vec![
            inst(Op::Const { dtype: F32, value: Literal::Float(0.5) }, Some(10)),
            inst(Op::Const { dtype: Bool, value: Literal::Int(1) }, Some(10)),
            inst(Op::Const { dtype: I32, value: Literal::Int(-3) }, Some(10)),
            inst(Op::ProgramId { axis: 1 }, Some(10)),
            inst(Op::NumPrograms { axis: 0 }, Some(10)),
            inst(Op::Unary { op: UnaryOp::Recip { approx: true }, x: v(1) }, Some(10)),
            inst(Op::Binary { op: BinaryOp::Shr, lhs: v(1), rhs: v(2) }, Some(10)),
            inst(Op::Compare { op: CmpOp::Ne, lhs: v(1), rhs: v(2) }, Some(10)),
            inst(Op::Select { cond: v(1), on_true: v(2), on_false: v(3) }, Some(10)),
            inst(Op::Cast { x: v(1), to: Bf16 }, Some(10)),
            inst(Op::Bitcast { x: v(1), to: U32 }, Some(10)),
            inst(Op::MultipleOf { x: v(1), multiple: 128 }, Some(10)),
            inst(Op::Iota { dtype: I32, shape: vec![8, 128], dim: 1 }, Some(10)),
            inst(Op::Broadcast { x: v(1), shape: vec![8, 128] }, Some(11)),
            inst(Op::Reshape { x: v(1), shape: vec![16, 64] }, Some(11)),
            inst(Op::Slice { x: v(1), start: vec![0, 0], shape: vec![4, 128] }, Some(11)),
            inst(Op::Concat { xs: vec![v(1), v(2)], axis: 0 }, Some(11)),
            inst(Op::Roll { x: v(1), shift: v(2), axis: 1 }, Some(11)),
            inst(Op::Transpose { x: v(1), perm: vec![1, 0] }, Some(11)),
            inst(Op::Extract { x: v(1), index: vec![2, 3] }, Some(10)),
            inst(Op::Reduce { op: ReduceOp::Max, x: v(1), axis: 1 }, Some(11)),
            inst(Op::ReduceAll { op: ReduceOp::Sum, x: v(1) }, Some(10)),
            inst(Op::ArgReduce { op: ArgOp::Min, x: v(1), axis: 0 }, Some(11)),
            inst(Op::Matmul { lhs: v(1), rhs: v(2), transpose_lhs: false, transpose_rhs: true, acc: F32 }, Some(11)),
            inst(Op::Matmul { lhs: v(1), rhs: v(2), transpose_lhs: true, transpose_rhs: false, acc: I32 }, Some(11)),
            inst(
                Op::View {
                    base: v(0),
                    indexers: vec![
                        Indexer::At(v(1)),
                        Indexer::Slice { start: v(2), size: SliceSize::Static(8) },
                        Indexer::Slice { start: v(2), size: SliceSize::Dynamic { size: v(3), max: 16 } },
                        Indexer::Full,
                    ],
                },
                Some(12),
            ),
            inst(Op::RefReshape { base: v(0), shape: vec![64, 128] }, Some(12)),
            inst(Op::RefBitcast { base: v(0), to: U32 }, Some(12)),
            inst(Op::Load { src: v(0) }, Some(11)),
            inst(Op::LoadStrided { src: v(0), strides: vec![2, 1], shape: vec![4, 128] }, Some(11)),
            inst(Op::Store { dst: v(0), value: v(1), mask: None }, None),
            inst(Op::Store { dst: v(0), value: v(1), mask: Some(v(2)) }, None),
            inst(Op::StoreStrided { dst: v(0), value: v(1), strides: vec![2, 1] }, None),
            inst(Op::ScalarLoad { src: v(0), indices: vec![v(1), v(2)] }, Some(10)),
            inst(Op::ScalarStore { dst: v(0), indices: vec![v(1)], value: v(2) }, None),
            inst(Op::DmaStart { src: v(0), dst: v(1), sem: v(2) }, None),
            inst(Op::DmaWait { src: v(0), dst: v(1), sem: v(2) }, None),
            inst(Op::SemSignal { sem: v(2), amount: v(1) }, None),
            inst(Op::SemWait { sem: v(2), amount: v(1) }, None),
            inst(Op::VarDecl { var: VarId(0), init: None }, None),
            inst(Op::VarDecl { var: VarId(0), init: Some(v(1)) }, None),
            inst(Op::VarGet { var: VarId(0) }, Some(10)),
            inst(Op::VarSet { var: VarId(0), value: v(1) }, None),
            inst(
                Op::For {
                    lo: v(1),
                    hi: v(2),
                    index: v(3),
                    body: Block { id: 1, insts: vec![inst(Op::ProgramId { axis: 0 }, Some(10))] },
                },
                None,
            ),
            inst(Op::If { cond: v(1), then_body: Block::default(), else_body: Block::default() }, None),
            inst(
                Op::While {
                    cond_body: Block { id: 2, insts: vec![inst(Op::ProgramId { axis: 0 }, Some(4))] },
                    cond: v(4),
                    body: Block { id: 3, insts: vec![inst(Op::VarGet { var: VarId(0) }, Some(10))] },
                },
                None,
            ),
            inst(Op::DebugPrint { message: "x = {} \"q\"".into(), args: vec![v(1), v(2)] }, None),
            inst(Op::DebugPrint { message: "hi".into(), args: vec![] }, None),
        ]
    }

    /// A kernel with every parameter role, over `body`.
    fn kernel_with_every_param(body: Vec<Inst>) -> Kernel {
        let v = ValueId;
        let s = |n: usize| Type::Vector { dtype: F32, shape: vec![n, 128] };
        let loc = Loc { file: "k.rs", line: 1, col: 1, caller: None };
        Kernel {
            name: "all".into(),
            loc,
            params: vec![
                Param {
                    name: "p".into(),
                    role: Role::Prefetch,
                    value: v(5),
                    array: Some(RefType::fixed(MemSpace::Smem, I32, &[16])),
                    block: None,
                    alias_of: None,
                    loc,
                },
                Param {
                    name: "x".into(),
                    role: Role::Input,
                    value: v(0),
                    array: Some(RefType {
                        space: MemSpace::Hbm,
                        dtype: F32,
                        shape: vec![Extent::Fixed(64), Extent::Dynamic { max: 128 }],
                    }),
                    block: Some(BlockSpec {
                        block_shape: vec![8, 128],
                        space: MemSpace::Vmem,
                        index_map: IndexMap {
                            grid_indices: vec![v(6), v(7)],
                            body: Block::default(),
                            results: vec![v(7), v(6)],
                            loc,
                        },
                        buffers: Some(1),
                    }),
                    alias_of: None,
                    loc,
                },
                Param {
                    name: "o".into(),
                    role: Role::Output,
                    value: v(8),
                    array: Some(RefType::fixed(MemSpace::Hbm, F32, &[64, 128])),
                    block: None,
                    alias_of: Some(1),
                    loc,
                },
                Param {
                    name: "s".into(),
                    role: Role::Scratch,
                    value: v(9),
                    array: None,
                    block: None,
                    alias_of: None,
                    loc,
                },
            ],
            grid: vec![2, 3],
            semantics: vec![DimSemantics::Parallel, DimSemantics::Arbitrary],
            vmem_limit: Some(32 * MIB),
            body: Block { id: 0, insts: body },
            values: vec![
                Type::Ref(RefType::fixed(MemSpace::Vmem, F32, &[8, 128])),
                Type::Scalar(I32),
                Type::Scalar(I32),
                Type::Scalar(I32),
                Type::Scalar(DType::Bool),
                Type::Ref(RefType::fixed(MemSpace::Smem, I32, &[16])),
                Type::Scalar(I32),
                Type::Scalar(I32),
                Type::Ref(RefType::fixed(MemSpace::Hbm, F32, &[64, 128])),
                Type::Sem { kind: SemKind::Dma, shape: vec![4] },
                Type::Scalar(I32),
                s(8),
                Type::Ref(RefType::fixed(MemSpace::Vmem, F32, &[64, 128])),
            ],
            vars: vec![Type::Scalar(F32)],
        }
    }

    #[test]
    fn prints_every_op() {
        let k = kernel_with_every_param(one_of_every_op());
        let expected = r#"kernel all grid=[2, 3] semantics=[parallel, arbitrary] vmem_limit=32MiB {
  params {
    %5 = prefetch p: smem i32[16]
    %0 = input x: hbm f32[64, ?<=128] block [8, 128] in vmem map(%6, %7) buffered(1) -> [%7, %6]
    %8 = output o: hbm f32[64, 128] aliases x
    %9 = scratch s: dma_sem[4]
  }
  %10 = const 0.5 : f32
  %10 = const true : bool
  %10 = const -3 : i32
  %10 = program_id 1 : i32
  %10 = num_programs 0 : i32
  %10 = recip_approx %1 : i32
  %10 = shr %1, %2 : i32
  %10 = ne %1, %2 : i32
  %10 = select %1, %2, %3 : i32
  %10 = cast %1 to bf16 : i32
  %10 = bitcast %1 to u32 : i32
  %10 = multiple_of %1 by 128 : i32
  %10 = iota dim=1 : vector<i32[8, 128]>
  %11 = broadcast %1 to [8, 128] : vector<f32[8, 128]>
  %11 = reshape %1 to [16, 64] : vector<f32[8, 128]>
  %11 = slice %1 start=[0, 0] shape=[4, 128] : vector<f32[8, 128]>
  %11 = concat %1, %2 axis=0 : vector<f32[8, 128]>
  %11 = roll %1 by %2 axis=1 : vector<f32[8, 128]>
  %11 = transpose %1 perm=[1, 0] : vector<f32[8, 128]>
  %10 = extract %1[2, 3] : i32
  %11 = reduce_max %1 axis=1 : vector<f32[8, 128]>
  %10 = sum_all %1 : i32
  %11 = argmin %1 axis=0 : vector<f32[8, 128]>
  %11 = matmul %1, %2 transpose_rhs acc=f32 : vector<f32[8, 128]>
  %11 = matmul %1, %2 transpose_lhs acc=i32 : vector<f32[8, 128]>
  %12 = view %0[%1, ds(%2, 8), ds(%2, %3<=16), :] : ref<vmem f32[64, 128]>
  %12 = ref_reshape %0 to [64, 128] : ref<vmem f32[64, 128]>
  %12 = ref_bitcast %0 to u32 : ref<vmem f32[64, 128]>
  %11 = load %0 : vector<f32[8, 128]>
  %11 = load_strided %0 strides=[2, 1] shape=[4, 128] : vector<f32[8, 128]>
  store %1 to %0
  store %1 to %0 mask %2
  store_strided %1 to %0 strides=[2, 1]
  %10 = scalar_load %0[%1, %2] : i32
  scalar_store %2 to %0[%1]
  dma_start %0 -> %1, sem %2
  dma_wait %0 -> %1, sem %2
  semaphore_signal %2 by %1
  semaphore_wait %2 by %1
  var $0 : f32
  var $0 : f32 = %1
  %10 = var_get $0 : i32
  var_set $0 = %1
  for %3 in %1..%2 {
    %10 = program_id 0 : i32
  }
  if %1 {
  }
  while {
    %4 = program_id 0 : bool
  } condition(%4) do {
    %10 = var_get $0 : i32
  }
  debug_print "x = {} \"q\"" %1, %2
  debug_print "hi"
}
"#;
        assert_eq!(print(&k, PrintOptions::default()), expected);
        let with_locs = print(&k, PrintOptions { locs: true });
        assert!(with_locs
            .starts_with("kernel all grid=[2, 3] semantics=[parallel, arbitrary] vmem_limit=32MiB {  // k.rs:1:1\n"));
        assert!(with_locs.contains("\n  store %1 to %0  // k.rs:7:3\n"));
        assert!(with_locs.contains("\n  for %3 in %1..%2 {  // k.rs:7:3\n"));
    }
}
