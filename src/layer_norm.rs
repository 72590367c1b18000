//! LayerNorm: recording into a caller's encoder.

use crate::context::NormContext;
use crate::dispatch::{self, Dispatch, Recorder, Slot, Tensor, binding};
use crate::error::{NormError, Result};
use crate::params::{Params, flags};
use crate::rms_norm::set_if;
use crate::shader::Kernel;
use crate::shape::{Shape, check_eps};

/// LayerNorm settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNormConfig {
    /// Added to the (biased) variance; finite and >= 0.
    pub eps: f32,
}

impl Default for LayerNormConfig {
    fn default() -> Self {
        LayerNormConfig { eps: 1e-5 }
    }
}

/// Tensors of a LayerNorm forward: `y = (x - mean) * rstd * gamma + beta`.
#[derive(Clone, Copy, Debug)]
pub struct LayerNormForward<'a> {
    /// Input, rows x cols.
    pub x: Tensor<'a>,
    /// Scale, cols; `None` means all ones.
    pub gamma: Option<Tensor<'a>>,
    /// Shift, cols; `None` means zeros.
    pub beta: Option<Tensor<'a>>,
    /// Output, rows x cols.
    pub y: Tensor<'a>,
    /// Per-row mean output (rows); `None` skips it.
    pub mean: Option<Tensor<'a>>,
    /// Per-row rstd output (rows); `None` skips it.
    pub rstd: Option<Tensor<'a>>,
}

/// Tensors of a LayerNorm backward.
#[derive(Clone, Copy, Debug)]
pub struct LayerNormBackward<'a> {
    /// The forward's input, rows x cols.
    pub x: Tensor<'a>,
    /// The forward's scale, cols; `None` means all ones.
    pub gamma: Option<Tensor<'a>>,
    /// Gradient of the loss with respect to y, rows x cols.
    pub dy: Tensor<'a>,
    /// The forward's saved mean (rows); `None` recomputes it.
    pub mean: Option<Tensor<'a>>,
    /// The forward's saved rstd (rows); `None` recomputes it.
    pub rstd: Option<Tensor<'a>>,
    /// Output: gradient with respect to x, rows x cols.
    pub dx: Tensor<'a>,
    /// Output: gradient with respect to gamma (cols); `None` skips it.
    pub dgamma: Option<Tensor<'a>>,
    /// Output: gradient with respect to beta (cols); `None` skips it.
    pub dbeta: Option<Tensor<'a>>,
    /// Scratch for the partial sums, at least
    /// [`NormContext::layer_norm_backward_workspace_size`] bytes; needed with dgamma or dbeta.
    pub workspace: Option<Tensor<'a>>,
}

impl NormContext {
    /// Records a LayerNorm forward into `encoder`. Nothing is submitted.
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
    ///     &LayerNormConfig { eps: 1e-5 },
    ///     &LayerNormForward {
    ///         x: Tensor::new(acts, 0),
    ///         gamma: Some(Tensor::new(w, 0)),
    ///         beta: Some(Tensor::new(w, 768 * 4)),
    ///         y: Tensor::new(acts, (8 * 768 * 4) as u64),
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
        let (rows, cols) = shape.checked()?;
        check_eps(config.eps)?;
        let launch = self.row_launch(rows, cols, false);
        let mut f = 0;
        set_if(&mut f, flags::GAMMA, args.gamma.is_some());
        set_if(&mut f, flags::BETA, args.beta.is_some());
        set_if(&mut f, flags::MEAN, args.mean.is_some());
        set_if(&mut f, flags::RSTD, args.rstd.is_some());
        let params = Params {
            rows,
            cols,
            eps_bits: config.eps.to_bits(),
            flags: f,
            ..Default::default()
        };
        let (n, c, r) = (shape.elements() as u64, u64::from(cols), u64::from(rows));
        let d = Dispatch {
            kernel: Kernel::LayerNormForward,
            launch: Some(launch),
            groups: launch.groups,
            params,
            slots: vec![
                Slot::new(binding::X, "x", Some(args.x), n),
                Slot::new(binding::GAMMA, "gamma", args.gamma, c),
                Slot::new(binding::BETA, "beta", args.beta, c),
                Slot::new(binding::Y, "y", Some(args.y), n),
                Slot::new(binding::MEAN, "mean", args.mean, r),
                Slot::new(binding::RSTD, "rstd", args.rstd, r),
            ],
        };
        dispatch::record(self, encoder, "wgpu_norm.layer_norm_forward", vec![d])
    }

    /// Bytes of workspace [`LayerNormBackward::workspace`] needs for `shape` on this context.
    pub fn layer_norm_backward_workspace_size(&self, shape: Shape) -> Result<u64> {
        let (rows, cols) = shape.checked()?;
        Ok(dispatch::workspace_bytes(self, rows, cols, 2))
    }

    /// Records a LayerNorm backward (dx, and dgamma/dbeta when asked) into `encoder`.
    /// dgamma and dbeta are summed deterministically: the same inputs give bitwise the same
    /// result.
    pub fn encode_layer_norm_backward(
        &self,
        encoder: &mut impl Recorder,
        shape: Shape,
        config: &LayerNormConfig,
        args: &LayerNormBackward<'_>,
    ) -> Result<()> {
        let (rows, cols) = shape.checked()?;
        check_eps(config.eps)?;
        let wants_sums = args.dgamma.is_some() || args.dbeta.is_some();
        if wants_sums && args.workspace.is_none() {
            return Err(NormError::MissingArgument {
                what: "workspace",
                why: "dgamma and dbeta are summed over rows through it",
            });
        }
        let launch = self.row_launch(rows, cols, true);
        let mut f = 0;
        set_if(&mut f, flags::GAMMA, args.gamma.is_some());
        set_if(&mut f, flags::MEAN, args.mean.is_some());
        set_if(&mut f, flags::RSTD, args.rstd.is_some());
        set_if(&mut f, flags::DGAMMA, args.dgamma.is_some());
        set_if(&mut f, flags::DBETA, args.dbeta.is_some());
        let params = Params {
            rows,
            cols,
            eps_bits: config.eps.to_bits(),
            flags: f,
            part_rows: launch.partial_rows(),
            ..Default::default()
        };
        let (n, c, r) = (shape.elements() as u64, u64::from(cols), u64::from(rows));
        let ws = 2 * u64::from(launch.partial_rows()) * c;
        let workspace = args.workspace.filter(|_| wants_sums);
        let mut dispatches = vec![Dispatch {
            kernel: Kernel::LayerNormBackward,
            launch: Some(launch),
            groups: launch.groups,
            params,
            slots: vec![
                Slot::new(binding::X, "x", Some(args.x), n),
                Slot::new(binding::GAMMA, "gamma", args.gamma, c),
                Slot::new(binding::MEAN, "mean", args.mean, r),
                Slot::new(binding::RSTD, "rstd", args.rstd, r),
                Slot::new(binding::DY, "dy", Some(args.dy), n),
                Slot::new(binding::DX, "dx", Some(args.dx), n),
                Slot::new(binding::PARTIAL, "workspace", workspace, ws),
            ],
        }];
        if wants_sums {
            dispatches.push(dispatch::column_sums(
                self,
                params,
                workspace,
                ws,
                args.dgamma,
                args.dbeta,
            ));
        }
        dispatch::record(self, encoder, "wgpu_norm.layer_norm_backward", dispatches)
    }
}
