//! f16 and bf16 storage with f32 accumulation, against the f64 reference computed from the
//! same rounded inputs: within one rounding of the storage type. f16 both as `array<f16>`
//! (where the adapter has SHADER_F16) and packed in u32 words (the path for adapters without it).

mod common;

use wgpu_norm::host;

use common::{Input, column_sum_bar, ctx, f16_paths, input, product_rms, randn, rng};
use wgpu_norm::half::{bf16, f16};
use wgpu_norm::{DType, Element, LayerNormConfig, NormContext, RmsNormConfig, Shape, reference};

/// |gpu - ref| <= atol + rtol * |ref|, elementwise.
#[track_caller]
fn close<T: Element>(what: &str, gpu: &[T], want: &[f64], atol: f64, rtol: f64, context: &str) {
    assert_eq!(gpu.len(), want.len());
    for (i, (g, w)) in gpu.iter().zip(want).enumerate() {
        let g = g.to_f64();
        let tol = atol + rtol * w.abs();
        assert!((g - w).abs() <= tol, "{what}[{i}] = {g:e}, reference {w:e}, tolerance {tol:e} ({context})");
    }
}

fn convert<T: Element>(v: &[f32]) -> Vec<T> {
    v.iter().map(|&e| T::from_f32(e)).collect()
}

fn widen<T: Element>(v: &[T]) -> Vec<f64> {
    v.iter().map(|e| e.to_f64()).collect()
}

/// Forward and backward of both norms in dtype T.
fn check_dtype<T: Element>(ctx: &NormContext, label: &str, shape: Shape, kind: Input, scale: f32, seed: u64) {
    let (fwd_tol, bwd_tol) = match T::DTYPE {
        DType::F16 => (1e-3, 5e-3),
        DType::BF16 => (1e-2, 2e-2),
        DType::F32 => unreachable!("f32 has its own tests"),
    };
    let context = format!("{label}, {:?}, seed {seed}, {shape:?}, {kind:?} x {scale}", T::DTYPE);
    let mut r = rng(seed);
    // Clamped into f16's range: the test is about squares overflowing, not inputs.
    let x: Vec<T> =
        convert(&input(&mut r, kind, shape).iter().map(|v| (v * scale).clamp(-6e4, 6e4)).collect::<Vec<_>>());
    let dy: Vec<T> = convert(&randn(&mut r, shape.elements()));
    let g: Vec<T> = convert(&randn(&mut r, shape.cols).iter().map(|v| 1.0 + 0.25 * v).collect::<Vec<_>>());
    let b: Vec<T> = convert(&randn(&mut r, shape.cols).iter().map(|v| 0.5 * v).collect::<Vec<_>>());
    let (x64, dy64, g64, b64) = (widen(&x), widen(&dy), widen(&g), widen(&b));

    let rms = RmsNormConfig { eps: 1e-5, ..Default::default() };
    let out = host::rms_norm_forward(ctx, &x, Some(&g), shape, &rms).expect(&context);
    let want = reference::rms_norm_forward(&x64, Some(&g64), shape, &rms).unwrap();
    close("rms y", &out.y, &want.y, fwd_tol, fwd_tol, &context);
    let grads =
        host::rms_norm_backward(ctx, &x, Some(&g), &dy, Some(&out.rstd), shape, &rms).expect(&context);
    let wg = reference::rms_norm_backward(&x64, Some(&g64), &dy64, shape, &rms).unwrap();
    close("rms dx", &grads.dx, &wg.dx, bwd_tol, bwd_tol, &context);
    let xhat = reference::rms_norm_forward(&x64, None, shape, &rms).unwrap().y;
    let dyf: Vec<f32> = dy64.iter().map(|&v| v as f32).collect();
    let bar = column_sum_bar(shape.rows, product_rms(&dyf, &xhat));
    common::check("rms dgamma", &grads.dgamma, &wg.dgamma, bar, &context);

    let ln = LayerNormConfig::default();
    let out = host::layer_norm_forward(ctx, &x, Some(&g), Some(&b), shape, &ln).expect(&context);
    let want = reference::layer_norm_forward(&x64, Some(&g64), Some(&b64), shape, &ln).unwrap();
    close("ln y", &out.y, &want.y, fwd_tol, fwd_tol, &context);
    let grads =
        host::layer_norm_backward(ctx, &x, Some(&g), &dy, Some(&out.mean), Some(&out.rstd), shape, &ln)
            .expect(&context);
    let wg = reference::layer_norm_backward(&x64, Some(&g64), &dy64, shape, &ln).unwrap();
    close("ln dx", &grads.dx, &wg.dx, bwd_tol, bwd_tol, &context);
    let xhat = reference::layer_norm_forward(&x64, None, None, shape, &ln).unwrap().y;
    let bar = column_sum_bar(shape.rows, product_rms(&dyf, &xhat));
    common::check("ln dgamma", &grads.dgamma, &wg.dgamma, bar, &context);
    let ones = vec![1.0; dyf.len()];
    common::check(
        "ln dbeta",
        &grads.dbeta,
        &wg.dbeta,
        column_sum_bar(shape.rows, product_rms(&dyf, &ones)),
        &context,
    );
}

