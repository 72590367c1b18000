//! The kernels on the browser's WebGPU (no subgroups there through wgpu 30: the
//! workgroup-memory reductions run), checked against the f64 reference compiled to wasm.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use wgpu_norm::half::{bf16, f16};
use wgpu_norm::host;
use wgpu_norm::{
    Element, LayerNormConfig, NormContext, NormError, RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape,
    Tensor, reference,
};

use wgpu_norm_web::gpu::{noise, read, rel_err, storage};

wasm_bindgen_test_configure!(run_in_browser);

async fn context() -> NormContext {
    let ctx = NormContext::with_options_async(Default::default()).await.expect("a WebGPU adapter");
    let i = ctx.adapter_info();
    console_log!(
        "adapter: {:?} {:?} ({:?}), subgroups: {}",
        i.vendor,
        i.name,
        i.backend,
        ctx.uses_subgroups()
    );
    assert_eq!(i.backend, wgpu::Backend::BrowserWebGpu, "WebGPU, not a fallback");
    ctx
}

async fn rms_forward(rows: usize, cols: usize, seed: u64) {
    let ctx = context().await;
    let shape = Shape::new(rows, cols);
    let (x, g) = (noise(shape.elements(), seed, 0.0), noise(cols, seed + 1, 1.0));
    let cfg = RmsNormConfig::default();
    let out = host::rms_norm_forward_async(&ctx, &x, Some(&g), shape, &cfg).await.unwrap();
    let want = reference::rms_norm_forward(&x, Some(&g), shape, &cfg).unwrap();
    let e = rel_err(&out.y, &want.y);
    assert!(e < 1e-6, "seed {seed}, {rows}x{cols}: relative error {e:e}");
}

async fn layer_forward(rows: usize, cols: usize, seed: u64) {
    let ctx = context().await;
    let shape = Shape::new(rows, cols);
    // A large mean with a small spread: the case the corrected two-pass statistics are for.
    let x = noise(shape.elements(), seed, 1e3);
    let (g, b) = (noise(cols, seed + 1, 1.0), noise(cols, seed + 2, 0.0));
    let cfg = LayerNormConfig::default();
    let out = host::layer_norm_forward_async(&ctx, &x, Some(&g), Some(&b), shape, &cfg).await.unwrap();
    let want = reference::layer_norm_forward(&x, Some(&g), Some(&b), shape, &cfg).unwrap();
    let e = rel_err(&out.y, &want.y);
    assert!(e < 1e-6, "seed {seed}, {rows}x{cols}: relative error {e:e}");
}

async fn rms_backward(rows: usize, cols: usize, seed: u64) {
    let ctx = context().await;
    let shape = Shape::new(rows, cols);
    let (x, dy, g) = (
        noise(shape.elements(), seed, 0.0),
        noise(shape.elements(), seed + 1, 0.0),
        noise(cols, seed + 2, 1.0),
    );
    let cfg = RmsNormConfig::default();
    let out = host::rms_norm_backward_async(&ctx, &x, Some(&g), &dy, None, shape, &cfg).await.unwrap();
    let want = reference::rms_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap();
    let (ex, eg) = (rel_err(&out.dx, &want.dx), rel_err(&out.dgamma, &want.dgamma));
    assert!(ex < 1e-5 && eg < 1e-5, "seed {seed}, {rows}x{cols}: dx {ex:e}, dgamma {eg:e}");
}

async fn layer_backward(rows: usize, cols: usize, seed: u64) {
    let ctx = context().await;
    let shape = Shape::new(rows, cols);
    let (x, dy, g) = (
        noise(shape.elements(), seed, 0.5),
        noise(shape.elements(), seed + 1, 0.0),
        noise(cols, seed + 2, 1.0),
    );
    let cfg = LayerNormConfig::default();
    let out =
        host::layer_norm_backward_async(&ctx, &x, Some(&g), &dy, None, None, shape, &cfg).await.unwrap();
    let want = reference::layer_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap();
    let (ex, eg, eb) =
        (rel_err(&out.dx, &want.dx), rel_err(&out.dgamma, &want.dgamma), rel_err(&out.dbeta, &want.dbeta));
    assert!(
        ex < 1e-5 && eg < 1e-5 && eb < 1e-5,
        "seed {seed}, {rows}x{cols}: dx {ex:e}, dgamma {eg:e}, dbeta {eb:e}"
    );
}

