//! SVG line charts of benchmark results (plotters, SVG backend only).
//!
//! Logarithmic axes are drawn as linear axes over `log2(x)` / `log10(y)` with ticks at the data's x
//! values and at 1-2-5 steps of y, so that short ranges still get labelled ticks.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::ops::Range;
use std::path::Path;

/// A linear f64 axis with the given tick positions.
struct Axis {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Axis {
    fn new(range: Range<f64>, ticks: Vec<f64>) -> Axis {
        Axis { inner: range.into(), ticks }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// One line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    /// `(x, y)` in increasing x.
    pub points: Vec<(f64, f64)>,
}

/// `v` with three significant digits, without trailing zeros.
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Ticks at 1, 2, 5 × 10^k within `[lo, hi]`; on short ranges at 1, 2, …, 9 × 10^k; at least
/// the ends.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let at = |ms: &[f64]| {
        let mut t = Vec::new();
        for k in lo.log10().floor() as i32..=hi.log10().ceil() as i32 {
            for m in ms {
                let v = m * 10f64.powi(k);
                if v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9) {
                    t.push(v);
                }
            }
        }
        t
    };
    let t = at(&[1.0, 2.0, 5.0]);
    if t.len() >= 3 {
        return t;
    }
    let t = at(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    if t.len() >= 2 {
        t
    } else {
        [vec![lo], t, vec![hi]].concat()
    }
}

/// About six ticks at a 1-2-5 step within `[lo, hi]`.
fn linear_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = ((hi - lo) / 6.0).max(1e-12);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Writes a chart with a logarithmic x axis and a logarithmic (`log_y`) or linear y axis. Points
/// that a log axis cannot show (≤ 0, not finite) are left out.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    log_y: bool,
) -> Result<(), String> {
    let ty = |y: f64| if log_y { y.log10() } else { y };
    let shown = |&(x, y): &(f64, f64)| x > 0.0 && x.is_finite() && y.is_finite() && (!log_y || y > 0.0);
    let lines: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| s.points.iter().filter(|p| shown(p)).map(|&(x, y)| (x.log2(), ty(y))).collect())
        .collect();
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).filter(|p| shown(p)).collect();
    let (mut xs, ys): (Vec<f64>, Vec<f64>) = all.iter().copied().unzip();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let (x_lo, x_hi) = match (xs.first(), xs.last()) {
        (Some(&a), Some(&b)) => (a, b),
        _ => (1.0, 2.0),
    };
    let (y_lo, y_hi) = ys.iter().fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
    let (y_lo, y_hi) = if y_lo > y_hi { (1.0, 2.0) } else { (y_lo, y_hi) };
    let x_keys: Vec<f64> = if xs.is_empty() { vec![0.0, 1.0] } else { xs.iter().map(|x| x.log2()).collect() };
    let (x0, x1) = (x_lo.log2() - 0.25, x_hi.log2() + 0.25);
    let (y0, y1, y_keys) = if log_y {
        let (lo, hi) = (y_lo / 1.3, y_hi * 1.3);
        (lo.log10(), hi.log10(), log_ticks(lo, hi).into_iter().map(f64::log10).collect::<Vec<_>>())
    } else {
        let pad = ((y_hi - y_lo) * 0.1).max(0.02 * y_hi.abs().max(1e-9));
        let (lo, hi) = (y_lo - pad, y_hi + pad);
        (lo, hi, linear_ticks(lo, hi))
    };
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(Axis::new(x0..x1, x_keys), Axis::new(y0..y1, y_keys))
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|x| fmt_num(2f64.powf(*x)))
        .y_label_formatter(&|y| fmt_num(if log_y { 10f64.powf(*y) } else { *y }))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (s, line)) in series.iter().zip(&lines).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(|e| err(&e))?;
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_and_numbers() {
        assert_eq!(log_ticks(0.8, 60.0), vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        assert_eq!(log_ticks(13.5, 28.2), vec![13.5, 20.0, 28.2]);
        assert_eq!(log_ticks(13.5, 42.0), vec![20.0, 30.0, 40.0]);
        assert_eq!(log_ticks(21.0, 28.0), vec![21.0, 28.0]);
        let t = linear_ticks(0.95, 1.05);
        let want = [0.96, 0.98, 1.0, 1.02, 1.04];
        assert!(t.len() == want.len() && t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{t:?}");
        assert_eq!(linear_ticks(0.0, 60.0), vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
        assert_eq!(fmt_num(1024.0), "1024");
        assert_eq!(fmt_num(0.05), "0.05");
        assert_eq!(fmt_num(1.25), "1.25");
        assert_eq!(fmt_num(26.7031), "26.7");
    }

    #[test]
    fn writes_svg_files() {
        let dir = std::env::temp_dir().join(format!("rpa-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let series = vec![
            Series { label: "a".into(), points: vec![(64.0, 1.0), (256.0, 3.0), (1024.0, 9.5)] },
            Series { label: "b".into(), points: vec![(64.0, 2.0), (256.0, 0.0)] },
        ];
        for log_y in [true, false] {
            let p = dir.join(format!("chart-{log_y}.svg"));
            line_chart(&p, "title", "x", "y", &series, log_y).unwrap();
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.starts_with("<svg"), "{}", &text[..40.min(text.len())]);
            let texts: Vec<&str> = text
                .split("<text")
                .skip(1)
                .filter_map(|t| t.split('>').nth(1))
                .map(|t| t.trim_start().split('<').next().unwrap().trim())
                .collect();
            assert!(texts.contains(&"title") && texts.contains(&"1024") && texts.contains(&"a"), "{texts:?}");
            assert!(text.trim_end().ends_with("</svg>"));
        }
        line_chart(&dir.join("empty.svg"), "empty", "x", "y", &[], true).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
