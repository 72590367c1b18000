//! What inference engines use, through the encode API on the crate's own device: fused
//! residual add (with h written out, and the gradient arriving on h), the gamma offset,
//! partial RMSNorm, in-place outputs, row strides (per-head QK-norm), f32 parameters with
//! 16-bit activations, and several threads encoding at once.

mod common;

use common::{DX, FORWARD, check, check_at_scale, ctx, randn, rng, submit, upload};
use wgpu_norm::half::{bf16, f16};
use wgpu_norm::host;
use wgpu_norm::{
    DType, Element, LayerNormBackward, LayerNormBackwardOp, LayerNormConfig, LayerNormForward,
    LayerNormForwardOp, NormContext, RmsNormBackward, RmsNormBackwardOp, RmsNormConfig, RmsNormForward,
    RmsNormForwardOp, Shape, Storage, Tensor, reference,
};

fn nan_buffer<T: Element>(c: &NormContext, len: usize) -> wgpu::Buffer {
    upload(c, &vec![T::nan(); len])
}

fn read<T: Element>(c: &NormContext, b: &wgpu::Buffer, len: usize) -> Vec<T> {
    let bytes = common::read_bytes(c.device(), c.queue(), b);
    bytemuck::pod_collect_to_vec(&bytes[..len * std::mem::size_of::<T>()])
}

fn widen<T: Element>(v: &[T]) -> Vec<f64> {
    v.iter().map(|e| e.to_f64()).collect()
}

fn narrow<T: Element>(v: &[f32]) -> Vec<T> {
    v.iter().map(|&e| T::from_f32(e)).collect()
}

/// Forward with residual (h written out) then backward with the gradient arriving on h,
/// for both norms, in dtype T; compared with the reference on h = x + residual.
fn fused_residual<T: Element>(shape: Shape, seed: u64, tol: f64) {
    let c = ctx();
    let n = shape.elements();
    let mut r = rng(seed);
    let (x, res, dy, dh): (Vec<T>, Vec<T>, Vec<T>, Vec<T>) = (
        narrow(&randn(&mut r, n)),
        narrow(&randn(&mut r, n)),
        narrow(&randn(&mut r, n)),
        narrow(&randn(&mut r, n)),
    );
    let g: Vec<T> = narrow(&randn(&mut r, shape.cols));
    let h64: Vec<f64> = widen(&x).iter().zip(widen(&res)).map(|(a, b)| a + b).collect();
    let context = format!("{:?}, seed {seed}, {shape:?}", T::DTYPE);
    let storage = Storage::uniform(T::DTYPE);
    let (xb, rb, gb, dyb, dhb) =
        (upload(c, &x), upload(c, &res), upload(c, &g), upload(c, &dy), upload(c, &dh));
    for norm in ["rms", "layer"] {
        let (y, h, dx) = (nan_buffer::<T>(c, n), nan_buffer::<T>(c, n), nan_buffer::<T>(c, n));
        let (mean, rstd) = (nan_buffer::<f32>(c, shape.rows), nan_buffer::<f32>(c, shape.rows));
        let rms = RmsNormConfig { storage, ..Default::default() };
        let ln = LayerNormConfig { storage, ..Default::default() };
        submit(c, |enc| {
            if norm == "rms" {
                let f = RmsNormForward {
                    x: (&xb).into(),
                    residual: Some((&rb).into()),
                    gamma: Some((&gb).into()),
                    y: (&y).into(),
                    h: Some((&h).into()),
                    rstd: Some((&rstd).into()),
                };
                RmsNormForwardOp::new(c, rms).unwrap().encode(enc, shape, &f).unwrap();
                let b = RmsNormBackward {
                    x: (&h).into(),
                    gamma: Some((&gb).into()),
                    dy: (&dyb).into(),
                    dh: Some((&dhb).into()),
                    rstd: Some((&rstd).into()),
                    dx: (&dx).into(),
                    dgamma: None,
                    workspace: None,
                };
                RmsNormBackwardOp::new(c, rms).unwrap().encode(enc, shape, &b).unwrap();
            } else {
                let f = LayerNormForward {
                    x: (&xb).into(),
                    residual: Some((&rb).into()),
                    gamma: Some((&gb).into()),
                    beta: None,
                    y: (&y).into(),
                    h: Some((&h).into()),
                    mean: Some((&mean).into()),
                    rstd: Some((&rstd).into()),
                };
                LayerNormForwardOp::new(c, ln).unwrap().encode(enc, shape, &f).unwrap();
                let b = LayerNormBackward {
                    x: (&h).into(),
                    gamma: Some((&gb).into()),
                    dy: (&dyb).into(),
                    dh: Some((&dhb).into()),
                    mean: Some((&mean).into()),
                    rstd: Some((&rstd).into()),
                    dx: (&dx).into(),
                    dgamma: None,
                    dbeta: None,
                    workspace: None,
                };
                LayerNormBackwardOp::new(c, ln).unwrap().encode(enc, shape, &b).unwrap();
            }
        });
        let (y, h, dx) = (read::<T>(c, &y, n), read::<T>(c, &h, n), read::<T>(c, &dx, n));
        let g64 = widen(&g);
        let h_stored = widen(&h);
        let (want_y, want_dx) = if norm == "rms" {
            let y = reference::rms_norm_forward(&h64, Some(&g64), shape, &rms).unwrap().y;
            (y, reference::rms_norm_backward(&h_stored, Some(&g64), &widen(&dy), shape, &rms).unwrap().dx)
        } else {
            let y = reference::layer_norm_forward(&h64, Some(&g64), None, shape, &ln).unwrap().y;
            (y, reference::layer_norm_backward(&h_stored, Some(&g64), &widen(&dy), shape, &ln).unwrap().dx)
        };
        let want_dx: Vec<f64> = want_dx.iter().zip(widen(&dh)).map(|(a, b)| a + b).collect();
        let ctx_n = format!("{norm}, {context}");
        let close = |what: &str, got: &[T], want: &[f64]| {
            for (i, (a, b)) in got.iter().zip(want).enumerate() {
                let a = a.to_f64();
                assert!(
                    (a - b).abs() <= tol * (1.0 + b.abs()),
                    "{what}[{i}] = {a:e}, reference {b:e} ({ctx_n})"
                );
            }
        };
        close("y", &y, &want_y);
        close("h", &h, &h64);
        close("dx", &dx, &want_dx);
    }
}

