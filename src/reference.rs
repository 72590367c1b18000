//! The CPU reference: forward and backward of both norms, accumulated in f64, two-pass,
//! with the same eps conventions as the kernels. Every GPU result in the tests is checked
//! against it, and its backward is checked against central finite differences.
//!
//! Inputs may be f32 or f64 (f32 converts exactly); outputs are f64.

use crate::error::Result;
use crate::ops::layer_norm::LayerNormConfig;
use crate::ops::op::OpConfig as _;
use crate::ops::rms_norm::RmsNormConfig;
use crate::shape::{EpsPlacement, Shape, check_eps, check_len};

// The reference works on contiguous rows: a strided view is gathered by the caller.

/// RMSNorm forward results.
#[derive(Clone, Debug, PartialEq)]
pub struct RmsOutput {
    /// rows x cols.
    pub y: Vec<f64>,
    /// Per row: 1 / sqrt(mean(x^2) + eps), or 1 / (rms + eps).
    pub rstd: Vec<f64>,
}

/// RMSNorm gradients.
#[derive(Clone, Debug, PartialEq)]
pub struct RmsGrads {
    /// rows x cols.
    pub dx: Vec<f64>,
    /// cols.
    pub dgamma: Vec<f64>,
}

/// LayerNorm forward results.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerOutput {
    /// rows x cols.
    pub y: Vec<f64>,
    /// Per row.
    pub mean: Vec<f64>,
    /// Per row: 1 / sqrt(var + eps), biased variance.
    pub rstd: Vec<f64>,
}

/// LayerNorm gradients.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerGrads {
    /// rows x cols.
    pub dx: Vec<f64>,
    /// cols.
    pub dgamma: Vec<f64>,
    /// cols.
    pub dbeta: Vec<f64>,
}

fn to_f64<T: Copy + Into<f64>>(v: &[T]) -> Vec<f64> {
    v.iter().map(|&e| e.into()).collect()
}

/// gamma + offset (the offset applies only to a given gamma), or `fill` everywhere.
fn scale_or<T: Copy + Into<f64>>(
    what: &'static str,
    v: Option<&[T]>,
    cols: usize,
    offset: f64,
    fill: f64,
) -> Result<Vec<f64>> {
    match v {
        Some(v) => {
            check_len(what, cols, v.len())?;
            Ok(v.iter().map(|&e| offset + e.into()).collect())
        }
        None => Ok(vec![fill; cols]),
    }
}

fn check_rows<T>(shape: Shape, x: &[T]) -> Result<()> {
    shape.checked()?;
    check_len("x", shape.elements(), x.len())
}

fn rms_scale(ms: f64, eps: f64, placement: EpsPlacement) -> f64 {
    match placement {
        EpsPlacement::InsideSqrt => 1.0 / (ms + eps).sqrt(),
        EpsPlacement::OutsideSqrt => 1.0 / (ms.sqrt() + eps),
    }
}

fn mean_square(row: &[f64]) -> f64 {
    row.iter().map(|v| v * v).sum::<f64>() / row.len() as f64
}

/// RMSNorm forward: `y = x * rstd * (gamma_offset + gamma)`, the RMS taken over the first
/// `config.norm_cols(cols)` elements of each row (partial RMSNorm).
pub fn rms_norm_forward<T: Copy + Into<f64>>(
    x: &[T],
    gamma: Option<&[T]>,
    shape: Shape,
    config: &RmsNormConfig,
) -> Result<RmsOutput> {
    check_rows(shape, x)?;
    config.check()?;
    let g = scale_or("gamma", gamma, shape.cols, f64::from(config.gamma_offset), 1.0)?;
    let x = to_f64(x);
    let eps = f64::from(config.eps);
    let k = config.norm_cols(shape.cols);
    let mut y = Vec::with_capacity(x.len());
    let mut rstd = Vec::with_capacity(shape.rows);
    for row in x.chunks(shape.cols) {
        let r = rms_scale(mean_square(&row[..k]), eps, config.eps_placement);
        y.extend(row.iter().zip(&g).map(|(v, g)| v * r * g));
        rstd.push(r);
    }
    Ok(RmsOutput { y, rstd })
}

