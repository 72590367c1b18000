//! Rows whose squares leave f32's range (issue 13 item 4): elements near 1e20, 1e30 and f32's
//! largest, whose squares overflow, and near 1e-25 and 1e-30 with eps 0 (or below 2^-100),
//! whose squares underflow. Both norms' y is scale-free, so it must come out right and
//! finite, and so must the backward's dx, dgamma and dbeta, from the forward's saved
//! statistics and without them: against the f64 reference, on the register tile and streamed
//! rows (two to a trip too), every reduction path, both eps placements; for LayerNorm, rows
//! about 0 and rows with a mean of their own size, up to rows whose sum overflows as well,
//! and tiny rows whose spread is 10^-4 of their mean.

mod common;

use common::{DX, FORWARD, Inputs, check, check_at_scale, contexts, randn, random_affine, rng};
use wgpu_norm::{
    EpsPlacement, LayerNormConfig, LayerNormForward, LayerNormForwardOp, NormContext, RmsNormConfig,
    RmsNormForward, RmsNormForwardOp, Shape, host, reference,
};

/// RMSNorm forward of randn rows times `scale` against the reference, and its backward's dx
/// and dgamma: from the saved rstd where that is a normal f32 (rows up to about 1e37: a GPU
/// may flush a subnormal one to 0, and the backward then shows the overflow), and (`unsaved`)
/// without it, where the backward scales the row itself. Near f32's largest dx is below
/// f32's normal range: a GPU may flush it to 0 too.
fn check_scaled_rows(shape: Shape, scale: f32, eps: f32, placement: EpsPlacement, unsaved: bool, seed: u64) {
    let mut r = rng(seed);
    // At most f32's largest, whatever randn draws.
    let x: Vec<f32> =
        randn(&mut r, shape.elements()).iter().map(|v| (v / 4.0).clamp(-1.0, 1.0) * scale).collect();
    let g: Vec<f32> = randn(&mut r, shape.cols).iter().map(|v| 1.0 + 0.25 * v).collect();
    let dy = randn(&mut r, shape.elements());
    let cfg = RmsNormConfig { eps, eps_placement: placement, ..Default::default() };
    let want = reference::rms_norm_forward(&x, Some(&g), shape, &cfg).unwrap();
    for (label, c) in contexts() {
        let context =
            format!("{label}, {shape:?}, x = randn * {scale:e}, eps {eps:e}, {placement:?}, seed {seed}");
        let out = host::rms_norm_forward(c, &x, Some(&g), shape, &cfg).expect(&context);
        assert!(out.y.iter().all(|v| v.is_finite()), "y not finite ({context})");
        let scale_of_y = common::rms(&want.y);
        check("y", &out.y, &want.y, common::Bar { atol: FORWARD.atol * scale_of_y, ..FORWARD }, &context);
        let normal = want.rstd.iter().all(|&r| r > 2.0 * f64::from(f32::MIN_POSITIVE));
        if normal {
            let stats = common::Bar { rel: 1e-6, atol: 0.0, rtol: 1e-5 };
            check("rstd", &out.rstd, &want.rstd, stats, &context);
        }
        let w = reference::rms_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap();
        let terms = (dy
            .iter()
            .enumerate()
            .map(|(i, d)| (want.rstd[i / shape.cols] * f64::from(g[i % shape.cols]) * f64::from(*d)).powi(2))
            .sum::<f64>()
            / dy.len() as f64)
            .sqrt();
        let dx_bar = common::Bar { atol: (DX.atol * terms).max(f64::from(f32::MIN_POSITIVE)), ..DX };
        let xhat = reference::rms_norm_forward(&x, None, shape, &cfg).unwrap().y;
        let dgamma_bar = common::column_sum_bar(shape.rows, common::product_rms(&dy, &xhat));
        let saved = [normal.then_some(Some(&out.rstd[..])), unsaved.then_some(None)];
        for rstd in saved.iter().flatten() {
            let context = format!("{context}, saved rstd {}", rstd.is_some());
            let grads = host::rms_norm_backward(c, &x, Some(&g), &dy, *rstd, shape, &cfg).expect(&context);
            check_at_scale("dx", &grads.dx, &w.dx, dx_bar, terms, &context);
            check("dgamma", &grads.dgamma, &w.dgamma, dgamma_bar, &context);
        }
    }
}

// 64 and 768: the register tile; 8192 and 65536: streamed. On a two-core CPU adapter 47 rows
// give each workgroup six or five row blocks: four rows to a trip, then fewer.
const SHAPES: [Shape; 5] =
    [Shape::new(3, 1), Shape::new(5, 64), Shape::new(4, 768), Shape::new(47, 8192), Shape::new(2, 65536)];

