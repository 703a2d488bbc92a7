//! SVG line plots (median with a 20–80 % band) and the small CSV reader they draw from.

use super::CliError;
use plotters::prelude::*;
use std::path::Path;

/// One line of a plot: a median curve with an optional band.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Abscissae.
    pub x: Vec<f64>,
    /// The curve.
    pub y: Vec<f64>,
    /// Lower edge of the band (same length as `y`, or empty for none).
    pub lo: Vec<f64>,
    /// Upper edge of the band.
    pub hi: Vec<f64>,
}

/// A CSV file with a header, its cells parsed as numbers (`None` where empty or not numeric).
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<Option<f64>>>,
}

impl Table {
    /// Read `path`.
    pub fn read(path: &Path) -> Result<Self, CliError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::new(format!("reading {}: {e}", path.display())))?;
        let mut lines = text.lines();
        let header = lines
            .next()
            .unwrap_or_default()
            .split(',')
            .map(str::to_string)
            .collect();
        let rows = lines
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').map(|c| c.parse::<f64>().ok()).collect())
            .collect();
        Ok(Table { header, rows })
    }

    /// Add the columns of `other` (but its `key`) to the rows whose `key` matches one of its
    /// rows; empty cells elsewhere.
    pub fn join(&mut self, other: &Table, key: &str) {
        let (Some(i), Some(j)) = (self.col(key), other.col(key)) else {
            return;
        };
        let cols: Vec<usize> = (0..other.header.len()).filter(|&c| c != j).collect();
        for &c in &cols {
            self.header.push(other.header[c].clone());
        }
        for row in &mut self.rows {
            let k = row.get(i).copied().flatten();
            let hit = other
                .rows
                .iter()
                .find(|r| k.is_some() && r.get(j).copied().flatten() == k);
            for &c in &cols {
                row.push(hit.and_then(|r| r.get(c).copied().flatten()));
            }
        }
    }

    /// The index of column `name`.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// `(x, y)` pairs of two columns where both are present and finite.
    pub fn pairs(&self, x: &str, y: &str) -> Vec<(f64, f64)> {
        let (Some(i), Some(j)) = (self.col(x), self.col(y)) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .filter_map(|r| Some((r.get(i).copied()??, r.get(j).copied()??)))
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .collect()
    }

    /// The last present value of column `name`.
    pub fn last(&self, name: &str) -> Option<f64> {
        let i = self.col(name)?;
        self.rows
            .iter()
            .rev()
            .find_map(|r| r.get(i).copied().flatten())
    }
}

/// The `q`-quantile (linear interpolation) of `v` (not empty).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let pos = q * (s.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    if i + 1 < s.len() {
        s[i] * (1.0 - frac) + s[i + 1] * frac
    } else {
        s[i]
    }
}

/// The median and 20–80 % band over several traces, on the abscissae of the first one.
pub fn band(name: &str, traces: &[Vec<(f64, f64)>]) -> Series {
    let mut s = Series {
        name: name.to_string(),
        ..Series::default()
    };
    let Some(first) = traces.first() else {
        return s;
    };
    for &(x, _) in first {
        let vals: Vec<f64> = traces
            .iter()
            .filter_map(|t| t.iter().find(|(tx, _)| *tx == x).map(|p| p.1))
            .collect();
        s.x.push(x);
        s.y.push(quantile(&vals, 0.5));
        s.lo.push(quantile(&vals, 0.2));
        s.hi.push(quantile(&vals, 0.8));
    }
    s
}

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Where [`draw_at`] puts the legend.
pub use plotters::prelude::SeriesLabelPosition as LegendAt;