/// RMSNorm backward: the exact gradient, with statistics recomputed in f64. With partial
/// RMSNorm the gradient of the RMS estimate reaches only the elements it was taken from.
pub fn rms_norm_backward<T: Copy + Into<f64>>(
    x: &[T],
    gamma: Option<&[T]>,
    dy: &[T],
    shape: Shape,
    config: &RmsNormConfig,
) -> Result<RmsGrads> {
    check_rows(shape, x)?;
    check_len("dy", shape.elements(), dy.len())?;
    config.check()?;
    let g = scale_or("gamma", gamma, shape.cols, f64::from(config.gamma_offset), 1.0)?;
    let (x, dy) = (to_f64(x), to_f64(dy));
    let eps = f64::from(config.eps);
    let k = config.norm_cols(shape.cols);
    let n = k as f64;
    let mut dx = Vec::with_capacity(x.len());
    let mut dgamma = vec![0.0; shape.cols];
    for (row, drow) in x.chunks(shape.cols).zip(dy.chunks(shape.cols)) {
        let ms = mean_square(&row[..k]);
        let r = rms_scale(ms, eps, config.eps_placement);
        let c = match config.eps_placement {
            EpsPlacement::InsideSqrt => r * r * r / n,
            EpsPlacement::OutsideSqrt => {
                let rms = ms.sqrt();
                if rms > 0.0 { r * r / (n * rms) } else { 0.0 }
            }
        };
        let sum_ux: f64 = row.iter().zip(drow).zip(&g).map(|((v, d), g)| d * g * v).sum();
        // The element of largest square among the first k: where it dominates the row, its
        // two terms below cancel (at k = 1, 1 - r^2 x^2 = eps r^2), and f64 too would lose
        // as many digits as the domination has. Its dx is formed from the sums over the other
        // elements instead, the same value since 1 / r^2 = ms + eps (inside) and
        // 1 / r = rms + eps (outside): c * (u (S' + k e) - x T'), e = eps or rms * eps.
        let top = (0..k).max_by(|&a, &b| (row[a] * row[a]).total_cmp(&(row[b] * row[b])));
        let top = top.filter(|_| config.eps_placement == EpsPlacement::InsideSqrt || ms > 0.0);
        let alone = top.map(|m| {
            let s_rest: f64 = (0..k).filter(|&i| i != m).map(|i| row[i] * row[i]).sum();
            let t_rest: f64 = (0..shape.cols).filter(|&i| i != m).map(|i| drow[i] * g[i] * row[i]).sum();
            let e = match config.eps_placement {
                EpsPlacement::InsideSqrt => eps,
                EpsPlacement::OutsideSqrt => ms.sqrt() * eps,
            };
            (m, c * (drow[m] * g[m] * (s_rest + n * e) - row[m] * t_rest))
        });
        for (j, (v, d)) in row.iter().zip(drow).enumerate() {
            let through_rms = if j < k { c * v * sum_ux } else { 0.0 };
            dx.push(match alone {
                Some((m, dx_m)) if m == j => dx_m,
                _ => r * d * g[j] - through_rms,
            });
            dgamma[j] += d * v * r;
        }
    }
    Ok(RmsGrads { dx, dgamma })
}

/// Two-pass mean and biased variance of a row.
fn mean_var(row: &[f64]) -> (f64, f64) {
    let n = row.len() as f64;
    let mean = row.iter().sum::<f64>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var)
}

