//! LayerNorm: recording into a caller's encoder.

use crate::context::NormContext;
use crate::dispatch::{self, Dispatch, Recorder, Slot, Tensor, binding};
use crate::dtype::Storage;
use crate::error::{NormError, Result};
use crate::params::{Params, flags};
use crate::rms_norm::{check_offset, param_slot, row_params, row_slot, set_if};
use crate::shader::Kernel;
use crate::shape::{Shape, check_eps};

/// LayerNorm settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNormConfig {
    /// Added to the (biased) variance; finite and >= 0.
    pub eps: f32,
    /// `y = xh * (gamma_offset + gamma) + beta`, the offset added in f32. Ignored without
    /// gamma.
    pub gamma_offset: f32,
    /// Dtypes of the tensors.
    pub storage: Storage,
}

impl Default for LayerNormConfig {
    fn default() -> Self {
        LayerNormConfig { eps: 1e-5, gamma_offset: 0.0, storage: Storage::default() }
    }
}

impl LayerNormConfig {
    fn params(&self, shape: Shape) -> Result<Params> {
        check_eps(self.eps)?;
        check_offset(self.gamma_offset)?;
        self.storage.check()?;
        row_params(shape, self.eps, self.gamma_offset)
    }
}

/// Tensors of a LayerNorm forward: `y = (h - mean) * rstd * gamma + beta`, `h = x (+ residual)`.
#[derive(Clone, Copy, Debug)]
pub struct LayerNormForward<'a> {
    /// Input rows.
    pub x: Tensor<'a>,
    /// Fused residual add: the norm's input is `x + residual`; `None` for plain `x`.
    pub residual: Option<Tensor<'a>>,
    /// Scale, cols; `None` means all ones.
    pub gamma: Option<Tensor<'a>>,
    /// Shift, cols; `None` means zeros.
    pub beta: Option<Tensor<'a>>,
    /// Output rows; may be `x` itself (in place).
    pub y: Tensor<'a>,
    /// Output: `h = x + residual` (the new residual stream); may be `x` or `residual`.
    pub h: Option<Tensor<'a>>,
    /// Per-row mean output (rows, f32); `None` skips it.
    pub mean: Option<Tensor<'a>>,
    /// Per-row rstd output (rows, f32); `None` skips it.
    pub rstd: Option<Tensor<'a>>,
}

/// Tensors of a LayerNorm backward.
#[derive(Clone, Copy, Debug)]
pub struct LayerNormBackward<'a> {
    /// The forward's input rows: with a fused residual add, the `h` it wrote out.
    pub x: Tensor<'a>,
    /// The forward's scale, cols; `None` means all ones.
    pub gamma: Option<Tensor<'a>>,
    /// Gradient of the loss with respect to y.
    pub dy: Tensor<'a>,
    /// Gradient arriving on h, when the forward wrote h out; added to dx.
    pub dh: Option<Tensor<'a>>,
    /// The forward's saved mean (rows); `None` recomputes it.
    pub mean: Option<Tensor<'a>>,
    /// The forward's saved rstd (rows); `None` recomputes it.
    pub rstd: Option<Tensor<'a>>,
    /// Output: gradient with respect to x (and to the residual); may be `dy` or `dh`.
    pub dx: Tensor<'a>,
    /// Output: gradient with respect to gamma (cols, f32); `None` skips it.
    pub dgamma: Option<Tensor<'a>>,
    /// Output: gradient with respect to beta (cols, f32); `None` skips it.
    pub dbeta: Option<Tensor<'a>>,
    /// Scratch for the partial sums, at least
    /// [`NormContext::layer_norm_backward_workspace_size`] bytes; needed with dgamma or dbeta.
    pub workspace: Option<Tensor<'a>>,
}

