//! How a result compares with its reference, element by element.

/// How one result compares with the reference, element by element: an element matches when it is
/// within `tolerance · (1 + |reference|)` of the reference, equal to it (infinities), or NaN where the
/// reference is NaN too (NaN inputs make NaN outputs).
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub tolerance: f64,
    /// Elements compared.
    pub len: usize,
    /// Largest `|kernel - reference|` over the elements that are numbers in both.
    pub max_abs_err: f64,
    /// Elements that do not match.
    pub mismatches: usize,
    /// Of the mismatches, elements NaN in the result or the reference but not in both.
    pub nan_mismatches: usize,
    /// Elements NaN in both (matches).
    pub nan_in_both: usize,
    /// The first mismatch: `(flat index, kernel, reference)`.
    pub first_mismatch: Option<(usize, f64, f64)>,
}

impl Comparison {
    /// Compares `len` elements of `got` with `want`.
    pub fn new(len: usize, got: impl Fn(usize) -> f64, want: impl Fn(usize) -> f64, tolerance: f64) -> Comparison {
        let mut c = Comparison {
            tolerance,
            len,
            max_abs_err: 0.0,
            mismatches: 0,
            nan_mismatches: 0,
            nan_in_both: 0,
            first_mismatch: None,
        };
        for i in 0..len {
            let (a, b) = (got(i), want(i));
            let err = (a - b).abs();
            if !err.is_nan() {
                c.max_abs_err = c.max_abs_err.max(err);
            }
            let matches = match (a.is_nan(), b.is_nan()) {
                (true, true) => {
                    c.nan_in_both += 1;
                    true
                }
                (false, false) => a == b || (a.is_finite() && err <= tolerance * (1.0 + b.abs())),
                _ => {
                    c.nan_mismatches += 1;
                    false
                }
            };
            if !matches {
                c.mismatches += 1;
                c.first_mismatch = c.first_mismatch.or(Some((i, a, b)));
            }
        }
        c
    }

    pub fn ok(&self) -> bool {
        self.mismatches == 0
    }

    /// `ok`, or `MISMATCH` with the counts.
    pub fn verdict(&self) -> String {
        if self.ok() {
            return "ok".into();
        }
        let nan = match self.nan_mismatches {
            0 => String::new(),
            n => format!(", {n} of them NaN where the other is not"),
        };
        format!("MISMATCH ({} of {} elements{nan})", self.mismatches, self.len)
    }
}