/// LayerNorm forward: `y = (x - mean) * rstd * (gamma_offset + gamma) + beta`, two-pass,
/// biased variance.
pub fn layer_norm_forward<T: Copy + Into<f64>>(
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    shape: Shape,
    config: &LayerNormConfig,
) -> Result<LayerOutput> {
    check_rows(shape, x)?;
    check_eps(config.eps)?;
    let g = scale_or("gamma", gamma, shape.cols, f64::from(config.gamma_offset), 1.0)?;
    let b = scale_or("beta", beta, shape.cols, 0.0, 0.0)?;
    let x = to_f64(x);
    let eps = f64::from(config.eps);
    let mut y = Vec::with_capacity(x.len());
    let (mut means, mut rstds) = (Vec::new(), Vec::new());
    for row in x.chunks(shape.cols) {
        let (mean, var) = mean_var(row);
        let r = 1.0 / (var + eps).sqrt();
        y.extend(row.iter().enumerate().map(|(j, v)| (v - mean) * r * g[j] + b[j]));
        means.push(mean);
        rstds.push(r);
    }
    Ok(LayerOutput { y, mean: means, rstd: rstds })
}

/// LayerNorm backward: the exact gradient, with statistics recomputed in f64.
pub fn layer_norm_backward<T: Copy + Into<f64>>(
    x: &[T],
    gamma: Option<&[T]>,
    dy: &[T],
    shape: Shape,
    config: &LayerNormConfig,
) -> Result<LayerGrads> {
    check_rows(shape, x)?;
    check_len("dy", shape.elements(), dy.len())?;
    check_eps(config.eps)?;
    let g = scale_or("gamma", gamma, shape.cols, f64::from(config.gamma_offset), 1.0)?;
    let (x, dy) = (to_f64(x), to_f64(dy));
    let eps = f64::from(config.eps);
    let n = shape.cols as f64;
    let mut dx = Vec::with_capacity(x.len());
    let mut dgamma = vec![0.0; shape.cols];
    let mut dbeta = vec![0.0; shape.cols];
    for (row, drow) in x.chunks(shape.cols).zip(dy.chunks(shape.cols)) {
        let (mean, var) = mean_var(row);
        let r = 1.0 / (var + eps).sqrt();
        let xh: Vec<f64> = row.iter().map(|v| (v - mean) * r).collect();
        let u: Vec<f64> = drow.iter().zip(&g).map(|(d, g)| d * g).collect();
        let mean_u = u.iter().sum::<f64>() / n;
        let mean_uxh = u.iter().zip(&xh).map(|(u, h)| u * h).sum::<f64>() / n;
        // The element of largest |x - mean|: where its xh^2 nears n - 1 the two terms of
        // its dx cancel (at n = 2, for both elements: 1 - xh^2 = eps r^2), and f64 too
        // would lose as many digits as that has. Its dx is formed from the sums over the
        // other elements centred on their own mean instead, the same value since
        // 1 / r^2 = (S + n eps) / n: r (v (S'' r^2 / n + eps r^2) - xh U'' r / n).
        let from_others = |m: usize| {
            let others = || (0..shape.cols).filter(move |&i| i != m);
            let k = (shape.cols - 1) as f64;
            let mean_o = others().map(|i| row[i]).sum::<f64>() / k;
            let s2: f64 = others().map(|i| (row[i] - mean_o).powi(2)).sum();
            let u2: f64 = others().map(|i| u[i] * (row[i] - mean_o)).sum();
            r * ((u[m] - mean_u) * (s2 * r * r / n + eps * r * r) - xh[m] * u2 * r / n)
        };
        let top = (0..shape.cols).max_by(|&a, &b| xh[a].abs().total_cmp(&xh[b].abs()));
        let alone = top.filter(|_| shape.cols > 1).map(|m| (m, from_others(m)));
        for j in 0..shape.cols {
            dx.push(match alone {
                Some((m, dx_m)) if m == j => dx_m,
                _ if shape.cols == 2 => from_others(j),
                _ => r * (u[j] - mean_u - xh[j] * mean_uxh),
            });
            dgamma[j] += drow[j] * xh[j];
            dbeta[j] += drow[j];
        }
    }
    Ok(LayerGrads { dx, dgamma, dbeta })
}
