//! Post-norm add (issue 13 item 3): `y = residual + norm(x) * gamma (+ beta)` in one
//! kernel, for both norms, against the f64 reference; y over the residual in place; the
//! backward is the norm's (the residual's gradient is dy itself), and tensors that have no
//! use with the residual added after the norm are refused.

mod common;

use common::{FORWARD, Norm, Placed, Reference, Step, check_stored, ctx, randn, record_step, rng, stored};
use wgpu_norm::{
    DType, LayerNormBackward, LayerNormBackwardOp, LayerNormConfig, NormContext, NormError, ResidualAdd,
    RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape, Storage,
};

/// Forward with the residual added after the norm (y over the residual when `in_place`),
/// then the backward on the same x; every tensor in `dtype` but the residual stream (the
/// residual and y) in `stream`.
fn check_post_norm(
    c: &NormContext,
    norm: Norm,
    shape: Shape,
    dtype: DType,
    stream: DType,
    in_place: bool,
    seed: u64,
) {
    let context =
        format!("{norm:?}, {shape:?}, {dtype:?} with a {stream:?} stream, in place {in_place}, seed {seed}");
    let storage = Storage { residual: stream, y: stream, ..Storage::uniform(dtype) };
    let (n, cols) = (shape.elements(), shape.cols);
    let pad = if seed % 2 == 1 { 3 } else { 8 };
    let mut r = rng(seed);
    let x = stored(&randn(&mut r, n).iter().map(|v| 2.0 * v - 0.7).collect::<Vec<_>>(), dtype);
    let res = stored(&randn(&mut r, n).iter().map(|v| 4.0 * v).collect::<Vec<_>>(), stream);
    let dy = stored(&randn(&mut r, n), dtype);
    let g = stored(&randn(&mut r, cols).iter().map(|v| 1.0 + 0.25 * v).collect::<Vec<_>>(), dtype);
    let b = stored(&randn(&mut r, cols).iter().map(|v| 0.5 * v).collect::<Vec<_>>(), dtype);
    let place = |v: Option<&[f64]>, len: usize, dt: DType| Placed::new(c, v, len, dt, pad);
    let (xb, resb, dyb, gb, bb) = (
        place(Some(&x), n, dtype),
        place(Some(&res), n, stream),
        place(Some(&dy), n, dtype),
        place(Some(&g), cols, dtype),
        place(Some(&b), cols, dtype),
    );
    let (yb, dxb) = (place(None, n, stream), place(None, n, dtype));
    let y_at = if in_place { &resb } else { &yb };
    let rms =
        RmsNormConfig { eps: 1e-5, residual_add: ResidualAdd::AfterNorm, storage, ..Default::default() };
    let ln = LayerNormConfig { residual_add: ResidualAdd::AfterNorm, storage, ..Default::default() };
    let step = Step {
        x: xb.tensor(),
        y: y_at.tensor(),
        dy: dyb.tensor(),
        dx: dxb.tensor(),
        residual: Some(resb.tensor()),
        h: None,
        dh: None,
        gamma: Some(gb.tensor()),
        beta: Some(bb.tensor()),
        dgamma: None,
        dbeta: None,
        workspace: None,
    };
    record_step(c, norm, rms, ln, shape, &step, &context);
    let want = Reference::of(norm, &x, &x, &g, &b, &dy, shape, &rms, &ln);
    let want_y: Vec<f64> = res.iter().zip(&want.y).map(|(a, b)| a + b).collect();
    check_stored("y", &y_at.read(c, "y", &context), &want_y, stream, FORWARD, 0.0, &context);
    want.check_backward(&dxb.read(c, "dx", &context), dtype, None, None, None, &dy, &g, shape, &context);
}

#[test]
fn post_norm_add_forward_and_backward() {
    let shapes = [(3, 1), (5, 7), (4, 768), (2, 4097), (3, 20_000)];
    for (label, c) in common::contexts() {
        for (i, &(rows, cols)) in shapes.iter().enumerate() {
            for norm in [Norm::Rms, Norm::Layer] {
                let seed = 10 * i as u64 + u64::from(norm == Norm::Layer);
                let _ = label;
                check_post_norm(c, norm, Shape::new(rows, cols), DType::F32, DType::F32, i % 2 == 0, seed);
            }
        }
    }
}

/// 16-bit activations on an f32 residual stream, and all-16-bit, in place and not.
#[test]
fn post_norm_add_in_16_bit() {
    for (i, (dtype, stream)) in
        [(DType::BF16, DType::F32), (DType::F16, DType::F16), (DType::BF16, DType::BF16)]
            .into_iter()
            .enumerate()
    {
        for (j, &(rows, cols)) in [(4, 64), (3, 7), (2, 1001)].iter().enumerate() {
            for norm in [Norm::Rms, Norm::Layer] {
                let seed = 100 + 10 * i as u64 + j as u64;
                check_post_norm(ctx(), norm, Shape::new(rows, cols), dtype, stream, j == 1, seed);
            }
        }
    }
}

/// h (forward) and dh (backward) have no use with the residual added after the norm.
#[test]
fn tensors_without_a_use_are_refused() {
    let c = ctx();
    let shape = Shape::new(2, 64);
    let buffer = |_| common::storage(c, 4 * 128);
    let [x, res, y, h, dy, dh, dx] = [0; 7].map(buffer);
    let rms = RmsNormConfig { residual_add: ResidualAdd::AfterNorm, ..Default::default() };
    let f = RmsNormForward {
        x: (&x).into(),
        residual: Some((&res).into()),
        gamma: None,
        y: (&y).into(),
        h: Some((&h).into()),
        rstd: None,
    };
    let e = RmsNormForwardOp::new(c, rms).unwrap().bind(shape, &f).err();
    assert!(matches!(e, Some(NormError::UnusedArgument { what: "h", .. })), "{e:?}");
    let ln = LayerNormConfig { residual_add: ResidualAdd::AfterNorm, ..Default::default() };
    let bw = LayerNormBackward {
        x: (&x).into(),
        gamma: None,
        dy: (&dy).into(),
        dh: Some((&dh).into()),
        mean: None,
        rstd: None,
        dx: (&dx).into(),
        dgamma: None,
        dbeta: None,
        workspace: None,
    };
    let e = LayerNormBackwardOp::new(c, ln).unwrap().bind(shape, &bw).err();
    assert!(matches!(e, Some(NormError::UnusedArgument { what: "dh", .. })), "{e:?}");
}