#[test]
fn fused_residual_add_forward_and_backward() {
    for (i, &(rows, cols)) in [(3, 1), (5, 7), (4, 1000), (2, 4097), (2, 20_000)].iter().enumerate() {
        fused_residual::<f32>(Shape::new(rows, cols), 10 + i as u64, 1e-5);
        fused_residual::<bf16>(Shape::new(rows, cols), 20 + i as u64, 2e-2);
        fused_residual::<f16>(Shape::new(rows, cols), 30 + i as u64, 5e-3);
    }
}

/// y = x * (1 + gamma) with the 1 added in f32, and partial RMSNorm, forward and backward.
#[test]
fn gamma_offset_and_partial_rms_norm() {
    let c = ctx();
    for (i, &(rows, cols, p)) in
        [(3, 8, 0.25_f32), (4, 1000, 0.5), (2, 4097, 0.1), (2, 20_000, 0.01), (3, 5, 0.01)].iter().enumerate()
    {
        let shape = Shape::new(rows, cols);
        let mut r = rng(50 + i as u64);
        let (x, dy) = (randn(&mut r, shape.elements()), randn(&mut r, shape.elements()));
        let g: Vec<f32> = randn(&mut r, cols).iter().map(|v| 0.01 * v).collect();
        let context = format!("{shape:?}, p {p}");
        let cfg = RmsNormConfig { gamma_offset: 1.0, partial: Some(p), ..Default::default() };
        let out = host::rms_norm_forward(c, &x, Some(&g), shape, &cfg).unwrap();
        let want = reference::rms_norm_forward(&x, Some(&g), shape, &cfg).unwrap();
        check("y", &out.y, &want.y, FORWARD, &context);
        let grads = host::rms_norm_backward(c, &x, Some(&g), &dy, None, shape, &cfg).unwrap();
        let wg = reference::rms_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap();
        check_at_scale("dx", &grads.dx, &wg.dx, DX, 1.0, &context);
        let ln = LayerNormConfig { gamma_offset: 1.0, ..Default::default() };
        let out = host::layer_norm_forward(c, &x, Some(&g), None, shape, &ln).unwrap();
        let want = reference::layer_norm_forward(&x, Some(&g), None, shape, &ln).unwrap();
        check("ln y", &out.y, &want.y, FORWARD, &context);
    }
    // (1 + gamma) in f32: a bf16 gamma of 1e-3 would vanish next to 1 in bf16.
    let shape = Shape::new(1, 4);
    let x = [bf16::from_f32(1.0); 4];
    let g = [bf16::from_f32(1e-2); 4];
    let cfg = RmsNormConfig { gamma_offset: 1.0, eps: 0.0, ..Default::default() };
    let out = host::rms_norm_forward(c, &x, Some(&g), shape, &cfg).unwrap();
    assert_eq!(out.y[0], bf16::from_f32(1.0 + g[0].to_f32()));
}

