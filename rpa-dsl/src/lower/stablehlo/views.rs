//! Views of refs: the shared view algebra ([`crate::ir::view`]) over symbolic quantities, and
//! semaphore arrays.

use super::*;

impl Lowerer<'_> {
    pub(super) fn view(&mut self, base: ValueId, indexers: &[Indexer]) -> R<Bound> {
        match self.vals.get(&base).cloned() {
            Some(Bound::Sem(s)) => {
                let strides = row_major(&s.shape);
                let mut b = s.base.clone();
                for (d, ix) in indexers.iter().enumerate() {
                    if let Indexer::At(i) = ix {
                        let i = self.int_of(*i);
                        self.check_sem_index(&s, d, &i);
                        b = self.int_add(&b, &i, strides[d]);
                    }
                }
                let shape = s.shape[indexers.len().min(s.shape.len())..].to_vec();
                Ok(Bound::Sem(SemVal { base: b, shape, name: s.name }))
            }
            Some(Bound::Ref(r)) => Ok(Bound::Ref(r.index(self, indexers)?)),
            _ => Err(self.err("view of a value that is not a ref or semaphore")),
        }
    }

    pub(super) fn ref_bitcast(&self, r: &RefVal, to: DType) -> R<RefVal> {
        r.bitcast(to, IntExpr::of(0)).map_err(|m| self.err(m))
    }
}

/// The lowering's index domain: symbolic i32 quantities; bounds are checked at run time in checked
/// mode ([`super::checks`]).
impl IndexDomain for Lowerer<'_> {
    type Int = IntExpr;
    type Error = KernelError;
    const CONCRETE: bool = false;

    fn constant(&mut self, v: i64) -> IntExpr {
        IntExpr::of(v)
    }

    fn known(&self, x: &IntExpr) -> Option<i64> {
        x.is_static().then_some(x.constant)
    }

    fn add(&mut self, a: &IntExpr, b: &IntExpr, scale: i64) -> IntExpr {
        self.int_add(a, b, scale)
    }

    fn scalar(&mut self, v: ValueId) -> IntExpr {
        self.int_of(v)
    }

    fn upper_bound(&self, v: ValueId) -> Option<i64> {
        Lowerer::upper_bound(self, v)
    }

    /// One SSA scalar.
    fn extent(&mut self, x: &IntExpr) -> IntExpr {
        IntExpr::dynamic(self.int_name(x))
    }

    fn check_index(&mut self, view: &RefVal, d: usize, i: &IntExpr) -> R<()> {
        Lowerer::check_index(self, view, d, i);
        Ok(())
    }

    fn check_slice(&mut self, view: &RefVal, d: usize, s: &IntExpr, n: &IntExpr, max: Option<usize>) -> R<()> {
        Lowerer::check_slice(self, view, d, s, n, max);
        Ok(())
    }
}
