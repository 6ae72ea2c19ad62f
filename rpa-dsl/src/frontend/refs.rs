//! Refs (views of HBM, VMEM and SMEM buffers), DMA semaphores and async copies.
//!
//! The memory space is part of a ref's Rust type, so using a ref where its space cannot be used is
//! a Rust type error with a DSL message: `load` on an HBM ref, `get` on a VMEM ref, a DMA into SMEM.

use super::builder::with;
use super::values::{constant, emit, emit0, Operand, Scalar, Tile};
use crate::ir::*;
use crate::DType;
use std::marker::PhantomData;

/// A memory space as a Rust type.
pub trait Space: Copy + 'static {
    const SPACE: MemSpace;
}

/// HBM (`pl.ANY`): the kernel reaches it only through DMAs.
#[derive(Clone, Copy, Debug)]
pub struct Hbm;
/// VMEM: vector loads and stores.
#[derive(Clone, Copy, Debug)]
pub struct Vmem;
/// SMEM: scalar reads and writes.
#[derive(Clone, Copy, Debug)]
pub struct Smem;

impl Space for Hbm {
    const SPACE: MemSpace = MemSpace::Hbm;
}
impl Space for Vmem {
    const SPACE: MemSpace = MemSpace::Vmem;
}
impl Space for Smem {
    const SPACE: MemSpace = MemSpace::Smem;
}

/// Spaces that vector loads and stores can use.
#[diagnostic::on_unimplemented(
    message = "vector loads and stores need a VMEM ref, but this ref is in `{Self}`",
    label = "this ref is not in VMEM",
    note = "HBM is reachable only by DMA: `copy(hbm_ref, vmem_ref, sem).start()`; SMEM holds scalars: use `get`/`set`"
)]
pub trait VectorSpace: Space {}
impl VectorSpace for Vmem {}

/// Spaces that scalar reads and writes can use.
#[diagnostic::on_unimplemented(
    message = "scalar `get`/`set` need an SMEM ref, but this ref is in `{Self}`",
    label = "this ref is not in SMEM",
    note = "VMEM refs are read with `load()` as tiles; HBM refs only through DMAs"
)]
pub trait ScalarSpace: Space {}
impl ScalarSpace for Smem {}

/// Spaces a DMA can read and write.
#[diagnostic::on_unimplemented(
    message = "a DMA cannot move data to or from `{Self}`",
    label = "DMA endpoints must be HBM or VMEM refs",
    note = "scalar memory is written with `set` and filled by scalar prefetch"
)]
pub trait DmaSpace: Space {}
impl DmaSpace for Hbm {}
impl DmaSpace for Vmem {}

/// A view of a buffer in memory space `S`.
#[derive(Clone, Copy, Debug)]
pub struct Ref<S: Space> {
    pub(crate) v: ValueId,
    _space: PhantomData<S>,
}

/// An array of DMA semaphores (or a single one, once indexed).
#[derive(Clone, Copy, Debug)]
pub struct Sems {
    pub(crate) v: ValueId,
}

/// A runtime index: a `Scalar` or a Rust integer.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as an index",
    label = "expected an integer `Scalar` or a Rust integer"
)]
pub trait IntoIndex: Copy {
    fn index_value(self, loc: Loc) -> ValueId;
}
impl IntoIndex for Scalar {
    fn index_value(self, loc: Loc) -> ValueId {
        self.0.read(loc)
    }
}
macro_rules! int_index {
    ($($t:ty),*) => {$(
        impl IntoIndex for $t {
            fn index_value(self, loc: Loc) -> ValueId {
                if i32::try_from(self).is_err() {
                    with(|b| b.error(loc, Some("const"), format!("index {self} does not fit in i32")));
                }
                constant(DType::I32, self as f64, loc)
            }
        }
    )*};
}
int_index!(i32, i64, u32, usize);

/// The length of a slice: a Rust integer (static) or a `Scalar` (dynamic, bounded by the dimension).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a slice length",
    label = "expected a Rust integer (static size) or an integer `Scalar` (dynamic size)"
)]
pub trait SliceLen: Copy {
    fn slice_size(self, loc: Loc, bound: usize) -> SliceSize;
}
impl SliceLen for Scalar {
    fn slice_size(self, loc: Loc, bound: usize) -> SliceSize {
        SliceSize::Dynamic { size: self.0.read(loc), max: bound }
    }
}
macro_rules! static_len {
    ($($t:ty),*) => {$(
        impl SliceLen for $t {
            fn slice_size(self, _: Loc, _: usize) -> SliceSize {
                SliceSize::Static(self as usize)
            }
        }
    )*};
}
static_len!(i32, i64, u32, usize);

