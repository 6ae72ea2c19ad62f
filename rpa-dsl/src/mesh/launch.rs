//! A launch on a mesh: its description, and its plan for one kernel (shapes, checks).

use super::{Collective, Mesh, MeshError, Sharding};
use crate::{Array, DType, Kernel, KernelError, Loc};

/// A kernel launch on a mesh (see the [module docs](super)).
#[derive(Clone, Debug, PartialEq)]
pub struct MeshLaunch {
    pub mesh: Mesh,
    /// One per kernel input (scalar-prefetch operands, then inputs, in parameter order).
    pub inputs: Vec<Sharding>,
    /// One per kernel output: how the per-device results, after the epilogue, make up the
    /// global result.
    pub outputs: Vec<Sharding>,
    /// Collectives run on the per-device outputs, in order.
    pub epilogue: Vec<Collective>,
}

/// One argument or result of a launch: per-device and global shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct MeshArg {
    pub name: String,
    pub dtype: DType,
    pub local: Vec<usize>,
    pub global: Vec<usize>,
    pub sharding: Sharding,
}

/// A [`MeshLaunch`] checked against a kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct MeshPlan {
    pub inputs: Vec<MeshArg>,
    /// The kernel's per-device outputs, before the epilogue (`global` unused: equal to `local`).
    pub kernel_outputs: Vec<MeshArg>,
    /// The results, after the epilogue.
    pub outputs: Vec<MeshArg>,
    /// Per result: the input it updates in place (the kernel output aliases that input, with
    /// the same global shape and sharding, and no collective writes it).
    pub aliases: Vec<Option<usize>>,
}

impl MeshLaunch {
    /// A launch on `mesh` with no arguments described yet.
    pub fn new(mesh: Mesh) -> MeshLaunch {
        MeshLaunch { mesh, inputs: Vec::new(), outputs: Vec::new(), epilogue: Vec::new() }
    }

    /// The sharding of each kernel input.
    pub fn inputs(self, inputs: Vec<Sharding>) -> MeshLaunch {
        MeshLaunch { inputs, ..self }
    }

    /// The sharding of each result.
    pub fn outputs(self, outputs: Vec<Sharding>) -> MeshLaunch {
        MeshLaunch { outputs, ..self }
    }

    /// Appends [`Collective::AllGather`] of `output` along `dim` over `axis`.
    pub fn all_gather(mut self, output: usize, dim: usize, axis: &str) -> MeshLaunch {
        self.epilogue.push(Collective::AllGather { output, dim, axis: axis.to_string() });
        self
    }

    /// Appends [`Collective::LseMerge`] of outputs `out` and `lse` over `axis`.
    pub fn lse_merge(mut self, out: usize, lse: usize, lse_dims: &[usize], axis: &str) -> MeshLaunch {
        self.epilogue.push(Collective::LseMerge { out, lse, lse_dims: lse_dims.to_vec(), axis: axis.to_string() });
        self
    }

    /// Checks the launch against `kernel` (built for one device's shapes) and works out every
    /// argument's global shape.
    pub fn plan(&self, kernel: &Kernel) -> Result<MeshPlan, KernelError> {
        let err = |what: Option<&str>, m: String| KernelError::single(&kernel.name, what, kernel.loc, m);
        let inputs = self.args(kernel.inputs(), &self.inputs, "input").map_err(|(n, m)| err(n.as_deref(), m))?;
        let kernel_outputs: Vec<MeshArg> = self
            .args(kernel.outputs(), &vec![Sharding::replicated(); kernel.outputs().count()], "output")
            .map_err(|(n, m)| err(n.as_deref(), m))?;
        if kernel_outputs.is_empty() {
            return Err(err(None, "a kernel launched on a mesh needs an output".into()));
        }
        let mut types: Vec<(DType, Vec<usize>)> = kernel_outputs.iter().map(|o| (o.dtype, o.local.clone())).collect();
        for (i, c) in self.epilogue.iter().enumerate() {
            c.apply_types(&self.mesh, &mut types).map_err(|e| err(None, format!("collective {i} ({c:?}) {e}")))?;
        }
        if self.outputs.len() != kernel_outputs.len() {
            return Err(err(
                None,
                format!(
                    "the launch gives {} output shardings; the kernel has {} outputs",
                    self.outputs.len(),
                    kernel_outputs.len()
                ),
            ));
        }
        let mut outputs = Vec::new();
        for (i, (o, s)) in kernel_outputs.iter().zip(&self.outputs).enumerate() {
            let name = Some(o.name.as_str());
            s.check(&self.mesh, o.local.len())
                .map_err(|e| err(name, format!("the sharding of output `{}` {e}", o.name)))?;
            if let Some(c) = self.epilogue.iter().find(|c| c.outputs().contains(&i) && s.uses(c.axis())) {
                return Err(err(
                    name,
                    format!(
                        "output `{}` is split over mesh axis `{}`, which {c:?} makes it replicated over",
                        o.name,
                        c.axis()
                    ),
                ));
            }
            let local = types[i].1.clone();
            let global = s.global_shape(&self.mesh, &local);
            outputs.push(MeshArg { name: o.name.clone(), dtype: o.dtype, local, global, sharding: s.clone() });
        }
        let aliases = self.aliases(kernel, &inputs, &outputs);
        Ok(MeshPlan { inputs, kernel_outputs, outputs, aliases })
    }

