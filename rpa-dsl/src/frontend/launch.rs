//! The launch description: grid, dimension semantics, VMEM limit and the kernel's parameters, in
//! Pallas's order (scalar prefetch, inputs, outputs, scratch). `#[tpu_kernel]` calls these from the
//! kernel's signature; they can also be called directly inside `build_kernel`.

use super::builder::with;
use super::refs::{IntoIndex, Ref, Sems, Smem, Space, Vmem};
use super::values::Scalar;
use crate::ir::*;
use crate::DType;

/// Sets the grid (row-major; the last axis varies fastest).
pub fn grid(dims: &[usize]) {
    with(|b| b.grid = dims.to_vec());
}

/// Sets how each grid axis may be scheduled.
#[track_caller]
pub fn semantics(dims: &[DimSemantics]) {
    let loc = Loc::caller();
    with(|b| {
        if dims.len() != b.grid.len() {
            let msg = format!("{} dimension semantics for a rank-{} grid", dims.len(), b.grid.len());
            b.error(loc, None, msg);
        }
        b.semantics = dims.to_vec();
    });
}

/// Sets the VMEM limit the kernel is compiled and verified against (`None`: the target's VMEM).
pub fn vmem_limit(bytes: impl Into<Option<usize>>) {
    let bytes = bytes.into();
    with(|b| b.vmem_limit = bytes);
}

fn add_param(
    name: &str,
    role: Role,
    t: Type,
    array: Option<RefType>,
    block: Option<BlockSpec>,
    alias: Option<&str>,
    loc: Loc,
) -> ValueId {
    with(|b| {
        if let Some(last) = b.params.last() {
            let rank = |r: Role| r as usize;
            if rank(role) < rank(last.role) {
                let msg = format!(
                    "parameter `{name}` ({}) comes after `{}` ({}): declare scalar prefetch, then inputs, then outputs, then scratch",
                    role.name(),
                    last.name,
                    last.role.name()
                );
                b.error(loc, None, msg);
            }
        }
        if b.params.iter().any(|p| p.name == name) {
            b.error(loc, None, format!("two parameters are named `{name}`"));
        }
        let alias_of = alias.and_then(|a| {
            let found = b.params.iter().filter(|p| p.role != Role::Scratch).position(|p| p.name == a);
            match found {
                Some(i) if matches!(b.params[i].role, Role::Input | Role::Prefetch) => {
                    if b.params[i].array != array {
                        let msg = format!("output `{name}` aliases `{a}`, but their shapes or dtypes differ");
                        b.error(loc, None, msg);
                    }
                    Some(i)
                }
                _ => {
                    b.error(
                        loc,
                        None,
                        format!("output `{name}` aliases `{a}`, which is not an input declared before it"),
                    );
                    None
                }
            }
        });
        let value = b.new_value(t);
        b.params.push(Param { name: name.to_string(), role, value, array, block, alias_of, loc });
        value
    })
}

fn check_shape(what: &str, name: &str, shape: &[usize], loc: Loc) {
    if shape.contains(&0) {
        with(|b| b.error(loc, None, format!("{what} `{name}` has an empty dimension: {shape:?}")));
    }
}

/// A scalar-prefetch operand: the whole array in SMEM, readable and writable by the kernel and
/// readable by index maps.
#[track_caller]
pub fn prefetch(name: &str, dtype: DType, shape: &[usize]) -> Ref<Smem> {
    let loc = Loc::caller();
    check_shape("prefetch operand", name, shape, loc);
    let rt = RefType::fixed(MemSpace::Smem, dtype, shape);
    Ref::from_value(add_param(name, Role::Prefetch, Type::Ref(rt.clone()), Some(rt), None, None, loc))
}

/// An input left in HBM (`memory_space=pl.ANY`): the kernel moves it with DMAs.
#[track_caller]
pub fn input<S: Space>(name: &str, dtype: DType, shape: &[usize]) -> Ref<S> {
    operand(name, Role::Input, dtype, shape, None, None, Loc::caller())
}

/// An output left in HBM, optionally aliasing an input (`input_output_aliases`).
#[track_caller]
pub fn output<S: Space>(name: &str, dtype: DType, shape: &[usize], alias: Option<&str>) -> Ref<S> {
    operand(name, Role::Output, dtype, shape, None, alias, Loc::caller())
}

fn operand<S: Space>(
    name: &str,
    role: Role,
    dtype: DType,
    shape: &[usize],
    block: Option<BlockSpec>,
    alias: Option<&str>,
    loc: Loc,
) -> Ref<S> {
    check_shape(role.name(), name, shape, loc);
    let array = RefType::fixed(MemSpace::Hbm, dtype, shape);
    let seen = match &block {
        Some(bs) => RefType::fixed(bs.space, dtype, &bs.block_shape),
        None => array.clone(),
    };
    if seen.space != S::SPACE {
        with(|b| b.error(loc, None, format!("`{name}` is seen in {:?} but declared as {:?}", seen.space, S::SPACE)));
    }
    Ref::from_value(add_param(name, role, Type::Ref(seen), Some(array), block, alias, loc))
}

