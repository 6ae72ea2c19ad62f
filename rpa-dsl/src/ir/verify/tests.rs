use super::*;
use crate::frontend::control::*;
use crate::frontend::{build_kernel, launch, program_id, Hbm, Scalar};
use crate::DType::*;

fn map2(g: &[Scalar]) -> Vec<Scalar> {
    vec![g[0], launch::block_index(0)]
}

/// `x` (blocked, [32, 128] / [8, 128]) → `o` (same), `o = x + 1`.
fn add_kernel() -> Kernel {
    build_kernel("add", Loc::caller(), || {
        launch::grid(&[4]);
        let x = launch::input_blocked("x", F32, &[32, 128], &[8, 128], map2);
        let o = launch::output_blocked("o", F32, &[32, 128], &[8, 128], map2, None);
        o.store(x.load() + 1.0f32);
    })
    .unwrap()
}

fn errors(r: Result<(), KernelError>) -> Vec<Diagnostic> {
    r.expect_err("the verifier should fail").diagnostics
}

/// The one diagnostic whose message contains `needle`.
fn find(diags: &[Diagnostic], needle: &str) -> Diagnostic {
    let found: Vec<&Diagnostic> = diags.iter().filter(|d| d.message.contains(needle)).collect();
    assert_eq!(found.len(), 1, "one diagnostic with `{needle}` expected in {diags:#?}");
    found[0].clone()
}

fn index_of(k: &Kernel, name: &str) -> usize {
    k.body.insts.iter().position(|i| i.op.name() == name).unwrap()
}

#[test]
fn a_good_kernel_verifies_on_every_target() {
    let k = add_kernel();
    for t in TpuTarget::ALL {
        verify(&k, t).unwrap();
    }
    // Two double-buffered 8×128 f32 blocks.
    assert_eq!(vmem_usage(&k), 2 * 2 * 8 * 128 * 4);
    assert_eq!(smem_usage(&k), 0);
}

#[test]
fn tiling_rule() {
    let mut line = 0;
    let k = build_kernel("tiles", Loc::caller(), || {
        launch::grid(&[4]);
        line = line!() + 1;
        let x = launch::input_blocked("x", F32, &[32, 200], &[8, 100], map2);
        let o = launch::output_blocked("o", F32, &[32, 200], &[8, 200], map2, None);
        o.view(&[crate::frontend::full_dim(), crate::frontend::ds(0, 100)]).store(x.load());
    })
    .unwrap();
    verify_structure(&k).unwrap();
    let diags = errors(verify(&k, TpuTarget::V6e));
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    assert_eq!(
        d.message,
        "block shape [8, 100] of `x` breaks the TPU tiling rule: the last two dimensions must be \
         multiples of (8, 128) for f32 or equal the array's dimensions [32, 200]"
    );
    assert_eq!((d.loc.file, d.loc.line), (file!(), line));
    assert_eq!(d.op.as_deref(), Some("x"));
    assert_eq!(d.kernel, "tiles");
}

#[test]
fn tiling_rule_scales_with_packing_and_rank() {
    let mut lines = (0, 0);
    let k = build_kernel("tiles", Loc::caller(), || {
        launch::grid(&[2]);
        let m = |g: &[Scalar]| vec![launch::block_index(0), g[0], launch::block_index(0)];
        lines.0 = line!() + 1;
        launch::input_blocked("a", Bf16, &[2, 64, 256], &[1, 8, 128], m);
        // The full extent is always allowed.
        launch::input_blocked("b", Bf16, &[2, 24, 100], &[1, 24, 100], m);
        lines.1 = line!() + 1;
        launch::input_blocked("c", F32, &[512], &[100], |g: &[Scalar]| vec![g[0]]);
        launch::input_blocked("d", F32, &[512], &[256], |g: &[Scalar]| vec![g[0]]);
    })
    .unwrap();
    let diags = errors(verify(&k, TpuTarget::V5e));
    assert_eq!(diags.len(), 2, "{diags:#?}");
    let a = find(&diags, "`a`");
    assert_eq!(
        a.message,
        "block shape [1, 8, 128] of `a` breaks the TPU tiling rule: the last two dimensions must \
         be multiples of (16, 128) for bf16 or equal the array's last two dimensions [64, 256]"
    );
    assert_eq!(a.loc.line, lines.0);
    let c = find(&diags, "`c`");
    assert_eq!(
        c.message,
        "block shape [100] of `c` breaks the TPU tiling rule: the last dimension must be a \
         multiple of 128 or equal the array's dimension [512]"
    );
    assert_eq!(c.loc.line, lines.1);
}

