// Typed scalar constants, annotated literals, `.into()`, and `#[unroll]` over comptime bounds.
use rpa_dsl::prelude::*;

#[tpu_fn]
fn twice(x: Scalar) -> Scalar {
    x * 2
}

#[tpu_kernel]
fn k(#[comptime] n: usize, flags: Smem<i32, {[4]}>) {
    let mut count: Scalar = 0;
    let mut seen: Scalar = false;
    let scale: Scalar = 0.5;
    let limit: usize = 3;
    let typed = [Scalar::i32(1), Scalar::u32(2), Scalar::f32(0.5), Scalar::bool(true), 7u32.into(), twice(3.into())];
    let mut dtypes = Vec::new();
    #[unroll]
    for s in typed {
        dtypes.push(s.dtype());
    }
    assert_eq!(dtypes, [I32, U32, F32, Bool, U32, I32]);
    assert_eq!((count.dtype(), seen.dtype(), scale.dtype()), (I32, Bool, F32));
    #[unroll]
    for i in 0..n.min(limit) {
        count = count + Scalar::i32(i as i32);
        seen = seen | (count > 7);
    }
    #[unroll]
    for _ in 1..=2 {
        count += 1;
    }
    let mut k = 0;
    #[unroll]
    while k < limit {
        count += k;
        k += 1;
    }
    flags.set(0, count);
    flags.set(1, seen.cast(I32));
    flags.set(2, (scale * Scalar::f32(2.0)).cast(I32));
    flags.set(3, select(Scalar::bool(true), 1, 0));
}

fn main() {
    let k = k(4).unwrap();
    let text = k.to_string();
    assert!(text.contains("const false"), "{text}");
}
