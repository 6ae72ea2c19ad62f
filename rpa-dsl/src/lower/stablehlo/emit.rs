//! The primitive StableHLO emitters: fresh SSA names, constants, elementwise, shape and
//! dynamic-slice ops, reductions.

use super::*;

impl Lowerer<'_> {
    pub(super) fn tmp(&mut self) -> String {
        self.text.fresh()
    }

    pub(super) fn line(&mut self, s: &str) {
        self.text.line(s);
    }

    /// Emits `%t = rhs` and returns `%t`.
    pub(super) fn emit(&mut self, rhs: String) -> String {
        self.text.emit(rhs)
    }

    pub(super) fn splat_bits(&mut self, dt: DType, shape: &[usize], bits: u32) -> String {
        self.emit(format!("stablehlo.constant dense<{}> : {}", literal(repr(dt), bits), ty(dt, shape)))
    }

    /// Buffer `b` filled with its declared dtype's poison pattern.
    pub(super) fn poisoned(&mut self, b: usize) -> String {
        let (dt, shape) = (self.bufs[b].dtype, self.bufs[b].shape.clone());
        self.splat_bits(dt, &shape, self.bufs[b].logical.poison_bits())
    }

    pub(super) fn splat(&mut self, dt: DType, shape: &[usize], v: f64) -> String {
        self.splat_bits(dt, shape, value_bits(dt, v))
    }

    pub(super) fn iconst(&mut self, v: i64) -> String {
        self.splat(DType::I32, &[], v as f64)
    }

    pub(super) fn bin(&mut self, op: &str, a: &str, b: &str, dt: DType, shape: &[usize]) -> String {
        self.emit(format!("stablehlo.{op} {a}, {b} : {}", ty(dt, shape)))
    }

    pub(super) fn un(&mut self, op: &str, a: &str, dt: DType, shape: &[usize]) -> String {
        self.emit(format!("stablehlo.{op} {a} : {}", ty(dt, shape)))
    }

    /// Converts values (floats round to nearest even; narrow floats go through f32 with integer ops).
    pub(super) fn convert(&mut self, a: &str, from: DType, to: DType, shape: &[usize]) -> String {
        if from == to {
            return a.to_string();
        }
        if is_narrow_float(from) {
            let x = self.widen(a, from, shape);
            return self.convert(&x, DType::F32, to, shape);
        }
        if is_narrow_float(to) {
            let x = match from {
                DType::I32 | DType::U32 => self.int_to_f32_odd(a, from, shape),
                _ => self.convert(a, from, DType::F32, shape),
            };
            return self.narrow(&x, to, shape);
        }
        self.emit(format!("stablehlo.convert {a} : ({}) -> {}", ty(from, shape), ty(to, shape)))
    }

    pub(super) fn bitcast(&mut self, a: &str, from: DType, to: DType, shape: &[usize]) -> String {
        if elem(repr(from)) == elem(repr(to)) {
            return a.to_string();
        }
        self.emit(format!("stablehlo.bitcast_convert {a} : ({}) -> {}", ty(from, shape), ty(to, shape)))
    }

    pub(super) fn compare(&mut self, dir: &str, a: &str, b: &str, dt: DType, shape: &[usize]) -> String {
        if is_narrow_float(dt) {
            let (a, b) = (self.widen(a, dt, shape), self.widen(b, dt, shape));
            return self.compare(dir, &a, &b, DType::F32, shape);
        }
        let kind = if dt.is_float() {
            "FLOAT"
        } else if dt.is_signed_int() {
            "SIGNED"
        } else {
            "UNSIGNED"
        };
        let t = ty(dt, shape);
        self.emit(format!("stablehlo.compare {dir}, {a}, {b}, {kind} : ({t}, {t}) -> {}", ty(DType::Bool, shape)))
    }

    pub(super) fn select(&mut self, p: &str, a: &str, b: &str, pshape: &[usize], dt: DType, shape: &[usize]) -> String {
        let t = ty(dt, shape);
        self.emit(format!("stablehlo.select {p}, {a}, {b} : ({}, {t}, {t}) -> {t}", ty(DType::Bool, pshape)))
    }

    /// Numpy broadcasting (dims aligned at the right).
    pub(super) fn bcast(&mut self, a: &str, dt: DType, from: &[usize], to: &[usize]) -> String {
        if from == to {
            return a.to_string();
        }
        let dims: Vec<usize> = (to.len() - from.len()..to.len()).collect();
        self.emit(format!(
            "stablehlo.broadcast_in_dim {a}, dims = [{}] : ({}) -> {}",
            join(&dims),
            ty(dt, from),
            ty(dt, to)
        ))
    }

    pub(super) fn reshape(&mut self, a: &str, dt: DType, from: &[usize], to: &[usize]) -> String {
        if from == to {
            return a.to_string();
        }
        self.emit(format!("stablehlo.reshape {a} : ({}) -> {}", ty(dt, from), ty(dt, to)))
    }

    pub(super) fn iota(&mut self, dt: DType, shape: &[usize], dim: usize) -> String {
        if is_narrow_float(dt) {
            let i = self.iota(DType::I32, shape, dim);
            return self.convert(&i, DType::I32, dt, shape);
        }
        self.emit(format!("stablehlo.iota dim = {dim} : {}", ty(dt, shape)))
    }

    pub(super) fn dyn_slice(
        &mut self,
        a: &str,
        dt: DType,
        from: &[usize],
        starts: &[String],
        sizes: &[usize],
    ) -> String {
        if sizes == from {
            // The whole tensor (its starts can only be 0).
            return a.to_string();
        }
        let idx_t = vec![ty(DType::I32, &[]); starts.len()];
        self.emit(format!(
            "stablehlo.dynamic_slice {a}, {}, sizes = [{}] : ({}, {}) -> {}",
            starts.join(", "),
            join(sizes),
            ty(dt, from),
            idx_t.join(", "),
            ty(dt, sizes)
        ))
    }

    pub(super) fn dyn_update(
        &mut self,
        a: &str,
        upd: &str,
        dt: DType,
        shape: &[usize],
        ushape: &[usize],
        starts: &[String],
    ) -> String {
        if ushape == shape {
            return upd.to_string();
        }
        let idx_t = vec![ty(DType::I32, &[]); starts.len()];
        self.emit(format!(
            "stablehlo.dynamic_update_slice {a}, {upd}, {} : ({}, {}, {}) -> {}",
            starts.join(", "),
            ty(dt, shape),
            ty(dt, ushape),
            idx_t.join(", "),
            ty(dt, shape)
        ))
    }

    pub(super) fn reduce(
        &mut self,
        x: &str,
        dt: DType,
        shape: &[usize],
        axis: usize,
        op: &str,
        init_bits: u32,
    ) -> String {
        let init = self.splat_bits(dt, &[], init_bits);
        let out: Vec<usize> = shape.iter().enumerate().filter(|&(d, _)| d != axis).map(|(_, &n)| n).collect();
        let res = self.tmp();
        let (a, b) = (self.tmp(), self.tmp());
        let st = ty(dt, &[]);
        self.line(&format!("{res} = \"stablehlo.reduce\"({x}, {init}) ({{"));
        self.line(&format!("^bb0({a}: {st}, {b}: {st}):"));
        self.text.enter();
        let c = if dt.is_float() && (op == "maximum" || op == "minimum") {
            // NaN-propagating (XLA:CPU's vectorised max/min reductions drop NaNs; interpret mode
            // propagates them), in the reducer itself rather than with a second reduction.
            self.float_minmax(op, &a, &b, dt, &[])
        } else {
            self.bin(op, &a, &b, dt, &[])
        };
        self.line(&format!("stablehlo.return {c} : {st}"));
        self.text.leave();
        self.line(&format!("}}) {{dimensions = array<i64: {axis}>}} : ({}, {st}) -> {}", ty(dt, shape), ty(dt, &out)));
        res
    }

    /// `x[start : start + sizes]` with static bounds.
    pub(super) fn static_slice(
        &mut self,
        x: &str,
        dt: DType,
        shape: &[usize],
        start: &[usize],
        sizes: &[usize],
    ) -> String {
        if start.iter().all(|&s| s == 0) && sizes == shape {
            return x.to_string();
        }
        let limit: Vec<usize> = start.iter().zip(sizes).map(|(s, n)| s + n).collect();
        self.emit(format!(
            "\"stablehlo.slice\"({x}) {{start_indices = array<i64: {}>, limit_indices = array<i64: {}>, \
             strides = array<i64: {}>}} : ({}) -> {}",
            join(start),
            join(&limit),
            join(&vec![1; shape.len()]),
            ty(dt, shape),
            ty(dt, sizes)
        ))
    }
}
