//! The kernels on the browser's WebGPU (no subgroups there through wgpu 30: the
//! workgroup-memory reductions run), checked against the f64 reference compiled to wasm.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use wgpu_norm::half::{bf16, f16};
use wgpu_norm::host;
use wgpu_norm::{
    DType, Element, ExpectedCall, LayerNormConfig, LayerNormForward, LayerNormForwardOp, NormContext,
    NormError, ResidualAdd, RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape, Storage, Tensor, Tuning,
    reference,
};

use wgpu_norm_web::cases::{Case, run_case};
use wgpu_norm_web::gpu::{noise, poisoned, read, read_as, rel_err, storage};
use wgpu_norm_web::query::Query;
use wgpu_norm_web::timing::Clock;

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

/// LayerNorm's dx where its two terms cancel: every element at d = 2, the dominant element of
/// a row with one element 1e4 times the rest. Each such dx is checked to 1e-5 of the terms
/// it is formed from, with and without the forward's saved statistics (each finds the peak
/// element another way).
async fn layer_backward_cancelling(rows: usize, cols: usize, seed: u64) {
    let ctx = context().await;
    let shape = Shape::new(rows, cols);
    let mut x = noise(shape.elements(), seed, 0.0);
    let peak = |r: usize| r * cols + (7 * r) % cols;
    if cols > 2 {
        (0..rows).for_each(|r| x[peak(r)] *= 1e4);
    }
    let (dy, g) = (noise(shape.elements(), seed + 1, 0.0), noise(cols, seed + 2, 1.0));
    let cfg = LayerNormConfig::default();
    let fwd = host::layer_norm_forward_async(&ctx, &x, Some(&g), None, shape, &cfg).await.unwrap();
    let want = reference::layer_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap().dx;
    for saved in [false, true] {
        let (mean, rstd) = (saved.then_some(&fwd.mean[..]), saved.then_some(&fwd.rstd[..]));
        let dx = host::layer_norm_backward_async(&ctx, &x, Some(&g), &dy, mean, rstd, shape, &cfg)
            .await
            .unwrap()
            .dx;
        for r in 0..rows {
            let at = |i: usize| r * cols + i;
            let (v, u) = (|i| f64::from(x[at(i)]), |i| f64::from(dy[at(i)]) * f64::from(g[i]));
            let n = cols as f64;
            let mean_x = (0..cols).map(v).sum::<f64>() / n;
            let mean_u = (0..cols).map(u).sum::<f64>() / n;
            let var = (0..cols).map(|i| (v(i) - mean_x).powi(2)).sum::<f64>() / n;
            let rs = 1.0 / (var + f64::from(cfg.eps)).sqrt();
            let peaks = if cols == 2 { vec![at(0), at(1)] } else { vec![peak(r)] };
            for i in peaks {
                let m = i - r * cols;
                let others = || (0..cols).filter(move |&j| j != m);
                let mean_o = others().map(v).sum::<f64>() / (n - 1.0);
                let s2: f64 = others().map(|j| (v(j) - mean_o).powi(2)).sum();
                let t: f64 = others().map(|j| (u(j) * (v(j) - mean_o)).abs()).sum();
                let terms = rs.powi(3) / n
                    * ((u(m).abs() + mean_u.abs()) * (s2 + n * f64::from(cfg.eps))
                        + (v(m) - mean_x).abs() * t);
                let err = (f64::from(dx[i]) - want[i]).abs();
                assert!(
                    err <= 1e-5 * terms.max(want[i].abs()),
                    "seed {seed}, {rows}x{cols}, saved {saved}, row {r}: dx {} against {}, terms {terms:e}",
                    dx[i],
                    want[i]
                );
            }
        }
    }
}

#[wasm_bindgen_test]
async fn layer_norm_backward_2() {
    layer_backward_cancelling(64, 2, 42).await;
}

#[wasm_bindgen_test]
async fn layer_norm_backward_dominated_127() {
    layer_backward_cancelling(9, 127, 43).await;
}