#[test]
fn block_larger_than_array() {
    let mut line = 0;
    let k = build_kernel("big", Loc::caller(), || {
        launch::grid(&[1]);
        line = line!() + 1;
        launch::input_blocked("x", F32, &[8, 128], &[16, 128], map2);
    })
    .unwrap();
    let d = errors(verify(&k, TpuTarget::V6e)).remove(0);
    assert_eq!(
        d.message,
        "block shape [16, 128] of `x` does not fit the array f32[8, 128]: dimension 0 must be \
         between 1 and 8"
    );
    assert_eq!(d.loc.line, line);
}

#[test]
fn vmem_budget_depends_on_the_target() {
    let mut line = 0;
    let k = build_kernel("big_scratch", Loc::caller(), || {
        launch::grid(&[1]);
        launch::vmem_limit(100 * MIB + MIB);
        launch::input_blocked("x", F32, &[32, 128], &[8, 128], map2);
        line = line!() + 1;
        launch::scratch_vmem("acc", F32, &[25 * 1024, 1024]); // 100 MiB
    })
    .unwrap();
    assert_eq!(vmem_usage(&k), 100 * MIB + 2 * 8 * 128 * 4);
    verify(&k, TpuTarget::V6e).unwrap();
    verify(&k, TpuTarget::V5e).unwrap();
    let diags = errors(verify(&k, TpuTarget::V7x));
    assert_eq!(diags.len(), 2, "{diags:#?}");
    assert_eq!(diags[0].message, "vmem_limit of 101.0 MiB exceeds the 64.0 MiB of VMEM on v7x");
    let d = &diags[1];
    assert_eq!(
        d.message,
        "VMEM over budget on v7x: 100.0 MiB needed (scratch `acc` 100.0 MiB, input `x` 2 × 4.0 \
         KiB) but the limit is 64.0 MiB (the VMEM of v7x)"
    );
    assert_eq!((d.loc.file, d.loc.line), (file!(), line));
    assert_eq!(d.op.as_deref(), Some("acc"));
}

#[test]
fn vmem_limit_is_the_budget_and_is_capped_by_the_target() {
    let mut line = 0;
    let mut k = build_kernel("limited", Loc::caller(), || {
        launch::grid(&[1]);
        launch::vmem_limit(8 * MIB);
        line = line!() + 1;
        launch::input_blocked("x", F32, &[4096, 512], &[2048, 512], map2); // 2 × 4 MiB
        launch::scratch_vmem("s", F32, &[512, 1024]); // 2 MiB
    })
    .unwrap();
    let d = errors(verify(&k, TpuTarget::V6e)).remove(0);
    assert_eq!(
        d.message,
        "VMEM over budget on v6e: 10.0 MiB needed (input `x` 2 × 4.0 MiB, scratch `s` 2.0 MiB) \
         but the limit is 8.0 MiB (vmem_limit)"
    );
    assert_eq!(d.loc.line, line);
    k.vmem_limit = Some(100 * MIB);
    verify(&k, TpuTarget::V6e).unwrap();
    let d = errors(verify(&k, TpuTarget::V7x)).remove(0);
    assert_eq!(d.message, "vmem_limit of 100.0 MiB exceeds the 64.0 MiB of VMEM on v7x");
    assert_eq!(d.loc, k.loc);
}

#[test]
fn smem_budget() {
    let mut line = 0;
    let k = build_kernel("tables", Loc::caller(), || {
        launch::grid(&[1]);
        line = line!() + 1;
        launch::prefetch("pages", I32, &[300_000]);
        launch::scratch_smem("m", F32, &[1024]);
    })
    .unwrap();
    assert_eq!(smem_usage(&k), 300_000 * 4 + 1024 * 4);
    let diags = errors(verify(&k, TpuTarget::V6e));
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(
        diags[0].message,
        "SMEM over budget on v6e: 1.1 MiB needed (prefetch `pages` 1.1 MiB, scratch `m` 4.0 KiB) \
         but the limit is 1.0 MiB (the SMEM of v6e)"
    );
    assert_eq!(diags[0].loc.line, line);
    assert_eq!(diags[0].op.as_deref(), Some("pages"));
}

