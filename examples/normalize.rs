//! Normalizes a random tensor with both norms, forward and backward, on the best adapter,
//! and prints the relative error of every result against the f64 CPU reference.
//!
//! `cargo run --release --example normalize -- [ROWS] [COLS]`

use wgpu_norm::host;
use wgpu_norm::{LayerNormConfig, NormContext, RmsNormConfig, Shape, reference};

/// ||gpu - ref|| / ||ref||.
fn rel_err(gpu: &[f32], want: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (g, w) in gpu.iter().zip(want) {
        num += (f64::from(*g) - w).powi(2);
        den += w * w;
    }
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// A small deterministic generator, so the example needs no extra crates.
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let rows = args.next().transpose()?.unwrap_or(64);
    let cols = args.next().transpose()?.unwrap_or(4096);
    let shape = Shape::new(rows, cols);
    let ctx = NormContext::new()?;
    let info = ctx.adapter_info();
    println!(
        "adapter: {} ({:?}, {:?}, driver {}), subgroups: {}",
        info.name,
        info.backend,
        info.device_type,
        info.driver,
        ctx.uses_subgroups()
    );
    let x = noise(shape.elements(), 1);
    let dy = noise(shape.elements(), 2);
    let gamma: Vec<f32> = noise(cols, 3).iter().map(|v| 1.0 + 0.1 * v).collect();
    let beta = noise(cols, 4);

    let rms = RmsNormConfig::default();
    let out = host::rms_norm_forward(&ctx, &x, Some(&gamma), shape, &rms)?;
    let want = reference::rms_norm_forward(&x, Some(&gamma), shape, &rms)?;
    println!("rms_norm_forward    {rows}x{cols}: rel err y {:.2e}", rel_err(&out.y, &want.y));
    let grads = host::rms_norm_backward(&ctx, &x, Some(&gamma), &dy, Some(&out.rstd), shape, &rms)?;
    let want = reference::rms_norm_backward(&x, Some(&gamma), &dy, shape, &rms)?;
    println!(
        "rms_norm_backward   {rows}x{cols}: rel err dx {:.2e}, dgamma {:.2e}",
        rel_err(&grads.dx, &want.dx),
        rel_err(&grads.dgamma, &want.dgamma)
    );

    let ln = LayerNormConfig::default();
    let out = host::layer_norm_forward(&ctx, &x, Some(&gamma), Some(&beta), shape, &ln)?;
    let want = reference::layer_norm_forward(&x, Some(&gamma), Some(&beta), shape, &ln)?;
    println!("layer_norm_forward  {rows}x{cols}: rel err y {:.2e}", rel_err(&out.y, &want.y));
    let grads =
        host::layer_norm_backward(&ctx, &x, Some(&gamma), &dy, Some(&out.mean), Some(&out.rstd), shape, &ln)?;
    let want = reference::layer_norm_backward(&x, Some(&gamma), &dy, shape, &ln)?;
    println!(
        "layer_norm_backward {rows}x{cols}: rel err dx {:.2e}, dgamma {:.2e}, dbeta {:.2e}",
        rel_err(&grads.dx, &want.dx),
        rel_err(&grads.dgamma, &want.dgamma),
        rel_err(&grads.dbeta, &want.dbeta)
    );
    Ok(())
}
