//! `debug_print` in the StableHLO program: every print appends a row (its site, then the bits of
//! its scalars) to a log buffer the program returns, with the count of prints; [`PrintLog`] turns
//! them into interpret mode's lines (`Outcome::prints`). The log keeps the first [`PRINT_ROWS`]
//! prints (later ones land on a spare row and are counted).

use super::{BoxPlan, Init, Lowerer};
use crate::array::Array;
use crate::dtype::DType;
use crate::ir::{Op, ValueId};

/// Prints a program keeps.
pub const PRINT_ROWS: usize = 4096;

/// One `debug_print` of the kernel: its message and the dtypes of its scalars.
#[derive(Clone, Debug, PartialEq)]
struct Site {
    message: String,
    args: Vec<DType>,
}

/// What a program's print log means: the sites of its prints, by code.
#[derive(Clone, Debug)]
pub struct PrintLog {
    sites: Vec<Site>,
    width: usize,
}

impl PrintLog {
    /// The lines the program printed, in order, from its print count and rows (the results after
    /// the outputs), formatted as interpret mode formats them.
    pub fn lines(&self, count: &Array, rows: &Array) -> Vec<String> {
        let count = count.to_i64().first().copied().unwrap_or(0).max(0) as usize;
        let rows = rows.to_i64();
        let mut out = Vec::with_capacity(count.min(PRINT_ROWS) + 1);
        for row in rows.chunks_exact(self.width).take(count.min(PRINT_ROWS)) {
            let Some(site) = usize::try_from(row[0] - 1).ok().and_then(|s| self.sites.get(s)) else { continue };
            let mut text = site.message.clone();
            for (&dt, &bits) in site.args.iter().zip(&row[1..]) {
                text = text.replacen("{}", &format_bits(dt, bits), 1);
            }
            out.push(text);
        }
        if count > PRINT_ROWS {
            out.push(format!(
                "… {} more debug_print lines (PJRT-CPU keeps the first {PRINT_ROWS})",
                count - PRINT_ROWS
            ));
        }
        out
    }
}

/// A scalar as interpret mode prints it, from the bits the program logged (an i32 holding the
/// value's bits, or for signed and bool values the value).
fn format_bits(dt: DType, v: i64) -> String {
    if dt.is_float() {
        (dt.float_from_bits(v as u32) as f32).to_string()
    } else if dt == DType::U32 {
        (v as u32).to_string()
    } else {
        v.to_string()
    }
}

/// The print log while lowering.
pub(super) struct PrintState {
    count: usize,
    rows: usize,
    width: usize,
    sites: Vec<Site>,
}

impl Lowerer<'_> {
    /// Adds the print log's buffers if the kernel prints.
    pub(super) fn enable_prints(&mut self) {
        let mut width = 0;
        let mut any = false;
        self.k.walk(&mut |i| {
            if let Op::DebugPrint { args, .. } = &i.op {
                any = true;
                width = width.max(args.len() + 1);
            }
        });
        if !any {
            return;
        }
        let count = self.add_buf("debug print count", DType::I32, &[1], Init::Zero);
        let rows = self.add_buf("debug prints", DType::I32, &[PRINT_ROWS + 1, width], Init::Zero);
        self.prints = Some(PrintState { count, rows, width, sites: Vec::new() });
    }

    /// The print log's buffers (count, rows), if the kernel prints.
    pub(super) fn print_bufs(&self) -> Option<(usize, usize)> {
        self.prints.as_ref().map(|p| (p.count, p.rows))
    }

    /// What the print log means (after the final pass).
    pub(super) fn print_log(&self) -> Option<PrintLog> {
        let p = self.prints.as_ref()?;
        Some(PrintLog { sites: p.sites.clone(), width: p.width })
    }

    /// Appends a row for `debug_print(message, args)`: its site's code, then each scalar's bits.
    pub(super) fn log_print(&mut self, message: &str, args: &[ValueId]) {
        let site = Site { message: message.to_string(), args: args.iter().map(|a| self.value_dtype(*a)).collect() };
        let Some(p) = self.prints.as_mut() else { return };
        let code = match p.sites.iter().position(|s| *s == site) {
            Some(i) => i + 1,
            None => {
                p.sites.push(site);
                p.sites.len()
            }
        };
        let (count, rows, width) = (p.count, p.rows, p.width);
        let i32t = DType::I32;
        let mut parts = vec![self.iconst(code as i64)];
        for a in args {
            let (dt, v) = (self.value_dtype(*a), self.tensor(*a));
            parts.push(self.logged_bits(&v, dt));
        }
        while parts.len() < width {
            parts.push(self.iconst(0));
        }
        let parts: Vec<String> = parts.iter().map(|x| self.reshape(x, i32t, &[], &[1, 1])).collect();
        let one = super::ty(i32t, &[1, 1]);
        let row = self.emit(format!(
            "stablehlo.concatenate {}, dim = 1 : ({}) -> {}",
            parts.join(", "),
            vec![one; parts.len()].join(", "),
            super::ty(i32t, &[1, width])
        ));
        // The row goes to position min(count, PRINT_ROWS): past the end, the spare last row.
        let zero = self.iconst(0);
        let n = self.elem_get(count, &zero, Some(0));
        let last = self.iconst(PRINT_ROWS as i64);
        let at = self.bin("minimum", &n, &last, i32t, &[]);
        let plan = BoxPlan {
            shape: vec![PRINT_ROWS + 1, width],
            sizes: vec![1, width],
            starts: vec![at, zero.clone()],
            constant: None,
            map: vec![],
        };
        self.box_put(rows, &plan, &row);
        let one = self.iconst(1);
        let next = self.bin("add", &n, &one, i32t, &[]);
        self.elem_set(count, &zero, Some(0), &next);
    }

    /// The scalar `v` of `dt` as a logged i32: float bits (narrow floats are their bits already),
    /// integers and bools as values.
    fn logged_bits(&mut self, v: &str, dt: DType) -> String {
        match dt {
            DType::F32 | DType::U32 => self.bitcast(v, dt, DType::I32, &[]),
            _ if dt.is_float() => self.convert(v, dt.same_width_uint(), DType::I32, &[]),
            _ => self.convert(v, dt, DType::I32, &[]),
        }
    }
}