#[test]
fn squares_that_overflow() {
    for (i, &shape) in SHAPES.iter().enumerate() {
        for (j, scale) in [1e20_f32, 1e30, f32::MAX].into_iter().enumerate() {
            for placement in [EpsPlacement::InsideSqrt, EpsPlacement::OutsideSqrt] {
                check_scaled_rows(shape, scale, 1e-6, placement, true, 10 * i as u64 + j as u64);
            }
        }
    }
}

/// From the saved rstd and, where eps is below 2^-100, without it: the backward then scales
/// each row by its largest |h| before summing its squares.
#[test]
fn squares_that_underflow_with_eps_zero() {
    for (i, &shape) in SHAPES.iter().enumerate() {
        for (j, scale) in [1e-25_f32, 1e-30].into_iter().enumerate() {
            for placement in [EpsPlacement::InsideSqrt, EpsPlacement::OutsideSqrt] {
                check_scaled_rows(shape, scale, 0.0, placement, true, 100 + 10 * i as u64 + j as u64);
            }
        }
    }
}

/// LayerNorm of rows (mean + randn / 4) * scale against the reference, and its backward from
/// the saved statistics and without them; at f32's largest, the forward's y (the rstd may
/// be subnormal there, which a GPU may flush to 0) and the backward without statistics.
fn check_layer_rows(shape: Shape, scale: f32, mean: f32, eps: f32, seed: u64) {
    let mut r = rng(seed);
    let x: Vec<f32> = randn(&mut r, shape.elements())
        .iter()
        .map(|v| ((mean + (v / 4.0).clamp(-1.0, 1.0)) / (mean + 1.0)) * scale)
        .collect();
    let dy = randn(&mut r, shape.elements());
    let (g, b) = random_affine(&mut r, shape.cols);
    let cfg = LayerNormConfig { eps, ..Default::default() };
    for (label, c) in contexts() {
        let context = format!(
            "{label}, {shape:?}, x = (({mean} + randn / 4) / {}) * {scale:e}, eps {eps:e}, seed {seed}",
            mean + 1.0
        );
        if scale < 1e35 {
            for saved in [true, false] {
                let inputs = Inputs { shape, x: &x, dy: &dy, gamma: Some(&g), beta: Some(&b), saved };
                common::check_layer_on(c, &inputs, &cfg, &format!("{context}, saved statistics {saved}"));
            }
        } else {
            let out = host::layer_norm_forward(c, &x, Some(&g), Some(&b), shape, &cfg).expect(&context);
            let want = reference::layer_norm_forward(&x, Some(&g), Some(&b), shape, &cfg).unwrap();
            assert!(out.y.iter().all(|v| v.is_finite()), "y not finite ({context})");
            check("y", &out.y, &want.y, common::scaled(FORWARD, &want.y), &context);
            // Without saved statistics the backward scales the row from its largest |h|. dx
            // itself is about 1 / |x| here, below f32's normal range: a GPU may flush it to 0.
            let dx =
                host::layer_norm_backward(c, &x, Some(&g), &dy, None, None, shape, &cfg).expect(&context).dx;
            let want = reference::layer_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap().dx;
            let bar = common::scaled(DX, &want);
            let bar = common::Bar { atol: bar.atol.max(f64::from(f32::MIN_POSITIVE)), ..bar };
            check("dx", &dx, &want, bar, &context);
        }
    }
}

#[test]
fn layer_norm_squares_that_overflow() {
    for (i, &shape) in SHAPES.iter().enumerate() {
        for (j, scale) in [1e20_f32, 1e30, f32::MAX].into_iter().enumerate() {
            // About 0, and a mean three times the spread (at f32's largest, rows whose sum
            // overflows too).
            for (m, mean) in [0.0_f32, 3.0].into_iter().enumerate() {
                check_layer_rows(shape, scale, mean, 1e-5, 200 + 10 * i as u64 + 2 * j as u64 + m as u64);
            }
        }
    }
}

/// Rows whose squares underflow f32, with eps 0 (and one below 2^-100): the forward scales
/// each row by its largest |h| before its statistics, and so does the backward without
/// them; about 0, a mean three times the spread, and a mean 10^4 times it, whose spread's
/// squares underflow where the elements' own would not.
#[test]
fn layer_norm_squares_that_underflow_with_eps_zero() {
    for (i, &shape) in SHAPES.iter().enumerate() {
        for (j, scale) in [1e-25_f32, 1e-30].into_iter().enumerate() {
            for (m, mean) in [0.0_f32, 3.0, 1e4].into_iter().enumerate() {
                // A row of one element has no spread: eps 0 would leave 0 / 0.
                let eps = if m == 1 || shape.cols == 1 { 1e-35 } else { 0.0 };
                check_layer_rows(shape, scale, mean, eps, 300 + 10 * i as u64 + 3 * j as u64 + m as u64);
            }
        }
    }
}

