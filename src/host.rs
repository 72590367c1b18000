//! Convenience calls on host slices: upload, run, read back. For scripts, tests and
//! benchmarks; an engine binds ops and records them into its own encoders instead.
//!
//! Each call is an `async fn` (`*_async`) that works in a browser: readback completes
//! `map_async` through a `futures-intrusive` oneshot channel. On native the blocking calls
//! of the same names without `_async` wrap them with pollster, and the async ones poll the
//! device to completion before they wait.

use crate::dtype::{Element, Storage};
use crate::error::{NormError, Result};
use crate::ops::layer_norm::{
    LayerNormBackward, LayerNormBackwardOp, LayerNormConfig, LayerNormForward, LayerNormForwardOp,
};
use crate::ops::op::Reach;
use crate::ops::rms_norm::{
    RmsNormBackward, RmsNormBackwardOp, RmsNormConfig, RmsNormForward, RmsNormForwardOp,
};
use crate::runtime::binding::Tensor;
use crate::runtime::context::NormContext;
use crate::runtime::verdict::scoped;
use crate::shape::{Shape, check_len};

/// Results of [`rms_norm_forward`].
#[derive(Clone, Debug, PartialEq)]
pub struct RmsNormOutput<T = f32> {
    /// Normalized rows, rows x cols.
    pub y: Vec<T>,
    /// Per-row rstd (the factor each row was multiplied by).
    pub rstd: Vec<f32>,
}

/// Results of [`rms_norm_backward`].
#[derive(Clone, Debug, PartialEq)]
pub struct RmsNormGrads<T = f32> {
    /// Gradient with respect to x, rows x cols.
    pub dx: Vec<T>,
    /// Gradient with respect to gamma, cols.
    pub dgamma: Vec<f32>,
}

/// Results of [`layer_norm_forward`].
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNormOutput<T = f32> {
    /// Normalized rows, rows x cols.
    pub y: Vec<T>,
    /// Per-row mean.
    pub mean: Vec<f32>,
    /// Per-row rstd.
    pub rstd: Vec<f32>,
}

/// Results of [`layer_norm_backward`].
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNormGrads<T = f32> {
    /// Gradient with respect to x, rows x cols.
    pub dx: Vec<T>,
    /// Gradient with respect to gamma, cols.
    pub dgamma: Vec<f32>,
    /// Gradient with respect to beta, cols.
    pub dbeta: Vec<f32>,
}

/// The host calls take their dtype from the slices: activations and parameters both `T`.
fn host_storage<T: Element>() -> Storage {
    Storage::uniform(T::DTYPE)
}

/// RMSNorm of contiguous host rows in `f32`, `half::f16` or `half::bf16` (the config's
/// `storage` is taken from `T`).
///
/// ```
/// use wgpu_norm::{NormContext, RmsNormConfig, Shape};
/// let ctx = NormContext::new()?;
/// let x = [1.0_f32, -2.0, 3.0, -4.0, 0.5, 0.25];
/// let out = wgpu_norm::host::rms_norm_forward(&ctx, &x, None, Shape::new(2, 3), &RmsNormConfig::default())?;
/// let want = wgpu_norm::reference::rms_norm_forward(&x, None, Shape::new(2, 3), &RmsNormConfig::default())?;
/// for (g, r) in out.y.iter().zip(&want.y) {
///     assert!((*g as f64 - r).abs() < 1e-6);
/// }
/// # Ok::<(), wgpu_norm::NormError>(())
/// ```
pub async fn rms_norm_forward_async<T: Element>(
    ctx: &NormContext,
    x: &[T],
    gamma: Option<&[T]>,
    shape: Shape,
    config: &RmsNormConfig,
) -> Result<RmsNormOutput<T>> {
    let shape = contiguous(shape)?;
    check_len("x", shape.elements(), x.len())?;
    check_opt_len("gamma", shape.cols, gamma)?;
    // The op checks the config before anything is uploaded.
    let op = RmsNormForwardOp::new(ctx, RmsNormConfig { storage: host_storage::<T>(), ..*config })?;
    let xb = upload(ctx, "x", x)?;
    let gb = gamma.map(|g| upload(ctx, "gamma", g)).transpose()?;
    let y = poisoned::<T>(ctx, "y", shape.elements())?;
    let rstd = poisoned::<f32>(ctx, "rstd", shape.rows)?;
    let mut encoder = encoder(ctx)?;
    let args = RmsNormForward {
        x: (&xb).into(),
        residual: None,
        gamma: gb.as_ref().map(Tensor::from),
        y: (&y).into(),
        h: None,
        rstd: Some((&rstd).into()),
    };
    let bound = op.bind_async_for(shape, &args, Reach::ThisCall).await?;
    bound.encode(&mut encoder);
    let [y, rstd] = finish_and_read(ctx, encoder, [&y, &rstd]).await?;
    Ok(RmsNormOutput { y: cast(y, shape.elements()), rstd: cast(rstd, shape.rows) })
}

