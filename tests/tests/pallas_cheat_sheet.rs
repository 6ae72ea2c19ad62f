//! The Pallas → rpa cheat sheet (`docs/10-pallas-to-rpa.md`) covers the Pallas TPU features a
//! kernel author reaches for, and every row gives an rpa spelling or says "not yet" and why. (Its
//! `rust` blocks are doctests: tests/src/lib.rs.)

fn chapter() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/10-pallas-to-rpa.md");
    std::fs::read_to_string(path).unwrap()
}

/// `(pallas, rpa)` cells of the chapter's two-column tables.
fn rows(md: &str) -> Vec<(String, String)> {
    md.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Pallas |"))
        .map(|l| {
            // Split on " | " outside backticks (cells contain `\|i\|` closures).
            let (mut cells, mut cur, mut code) = (Vec::new(), String::new(), false);
            let inner = l.trim().trim_start_matches('|').trim_end_matches('|');
            let chars: Vec<char> = inner.chars().collect();
            for (i, &c) in chars.iter().enumerate() {
                if c == '`' {
                    code = !code;
                }
                if c == '|' && !code && (i == 0 || chars[i - 1] != '\\') {
                    cells.push(std::mem::take(&mut cur));
                } else {
                    cur.push(c);
                }
            }
            cells.push(cur);
            assert_eq!(cells.len(), 2, "a row of two cells: {l}");
            (cells[0].trim().to_string(), cells[1].trim().to_string())
        })
        .collect()
}

#[test]
fn every_feature_of_the_list_has_a_row() {
    let md = chapter();
    let pallas: String = rows(&md).iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join("\n");
    for feature in [
        "pallas_call",
        "grid=",
        "pl.BlockSpec(",
        "lambda i, j",
        "PrefetchScalarGridSpec",
        "memory_space=pl.ANY",
        "pltpu.SMEM",
        "pltpu.VMEM",
        "pl.ds(start, size)",
        "pl.multiple_of",
        "pl.program_id",
        "pl.num_programs",
        "pl.when",
        "lax.fori_loop",
        "lax.while_loop",
        "async_copy",
        "SemaphoreType.DMA",
        "SemaphoreType.REGULAR",
        "semaphore_signal",
        "pl.run_scoped",
        "pltpu.roll",
        "pltpu.repeat",
        "bitcast",
        "jnp.dot",
        "einsum",
        "jnp.exp",
        "jnp.sum",
        "argmax",
        "broadcasted_iota",
        "jnp.where",
        "pl.debug_print",
        "interpret=True",
        "CompilerParams",
        "vmem_limit_bytes",
        "pl.CostEstimate",
        "input_output_aliases",
        "emit_pipeline",
        "pl.Buffered",
        "make_async_remote_copy",
        "device_id",
        "pl.core_map",
        "pl.store(",
        "pl.load(",
        "prng",
    ] {
        assert!(pallas.contains(feature), "docs/10-pallas-to-rpa.md has no row for `{feature}`");
    }
}

#[test]
fn every_row_gives_a_spelling_or_not_yet_and_why() {
    let rows = rows(&chapter());
    assert!(rows.len() >= 60, "{} rows", rows.len());
    for (pallas, rpa) in &rows {
        assert!(!pallas.is_empty() && !rpa.is_empty(), "an empty cell: {pallas} | {rpa}");
        if let Some(rest) = rpa.strip_prefix("not yet") {
            let why = rest.trim_start_matches([':', ';', ' ']);
            assert!(why.len() >= 15, "`{pallas}`: \"not yet\" without a reason: {rpa}");
        } else {
            assert!(rpa.contains('`'), "`{pallas}`: the rpa spelling is not code: {rpa}");
        }
    }
}
