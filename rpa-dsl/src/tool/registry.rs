//! The kernels a tool knows: each with its comptime arguments (typed, with defaults), the builder
//! that makes the kernel from them, optionally its inputs and a plain-Rust reference.

use super::compare::Comparison;
use super::dtype_name;
use crate::{Array, DType, Kernel, KernelError};
use std::fmt;

/// An error of a kernel's builder, input maker or reference, or of its arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolError(pub String);

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ToolError {}

impl From<KernelError> for ToolError {
    fn from(e: KernelError) -> Self {
        ToolError(e.to_string())
    }
}

impl From<String> for ToolError {
    fn from(e: String) -> Self {
        ToolError(e)
    }
}

impl From<&str> for ToolError {
    fn from(e: &str) -> Self {
        ToolError(e.to_string())
    }
}

/// The value of a comptime argument; its default's kind is the argument's type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Usize(usize),
    Int(i64),
    Float(f64),
    Bool(bool),
    DType(DType),
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Usize(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<DType> for Value {
    fn from(v: DType) -> Self {
        Value::DType(v)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Usize(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) if *v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e6) => write!(f, "{v:e}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::DType(d) => f.write_str(dtype_name(*d)),
        }
    }
}

impl Value {
    /// What a value of this kind looks like, for errors.
    fn kind(&self) -> &'static str {
        match self {
            Value::Usize(_) => "a non-negative integer",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Bool(_) => "true or false",
            Value::DType(_) => "a dtype (f32, bf16, f16, fp8e4m3, fp8e5m2, i32, u32, i16, u16, int8, u8, bool)",
        }
    }

    /// Parses `text` as a value of the same kind as `self`.
    fn parse_like(&self, text: &str) -> Option<Value> {
        let t = text.trim();
        Some(match self {
            Value::Usize(_) => Value::Usize(t.replace('_', "").parse().ok()?),
            Value::Int(_) => Value::Int(t.replace('_', "").parse().ok()?),
            Value::Float(_) => Value::Float(t.parse().ok()?),
            Value::Bool(_) => Value::Bool(match t {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => return None,
            }),
            Value::DType(_) => {
                Value::DType(DType::ALL.into_iter().find(|&d| dtype_name(d) == t).or_else(|| DType::from_name(t))?)
            }
        })
    }
}

/// A declared comptime argument.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub default: Value,
    pub help: String,
}

/// The comptime arguments of one build: the defaults, overridden by the command line.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    kernel: String,
    values: Vec<(String, Value)>,
}

impl Args {
    fn get(&self, name: &str) -> Result<Value, ToolError> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v).ok_or_else(|| {
            let names: Vec<&str> = self.values.iter().map(|(n, _)| n.as_str()).collect();
            ToolError(format!(
                "kernel `{}` has no argument `{name}` (declare it with .arg; its arguments: {})",
                self.kernel,
                if names.is_empty() { "none".into() } else { names.join(", ") }
            ))
        })
    }

    fn wrong_kind(&self, name: &str, want: &str, v: Value) -> ToolError {
        ToolError(format!("argument `{name}` of kernel `{}` is {}, not {want}", self.kernel, v.kind()))
    }

    pub fn usize(&self, name: &str) -> Result<usize, ToolError> {
        match self.get(name)? {
            Value::Usize(v) => Ok(v),
            v => Err(self.wrong_kind(name, "a usize", v)),
        }
    }

    pub fn i64(&self, name: &str) -> Result<i64, ToolError> {
        match self.get(name)? {
            Value::Int(v) => Ok(v),
            Value::Usize(v) => Ok(v as i64),
            v => Err(self.wrong_kind(name, "an i64", v)),
        }
    }

    pub fn f64(&self, name: &str) -> Result<f64, ToolError> {
        match self.get(name)? {
            Value::Float(v) => Ok(v),
            v => Err(self.wrong_kind(name, "an f64", v)),
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool, ToolError> {
        match self.get(name)? {
            Value::Bool(v) => Ok(v),
            v => Err(self.wrong_kind(name, "a bool", v)),
        }
    }

    pub fn dtype(&self, name: &str) -> Result<DType, ToolError> {
        match self.get(name)? {
            Value::DType(v) => Ok(v),
            v => Err(self.wrong_kind(name, "a DType", v)),
        }
    }

    /// `rows=64 cols=256`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self.values.iter().map(|(n, v)| format!("{n}={v}")).collect();
        parts.join(" ")
    }
}

type BuildFn = dyn Fn(&Args) -> Result<Kernel, ToolError>;
type InputsFn = dyn Fn(&Args, &Kernel, u64) -> Result<Vec<Array>, ToolError>;
type ReferenceFn = dyn Fn(&Args, &[Array]) -> Result<Vec<Vec<f64>>, ToolError>;

/// One kernel of a [`Registry`].
pub struct KernelSpec {
    name: String,
    about: String,
    params: Vec<Param>,
    build: Box<BuildFn>,
    inputs: Option<Box<InputsFn>>,
    reference: Option<Box<ReferenceFn>>,
    tolerance: f64,
}

