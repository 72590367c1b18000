//! Convenience calls on host slices: upload, run, read back, blocking. For scripts, tests
//! and benchmarks; an engine records with the `encode_*` methods instead.

use wgpu::util::DeviceExt as _;

use crate::dtype::{Element, Storage};
use crate::error::{NormError, Result};
use crate::ops::layer_norm::{LayerNormBackward, LayerNormConfig, LayerNormForward};
use crate::ops::rms_norm::{RmsNormBackward, RmsNormConfig, RmsNormForward};
use crate::runtime::binding::Tensor;
use crate::runtime::context::NormContext;
use crate::shape::{Shape, check_len};

/// Results of [`NormContext::rms_norm_forward`].
#[derive(Clone, Debug, PartialEq)]
pub struct RmsNormOutput<T = f32> {
    /// Normalized rows, rows x cols.
    pub y: Vec<T>,
    /// Per-row rstd (the factor each row was multiplied by).
    pub rstd: Vec<f32>,
}

/// Results of [`NormContext::rms_norm_backward`].
#[derive(Clone, Debug, PartialEq)]
pub struct RmsNormGrads<T = f32> {
    /// Gradient with respect to x, rows x cols.
    pub dx: Vec<T>,
    /// Gradient with respect to gamma, cols.
    pub dgamma: Vec<f32>,
}

/// Results of [`NormContext::layer_norm_forward`].
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNormOutput<T = f32> {
    /// Normalized rows, rows x cols.
    pub y: Vec<T>,
    /// Per-row mean.
    pub mean: Vec<f32>,
    /// Per-row rstd.
    pub rstd: Vec<f32>,
}

/// Results of [`NormContext::layer_norm_backward`].
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

impl NormContext {
    /// RMSNorm of contiguous host rows in `f32`, `half::f16` or `half::bf16` (the config's
    /// `storage` is taken from `T`); blocks until the result is back.
    ///
    /// ```
    /// use wgpu_norm::{NormContext, RmsNormConfig, Shape};
    /// let ctx = NormContext::new()?;
    /// let x = [1.0_f32, -2.0, 3.0, -4.0, 0.5, 0.25];
    /// let out = ctx.rms_norm_forward(&x, None, Shape::new(2, 3), &RmsNormConfig::default())?;
    /// let want = wgpu_norm::reference::rms_norm_forward(&x, None, Shape::new(2, 3), &RmsNormConfig::default())?;
    /// for (g, r) in out.y.iter().zip(&want.y) {
    ///     assert!((*g as f64 - r).abs() < 1e-6);
    /// }
    /// # Ok::<(), wgpu_norm::NormError>(())
    /// ```
    pub fn rms_norm_forward<T: Element>(
        &self,
        x: &[T],
        gamma: Option<&[T]>,
        shape: Shape,
        config: &RmsNormConfig,
    ) -> Result<RmsNormOutput<T>> {
        let shape = contiguous(shape)?;
        check_len("x", shape.elements(), x.len())?;
        check_opt_len("gamma", shape.cols, gamma)?;
        let config = RmsNormConfig { storage: host_storage::<T>(), ..*config };
        config.check()?;
        let xb = self.upload("x", x);
        let gb = gamma.map(|g| self.upload("gamma", g));
        let y = self.poisoned::<T>("y", shape.elements());
        let rstd = self.poisoned::<f32>("rstd", shape.rows);
        let mut encoder = self.device().create_command_encoder(&Default::default());
        self.encode_rms_norm_forward(
            &mut encoder,
            shape,
            &config,
            &RmsNormForward {
                x: (&xb).into(),
                residual: None,
                gamma: gb.as_ref().map(Tensor::from),
                y: (&y).into(),
                h: None,
                rstd: Some((&rstd).into()),
            },
        )?;
        let [y, rstd] = self.finish_and_read(encoder, [&y, &rstd])?;
        Ok(RmsNormOutput { y: cast(y, shape.elements()), rstd: cast(rstd, shape.rows) })
    }

    /// RMSNorm backward of host rows; `rstd` is the forward's saved statistic, or `None` to
    /// recompute it. Blocks until the result is back.
    pub fn rms_norm_backward<T: Element>(
        &self,
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
        let config = RmsNormConfig { storage: host_storage::<T>(), ..*config };
        config.check()?;
        let xb = self.upload("x", x);
        let dyb = self.upload("dy", dy);
        let gb = gamma.map(|g| self.upload("gamma", g));
        let rb = rstd.map(|r| self.upload("rstd", r));
        let dx = self.poisoned::<T>("dx", shape.elements());
        let dgamma = self.poisoned::<f32>("dgamma", shape.cols);
        let workspace = self.scratch(self.rms_norm_backward_workspace_size(shape)?);
        let mut encoder = self.device().create_command_encoder(&Default::default());
        self.encode_rms_norm_backward(
            &mut encoder,
            shape,
            &config,
            &RmsNormBackward {
                x: (&xb).into(),
                gamma: gb.as_ref().map(Tensor::from),
                dy: (&dyb).into(),
                dh: None,
                rstd: rb.as_ref().map(Tensor::from),
                dx: (&dx).into(),
                dgamma: Some((&dgamma).into()),
                workspace: Some((&workspace).into()),
            },
        )?;
        let [dx, dgamma] = self.finish_and_read(encoder, [&dx, &dgamma])?;
        Ok(RmsNormGrads { dx: cast(dx, shape.elements()), dgamma: cast(dgamma, shape.cols) })
    }

