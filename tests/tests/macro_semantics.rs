//! What the `#[tpu_kernel]` / `#[tpu_fn]` rewriting records: built kernels checked structurally.

use rpa_dsl::ir::{Block, Inst, Op};
use rpa_dsl::prelude::*;

/// Every instruction of a block, nested regions included, in order.
fn all_insts(b: &Block) -> Vec<&Inst> {
    let mut out = Vec::new();
    walk(b, &mut out);
    out
}

fn walk<'a>(b: &'a Block, out: &mut Vec<&'a Inst>) {
    for i in &b.insts {
        out.push(i);
        match &i.op {
            Op::For { body, .. } => walk(body, out),
            Op::If { then_body, else_body, .. } => {
                walk(then_body, out);
                walk(else_body, out);
            }
            Op::While { cond_body, body, .. } => {
                walk(cond_body, out);
                walk(body, out);
            }
            _ => {}
        }
    }
}

fn count(k: &Kernel, pred: impl Fn(&Op) -> bool) -> usize {
    all_insts(&k.body).iter().filter(|i| pred(&i.op)).count()
}

// ---- a runtime `for` is one IR loop -----------------------------------------------------------

const FOR_LINE: u32 = line!() + 4;
#[tpu_kernel]
fn runtime_for(#[comptime] n: usize, flags: Smem<i32, { [8] }>) {
    let mut acc = Scalar::constant(I32, 0.0);
    for i in 0..n {
        acc = acc + flags.get(i);
    }
    flags.set(0, acc);
}

#[test]
fn runtime_for_is_one_loop_with_a_variable() {
    let k = runtime_for(8).unwrap();
    assert_eq!(count(&k, |o| matches!(o, Op::For { .. })), 1);
    assert_eq!(count(&k, |o| matches!(o, Op::VarDecl { .. })), 1);
    assert_eq!(count(&k, |o| matches!(o, Op::VarSet { .. })), 1);
    // The loop body reads the variable and the SMEM ref once: no unrolling.
    assert_eq!(count(&k, |o| matches!(o, Op::ScalarLoad { .. })), 1);
    let for_inst = all_insts(&k.body).into_iter().find(|i| matches!(i.op, Op::For { .. })).unwrap();
    assert_eq!(for_inst.loc.line, FOR_LINE);
    assert!(for_inst.loc.file.ends_with("macro_semantics.rs"), "{}", for_inst.loc.file);
}

// ---- `#[unroll]` and comptime `if` are plain Rust --------------------------------------------

#[tpu_kernel]
fn comptime_control(#[comptime] n: usize, #[comptime] flag: bool, flags: Smem<i32, { [8] }>) {
    #[unroll]
    for i in 0..n {
        flags.set(i, 1);
    }
    if flag {
        flags.set(0, 2);
    } else {
        flags.set(0, 3);
        flags.set(1, 3);
    }
    if false {
        flags.set(0, 4);
    }
    let m = if n > 2 { n } else { 2 };
    flags.set(m, 5);
}

#[test]
fn comptime_control_flow_builds_only_what_runs() {
    let k = comptime_control(3, true).unwrap();
    assert_eq!(count(&k, |o| matches!(o, Op::For { .. } | Op::If { .. })), 0);
    // 3 unrolled stores + the `flag` branch + the value-`if` one.
    assert_eq!(count(&k, |o| matches!(o, Op::ScalarStore { .. })), 5);
    let k = comptime_control(2, false).unwrap();
    assert_eq!(count(&k, |o| matches!(o, Op::ScalarStore { .. })), 2 + 2 + 1);
}

// ---- runtime `if`, value `if`, `while` ---------------------------------------------------------

const IF_LINE: u32 = line!() + 4;
#[tpu_kernel]
fn runtime_branches(flags: Smem<i32, { [8] }>) {
    let x = flags.get(0);
    if x > 0 {
        flags.set(1, x);
    }
    let y = if x > 3 { x * 2 } else { x + 1 };
    flags.set(2, y);
    let mut i = Scalar::constant(I32, 0.0);
    while i < x && i < 8 {
        flags.set(i, i);
        i += 1;
    }
}

#[test]
fn runtime_if_and_while() {
    let k = runtime_branches().unwrap();
    assert_eq!(count(&k, |o| matches!(o, Op::If { .. })), 2);
    assert_eq!(count(&k, |o| matches!(o, Op::While { .. })), 1);
    // The first `if` (no `else`): the store is in its then-region, its else-region is empty.
    let first_if = k.body.insts.iter().find_map(|i| match &i.op {
        Op::If { then_body, else_body, .. } => Some((then_body, else_body)),
        _ => None,
    });
    let (then_body, else_body) = first_if.unwrap();
    let if_inst = k.body.insts.iter().find(|i| matches!(i.op, Op::If { .. })).unwrap();
    assert_eq!((if_inst.loc.line, if_inst.loc.col), (IF_LINE, 5), "an `if` is located at its keyword");
    assert!(then_body.insts.iter().any(|i| matches!(i.op, Op::ScalarStore { .. })));
    assert!(else_body.insts.is_empty());
    // The value `if` declares a result variable, set in both branches and read after.
    assert!(count(&k, |o| matches!(o, Op::VarDecl { init: None, .. })) >= 1);
    assert!(count(&k, |o| matches!(o, Op::VarSet { .. })) >= 3);
}