#[wasm_bindgen_test]
async fn rms_norm_forward_1() {
    rms_forward(3, 1, 10).await;
}

#[wasm_bindgen_test]
async fn rms_norm_forward_7() {
    rms_forward(5, 7, 11).await;
}

#[wasm_bindgen_test]
async fn rms_norm_forward_1001() {
    rms_forward(9, 1001, 12).await;
}

#[wasm_bindgen_test]
async fn rms_norm_forward_4097() {
    rms_forward(2, 4097, 13).await;
}

#[wasm_bindgen_test]
async fn layer_norm_forward_1() {
    layer_forward(3, 1, 20).await;
}

#[wasm_bindgen_test]
async fn layer_norm_forward_7() {
    layer_forward(5, 7, 21).await;
}

#[wasm_bindgen_test]
async fn layer_norm_forward_1001() {
    layer_forward(9, 1001, 22).await;
}

#[wasm_bindgen_test]
async fn layer_norm_forward_4097() {
    layer_forward(2, 4097, 23).await;
}

#[wasm_bindgen_test]
async fn rms_norm_backward_7() {
    rms_backward(33, 7, 30).await;
}

#[wasm_bindgen_test]
async fn rms_norm_backward_4097() {
    rms_backward(3, 4097, 31).await;
}

#[wasm_bindgen_test]
async fn layer_norm_backward_1001() {
    layer_backward(17, 1001, 40).await;
}

#[wasm_bindgen_test]
async fn layer_norm_backward_4097() {
    layer_backward(3, 4097, 41).await;
}

/// More rows than one dispatch dimension holds: workgroups loop over row blocks.
#[wasm_bindgen_test]
async fn more_rows_than_a_dispatch_dimension() {
    rms_forward(70_000, 4, 50).await;
}

/// 16-bit storage, packed in u32 words (the browser has no shader-f16 here): within one
/// rounding of the storage type.
async fn half_forward<T: Element>(seed: u64, tol: f64) {
    let ctx = context().await;
    let shape = Shape::new(5, 1001);
    let x: Vec<T> = noise(shape.elements(), seed, 0.0).iter().map(|&v| T::from_f32(v)).collect();
    let cfg = RmsNormConfig::default();
    let out = host::rms_norm_forward_async(&ctx, &x, None, shape, &cfg).await.unwrap();
    let xf: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
    let want = reference::rms_norm_forward(&xf, None, shape, &cfg).unwrap();
    for (i, (g, w)) in out.y.iter().zip(&want.y).enumerate() {
        let d = (g.to_f64() - w).abs();
        assert!(d <= tol * (1.0 + w.abs()), "seed {seed}, element {i}: {} vs {w}", g.to_f64());
    }
}

#[wasm_bindgen_test]
async fn f16_packed_forward() {
    half_forward::<f16>(60, 1e-3).await;
}

#[wasm_bindgen_test]
async fn bf16_forward() {
    half_forward::<bf16>(61, 1e-2).await;
}

/// Fused residual add: h = x + residual written out, y = rmsnorm(h).
#[wasm_bindgen_test]
async fn fused_residual_add() {
    let ctx = context().await;
    let shape = Shape::new(6, 257);
    let (x, r) = (noise(shape.elements(), 70, 0.0), noise(shape.elements(), 71, 0.3));
    let (xb, rb) = (storage(&ctx, &x), storage(&ctx, &r));
    let (yb, hb) =
        (storage(&ctx, &vec![f32::NAN; shape.elements()]), storage(&ctx, &vec![f32::NAN; shape.elements()]));
    let args = RmsNormForward {
        residual: Some((&rb).into()),
        h: Some((&hb).into()),
        ..RmsNormForward::new(&xb, &yb)
    };
    let op = RmsNormForwardOp::new(&ctx, RmsNormConfig::default()).unwrap();
    let bound = op.bind_async(shape, &args).await.unwrap();
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    bound.encode(&mut enc);
    ctx.queue().submit([enc.finish()]);
    let h: Vec<f32> = x.iter().zip(&r).map(|(a, b)| a + b).collect();
    assert_eq!(read(&ctx, &hb).await.unwrap(), h, "seed 70: h = x + residual");
    let want = reference::rms_norm_forward(&h, None, shape, &RmsNormConfig::default()).unwrap();
    let e = rel_err(&read(&ctx, &yb).await.unwrap(), &want.y);
    assert!(e < 1e-6, "seed 70: relative error {e:e}");
}

