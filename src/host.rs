//! Convenience calls on host slices: upload, run, read back, blocking. For scripts, tests
//! and benchmarks; an engine records with the `encode_*` methods instead.

use wgpu::util::DeviceExt as _;

use crate::context::NormContext;
use crate::dispatch::Tensor;
use crate::error::{NormError, Result};
use crate::layer_norm::{LayerNormBackward, LayerNormConfig, LayerNormForward};
use crate::rms_norm::{RmsNormBackward, RmsNormConfig, RmsNormForward};
use crate::shape::{Shape, check_len};

/// Results of [`NormContext::rms_norm_forward`].
#[derive(Clone, Debug, PartialEq)]
pub struct RmsNormOutput {
    /// Normalized rows, rows x cols.
    pub y: Vec<f32>,
    /// Per-row rstd (the factor each row was multiplied by).
    pub rstd: Vec<f32>,
}

/// Results of [`NormContext::rms_norm_backward`].
#[derive(Clone, Debug, PartialEq)]
pub struct RmsNormGrads {
    /// Gradient with respect to x, rows x cols.
    pub dx: Vec<f32>,
    /// Gradient with respect to gamma, cols.
    pub dgamma: Vec<f32>,
}

/// Results of [`NormContext::layer_norm_forward`].
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNormOutput {
    /// Normalized rows, rows x cols.
    pub y: Vec<f32>,
    /// Per-row mean.
    pub mean: Vec<f32>,
    /// Per-row rstd.
    pub rstd: Vec<f32>,
}

/// Results of [`NormContext::layer_norm_backward`].
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNormGrads {
    /// Gradient with respect to x, rows x cols.
    pub dx: Vec<f32>,
    /// Gradient with respect to gamma, cols.
    pub dgamma: Vec<f32>,
    /// Gradient with respect to beta, cols.
    pub dbeta: Vec<f32>,
}

impl NormContext {
    /// RMSNorm of host data; blocks until the result is back.
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
    pub fn rms_norm_forward(
        &self,
        x: &[f32],
        gamma: Option<&[f32]>,
        shape: Shape,
        config: &RmsNormConfig,
    ) -> Result<RmsNormOutput> {
        shape.checked()?;
        check_len("x", shape.elements(), x.len())?;
        check_opt_len("gamma", shape.cols, gamma)?;
        let xb = self.upload("x", x);
        let gb = gamma.map(|g| self.upload("gamma", g));
        let y = self.poisoned("y", shape.elements());
        let rstd = self.poisoned("rstd", shape.rows);
        let mut encoder = self.device().create_command_encoder(&Default::default());
        self.encode_rms_norm_forward(
            &mut encoder,
            shape,
            config,
            &RmsNormForward {
                x: (&xb).into(),
                gamma: gb.as_ref().map(Tensor::from),
                y: (&y).into(),
                rstd: Some((&rstd).into()),
            },
        )?;
        let [y, rstd] = self.finish_and_read(encoder, [&y, &rstd])?;
        Ok(RmsNormOutput { y, rstd })
    }

    /// RMSNorm backward of host data; `rstd` is the forward's saved statistic, or `None` to
    /// recompute it. Blocks until the result is back.
    pub fn rms_norm_backward(
        &self,
        x: &[f32],
        gamma: Option<&[f32]>,
        dy: &[f32],
        rstd: Option<&[f32]>,
        shape: Shape,
        config: &RmsNormConfig,
    ) -> Result<RmsNormGrads> {
        shape.checked()?;
        check_len("x", shape.elements(), x.len())?;
        check_len("dy", shape.elements(), dy.len())?;
        check_opt_len("gamma", shape.cols, gamma)?;
        check_opt_len("rstd", shape.rows, rstd)?;
        let xb = self.upload("x", x);
        let dyb = self.upload("dy", dy);
        let gb = gamma.map(|g| self.upload("gamma", g));
        let rb = rstd.map(|r| self.upload("rstd", r));
        let dx = self.poisoned("dx", shape.elements());
        let dgamma = self.poisoned("dgamma", shape.cols);
        let workspace = self.scratch(self.rms_norm_backward_workspace_size(shape)?);
        let mut encoder = self.device().create_command_encoder(&Default::default());
        self.encode_rms_norm_backward(
            &mut encoder,
            shape,
            config,
            &RmsNormBackward {
                x: (&xb).into(),
                gamma: gb.as_ref().map(Tensor::from),
                dy: (&dyb).into(),
                rstd: rb.as_ref().map(Tensor::from),
                dx: (&dx).into(),
                dgamma: Some((&dgamma).into()),
                workspace: Some((&workspace).into()),
            },
        )?;
        let [dx, dgamma] = self.finish_and_read(encoder, [&dx, &dgamma])?;
        Ok(RmsNormGrads { dx, dgamma })
    }

