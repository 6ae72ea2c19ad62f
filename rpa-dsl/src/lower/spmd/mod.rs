//! The SPMD module of a launch on a mesh ([`crate::mesh`]): `@main` on global arrays, one Shardy
//! `sdy.manual_computation` over every mesh axis whose region calls the per-device kernel (any
//! single-device module's `@main`, renamed `@rpa_kernel`) and runs the epilogue's collectives.
//!
//! Results of the per-device module beyond the kernel's outputs (checked mode's record, the print
//! log) come back stacked: per device `[1, ..]`, globally `[N, ..]` split over every axis.

use crate::lower::mlir::sanitize;
use crate::lower::stablehlo::tensor_type;
use crate::mesh::{Collective, MeshLaunch, MeshPlan, Sharding};
use crate::DType;

/// The module for `launch` of a kernel named `name` whose per-device program is `body` (a module
/// with a `func.func public @main`) returning the kernel's outputs, then i32 arrays of the shapes
/// `extras`.
pub fn module(launch: &MeshLaunch, plan: &MeshPlan, name: &str, body: &str, extras: &[Vec<usize>]) -> String {
    let mesh = &launch.mesh;
    let all_axes = Sharding::split_all(mesh);
    let ty = |dt: DType, s: &[usize]| tensor_type(dt, s);
    let in_g: Vec<String> = plan.inputs.iter().map(|a| ty(a.dtype, &a.global)).collect();
    let in_l: Vec<String> = plan.inputs.iter().map(|a| ty(a.dtype, &a.local)).collect();
    let mut out_g: Vec<String> = plan.outputs.iter().map(|a| ty(a.dtype, &a.global)).collect();
    let mut out_l: Vec<String> = plan.outputs.iter().map(|a| ty(a.dtype, &a.local)).collect();
    let mut out_s: Vec<String> = plan.outputs.iter().map(|a| sharding(&a.sharding, a.local.len())).collect();
    for e in extras {
        out_l.push(ty(DType::I32, &[&[1], &e[..]].concat()));
        out_g.push(ty(DType::I32, &[&[mesh.devices()], &e[..]].concat()));
        out_s.push(sharding(&all_axes, e.len() + 1));
    }
    let in_s: Vec<String> = plan.inputs.iter().map(|a| sharding(&a.sharding, a.local.len())).collect();
    let mut t = String::new();
    let n = mesh.devices();
    t += &format!(
        "module @{} attributes {{mhlo.num_partitions = {n} : i32, mhlo.num_replicas = 1 : i32}} {{\n",
        sanitize(name)
    );
    let axes: Vec<String> = mesh.axes().iter().map(|(a, s)| format!("\"{a}\"={s}")).collect();
    t += &format!("  sdy.mesh @mesh = <[{}]>\n", axes.join(", "));
    // An output that updates an input in place is that argument's buffer (`tf.aliasing_output`).
    let aliasing = |i: usize| match plan.aliases.iter().position(|a| *a == Some(i)) {
        Some(j) => format!(", tf.aliasing_output = {j} : i32"),
        None => String::new(),
    };
    let args: Vec<String> = in_g
        .iter()
        .zip(&in_s)
        .enumerate()
        .map(|(i, (g, s))| format!("%arg{i}: {g} {{sdy.sharding = #sdy.sharding{s}{}}}", aliasing(i)))
        .collect();
    let rets: Vec<String> =
        out_g.iter().zip(&out_s).map(|(g, s)| format!("{g} {{sdy.sharding = #sdy.sharding{s}}}")).collect();
    t += &format!("  func.func public @main({}) -> ({}) {{\n", args.join(", "), rets.join(", "));
    let k = out_g.len();
    let lhs = if k == 1 { "%r".to_string() } else { format!("%r:{k}") };
    let operands: Vec<String> = (0..in_g.len()).map(|i| format!("%arg{i}")).collect();
    let params: Vec<String> = in_l.iter().enumerate().map(|(i, l)| format!("%l{i}: {l}")).collect();
    let manual: Vec<String> = mesh.axes().iter().map(|(a, _)| format!("\"{a}\"")).collect();
    t += &format!(
        "    {lhs} = sdy.manual_computation({}) in_shardings=[{}] out_shardings=[{}] manual_axes={{{}}} ({}) {{\n",
        operands.join(", "),
        in_s.join(", "),
        out_s.join(", "),
        manual.join(", "),
        params.join(", ")
    );
    let mut region = Region { text: String::new(), next: 0, channel: 0 };
    let results = region.kernel_call(plan, extras, &in_l);
    let results = region.epilogue(launch, plan, results, extras);
    t += &region.text;
    t += &format!("      sdy.return {} : {}\n", results.join(", "), out_l.join(", "));
    t += &format!("    }} : ({}) -> ({})\n", in_g.join(", "), out_g.join(", "));
    let rets: Vec<String> = if k == 1 { vec!["%r".into()] } else { (0..k).map(|i| format!("%r#{i}")).collect() };
    t += &format!("    return {} : {}\n  }}\n", rets.join(", "), out_g.join(", "));
    t += &private_kernel(body);
    t += "}\n";
    t
}