    fn aliases(&self, kernel: &Kernel, inputs: &[MeshArg], outputs: &[MeshArg]) -> Vec<Option<usize>> {
        let mut taken = vec![false; inputs.len()];
        kernel
            .outputs()
            .zip(outputs)
            .enumerate()
            .map(|(j, (p, out))| {
                let operand = kernel.operands().nth(p.alias_of?)?;
                let i = inputs.iter().position(|a| a.name == operand.name)?;
                let same = inputs[i].global == out.global
                    && inputs[i].dtype == out.dtype
                    && inputs[i].sharding == out.sharding;
                let collected = self.epilogue.iter().any(|c| c.outputs().contains(&j));
                (same && !collected && !std::mem::replace(&mut taken[i], true)).then_some(i)
            })
            .collect()
    }

    fn args<'k>(
        &self,
        params: impl Iterator<Item = &'k crate::ir::Param>,
        shardings: &[Sharding],
        what: &str,
    ) -> Result<Vec<MeshArg>, (Option<String>, String)> {
        let params: Vec<_> = params.collect();
        if what == "input" && params.len() != shardings.len() {
            return Err((
                None,
                format!("the launch gives {} input shardings; the kernel has {} inputs", shardings.len(), params.len()),
            ));
        }
        let mut out = Vec::new();
        for (p, s) in params.iter().zip(shardings) {
            let array =
                p.array.as_ref().ok_or_else(|| (Some(p.name.clone()), "operand without an array type".into()))?;
            let local =
                array.static_shape().ok_or_else(|| (Some(p.name.clone()), "operand with a dynamic shape".into()))?;
            s.check(&self.mesh, local.len())
                .map_err(|e: MeshError| (Some(p.name.clone()), format!("the sharding of {what} `{}` {e}", p.name)))?;
            let global = s.global_shape(&self.mesh, &local);
            out.push(MeshArg { name: p.name.clone(), dtype: array.dtype, local, global, sharding: s.clone() });
        }
        Ok(out)
    }
}

impl MeshPlan {
    /// Checks the global input arrays of a launch of the kernel named `kernel.0` (defined at
    /// `kernel.1`): count, dtypes and shapes (a dim a sharding cannot split evenly is named with
    /// the axes it is split over).
    pub fn check_inputs(&self, launch: &MeshLaunch, kernel: (&str, Loc), inputs: &[Array]) -> Result<(), KernelError> {
        let err = |what: Option<&str>, m: String| KernelError::single(kernel.0, what, kernel.1, m);
        if inputs.len() != self.inputs.len() {
            let names: Vec<&str> = self.inputs.iter().map(|a| a.name.as_str()).collect();
            return Err(err(
                None,
                format!("expects {} input arrays ({}), got {}", names.len(), names.join(", "), inputs.len()),
            ));
        }
        for (a, arg) in inputs.iter().zip(&self.inputs) {
            let name = Some(arg.name.as_str());
            if a.dtype() != arg.dtype || a.shape().len() != arg.global.len() {
                return Err(err(
                    name,
                    format!(
                        "input `{}` expects {}{:?}, got {}{:?}",
                        arg.name,
                        arg.dtype,
                        arg.global,
                        a.dtype(),
                        a.shape()
                    ),
                ));
            }
            for (d, (&n, &want)) in a.shape().iter().zip(&arg.global).enumerate() {
                let blocks = arg.sharding.blocks(&launch.mesh, d);
                if n % blocks != 0 {
                    let axes = arg.sharding.axes_of(d).iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", ");
                    return Err(err(
                        name,
                        format!(
                        "dim {d} of input `{}` has size {n}, which mesh axes {axes} ({blocks} blocks) do not divide",
                        arg.name
                    ),
                    ));
                }
                if n != want {
                    return Err(err(name, format!(
                        "input `{}` expects global shape {:?} (the kernel's {:?} times the blocks of its sharding), got {:?}",
                        arg.name, arg.global, arg.local, a.shape()
                    )));
                }
            }
        }
        Ok(())
    }
}
