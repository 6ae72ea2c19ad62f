//! `debug_print` in the StableHLO program: every print appends a row (its site, then the bits of
//! its scalars) to a log buffer the program returns, with the count of prints; [`PrintLog`] turns
//! them into interpret mode's lines (`Outcome::prints`). The log keeps the first [`PRINT_ROWS`]
//! prints (later ones land on a spare row and are counted); a kernel that prints tiles has rows
//! as wide as its largest tile, and keeps fewer (about 4 MiB of rows, at least 64).

use super::{BoxPlan, Init, Lowerer};
use crate::array::Array;
use crate::dtype::DType;
use crate::ir::{Op, ValueId};

/// Prints a program keeps (of scalars; see the module's docs for tiles).
pub const PRINT_ROWS: usize = 4096;

/// The most log elements a kernel that prints tiles keeps.
const TILE_LOG_ELEMENTS: usize = 1 << 20;

/// One `debug_print` of the kernel: its message, the dtypes of its scalars (or of its tile) and,
/// for a tile, its shape.
#[derive(Clone, Debug, PartialEq)]
struct Site {
    message: String,
    args: Vec<DType>,
    tile: Option<Vec<usize>>,
}

/// What a program's print log means: the sites of its prints, by code.
#[derive(Clone, Debug)]
pub struct PrintLog {
    sites: Vec<Site>,
    width: usize,
    capacity: usize,
}

impl PrintLog {
    /// The lines the program printed, in order, from its print count and rows (the results after
    /// the outputs), formatted as interpret mode formats them.
    pub fn lines(&self, count: &Array, rows: &Array) -> Vec<String> {
        let count = count.to_i64().first().copied().unwrap_or(0).max(0) as usize;
        let (rows, cap) = (rows.to_i64(), self.capacity);
        let mut out = Vec::with_capacity(count.min(cap) + 1);
        for row in rows.chunks_exact(self.width).take(count.min(cap)) {
            let Some(site) = usize::try_from(row[0] - 1).ok().and_then(|s| self.sites.get(s)) else { continue };
            let mut text = site.message.clone();
            if let (Some(shape), Some(&dt)) = (&site.tile, site.args.first()) {
                let n: usize = shape.iter().product();
                let elems: Vec<String> = row[1..1 + n].iter().map(|&b| format_bits(dt, b)).collect();
                text = text.replacen("{}", &crate::ir::fmt_tile(shape, &elems), 1);
            } else {
                for (&dt, &bits) in site.args.iter().zip(&row[1..]) {
                    text = text.replacen("{}", &format_bits(dt, bits), 1);
                }
            }
            out.push(text);
        }
        if count > cap {
            out.push(format!("… {} more debug_print lines (PJRT-CPU keeps the first {cap})", count - cap));
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

/// A printed value's shape (`[]` for a scalar).
fn tile_shape(t: &crate::ir::Type) -> Vec<usize> {
    match t {
        crate::ir::Type::Vector { shape, .. } => shape.clone(),
        _ => vec![],
    }
}

/// The print log while lowering.
pub(super) struct PrintState {
    count: usize,
    rows: usize,
    width: usize,
    capacity: usize,
    sites: Vec<Site>,
}

impl Lowerer<'_> {
    /// Adds the print log's buffers if the kernel prints.
    pub(super) fn enable_prints(&mut self) {
        let (mut width, mut any, mut tiles) = (0, false, false);
        let k = self.k;
        k.walk(&mut |i| {
            if let Op::DebugPrint { args, .. } = &i.op {
                any = true;
                let elems: usize = args.iter().map(|a| tile_shape(k.ty(*a)).iter().product::<usize>()).sum();
                tiles |= args.iter().any(|a| matches!(k.ty(*a), crate::ir::Type::Vector { .. }));
                width = width.max(elems + 1);
            }
        });
        if !any {
            return;
        }
        let capacity = if tiles { (TILE_LOG_ELEMENTS / width).clamp(64, PRINT_ROWS) } else { PRINT_ROWS };
        let count = self.add_buf("debug print count", DType::I32, &[1], Init::Zero);
        let rows = self.add_buf("debug prints", DType::I32, &[capacity + 1, width], Init::Zero);
        self.prints = Some(PrintState { count, rows, width, capacity, sites: Vec::new() });
    }

    /// The print log's buffers (count, rows), if the kernel prints.
    pub(super) fn print_bufs(&self) -> Option<(usize, usize)> {
        self.prints.as_ref().map(|p| (p.count, p.rows))
    }

    /// What the print log means (after the final pass).
    pub(super) fn print_log(&self) -> Option<PrintLog> {
        let p = self.prints.as_ref()?;
        Some(PrintLog { sites: p.sites.clone(), width: p.width, capacity: p.capacity })
    }

    /// Appends a row for `debug_print(message, args)`: its site's code, then each scalar's bits.
    pub(super) fn log_print(&mut self, message: &str, args: &[ValueId]) {
        let tile = match args {
            [a] => match self.k.ty(*a) {
                crate::ir::Type::Vector { shape, .. } => Some(shape.clone()),
                _ => None,
            },
            _ => None,
        };
        let site =
            Site { message: message.to_string(), args: args.iter().map(|a| self.value_dtype(*a)).collect(), tile };
        let Some(p) = self.prints.as_mut() else { return };
        let code = match p.sites.iter().position(|s| *s == site) {
            Some(i) => i + 1,
            None => {
                p.sites.push(site);
                p.sites.len()
            }
        };
        let (count, rows, width, capacity) = (p.count, p.rows, p.width, p.capacity);
        let i32t = DType::I32;
        let code = self.iconst(code as i64);
        // Pieces of the row, `[1, n]` each: the code, each argument's bits, zeros to the width.
        let mut parts = vec![(self.reshape(&code, i32t, &[], &[1, 1]), 1)];
        for a in args {
            let (dt, v, shape) = (self.value_dtype(*a), self.tensor(*a), tile_shape(self.k.ty(*a)));
            let n: usize = shape.iter().product();
            let bits = self.logged_bits(&v, dt, &shape);
            parts.push((self.reshape(&bits, i32t, &shape, &[1, n]), n));
        }
        let used: usize = parts.iter().map(|p| p.1).sum();
        if used < width {
            parts.push((self.splat(i32t, &[1, width - used], 0.0), width - used));
        }
        let types: Vec<String> = parts.iter().map(|p| super::ty(i32t, &[1, p.1])).collect();
        let names: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
        let row = self.emit(format!(
            "stablehlo.concatenate {}, dim = 1 : ({}) -> {}",
            names.join(", "),
            types.join(", "),
            super::ty(i32t, &[1, width])
        ));
        // The row goes to position min(count, capacity): past the end, the spare last row.
        let zero = self.iconst(0);
        let n = self.elem_get(count, &zero, Some(0));
        let last = self.iconst(capacity as i64);
        let at = self.bin("minimum", &n, &last, i32t, &[]);
        let plan = BoxPlan {
            shape: vec![capacity + 1, width],
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

    /// The scalar or tile `v` of `dt` as logged i32s: float bits (narrow floats are their bits
    /// already), integers and bools as values.
    fn logged_bits(&mut self, v: &str, dt: DType, shape: &[usize]) -> String {
        match dt {
            DType::F32 | DType::U32 => self.bitcast(v, dt, DType::I32, shape),
            _ if dt.is_float() => self.convert(v, dt.same_width_uint(), DType::I32, shape),
            _ => self.convert(v, dt, DType::I32, shape),
        }
    }
}
