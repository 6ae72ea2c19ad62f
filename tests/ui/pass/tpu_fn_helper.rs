// `#[tpu_fn]` helpers: runtime control flow inside, returning a `Tile`.
use rpa_dsl::prelude::*;

#[tpu_fn]
fn clamp_rows(t: Tile, limit: Scalar, mut steps: usize) -> Tile {
    let mut out = t;
    for _ in 0..steps {
        out = max(out, t * 0.5);
    }
    steps += 1;
    let _ = steps;
    if limit > 0 {
        out
    } else {
        t
    }
}

#[tpu_fn]
fn store_twice(o: Ref<Vmem>, t: Tile) {
    o.store(t);
    if program_id(0) == 0 {
        o.store(t * 2.0);
    }
}

// Generic helpers, `impl Trait` returns and methods: the body runs in a closure (see `#[tpu_fn]`).
#[tpu_fn]
fn both<T: Copy>(x: T) -> impl Copy {
    (x, x)
}

struct Scale(f32);

impl Scale {
    #[tpu_fn]
    fn apply(&self, t: Tile) -> Tile {
        t * self.0
    }
}

#[tpu_kernel(grid = [2])]
pub fn uses_helpers(
    #[block([8, 128], |i| [i, 0])] x: In<f32, {[16, 128]}>,
    #[block([8, 128], |i| [i, 0])] o: Out<f32, {[16, 128]}>,
) {
    let r = clamp_rows(x.load(), program_id(0), 3);
    let _ = both(r);
    store_twice(o, Scale(0.5).apply(r));
}

fn main() {
    let k = uses_helpers().unwrap();
    assert_eq!(k.grid, vec![2]);
    assert_eq!(k.params.len(), 2);
}