#[test]
fn use_before_definition() {
    let mut line = 0;
    let mut k = build_kernel("swap", Loc::caller(), || {
        launch::grid(&[4]);
        let x = launch::input_blocked("x", F32, &[32, 128], &[8, 128], map2);
        let o = launch::output_blocked("o", F32, &[32, 128], &[8, 128], map2, None);
        let t = x.load();
        line = line!() + 1;
        let u = t.exp();
        o.store(u);
    })
    .unwrap();
    let (load, exp) = (index_of(&k, "load"), index_of(&k, "exp"));
    k.body.insts.swap(load, exp);
    let diags = errors(verify_structure(&k));
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    let loaded = k.body.insts[exp].result.unwrap();
    let load_loc = k.body.insts[exp].loc;
    assert_eq!(d.message, format!("%{} is used before it is defined (at {load_loc})", loaded.0));
    assert_eq!(d.op.as_deref(), Some("exp"));
    assert_eq!((d.loc.file, d.loc.line), (file!(), line));
    assert!(d.to_string().contains("kernel `swap`, `exp`: %"), "{d}");
    // `verify` reports the structural error too.
    assert_eq!(errors(verify(&k, TpuTarget::V6e)), diags);
}

#[test]
fn value_used_outside_its_region() {
    let mut lines = (0, 0);
    let err = build_kernel("escape", Loc::caller(), || {
        launch::grid(&[1]);
        let x = launch::input_blocked("x", F32, &[8, 128], &[8, 128], map2);
        let o = launch::output_blocked("o", F32, &[8, 128], &[8, 128], map2, None);
        let lp = ForLoop::begin(0, 4);
        lines.0 = line!() + 1;
        let t = x.load();
        lp.end();
        lines.1 = line!() + 1;
        o.store(t);
    })
    .unwrap_err();
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = err.first();
    let defined_at = format!("is used outside the region that defines it (at {}:{}:", file!(), lines.0);
    assert!(d.message.starts_with('%') && d.message.contains(&defined_at), "{d}");
    assert_eq!((d.op.as_deref(), d.loc.line), (Some("store"), lines.1));
}

#[test]
fn variable_used_outside_its_region() {
    let mut line = 0;
    let err = build_kernel("var_escape", Loc::caller(), || {
        launch::grid(&[1]);
        let x = launch::input_blocked("x", F32, &[8, 128], &[8, 128], map2);
        let o = launch::output_blocked("o", F32, &[8, 128], &[8, 128], map2, None);
        let lp = ForLoop::begin(0, 4);
        let v = MutInit::new(x.load()).__rpa_into_mut();
        lp.end();
        line = line!() + 1;
        o.store(v);
    })
    .unwrap_err();
    let d = err.first();
    assert!(d.message.starts_with("variable $0 is used outside the region that declares it"), "{d}");
    assert_eq!((d.op.as_deref(), d.loc.line), (Some("var_get"), line));
}

#[test]
fn variable_used_before_its_declaration() {
    let mut line = 0;
    let mut k = build_kernel("vars", Loc::caller(), || {
        launch::grid(&[1]);
        let x = launch::input_blocked("x", F32, &[8, 128], &[8, 128], map2);
        let o = launch::output_blocked("o", F32, &[8, 128], &[8, 128], map2, None);
        let v = MutInit::new(x.load()).__rpa_into_mut();
        line = line!() + 1;
        o.store(v);
    })
    .unwrap();
    let (decl, get) = (index_of(&k, "var"), index_of(&k, "var_get"));
    k.body.insts.swap(decl, get);
    let diags = errors(verify_structure(&k));
    let d = find(&diags, "variable $0 is used before its declaration");
    assert_eq!((d.op.as_deref(), d.loc.line), (Some("var_get"), line));
}

#[test]
fn index_maps_only_see_grid_indices_and_prefetch() {
    let mut line = 0;
    let err = build_kernel("maps", Loc::caller(), || {
        launch::grid(&[4]);
        let pages = launch::prefetch("pages", I32, &[4]);
        // Reading scalar prefetch is fine.
        launch::input_blocked("x", F32, &[32, 128], &[8, 128], |g: &[Scalar]| {
            vec![pages.get(g[0]), launch::block_index(0)]
        });
        let p = program_id(0);
        line = line!() + 1;
        launch::input_blocked("y", F32, &[32, 128], &[8, 128], |_: &[Scalar]| vec![p, launch::block_index(0)]);
    })
    .unwrap_err();
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = err.first();
    assert!(
        d.message.starts_with(
            "block index 0 of the index map of `y`: index maps may only use their grid indices, \
             values they define and scalar-prefetch operands, but %"
        ),
        "{d}"
    );
    assert!(d.message.contains("is a value of the kernel body (defined at"), "{d}");
    assert_eq!((d.op.as_deref(), d.loc.line), (Some("y"), line));
}