/// [`rms_norm_forward_async`], blocking until the result is back (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn rms_norm_forward<T: Element>(
    ctx: &NormContext,
    x: &[T],
    gamma: Option<&[T]>,
    shape: Shape,
    config: &RmsNormConfig,
) -> Result<RmsNormOutput<T>> {
    pollster::block_on(rms_norm_forward_async(ctx, x, gamma, shape, config))
}

/// RMSNorm backward of host rows; `rstd` is the forward's saved statistic, or `None` to
/// recompute it.
pub async fn rms_norm_backward_async<T: Element>(
    ctx: &NormContext,
    x: &[T],
    gamma: Option<&[T]>,
    dy: &[T],
    rstd: Option<&[f32]>,
    shape: Shape,
    config: &RmsNormConfig,
) -> Result<RmsNormGrads<T>> {
    let shape = contiguous(shape)?;
    check_len("x", shape.elements(), x.len())?;
    check_len("dy", shape.elements(), dy.len())?;
    check_opt_len("gamma", shape.cols, gamma)?;
    check_opt_len("rstd", shape.rows, rstd)?;
    let op = RmsNormBackwardOp::new(ctx, RmsNormConfig { storage: host_storage::<T>(), ..*config })?;
    let xb = upload(ctx, "x", x)?;
    let dyb = upload(ctx, "dy", dy)?;
    let gb = gamma.map(|g| upload(ctx, "gamma", g)).transpose()?;
    let rb = rstd.map(|r| upload(ctx, "rstd", r)).transpose()?;
    let dx = poisoned::<T>(ctx, "dx", shape.elements())?;
    let dgamma = poisoned::<f32>(ctx, "dgamma", shape.cols)?;
    let workspace = scratch(ctx, op.workspace_size(shape)?)?;
    let mut encoder = encoder(ctx)?;
    let args = RmsNormBackward {
        x: (&xb).into(),
        gamma: gb.as_ref().map(Tensor::from),
        dy: (&dyb).into(),
        dh: None,
        rstd: rb.as_ref().map(Tensor::from),
        dx: (&dx).into(),
        dgamma: Some((&dgamma).into()),
        workspace: Some((&workspace).into()),
    };
    let bound = op.bind_async_for(shape, &args, Reach::ThisCall).await?;
    bound.encode(&mut encoder);
    let [dx, dgamma] = finish_and_read(ctx, encoder, [&dx, &dgamma]).await?;
    Ok(RmsNormGrads { dx: cast(dx, shape.elements()), dgamma: cast(dgamma, shape.cols) })
}

/// [`rms_norm_backward_async`], blocking until the result is back (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn rms_norm_backward<T: Element>(
    ctx: &NormContext,
    x: &[T],
    gamma: Option<&[T]>,
    dy: &[T],
    rstd: Option<&[f32]>,
    shape: Shape,
    config: &RmsNormConfig,
) -> Result<RmsNormGrads<T>> {
    pollster::block_on(rms_norm_backward_async(ctx, x, gamma, dy, rstd, shape, config))
}

/// LayerNorm of contiguous host rows in `f32`, `half::f16` or `half::bf16` (the config's
/// `storage` is taken from `T`).
pub async fn layer_norm_forward_async<T: Element>(
    ctx: &NormContext,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    shape: Shape,
    config: &LayerNormConfig,
) -> Result<LayerNormOutput<T>> {
    let shape = contiguous(shape)?;
    check_len("x", shape.elements(), x.len())?;
    check_opt_len("gamma", shape.cols, gamma)?;
    check_opt_len("beta", shape.cols, beta)?;
    let op = LayerNormForwardOp::new(ctx, LayerNormConfig { storage: host_storage::<T>(), ..*config })?;
    let xb = upload(ctx, "x", x)?;
    let gb = gamma.map(|g| upload(ctx, "gamma", g)).transpose()?;
    let bb = beta.map(|b| upload(ctx, "beta", b)).transpose()?;
    let y = poisoned::<T>(ctx, "y", shape.elements())?;
    let mean = poisoned::<f32>(ctx, "mean", shape.rows)?;
    let rstd = poisoned::<f32>(ctx, "rstd", shape.rows)?;
    let mut encoder = encoder(ctx)?;
    let args = LayerNormForward {
        x: (&xb).into(),
        residual: None,
        gamma: gb.as_ref().map(Tensor::from),
        beta: bb.as_ref().map(Tensor::from),
        y: (&y).into(),
        h: None,
        mean: Some((&mean).into()),
        rstd: Some((&rstd).into()),
    };
    let bound = op.bind_async_for(shape, &args, Reach::ThisCall).await?;
    bound.encode(&mut encoder);
    let [y, mean, rstd] = finish_and_read(ctx, encoder, [&y, &mean, &rstd]).await?;
    Ok(LayerNormOutput {
        y: cast(y, shape.elements()),
        mean: cast(mean, shape.rows),
        rstd: cast(rstd, shape.rows),
    })
}

