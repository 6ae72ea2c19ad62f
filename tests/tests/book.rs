//! The book (`docs/`) stays true to the code: its `rust` blocks are doctests (tests/src/lib.rs);
//! here, its `rust,ignore` excerpts are found verbatim in the kernel sources, the debugging page's
//! quoted messages exist in the sources, the op reference names every IR op, and links resolve.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn chapters() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), fs::read_to_string(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// The fenced code blocks of a markdown text: `(info string, body)`.
fn code_blocks(md: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in md.lines() {
        let t = line.trim_start();
        match (&mut current, t.strip_prefix("```")) {
            (None, Some(info)) => current = Some((info.trim().to_string(), String::new())),
            (Some(_), Some(_)) => blocks.push(current.take().unwrap()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "unterminated code block");
    blocks
}

/// Every `.rs` file under `dir`, concatenated.
fn sources(dir: &str) -> String {
    fn walk(p: &Path, out: &mut String) {
        for e in fs::read_dir(p).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push_str(&fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = String::new();
    walk(&root().join(dir), &mut out);
    out
}

#[test]
fn ignored_blocks_are_verbatim_excerpts_of_the_compiled_kernel_sources() {
    let source = [sources("kernels/src/rpa"), sources("examples")].concat();
    let lines: Vec<&str> = source.lines().map(str::trim).collect();
    let mut excerpts = 0;
    let mut stale = Vec::new();
    for (chapter, md) in chapters() {
        for (info, body) in code_blocks(&md) {
            if !info.contains("ignore") {
                continue;
            }
            let want: Vec<&str> = body.lines().map(str::trim).collect();
            if !lines.windows(want.len()).any(|w| w == want.as_slice()) {
                stale.push(format!(
                    "{chapter}: this excerpt is not in kernels/src/rpa or examples/ (update it):\n{body}"
                ));
            }
            excerpts += 1;
        }
    }
    assert!(stale.is_empty(), "{}", stale.join("\n"));
    assert!(excerpts >= 10, "the walkthrough quotes the kernel ({excerpts} excerpts found)");
}

#[test]
fn every_code_block_is_rust_tested_or_a_checked_excerpt() {
    for (chapter, md) in chapters() {
        for (info, body) in code_blocks(&md) {
            // `python` blocks are run by pytest (python/tests/test_book.py).
            let ok = matches!(info.as_str(), "rust" | "rust,ignore" | "sh" | "text" | "python");
            assert!(ok, "{chapter}: code block with info string {info:?} is neither tested nor checked:\n{body}");
        }
    }
}

/// Inline code spans of the "message" column (the second) of the debugging page's tables.
fn quoted_messages(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in md.lines().filter(|l| l.starts_with('|') && !l.starts_with("|---")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let Some(cell) = cells.get(1) else { continue };
        let mut rest = *cell;
        while let Some(start) = rest.find('`') {
            let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
            let delim = "`".repeat(ticks);
            let after = &rest[start + ticks..];
            let Some(end) = after.find(&delim) else { break };
            out.push(after[..end].trim().to_string());
            rest = &after[end + ticks..];
        }
    }
    out
}

#[test]
fn the_debugging_page_quotes_real_messages() {
    let md = read("docs/04-debugging.md");
    let source = [sources("rpa-dsl/src"), sources("rpa-macros/src"), sources("kernels/src")].concat();
    // Texts that come from libtpu or rustc, not from us.
    let external = ["CompileTimeScopedVmemOom", "expected `usize`, found `Scalar`"];
    let quoted = quoted_messages(&md);
    assert!(quoted.len() >= 30, "{quoted:?}");
    for q in quoted.iter().filter(|q| q.as_str() != "message" && !external.contains(&q.as_str())) {
        assert!(source.contains(q.as_str()), "docs/04-debugging.md quotes `{q}`, which no source file contains");
    }
}

#[test]
fn the_op_reference_names_every_ir_op() {
    let ops = read("rpa-dsl/src/ir/ops/mod.rs");
    let body = &ops[ops.find("pub fn name(&self)").expect("Op::name")..];
    let body = &body[..body.find("\n    }\n").unwrap()];
    let names: Vec<&str> = body.split("=> \"").skip(1).map(|s| &s[..s.find('"').unwrap()]).collect();
    assert!(names.len() > 50, "{names:?}");
    let reference = read("docs/03-op-reference.md");
    for n in names {
        assert!(reference.contains(&format!("`{n}`")), "docs/03-op-reference.md does not document `{n}`");
    }
}

#[test]
fn links_between_chapters_resolve() {
    for (chapter, md) in chapters() {
        for (i, _) in md.match_indices("](") {
            let target = &md[i + 2..];
            let target = &target[..target.find(')').unwrap()];
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            let path = target.split('#').next().unwrap();
            assert!(root().join("docs").join(path).exists(), "{chapter} links to missing {target}");
        }
    }
    let index = read("docs/README.md");
    for (chapter, _) in chapters().iter().filter(|(c, _)| c != "README.md") {
        assert!(index.contains(&format!("]({chapter})")), "docs/README.md does not list {chapter}");
    }
}