    /// LayerNorm of contiguous host rows in `f32`, `half::f16` or `half::bf16` (the config's
    /// `storage` is taken from `T`); blocks until the result is back.
    pub fn layer_norm_forward<T: Element>(
        &self,
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
        let config = LayerNormConfig { storage: host_storage::<T>(), ..*config };
        let xb = self.upload("x", x);
        let gb = gamma.map(|g| self.upload("gamma", g));
        let bb = beta.map(|b| self.upload("beta", b));
        let y = self.poisoned::<T>("y", shape.elements());
        let mean = self.poisoned::<f32>("mean", shape.rows);
        let rstd = self.poisoned::<f32>("rstd", shape.rows);
        let mut encoder = self.device().create_command_encoder(&Default::default());
        self.encode_layer_norm_forward(
            &mut encoder,
            shape,
            &config,
            &LayerNormForward {
                x: (&xb).into(),
                residual: None,
                gamma: gb.as_ref().map(Tensor::from),
                beta: bb.as_ref().map(Tensor::from),
                y: (&y).into(),
                h: None,
                mean: Some((&mean).into()),
                rstd: Some((&rstd).into()),
            },
        )?;
        let [y, mean, rstd] = self.finish_and_read(encoder, [&y, &mean, &rstd])?;
        Ok(LayerNormOutput {
            y: cast(y, shape.elements()),
            mean: cast(mean, shape.rows),
            rstd: cast(rstd, shape.rows),
        })
    }

    /// LayerNorm backward of host rows; `mean` and `rstd` are the forward's saved
    /// statistics, each `None` to recompute it. Blocks until the result is back.
    #[expect(clippy::too_many_arguments, reason = "one slice per tensor of the operation")]
    pub fn layer_norm_backward<T: Element>(
        &self,
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
        let config = LayerNormConfig { storage: host_storage::<T>(), ..*config };
        let xb = self.upload("x", x);
        let dyb = self.upload("dy", dy);
        let gb = gamma.map(|g| self.upload("gamma", g));
        let mb = mean.map(|m| self.upload("mean", m));
        let rb = rstd.map(|r| self.upload("rstd", r));
        let dx = self.poisoned::<T>("dx", shape.elements());
        let dgamma = self.poisoned::<f32>("dgamma", shape.cols);
        let dbeta = self.poisoned::<f32>("dbeta", shape.cols);
        let workspace = self.scratch(self.layer_norm_backward_workspace_size(shape)?);
        let mut encoder = self.device().create_command_encoder(&Default::default());
        self.encode_layer_norm_backward(
            &mut encoder,
            shape,
            &config,
            &LayerNormBackward {
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
            },
        )?;
        let [dx, dgamma, dbeta] = self.finish_and_read(encoder, [&dx, &dgamma, &dbeta])?;
        Ok(LayerNormGrads {
            dx: cast(dx, shape.elements()),
            dgamma: cast(dgamma, shape.cols),
            dbeta: cast(dbeta, shape.cols),
        })
    }

    /// A storage buffer holding `data`, padded to whole 4-byte words.
    fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let mut bytes = bytemuck::cast_slice::<T, u8>(data).to_vec();
        bytes.resize(bytes.len().next_multiple_of(4), 0);
        self.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: &bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        })
    }

    /// An output buffer filled with NaN, so an element a kernel fails to write reads back
    /// as NaN instead of a plausible zero.
    fn poisoned<T: Element>(&self, label: &str, len: usize) -> wgpu::Buffer {
        self.upload(label, &vec![T::nan(); len])
    }

    fn scratch(&self, bytes: u64) -> wgpu::Buffer {
        self.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgpu_norm.workspace"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    }

    /// Copies `sources` to mappable buffers at the end of `encoder`, submits, waits and
    /// returns their contents. wgpu errors of the whole submission come back as errors.
    pub(crate) fn finish_and_read<const N: usize>(
        &self,
        mut encoder: wgpu::CommandEncoder,
        sources: [&wgpu::Buffer; N],
    ) -> Result<[Vec<u8>; N]> {
        let device = self.device();
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
        self.queue().submit([encoder.finish()]);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(NormError::Wgpu { during: "submission", message: e.to_string() });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        for (i, b) in staging.iter().enumerate() {
            let tx = tx.clone();
            b.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send((i, r));
            });
        }
        device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| NormError::Readback(e.to_string()))?;
        drop(tx);
        for (i, r) in rx.iter() {
            r.map_err(|e| NormError::Readback(format!("buffer {i}: {e}")))?;
        }
        let mut out = [const { Vec::new() }; N];
        for (o, b) in out.iter_mut().zip(&staging) {
            let view = b.slice(..).get_mapped_range().map_err(|e| NormError::Readback(e.to_string()))?;
            *o = view.to_vec();
            drop(view);
            b.unmap();
        }
        Ok(out)
    }
}

fn check_opt_len<T>(what: &'static str, expected: usize, v: Option<&[T]>) -> Result<()> {
    v.map_or(Ok(()), |v| check_len(what, expected, v.len()))
}

/// The host calls take contiguous slices.
fn contiguous(shape: Shape) -> Result<Shape> {
    shape.checked()?;
    Ok(Shape::new(shape.rows, shape.cols))
}

/// The first `len` elements of read-back bytes.
fn cast<T: bytemuck::Pod>(bytes: Vec<u8>, len: usize) -> Vec<T> {
    bytemuck::pod_collect_to_vec::<u8, T>(&bytes[..len * std::mem::size_of::<T>()])
}
