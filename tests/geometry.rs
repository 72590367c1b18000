//! The share of each row's energy along the all-ones direction, from a LayerNorm forward's
//! saved statistics on the GPU, against the same share computed in f64 from the rows
//! themselves: on rows with a known component along it, and on a real BERT's hidden states.

mod common;

use common::{ctx, randn, rng};
use wgpu_norm::{LayerNormConfig, NormError, RmsNormConfig, Shape, geometry, host, reference};

/// cos²(x, 1) = (Σx)² / (n Σx²) of each row, in f64.
fn direct_share(x: &[f32], shape: Shape) -> Vec<f64> {
    x.chunks(shape.cols)
        .map(|row| {
            let s: f64 = row.iter().map(|&v| f64::from(v)).sum();
            let ss: f64 = row.iter().map(|&v| f64::from(v).powi(2)).sum();
            if ss > 0.0 { s * s / (row.len() as f64 * ss) } else { 0.0 }
        })
        .collect()
}

fn gpu_share(x: &[f32], shape: Shape, eps: f32) -> Vec<f64> {
    let cfg = LayerNormConfig { eps, ..Default::default() };
    let out = host::layer_norm_forward(ctx(), x, None, None, shape, &cfg).unwrap();
    geometry::ones_energy_share(&out.mean, &out.rstd, eps).unwrap()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Rows of c times the all-ones vector plus noise orthogonal to it: shares from 0 to 0.97.
#[test]
fn a_known_component_along_the_ones() {
    let shape = Shape::new(64, 1000);
    let mut r = rng(1300);
    let mut x = Vec::with_capacity(shape.elements());
    for row in 0..shape.rows {
        let z = randn(&mut r, shape.cols);
        let mean = z.iter().sum::<f32>() / shape.cols as f32;
        x.extend(z.iter().map(|v| v - mean + row as f32 / 8.0));
    }
    let (gpu, want) = (gpu_share(&x, shape, 1e-5), direct_share(&x, shape));
    assert!(want[0] < 1e-6 && want[63] > 0.95, "seed 1300: shares {} to {}", want[0], want[63]);
    let d = max_diff(&gpu, &want);
    assert!(d < 1e-5, "seed 1300: the shares from the saved statistics are off by {d:e}");
    assert_eq!(gpu_share(&[0.0; 8], Shape::new(2, 4), 1e-5), vec![0.0, 0.0], "rows of zeros");
}

#[test]
fn statistics_of_other_lengths_are_refused() {
    let e = geometry::ones_energy_share(&[1.0, 2.0], &[1.0], 1e-5).unwrap_err();
    assert_eq!(e, NormError::LengthMismatch { what: "rstd", expected: 2, actual: 1 });
}

/// A `.npy` file of f32 rows: its shape and values.
fn read_npy(path: &str) -> (Shape, Vec<f32>) {
    let (dims, values) = common::read_npy(path);
    (Shape::new(dims[0], dims[1]), values)
}

/// all-MiniLM-L6-v2's last LayerNorm input (tests/data): the all-ones direction holds at most
/// 0.65% of any row's energy (the data's README), and the saved statistics say the same.
#[test]
fn a_real_berts_hidden_states_barely_point_along_the_ones() {
    let (shape, x) =
        read_npy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/minilm_layer5_output.x.f32.npy"));
    assert_eq!((shape.rows, shape.cols, x.len()), (393, 384, 393 * 384));
    let (gpu, want) = (gpu_share(&x, shape, 1e-12), direct_share(&x, shape));
    let d = max_diff(&gpu, &want);
    assert!(d < 1e-6, "the shares from the saved statistics are off by {d:e}");
    let mut sorted = gpu.clone();
    sorted.sort_by(f64::total_cmp);
    let pick = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    println!(
        "energy along the ones, 393 rows: mean {:.2e}, median {:.2e}, p99 {:.2e}, max {:.2e}",
        gpu.iter().sum::<f64>() / gpu.len() as f64,
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
    assert!(pick(1.0) < 0.0065, "largest share {}", pick(1.0));
}

/// The change from LayerNorm to RMSNorm that the share predicts is the change the f64
/// reference shows, row by row.
#[test]
fn the_share_predicts_what_rmsnorm_changes() {
    let shape = Shape::new(16, 300);
    let mut r = rng(1301);
    let x: Vec<f32> = (0..shape.rows)
        .flat_map(|row| randn(&mut r, shape.cols).into_iter().map(move |v| v + row as f32 / 4.0))
        .collect();
    let layer = reference::layer_norm_forward(
        &x,
        None,
        None,
        shape,
        &LayerNormConfig { eps: 0.0, ..Default::default() },
    )
    .unwrap();
    let rms = reference::rms_norm_forward(&x, None, shape, &RmsNormConfig { eps: 0.0, ..Default::default() })
        .unwrap();
    for (row, share) in direct_share(&x, shape).into_iter().enumerate() {
        let span = row * shape.cols..(row + 1) * shape.cols;
        let diff: f64 =
            layer.y[span.clone()].iter().zip(&rms.y[span.clone()]).map(|(a, b)| (a - b).powi(2)).sum();
        let norm: f64 = layer.y[span].iter().map(|a| a * a).sum();
        let (got, want) = ((diff / norm).sqrt(), geometry::rms_for_layer_change(share));
        assert!((got - want).abs() < 1e-6 * want.max(1.0), "seed 1301, row {row}: {got} against {want}");
    }
}