// ---- a comptime variable assigned in a runtime region is an error ----------------------------

const ASSIGN_LINE: u32 = line!() + 7;
#[tpu_kernel]
fn comptime_assigned_at_runtime(flags: Smem<i32, { [8] }>) {
    let mut count = 0usize;
    let x = flags.get(0);
    if x > 0 {
        flags.set(1, x);
        count = count + 1;
    }
    flags.set(count, x);
}

#[test]
fn comptime_variable_in_runtime_region_is_reported() {
    let err = comptime_assigned_at_runtime().unwrap_err();
    let d = err.first();
    assert!(d.message.contains("`count`"), "{err}");
    assert_eq!(d.loc.line, ASSIGN_LINE, "{err}");
}

// ---- op locations are the author's lines -------------------------------------------------------

/// The line of `fn located`.
const KERNEL_LINE: u32 = line!() + 2;
#[tpu_kernel(grid = [rows / 8], semantics = [parallel])]
fn located(
    #[comptime] rows: usize,
    #[block([8, 128], |i| [i, 0])] x: In<f32, { [rows, 128] }>,
    #[block([8, 128], |i| [i, 0])] o: Out<f32, rows, 128>,
) {
    let t = x.load();
    let u = t * 2.0;
    o.store(u);
}

#[test]
fn locations_point_at_the_source() {
    let k = located(16).unwrap();
    assert_eq!(k.loc.line, KERNEL_LINE, "the kernel's loc is its name");
    assert_eq!(k.loc.col, 4);
    assert_eq!(k.params[0].loc.line, KERNEL_LINE + 2);
    assert_eq!(k.params[1].loc.line, KERNEL_LINE + 3);
    assert_eq!(k.grid, vec![2]);
    let lines: Vec<u32> = k.body.insts.iter().map(|i| i.loc.line).collect();
    let load = k.body.insts.iter().find(|i| matches!(i.op, Op::Load { .. })).unwrap();
    assert_eq!(load.loc.line, KERNEL_LINE + 5, "{lines:?}");
    let store = k.body.insts.iter().find(|i| matches!(i.op, Op::Store { .. })).unwrap();
    assert_eq!(store.loc.line, KERNEL_LINE + 7, "{lines:?}");
    let mul = k.body.insts.iter().find(|i| matches!(i.op, Op::Binary { .. })).unwrap();
    assert_eq!(mul.loc.line, KERNEL_LINE + 6, "{lines:?}");
}

// ---- index maps ---------------------------------------------------------------------------------

#[tpu_kernel(grid = [2])]
fn too_many_grid_indices(
    #[block([8, 128], |i, j| [i, j])] x: In<f32, { [16, 128] }>,
    #[block([8, 128], |i| [i, 0])] o: Out<f32, { [16, 128] }>,
) {
    o.store(x.load());
}

#[test]
fn index_map_taking_more_indices_than_the_grid_is_reported() {
    let err = too_many_grid_indices().unwrap_err();
    assert!(err.first().message.contains("takes 2 grid indices, but the grid has rank 1"), "{err}");
}

// ---- `#[when(cond)]`: an operand that exists only when a comptime condition holds ---------------

#[tpu_kernel]
fn optional_output(
    #[comptime] with_sum: bool,
    x: In![f32, [8, 128]],
    y: Out![f32, [8, 128]],
    #[when(with_sum)] sum: Out![f32, [8, 128]],
    buf: Vmem![f32, [8, 128]],
    sems: DmaSems<1>,
) {
    copy(x, buf, sems.at(0)).start_and_wait();
    copy(buf, y, sems.at(0)).start_and_wait();
    if let Some(sum) = sum {
        buf.store(buf.load() + buf.load());
        copy(buf, sum, sems.at(0)).start_and_wait();
    }
}

#[test]
fn a_when_operand_exists_only_when_its_condition_holds() {
    let with = optional_output(true).unwrap();
    let without = optional_output(false).unwrap();
    let names = |k: &Kernel| k.params.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&with), ["x", "y", "sum", "buf", "sems"]);
    assert_eq!(names(&without), ["x", "y", "buf", "sems"]);
    let dmas = |k: &Kernel| count(k, |op| matches!(op, Op::DmaStart { .. }));
    assert_eq!((dmas(&with), dmas(&without)), (3, 2));
    let x = rpa_dsl::Array::from_f64(F32, &[8, 128], &vec![1.5; 1024]);
    let out = rpa_dsl::interpret::run(&with, &[x], &Default::default()).unwrap().outputs;
    assert_eq!(out.len(), 2);
    assert!(out[1].to_f64().iter().all(|&v| v == 3.0));
}
