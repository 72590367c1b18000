//! Shared by the integration tests: one context per reduction path (built once per test
//! binary), seeded inputs, and the comparisons the numerics bar asks for.
#![allow(dead_code)]

use std::sync::OnceLock;
use wgpu_norm::host;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use wgpu_norm::half::{bf16, f16};
use wgpu_norm::{
    ContextOptions, DType, F16Path, LayerNormBackward, LayerNormBackwardOp, LayerNormConfig,
    LayerNormForward, LayerNormForwardOp, NormContext, Reduction, RmsNormBackward, RmsNormBackwardOp,
    RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape, Tensor,
};

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
        ctx().sibling(ContextOptions { reduction: Reduction::Workgroup, ..Default::default() })
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
        base.sibling(ContextOptions { tuning: Some(tuning), ..Default::default() })
    })
}

/// A context whose f16 tensors are packed in u32 words, as on adapters without SHADER_F16.
pub fn ctx_packed_f16() -> &'static NormContext {
    static CTX: OnceLock<NormContext> = OnceLock::new();
    CTX.get_or_init(|| ctx().sibling(ContextOptions { f16: F16Path::Packed, ..Default::default() }))
}

/// Each way the adapter can access f16, named. Without SHADER_F16 the default context is
/// the packed one, and a second packed context would compile the same pipelines again.
pub fn f16_paths() -> Vec<(&'static str, &'static NormContext)> {
    let has_f16 = ctx().device().features().contains(wgpu::Features::SHADER_F16);
    // Native exactly where the adapter has SHADER_F16 (lavapipe does, SwiftShader does not).
    assert_eq!(ctx().uses_native_f16(), has_f16, "{}", ctx().adapter_info().name);
    assert!(!ctx_packed_f16().uses_native_f16());
    if has_f16 { vec![("native", ctx()), ("packed", ctx_packed_f16())] } else { vec![("packed", ctx())] }
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

/// A storage buffer holding `data` (padded to whole words), that can be read back.
pub fn upload<T: wgpu_norm::Element>(c: &NormContext, data: &[T]) -> wgpu::Buffer {
    use wgpu::util::DeviceExt as _;
    let mut bytes = bytemuck::cast_slice::<T, u8>(data).to_vec();
    bytes.resize(bytes.len().next_multiple_of(4).max(4), 0);
    c.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: &bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    })
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
pub fn scaled(bar: Bar, want: &[f64]) -> Bar {
    Bar { atol: bar.atol * scale_of(want), ..bar }
}

const STATS: Bar = Bar { rel: 1e-6, atol: 0.0, rtol: 1e-5 };

/// The rows, gradient and affine parameters of a GPU-vs-reference check.
pub struct Inputs<'a> {
    pub shape: Shape,
    pub x: &'a [f32],
    pub dy: &'a [f32],
    pub gamma: Option<&'a [f32]>,
    pub beta: Option<&'a [f32]>,
    /// Pass the forward's saved statistics to backward (else backward recomputes them).
    pub saved: bool,
}

/// RMSNorm forward and backward of `case` on `ctx` against the reference.
pub fn check_rms(ctx: &NormContext, label: &str, case: &Case, placement: wgpu_norm::EpsPlacement) {
    let Case { shape, input: kind, eps, seed, saved, affine } = *case;
    let mut r = rng(seed);
    let x = input(&mut r, kind, shape);
    let dy = randn(&mut r, shape.elements());
    let (g, _) = random_affine(&mut r, shape.cols);
    let cfg = RmsNormConfig { eps, eps_placement: placement, ..Default::default() };
    let inputs = Inputs { shape, x: &x, dy: &dy, gamma: affine.then_some(&g[..]), beta: None, saved };
    check_rms_on(ctx, &inputs, &cfg, &format!("rms_norm, {label}, {case:?}, {placement:?}"));
}