/// y may be x and dx may be dy: the aliased results equal the out-of-place ones bit for bit.
fn in_place<T: Element + PartialEq + std::fmt::Debug>(shape: Shape, seed: u64) {
    let c = ctx();
    let n = shape.elements();
    let mut r = rng(seed);
    let (x, dy): (Vec<T>, Vec<T>) = (narrow(&randn(&mut r, n)), narrow(&randn(&mut r, n)));
    let storage = Storage::uniform(T::DTYPE);
    for norm in ["rms", "layer"] {
        let run = |aliased: bool| -> (Vec<T>, Vec<T>) {
            let (xb, dyb) = (upload(c, &x), upload(c, &dy));
            let (yb, dxb) = (nan_buffer::<T>(c, n), nan_buffer::<T>(c, n));
            let (y_t, dx_t): (Tensor, Tensor) =
                if aliased { ((&xb).into(), (&dyb).into()) } else { ((&yb).into(), (&dxb).into()) };
            // Backward reads the original x: run it first, then the forward overwrites x.
            submit(c, |enc| {
                if norm == "rms" {
                    let cfg = RmsNormConfig { storage, ..Default::default() };
                    let b = RmsNormBackward {
                        x: (&xb).into(),
                        gamma: None,
                        dy: (&dyb).into(),
                        dh: None,
                        rstd: None,
                        dx: dx_t,
                        dgamma: None,
                        workspace: None,
                    };
                    RmsNormBackwardOp::new(c, cfg).unwrap().encode(enc, shape, &b).unwrap();
                    let f = RmsNormForward {
                        x: (&xb).into(),
                        residual: None,
                        gamma: None,
                        y: y_t,
                        h: None,
                        rstd: None,
                    };
                    RmsNormForwardOp::new(c, cfg).unwrap().encode(enc, shape, &f).unwrap();
                } else {
                    let cfg = LayerNormConfig { storage, ..Default::default() };
                    let b = LayerNormBackward {
                        x: (&xb).into(),
                        gamma: None,
                        dy: (&dyb).into(),
                        dh: None,
                        mean: None,
                        rstd: None,
                        dx: dx_t,
                        dgamma: None,
                        dbeta: None,
                        workspace: None,
                    };
                    LayerNormBackwardOp::new(c, cfg).unwrap().encode(enc, shape, &b).unwrap();
                    let f = LayerNormForward {
                        x: (&xb).into(),
                        residual: None,
                        gamma: None,
                        beta: None,
                        y: y_t,
                        h: None,
                        mean: None,
                        rstd: None,
                    };
                    LayerNormForwardOp::new(c, cfg).unwrap().encode(enc, shape, &f).unwrap();
                }
            });
            if aliased { (read(c, &xb, n), read(c, &dyb, n)) } else { (read(c, &yb, n), read(c, &dxb, n)) }
        };
        let (out_of_place, aliased) = (run(false), run(true));
        let bits = |v: &[T]| bytemuck::cast_slice::<T, u8>(v).to_vec();
        assert_eq!(bits(&aliased.0), bits(&out_of_place.0), "{norm} y, {:?}, {shape:?}", T::DTYPE);
        assert_eq!(bits(&aliased.1), bits(&out_of_place.1), "{norm} dx, {:?}, {shape:?}", T::DTYPE);
    }
}