impl NormContext {
    /// Records a LayerNorm forward into `encoder` (or an open compute pass). Nothing is
    /// submitted.
    ///
    /// ```no_run
    /// use wgpu_norm::{LayerNormConfig, LayerNormForward, NormContext, Shape, Tensor};
    /// # fn run(ctx: &NormContext, acts: &wgpu::Buffer, w: &wgpu::Buffer) -> wgpu_norm::Result<()> {
    /// // x and y live in one activation buffer; gamma and beta side by side in another.
    /// let shape = Shape::new(8, 768);
    /// let mut encoder = ctx.device().create_command_encoder(&Default::default());
    /// ctx.encode_layer_norm_forward(
    ///     &mut encoder,
    ///     shape,
    ///     &LayerNormConfig { eps: 1e-5, ..Default::default() },
    ///     &LayerNormForward {
    ///         x: Tensor::new(acts, 0),
    ///         residual: None,
    ///         gamma: Some(Tensor::new(w, 0)),
    ///         beta: Some(Tensor::new(w, 768 * 4)),
    ///         y: Tensor::new(acts, (8 * 768 * 4) as u64),
    ///         h: None,
    ///         mean: None,
    ///         rstd: None,
    ///     },
    /// )?;
    /// ctx.queue().submit([encoder.finish()]);
    /// # Ok(()) }
    /// ```
    pub fn encode_layer_norm_forward(
        &self,
        encoder: &mut impl Recorder,
        shape: Shape,
        config: &LayerNormConfig,
        args: &LayerNormForward<'_>,
    ) -> Result<()> {
        let mut params = config.params(shape)?;
        let st = config.storage;
        let f = &mut params.flags;
        set_if(f, flags::GAMMA, args.gamma.is_some());
        set_if(f, flags::BETA, args.beta.is_some());
        set_if(f, flags::MEAN, args.mean.is_some());
        set_if(f, flags::RSTD, args.rstd.is_some());
        set_if(f, flags::RESIDUAL, args.residual.is_some());
        set_if(f, flags::H_OUT, args.h.is_some());
        let launch = self.row_launch(Kernel::LayerNormForward, params.rows, params.cols);
        let r = shape.rows as u64;
        let d = Dispatch {
            kernel: Kernel::LayerNormForward,
            storage: st,
            launch: Some(launch),
            groups: launch.groups,
            params,
            slots: vec![
                row_slot(binding::X, "x", Some(args.x), shape, st),
                row_slot(binding::RESIDUAL, "residual", args.residual, shape, st),
                param_slot(binding::GAMMA, "gamma", args.gamma, shape, st),
                param_slot(binding::BETA, "beta", args.beta, shape, st),
                row_slot(binding::Y, "y", Some(args.y), shape, st),
                row_slot(binding::H, "h", args.h, shape, st),
                Slot::new(binding::MEAN, "mean", args.mean, r),
                Slot::new(binding::RSTD, "rstd", args.rstd, r),
            ],
        };
        dispatch::record(self, encoder, "wgpu_norm.layer_norm_forward", vec![d])
    }

    /// Bytes of workspace [`LayerNormBackward::workspace`] needs for `shape` on this context.
    pub fn layer_norm_backward_workspace_size(&self, shape: Shape) -> Result<u64> {
        let (rows, cols) = shape.checked()?;
        Ok(dispatch::workspace_bytes(self, Kernel::LayerNormBackward, rows, cols))
    }

    /// Records a LayerNorm backward (dx, and dgamma/dbeta when asked) into `encoder` (or an
    /// open compute pass). dgamma and dbeta are summed deterministically: the same inputs
    /// give bitwise the same result.
    pub fn encode_layer_norm_backward(
        &self,
        encoder: &mut impl Recorder,
        shape: Shape,
        config: &LayerNormConfig,
        args: &LayerNormBackward<'_>,
    ) -> Result<()> {
        let mut params = config.params(shape)?;
        let wants_sums = args.dgamma.is_some() || args.dbeta.is_some();
        if wants_sums && args.workspace.is_none() {
            return Err(NormError::MissingArgument {
                what: "workspace",
                why: "dgamma and dbeta are summed over rows through it",
            });
        }
        let st = config.storage;
        let launch = self.row_launch(Kernel::LayerNormBackward, params.rows, params.cols);
        params.part_rows = launch.partial_rows;
        let f = &mut params.flags;
        set_if(f, flags::GAMMA, args.gamma.is_some());
        set_if(f, flags::MEAN, args.mean.is_some());
        set_if(f, flags::RSTD, args.rstd.is_some());
        set_if(f, flags::DGAMMA, args.dgamma.is_some());
        set_if(f, flags::DBETA, args.dbeta.is_some());
        set_if(f, flags::DH, args.dh.is_some());
        let r = shape.rows as u64;
        let ws = 2 * u64::from(launch.partial_rows) * shape.cols as u64;
        let workspace = args.workspace.filter(|_| wants_sums);
        let mut dispatches = vec![Dispatch {
            kernel: Kernel::LayerNormBackward,
            storage: st,
            launch: Some(launch),
            groups: launch.groups,
            params,
            slots: vec![
                row_slot(binding::X, "x", Some(args.x), shape, st),
                param_slot(binding::GAMMA, "gamma", args.gamma, shape, st),
                row_slot(binding::DY, "dy", Some(args.dy), shape, st),
                row_slot(binding::DH, "dh", args.dh, shape, st),
                Slot::new(binding::MEAN, "mean", args.mean, r),
                Slot::new(binding::RSTD, "rstd", args.rstd, r),
                row_slot(binding::DX, "dx", Some(args.dx), shape, st),
                Slot::new(binding::PARTIAL, "workspace", workspace, ws),
            ],
        }];
        if wants_sums {
            dispatches.push(dispatch::column_sums(self, params, workspace, ws, args.dgamma, args.dbeta));
        }
        dispatch::record(self, encoder, "wgpu_norm.layer_norm_backward", dispatches)
    }
}
