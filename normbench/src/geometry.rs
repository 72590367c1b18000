//! `normbench geometry --input FILE.npy`: how much of each row's energy lies along the
//! all-ones vector, from a LayerNorm forward's statistics on the GPU, and what that means for
//! swapping LayerNorm for RMSNorm on these rows.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use wgpu_norm::half::f16;
use wgpu_norm::{LayerNormConfig, NormContext, Shape, geometry, host};

use crate::BenchError;

/// Rows of f32 or f16 from a `.npy` file (version 1 or 2 header, C order, two dimensions).
fn read_npy(path: &Path) -> Result<(Shape, Vec<f32>), BenchError> {
    let bad = |why: &str| BenchError::Input(format!("{}: {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(&e.to_string()))?;
    if bytes.len() < 12 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file"));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
    };
    let header = bytes
        .get(start..start + len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("a cut header"))?;
    if !header.contains("'fortran_order': False") {
        return Err(bad("Fortran order; save it in C order"));
    }
    let dims: Vec<usize> = header
        .split_once("'shape': (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(dims, _)| dims.split(',').filter_map(|d| d.trim().parse().ok()).collect())
        .unwrap_or_default();
    let [rows, cols] = dims[..] else {
        return Err(bad(&format!("shape {dims:?}: rows x cols wanted")));
    };
    let data = &bytes[start + len..];
    let values: Vec<f32> = if header.contains("'<f4'") {
        data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    } else if header.contains("'<f2'") {
        data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
    } else {
        return Err(bad("dtype: f32 ('<f4') or f16 ('<f2') wanted"));
    };
    if values.len() != rows * cols {
        return Err(bad(&format!("{} values for a {rows} x {cols} shape", values.len())));
    }
    Ok((Shape::new(rows, cols), values))
}

/// One site's rows: their shares of energy along the all-ones vector.
struct Site {
    name: String,
    shares: Vec<f64>,
}

impl Site {
    /// The share at quantile `q` (0 to 1).
    fn quantile(&self, q: f64) -> f64 {
        let mut sorted = self.shares.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }
}

pub fn run(inputs: &[PathBuf], eps: f32, plot: Option<&Path>) -> Result<(), BenchError> {
    let ctx = NormContext::new()?;
    let cfg = LayerNormConfig { eps, ..Default::default() };
    let change = geometry::rms_for_layer_change;
    let mut sites = Vec::new();
    for input in inputs {
        let (shape, x) = read_npy(input)?;
        let out = host::layer_norm_forward(&ctx, &x, None, None, shape, &cfg)?;
        let site = Site {
            name: input.display().to_string(),
            shares: geometry::ones_energy_share(&out.mean, &out.rstd, eps)?,
        };
        let mean = site.shares.iter().sum::<f64>() / site.shares.len() as f64;
        println!(
            "{}: {} rows x {}, LayerNorm (eps {eps:e}) on {}",
            site.name,
            shape.rows,
            shape.cols,
            ctx.adapter_info().name
        );
        let (median, p99, max) = (site.quantile(0.5), site.quantile(0.99), site.quantile(1.0));
        println!(
            "  energy along the all-ones vector, cos^2(x, 1): mean {mean:.2e}, median {median:.2e}, p99 {p99:.2e}, \
             max {max:.2e}; RMSNorm would move the normalized outputs by median {:.2}%, p99 {:.2}%, max {:.2}%",
            100.0 * change(median),
            100.0 * change(p99),
            100.0 * change(max)
        );
        let mut worst: Vec<usize> = (0..site.shares.len()).collect();
        worst.sort_by(|&a, &b| site.shares[b].total_cmp(&site.shares[a]));
        let worst: Vec<String> = worst
            .iter()
            .take(3)
            .map(|&r| {
                format!(
                    "row {r}: {:.3}% of the energy, {:.2}% of the output",
                    100.0 * site.shares[r],
                    100.0 * change(site.shares[r])
                )
            })
            .collect();
        println!("  worst rows: {}", worst.join("; "));
        sites.push(site);
    }
    let all: Vec<f64> = sites.iter().flat_map(|s| s.shares.iter().copied()).collect();
    let pooled = Site { name: String::new(), shares: all };
    let (median, max) = (pooled.quantile(0.5), pooled.quantile(1.0));
    println!(
        "verdict: the centring removes at most {:.2}% of a row's energy (median {:.3}%): swapping LayerNorm \
         for RMSNorm changes these rows' normalized outputs (before gamma and beta) by at most {:.1}% of \
         their norm (median {:.1}%). The change grows like the square root of the share, so a small share \
         is not a small change.",
        100.0 * max,
        100.0 * median,
        100.0 * change(max),
        100.0 * change(median)
    );
    if let Some(path) = plot {
        std::fs::write(path, histogram(&sites))
            .map_err(|e| BenchError::Input(format!("{}: {e}", path.display())))?;
        println!("histogram: {}", path.display());
    }
    Ok(())
}

/// Bins per decade of the share, and the decades drawn: 1e-8 to 1.
const BINS_PER_DECADE: usize = 2;
const DECADES: i32 = 8;

/// The histogram of every site's shares on a log axis, with the output change each decade
/// implies written under it: a person sees at once where the rows are and what swapping the
/// norm would do to them.
fn histogram(sites: &[Site]) -> String {
    let (w, h, left, top, bottom) = (760.0, 420.0, 70.0, 70.0, 90.0);
    let bins = BINS_PER_DECADE * DECADES as usize;
    let mut counts = vec![0usize; bins];
    for &s in sites.iter().flat_map(|s| &s.shares) {
        let pos = (s.max(1e-300).log10() + f64::from(DECADES)) * BINS_PER_DECADE as f64;
        counts[(pos.max(0.0) as usize).min(bins - 1)] += 1;
    }
    let rows: usize = counts.iter().sum();
    let top_count = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let (pw, ph) = (w - left - 30.0, h - top - bottom);
    let bar_w = pw / bins as f64;
    let mut svg = String::new();
    // Infallible: writing to a String.
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(svg, "<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>");
    let _ = writeln!(
        svg,
        "<text x=\"{left}\" y=\"24\" font-size=\"15\">Energy along the all-ones vector: {rows} rows of {} site(s)</text>",
        sites.len()
    );
    let _ = writeln!(
        svg,
        "<text x=\"{left}\" y=\"44\" fill=\"#555\">cos\u{b2}(x, 1) of each row, from LayerNorm's statistics on the GPU; rows below 1e-8 in the first bar</text>"
    );
    for (i, &c) in counts.iter().enumerate() {
        let bh = ph * c as f64 / top_count;
        let x = left + i as f64 * bar_w;
        let _ = writeln!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#3b6fb6\"/>",
            x + 1.0,
            top + ph - bh,
            bar_w - 2.0
        );
        if c > 0 {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#333\">{c}</text>",
                x + bar_w / 2.0,
                top + ph - bh - 4.0
            );
        }
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
        top + ph,
        left + pw,
        top + ph
    );
    for d in 0..=DECADES {
        let x = left + f64::from(d) * BINS_PER_DECADE as f64 * bar_w;
        let share = 10f64.powi(d - DECADES);
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"black\"/>",
            top + ph,
            top + ph + 5.0
        );
        let _ = writeln!(
            svg,
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">1e{}</text>",
            top + ph + 20.0,
            d - DECADES
        );
        let _ = writeln!(
            svg,
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#b34\">{}</text>",
            top + ph + 38.0,
            percent(geometry::rms_for_layer_change(share))
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{left}\" y=\"{}\">share of the row's energy (log scale)</text>",
        top + ph + 60.0
    );
    let _ = writeln!(
        svg,
        "<text x=\"{left}\" y=\"{}\" fill=\"#b34\">red: how far RMSNorm would move a row's normalized output, at that share</text>",
        top + ph + 78.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// A percentage with the digits that matter: 0.01%, 0.3%, 3%, 100%.
fn percent(v: f64) -> String {
    let p = 100.0 * v;
    if p >= 10.0 {
        format!("{p:.0}%")
    } else if p >= 1.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}