    /// LayerNorm of host data; blocks until the result is back.
    pub fn layer_norm_forward(
        &self,
        x: &[f32],
        gamma: Option<&[f32]>,
        beta: Option<&[f32]>,
        shape: Shape,
        config: &LayerNormConfig,
    ) -> Result<LayerNormOutput> {
        shape.checked()?;
        check_len("x", shape.elements(), x.len())?;
        check_opt_len("gamma", shape.cols, gamma)?;
        check_opt_len("beta", shape.cols, beta)?;
        let xb = self.upload("x", x);
        let gb = gamma.map(|g| self.upload("gamma", g));
        let bb = beta.map(|b| self.upload("beta", b));
        let y = self.poisoned("y", shape.elements());
        let mean = self.poisoned("mean", shape.rows);
        let rstd = self.poisoned("rstd", shape.rows);
        let mut encoder = self.device().create_command_encoder(&Default::default());
        self.encode_layer_norm_forward(
            &mut encoder,
            shape,
            config,
            &LayerNormForward {
                x: (&xb).into(),
                gamma: gb.as_ref().map(Tensor::from),
                beta: bb.as_ref().map(Tensor::from),
                y: (&y).into(),
                mean: Some((&mean).into()),
                rstd: Some((&rstd).into()),
            },
        )?;
        let [y, mean, rstd] = self.finish_and_read(encoder, [&y, &mean, &rstd])?;
        Ok(LayerNormOutput { y, mean, rstd })
    }

    /// LayerNorm backward of host data; `mean` and `rstd` are the forward's saved
    /// statistics, each `None` to recompute it. Blocks until the result is back.
    #[expect(
        clippy::too_many_arguments,
        reason = "one slice per tensor of the operation"
    )]
    pub fn layer_norm_backward(
        &self,
        x: &[f32],
        gamma: Option<&[f32]>,
        dy: &[f32],
        mean: Option<&[f32]>,
        rstd: Option<&[f32]>,
        shape: Shape,
        config: &LayerNormConfig,
    ) -> Result<LayerNormGrads> {
        shape.checked()?;
        check_len("x", shape.elements(), x.len())?;
        check_len("dy", shape.elements(), dy.len())?;
        check_opt_len("gamma", shape.cols, gamma)?;
        check_opt_len("mean", shape.rows, mean)?;
        check_opt_len("rstd", shape.rows, rstd)?;
        let xb = self.upload("x", x);
        let dyb = self.upload("dy", dy);
        let gb = gamma.map(|g| self.upload("gamma", g));
        let mb = mean.map(|m| self.upload("mean", m));
        let rb = rstd.map(|r| self.upload("rstd", r));
        let dx = self.poisoned("dx", shape.elements());
        let dgamma = self.poisoned("dgamma", shape.cols);
        let dbeta = self.poisoned("dbeta", shape.cols);
        let workspace = self.scratch(self.layer_norm_backward_workspace_size(shape)?);
        let mut encoder = self.device().create_command_encoder(&Default::default());
        self.encode_layer_norm_backward(
            &mut encoder,
            shape,
            config,
            &LayerNormBackward {
                x: (&xb).into(),
                gamma: gb.as_ref().map(Tensor::from),
                dy: (&dyb).into(),
                mean: mb.as_ref().map(Tensor::from),
                rstd: rb.as_ref().map(Tensor::from),
                dx: (&dx).into(),
                dgamma: Some((&dgamma).into()),
                dbeta: Some((&dbeta).into()),
                workspace: Some((&workspace).into()),
            },
        )?;
        let [dx, dgamma, dbeta] = self.finish_and_read(encoder, [&dx, &dgamma, &dbeta])?;
        Ok(LayerNormGrads { dx, dgamma, dbeta })
    }

    fn upload(&self, label: &str, data: &[f32]) -> wgpu::Buffer {
        self.device()
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            })
    }

    /// An output buffer filled with NaN, so an element a kernel fails to write reads back
    /// as NaN instead of a plausible zero.
    fn poisoned(&self, label: &str, len: usize) -> wgpu::Buffer {
        self.upload(label, &vec![f32::NAN; len])
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
    ) -> Result<[Vec<f32>; N]> {
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
            return Err(NormError::Wgpu {
                during: "submission",
                message: e.to_string(),
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        for (i, b) in staging.iter().enumerate() {
            let tx = tx.clone();
            b.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send((i, r));
            });
        }
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| NormError::Readback(e.to_string()))?;
        drop(tx);
        for (i, r) in rx.iter() {
            r.map_err(|e| NormError::Readback(format!("buffer {i}: {e}")))?;
        }
        let mut out = [const { Vec::new() }; N];
        for (o, b) in out.iter_mut().zip(&staging) {
            let view = b
                .slice(..)
                .get_mapped_range()
                .map_err(|e| NormError::Readback(e.to_string()))?;
            *o = bytemuck::cast_slice::<u8, f32>(&view).to_vec();
            drop(view);
            b.unmap();
        }
        Ok(out)
    }
}

fn check_opt_len(what: &'static str, expected: usize, v: Option<&[f32]>) -> Result<()> {
    v.map_or(Ok(()), |v| check_len(what, expected, v.len()))
}
