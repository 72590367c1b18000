//! Shared by the integration tests: one context per reduction path (built once per test
//! binary), seeded inputs, and the comparisons the numerics bar asks for.
#![allow(dead_code)]

use std::sync::OnceLock;
use wgpu_norm::host;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use wgpu_norm::{ContextOptions, NormContext, Reduction, Shape};

/// The default context: subgroup reductions where the adapter has them (lavapipe does).
/// A missing adapter fails every test that uses it.
pub fn ctx() -> &'static NormContext {
    static CTX: OnceLock<NormContext> = OnceLock::new();
    CTX.get_or_init(|| NormContext::new().expect("no adapter: install mesa-vulkan-drivers"))
}

/// A context forced onto the workgroup-memory reduction.
pub fn ctx_workgroup() -> &'static NormContext {
    static CTX: OnceLock<NormContext> = OnceLock::new();
    CTX.get_or_init(|| {
        NormContext::with_options(ContextOptions { reduction: Reduction::Workgroup, ..Default::default() })
            .expect("no adapter: install mesa-vulkan-drivers")
    })
}

/// The test adapter's device with the launch a discrete GPU gets (a workgroup per long row,
/// multi-subgroup reductions, a grid per row block), so that path runs on lavapipe too.
pub fn ctx_gpu_launch() -> &'static NormContext {
    static CTX: OnceLock<NormContext> = OnceLock::new();
    CTX.get_or_init(|| {
        let base = ctx();
        let mut info = base.adapter_info().clone();
        info.device_type = wgpu::DeviceType::DiscreteGpu;
        let mut tuning = wgpu_norm::Tuning::for_device(&info, base.limits());
        // Still lavapipe underneath: keep its loop bound.
        tuning.max_loop_trips = base.tuning().max_loop_trips;
        let options = ContextOptions { tuning: Some(tuning), ..Default::default() };
        NormContext::from_device(base.device().clone(), base.queue().clone(), options)
    })
}

/// Both reduction paths, and the GPU launch, named.
pub fn contexts() -> [(&'static str, &'static NormContext); 3] {
    assert!(ctx().uses_subgroups(), "the test adapter should have subgroups");
    assert!(!ctx_workgroup().uses_subgroups());
    [("subgroup", ctx()), ("workgroup", ctx_workgroup()), ("gpu launch", ctx_gpu_launch())]
}

/// A buffer of `bytes` with `usage`.
pub fn buffer(c: &NormContext, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    c.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: bytes,
        usage,
        mapped_at_creation: false,
    })
}

/// A storage buffer of `bytes` that can be written and read back.
pub fn storage(c: &NormContext, bytes: u64) -> wgpu::Buffer {
    buffer(
        c,
        bytes,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
    )
}

/// Records with `f` into a new encoder and submits it.
pub fn submit(c: &NormContext, f: impl FnOnce(&mut wgpu::CommandEncoder)) {
    let mut enc = c.device().create_command_encoder(&Default::default());
    f(&mut enc);
    c.queue().submit([enc.finish()]);
}

/// The bytes of `buffer`, copied to a mappable buffer after everything already submitted.
pub fn read_bytes(device: &wgpu::Device, queue: &wgpu::Queue, buffer: &wgpu::Buffer) -> Vec<u8> {
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: buffer.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
    queue.submit([enc.finish()]);
    staging.slice(..).map_async(wgpu::MapMode::Read, |r| r.expect("map"));
    device.poll(wgpu::PollType::wait_indefinitely()).expect("poll");
    staging.slice(..).get_mapped_range().expect("mapped").to_vec()
}

/// Input distributions that break naive kernels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Input {
    Randn,
    /// -2.3 + 0.5 randn
    Shifted,
    /// 1e4 + randn: large mean, small variance.
    LargeMean,
    /// 1e-3 randn
    Small,
    /// 1e15 randn
    Huge,
    /// 1e-15 randn
    Tiny,
    /// Every element of a row the same (3.7 times the row number + 1).
    Constant,
    /// All zeros.
    Zeros,
    /// randn with one element of each row 1e5 times larger, at column 7 * row (mod cols): the
    /// first element of row 0.
    Dominated,
}

