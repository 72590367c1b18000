//! The geometry of LayerNorm's centring. LayerNorm removes each row's component along the
//! all-ones vector before it rescales; RMSNorm keeps it. The share of a row's energy along
//! that direction, `cos²(x, 1) = (Σx)² / (n Σx²) = mean² / (mean² + var)`, says how much the
//! centring changes: where it is small for a model's hidden states (the geometric paper behind
//! this crate finds it is), RMSNorm would do. It follows from the statistics a LayerNorm
//! forward already saves, so measuring it costs no GPU traffic.

use crate::error::{NormError, Result};

/// The share of each row's energy along the all-ones direction, `mean² / (mean² + var)`, from
/// a LayerNorm forward's saved `mean` and `rstd` and its `eps` (`var = 1 / rstd² - eps`).
/// 0 for a row of zeros. Where a row's variance is far below eps, rstd no longer carries it
/// and the share reads as 1.
///
/// ```
/// # #[cfg(not(target_arch = "wasm32"))] {
/// use wgpu_norm::{LayerNormConfig, NormContext, Shape, geometry, host};
/// let ctx = NormContext::new()?;
/// // One row: 3 along the all-ones direction, plus ±1 (orthogonal to it).
/// let x = [4.0_f32, 2.0, 4.0, 2.0];
/// let cfg = LayerNormConfig::default();
/// let out = host::layer_norm_forward(&ctx, &x, None, None, Shape::new(1, 4), &cfg)?;
/// let share = geometry::ones_energy_share(&out.mean, &out.rstd, cfg.eps)?;
/// assert!((share[0] - 9.0 / 10.0).abs() < 1e-4);
/// # }
/// # Ok::<(), wgpu_norm::NormError>(())
/// ```
pub fn ones_energy_share(mean: &[f32], rstd: &[f32], eps: f32) -> Result<Vec<f64>> {
    if rstd.len() != mean.len() {
        return Err(NormError::LengthMismatch { what: "rstd", expected: mean.len(), actual: rstd.len() });
    }
    Ok(mean
        .iter()
        .zip(rstd)
        .map(|(&m, &r)| {
            let (m, r) = (f64::from(m), f64::from(r));
            let var = (1.0 / (r * r) - f64::from(eps)).max(0.0);
            let energy = m * m + var;
            if energy > 0.0 { m * m / energy } else { 0.0 }
        })
        .collect())
}

/// How far RMSNorm's output moves from LayerNorm's for a row with `share` of its energy along
/// the all-ones vector, relative to the norm of LayerNorm's output, before gamma and beta and
/// with eps negligible: `sqrt((1 - sqrt(1 - share))² + share)`, about `sqrt(share)` when small.
///
/// With `x = m·1 + z` (z orthogonal to the ones, `|z|² = n var`), LayerNorm gives `z / σ` and
/// RMSNorm `x / r` with `r² = m² + var`; the squared difference over n is
/// `(1 - σ / r)² + m² / r²`, and `m² / r²` is the share.
pub fn rms_for_layer_change(share: f64) -> f64 {
    let s = share.clamp(0.0, 1.0);
    ((1.0 - (1.0 - s).sqrt()).powi(2) + s).sqrt()
}