/// A view of rows 96 elements apart: the view is normalized, the elements between rows stay.
#[wasm_bindgen_test]
async fn row_stride_view() {
    let ctx = context().await;
    let view = Shape::new(5, 64).with_row_stride(96);
    let x = noise(view.span(), 80, 0.0);
    let (xb, yb) = (storage(&ctx, &x), storage(&ctx, &vec![f32::NAN; view.span()]));
    let op = RmsNormForwardOp::new(&ctx, RmsNormConfig::default()).unwrap();
    let bound = op.bind_async(view, &RmsNormForward::new(&xb, &yb)).await.unwrap();
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    bound.encode(&mut enc);
    ctx.queue().submit([enc.finish()]);
    let y = read(&ctx, &yb).await.unwrap();
    for r in 0..view.rows {
        let row = &x[r * 96..r * 96 + 64];
        let want =
            reference::rms_norm_forward(row, None, Shape::new(1, 64), &RmsNormConfig::default()).unwrap();
        let e = rel_err(&y[r * 96..r * 96 + 64], &want.y);
        assert!(e < 1e-6, "seed 80, row {r}: relative error {e:e}");
        if r + 1 < view.rows {
            assert!(y[r * 96 + 64..(r + 1) * 96].iter().all(|v| v.is_nan()), "seed 80: wrote between rows");
        }
    }
}

/// WebGPU forbids a writable binding to alias another: in place is a typed error there.
#[wasm_bindgen_test]
async fn in_place_is_a_typed_error() {
    let ctx = context().await;
    let xb = storage(&ctx, &[1.0; 64]);
    let op = RmsNormForwardOp::new(&ctx, RmsNormConfig::default()).unwrap();
    let e = op.bind_async(Shape::new(1, 64), &RmsNormForward::new(&xb, &xb)).await.err();
    assert_eq!(e, Some(NormError::InPlaceOnWebGpu { written: "y", other: "x" }));
}

/// Bad input is a typed error in the browser too, never a WebGPU validation error.
#[wasm_bindgen_test]
async fn a_buffer_too_small_is_a_typed_error() {
    let ctx = context().await;
    let (xb, yb) = (storage(&ctx, &[1.0; 63]), storage(&ctx, &[0.0; 64]));
    let op = RmsNormForwardOp::new(&ctx, RmsNormConfig::default()).unwrap();
    let e = op.bind_async(Shape::new(1, 64), &RmsNormForward::new(&xb, &yb)).await.err();
    assert_eq!(e, Some(NormError::BufferTooSmall { what: "x", offset: 0, end: 256, size: 252 }));
}

/// A bound op rerun over fewer rows: those rows right, the rest untouched.
#[wasm_bindgen_test]
async fn set_rows_on_a_bound_op() {
    let ctx = context().await;
    let shape = Shape::new(8, 300);
    let x = noise(shape.elements(), 90, 0.0);
    let (xb, yb) = (storage(&ctx, &x), storage(&ctx, &vec![f32::NAN; shape.elements()]));
    let op = RmsNormForwardOp::new(&ctx, RmsNormConfig::default()).unwrap();
    let mut bound = op.bind_async(shape, &RmsNormForward::new(&xb, Tensor::from(&yb))).await.unwrap();
    bound.set_rows(ctx.queue(), 3).unwrap();
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    bound.encode(&mut enc);
    ctx.queue().submit([enc.finish()]);
    let y = read(&ctx, &yb).await.unwrap();
    let want =
        reference::rms_norm_forward(&x[..900], None, Shape::new(3, 300), &RmsNormConfig::default()).unwrap();
    let e = rel_err(&y[..900], &want.y);
    assert!(e < 1e-6, "seed 90: relative error {e:e}");
    assert!(y[900..].iter().all(|v| v.is_nan()), "seed 90: set_rows(3) wrote past its rows");
}