/// Odd hidden sizes put row boundaries mid-word: those halves go through atomics.
const SHAPES: [(usize, usize); 8] =
    [(3, 1), (5, 3), (4, 7), (3, 128), (7, 1001), (2, 4096), (3, 4097), (2, 20_001)];

#[test]
fn f16_native_and_packed() {
    for (label, c) in f16_paths() {
        for (i, &(rows, cols)) in SHAPES.iter().enumerate() {
            let kind = [Input::Randn, Input::Shifted, Input::LargeMean][i % 3];
            let scale = if kind == Input::LargeMean { 1e-2 } else { 1.0 };
            check_dtype::<f16>(c, label, Shape::new(rows, cols), kind, scale, 40 + i as u64);
        }
    }
}

#[test]
fn bf16() {
    for (i, &(rows, cols)) in SHAPES.iter().enumerate() {
        let kind = [Input::Randn, Input::Shifted, Input::LargeMean][i % 3];
        check_dtype::<bf16>(ctx(), "bf16", Shape::new(rows, cols), kind, 1.0, 60 + i as u64);
        check_dtype::<bf16>(
            common::ctx_workgroup(),
            "bf16 workgroup",
            Shape::new(rows, cols),
            kind,
            1.0,
            80 + i as u64,
        );
    }
}

/// |x| up to 6e4 in f16: the squares overflow f16 but not the f32 accumulators.
#[test]
fn f16_large_magnitudes_normalize() {
    for (label, c) in f16_paths() {
        check_dtype::<f16>(c, label, Shape::new(4, 1000), Input::Randn, 2e4, 7);
        check_dtype::<f16>(c, label, Shape::new(2, 9), Input::Constant, 6e4 / 8.0, 8);
    }
}

/// Stores round to nearest even and keep NaN a NaN.
#[test]
fn bf16_rounding_and_nan() {
    let c = ctx();
    // 1 + 2^-8 is halfway between two bf16 values: it rounds to even (1.0); 1 + 3 * 2^-8
    // rounds up to 1 + 2^-6. With eps 0 and gamma 1 a row of one element normalizes to its
    // sign, so use the gamma offset to carry the value: y = 1 * (offset + 0).
    let cfg = RmsNormConfig { eps: 0.0, gamma_offset: 1.0 + 1.0 / 256.0, ..Default::default() };
    let x = [bf16::from_f32(2.0)];
    let out = host::rms_norm_forward(c, &x, Some(&[bf16::ZERO]), Shape::new(1, 1), &cfg).unwrap();
    assert_eq!(out.y[0], bf16::from_f32(1.0));
    let cfg = RmsNormConfig { gamma_offset: 1.0 + 3.0 / 256.0, ..cfg };
    let out = host::rms_norm_forward(c, &x, Some(&[bf16::ZERO]), Shape::new(1, 1), &cfg).unwrap();
    assert_eq!(out.y[0], bf16::from_f32(1.0 + 4.0 / 256.0));
    let nan_in = [bf16::NAN, bf16::from_f32(1.0)];
    let out = host::rms_norm_forward(c, &nan_in, None, Shape::new(1, 2), &RmsNormConfig::default()).unwrap();
    assert!(out.y.iter().all(|v| v.is_nan()), "{:?}", out.y);
}