/// RMSNorm forward and backward of `inputs` on `ctx` against the reference.
pub fn check_rms_on(ctx: &NormContext, inputs: &Inputs<'_>, cfg: &RmsNormConfig, context: &str) {
    use wgpu_norm::reference;
    let Inputs { shape, x, dy, gamma, saved, .. } = *inputs;
    let out = host::rms_norm_forward(ctx, x, gamma, shape, cfg).expect(context);
    let want = reference::rms_norm_forward(x, gamma, shape, cfg).unwrap();
    check("y", &out.y, &want.y, scaled(FORWARD, &want.y), context);
    check("rstd", &out.rstd, &want.rstd, STATS, context);
    let grads = host::rms_norm_backward(ctx, x, gamma, dy, saved.then_some(&out.rstd[..]), shape, cfg)
        .expect(context);
    let want_grads = reference::rms_norm_backward(x, gamma, dy, shape, cfg).unwrap();
    let terms = dx_terms(&want.rstd, gamma, dy, shape.cols);
    check_at_scale("dx", &grads.dx, &want_grads.dx, DX, terms, context);
    let xhat = reference::rms_norm_forward(x, None, shape, cfg).unwrap().y;
    let bar = column_sum_bar(shape.rows, product_rms(dy, &xhat));
    check("dgamma", &grads.dgamma, &want_grads.dgamma, bar, context);
}

/// LayerNorm forward and backward of `case` on `ctx` against the reference.
pub fn check_layer(ctx: &NormContext, label: &str, case: &Case) {
    let Case { shape, input: kind, eps, seed, saved, affine } = *case;
    let mut r = rng(seed);
    let x = input(&mut r, kind, shape);
    let dy = randn(&mut r, shape.elements());
    let (g, b) = random_affine(&mut r, shape.cols);
    let cfg = LayerNormConfig { eps, ..Default::default() };
    let (gamma, beta) = (affine.then_some(&g[..]), affine.then_some(&b[..]));
    let inputs = Inputs { shape, x: &x, dy: &dy, gamma, beta, saved };
    check_layer_on(ctx, &inputs, &cfg, &format!("layer_norm, {label}, {case:?}"));
}

/// LayerNorm forward and backward of `inputs` on `ctx` against the reference.
pub fn check_layer_on(ctx: &NormContext, inputs: &Inputs<'_>, cfg: &LayerNormConfig, context: &str) {
    use wgpu_norm::reference;
    let Inputs { shape, x, dy, gamma, beta, saved } = *inputs;
    let out = host::layer_norm_forward(ctx, x, gamma, beta, shape, cfg).expect(context);
    let want = reference::layer_norm_forward(x, gamma, beta, shape, cfg).unwrap();
    check("y", &out.y, &want.y, scaled(FORWARD, &want.y), context);
    // The mean's error matters relative to the spread of x, not to the mean (near 0 for randn).
    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let mean_bar = Bar { rel: f64::INFINITY, atol: 1e-6 * scale_of(&x64), rtol: 1e-6 };
    check("mean", &out.mean, &want.mean, mean_bar, context);
    check("rstd", &out.rstd, &want.rstd, STATS, context);
    let (mean, rstd) = (saved.then_some(&out.mean[..]), saved.then_some(&out.rstd[..]));
    let grads = host::layer_norm_backward(ctx, x, gamma, dy, mean, rstd, shape, cfg).expect(context);
    let want_grads = reference::layer_norm_backward(x, gamma, dy, shape, cfg).unwrap();
    let terms = dx_terms(&want.rstd, gamma, dy, shape.cols);
    check_at_scale("dx", &grads.dx, &want_grads.dx, DX, terms, context);
    let xhat = reference::layer_norm_forward(x, None, None, shape, cfg).unwrap().y;
    let bar = column_sum_bar(shape.rows, product_rms(dy, &xhat));
    check("dgamma", &grads.dgamma, &want_grads.dgamma, bar, context);
    let ones = vec![1.0; dy.len()];
    let bar = column_sum_bar(shape.rows, product_rms(dy, &ones));
    check("dbeta", &grads.dbeta, &want_grads.dbeta, bar, context);
}