impl Input {
    pub const ALL: [Input; 9] = [
        Input::Randn,
        Input::Shifted,
        Input::LargeMean,
        Input::Small,
        Input::Huge,
        Input::Tiny,
        Input::Constant,
        Input::Zeros,
        Input::Dominated,
    ];
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn randn(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.sample::<f32, _>(StandardNormal)).collect()
}

pub fn input(rng: &mut StdRng, kind: Input, shape: Shape) -> Vec<f32> {
    let n = shape.elements();
    match kind {
        Input::Randn => randn(rng, n),
        Input::Shifted => randn(rng, n).iter().map(|v| -2.3 + 0.5 * v).collect(),
        Input::LargeMean => randn(rng, n).iter().map(|v| 1e4 + v).collect(),
        Input::Small => randn(rng, n).iter().map(|v| 1e-3 * v).collect(),
        Input::Huge => randn(rng, n).iter().map(|v| 1e15 * v).collect(),
        Input::Tiny => randn(rng, n).iter().map(|v| 1e-15 * v).collect(),
        Input::Constant => (0..n).map(|i| 3.7 * (i / shape.cols) as f32 + 1.0).collect(),
        Input::Zeros => vec![0.0; n],
        Input::Dominated => dominated(rng, shape, 1e5),
    }
}

/// randn with one element of each row `factor` times larger, at [`dominant_at`].
pub fn dominated(rng: &mut StdRng, shape: Shape, factor: f32) -> Vec<f32> {
    let mut v = randn(rng, shape.elements());
    for r in 0..shape.rows {
        v[dominant_at(shape, r)] *= factor;
    }
    v
}

/// Where [`dominated`] puts row `r`'s large element: column 7 * r (mod cols).
pub fn dominant_at(shape: Shape, r: usize) -> usize {
    r * shape.cols + (7 * r) % shape.cols
}

/// gamma around 1, beta around 0, random.
pub fn random_affine(rng: &mut StdRng, cols: usize) -> (Vec<f32>, Vec<f32>) {
    let g = randn(rng, cols).iter().map(|v| 1.0 + 0.25 * v).collect();
    let b = randn(rng, cols).iter().map(|v| 0.5 * v).collect();
    (g, b)
}

/// ||gpu - ref|| / ||ref|| (0 when both are 0).
pub fn rel_err(gpu: &[f32], want: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (g, w) in gpu.iter().zip(want) {
        num += (f64::from(*g) - w).powi(2);
        den += w * w;
    }
    if den == 0.0 { num.sqrt() } else { (num / den).sqrt() }
}

/// A bar for one output: relative norm error, and elementwise |gpu - ref| <= atol + rtol |ref|.
#[derive(Clone, Copy, Debug)]
pub struct Bar {
    pub rel: f64,
    pub atol: f64,
    pub rtol: f64,
}

pub const FORWARD: Bar = Bar { rel: 1e-6, atol: 1e-5, rtol: 1e-5 };
pub const DX: Bar = Bar { rel: 1e-5, atol: 1e-4, rtol: 1e-4 };

/// The bar for a column sum over `rows` rows whose terms have root-mean-square `term_rms`:
/// f32 summation error grows like sqrt(rows) times the size of a term.
pub fn column_sum_bar(rows: usize, term_rms: f64) -> Bar {
    Bar { rel: 1e-5, atol: 1e-6 * (rows as f64).sqrt() * term_rms.max(1e-30) * 10.0, rtol: 1e-5 }
}

/// Root mean square of the products a * b.
pub fn product_rms(a: &[f32], b: &[f64]) -> f64 {
    let s: f64 = a.iter().zip(b).map(|(a, b)| (f64::from(*a) * b).powi(2)).sum();
    (s / a.len().max(1) as f64).sqrt()
}

