//! Both backwards where one element dominates its row, the smallest hidden size their
//! extreme: the two terms of that element's dx cancel (RMSNorm at d = 1:
//! r u (1 - r^2 x^2) = r u eps r^2; LayerNorm at d = 2, for both elements), so the kernels
//! form it from the sums over the other elements. Checked against the f64 reference relative
//! to that dx itself, not to the size of the terms it cancels from.

mod common;

use common::{
    Bar, DX, check, column_sum_bar, contexts, dominant_at, dominated, product_rms, randn, random_affine, rms,
    rng,
};
use wgpu_norm::{
    EpsPlacement, LayerNormBackward, LayerNormBackwardOp, LayerNormConfig, NormContext, RmsNormConfig, Shape,
    host, reference,
};

/// The size of the terms the dominant element m of `row` has its dx formed from, in f64:
/// c * (|u_m| (S' + k e) + |x_m| sum over i != m of |u_i x_i|), with S' the sum of the other
/// squares, c, e as in the kernel (eps inside the root: c = r^3 / k, e = eps). The sum over
/// the others is what f32 cannot do better than: it may cancel within itself.
fn dominant_terms(x: &[f32], g: &[f32], dy: &[f32], shape: Shape, row: usize, cfg: &RmsNormConfig) -> f64 {
    let cols = shape.cols;
    let at = |i: usize| row * cols + i;
    let m = dominant_at(shape, row) - row * cols;
    let u = |i: usize| f64::from(dy[at(i)]) * f64::from(g[i]);
    let v = |i: usize| f64::from(x[at(i)]);
    let s: f64 = (0..cols).map(|i| v(i) * v(i)).sum();
    let (k, eps) = (cols as f64, f64::from(cfg.eps));
    let rms = (s / k).sqrt();
    let (c, e) = match cfg.eps_placement {
        EpsPlacement::InsideSqrt => ((s / k + eps).powf(-1.5) / k, eps),
        EpsPlacement::OutsideSqrt => (1.0 / ((rms + eps).powi(2) * k * rms), rms * eps),
    };
    let others = (0..cols).filter(|&i| i != m);
    let s_rest: f64 = others.clone().map(|i| v(i) * v(i)).sum();
    let t_abs: f64 = others.map(|i| (u(i) * v(i)).abs()).sum();
    c * (u(m).abs() * (s_rest + k * e) + v(m).abs() * t_abs)
}

/// x with one element per row `factor` times the rest (`dominated`), dy, gamma and beta.
fn dominated_case(seed: u64, shape: Shape, factor: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut r = rng(seed);
    let x = dominated(&mut r, shape, factor);
    let dy = randn(&mut r, shape.elements());
    let (g, b) = random_affine(&mut r, shape.cols);
    (x, dy, g, b)
}

/// A dx that cancels, to 1e-5 of the terms it is formed from (or of itself, if larger).
fn check_cancelling(gpu: f32, want: f64, terms: f64, at: &str) {
    let gpu = f64::from(gpu);
    assert!(
        (gpu - want).abs() <= 1e-5 * terms.max(want.abs()),
        "dx of {at} = {gpu:e}, reference {want:e}, terms {terms:e}"
    );
}