/// Draw `series` into an SVG at `path` (written whole, atomically). With
/// `log_y`, non-positive values are dropped. The legend sits at the right, half way up.
pub fn draw(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<(), CliError> {
    draw_at(
        path,
        title,
        x_label,
        y_label,
        series,
        log_y,
        LegendAt::MiddleRight,
    )
}

/// [`draw`] with the legend at `legend`.
pub fn draw_at(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
    legend: LegendAt,
) -> Result<(), CliError> {
    let keep = |v: f64| v.is_finite() && (!log_y || v > 0.0);
    let all_y: Vec<f64> = series
        .iter()
        .flat_map(|s| s.y.iter().chain(&s.lo).chain(&s.hi).copied())
        .filter(|v| keep(*v))
        .collect();
    let all_x: Vec<f64> = series.iter().flat_map(|s| s.x.iter().copied()).collect();
    if all_y.is_empty() || all_x.is_empty() {
        return Ok(());
    }
    let (x0, x1) = min_max(&all_x);
    let (mut y0, mut y1) = min_max(&all_y);
    if y1 <= y0 {
        let pad = if y0 == 0.0 { 1.0 } else { y0.abs() * 0.1 };
        (y0, y1) = (y0 - pad, y1 + pad);
        if log_y {
            y0 = y0.max(y1 * 1e-3);
        }
    }
    let x1 = if x1 <= x0 { x0 + 1.0 } else { x1 };
    let mut svg = String::new();
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::with_string(&mut svg, (800, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut b = ChartBuilder::on(&root);
        b.caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70);
        macro_rules! body {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(x_label)
                    .y_desc(y_label)
                    .x_label_formatter(&|v| tick_label_in(*v, x1 - x0))
                    .y_label_formatter(&|v| tick_label_in(*v, y1 - y0))
                    .draw()?;
                for (i, s) in series.iter().enumerate() {
                    let c = COLORS[i % COLORS.len()];
                    if s.lo.len() == s.y.len() && !s.lo.is_empty() {
                        let mut poly: Vec<(f64, f64)> =
                            s.x.iter()
                                .zip(&s.hi)
                                .filter(|p| keep(*p.1))
                                .map(|(a, b)| (*a, *b))
                                .collect();
                        poly.extend(
                            s.x.iter()
                                .zip(&s.lo)
                                .rev()
                                .filter(|p| keep(*p.1))
                                .map(|(a, b)| (*a, *b)),
                        );
                        chart.draw_series(std::iter::once(Polygon::new(poly, c.mix(0.2))))?;
                    }
                    let pts: Vec<(f64, f64)> =
                        s.x.iter()
                            .zip(&s.y)
                            .filter(|p| keep(*p.1))
                            .map(|(a, b)| (*a, *b))
                            .collect();
                    chart
                        .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
                        .label(s.name.clone())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                        });
                }
                chart
                    .configure_series_labels()
                    .position(legend.clone())
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()?;
            }};
        }
        if log_y {
            body!(b.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?);
        } else {
            let pad = 0.05 * (y1 - y0);
            body!(b.build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))?);
        }
        root.present()?;
        Ok(())
    })();
    result.map_err(|e| CliError::new(format!("drawing {}: {e}", path.display())))?;
    super::write_atomic(path, &svg)
}

/// [`tick_label`] with enough decimals to tell apart ticks on an axis spanning `span`
/// (ticks are about a tenth of the span apart).
fn tick_label_in(v: f64, span: f64) -> String {
    let a = v.abs();
    let need = if span > 0.0 && span.is_finite() {
        (1 - span.log10().floor() as i32).clamp(0, 12) as usize
    } else {
        0
    };
    let plain = tick_label(v);
    if v == 0.0 || !(1e-2..1e5).contains(&a) || need == 0 {
        return plain;
    }
    let decimals = plain.split('.').nth(1).map_or(0, str::len);
    if decimals >= need {
        return plain;
    }
    let s = format!("{v:.need$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A short axis label: integers without a fraction, three significant digits otherwise, and
/// scientific notation for very small or large magnitudes (log axes otherwise print the binary
/// rounding of their tick positions, such as `0.30000000000000004`).
fn tick_label(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".to_string()
    } else if !(1e-2..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if (v - v.round()).abs() < 1e-9 * a.max(1.0) {
        format!("{}", v.round())
    } else {
        let s = format!("{:.*}", (2 - a.log10().floor() as i32).max(0) as usize, v);
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}

#[cfg(test)]
mod tests {
    use super::{tick_label, tick_label_in};

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.30000000000000004), "0.3");
        assert_eq!(tick_label(0.6000000000000001), "0.6");
        assert_eq!(tick_label(20.0), "20");
        assert_eq!(tick_label(1e-26), "1.0e-26");
        assert_eq!(tick_label(0.125), "0.125");
        assert_eq!(tick_label(2.5), "2.5");
        assert_eq!(tick_label(0.0), "0");
        // A narrow axis far from 0 still tells its ticks apart.
        assert_eq!(tick_label_in(1.0002, 0.001), "1.0002");
        assert_eq!(tick_label_in(1.0, 0.001), "1");
        assert_eq!(tick_label_in(0.35, 0.7), "0.35");
        assert_eq!(tick_label_in(1500.0, 3000.0), "1500");
        assert_eq!(tick_label_in(250.0, 500.0), "250");
        assert_eq!(tick_label(100.4), "100");
    }
}