/// One index of a general view: see [`at`], [`ds`], [`ds_max`] and [`full`].
#[derive(Clone, Copy)]
pub enum Ix {
    At(Scalar),
    Ds(Scalar, DsLen),
    Full,
}

/// The length of a [`ds`] window.
#[derive(Clone, Copy)]
pub enum DsLen {
    Static(usize),
    Dynamic(Scalar, Option<usize>),
}

fn as_scalar(i: impl IntoIndex, loc: Loc) -> Scalar {
    Scalar::from_value(i.index_value(loc))
}

/// Selects one position of a dimension, dropping it.
#[track_caller]
pub fn at(i: impl IntoIndex) -> Ix {
    Ix::At(as_scalar(i, Loc::caller()))
}

/// A window `[start, start + len)` of a dimension (`pl.ds`); `len` may be a runtime scalar.
#[track_caller]
pub fn ds(start: impl IntoIndex, len: impl SliceLen) -> Ix {
    let loc = Loc::caller();
    let s = as_scalar(start, loc);
    match len.slice_size(loc, usize::MAX) {
        SliceSize::Static(n) => Ix::Ds(s, DsLen::Static(n)),
        SliceSize::Dynamic { size, .. } => Ix::Ds(s, DsLen::Dynamic(Scalar::from_value(size), None)),
    }
}

/// A window whose runtime length is at most `max` (the bound the verifier and Mosaic see).
#[track_caller]
pub fn ds_max(start: impl IntoIndex, len: Scalar, max: usize) -> Ix {
    Ix::Ds(as_scalar(start, Loc::caller()), DsLen::Dynamic(len, Some(max)))
}

/// The whole dimension.
pub fn full_dim() -> Ix {
    Ix::Full
}

impl<S: Space> Ref<S> {
    pub(crate) fn from_value(v: ValueId) -> Self {
        Ref { v, _space: PhantomData }
    }

    /// The IR value of this ref.
    pub fn value(self) -> ValueId {
        self.v
    }

    fn ref_type(self) -> RefType {
        with(|b| match &b.values[self.v.0 as usize] {
            Type::Ref(r) => r.clone(),
            _ => RefType::fixed(S::SPACE, DType::F32, &[]),
        })
    }

    pub fn dtype(self) -> DType {
        self.ref_type().dtype
    }

    /// The shape (dynamic extents give their upper bound).
    pub fn shape(self) -> Vec<usize> {
        self.ref_type().max_shape()
    }

    /// A general view: one [`Ix`] per leading dimension (`ref.at[i, pl.ds(s, n)]`).
    #[track_caller]
    pub fn view(self, index: &[Ix]) -> Ref<S> {
        let loc = Loc::caller();
        let shape = self.shape();
        let indexers = index
            .iter()
            .enumerate()
            .map(|(d, ix)| match *ix {
                Ix::At(i) => Indexer::At(i.0.read(loc)),
                Ix::Full => Indexer::Full,
                Ix::Ds(s, len) => Indexer::Slice {
                    start: s.0.read(loc),
                    size: match len {
                        DsLen::Static(n) => SliceSize::Static(n),
                        DsLen::Dynamic(n, max) => SliceSize::Dynamic {
                            size: n.0.read(loc),
                            max: max.unwrap_or_else(|| shape.get(d).copied().unwrap_or(0)),
                        },
                    },
                },
            })
            .collect();
        let fallback = Type::Ref(self.ref_type());
        Ref::from_value(emit(Op::View { base: self.v, indexers }, loc, fallback))
    }

    /// Element `i` of the leading dimension (dropping it): `ref.at[i]`.
    #[track_caller]
    pub fn at(self, i: impl IntoIndex) -> Ref<S> {
        let loc = Loc::caller();
        let fallback = Type::Ref(self.ref_type());
        let i = i.index_value(loc);
        Ref::from_value(emit(Op::View { base: self.v, indexers: vec![Indexer::At(i)] }, loc, fallback))
    }

    /// Rows `[start, start + len)` of the leading dimension: `ref.at[pl.ds(start, len)]`.
    /// `len` may be a runtime scalar (bounded by the dimension), e.g. for ragged DMAs.
    #[track_caller]
    pub fn ds(self, start: impl IntoIndex, len: impl SliceLen) -> Ref<S> {
        let loc = Loc::caller();
        let bound = self.shape().first().copied().unwrap_or(0);
        let fallback = Type::Ref(self.ref_type());
        let start = start.index_value(loc);
        let size = len.slice_size(loc, bound);
        Ref::from_value(emit(Op::View { base: self.v, indexers: vec![Indexer::Slice { start, size }] }, loc, fallback))
    }

    /// Like [`Ref::ds`] with a runtime length of at most `max` rows.
    #[track_caller]
    pub fn ds_max(self, start: impl IntoIndex, len: Scalar, max: usize) -> Ref<S> {
        self.view(&[ds_max(start, len, max)])
    }

