// Typed scalar constants, annotated literals and `#[unroll]` over comptime bounds.
use rpa_dsl::prelude::*;

#[tpu_kernel]
fn k(#[comptime] n: usize, flags: Smem<i32, {[4]}>) {
    let mut count: Scalar = 0;
    let mut seen: Scalar = false;
    let scale: Scalar = 0.5;
    let limit: usize = 3;
    #[unroll]
    for i in 0..n.min(limit) {
        count = count + Scalar::i32(i as i32);
        seen = seen | (count > Scalar::u32(7).cast(I32));
    }
    #[unroll]
    for _ in 1..=2 {
        count += 1;
    }
    flags.set(0, count);
    flags.set(1, seen.cast(I32));
    flags.set(2, (scale * Scalar::f32(2.0)).cast(I32));
    flags.set(3, select(Scalar::bool(true), 1, 0));
}

fn main() {
    let k = k(4).unwrap();
    let text = k.to_string();
    assert!(text.contains("const 0 : i32") || text.contains("i32 0"), "{text}");
    assert!(text.contains("false"), "{text}");
}
