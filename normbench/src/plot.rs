//! `--plot`: GB/s against hidden size, one line per op and direction, the two rooflines as
//! horizontal lines.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::BenchError;
use crate::report::Row;

/// Per op and direction, the points (hidden size, GB/s); where several shapes share a hidden
/// size, the one with the most rows (the largest working set) stands for it.
fn series(rows: &[Row]) -> BTreeMap<(String, String), Vec<(f64, f64)>> {
    let mut best: BTreeMap<(String, String, usize), &Row> = BTreeMap::new();
    for r in rows {
        let key = (r.op.to_string(), r.direction.to_string(), r.cols);
        if best.get(&key).is_none_or(|b| b.rows < r.rows) {
            best.insert(key, r);
        }
    }
    let mut out: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for ((op, dir, cols), r) in best {
        out.entry((op, dir)).or_default().push((cols as f64, r.gpu_gbps));
    }
    out
}

pub fn draw(
    path: &Path,
    rows: &[Row],
    adapter: &str,
    copy_gbps: f64,
    stream_gbps: f64,
) -> Result<(), BenchError> {
    let err = |e: &dyn std::fmt::Display| BenchError::Plot(format!("{}: {e}", path.display()));
    let lines = series(rows);
    let (mut lo, mut hi) = (f64::INFINITY, 0.0_f64);
    for (x, _) in lines.values().flatten() {
        lo = lo.min(*x);
        hi = hi.max(*x);
    }
    if !lo.is_finite() {
        return Err(err(&"no results to plot"));
    }
    let (lo, hi) = (lo / 1.5, hi * 1.5);
    // Log scale: on a software adapter the memcpy roofline sits far above every shader.
    let values = || lines.values().flatten().map(|p| p.1).chain([copy_gbps, stream_gbps]);
    let top = values().fold(0.0, f64::max) * 2.0;
    let bottom = values().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min) / 2.0;
    if !(bottom.is_finite() && top > bottom) {
        return Err(err(&"no positive GB/s to plot"));
    }

    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("wgpu-norm on {adapter}: GB/s by hidden size"), ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((lo..hi).log_scale(), (bottom..top).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("hidden size (columns; the largest row count measured at each)")
        .y_desc("GB/s (byte model, log scale)")
        .y_label_formatter(&|v| format!("{v:.2}"))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(|e| err(&e))?;
    let palette = [&BLUE, &RED, &GREEN, &MAGENTA];
    for (i, ((op, dir), pts)) in lines.iter().enumerate() {
        let color = palette[i % palette.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(format!("{op} {dir}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(|e| err(&e))?;
    }
    for (name, gbps, color) in [
        ("copy_buffer_to_buffer", copy_gbps, &BLACK),
        ("stream-copy shader", stream_gbps, &RGBColor(0, 140, 140)),
    ] {
        chart
            .draw_series(LineSeries::new([(lo, gbps), (hi, gbps)], color.stroke_width(1)))
            .map_err(|e| err(&e))?
            .label(format!("{name} roofline {gbps:.1} GB/s"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