/// Rows whose squares overflow f32 (|x| about 1e30) in both backwards without the forward's
/// saved statistics, on the register tile and streamed: each scales the row by a power of two
/// it finds itself (RMSNorm from the threads whose squares overflowed, LayerNorm from the
/// row's largest |x|).
#[wasm_bindgen_test]
async fn overflowing_rows_without_saved_statistics() {
    let ctx = context().await;
    for (i, cols) in [1001, 16384].into_iter().enumerate() {
        let shape = Shape::new(3, cols);
        let seed = 60 + 10 * i as u64;
        let (dy, g) = (noise(shape.elements(), seed, 0.0), noise(cols, seed + 1, 1.0));
        let scaled =
            |shift| noise(shape.elements(), seed + 2, shift).iter().map(|v| v * 1e30).collect::<Vec<f32>>();
        let (x, cfg) = (scaled(0.0), RmsNormConfig::default());
        let dx = host::rms_norm_backward_async(&ctx, &x, Some(&g), &dy, None, shape, &cfg).await.unwrap().dx;
        let e = rel_err(&dx, &reference::rms_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap().dx);
        assert!(e < 1e-5, "seed {seed}, 3x{cols}: RMSNorm dx relative error {e:e}");
        let (x, cfg) = (scaled(0.5), LayerNormConfig::default());
        let dx = host::layer_norm_backward_async(&ctx, &x, Some(&g), &dy, None, None, shape, &cfg)
            .await
            .unwrap()
            .dx;
        let e = rel_err(&dx, &reference::layer_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap().dx);
        assert!(e < 1e-5, "seed {seed}, 3x{cols}: LayerNorm dx relative error {e:e}");
    }
}

/// Few rows too long for a workgroup's register tile, split over workgroups by the GPU
/// rules a page gets: each row's segments summed, then finished (LayerNorm's where the
/// adapter allows its 9 storage buffers per stage).
#[wasm_bindgen_test]
async fn split_rows() {
    for (i, (rows, cols)) in [(1, 65536), (2, 20001), (5, 9000)].into_iter().enumerate() {
        rms_forward(rows, cols, 80 + i as u64).await;
        layer_forward(rows, cols, 90 + i as u64).await;
    }
}

