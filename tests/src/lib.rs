//! Helpers shared by the end-to-end suites.

/// The 1-based line of `source` that contains `marker` (a comment such as `// @missing-wait`), so
/// tests can assert on source lines without hard-coding numbers that formatting would shift.
pub fn line_of(source: &str, marker: &str) -> u32 {
    let hits: Vec<usize> = source.lines().enumerate().filter(|(_, l)| l.contains(marker)).map(|(i, _)| i).collect();
    assert_eq!(hits.len(), 2, "marker {marker:?} must appear once in the code and once in the test");
    hits[0] as u32 + 1
}

/// The book (`docs/`): every Rust code block of every chapter is a doctest of this crate, so the
/// book cannot drift from the code (`cargo test -p rpa-tests --doc`).
#[cfg(doctest)]
pub mod book {
    #[doc = include_str!("../../README.md")]
    pub struct Readme;
    #[doc = include_str!("../../docs/01-getting-started.md")]
    pub struct GettingStarted;
    #[doc = include_str!("../../docs/02-concepts.md")]
    pub struct Concepts;
    #[doc = include_str!("../../docs/03-op-reference.md")]
    pub struct OpReference;
    #[doc = include_str!("../../docs/04-debugging.md")]
    pub struct Debugging;
    #[doc = include_str!("../../docs/05-rpa-walkthrough.md")]
    pub struct RpaWalkthrough;
    #[doc = include_str!("../../docs/07-using-rpa-from-jax.md")]
    pub struct UsingRpaFromJax;
    #[doc = include_str!("../../docs/08-scaling-out.md")]
    pub struct ScalingOut;
    #[doc = include_str!("../../docs/09-your-kernels-in-the-tools.md")]
    pub struct YourKernelsInTheTools;
    #[doc = include_str!("../../docs/10-pallas-to-rpa.md")]
    pub struct PallasToRpa;
}
