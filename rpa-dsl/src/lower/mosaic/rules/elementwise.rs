//! Elementwise: constants, grid indices, unary and binary ops, compares, selects, casts, iotas.

use super::super::*;

impl<'k> Emitter<'k> {
    pub(crate) fn lower_const(&mut self, l: &str, res: &str, dtype: DType, value: &Literal) -> Result<(), KernelError> {
        let lit = match value {
            Literal::Int(i) if dtype == DType::Bool => (*i != 0).to_string(),
            Literal::Int(i) => i.to_string(),
            Literal::Float(f) => mlir::float_literal(dtype, *f),
        };
        let ty = if dtype == DType::Bool { String::new() } else { format!(" : {}", elem(dtype)) };
        self.line(&format!("{res} = arith.constant {lit}{ty} {l}"));
        Ok(())
    }

    pub(crate) fn lower_program_id(&mut self, inst: &'k Inst, axis: usize) -> Result<(), KernelError> {
        self.bind(inst, format!("%g{axis}"));
        Ok(())
    }

    pub(crate) fn lower_num_programs(&mut self, l: &str, res: &str, axis: usize) -> Result<(), KernelError> {
        let n = self.grid().get(axis).copied().unwrap_or(1);
        self.line(&format!("{res} = arith.constant {n} : i32 {l}"));
        Ok(())
    }

    pub(crate) fn lower_unary(
        &mut self,
        inst: &'k Inst,
        l: &str,
        res: &str,
        rty: &str,
        op: UnaryOp,
        x: ValueId,
    ) -> Result<(), KernelError> {
        let dt = self.ty(x).dtype().unwrap_or(DType::F32);
        let xn = self.name(x);
        let s = match op {
            UnaryOp::Neg if dt.is_float() => format!("arith.negf {xn} : {rty}"),
            UnaryOp::Neg => {
                let z = self.zero_like(dt, &self.result_shape(inst), l);
                format!("arith.subi {z}, {xn} : {rty}")
            }
            UnaryOp::Not => {
                let ones = if dt == DType::Bool { 1.0 } else { -1.0 };
                let shape = self.result_shape(inst);
                let c = self.splat(dt, ones, &shape, l);
                format!("arith.xori {xn}, {c} : {rty}")
            }
            UnaryOp::Abs if dt.is_float() => format!("math.absf {xn} : {rty}"),
            UnaryOp::Abs => format!("math.absi {xn} : {rty}"),
            UnaryOp::Exp => format!("math.exp {xn} : {rty}"),
            UnaryOp::Log => format!("math.log {xn} : {rty}"),
            UnaryOp::Tanh => format!("math.tanh {xn} : {rty}"),
            UnaryOp::Sqrt => format!("math.sqrt {xn} : {rty}"),
            UnaryOp::Rsqrt => format!("math.rsqrt {xn} : {rty}"),
            UnaryOp::Recip { approx: true } => {
                format!("tpu.reciprocal {xn} {{approx = true}} : {rty} -> {rty}")
            }
            UnaryOp::Recip { approx: false } => {
                let shape = self.result_shape(inst);
                let one = self.splat(dt, 1.0, &shape, l);
                format!("arith.divf {one}, {xn} : {rty}")
            }
            UnaryOp::Sin => format!("math.sin {xn} : {rty}"),
            UnaryOp::Cos => format!("math.cos {xn} : {rty}"),
            UnaryOp::Erf => format!("math.erf {xn} : {rty}"),
            UnaryOp::Exp2 => format!("math.exp2 {xn} : {rty}"),
            UnaryOp::Log1p => format!("math.log1p {xn} : {rty}"),
            UnaryOp::Floor => format!("math.floor {xn} : {rty}"),
            UnaryOp::Ceil => format!("math.ceil {xn} : {rty}"),
            UnaryOp::Sigmoid => {
                // `1 / (1 + exp(-x))`, as Pallas lowers `jax.nn.sigmoid`.
                let shape = self.result_shape(inst);
                let (neg, e, den) = (self.tmp(), self.tmp(), self.tmp());
                self.line(&format!("{neg} = arith.negf {xn} : {rty} {l}"));
                self.line(&format!("{e} = math.exp {neg} : {rty} {l}"));
                let one = self.splat(dt, 1.0, &shape, l);
                self.line(&format!("{den} = arith.addf {one}, {e} : {rty} {l}"));
                format!("arith.divf {one}, {den} : {rty}")
            }
        };
        self.line(&format!("{res} = {s} {l}"));
        Ok(())
    }

