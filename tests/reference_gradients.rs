//! The CPU reference's backward against central finite differences of its own forward, in
//! f64 (no GPU needed). Loss L = sum(w * y) for a random w, so dL/dy = w.

mod common;

use wgpu_norm::{EpsPlacement, LayerNormConfig, RmsNormConfig, Shape, reference};

const H: f64 = 1e-6;

fn randn64(seed: u64, n: usize) -> Vec<f64> {
    common::randn(&mut common::rng(seed), n).into_iter().map(f64::from).collect()
}

fn loss(y: &[f64], w: &[f64]) -> f64 {
    y.iter().zip(w).map(|(a, b)| a * b).sum()
}

/// Central difference of `f` with respect to every element of `at`.
fn numeric_grad(at: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut p = at.to_vec();
    (0..at.len())
        .map(|i| {
            let v = p[i];
            p[i] = v + H;
            let up = f(&p);
            p[i] = v - H;
            let down = f(&p);
            p[i] = v;
            (up - down) / (2.0 * H)
        })
        .collect()
}

#[track_caller]
fn assert_close(what: &str, analytic: &[f64], numeric: &[f64], context: &str) {
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        let tol = 1e-6 * (1.0 + a.abs().max(n.abs()));
        assert!((a - n).abs() <= tol, "{what}[{i}]: analytic {a:e}, numeric {n:e} ({context})");
    }
}

#[test]
fn rms_norm_backward_matches_finite_differences() {
    for (i, &(rows, cols)) in [(1, 1), (2, 3), (3, 7), (2, 33)].iter().enumerate() {
        for placement in [EpsPlacement::InsideSqrt, EpsPlacement::OutsideSqrt] {
            let seed = 100 + i as u64;
            let shape = Shape::new(rows, cols);
            let cfg = RmsNormConfig { eps: 1e-3, eps_placement: placement, ..Default::default() };
            let (x, g, w) =
                (randn64(seed, rows * cols), randn64(seed + 1, cols), randn64(seed + 2, rows * cols));
            let context = format!("seed {seed}, {rows}x{cols}, {placement:?}");
            let grads = reference::rms_norm_backward(&x, Some(&g), &w, shape, &cfg).unwrap();
            let fwd = |x: &[f64], g: &[f64]| reference::rms_norm_forward(x, Some(g), shape, &cfg).unwrap().y;
            let dx = numeric_grad(&x, |x| loss(&fwd(x, &g), &w));
            assert_close("dx", &grads.dx, &dx, &context);
            let dg = numeric_grad(&g, |g| loss(&fwd(&x, g), &w));
            assert_close("dgamma", &grads.dgamma, &dg, &context);
        }
    }
}

#[test]
fn layer_norm_backward_matches_finite_differences() {
    for (i, &(rows, cols)) in [(1, 2), (2, 3), (3, 7), (2, 33)].iter().enumerate() {
        let seed = 200 + i as u64;
        let shape = Shape::new(rows, cols);
        let cfg = LayerNormConfig { eps: 1e-3, ..Default::default() };
        let x = randn64(seed, rows * cols);
        let (g, b, w) = (randn64(seed + 1, cols), randn64(seed + 2, cols), randn64(seed + 3, rows * cols));
        let context = format!("seed {seed}, {rows}x{cols}");
        let grads = reference::layer_norm_backward(&x, Some(&g), &w, shape, &cfg).unwrap();
        let fwd = |x: &[f64], g: &[f64], b: &[f64]| {
            reference::layer_norm_forward(x, Some(g), Some(b), shape, &cfg).unwrap().y
        };
        let dx = numeric_grad(&x, |x| loss(&fwd(x, &g, &b), &w));
        assert_close("dx", &grads.dx, &dx, &context);
        let dg = numeric_grad(&g, |g| loss(&fwd(&x, g, &b), &w));
        assert_close("dgamma", &grads.dgamma, &dg, &context);
        let db = numeric_grad(&b, |b| loss(&fwd(&x, &g, b), &w));
        assert_close("dbeta", &grads.dbeta, &db, &context);
    }
}

