use rpa_dsl::prelude::*;

#[tpu_fn]
async fn helper(t: Tile) -> Tile {
    t * 2.0
}

fn main() {}