#[test]
fn index_map_values_are_not_visible_in_the_body() {
    let mut k = add_kernel();
    let g = k.params[0].block.as_ref().unwrap().index_map.grid_indices[0];
    let store = index_of(&k, "store");
    if let Op::Store { value, .. } = &mut k.body.insts[store].op {
        *value = g;
    }
    let diags = errors(verify_structure(&k));
    let d = find(&diags, "belongs to the index map of `x`");
    assert_eq!(d.message, format!("%{} belongs to the index map of `x` and cannot be used in the kernel body", g.0));
}

#[test]
fn result_types_are_rechecked() {
    let mut k = add_kernel();
    let load = index_of(&k, "load");
    let r = k.body.insts[load].result.unwrap();
    k.values[r.0 as usize] = Type::Vector { dtype: Bf16, shape: vec![8, 128] };
    let diags = errors(verify_structure(&k));
    let d = find(&diags, "result type mismatch");
    assert_eq!(
        d.message,
        format!(
            "result type mismatch: the type rule of `load` gives vector<f32[8, 128]>, but %{} is \
             recorded as vector<bf16[8, 128]>",
            r.0
        )
    );
    assert_eq!(d.loc, k.body.insts[load].loc);
    // The add now mixes bf16 and f32: its type rule fails too.
    find(&diags, "operand dtypes differ");
}

#[test]
fn memory_spaces_of_ops() {
    let mut lines = (0, 0);
    let mut k = build_kernel("spaces", Loc::caller(), || {
        launch::grid(&[1]);
        let h = launch::input::<Hbm>("h", F32, &[8, 128]);
        let o = launch::output_blocked("o", F32, &[8, 128], &[8, 128], map2, None);
        let buf = launch::scratch_vmem("buf", F32, &[8, 128]);
        let sems = launch::dma_sems("sems", &[1]);
        lines.0 = line!() + 1;
        crate::frontend::copy(h, buf, sems.at(0)).start_and_wait();
        lines.1 = line!() + 1;
        o.store(buf.load());
    })
    .unwrap();
    let pages = k.values.len();
    k.values.push(Type::Ref(crate::ir::RefType::fixed(MemSpace::Smem, F32, &[8, 128])));
    let (h, sems) = (k.params[0].value, k.params[3].value);
    for inst in &mut k.body.insts {
        match &mut inst.op {
            Op::Load { src } => *src = h,
            Op::DmaStart { dst, .. } => *dst = ValueId(pages as u32),
            Op::Store { value, .. } => *value = sems,
            _ => {}
        }
    }
    let diags = errors(verify(&k, TpuTarget::V6e));
    let load = find(&diags, "HBM is reachable only by DMA");
    assert_eq!((load.op.as_deref(), load.loc.line), (Some("load"), lines.1));
    let dma = find(&diags, "DMA destination is in SMEM");
    assert_eq!((dma.op.as_deref(), dma.loc.line), (Some("dma_start"), lines.0));
    let sem = find(&diags, "stored value must be a vector, got dma_sem[1]");
    assert_eq!(sem.op.as_deref(), Some("store"));
}

#[test]
fn scratch_in_hbm() {
    let mut line = 0;
    let mut k = build_kernel("hbm_scratch", Loc::caller(), || {
        launch::grid(&[1]);
        line = line!() + 1;
        launch::scratch_vmem("s", F32, &[8, 128]);
    })
    .unwrap();
    let s = k.params[0].value.0 as usize;
    k.values[s] = Type::Ref(crate::ir::RefType::fixed(MemSpace::Hbm, F32, &[8, 128]));
    verify_structure(&k).unwrap();
    let d = errors(verify(&k, TpuTarget::V6e)).remove(0);
    assert_eq!(d.message, "scratch `s` is in HBM; scratch buffers live in VMEM or SMEM");
    assert_eq!(d.loc.line, line);
}