/// [`layer_norm_forward_async`], blocking until the result is back (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn layer_norm_forward<T: Element>(
    ctx: &NormContext,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    shape: Shape,
    config: &LayerNormConfig,
) -> Result<LayerNormOutput<T>> {
    pollster::block_on(layer_norm_forward_async(ctx, x, gamma, beta, shape, config))
}

/// LayerNorm backward of host rows; `mean` and `rstd` are the forward's saved
/// statistics, each `None` to recompute it.
#[expect(clippy::too_many_arguments, reason = "one slice per tensor of the operation")]
pub async fn layer_norm_backward_async<T: Element>(
    ctx: &NormContext,
    x: &[T],
    gamma: Option<&[T]>,
    dy: &[T],
    mean: Option<&[f32]>,
    rstd: Option<&[f32]>,
    shape: Shape,
    config: &LayerNormConfig,
) -> Result<LayerNormGrads<T>> {
    let shape = contiguous(shape)?;
    check_len("x", shape.elements(), x.len())?;
    check_len("dy", shape.elements(), dy.len())?;
    check_opt_len("gamma", shape.cols, gamma)?;
    check_opt_len("mean", shape.rows, mean)?;
    check_opt_len("rstd", shape.rows, rstd)?;
    let op = LayerNormBackwardOp::new(ctx, LayerNormConfig { storage: host_storage::<T>(), ..*config })?;
    let xb = upload(ctx, "x", x)?;
    let dyb = upload(ctx, "dy", dy)?;
    let gb = gamma.map(|g| upload(ctx, "gamma", g)).transpose()?;
    let mb = mean.map(|m| upload(ctx, "mean", m)).transpose()?;
    let rb = rstd.map(|r| upload(ctx, "rstd", r)).transpose()?;
    let dx = poisoned::<T>(ctx, "dx", shape.elements())?;
    let dgamma = poisoned::<f32>(ctx, "dgamma", shape.cols)?;
    let dbeta = poisoned::<f32>(ctx, "dbeta", shape.cols)?;
    let workspace = scratch(ctx, op.workspace_size(shape)?)?;
    let mut encoder = encoder(ctx)?;
    let args = LayerNormBackward {
        x: (&xb).into(),
        gamma: gb.as_ref().map(Tensor::from),
        dy: (&dyb).into(),
        dh: None,
        mean: mb.as_ref().map(Tensor::from),
        rstd: rb.as_ref().map(Tensor::from),
        dx: (&dx).into(),
        dgamma: Some((&dgamma).into()),
        dbeta: Some((&dbeta).into()),
        workspace: Some((&workspace).into()),
    };
    let bound = op.bind_async_for(shape, &args, Reach::ThisCall).await?;
    bound.encode(&mut encoder);
    let [dx, dgamma, dbeta] = finish_and_read(ctx, encoder, [&dx, &dgamma, &dbeta]).await?;
    Ok(LayerNormGrads {
        dx: cast(dx, shape.elements()),
        dgamma: cast(dgamma, shape.cols),
        dbeta: cast(dbeta, shape.cols),
    })
}

/// [`layer_norm_backward_async`], blocking until the result is back (native only).
#[cfg(not(target_arch = "wasm32"))]
#[expect(clippy::too_many_arguments, reason = "one slice per tensor of the operation")]
pub fn layer_norm_backward<T: Element>(
    ctx: &NormContext,
    x: &[T],
    gamma: Option<&[T]>,
    dy: &[T],
    mean: Option<&[f32]>,
    rstd: Option<&[f32]>,
    shape: Shape,
    config: &LayerNormConfig,
) -> Result<LayerNormGrads<T>> {
    pollster::block_on(layer_norm_backward_async(ctx, x, gamma, dy, mean, rstd, shape, config))
}

/// A storage buffer holding `data`, padded to whole 4-byte words. Made with
/// `create_buffer` and `write_buffer`, which report a lost device instead of panicking.
fn upload<T: bytemuck::Pod>(ctx: &NormContext, label: &'static str, data: &[T]) -> Result<wgpu::Buffer> {
    let mut bytes = bytemuck::cast_slice::<T, u8>(data).to_vec();
    bytes.resize(bytes.len().next_multiple_of(4).max(4), 0);
    let buffer = buffer(ctx, label, bytes.len() as u64, wgpu::BufferUsages::COPY_SRC)?;
    scoped(ctx.device(), "upload", || ctx.queue().write_buffer(&buffer, 0, &bytes))
        .map_err(|e| ctx.lost_or(e))?;
    Ok(buffer)
}