#[test]
fn rms_norm_backward_keeps_the_digits_of_a_dominant_element() {
    // 47 rows of 4097: streamed rows; on a two-core CPU adapter each workgroup has six or
    // five row blocks, four rows to a trip, then two or one.
    let shapes = [(37, 1), (5, 3), (64, 7), (33, 127), (47, 4097), (3, 65536)];
    for (label, ctx) in contexts() {
        for (i, &(rows, cols)) in shapes.iter().enumerate() {
            for (f, factor) in [1e3f32, 1e4, 1e5, 1e6].into_iter().enumerate() {
                for placement in [EpsPlacement::InsideSqrt, EpsPlacement::OutsideSqrt] {
                    for saved in [false, true] {
                        let seed = 7000 + 10 * i as u64 + f as u64;
                        let shape = Shape::new(rows, cols);
                        let context = format!(
                            "{label}, {rows}x{cols}, factor {factor:e}, {placement:?}, saved rstd {saved}, seed {seed}"
                        );
                        let (x, dy, g, _) = dominated_case(seed, shape, factor);
                        let cfg = RmsNormConfig { eps: 1e-5, eps_placement: placement, ..Default::default() };
                        let rstd =
                            host::rms_norm_forward(ctx, &x, Some(&g), shape, &cfg).expect(&context).rstd;
                        let saved_rstd = saved.then_some(&rstd[..]);
                        let dx = host::rms_norm_backward(ctx, &x, Some(&g), &dy, saved_rstd, shape, &cfg)
                            .expect(&context)
                            .dx;
                        let want = reference::rms_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap().dx;
                        let scale = rms(&want);
                        check("dx", &dx, &want, Bar { atol: DX.atol * scale, ..DX }, &context);
                        // The dominant elements alone, each to f32 rounding of the terms it is
                        // formed from, which no longer cancel: at d = 1, of itself.
                        for row in 0..rows {
                            let i = dominant_at(shape, row);
                            let terms = dominant_terms(&x, &g, &dy, shape, row, &cfg);
                            check_cancelling(
                                dx[i],
                                want[i],
                                terms,
                                &format!("row {row}'s dominant element, {context}"),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The reference itself at d = 1, where dx has a closed form: u eps r^3 with eps inside the
/// root (r = (x^2 + eps)^-1/2), u eps r^2 outside (r = 1 / (|x| + eps)).
#[test]
fn reference_at_hidden_size_one_is_the_closed_form() {
    let mut r = rng(7500);
    let shape = Shape::new(64, 1);
    let x = dominated(&mut r, shape, 1e4);
    let dy = randn(&mut r, 64);
    let g = randn(&mut r, 1);
    for placement in [EpsPlacement::InsideSqrt, EpsPlacement::OutsideSqrt] {
        let cfg = RmsNormConfig { eps: 1e-5, eps_placement: placement, ..Default::default() };
        let dx = reference::rms_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap().dx;
        for (i, (&x, &d)) in x.iter().zip(&dy).enumerate() {
            let (x, u, eps) = (f64::from(x), f64::from(d) * f64::from(g[0]), f64::from(cfg.eps));
            let want = match placement {
                EpsPlacement::InsideSqrt => u * eps * (x * x + eps).powf(-1.5),
                EpsPlacement::OutsideSqrt => u * eps / (x.abs() + eps).powi(2),
            };
            assert!(
                (dx[i] - want).abs() <= 1e-12 * want.abs(),
                "{placement:?} row {i}: {} against {want}",
                dx[i]
            );
        }
    }
}

/// LayerNorm's counterpart of `dominant_terms`, for element `m` of `row`: r^3 / n *
/// ((|u_m| + |mean(u)|) (S'' + n eps) + |d_m| sum over i != m of |u_i c_i|), with d = x - mean,
/// c_i = x_i - the mean of the others and S'' = sum of c_i^2 over them.
fn layer_terms(x: &[f32], g: &[f32], dy: &[f32], cols: usize, row: usize, m: usize, eps: f32) -> f64 {
    let at = |i: usize| row * cols + i;
    let u = |i: usize| f64::from(dy[at(i)]) * f64::from(g[i]);
    let v = |i: usize| f64::from(x[at(i)]);
    let n = cols as f64;
    let mean = (0..cols).map(v).sum::<f64>() / n;
    let s: f64 = (0..cols).map(|i| (v(i) - mean).powi(2)).sum();
    let r = 1.0 / (s / n + f64::from(eps)).sqrt();
    let mean_u = (0..cols).map(u).sum::<f64>() / n;
    let others = || (0..cols).filter(move |&i| i != m);
    let mean_o = others().map(v).sum::<f64>() / (n - 1.0);
    let s_rest: f64 = others().map(|i| (v(i) - mean_o).powi(2)).sum();
    let t_abs: f64 = others().map(|i| (u(i) * (v(i) - mean_o)).abs()).sum();
    r.powi(3) / n
        * ((u(m).abs() + mean_u.abs()) * (s_rest + n * f64::from(eps)) + (v(m) - mean).abs() * t_abs)
}

#[test]
fn layer_norm_backward_keeps_the_digits_of_a_dominant_element() {
    // 47 rows of 4097: streamed rows; on a two-core CPU adapter each workgroup has six or
    // five row blocks, four rows to a trip, then two or one.
    let shapes = [(41, 2), (5, 3), (64, 7), (33, 127), (47, 4097), (3, 65536)];
    // Factor 1: random rows, where only d = 2 cancels (every element, by eps r^2).
    let factors = [1.0f32, 1e3, 1e4, 1e5, 1e6];
    // Which statistics the backward is given: each takes another path to the peak element.
    let saved = [(false, false), (true, true), (true, false), (false, true)];
    for (label, ctx) in contexts() {
        for (i, &(rows, cols)) in shapes.iter().enumerate() {
            for (f, factor) in factors.into_iter().enumerate() {
                let (with_mean, with_rstd) = saved[(i + f) % saved.len()];
                let seed = 7600 + 10 * i as u64 + f as u64;
                let shape = Shape::new(rows, cols);
                let context = format!(
                    "{label}, {rows}x{cols}, factor {factor:e}, saved mean {with_mean}, saved rstd {with_rstd}, seed {seed}"
                );
                let (x, dy, g, b) = dominated_case(seed, shape, factor);
                let cfg = LayerNormConfig { eps: 1e-5, ..Default::default() };
                let fwd = host::layer_norm_forward(ctx, &x, Some(&g), Some(&b), shape, &cfg).expect(&context);
                let (mean, rstd) = (with_mean.then_some(&fwd.mean[..]), with_rstd.then_some(&fwd.rstd[..]));
                let dx = host::layer_norm_backward(ctx, &x, Some(&g), &dy, mean, rstd, shape, &cfg)
                    .expect(&context)
                    .dx;
                let want = reference::layer_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap().dx;
                let scale = rms(&want);
                check("dx", &dx, &want, Bar { atol: DX.atol * scale, ..DX }, &context);
                for row in 0..rows {
                    // At d = 2 both elements cancel; else the dominant one (of a dominated row).
                    let peaks = match cols {
                        2 => vec![row * cols, row * cols + 1],
                        _ if factor > 1.0 => vec![dominant_at(shape, row)],
                        _ => vec![],
                    };
                    for i in peaks {
                        let terms = layer_terms(&x, &g, &dy, cols, row, i - row * cols, cfg.eps);
                        let at = format!("row {row}'s element {}, {context}", i - row * cols);
                        check_cancelling(dx[i], want[i], terms, &at);
                    }
                }
            }
        }
    }
}

/// Rows with a peak among rows without, many to a row slot, from the saved mean and rstd: on
/// a CPU adapter's tile launch (mode 1) a slot does such rows after its others, from memory
/// (layer_norm.wgsl, defers_peak_rows), and where dx is dy it must not take a dx already
/// written for dy. Every 5th row has one element 1e3 times the others; rows of 64 and 16
/// with more than 32 rows to each slot of the grid, rows of 128 and 768. dx, dgamma and dbeta
/// against the reference, each peak's dx to the digits of its terms, and dx written over dy
/// equal to dx beside it, bit for bit.
#[test]
fn layer_norm_peak_rows_among_others() {
    // The CPU adapter's grid: backward_groups workgroups of workgroup_size / 8 rows of 64.
    let t = common::ctx().tuning();
    let rows = 33 * t.backward_groups as usize * (t.workgroup_size as usize / 8) + 5;
    let cfg = LayerNormConfig { eps: 1e-5, ..Default::default() };
    let shapes = [Shape::new(rows, 64), Shape::new(rows / 4, 16), Shape::new(301, 128), Shape::new(70, 768)];
    for (label, c) in contexts() {
        for (i, shape) in shapes.into_iter().enumerate() {
            let seed = 7800 + i as u64;
            let mut r = rng(seed);
            let mut x = randn(&mut r, shape.elements());
            let peaks: Vec<usize> = (0..shape.rows).step_by(5).collect();
            for &row in &peaks {
                x[dominant_at(shape, row)] *= 1e3;
            }
            let dy = randn(&mut r, shape.elements());
            let (g, b) = random_affine(&mut r, shape.cols);
            let context = format!("{label}, {shape:?}, seed {seed}");
            let fwd = host::layer_norm_forward(c, &x, Some(&g), Some(&b), shape, &cfg).expect(&context);
            let stats = (&fwd.mean[..], &fwd.rstd[..]);
            let grads =
                host::layer_norm_backward(c, &x, Some(&g), &dy, Some(stats.0), Some(stats.1), shape, &cfg)
                    .expect(&context);
            let want = reference::layer_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap();
            check("dx", &grads.dx, &want.dx, Bar { atol: DX.atol * rms(&want.dx), ..DX }, &context);
            for &row in &peaks {
                let m = dominant_at(shape, row);
                let terms = layer_terms(&x, &g, &dy, shape.cols, row, m - row * shape.cols, cfg.eps);
                check_cancelling(grads.dx[m], want.dx[m], terms, &format!("row {row}'s peak, {context}"));
            }
            let xhat = reference::layer_norm_forward(&x, None, None, shape, &cfg).unwrap().y;
            let bar = column_sum_bar(shape.rows, product_rms(&dy, &xhat));
            check("dgamma", &grads.dgamma, &want.dgamma, bar, &context);
            let bar = column_sum_bar(shape.rows, product_rms(&dy, &vec![1.0; dy.len()]));
            check("dbeta", &grads.dbeta, &want.dbeta, bar, &context);
            let over_dy = encoded_dx(c, &x, &g, &dy, stats, shape, true);
            let beside = encoded_dx(c, &x, &g, &dy, stats, shape, false);
            if let Some(i) = (0..beside.len()).find(|&i| over_dy[i].to_bits() != beside[i].to_bits()) {
                panic!("dx[{i}] over dy {} against {} beside it ({context})", over_dy[i], beside[i]);
            }
        }
    }
}

/// LayerNorm's dx (eps 1e-5) from the saved (mean, rstd) through the encode API, written over
/// dy itself (`over_dy`) or into a buffer of NaN beside it.
fn encoded_dx(
    c: &NormContext,
    x: &[f32],
    g: &[f32],
    dy: &[f32],
    stats: (&[f32], &[f32]),
    shape: Shape,
    over_dy: bool,
) -> Vec<f32> {
    let (xb, gb, dyb) = (common::upload(c, x), common::upload(c, g), common::upload(c, dy));
    let (mean, rstd) = (common::upload(c, stats.0), common::upload(c, stats.1));
    let dxb = common::upload(c, &vec![f32::NAN; dy.len()]);
    let out = if over_dy { &dyb } else { &dxb };
    common::submit(c, |enc| {
        let b = LayerNormBackward {
            x: (&xb).into(),
            gamma: Some((&gb).into()),
            dy: (&dyb).into(),
            dh: None,
            mean: Some((&mean).into()),
            rstd: Some((&rstd).into()),
            dx: out.into(),
            dgamma: None,
            dbeta: None,
            workspace: None,
        };
        let cfg = LayerNormConfig { eps: 1e-5, ..Default::default() };
        LayerNormBackwardOp::new(c, cfg).unwrap().encode(enc, shape, &b).unwrap();
    });
    bytemuck::pod_collect_to_vec(&common::read_bytes(c.device(), c.queue(), out))
}

/// The reference's own LayerNorm dx where it cancels: at d = 2 the closed form
/// eps r^3 (u - mean(u)), r = (d^2 + eps)^-1/2 with d = (x_0 - x_1) / 2; for a dominant
/// element, minus the sum of the others' dx (dx sums to 0 over a row), which do not cancel.
#[test]
fn layer_norm_reference_where_dx_cancels() {
    let mut r = rng(7700);
    let eps = 1e-5f32;
    let cfg = LayerNormConfig { eps, ..Default::default() };
    let shape = Shape::new(64, 2);
    let (x, dy, g) = (dominated(&mut r, shape, 1e3), randn(&mut r, 128), randn(&mut r, 2));
    let dx = reference::layer_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap().dx;
    for row in 0..64 {
        let v = |i: usize| f64::from(x[2 * row + i]);
        let u = |i: usize| f64::from(dy[2 * row + i]) * f64::from(g[i]);
        let d = (v(0) - v(1)) / 2.0;
        let r = 1.0 / (d * d + f64::from(eps)).sqrt();
        for i in 0..2 {
            let want = f64::from(eps) * r.powi(3) * (u(i) - (u(0) + u(1)) / 2.0);
            assert!(
                (dx[2 * row + i] - want).abs() <= 1e-12 * want.abs(),
                "row {row}: {} against {want}",
                dx[2 * row + i]
            );
        }
    }
    for (i, cols) in [3, 7, 127].into_iter().enumerate() {
        for (f, factor) in [1e2f32, 1e3, 1e4].into_iter().enumerate() {
            let shape = Shape::new(16, cols);
            let mut r = rng(7710 + 10 * i as u64 + f as u64);
            let (x, dy, g) =
                (dominated(&mut r, shape, factor), randn(&mut r, shape.elements()), randn(&mut r, cols));
            let dx = reference::layer_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap().dx;
            for row in 0..16 {
                let m = dominant_at(shape, row);
                let others: f64 = (row * cols..(row + 1) * cols).filter(|&j| j != m).map(|j| dx[j]).sum();
                assert!(
                    (dx[m] + others).abs() <= 1e-7 * dx[m].abs(),
                    "{cols} cols, factor {factor:e}, row {row}: {} against {}",
                    dx[m],
                    -others
                );
            }
        }
    }
}