impl KernelSpec {
    /// A kernel called `name` (on the command line), described by `about`, made by `build` from its
    /// comptime arguments.
    pub fn new(name: &str, about: &str, build: impl Fn(&Args) -> Result<Kernel, ToolError> + 'static) -> KernelSpec {
        KernelSpec {
            name: name.into(),
            about: about.into(),
            params: Vec::new(),
            build: Box::new(build),
            inputs: None,
            reference: None,
            tolerance: 1e-5,
        }
    }

    /// Declares the comptime argument `name` (`--arg name=VALUE`), of the type of `default`.
    pub fn arg(mut self, name: &str, default: impl Into<Value>, help: &str) -> KernelSpec {
        self.params.push(Param { name: name.into(), default: default.into(), help: help.into() });
        self
    }

    /// Makes the inputs (scalar-prefetch operands, then inputs, in parameter order) from the
    /// arguments, the built kernel and a seed. Without it, inputs are [`random_array`]s.
    pub fn inputs(mut self, f: impl Fn(&Args, &Kernel, u64) -> Result<Vec<Array>, ToolError> + 'static) -> KernelSpec {
        self.inputs = Some(Box::new(f));
        self
    }

    /// The reference `run` checks against: the expected value of every output (flat, row-major),
    /// from the arguments and the inputs.
    pub fn reference(
        mut self,
        f: impl Fn(&Args, &[Array]) -> Result<Vec<Vec<f64>>, ToolError> + 'static,
    ) -> KernelSpec {
        self.reference = Some(Box::new(f));
        self
    }

    /// The default error bound of `run`: `|kernel - reference| <= tolerance·(1 + |reference|)`
    /// (default 1e-5).
    pub fn tolerance(mut self, tolerance: f64) -> KernelSpec {
        self.tolerance = tolerance;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn about(&self) -> &str {
        &self.about
    }
    pub fn params(&self) -> &[Param] {
        &self.params
    }
    pub fn has_reference(&self) -> bool {
        self.reference.is_some()
    }
    pub fn default_tolerance(&self) -> f64 {
        self.tolerance
    }

    /// The arguments: the defaults, overridden by `given` (`NAME=VALUE` each). Errors name the
    /// argument.
    pub fn args(&self, given: &[String]) -> Result<Args, ToolError> {
        let mut values: Vec<(String, Value)> = self.params.iter().map(|p| (p.name.clone(), p.default)).collect();
        for item in given {
            let Some((name, text)) = item.split_once('=') else {
                return Err(ToolError(format!("--arg `{item}`: expected NAME=VALUE")));
            };
            let name = name.trim();
            let Some(slot) = values.iter_mut().find(|(n, _)| n == name) else {
                return Err(ToolError(format!(
                    "--arg {name}: kernel `{}` has no argument `{name}` ({})",
                    self.name,
                    self.describe_params()
                )));
            };
            slot.1 = slot
                .1
                .parse_like(text)
                .ok_or_else(|| ToolError(format!("--arg {name}: `{text}` is not {}", slot.1.kind())))?;
        }
        Ok(Args { kernel: self.name.clone(), values })
    }

    fn describe_params(&self) -> String {
        if self.params.is_empty() {
            return "it has no arguments".into();
        }
        let names: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
        format!("its arguments: {}", names.join(", "))
    }

    /// Builds the kernel.
    pub fn build(&self, args: &Args) -> Result<Kernel, ToolError> {
        (self.build)(args).map_err(|e| ToolError(format!("building `{}` ({}): {e}", self.name, args.describe())))
    }

    /// The inputs of a run: the kernel's own, or random ones of the operands' shapes.
    pub fn make_inputs(&self, args: &Args, kernel: &Kernel, seed: u64) -> Result<Vec<Array>, ToolError> {
        let inputs = match &self.inputs {
            Some(f) => f(args, kernel, seed)?,
            None => kernel
                .inputs()
                .enumerate()
                .map(|(i, p)| {
                    let ty = p.array.as_ref().expect("an operand has an array type");
                    random_array(ty.dtype, &ty.max_shape(), seed.wrapping_add(i as u64))
                })
                .collect(),
        };
        let want = kernel.inputs().count();
        if inputs.len() != want {
            return Err(ToolError(format!("`{}` made {} inputs; the kernel takes {want}", self.name, inputs.len())));
        }
        Ok(inputs)
    }

    /// Compares `outputs` with the reference on `inputs`; `None` without a reference.
    pub fn check(
        &self,
        args: &Args,
        inputs: &[Array],
        outputs: &[Array],
        tolerance: f64,
    ) -> Option<Result<Vec<Comparison>, ToolError>> {
        let reference = self.reference.as_ref()?;
        Some(reference(args, inputs).and_then(|want| {
            if want.len() != outputs.len() {
                return Err(ToolError(format!(
                    "the reference of `{}` returned {} outputs; the kernel has {}",
                    self.name,
                    want.len(),
                    outputs.len()
                )));
            }
            outputs
                .iter()
                .zip(&want)
                .enumerate()
                .map(|(i, (got, w))| {
                    if w.len() != got.len() {
                        return Err(ToolError(format!(
                            "the reference of `{}` output {i} has {} elements; the kernel's has {}",
                            self.name,
                            w.len(),
                            got.len()
                        )));
                    }
                    Ok(Comparison::new(got.len(), |j| got.get_f64(j), |j| w[j], tolerance))
                })
                .collect()
        }))
    }
}

/// The kernels of a tool, under the tool's name (its `--help` and messages use it).
pub struct Registry {
    name: String,
    about: String,
    kernels: Vec<KernelSpec>,
}

impl Registry {
    pub fn new(name: &str) -> Registry {
        Registry { name: name.into(), about: format!("{name}: kernels written in rpa"), kernels: Vec::new() }
    }