/// `<@mesh, [{"tp"}, {}]>`: the Shardy sharding of an array of rank `rank`.
fn sharding(s: &Sharding, rank: usize) -> String {
    let dims: Vec<String> = (0..rank)
        .map(|d| format!("{{{}}}", s.axes_of(d).iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ")))
        .collect();
    format!("<@mesh, [{}]>", dims.join(", "))
}

/// The body module's functions, its `@main` made the private `@rpa_kernel` (without argument
/// attributes, which only mean something on an entry function).
fn private_kernel(body: &str) -> String {
    let lines: Vec<&str> = body.trim_end().lines().collect();
    let inner = &lines[1..lines.len().saturating_sub(1)];
    let mut out = String::new();
    for line in inner {
        let mut l = line.replace("func.func public @main(", "func.func private @rpa_kernel(");
        while let Some(at) = l.find(" {tf.aliasing_output") {
            let end = l[at..].find('}').map_or(l.len(), |e| at + e + 1);
            l.replace_range(at..end, "");
        }
        out += &l;
        out.push('\n');
    }
    out
}

/// The text of the manual computation's region.
struct Region {
    text: String,
    next: usize,
    channel: usize,
}

impl Region {
    fn fresh(&mut self) -> String {
        self.next += 1;
        format!("%v{}", self.next)
    }

    fn op(&mut self, rhs: String) -> String {
        let v = self.fresh();
        self.text += &format!("      {v} = {rhs}\n");
        v
    }

    /// Calls `@rpa_kernel` on the region's arguments; returns its results.
    fn kernel_call(&mut self, plan: &MeshPlan, extras: &[Vec<usize>], in_l: &[String]) -> Vec<String> {
        let mut res: Vec<String> = plan.kernel_outputs.iter().map(|o| tensor_type(o.dtype, &o.local)).collect();
        res.extend(extras.iter().map(|e| tensor_type(DType::I32, e)));
        let args: Vec<String> = (0..in_l.len()).map(|i| format!("%l{i}")).collect();
        let v = self.fresh();
        let lhs = if res.len() == 1 { v.clone() } else { format!("{v}:{}", res.len()) };
        self.text += &format!(
            "      {lhs} = func.call @rpa_kernel({}) : ({}) -> ({})\n",
            args.join(", "),
            in_l.join(", "),
            res.join(", ")
        );
        if res.len() == 1 {
            vec![v]
        } else {
            (0..res.len()).map(|i| format!("{v}#{i}")).collect()
        }
    }

    /// Runs the collectives on the kernel's outputs, and stacks the extras.
    fn epilogue(
        &mut self,
        launch: &MeshLaunch,
        plan: &MeshPlan,
        mut vals: Vec<String>,
        extras: &[Vec<usize>],
    ) -> Vec<String> {
        let mut types: Vec<(DType, Vec<usize>)> =
            plan.kernel_outputs.iter().map(|o| (o.dtype, o.local.clone())).collect();
        for c in &launch.epilogue {
            let groups = launch.mesh.groups(launch.mesh.axis(c.axis()).expect("a planned launch"));
            match c {
                Collective::AllGather { output, dim, .. } => {
                    let (dt, shape) = types[*output].clone();
                    let mut to = shape.clone();
                    to[*dim] *= groups[0].len();
                    let attrs = format!("all_gather_dim = {dim} : i64, {}", self.channel_and_groups(&groups));
                    let (from_t, to_t) = (tensor_type(dt, &shape), tensor_type(dt, &to));
                    vals[*output] = self.op(format!(
                        "\"stablehlo.all_gather\"({}) <{{{attrs}}}> : ({from_t}) -> {to_t}",
                        vals[*output]
                    ));
                    types[*output].1 = to;
                }
                Collective::LseMerge { out, lse, lse_dims, .. } => {
                    let (o, l) =
                        self.lse_merge(&types[*out], &types[*lse].1, &vals[*out], &vals[*lse], lse_dims, &groups);
                    vals[*out] = o;
                    vals[*lse] = l;
                }
            }
        }
        for (i, e) in extras.iter().enumerate() {
            let v = vals[plan.kernel_outputs.len() + i].clone();
            let to = tensor_type(DType::I32, &[&[1], &e[..]].concat());
            vals[plan.kernel_outputs.len() + i] =
                self.op(format!("stablehlo.reshape {v} : ({}) -> {to}", tensor_type(DType::I32, e)));
        }
        vals
    }

    fn channel_and_groups(&mut self, groups: &[Vec<usize>]) -> String {
        self.channel += 1;
        let rows: Vec<String> = groups
            .iter()
            .map(|g| format!("[{}]", g.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")))
            .collect();
        format!(
            "channel_handle = #stablehlo.channel_handle<handle = {}, type = 1>, replica_groups = dense<[{}]> : tensor<{}x{}xi64>, use_global_device_ids",
            self.channel,
            rows.join(", "),
            groups.len(),
            groups[0].len()
        )
    }

    /// An f32 all-reduce (`maximum` or `add`) of `x` of type `t` over `groups`.
    pub(super) fn all_reduce(&mut self, x: &str, t: &str, op: &str, groups: &[Vec<usize>]) -> String {
        let attrs = self.channel_and_groups(groups);
        let (a, b, c) = (self.fresh(), self.fresh(), self.fresh());
        self.op(format!(
            "\"stablehlo.all_reduce\"({x}) <{{{attrs}}}> ({{\n      ^bb0({a}: tensor<f32>, {b}: tensor<f32>):\n        {c} = stablehlo.{op} {a}, {b} : tensor<f32>\n        stablehlo.return {c} : tensor<f32>\n      }}) : ({t}) -> {t}"
        ))
    }
}

mod merge;