/// The reference itself on inputs whose answer is known in closed form.
#[test]
fn reference_known_values() {
    let shape = Shape::new(1, 4);
    let x = [1.0_f64, -1.0, 1.0, -1.0];
    let cfg = RmsNormConfig { eps: 0.0, eps_placement: EpsPlacement::InsideSqrt, ..Default::default() };
    let out = reference::rms_norm_forward(&x, None, shape, &cfg).unwrap();
    assert_eq!(out.y, x.to_vec());
    assert_eq!(out.rstd, vec![1.0]);
    let x = [1.0_f64, 2.0, 3.0, 4.0];
    let out = reference::layer_norm_forward(
        &x,
        None,
        None,
        shape,
        &LayerNormConfig { eps: 0.0, ..Default::default() },
    )
    .unwrap();
    assert_eq!(out.mean, vec![2.5]);
    approx::assert_relative_eq!(out.rstd[0], 1.0 / 1.25_f64.sqrt(), max_relative = 1e-15);
    // LayerNorm's output is orthogonal to the all-ones vector and has norm sqrt(d).
    approx::assert_abs_diff_eq!(out.y.iter().sum::<f64>(), 0.0, epsilon = 1e-12);
    approx::assert_relative_eq!(out.y.iter().map(|v| v * v).sum::<f64>().sqrt(), 2.0, max_relative = 1e-12);
}

/// Partial RMSNorm and the gamma offset: the reference's backward still matches finite
/// differences (the RMS estimate's gradient reaches only the first k elements).
#[test]
fn partial_rms_norm_and_gamma_offset_match_finite_differences() {
    for (i, &(rows, cols, p)) in [(2, 8, 0.25_f32), (3, 7, 0.5), (1, 5, 1.0), (2, 33, 0.1)].iter().enumerate()
    {
        for placement in [EpsPlacement::InsideSqrt, EpsPlacement::OutsideSqrt] {
            let seed = 300 + i as u64;
            let shape = Shape::new(rows, cols);
            let cfg = RmsNormConfig {
                eps: 1e-3,
                eps_placement: placement,
                gamma_offset: 1.0,
                partial: Some(p),
                ..Default::default()
            };
            let (x, g, w) =
                (randn64(seed, rows * cols), randn64(seed + 1, cols), randn64(seed + 2, rows * cols));
            let context = format!("seed {seed}, {rows}x{cols}, p {p}, {placement:?}");
            let grads = reference::rms_norm_backward(&x, Some(&g), &w, shape, &cfg).unwrap();
            let fwd = |x: &[f64], g: &[f64]| reference::rms_norm_forward(x, Some(g), shape, &cfg).unwrap().y;
            assert_close("dx", &grads.dx, &numeric_grad(&x, |x| loss(&fwd(x, &g), &w)), &context);
            assert_close("dgamma", &grads.dgamma, &numeric_grad(&g, |g| loss(&fwd(&x, g), &w)), &context);
        }
    }
    let cfg = LayerNormConfig { eps: 1e-3, gamma_offset: 1.0, ..Default::default() };
    let shape = Shape::new(2, 9);
    let (x, g, b, w) = (randn64(1, 18), randn64(2, 9), randn64(3, 9), randn64(4, 18));
    let grads = reference::layer_norm_backward(&x, Some(&g), &w, shape, &cfg).unwrap();
    let fwd =
        |x: &[f64], g: &[f64]| reference::layer_norm_forward(x, Some(g), Some(&b), shape, &cfg).unwrap().y;
    assert_close("dx", &grads.dx, &numeric_grad(&x, |x| loss(&fwd(x, &g), &w)), "layer_norm offset");
    assert_close("dgamma", &grads.dgamma, &numeric_grad(&g, |g| loss(&fwd(&x, g), &w)), "layer_norm offset");
}