/// Rows out of f32's range among rows in range, many to a row slot: on a CPU adapter's tile
/// launch (mode 1, short tiles) a slot does such rows after its others, from memory, and
/// where y is x it must not take an already normalized row for one (a row of 64: more than
/// 32 rows to each slot of the grid, so more than one batch of them). Every 5th row near
/// 1e30; for RMSNorm with eps 0 every 7th near 1e-30 as well. y (and RMSNorm's rstd) against
/// the reference, and y written over x equal to y beside it bit for bit.
#[test]
fn rows_out_of_range_among_rows_in_range() {
    // The CPU adapter's grid: backward_groups workgroups of workgroup_size / 8 rows of 64.
    let t = common::ctx().tuning();
    let rows = 33 * t.backward_groups as usize * (t.workgroup_size as usize / 8) + 5;
    for (label, c) in contexts() {
        for (i, shape) in
            [Shape::new(rows, 64), Shape::new(rows / 4, 16), Shape::new(301, 128)].into_iter().enumerate()
        {
            let seed = 400 + i as u64;
            let mut r = rng(seed);
            let mut x = randn(&mut r, shape.elements());
            for (row, v) in x.chunks_mut(shape.cols).enumerate() {
                let scale = match (row % 5, row % 7) {
                    (0, _) => 1e30,
                    (_, 0) => 1e-30,
                    _ => 1.0,
                };
                v.iter_mut().for_each(|e| *e *= scale);
            }
            let (g, b) = random_affine(&mut r, shape.cols);
            let context = format!("{label}, {shape:?}, seed {seed}");
            let rms = RmsNormConfig { eps: 0.0, ..Default::default() };
            let want = reference::rms_norm_forward(&x, Some(&g), shape, &rms).unwrap();
            let out = host::rms_norm_forward(c, &x, Some(&g), shape, &rms).expect(&context);
            check("rms y", &out.y, &want.y, common::scaled(FORWARD, &want.y), &context);
            check(
                "rms rstd",
                &out.rstd,
                &want.rstd,
                common::Bar { rel: 1e-6, atol: 0.0, rtol: 1e-5 },
                &context,
            );
            same_bits("rms_norm", &in_place(c, &x, &g, None, shape), &out.y, &context);
            let layer = LayerNormConfig::default();
            let want = reference::layer_norm_forward(&x, Some(&g), Some(&b), shape, &layer).unwrap();
            let out = host::layer_norm_forward(c, &x, Some(&g), Some(&b), shape, &layer).expect(&context);
            check("layer y", &out.y, &want.y, common::scaled(FORWARD, &want.y), &context);
            same_bits("layer_norm", &in_place(c, &x, &g, Some(&b), shape), &out.y, &context);
        }
    }
}

/// y written over x against y beside it, bit for bit: the first element that differs.
fn same_bits(norm: &str, over_x: &[f32], beside: &[f32], context: &str) {
    if let Some(i) = (0..beside.len()).find(|&i| over_x[i].to_bits() != beside[i].to_bits()) {
        panic!("{norm} y[{i}] over x {} against {} beside it ({context})", over_x[i], beside[i]);
    }
}

/// The forward (RMSNorm, or LayerNorm with `beta`, default configs but RMSNorm's eps 0) of x
/// written over x itself through the encode API.
fn in_place(c: &NormContext, x: &[f32], g: &[f32], beta: Option<&[f32]>, shape: Shape) -> Vec<f32> {
    let (xb, gb) = (common::upload(c, x), common::upload(c, g));
    common::submit(c, |enc| match beta {
        None => {
            let cfg = RmsNormConfig { eps: 0.0, ..Default::default() };
            let f = RmsNormForward {
                x: (&xb).into(),
                residual: None,
                gamma: Some((&gb).into()),
                y: (&xb).into(),
                h: None,
                rstd: None,
            };
            RmsNormForwardOp::new(c, cfg).unwrap().encode(enc, shape, &f).unwrap();
        }
        Some(beta) => {
            let bb = common::upload(c, beta);
            let f = LayerNormForward {
                x: (&xb).into(),
                residual: None,
                gamma: Some((&gb).into()),
                beta: Some((&bb).into()),
                y: (&xb).into(),
                h: None,
                mean: None,
                rstd: None,
            };
            LayerNormForwardOp::new(c, LayerNormConfig::default()).unwrap().encode(enc, shape, &f).unwrap();
        }
    });
    bytemuck::pod_collect_to_vec(&common::read_bytes(c.device(), c.queue(), &xb))
}