#[test]
fn in_place_equals_out_of_place() {
    for (i, &(rows, cols)) in [(3, 1), (5, 7), (4, 1000), (2, 20_001)].iter().enumerate() {
        in_place::<f32>(Shape::new(rows, cols), 70 + i as u64);
        in_place::<bf16>(Shape::new(rows, cols), 80 + i as u64);
        in_place::<f16>(Shape::new(rows, cols), 90 + i as u64);
    }
}

/// Per-head QK-norm on a fused QKV tensor: one head's rows are spaced 3 x heads x head_dim
/// apart; normalized in place, every element outside the view is left as it was.
#[test]
fn row_stride_views_normalize_in_place() {
    let c = ctx();
    let (tokens, heads, head_dim) = (5, 4, 64);
    let width = 3 * heads * head_dim;
    let qkv: Vec<f32> = randn(&mut rng(3), tokens * width);
    let buf = upload(c, &qkv);
    let g: Vec<f32> = randn(&mut rng(4), head_dim);
    let gb = upload(c, &g);
    let shape = Shape::new(tokens, head_dim).with_row_stride(width);
    // Normalize K of head 2: columns [heads * head_dim + 2 * head_dim, + head_dim).
    let first = heads * head_dim + 2 * head_dim;
    let cfg = RmsNormConfig::default();
    submit(c, |enc| {
        let view = Tensor::new(&buf, 4 * first as u64);
        let f = RmsNormForward {
            x: view,
            residual: None,
            gamma: Some((&gb).into()),
            y: view,
            h: None,
            rstd: None,
        };
        RmsNormForwardOp::new(c, cfg).unwrap().encode(enc, shape, &f).unwrap();
    });
    let got = read::<f32>(c, &buf, qkv.len());
    let rows: Vec<f32> = (0..tokens).flat_map(|t| qkv[t * width + first..][..head_dim].to_vec()).collect();
    let want = reference::rms_norm_forward(&rows, Some(&g), Shape::new(tokens, head_dim), &cfg).unwrap();
    for t in 0..tokens {
        for j in 0..width {
            let (i, v) = (t * width + j, got[t * width + j]);
            if (first..first + head_dim).contains(&j) {
                let w = want.y[t * head_dim + j - first];
                assert!((f64::from(v) - w).abs() <= 1e-5 * (1.0 + w.abs()), "token {t} col {j}: {v} vs {w}");
            } else {
                assert_eq!(v.to_bits(), qkv[i].to_bits(), "token {t} col {j} outside the view changed");
            }
        }
    }
    // A stride below the row length is an error.
    let e =
        host::rms_norm_forward(c, &qkv[..8], None, Shape::new(2, 4).with_row_stride(3), &cfg).unwrap_err();
    assert!(matches!(e, wgpu_norm::NormError::InvalidStride { cols: 4, stride: 3 }), "{e}");
}

/// gamma and beta in f32 with f16 activations (tests/mixed_dtypes.rs checks every mix).
#[test]
fn f32_params_with_16_bit_activations() {
    let c = ctx();
    let shape = Shape::new(3, 257);
    let x: Vec<f16> = narrow(&randn(&mut rng(5), shape.elements()));
    let g = randn(&mut rng(6), shape.cols);
    let b = randn(&mut rng(7), shape.cols);
    let (xb, gb, bb, yb) =
        (upload(c, &x), upload(c, &g), upload(c, &b), nan_buffer::<f16>(c, shape.elements()));
    let cfg = LayerNormConfig {
        storage: Storage::uniform(DType::F16).with_params(DType::F32),
        ..Default::default()
    };
    submit(c, |enc| {
        let f = LayerNormForward {
            x: (&xb).into(),
            residual: None,
            gamma: Some((&gb).into()),
            beta: Some((&bb).into()),
            y: (&yb).into(),
            h: None,
            mean: None,
            rstd: None,
        };
        LayerNormForwardOp::new(c, cfg).unwrap().encode(enc, shape, &f).unwrap();
    });
    let y = read::<f16>(c, &yb, shape.elements());
    let want =
        reference::layer_norm_forward(&widen(&x), Some(&widen(&g)), Some(&widen(&b)), shape, &cfg).unwrap();
    for (a, w) in y.iter().zip(&want.y) {
        assert!((a.to_f64() - w).abs() <= 1e-3 * (1.0 + w.abs()), "{a} vs {w}");
    }
}