    /// Reinterprets the (static) shape: `ref.reshape(...)`.
    #[track_caller]
    pub fn reshape(self, shape: &[usize]) -> Ref<S> {
        let loc = Loc::caller();
        let fallback = Type::Ref(RefType::fixed(S::SPACE, self.dtype(), shape));
        Ref::from_value(emit(Op::RefReshape { base: self.v, shape: shape.to_vec() }, loc, fallback))
    }

    /// Reinterprets the bits as `dtype`; changing the width scales the second-minor dimension
    /// (TPU sublane packing): `bf16[.., 2, 128]` → `u32[.., 1, 128]`.
    #[track_caller]
    pub fn bitcast(self, dtype: DType) -> Ref<S> {
        let loc = Loc::caller();
        let fallback = Type::Ref(RefType::fixed(S::SPACE, dtype, &self.shape()));
        Ref::from_value(emit(Op::RefBitcast { base: self.v, to: dtype }, loc, fallback))
    }

    /// Loads the whole (static-shaped) ref as a tile: `ref[...]`.
    #[track_caller]
    pub fn load(self) -> Tile
    where
        S: VectorSpace,
    {
        let loc = Loc::caller();
        let fallback = Type::Vector { dtype: self.dtype(), shape: self.shape() };
        Tile::from_value(emit(Op::Load { src: self.v }, loc, fallback))
    }

    /// Loads `count` rows `start, start + stride, …` of the leading dimension (all of the other
    /// dimensions): `ref[pl.ds(start, count, stride)]`.
    #[track_caller]
    pub fn load_strided(self, start: impl IntoIndex, count: usize, stride: usize) -> Tile
    where
        S: VectorSpace,
    {
        let loc = Loc::caller();
        let span = if count == 0 { 0 } else { (count - 1) * stride + 1 };
        let window = self.ds(start, span);
        let mut shape = self.shape();
        let mut strides = vec![1; shape.len()];
        if let Some(first) = shape.first_mut() {
            *first = count;
            strides[0] = stride;
        }
        let fallback = Type::Vector { dtype: self.dtype(), shape: shape.clone() };
        Tile::from_value(emit(Op::LoadStrided { src: window.v, strides, shape }, loc, fallback))
    }

    /// Stores a tile into the whole ref: `ref[...] = value`.
    #[track_caller]
    pub fn store(self, value: Tile)
    where
        S: VectorSpace,
    {
        let loc = Loc::caller();
        let value = value.0.read(loc);
        emit0(Op::Store { dst: self.v, value, mask: None }, loc);
    }

    /// Stores only where `mask` is true: `pltpu.store(ref, value, mask=mask)`.
    #[track_caller]
    pub fn store_masked(self, value: Tile, mask: Tile)
    where
        S: VectorSpace,
    {
        let loc = Loc::caller();
        let (value, mask) = (value.0.read(loc), mask.0.read(loc));
        emit0(Op::Store { dst: self.v, value, mask: Some(mask) }, loc);
    }

    /// Stores the rows of `value` to rows `start, start + stride, …` of the leading dimension.
    #[track_caller]
    pub fn store_strided(self, start: impl IntoIndex, stride: usize, value: Tile)
    where
        S: VectorSpace,
    {
        let loc = Loc::caller();
        let count = value.shape().first().copied().unwrap_or(0);
        let span = if count == 0 { 0 } else { (count - 1) * stride + 1 };
        let window = self.ds(start, span);
        let mut strides = vec![1; value.shape().len()];
        if let Some(first) = strides.first_mut() {
            *first = stride;
        }
        let value = value.0.read(loc);
        emit0(Op::StoreStrided { dst: window.v, value, strides }, loc);
    }

    /// Reads element `index` (one index per dimension) of an SMEM ref.
    #[track_caller]
    pub fn get_at(self, index: &[Scalar]) -> Scalar
    where
        S: ScalarSpace,
    {
        let loc = Loc::caller();
        let indices = index.iter().map(|i| i.0.read(loc)).collect();
        Scalar::from_value(emit(Op::ScalarLoad { src: self.v, indices }, loc, Type::Scalar(self.dtype())))
    }

    /// Reads element `i` of a 1-D SMEM ref: `ref[i]`.
    #[track_caller]
    pub fn get(self, i: impl IntoIndex) -> Scalar
    where
        S: ScalarSpace,
    {
        let loc = Loc::caller();
        let indices = vec![i.index_value(loc)];
        Scalar::from_value(emit(Op::ScalarLoad { src: self.v, indices }, loc, Type::Scalar(self.dtype())))
    }