    pub(crate) fn lower_binary(
        &mut self,
        inst: &'k Inst,
        l: &str,
        res: &str,
        rty: &str,
        op: BinaryOp,
        lhs: ValueId,
        rhs: ValueId,
    ) -> Result<(), KernelError> {
        let dt = self.ty(lhs).dtype().unwrap_or(DType::F32);
        let shape = self.result_shape(inst);
        if op == BinaryOp::Pow && shape.is_empty() {
            return self.lower_scalar_pow(l, res, rty, lhs, rhs);
        }
        let (a, b) = (self.broadcast_to(lhs, &shape, l), self.broadcast_to(rhs, &shape, l));
        let (f, u) = (dt.is_float(), dt.is_unsigned_int());
        let name = match op {
            BinaryOp::Add if f => "arith.addf",
            BinaryOp::Add => "arith.addi",
            BinaryOp::Sub if f => "arith.subf",
            BinaryOp::Sub => "arith.subi",
            BinaryOp::Mul if f => "arith.mulf",
            BinaryOp::Mul => "arith.muli",
            BinaryOp::Div if f => "arith.divf",
            BinaryOp::Div if u => "arith.divui",
            BinaryOp::Div => "arith.divsi",
            BinaryOp::Rem if f => "arith.remf",
            BinaryOp::Rem if u => "arith.remui",
            BinaryOp::Rem => "arith.remsi",
            BinaryOp::Max if f => "arith.maximumf",
            BinaryOp::Max if u => "arith.maxui",
            BinaryOp::Max => "arith.maxsi",
            BinaryOp::Min if f => "arith.minimumf",
            BinaryOp::Min if u => "arith.minui",
            BinaryOp::Min => "arith.minsi",
            BinaryOp::And => "arith.andi",
            BinaryOp::Or => "arith.ori",
            BinaryOp::Xor => "arith.xori",
            BinaryOp::Shl => "arith.shli",
            BinaryOp::Shr if u => "arith.shrui",
            BinaryOp::Shr => "arith.shrsi",
            BinaryOp::Pow => "math.powf",
        };
        self.line(&format!("{res} = {name} {a}, {b} : {rty} {l}"));
        Ok(())
    }

    /// libtpu has no scalar `math.powf`: the scalars go through a one-element vector.
    fn lower_scalar_pow(
        &mut self,
        l: &str,
        res: &str,
        rty: &str,
        lhs: ValueId,
        rhs: ValueId,
    ) -> Result<(), KernelError> {
        let vt = format!("vector<1x1x{rty}>");
        let (a, b, p) = (self.tmp(), self.tmp(), self.tmp());
        self.line(&format!("{a} = vector.broadcast {} : {rty} to {vt} {l}", self.name(lhs)));
        self.line(&format!("{b} = vector.broadcast {} : {rty} to {vt} {l}", self.name(rhs)));
        self.line(&format!("{p} = math.powf {a}, {b} : {vt} {l}"));
        self.line(&format!("{res} = vector.extract {p}[0, 0] : {rty} from {vt} {l}"));
        Ok(())
    }

    pub(crate) fn lower_compare(
        &mut self,
        inst: &'k Inst,
        l: &str,
        res: &str,
        op: CmpOp,
        lhs: ValueId,
        rhs: ValueId,
    ) -> Result<(), KernelError> {
        let dt = self.ty(lhs).dtype().unwrap_or(DType::F32);
        let shape = self.result_shape(inst);
        let (a, b) = (self.broadcast_to(lhs, &shape, l), self.broadcast_to(rhs, &shape, l));
        let ot = vector_type(dt, &shape);
        if op == CmpOp::Ne && dt.is_float() {
            // libtpu has no unordered predicates (`une`): `x != y` (true for NaN) is `!(x == y)`.
            self.float_ne(l, res, &a, &b, &ot, &shape);
            return Ok(());
        }
        let pred = match (op, dt.is_float(), dt.is_unsigned_int() || dt == DType::Bool) {
            (CmpOp::Eq, true, _) => "oeq",
            (CmpOp::Ne, true, _) => unreachable!("lowered by `float_ne`"),
            (CmpOp::Lt, true, _) => "olt",
            (CmpOp::Le, true, _) => "ole",
            (CmpOp::Gt, true, _) => "ogt",
            (CmpOp::Ge, true, _) => "oge",
            (CmpOp::Eq, false, _) => "eq",
            (CmpOp::Ne, false, _) => "ne",
            (CmpOp::Lt, false, true) => "ult",
            (CmpOp::Le, false, true) => "ule",
            (CmpOp::Gt, false, true) => "ugt",
            (CmpOp::Ge, false, true) => "uge",
            (CmpOp::Lt, false, false) => "slt",
            (CmpOp::Le, false, false) => "sle",
            (CmpOp::Gt, false, false) => "sgt",
            (CmpOp::Ge, false, false) => "sge",
        };
        let cmp = if dt.is_float() { "arith.cmpf" } else { "arith.cmpi" };
        self.line(&format!("{res} = {cmp} {pred}, {a}, {b} : {ot} {l}"));
        Ok(())
    }