#[test]
fn launch_description() {
    let mut k = add_kernel();
    k.semantics.push(crate::ir::DimSemantics::Parallel);
    // Drop a block index of `x`; give `o` a rank-3 array; alias `o` to `x`.
    k.params[0].block.as_mut().unwrap().index_map.results.pop();
    k.params[1].array = Some(crate::ir::RefType::fixed(MemSpace::Hbm, F32, &[1, 32, 128]));
    k.params[1].alias_of = Some(0);
    let diags = errors(verify_structure(&k));
    let d = find(&diags, "dimension semantics");
    assert_eq!(d.message, "2 dimension semantics for a rank-1 grid [4]");
    assert_eq!(d.loc, k.loc);
    let d = find(&diags, "block indices");
    assert_eq!(d.message, "the index map of `x` returns 1 block indices for the rank-2 block [8, 128]");
    assert_eq!(d.loc, k.params[0].loc);
    find(&diags, "block shape [8, 128] of `o` has rank 2, but the array f32[1, 32, 128] has rank 3");
    find(&diags, "output `o` aliases input `x`, but their array types differ: f32[1, 32, 128] and f32[32, 128]");
}

#[test]
fn aliases() {
    let mut k = build_kernel("alias", Loc::caller(), || {
        launch::grid(&[1]);
        launch::input::<Hbm>("x", F32, &[8, 128]);
        launch::output::<Hbm>("o", F32, &[8, 128], Some("x"));
        launch::output::<Hbm>("p", F32, &[8, 128], None);
    })
    .unwrap();
    verify(&k, TpuTarget::V7x).unwrap();
    k.params[2].alias_of = Some(0);
    let d = errors(verify_structure(&k)).remove(0);
    assert_eq!(d.message, "outputs `o` and `p` both alias input `x`");
    k.params[2].alias_of = Some(1);
    let d = errors(verify_structure(&k)).remove(0);
    assert_eq!(d.message, "output `p` aliases `o`, which is not an input");
    k.params[2].alias_of = Some(5);
    let d = errors(verify_structure(&k)).remove(0);
    assert_eq!(d.message, "output `p` aliases operand 5, but the kernel has 3 operands");
    assert_eq!(d.op.as_deref(), Some("p"));
}

#[test]
fn program_id_axis() {
    let mut line = 0;
    let err = build_kernel("axis", Loc::caller(), || {
        launch::grid(&[4]);
        line = line!() + 1;
        let _ = program_id(1);
    })
    .unwrap_err();
    let d = err.first();
    assert_eq!(d.message, "grid axis 1 is out of range for the rank-1 grid [4]");
    assert_eq!((d.op.as_deref(), d.loc.line), (Some("program_id"), line));
}

#[test]
fn double_definitions_and_missing_values() {
    let mut k = add_kernel();
    let load = index_of(&k, "load");
    let x = k.params[0].value;
    k.body.insts[load].result = Some(x);
    let n = k.values.len() as u32;
    let store = index_of(&k, "store");
    if let Op::Store { value, .. } = &mut k.body.insts[store].op {
        *value = ValueId(n + 5);
    }
    let diags = errors(verify_structure(&k));
    let d = find(&diags, "is defined twice");
    assert_eq!(d.message, format!("%{} is defined twice (first at {})", x.0, k.params[0].loc));
    assert_eq!(d.loc, k.body.insts[load].loc);
    find(&diags, &format!("%{} does not exist: the kernel has {n} values", n + 5));
}

#[test]
fn while_condition_and_loop_index_scopes() {
    let mut k = build_kernel("loops", Loc::caller(), || {
        launch::grid(&[1]);
        let s = launch::scratch_smem("s", I32, &[1]);
        let mut w = WhileLoop::begin();
        let c = crate::frontend::cmp::lt(s.get(0), 4);
        w.body(c);
        s.set(0, s.get(0) + 1);
        w.end();
        let lp = ForLoop::begin(0, 4);
        s.set(0, lp.index());
        lp.end();
    })
    .unwrap();
    verify(&k, TpuTarget::V5e).unwrap();
    // Use the loop index after the loop.
    let f = index_of(&k, "for");
    let Op::For { index, .. } = k.body.insts[f].op else { unreachable!() };
    k.body.insts.push(Inst {
        op: Op::ScalarStore { dst: k.params[0].value, indices: vec![index], value: index },
        result: None,
        loc: k.loc,
    });
    let diags = errors(verify_structure(&k));
    assert_eq!(diags.len(), 2, "{diags:#?}");
    assert!(diags[0].message.contains("is used outside the region that defines it"));
}

#[test]
fn messages_display_kernel_op_and_location() {
    let mut k = add_kernel();
    k.semantics.clear();
    let e = verify_structure(&k).unwrap_err();
    assert_eq!(e.to_string(), format!("{}: kernel `add`: 0 dimension semantics for a rank-1 grid [4]", k.loc));
}