/// A `.npy` file of f32 values (version 1 header, C order): its dimensions and values.
pub fn read_npy(path: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{path}");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'<f4'") && header.contains("'fortran_order': False"), "{header}");
    let dims: Vec<usize> = header
        .split_once("'shape': (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(dims, _)| dims.split(',').filter_map(|d| d.trim().parse().ok()).collect())
        .unwrap();
    (dims, bytemuck::pod_collect_to_vec(&bytes[10 + header_len..]))
}

/// The unit roundoff of `dtype`: the most relative error one rounding to it makes.
pub fn roundoff(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 0.0,
        DType::F16 => 2f64.powi(-11),
        DType::BF16 => 2f64.powi(-8),
    }
}

/// `v` as `dtype`'s bytes, each element rounded to nearest.
pub fn encode(v: &[f64], dtype: DType) -> Vec<u8> {
    match dtype {
        DType::F32 => v.iter().flat_map(|&e| (e as f32).to_le_bytes()).collect(),
        DType::F16 => v.iter().flat_map(|&e| f16::from_f64(e).to_le_bytes()).collect(),
        DType::BF16 => v.iter().flat_map(|&e| bf16::from_f64(e).to_le_bytes()).collect(),
    }
}

/// `bytes` as elements of `dtype`.
pub fn decode(bytes: &[u8], dtype: DType) -> Vec<f64> {
    match dtype {
        DType::F32 => {
            bytes.chunks_exact(4).map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap()))).collect()
        }
        DType::F16 => bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f64()).collect(),
        DType::BF16 => bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f64()).collect(),
    }
}

/// `v` rounded to `dtype`: what the GPU will read.
pub fn stored(v: &[f32], dtype: DType) -> Vec<f64> {
    let wide: Vec<f64> = v.iter().map(|&e| f64::from(e)).collect();
    decode(&encode(&wide, dtype), dtype)
}

/// Each element within one rounding of `dtype` of the reference, after an f32 computation
/// held to `bar` (whose relative parts apply to the larger of the element and `terms`, the
/// size of what it is formed from); f32 outputs also to `bar`'s norm-wise bound.
#[track_caller]
pub fn check_stored(
    what: &str,
    got: &[f64],
    want: &[f64],
    dtype: DType,
    bar: Bar,
    terms: f64,
    context: &str,
) {
    let scale = rms(want).max(f64::MIN_POSITIVE);
    let bar = Bar { atol: bar.atol * scale, ..bar };
    if dtype == DType::F32 {
        let got: Vec<f32> = got.iter().map(|&g| g as f32).collect();
        return check_at_scale(what, &got, want, bar, terms, context);
    }
    let u = roundoff(dtype);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = u * w.abs() + bar.atol + bar.rtol * w.abs().max(terms);
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}] ({dtype:?}) = {g:e}, reference {w:e}, tolerance {tol:e} ({context})"
        );
    }
}

/// Elements of sentinel before and after every [`Placed`] tensor.
const GUARD: usize = 8;
const SENTINEL: f32 = 1234.5;

/// One tensor in its own buffer, `pad` elements in, between sentinels.
pub struct Placed {
    buffer: wgpu::Buffer,
    dtype: DType,
    pad: usize,
    len: usize,
}

impl Placed {
    /// `values` (or NaN, an output's poison) at element `pad`, sentinels elsewhere.
    pub fn new(c: &NormContext, values: Option<&[f64]>, len: usize, dtype: DType, pad: usize) -> Placed {
        let mut all = vec![f64::from(SENTINEL); pad + len + GUARD];
        for (i, slot) in all[pad..pad + len].iter_mut().enumerate() {
            *slot = values.map_or(f64::NAN, |v| v[i]);
        }
        let mut bytes = encode(&all, dtype);
        bytes.resize(bytes.len().next_multiple_of(4), 0);
        let buffer = wgpu::util::DeviceExt::create_buffer_init(
            c.device(),
            &wgpu::util::BufferInitDescriptor {
                label: None,
                contents: &bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            },
        );
        Placed { buffer, dtype, pad, len }
    }

