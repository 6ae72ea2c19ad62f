// Runtime `for`, `while` and `if` (also as a value), with `let mut` kernel variables.
use rpa_dsl::ir::{Block, Op};
use rpa_dsl::prelude::*;

#[tpu_kernel(name = "ragged_sum", grid = [1])]
pub fn ragged(
    #[comptime] n: usize,
    lens: Prefetch<i32, {[n]}>,
    x: In<f32, {[8, 128]}>,
    #[alias(x)] y: Out<f32, {[8, 128]}>,
    buf: Vmem<f32, {[8, 128]}>,
    total: Smem<i32, {[1]}>,
    sem: DmaSems<1>,
) {
    copy(x, buf, sem.at(0)).start_and_wait();
    let mut acc = zeros(&[8, 128], F32);
    let mut count = Scalar::constant(I32, 0.0);
    for i in 0..n {
        let len = lens.get(i);
        if len > 0 && len < 64 {
            acc = acc + buf.load();
            count += len;
        } else if len >= 64 {
            count = count + 64;
        }
    }
    let mut k = program_id(0);
    while k < count {
        k = k * 2 + 1;
    }
    let scale = if count > 0 { 1.0 } else { 0.5 };
    let chosen = if n > 2 { acc } else { buf.load() };
    buf.store(chosen * scale);
    total.set(0, k);
    copy(buf, y, sem.at(0)).start_and_wait();
}

fn count(b: &Block, pred: &dyn Fn(&Op) -> bool) -> usize {
    b.insts
        .iter()
        .map(|i| {
            let inner = match &i.op {
                Op::For { body, .. } => count(body, pred),
                Op::If { then_body, else_body, .. } => count(then_body, pred) + count(else_body, pred),
                Op::While { cond_body, body, .. } => count(cond_body, pred) + count(body, pred),
                _ => 0,
            };
            inner + usize::from(pred(&i.op))
        })
        .sum()
}

fn main() {
    let k = ragged(4).unwrap();
    assert_eq!(k.name, "ragged_sum");
    assert_eq!(k.params.len(), 6);
    assert_eq!(k.params[2].alias_of, Some(1));
    assert_eq!(count(&k.body, &|o| matches!(o, Op::For { .. })), 1);
    assert_eq!(count(&k.body, &|o| matches!(o, Op::While { .. })), 1);
    // `if`/`else if` in the loop, and the runtime value `if` (the comptime one is resolved).
    assert_eq!(count(&k.body, &|o| matches!(o, Op::If { .. })), 3);
}