/// Builds a BlockSpec's index map: `map` receives the grid indices and returns one block index
/// per dimension; it may read scalar-prefetch refs.
fn index_map(block_shape: &[usize], map: impl FnOnce(&[Scalar]) -> Vec<Scalar>, loc: Loc) -> BlockSpec {
    let (saved, grid_indices) = with(|b| {
        let saved = std::mem::replace(&mut b.blocks, vec![Block::default()]);
        b.in_index_map = true;
        let ids: Vec<ValueId> = (0..b.grid.len()).map(|_| b.new_value(Type::Scalar(DType::I32))).collect();
        (saved, ids)
    });
    let grid: Vec<Scalar> = grid_indices.iter().map(|&v| Scalar::from_value(v)).collect();
    let results_s = map(&grid);
    let results: Vec<ValueId> = results_s.iter().map(|s| s.0.read(loc)).collect();
    let body = with(|b| {
        let body = std::mem::replace(&mut b.blocks, saved).pop().unwrap_or_default();
        b.in_index_map = false;
        if results.len() != block_shape.len() {
            let msg =
                format!("index map returns {} block indices for a rank-{} block", results.len(), block_shape.len());
            b.error(loc, None, msg);
        }
        body
    });
    BlockSpec {
        block_shape: block_shape.to_vec(),
        space: MemSpace::Vmem,
        index_map: IndexMap { grid_indices, body, results, loc },
        buffers: None,
    }
}

/// An input whose `block` window (chosen per grid step by `map`) the kernel sees in VMEM.
#[track_caller]
pub fn input_blocked(
    name: &str,
    dtype: DType,
    shape: &[usize],
    block: &[usize],
    map: impl FnOnce(&[Scalar]) -> Vec<Scalar>,
) -> Ref<Vmem> {
    let loc = Loc::caller();
    let spec = index_map(block, map, loc);
    operand(name, Role::Input, dtype, shape, Some(spec), None, loc)
}

/// An output whose `block` window (chosen per grid step by `map`) the kernel writes in VMEM.
#[track_caller]
pub fn output_blocked(
    name: &str,
    dtype: DType,
    shape: &[usize],
    block: &[usize],
    map: impl FnOnce(&[Scalar]) -> Vec<Scalar>,
    alias: Option<&str>,
) -> Ref<Vmem> {
    let loc = Loc::caller();
    let spec = index_map(block, map, loc);
    operand(name, Role::Output, dtype, shape, Some(spec), alias, loc)
}

/// Sets how many buffers the pipeline keeps for the block of `r` (a BlockSpec'd operand):
/// `pipeline_mode=pl.Buffered(n)`. One buffer (`Buffered(1)`) saves VMEM where a block changes
/// rarely (or never); Mosaic pipelines 1 or 2 (more is a TPU target error). What the kernel
/// computes does not change.
#[track_caller]
pub fn buffered(r: Ref<Vmem>, n: usize) -> Ref<Vmem> {
    let loc = Loc::caller();
    with(|b| {
        let block = b.params.iter_mut().find(|p| p.value == r.value()).and_then(|p| p.block.as_mut());
        match block {
            Some(bs) if n >= 1 => bs.buffers = Some(n),
            Some(_) => b.error(loc, None, "a BlockSpec needs at least one buffer: `Buffered(1)`"),
            None => {
                b.error(loc, None, "`Buffered(n)` applies to a BlockSpec'd operand (`input_blocked`, `output_blocked`)")
            }
        }
    });
    r
}

/// A VMEM scratch buffer; it persists across grid steps and starts uninitialised.
#[track_caller]
pub fn scratch_vmem(name: &str, dtype: DType, shape: &[usize]) -> Ref<Vmem> {
    let loc = Loc::caller();
    check_shape("scratch", name, shape, loc);
    let t = Type::Ref(RefType::fixed(MemSpace::Vmem, dtype, shape));
    Ref::from_value(add_param(name, Role::Scratch, t, None, None, None, loc))
}

/// An SMEM scratch buffer (scalars that persist across grid steps).
#[track_caller]
pub fn scratch_smem(name: &str, dtype: DType, shape: &[usize]) -> Ref<Smem> {
    let loc = Loc::caller();
    check_shape("scratch", name, shape, loc);
    let t = Type::Ref(RefType::fixed(MemSpace::Smem, dtype, shape));
    Ref::from_value(add_param(name, Role::Scratch, t, None, None, None, loc))
}

/// An array of DMA semaphores (`pltpu.SemaphoreType.DMA(shape)`).
#[track_caller]
pub fn dma_sems(name: &str, shape: &[usize]) -> Sems {
    let loc = Loc::caller();
    check_shape("semaphore array", name, shape, loc);
    let t = Type::Sem { kind: SemKind::Dma, shape: shape.to_vec() };
    Sems::from_value(add_param(name, Role::Scratch, t, None, None, None, loc))
}

/// An array of regular semaphores (`pltpu.SemaphoreType.REGULAR(shape)`), counted by
/// [`semaphore_signal`](crate::frontend::semaphore_signal) and
/// [`semaphore_wait`](crate::frontend::semaphore_wait).
#[track_caller]
pub fn semaphores(name: &str, shape: &[usize]) -> Sems {
    let loc = Loc::caller();
    check_shape("semaphore array", name, shape, loc);
    let t = Type::Sem { kind: SemKind::Regular, shape: shape.to_vec() };
    Sems::from_value(add_param(name, Role::Scratch, t, None, None, None, loc))
}

/// Grid index `k` for an index map whose closure takes `arity` indices (`#[block(.., |i, j| ..)]`).
/// A closure taking more indices than the grid has is an error (the extra ones read as 0).
#[track_caller]
pub fn grid_index(grid: &[Scalar], k: usize, arity: usize) -> Scalar {
    match grid.get(k) {
        Some(&g) => g,
        None => {
            let loc = Loc::caller();
            if k == grid.len() {
                let msg = format!("the index map takes {arity} grid indices, but the grid has rank {}", grid.len());
                with(|b| b.error(loc, None, msg));
            }
            block_index(0)
        }
    }
}

/// Converts one element of an index map's result array.
#[track_caller]
pub fn block_index(i: impl IntoIndex) -> Scalar {
    Scalar::from_value(i.index_value(Loc::caller()))
}