    pub fn tensor(&self) -> Tensor<'_> {
        Tensor::new(&self.buffer, (self.pad as u64) * self.dtype.size())
    }

    /// The tensor's elements, once the sentinels around it are checked.
    #[track_caller]
    pub fn read(&self, c: &NormContext, what: &str, context: &str) -> Vec<f64> {
        let bytes = read_bytes(c.device(), c.queue(), &self.buffer);
        let all = decode(&bytes, self.dtype);
        let sentinel = stored(&[SENTINEL], self.dtype)[0];
        for i in (0..self.pad).chain(self.pad + self.len..self.pad + self.len + GUARD) {
            assert_eq!(all[i], sentinel, "{what}: sentinel at element {i} overwritten ({context})");
        }
        all[self.pad..self.pad + self.len].to_vec()
    }
}

/// RMSNorm or LayerNorm, for tests that run both through the same steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Norm {
    Rms,
    Layer,
}

/// The tensors of a forward followed by a backward of either norm, the backward reading the
/// forward's x; `beta` and `dbeta` are LayerNorm's only.
#[derive(Clone, Copy)]
pub struct Step<'a> {
    pub x: Tensor<'a>,
    pub y: Tensor<'a>,
    pub dy: Tensor<'a>,
    pub dx: Tensor<'a>,
    pub residual: Option<Tensor<'a>>,
    pub h: Option<Tensor<'a>>,
    pub dh: Option<Tensor<'a>>,
    pub gamma: Option<Tensor<'a>>,
    pub beta: Option<Tensor<'a>>,
    pub dgamma: Option<Tensor<'a>>,
    pub dbeta: Option<Tensor<'a>>,
    pub workspace: Option<Tensor<'a>>,
}

/// A workspace buffer big enough for `norm`'s backward over `shape`.
pub fn workspace_for(
    c: &NormContext,
    norm: Norm,
    rms: RmsNormConfig,
    ln: LayerNormConfig,
    shape: Shape,
) -> wgpu::Buffer {
    let bytes = match norm {
        Norm::Rms => RmsNormBackwardOp::new(c, rms).unwrap().workspace_size(shape).unwrap(),
        Norm::Layer => LayerNormBackwardOp::new(c, ln).unwrap().workspace_size(shape).unwrap(),
    };
    storage(c, bytes.max(4))
}

/// Records `norm`'s forward and then its backward over `t`.
pub fn record_step(
    c: &NormContext,
    norm: Norm,
    rms: RmsNormConfig,
    ln: LayerNormConfig,
    shape: Shape,
    t: &Step<'_>,
    context: &str,
) {
    submit(c, |enc| match norm {
        Norm::Rms => {
            let f =
                RmsNormForward { x: t.x, residual: t.residual, gamma: t.gamma, y: t.y, h: t.h, rstd: None };
            RmsNormForwardOp::new(c, rms).unwrap().encode(enc, shape, &f).expect(context);
            let b = RmsNormBackward {
                x: t.x,
                gamma: t.gamma,
                dy: t.dy,
                dh: t.dh,
                rstd: None,
                dx: t.dx,
                dgamma: t.dgamma,
                workspace: t.workspace,
            };
            RmsNormBackwardOp::new(c, rms).unwrap().encode(enc, shape, &b).expect(context);
        }
        Norm::Layer => {
            let f = LayerNormForward {
                x: t.x,
                residual: t.residual,
                gamma: t.gamma,
                beta: t.beta,
                y: t.y,
                h: t.h,
                mean: None,
                rstd: None,
            };
            LayerNormForwardOp::new(c, ln).unwrap().encode(enc, shape, &f).expect(context);
            let b = LayerNormBackward {
                x: t.x,
                gamma: t.gamma,
                dy: t.dy,
                dh: t.dh,
                mean: None,
                rstd: None,
                dx: t.dx,
                dgamma: t.dgamma,
                dbeta: t.dbeta,
                workspace: t.workspace,
            };
            LayerNormBackwardOp::new(c, ln).unwrap().encode(enc, shape, &b).expect(context);
        }
    });
}