    /// Writes element `i` of a 1-D SMEM ref: `ref[i] = value`.
    #[track_caller]
    pub fn set(self, i: impl IntoIndex, value: impl Operand)
    where
        S: ScalarSpace,
    {
        let loc = Loc::caller();
        let indices = vec![i.index_value(loc)];
        let value = value.operand_value(Some(self.dtype()), loc);
        emit0(Op::ScalarStore { dst: self.v, indices, value }, loc);
    }

    /// Writes element `index` (one index per dimension) of an SMEM ref.
    #[track_caller]
    pub fn set_at(self, index: &[Scalar], value: impl Operand)
    where
        S: ScalarSpace,
    {
        let loc = Loc::caller();
        let indices = index.iter().map(|i| i.0.read(loc)).collect();
        let value = value.operand_value(Some(self.dtype()), loc);
        emit0(Op::ScalarStore { dst: self.v, indices, value }, loc);
    }
}

impl Sems {
    pub(crate) fn from_value(v: ValueId) -> Sems {
        Sems { v }
    }

    /// Semaphore `i` of the leading dimension.
    #[track_caller]
    pub fn at(self, i: impl IntoIndex) -> Sems {
        let loc = Loc::caller();
        let i = i.index_value(loc);
        let kind = with(|b| match &b.values[self.v.0 as usize] {
            Type::Sem { kind, .. } => *kind,
            _ => SemKind::Dma,
        });
        Sems::from_value(emit(
            Op::View { base: self.v, indexers: vec![Indexer::At(i)] },
            loc,
            Type::Sem { kind, shape: vec![] },
        ))
    }
}

impl Sems {
    /// Adds `amount` (≥ 0) to this regular semaphore: see [`semaphore_signal`].
    #[track_caller]
    pub fn signal(self, amount: impl IntoIndex) {
        semaphore_signal(self, amount)
    }

    /// Waits until this regular semaphore holds `amount`, and takes it: see [`semaphore_wait`].
    #[track_caller]
    pub fn wait(self, amount: impl IntoIndex) {
        semaphore_wait(self, amount)
    }
}

/// Adds `amount` (a Rust integer or an i32 `Scalar`, ≥ 0) to the regular semaphore `sem`
/// (`pltpu.semaphore_signal`; `sem` from `Semaphores<..>` / `launch::semaphores`).
#[track_caller]
pub fn semaphore_signal(sem: Sems, amount: impl IntoIndex) {
    let loc = Loc::caller();
    let amount = amount.index_value(loc);
    emit0(Op::SemSignal { sem: sem.v, amount }, loc);
}

/// Waits until the regular semaphore `sem` holds `amount` and takes it (`pltpu.semaphore_wait`).
/// Nothing else signals a kernel's semaphores while it waits, so interpret mode and checked
/// PJRT-CPU report a wait for more than the semaphore holds (it would hang on a TPU), and a
/// semaphore still holding a count when the kernel ends.
#[track_caller]
pub fn semaphore_wait(sem: Sems, amount: impl IntoIndex) {
    let loc = Loc::caller();
    let amount = amount.index_value(loc);
    emit0(Op::SemWait { sem: sem.v, amount }, loc);
}

/// An async copy descriptor: `pltpu.make_async_copy(src, dst, sem)`.
#[derive(Clone, Copy, Debug)]
#[must_use = "a copy does nothing until `.start()`; waiting needs `.wait()`"]
pub struct Dma {
    src: ValueId,
    dst: ValueId,
    sem: ValueId,
}

/// Describes a copy of `src` to `dst` (same dtype and shape; extents may be dynamic) that signals
/// `sem` with its byte count when it completes.
pub fn copy<S: DmaSpace, D: DmaSpace>(src: Ref<S>, dst: Ref<D>, sem: Sems) -> Dma {
    Dma { src: src.v, dst: dst.v, sem: sem.v }
}

impl Dma {
    /// Starts the copy. Its data is only guaranteed to have landed after a matching `wait`.
    #[track_caller]
    pub fn start(self) {
        emit0(Op::DmaStart { src: self.src, dst: self.dst, sem: self.sem }, Loc::caller());
    }

    /// Waits until the semaphore has received as many bytes as this copy's destination holds.
    /// Any descriptor of the same size works (wait by byte count).
    #[track_caller]
    pub fn wait(self) {
        emit0(Op::DmaWait { src: self.src, dst: self.dst, sem: self.sem }, Loc::caller());
    }

    /// Starts the copy and waits for it.
    #[track_caller]
    pub fn start_and_wait(self) {
        let loc = Loc::caller();
        emit0(Op::DmaStart { src: self.src, dst: self.dst, sem: self.sem }, loc);
        emit0(Op::DmaWait { src: self.src, dst: self.dst, sem: self.sem }, loc);
    }
}