/// Asserts `gpu` meets `bar` against `want`; `context` (seed, shape, input) goes in the message.
#[track_caller]
pub fn check(what: &str, gpu: &[f32], want: &[f64], bar: Bar, context: &str) {
    check_at_scale(what, gpu, want, bar, 0.0, context)
}

/// Like [`check`], for an output formed by cancellation of terms of root-mean-square `terms`:
/// its error is measured against the larger of the output and those terms, since no f32
/// evaluation can do better than one rounding of the terms (RMSNorm's dx with one column is
/// r u (1 - r^2 x^2), almost all cancelled).
#[track_caller]
pub fn check_at_scale(what: &str, gpu: &[f32], want: &[f64], bar: Bar, terms: f64, context: &str) {
    assert_eq!(gpu.len(), want.len(), "{what}: length ({context})");
    for (i, (g, w)) in gpu.iter().zip(want).enumerate() {
        let g = f64::from(*g);
        let tol = bar.atol + bar.rtol * w.abs().max(terms);
        assert!(
            (g - w).abs() <= tol || (g.is_nan() && w.is_nan()),
            "{what}[{i}] = {g:e}, reference {w:e}, |diff| {:e} > {tol:e} ({context})",
            (g - w).abs()
        );
    }
    let wnorm = want.iter().map(|w| w * w).sum::<f64>().sqrt();
    let den = wnorm.max(terms * (want.len() as f64).sqrt());
    // The relative bar means something only where the reference is not all round-off.
    if den > 1e-30 {
        let num = gpu.iter().zip(want).map(|(g, w)| (f64::from(*g) - w).powi(2)).sum::<f64>();
        let e = num.sqrt() / den;
        assert!(e <= bar.rel, "{what}: relative error {e:e} > {:e} ({context})", bar.rel);
    }
}

/// Root mean square of `v`.
pub fn rms(v: &[f64]) -> f64 {
    (v.iter().map(|w| w * w).sum::<f64>() / v.len().max(1) as f64).sqrt()
}

/// One GPU-vs-reference case.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub shape: Shape,
    pub input: Input,
    pub eps: f32,
    pub seed: u64,
    /// Pass the forward's saved statistics to backward (else backward recomputes them).
    pub saved: bool,
    /// With gamma (and beta for LayerNorm), else without.
    pub affine: bool,
}

impl Case {
    pub fn new(rows: usize, cols: usize, input: Input, eps: f32, seed: u64) -> Self {
        Case { shape: Shape::new(rows, cols), input, eps, seed, saved: true, affine: true }
    }
}

/// Root mean square of `v`, or 1 where it is 0: the scale of an elementwise tolerance.
fn scale_of(v: &[f64]) -> f64 {
    let r = rms(v);
    if r > 0.0 { r } else { 1.0 }
}

/// Root mean square of rstd[row] * gamma[j] * dy[row, j]: the size of the terms dx is
/// formed from.
fn dx_terms(rstd: &[f64], gamma: Option<&[f32]>, dy: &[f32], cols: usize) -> f64 {
    let s: f64 = dy
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let g = gamma.map_or(1.0, |g| f64::from(g[i % cols]));
            (rstd[i / cols] * g * f64::from(*d)).powi(2)
        })
        .sum();
    (s / dy.len() as f64).sqrt()
}

/// `bar` with its absolute part scaled to the size of the reference values.
fn scaled(bar: Bar, want: &[f64]) -> Bar {
    Bar { atol: bar.atol * scale_of(want), ..bar }
}

const STATS: Bar = Bar { rel: 1e-6, atol: 0.0, rtol: 1e-5 };