/// The context is Send + Sync: threads encode and run on one device at once.
#[test]
fn threads_share_one_context() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<NormContext>();
    let c = ctx();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            s.spawn(move || {
                for k in 0..5u64 {
                    let shape = Shape::new(3 + t as usize, 100 + 37 * k as usize);
                    let x = randn(&mut rng(1000 * t + k), shape.elements());
                    let context = format!("thread {t}, run {k}");
                    if (t + k) % 2 == 0 {
                        let out =
                            host::rms_norm_forward(c, &x, None, shape, &RmsNormConfig::default()).unwrap();
                        let want =
                            reference::rms_norm_forward(&x, None, shape, &RmsNormConfig::default()).unwrap();
                        check("y", &out.y, &want.y, FORWARD, &context);
                    } else {
                        let cfg = LayerNormConfig::default();
                        let out = host::layer_norm_forward(c, &x, None, None, shape, &cfg).unwrap();
                        let want = reference::layer_norm_forward(&x, None, None, shape, &cfg).unwrap();
                        check("y", &out.y, &want.y, FORWARD, &context);
                    }
                }
            });
        }
    });
}

/// Backward on strided views (dy and dx spaced like x), for both norms, and LayerNorm's
/// backward with a gamma offset.
#[test]
fn row_stride_and_gamma_offset_backward() {
    let c = ctx();
    let (rows, cols, stride, first) = (6, 100, 384, 128);
    let shape = Shape::new(rows, cols).with_row_stride(stride);
    let span = (rows - 1) * stride + cols;
    let total = first + span + 7;
    let mut r = rng(11);
    let (xs, dys) = (randn(&mut r, total), randn(&mut r, total));
    let g: Vec<f32> = randn(&mut r, cols).iter().map(|v| 0.1 * v).collect();
    let gather = |v: &[f32]| -> Vec<f32> {
        (0..rows).flat_map(|t| v[first + t * stride..][..cols].to_vec()).collect()
    };
    let (x, dy) = (gather(&xs), gather(&dys));
    let (xb, dyb, gb) = (upload(c, &xs), upload(c, &dys), upload(c, &g));
    let off = 4 * first as u64;
    for norm in ["rms", "layer"] {
        let dxb = upload(c, &vec![777.0_f32; total]);
        let rms = RmsNormConfig { gamma_offset: 1.0, ..Default::default() };
        let ln = LayerNormConfig { gamma_offset: 1.0, ..Default::default() };
        submit(c, |enc| {
            if norm == "rms" {
                let b = RmsNormBackward {
                    x: Tensor::new(&xb, off),
                    gamma: Some((&gb).into()),
                    dy: Tensor::new(&dyb, off),
                    dh: None,
                    rstd: None,
                    dx: Tensor::new(&dxb, off),
                    dgamma: None,
                    workspace: None,
                };
                RmsNormBackwardOp::new(c, rms).unwrap().encode(enc, shape, &b).unwrap();
            } else {
                let b = LayerNormBackward {
                    x: Tensor::new(&xb, off),
                    gamma: Some((&gb).into()),
                    dy: Tensor::new(&dyb, off),
                    dh: None,
                    mean: None,
                    rstd: None,
                    dx: Tensor::new(&dxb, off),
                    dgamma: None,
                    dbeta: None,
                    workspace: None,
                };
                LayerNormBackwardOp::new(c, ln).unwrap().encode(enc, shape, &b).unwrap();
            }
        });
        let got = read::<f32>(c, &dxb, total);
        let dense = Shape::new(rows, cols);
        let want = if norm == "rms" {
            reference::rms_norm_backward(&x, Some(&g), &dy, dense, &rms).unwrap().dx
        } else {
            reference::layer_norm_backward(&x, Some(&g), &dy, dense, &ln).unwrap().dx
        };
        check_at_scale(&format!("{norm} dx"), &gather(&got), &want, DX, 1.0, norm);
        for (i, v) in got.iter().enumerate() {
            let inside = i >= first && (i - first) % stride < cols && (i - first) / stride < rows;
            if !inside {
                assert_eq!(*v, 777.0, "{norm}: element {i} outside the view was written");
            }
        }
    }
}
