// A BlockSpec-pipelined elementwise kernel, in each of the shape spellings.
use rpa_dsl::prelude::*;

#[tpu_kernel(grid = [rows / 8, 1], semantics = [parallel, arbitrary], vmem_limit = 16 << 20)]
pub fn scaled_add(
    #[comptime] rows: usize,
    #[comptime] scale: f32,
    #[block([8, 128], |i, _| [i, 0])] x: In<f32, {[rows, 128]}>,
    #[block([8, 128], |i, j| [i, j])] y: In<f32, rows, 128>,
    #[block([8, 128], |i, _| [i, 0])] o: Out![f32, [rows, 128]],
) {
    o.store(x.load() * scale + y.load());
}

fn main() {
    let k = scaled_add(64, 2.0).unwrap();
    assert_eq!(k.name, "scaled_add");
    assert_eq!(k.grid, vec![8, 1]);
    assert_eq!(k.semantics, vec![Parallel, Arbitrary]);
    assert_eq!(k.vmem_limit, Some(16 << 20));
    assert_eq!(k.params.len(), 3);
    assert!(k.params.iter().all(|p| p.block.is_some()));
}
