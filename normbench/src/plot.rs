//! `--plot`: an SVG a person reads at a glance. One panel per direction, GB/s against hidden
//! size (the measured sizes, evenly spaced), one line per kernel, and as references the copy of
//! the same shape and the naive baseline, dashed. At most five grid lines, labels that cannot
//! overlap.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::BenchError;
use crate::report::Row;

const PANEL_W: f64 = 440.0;
const PANEL_H: f64 = 300.0;
const LEFT: f64 = 60.0;
const GAP: f64 = 90.0;
const TOP: f64 = 100.0;
const WIDTH: f64 = LEFT + 2.0 * PANEL_W + GAP + 30.0;
const HEIGHT: f64 = TOP + PANEL_H + 60.0;

/// A line of the chart: its name in the legend, colour, dash, and GB/s per hidden size.
struct Series {
    name: String,
    color: &'static str,
    dashed: bool,
    points: BTreeMap<usize, f64>,
}

/// Per direction, the rows standing for each (op, hidden size): the one with the most rows,
/// the largest working set, where several shapes share a hidden size.
fn representative(rows: &[Row], direction: &str) -> Vec<Row> {
    let mut best: BTreeMap<(&str, usize), &Row> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.direction == direction) {
        let key = (r.op, r.cols);
        if best.get(&key).is_none_or(|b| b.rows < r.rows) {
            best.insert(key, r);
        }
    }
    best.into_values().cloned().collect()
}

fn series(rows: &[Row]) -> Vec<Series> {
    let mut out = Vec::new();
    let mut copy = BTreeMap::new();
    for (op, color) in [("rms_norm", "#2b6cb0"), ("layer_norm", "#dd6b20")] {
        let of_op: Vec<&Row> = rows.iter().filter(|r| r.op == op).collect();
        if of_op.is_empty() {
            continue;
        }
        let points = of_op.iter().map(|r| (r.cols, r.gpu_gbps)).collect();
        out.push(Series { name: op.to_string(), color, dashed: false, points });
        let naive: BTreeMap<usize, f64> =
            of_op.iter().filter_map(|r| r.vs_naive.map(|v| (r.cols, r.gpu_gbps / v))).collect();
        if !naive.is_empty() {
            out.push(Series { name: format!("naive {op}"), color, dashed: true, points: naive });
        }
        for r in of_op {
            copy.insert(r.cols, r.gpu_gbps / r.shape_copy_fraction);
        }
    }
    out.push(Series { name: "copy, same shape".to_string(), color: "#718096", dashed: true, points: copy });
    out
}

/// 1, 2 or 5 times a power of ten, at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * p).find(|c| *c >= v).unwrap_or(10.0 * p)
}

fn panel(svg: &mut String, x0: f64, title: &str, lines: &[Series], sizes: &[usize], step: f64, ticks: usize) {
    let top = step * ticks as f64;
    let x_of = |cols: usize| {
        let i = sizes.iter().position(|&c| c == cols).unwrap_or(0) as f64;
        x0 + PANEL_W * (i + 0.5) / sizes.len() as f64
    };
    let y_of = |gbps: f64| TOP + PANEL_H * (1.0 - gbps / top);
    // Infallible: writing to a String.
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="16" font-weight="bold">{title}</text>"#,
        x0,
        TOP - 12.0
    );
    let decimals = if step >= 1.0 { 0 } else { (-step.log10()).ceil() as usize };
    for i in 0..=ticks {
        let v = step * i as f64;
        let y = y_of(v);
        let _ = write!(
            svg,
            r##"<line x1="{x0:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.decimals$}</text>"##,
            x0 + PANEL_W,
            if i == 0 { "#333" } else { "#e2e8f0" },
            x0 - 6.0,
            y + 4.0,
        );
    }
    for &cols in sizes {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{cols}</text>"#,
            x_of(cols),
            TOP + PANEL_H + 18.0
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">hidden size</text>"#,
        x0 + PANEL_W / 2.0,
        TOP + PANEL_H + 40.0
    );
    for s in lines {
        let path: Vec<String> =
            s.points.iter().map(|(&c, &g)| format!("{:.1},{:.1}", x_of(c), y_of(g))).collect();
        let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let width = if s.dashed { 1.5 } else { 2.5 };
        let _ = write!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{width}"{dash}/>"#,
            path.join(" "),
            s.color
        );
        if !s.dashed {
            for p in &path {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(svg, r#"<circle cx="{x}" cy="{y}" r="3.5" fill="{}"/>"#, s.color);
            }
        }
    }
}

pub fn draw(path: &Path, rows: &[Row], adapter: &str) -> Result<(), BenchError> {
    let err = |e: &dyn std::fmt::Display| BenchError::Plot(format!("{}: {e}", path.display()));
    let panels: Vec<(&str, Vec<Series>)> = ["forward", "backward"]
        .into_iter()
        .map(|d| (d, series(&representative(rows, d))))
        .filter(|(_, s)| s.iter().any(|s| !s.points.is_empty() && !s.dashed))
        .collect();
    if panels.is_empty() {
        return Err(err(&"no results to plot"));
    }
    let mut sizes: Vec<usize> = rows.iter().map(|r| r.cols).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let most =
        panels.iter().flat_map(|(_, s)| s).flat_map(|s| s.points.values()).fold(0.0, |a: f64, &b| a.max(b));
    if !(most > 0.0 && most.is_finite()) {
        return Err(err(&"no positive GB/s to plot"));
    }
    // Both panels share one scale, in at most five steps of 1, 2 or 5 times a power of ten.
    let step = nice_ceiling(most / 5.0);
    let ticks = (most / step).ceil().max(1.0) as usize;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>"#
    );
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="26" font-size="18">wgpu-norm on {}: GB/s (byte model / GPU time) by hidden size</text>"#,
        adapter.replace('&', "&amp;").replace('<', "&lt;")
    );
    // The legend: one entry per line of either panel, in one row.
    let mut x = LEFT;
    let mut seen = Vec::new();
    for s in panels.iter().flat_map(|(_, s)| s) {
        if seen.contains(&s.name) {
            continue;
        }
        seen.push(s.name.clone());
        let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = write!(
            svg,
            r#"<line x1="{x:.1}" y1="50" x2="{:.1}" y2="50" stroke="{}" stroke-width="2.5"{dash}/><text x="{:.1}" y="54">{}</text>"#,
            x + 24.0,
            s.color,
            x + 30.0,
            s.name
        );
        x += 40.0 + 7.0 * s.name.len() as f64;
    }
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="74" fill="#4a5568">at each hidden size, the shape with the most rows; dashed: the naive baseline and the copy of the same shape</text>"##
    );
    for (i, (direction, lines)) in panels.iter().enumerate() {
        panel(&mut svg, LEFT + i as f64 * (PANEL_W + GAP), direction, lines, &sizes, step, ticks);
    }
    svg.push_str("</svg>\n");
    std::fs::write(path, svg).map_err(|e| err(&e))
}