/// Rows reduced through workgroup memory take one thread each from
/// `single_thread_rows_for(cols)` per workgroup of the grid (on the page's SwiftShader, 4
/// workgroups per core of `navigator.hardwareConcurrency`: from 64 rows of up to 1024
/// elements, 128 longer ones, on 2 cores), and several below: one count each side, and rows
/// that are streamed, not aligned for vector access.
#[wasm_bindgen_test]
async fn single_thread_rows() {
    let t = *context().await.tuning();
    // A GPU never takes the rule (0); a CPU adapter's forward and backward grids are the same.
    let from = |cols| match t.single_thread_rows_for(cols) * t.max_forward_groups {
        0 => 256,
        n => {
            assert_eq!(t.max_forward_groups, t.backward_groups, "{t:?}");
            n as usize
        }
    };
    let shapes = [(from(768) - 1, 768), (from(768), 768), (from(1001) + 44, 1001), (from(1025), 1025)];
    for (i, (rows, cols)) in shapes.into_iter().enumerate() {
        let seed = 100 + 10 * i as u64;
        rms_forward(rows, cols, seed).await;
        layer_forward(rows, cols, seed + 1).await;
        rms_backward(rows, cols, seed + 2).await;
        layer_backward(rows, cols, seed + 3).await;
    }
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
    // Made with its call, the op compiles when made and binding compiles nothing.
    let call = ExpectedCall::new(shape).with(&["residual", "h"]);
    let op = RmsNormForwardOp::with_calls_async(&ctx, RmsNormConfig::default(), &[call]).await.unwrap();
    let compiled = ctx.pipelines_compiled();
    let bound = op.bind_async(shape, &args).await.unwrap();
    assert_eq!(ctx.pipelines_compiled(), compiled, "binding the call the op was made with compiled");
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

/// Records `bound` into a new encoder and submits it.
fn run(ctx: &NormContext, bound: &wgpu_norm::BoundOp) {
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    bound.encode(&mut enc);
    ctx.queue().submit([enc.finish()]);
}

/// QK-norm of the q heads of a fused QKV tensor (5 tokens, 3 heads of 16), one dispatch:
/// every head normalized with the shared gamma, every element outside the heads untouched.
#[wasm_bindgen_test]
async fn heads_of_a_fused_qkv() {
    let ctx = context().await;
    let (tokens, heads, dim) = (5, 3, 16);
    let q = Shape::heads(tokens, heads, dim).with_row_stride(3 * heads * dim);
    let x = noise(q.span(), 100, 0.2);
    let g = noise(dim, 101, 1.0);
    let (xb, gb, yb) = (storage(&ctx, &x), storage(&ctx, &g), poisoned(&ctx, q.span()));
    let args = RmsNormForward { gamma: Some((&gb).into()), ..RmsNormForward::new(&xb, &yb) };
    let op = RmsNormForwardOp::new(&ctx, RmsNormConfig::default()).unwrap();
    run(&ctx, &op.bind_async(q, &args).await.unwrap());
    let y = read(&ctx, &yb).await.unwrap();
    let mut inside = vec![false; q.span()];
    for r in 0..q.rows {
        let at = q.row_start(r);
        let want = reference::rms_norm_forward(
            &x[at..at + dim],
            Some(&g),
            Shape::new(1, dim),
            &RmsNormConfig::default(),
        )
        .unwrap();
        let e = rel_err(&y[at..at + dim], &want.y);
        assert!(e < 1e-6, "seed 100, row {r}: relative error {e:e}");
        inside[at..at + dim].iter_mut().for_each(|v| *v = true);
    }
    assert!(y.iter().zip(&inside).all(|(v, i)| *i || v.is_nan()), "seed 100: wrote outside the q heads");
}

/// An f32 residual stream with a bf16 y (packed two to a word on WebGPU), y = rmsnorm(x + residual).
#[wasm_bindgen_test]
async fn f32_stream_with_a_bf16_output() {
    let ctx = context().await;
    let shape = Shape::new(4, 130);
    let (x, r) = (noise(shape.elements(), 110, 0.0), noise(shape.elements(), 111, 0.5));
    let (xb, rb) = (storage(&ctx, &x), storage(&ctx, &r));
    // Two bf16 NaNs to a word.
    let yb = storage(&ctx, &vec![f32::from_bits(0x7fc0_7fc0); shape.elements() / 2]);
    let hb = poisoned(&ctx, shape.elements());
    let args = RmsNormForward {
        residual: Some((&rb).into()),
        h: Some((&hb).into()),
        ..RmsNormForward::new(&xb, &yb)
    };
    let cfg =
        RmsNormConfig { storage: Storage { y: DType::BF16, ..Storage::default() }, ..Default::default() };
    run(&ctx, &RmsNormForwardOp::new(&ctx, cfg).unwrap().bind_async(shape, &args).await.unwrap());
    let h: Vec<f32> = x.iter().zip(&r).map(|(a, b)| a + b).collect();
    assert_eq!(read(&ctx, &hb).await.unwrap(), h, "seed 110: h in f32");
    let y: Vec<bf16> = read_as(&ctx, &yb).await.unwrap();
    let want = reference::rms_norm_forward(&h, None, shape, &cfg).unwrap();
    for (i, (g, w)) in y.iter().zip(&want.y).enumerate() {
        assert!(
            (g.to_f64() - w).abs() <= 2f64.powi(-8) * w.abs() + 1e-6,
            "seed 110: y[{i}] = {g}, reference {w}"
        );
    }
}

/// Post-norm add: y = residual + layernorm(x) * gamma + beta in one kernel.
#[wasm_bindgen_test]
async fn post_norm_add() {
    let ctx = context().await;
    let shape = Shape::new(3, 200);
    let (x, r) = (noise(shape.elements(), 120, 0.3), noise(shape.elements(), 121, 0.0));
    let (g, b) = (noise(shape.cols, 122, 1.0), noise(shape.cols, 123, 0.0));
    let (xb, rb, gb, bb, yb) = (
        storage(&ctx, &x),
        storage(&ctx, &r),
        storage(&ctx, &g),
        storage(&ctx, &b),
        poisoned(&ctx, shape.elements()),
    );
    let args = LayerNormForward {
        x: (&xb).into(),
        residual: Some((&rb).into()),
        gamma: Some((&gb).into()),
        beta: Some((&bb).into()),
        y: (&yb).into(),
        h: None,
        mean: None,
        rstd: None,
    };
    let cfg = LayerNormConfig { residual_add: ResidualAdd::AfterNorm, ..Default::default() };
    run(&ctx, &LayerNormForwardOp::new(&ctx, cfg).unwrap().bind_async(shape, &args).await.unwrap());
    let normed = reference::layer_norm_forward(&x, Some(&g), Some(&b), shape, &cfg).unwrap().y;
    let want: Vec<f64> = normed.iter().zip(&r).map(|(n, r)| n + f64::from(*r)).collect();
    let e = rel_err(&read(&ctx, &yb).await.unwrap(), &want);
    assert!(e < 1e-6, "seed 120: relative error {e:e}");
}

/// The page's query: shapes and launch knobs are taken, and what it does not know is named.
#[wasm_bindgen_test]
async fn page_query() {
    let ctx = context().await;
    let q = Query::parse("?shapes=4x768,1x4097&workgroup_size=64&group_partials=true").unwrap();
    assert_eq!(q.shapes, Some(vec![Shape::new(4, 768), Shape::new(1, 4097)]));
    let rules = *ctx.tuning();
    let t = q.tuning(rules).unwrap();
    assert_eq!((t.workgroup_size, t.group_partials), (64, true));
    assert_eq!(
        Tuning { workgroup_size: rules.workgroup_size, group_partials: rules.group_partials, ..t },
        rules
    );
    let no_knobs = Query::parse("").unwrap();
    assert!(!no_knobs.changes_tuning() && no_knobs.shapes.is_none());
    assert_eq!(no_knobs.tuning_b(rules), Ok(None));
    // Launch B: its knobs on top of the first launch's, which they leave alone.
    let ab = Query::parse("?workgroup_size=64&b.joint_walks=false&b.workgroup_size=32").unwrap();
    let a = ab.tuning(rules).unwrap();
    assert_eq!(a, Tuning { workgroup_size: 64, ..rules });
    assert_eq!(ab.tuning_b(a), Ok(Some(Tuning { workgroup_size: 32, joint_walks: false, ..a })));
    let e = Query::parse("?b.walks=false").and_then(|q| q.tuning_b(rules)).unwrap_err();
    assert!(e.contains("`walks`"), "{e}");
    for (query, named) in [
        ("?workgroup=64", "`workgroup`"),
        ("?group_partials=yes", "`yes`"),
        ("?shapes=4x", "`4x`"),
        ("?shapes=0x768", "`0x768`"),
        ("?register_quads", "`register_quads`"),
    ] {
        let e = Query::parse(query).and_then(|q| q.tuning(rules)).unwrap_err();
        assert!(e.contains(named), "{query}: {e}");
    }
}

/// A page case under two launches (the query's `b.` knobs): both checked, both timed.
#[wasm_bindgen_test]
async fn page_case_under_two_launches() {
    let ctx = context().await;
    let b = ctx.sibling(wgpu_norm::ContextOptions {
        tuning: Some(Tuning { single_thread_rows: 0, workgroup_size: 32, ..*ctx.tuning() }),
        ..Default::default()
    });
    for direction in wgpu_norm::Direction::ALL {
        let case = Case { norm: wgpu_norm::Norm::LayerNorm, direction, shape: Shape::new(300, 77) };
        let o = run_case(&ctx, Some(&b), case, Clock::of(&ctx), 130).await.unwrap();
        assert!(o.pass, "{}: error {:e}", case.name(), o.max_error);
        let b_times = o.b_times.expect("launch B timed");
        assert!(o.times.gpu_ms > 0.0 && b_times.gpu_ms > 0.0, "{o:?}");
    }
}