/// The f64 reference of a [`Step`]: the forward of `input` (y with gamma and beta, and its
/// rstd), the backward at `x` (dx, dgamma, dbeta) and x normalized without gamma (what the
/// column sums' bars are scaled by).
pub struct Reference {
    pub y: Vec<f64>,
    pub rstd: Vec<f64>,
    pub dx: Vec<f64>,
    pub dgamma: Vec<f64>,
    pub dbeta: Option<Vec<f64>>,
    pub xhat: Vec<f64>,
}

impl Reference {
    #[allow(clippy::too_many_arguments)]
    pub fn of(
        norm: Norm,
        input: &[f64],
        x: &[f64],
        g: &[f64],
        b: &[f64],
        dy: &[f64],
        shape: Shape,
        rms: &RmsNormConfig,
        ln: &LayerNormConfig,
    ) -> Reference {
        use wgpu_norm::reference as r;
        match norm {
            Norm::Rms => {
                let f = r::rms_norm_forward(input, Some(g), shape, rms).unwrap();
                let w = r::rms_norm_backward(x, Some(g), dy, shape, rms).unwrap();
                let xhat = r::rms_norm_forward(x, None, shape, rms).unwrap().y;
                Reference { y: f.y, rstd: f.rstd, dx: w.dx, dgamma: w.dgamma, dbeta: None, xhat }
            }
            Norm::Layer => {
                let f = r::layer_norm_forward(input, Some(g), Some(b), shape, ln).unwrap();
                let w = r::layer_norm_backward(x, Some(g), dy, shape, ln).unwrap();
                let xhat = r::layer_norm_forward(x, None, None, shape, ln).unwrap().y;
                Reference { y: f.y, rstd: f.rstd, dx: w.dx, dgamma: w.dgamma, dbeta: Some(w.dbeta), xhat }
            }
        }
    }

    /// Checks a backward's outputs: `dx` (stored as `dtype`) against the reference's plus
    /// `dh` where the gradient on h was added, and the column sums where they were asked for.
    #[allow(clippy::too_many_arguments)]
    pub fn check_backward(
        &self,
        dx: &[f64],
        dtype: DType,
        dh: Option<&[f64]>,
        dgamma: Option<&[f64]>,
        dbeta: Option<&[f64]>,
        dy: &[f64],
        g: &[f64],
        shape: Shape,
        context: &str,
    ) {
        let cols = shape.cols;
        let want_dx: Vec<f64> = match dh {
            Some(dh) => self.dx.iter().zip(dh).map(|(a, b)| a + b).collect(),
            None => self.dx.clone(),
        };
        let terms = (dy
            .iter()
            .enumerate()
            .map(|(i, d)| (self.rstd[i / cols] * g[i % cols] * d).powi(2))
            .sum::<f64>()
            / dy.len() as f64)
            .sqrt();
        check_stored("dx", dx, &want_dx, dtype, DX, terms, context);
        let dyf: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
        let f32s = |v: &[f64]| v.iter().map(|&e| e as f32).collect::<Vec<f32>>();
        if let Some(got) = dgamma {
            let bar = column_sum_bar(shape.rows, product_rms(&dyf, &self.xhat));
            check("dgamma", &f32s(got), &self.dgamma, bar, context);
        }
        if let (Some(got), Some(want)) = (dbeta, &self.dbeta) {
            let bar = column_sum_bar(shape.rows, product_rms(&dyf, &vec![1.0; dy.len()]));
            check("dbeta", &f32s(got), want, bar, context);
        }
    }
}
