// Comptime `if`, `match` and `#[unroll] for` over comptime parameters: plain Rust while building.
use rpa_dsl::ir::Op;
use rpa_dsl::prelude::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Copy,
    Double,
    Sum { times: usize },
}

#[tpu_kernel(grid = [blocks], semantics = [arbitrary])]
pub fn modes(
    #[comptime] blocks: usize,
    #[comptime] mode: Mode,
    #[comptime] dtype: DType,
    #[block([8, 128], |i| [i, 0])] x: In<dtype, {[blocks * 8, 128]}>,
    #[block([8, 128], |i| [i, 0])] o: Out![dtype, [blocks * 8, 128]],
) {
    let t = x.load();
    let r = match mode {
        Mode::Copy => t,
        Mode::Double => t * 2.0,
        Mode::Sum { times } => {
            let mut acc = t;
            #[unroll]
            for _ in 1..times {
                acc = acc + t;
            }
            acc
        }
    };
    if dtype == F32 && blocks > 1 {
        o.store(r);
    } else {
        o.store(r.cast(dtype));
    }
    let mut extra = 0;
    #[unroll]
    while extra < 2 {
        extra += 1;
    }
    assert_eq!(extra, 2);
}

fn main() {
    let copy = modes(2, Mode::Copy, F32).unwrap();
    let sum = modes(2, Mode::Sum { times: 4 }, F32).unwrap();
    let adds = |k: &Kernel| k.body.insts.iter().filter(|i| matches!(i.op, Op::Binary { .. })).count();
    // Three unrolled adds, no runtime control flow.
    assert_eq!((adds(&copy), adds(&sum)), (0, 3));
    assert!(sum.body.insts.iter().all(|i| !matches!(i.op, Op::For { .. } | Op::If { .. } | Op::While { .. })));
    let bf = modes(1, Mode::Double, Bf16).unwrap();
    assert_eq!(bf.params[0].array.as_ref().unwrap().dtype, Bf16);
}