    /// `res = a != b` for floats (true where either is NaN), as `!(a oeq b)`.
    fn float_ne(&mut self, l: &str, res: &str, a: &str, b: &str, operand_type: &str, shape: &[usize]) {
        let eq = self.tmp();
        self.line(&format!("{eq} = arith.cmpf oeq, {a}, {b} : {operand_type} {l}"));
        let t = self.splat(DType::Bool, 1.0, shape, l);
        let bool_type = if shape.is_empty() { "i1".to_string() } else { vector_type(DType::Bool, shape) };
        self.line(&format!("{res} = arith.xori {eq}, {t} : {bool_type} {l}"));
    }

    pub(crate) fn lower_select(
        &mut self,
        inst: &'k Inst,
        l: &str,
        res: &str,
        rty: &str,
        cond: ValueId,
        on_true: ValueId,
        on_false: ValueId,
    ) -> Result<(), KernelError> {
        let shape = self.result_shape(inst);
        let c = if shape.is_empty() || matches!(self.ty(cond), Type::Vector { .. }) {
            self.broadcast_to(cond, &shape, l)
        } else {
            self.name(cond)
        };
        let (a, b) = (self.broadcast_to(on_true, &shape, l), self.broadcast_to(on_false, &shape, l));
        let ct = if matches!(self.ty(cond), Type::Scalar(_)) && !shape.is_empty() && c == self.name(cond) {
            "i1".to_string()
        } else {
            vector_type(DType::Bool, &shape)
        };
        self.line(&format!("{res} = arith.select {c}, {a}, {b} : {ct}, {rty} {l}"));
        Ok(())
    }

    pub(crate) fn lower_cast(
        &mut self,
        inst: &'k Inst,
        l: &str,
        res: &str,
        rty: &str,
        x: ValueId,
        to: DType,
    ) -> Result<(), KernelError> {
        let from = self.ty(x).dtype().unwrap_or(DType::F32);
        let xn = self.name(x);
        let xt = type_str(self.ty(x));
        if from.mlir() == to.mlir() && from.is_float() == to.is_float() {
            // Same storage (e.g. i32 → u32): nothing to emit.
            self.bind(inst, xn);
            return Ok(());
        }
        let op = match (from.is_float(), to.is_float()) {
            (true, true) if to.bits() > from.bits() => "arith.extf",
            (true, true) if to.bits() < from.bits() => "arith.truncf",
            (true, true) => "arith.extf",
            (true, false) if to.is_unsigned_int() => "arith.fptoui",
            (true, false) => "arith.fptosi",
            (false, true) if from.is_unsigned_int() || from == DType::Bool => "arith.uitofp",
            (false, true) => "arith.sitofp",
            (false, false) if to.bits() > from.bits() && (from.is_unsigned_int() || from == DType::Bool) => {
                "arith.extui"
            }
            (false, false) if to.bits() > from.bits() => "arith.extsi",
            (false, false) => "arith.trunci",
        };
        if to == DType::Bool {
            let shape = self.result_shape(inst);
            let z = self.zero_like(from, &shape, l);
            if from.is_float() {
                self.float_ne(l, res, &xn, &z, &xt, &shape);
            } else {
                self.line(&format!("{res} = arith.cmpi ne, {xn}, {z} : {xt} {l}"));
            }
        } else {
            self.line(&format!("{res} = {op} {xn} : {xt} to {rty} {l}"));
        }
        Ok(())
    }

    pub(crate) fn lower_bitcast(&mut self, l: &str, res: &str, rty: &str, x: ValueId) -> Result<(), KernelError> {
        let (xn, xt) = (self.name(x), type_str(self.ty(x)));
        if matches!(self.ty(x), Type::Scalar(_)) {
            self.line(&format!("{res} = arith.bitcast {xn} : {xt} to {rty} {l}"));
        } else {
            self.line(&format!("{res} = tpu.bitcast {xn} : {xt} -> {rty} {l}"));
        }
        Ok(())
    }

    pub(crate) fn lower_multiple_of(
        &mut self,
        l: &str,
        res: &str,
        rty: &str,
        x: ValueId,
        multiple: u32,
    ) -> Result<(), KernelError> {
        self.line(&format!("{res} = tpu.assume_multiple {}, {multiple} : {rty} {l}", self.name(x)));
        Ok(())
    }

    pub(crate) fn lower_iota(&mut self, l: &str, res: &str, rty: &str, dim: usize) -> Result<(), KernelError> {
        self.line(&format!("{res} = tpu.iota {{dimensions = array<i32: {dim}>}} : {rty} {l}"));
        Ok(())
    }
}