    /// The `--help` text's first line.
    pub fn about(mut self, about: &str) -> Registry {
        self.about = about.into();
        self
    }

    /// Adds a kernel.
    pub fn kernel(mut self, spec: KernelSpec) -> Registry {
        self.kernels.push(spec);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn about_text(&self) -> &str {
        &self.about
    }
    pub fn kernels(&self) -> &[KernelSpec] {
        &self.kernels
    }

    /// The kernel called `name`, or an error listing the kernels.
    pub fn find(&self, name: &str) -> Result<&KernelSpec, ToolError> {
        self.kernels.iter().find(|k| k.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.kernels.iter().map(|k| k.name.as_str()).collect();
            ToolError(format!("no kernel `{name}` (the kernels: {})", names.join(", ")))
        })
    }
}

/// Deterministic pseudo-random values for a `dtype` array of `shape` from `seed`: floats uniform
/// in [-1, 1), integers in [0, 8), bools half true.
pub fn random_array(dtype: DType, shape: &[usize], seed: u64) -> Array {
    let n: usize = shape.iter().product();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0x2545_F491_4F6C_DD1D);
    let values: Vec<f64> = (0..n)
        .map(|_| {
            // splitmix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            let u = (z ^ (z >> 31)) >> 11;
            let unit = u as f64 / (1u64 << 53) as f64;
            match dtype {
                d if d.is_float() => unit * 2.0 - 1.0,
                DType::Bool => (unit < 0.5) as u8 as f64,
                _ => (unit * 8.0).floor(),
            }
        })
        .collect();
    Array::from_f64(dtype, shape, &values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> KernelSpec {
        KernelSpec::new("k", "a kernel", |_| Err("not built".into()))
            .arg("rows", 8usize, "")
            .arg("shift", -1i64, "")
            .arg("eps", 0.5, "")
            .arg("on", true, "")
            .arg("dtype", DType::F32, "")
    }

    #[test]
    fn arguments_parse_as_their_defaults_type() {
        let given = ["rows=1_024", "shift=-3", "eps=1e-3", "on=false", "dtype=int8"].map(String::from);
        let a = spec().args(&given).unwrap();
        assert_eq!(a.usize("rows"), Ok(1024));
        assert_eq!(a.i64("shift"), Ok(-3));
        assert_eq!(a.f64("eps"), Ok(1e-3));
        assert_eq!(a.bool("on"), Ok(false));
        assert_eq!(a.dtype("dtype"), Ok(DType::I8));
        assert_eq!(a.describe(), "rows=1024 shift=-3 eps=0.001 on=false dtype=int8");
        assert_eq!(spec().args(&["dtype=bfloat16".into()]).unwrap().dtype("dtype"), Ok(DType::Bf16));
    }

    #[test]
    fn a_getter_of_another_type_or_name_is_an_error_naming_it() {
        let a = spec().args(&[]).unwrap();
        assert_eq!(a.f64("rows").unwrap_err().0, "argument `rows` of kernel `k` is a non-negative integer, not an f64");
        let e = a.usize("cols").unwrap_err().0;
        assert!(e.contains("kernel `k` has no argument `cols`") && e.contains("rows, shift, eps, on, dtype"), "{e}");
        assert_eq!(spec().args(&["on=maybe".into()]).unwrap_err().0, "--arg on: `maybe` is not true or false");
    }

    #[test]
    fn build_errors_name_the_kernel_and_its_arguments() {
        let s = spec();
        let e = s.build(&s.args(&[]).unwrap()).unwrap_err().0;
        assert_eq!(e, "building `k` (rows=8 shift=-1 eps=0.5 on=true dtype=f32): not built");
    }

    #[test]
    fn random_arrays_are_deterministic_and_in_range() {
        let a = random_array(DType::F32, &[8, 128], 3);
        assert_eq!(a, random_array(DType::F32, &[8, 128], 3));
        assert_ne!(a, random_array(DType::F32, &[8, 128], 4));
        assert!(a.to_f64().iter().all(|v| (-1.0..1.0).contains(v)));
        let i = random_array(DType::I32, &[64], 0).to_f64();
        assert!(i.iter().all(|v| (0.0..8.0).contains(v) && v.fract() == 0.0) && i.iter().any(|&v| v > 0.0));
    }
}