/// RMSNorm forward and backward of `case` on `ctx` against the reference.
pub fn check_rms(ctx: &NormContext, label: &str, case: &Case, placement: wgpu_norm::EpsPlacement) {
    use wgpu_norm::{RmsNormConfig, reference};
    let Case { shape, input: kind, eps, seed, saved, affine } = *case;
    let mut r = rng(seed);
    let x = input(&mut r, kind, shape);
    let dy = randn(&mut r, shape.elements());
    let (g, _) = random_affine(&mut r, shape.cols);
    let gamma = affine.then_some(&g[..]);
    let cfg = RmsNormConfig { eps, eps_placement: placement, ..Default::default() };
    let context = format!("rms_norm, {label}, {case:?}, {placement:?}");
    let out = host::rms_norm_forward(ctx, &x, gamma, shape, &cfg).expect(&context);
    let want = reference::rms_norm_forward(&x, gamma, shape, &cfg).unwrap();
    check("y", &out.y, &want.y, scaled(FORWARD, &want.y), &context);
    check("rstd", &out.rstd, &want.rstd, STATS, &context);
    let grads = host::rms_norm_backward(ctx, &x, gamma, &dy, saved.then_some(&out.rstd[..]), shape, &cfg)
        .expect(&context);
    let want_grads = reference::rms_norm_backward(&x, gamma, &dy, shape, &cfg).unwrap();
    let terms = dx_terms(&want.rstd, gamma, &dy, shape.cols);
    check_at_scale("dx", &grads.dx, &want_grads.dx, DX, terms, &context);
    let want = want_grads;
    let xhat = reference::rms_norm_forward(&x, None, shape, &cfg).unwrap().y;
    let bar = column_sum_bar(shape.rows, product_rms(&dy, &xhat));
    check("dgamma", &grads.dgamma, &want.dgamma, bar, &context);
}

/// LayerNorm forward and backward of `case` on `ctx` against the reference.
pub fn check_layer(ctx: &NormContext, label: &str, case: &Case) {
    use wgpu_norm::{LayerNormConfig, reference};
    let Case { shape, input: kind, eps, seed, saved, affine } = *case;
    let mut r = rng(seed);
    let x = input(&mut r, kind, shape);
    let dy = randn(&mut r, shape.elements());
    let (g, b) = random_affine(&mut r, shape.cols);
    let (gamma, beta) = (affine.then_some(&g[..]), affine.then_some(&b[..]));
    let cfg = LayerNormConfig { eps, ..Default::default() };
    let context = format!("layer_norm, {label}, {case:?}");
    let out = host::layer_norm_forward(ctx, &x, gamma, beta, shape, &cfg).expect(&context);
    let want = reference::layer_norm_forward(&x, gamma, beta, shape, &cfg).unwrap();
    check("y", &out.y, &want.y, scaled(FORWARD, &want.y), &context);
    // The mean's error matters relative to the spread of x, not to the mean (near 0 for randn).
    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let mean_bar = Bar { rel: f64::INFINITY, atol: 1e-6 * scale_of(&x64), rtol: 1e-6 };
    check("mean", &out.mean, &want.mean, mean_bar, &context);
    check("rstd", &out.rstd, &want.rstd, STATS, &context);
    let (mean, rstd) = (saved.then_some(&out.mean[..]), saved.then_some(&out.rstd[..]));
    let grads = host::layer_norm_backward(ctx, &x, gamma, &dy, mean, rstd, shape, &cfg).expect(&context);
    let want_grads = reference::layer_norm_backward(&x, gamma, &dy, shape, &cfg).unwrap();
    let terms = dx_terms(&want.rstd, gamma, &dy, shape.cols);
    check_at_scale("dx", &grads.dx, &want_grads.dx, DX, terms, &context);
    let want = want_grads;
    let xhat = reference::layer_norm_forward(&x, None, None, shape, &cfg).unwrap().y;
    let bar = column_sum_bar(shape.rows, product_rms(&dy, &xhat));
    check("dgamma", &grads.dgamma, &want.dgamma, bar, &context);
    let ones = vec![1.0; dy.len()];
    let bar = column_sum_bar(shape.rows, product_rms(&dy, &ones));
    check("dbeta", &grads.dbeta, &want.dbeta, bar, &context);
}