/// An output buffer filled with NaN, so an element a kernel fails to write reads back
/// as NaN instead of a plausible zero.
fn poisoned<T: Element>(ctx: &NormContext, label: &'static str, len: usize) -> Result<wgpu::Buffer> {
    upload(ctx, label, &vec![T::nan(); len])
}

fn scratch(ctx: &NormContext, bytes: u64) -> Result<wgpu::Buffer> {
    buffer(ctx, "workspace", bytes.max(4), wgpu::BufferUsages::empty())
}

fn encoder(ctx: &NormContext) -> Result<wgpu::CommandEncoder> {
    scoped(ctx.device(), "command encoder creation", || {
        ctx.device().create_command_encoder(&Default::default())
    })
    .map_err(|e| ctx.lost_or(e))
}

/// A storage buffer of `bytes`, refused with a typed error past the device's limits
/// before anything is created.
fn buffer(
    ctx: &NormContext,
    label: &'static str,
    bytes: u64,
    usage: wgpu::BufferUsages,
) -> Result<wgpu::Buffer> {
    let limits = ctx.limits();
    if bytes > limits.max_buffer_size {
        let (needed, allowed) = (bytes, limits.max_buffer_size);
        return Err(NormError::DeviceLimit { what: label, limit: "max_buffer_size", needed, allowed });
    }
    let limit = limits.max_storage_buffer_binding_size;
    if bytes > limit {
        return Err(NormError::BindingTooLarge { what: label, bytes, limit });
    }
    ctx.check_device()?;
    scoped(ctx.device(), "buffer creation", || {
        ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: usage | wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    })
    .map_err(|e| ctx.lost_or(e))
}

/// Copies `sources` to mappable buffers at the end of `encoder`, submits and returns
/// their contents once the device has written them. wgpu errors of the whole submission
/// come back as errors.
async fn finish_and_read<const N: usize>(
    ctx: &NormContext,
    mut encoder: wgpu::CommandEncoder,
    sources: [&wgpu::Buffer; N],
) -> Result<[Vec<u8>; N]> {
    let device = ctx.device();
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let staging = sources.map(|src| {
        let b = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgpu_norm.readback"),
            size: src.size(),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(src, 0, &b, 0, src.size());
        b
    });
    ctx.queue().submit([encoder.finish()]);
    if let Some(e) = scope.pop().await {
        return Err(ctx.lost_or(NormError::Wgpu { during: "submission", message: e.to_string() }));
    }
    // In scopes: another thread may destroy the device meanwhile, and wgpu's word on a
    // destroyed buffer must come back as an error, not reach the uncaptured-error handler.
    let mapped = scoped(device, "readback", || {
        staging.each_ref().map(|b| {
            let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
            b.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                tx.send(r).ok();
            });
            rx
        })
    })
    .map_err(|e| ctx.lost_or(e))?;
    #[cfg(not(target_arch = "wasm32"))]
    if let Err(e) = device.poll(wgpu::PollType::wait_indefinitely()) {
        return Err(ctx.lost_or(NormError::Readback(e.to_string())));
    }
    let mut out = [const { Vec::new() }; N];
    for (i, ((o, b), rx)) in out.iter_mut().zip(&staging).zip(mapped).enumerate() {
        match rx.receive().await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(ctx.lost_or(NormError::Readback(format!("buffer {i}: {e}")))),
            None => {
                return Err(ctx.lost_or(NormError::Readback(format!("buffer {i}: the mapping was dropped"))));
            }
        }
        let view =
            b.slice(..).get_mapped_range().map_err(|e| ctx.lost_or(NormError::Readback(e.to_string())))?;
        *o = view.to_vec();
        drop(view);
        scoped(device, "readback", || b.unmap()).map_err(|e| ctx.lost_or(e))?;
    }
    Ok(out)
}

fn check_opt_len<T>(what: &'static str, expected: usize, v: Option<&[T]>) -> Result<()> {
    v.map_or(Ok(()), |v| check_len(what, expected, v.len()))
}

/// The host calls take contiguous slices: strides that leave gaps are refused, not dropped.
fn contiguous(shape: Shape) -> Result<Shape> {
    shape.checked()?;
    if !shape.is_dense() {
        return Err(NormError::HostRowStride { cols: shape.cols, stride: shape.row_stride });
    }
    Ok(shape)
}

/// The first `len` elements of read-back bytes.
fn cast<T: bytemuck::Pod>(bytes: Vec<u8>, len: usize) -> Vec<T> {
    bytemuck::pod_collect_to_vec::<u8, T>(&bytes[..len * std::mem::size_of::<T>()])
}
