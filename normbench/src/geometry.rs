//! `normbench geometry --input FILE.npy`: how much of each row's energy lies along the
//! all-ones vector, from a LayerNorm forward's statistics on the GPU, and what that means for
//! swapping LayerNorm for RMSNorm on these rows.

use std::path::Path;

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

pub fn run(input: &Path, eps: f32) -> Result<(), BenchError> {
    let (shape, x) = read_npy(input)?;
    let ctx = NormContext::new()?;
    let cfg = LayerNormConfig { eps, ..Default::default() };
    let out = host::layer_norm_forward(&ctx, &x, None, None, shape, &cfg)?;
    let shares = geometry::ones_energy_share(&out.mean, &out.rstd, eps)?;
    let mut sorted = shares.clone();
    sorted.sort_by(f64::total_cmp);
    let pick = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let mean = shares.iter().sum::<f64>() / shares.len() as f64;
    println!(
        "{}: {} rows x {}, LayerNorm (eps {eps:e}) on {}",
        input.display(),
        shape.rows,
        shape.cols,
        ctx.adapter_info().name
    );
    println!(
        "energy along the all-ones vector, cos^2(x, 1): mean {mean:.2e}, median {:.2e}, p99 {:.2e}, max {:.2e}",
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
    let change = geometry::rms_for_layer_change;
    println!(
        "verdict: the centring removes at most {:.2}% of a row's energy (median {:.3}%): swapping LayerNorm \
         for RMSNorm changes these rows' normalized outputs (before gamma and beta) by at most {:.1}% of \
         their norm (median {:.1}%)",
        100.0 * pick(1.0),
        100.0 * pick(0.5),
        100.0 * change(pick(1.0)),
        100.0 * change(pick(0.5))
    );
    Ok(())
}
