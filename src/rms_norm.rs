//! RMSNorm: recording into a caller's encoder.

use crate::context::NormContext;
use crate::dispatch::{self, Dispatch, Recorder, Slot, Tensor, binding};
use crate::error::{NormError, Result};
use crate::params::{Params, flags};
use crate::shader::Kernel;
use crate::shape::{EpsPlacement, Shape, check_eps};

/// RMSNorm settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsNormConfig {
    /// Added to the mean square (or to the RMS, see `eps_placement`); finite and >= 0.
    pub eps: f32,
    /// Where eps goes.
    pub eps_placement: EpsPlacement,
}

impl Default for RmsNormConfig {
    fn default() -> Self {
        RmsNormConfig {
            eps: 1e-6,
            eps_placement: EpsPlacement::InsideSqrt,
        }
    }
}

impl RmsNormConfig {
    fn flags(&self) -> u32 {
        match self.eps_placement {
            EpsPlacement::InsideSqrt => 0,
            EpsPlacement::OutsideSqrt => flags::EPS_OUTSIDE,
        }
    }
}

/// Tensors of an RMSNorm forward: `y = x * rstd * gamma`.
#[derive(Clone, Copy, Debug)]
pub struct RmsNormForward<'a> {
    /// Input, rows x cols.
    pub x: Tensor<'a>,
    /// Scale, cols; `None` means all ones.
    pub gamma: Option<Tensor<'a>>,
    /// Output, rows x cols.
    pub y: Tensor<'a>,
    /// Per-row rstd output (rows), kept for backward; `None` in inference.
    pub rstd: Option<Tensor<'a>>,
}

/// Tensors of an RMSNorm backward.
#[derive(Clone, Copy, Debug)]
pub struct RmsNormBackward<'a> {
    /// The forward's input, rows x cols.
    pub x: Tensor<'a>,
    /// The forward's scale, cols; `None` means all ones.
    pub gamma: Option<Tensor<'a>>,
    /// Gradient of the loss with respect to y, rows x cols.
    pub dy: Tensor<'a>,
    /// The forward's saved rstd (rows); `None` recomputes it.
    pub rstd: Option<Tensor<'a>>,
    /// Output: gradient with respect to x, rows x cols.
    pub dx: Tensor<'a>,
    /// Output: gradient with respect to gamma (cols); `None` skips it.
    pub dgamma: Option<Tensor<'a>>,
    /// Scratch for dgamma's partial sums, at least
    /// [`NormContext::rms_norm_backward_workspace_size`] bytes; needed with `dgamma`.
    pub workspace: Option<Tensor<'a>>,
}

impl NormContext {
    /// Records an RMSNorm forward into `encoder`. Nothing is submitted.
    ///
    /// ```no_run
    /// use wgpu_norm::{NormContext, RmsNormConfig, RmsNormForward, Shape};
    /// # fn run(ctx: &NormContext, x: &wgpu::Buffer, y: &wgpu::Buffer) -> wgpu_norm::Result<()> {
    /// let mut encoder = ctx.device().create_command_encoder(&Default::default());
    /// ctx.encode_rms_norm_forward(
    ///     &mut encoder,
    ///     Shape::new(32, 4096),
    ///     &RmsNormConfig::default(),
    ///     &RmsNormForward { x: x.into(), gamma: None, y: y.into(), rstd: None },
    /// )?;
    /// ctx.queue().submit([encoder.finish()]);
    /// # Ok(()) }
    /// ```
    pub fn encode_rms_norm_forward(
        &self,
        encoder: &mut impl Recorder,
        shape: Shape,
        config: &RmsNormConfig,
        args: &RmsNormForward<'_>,
    ) -> Result<()> {
        let (rows, cols) = shape.checked()?;
        check_eps(config.eps)?;
        let launch = self.row_launch(rows, cols, false);
        let mut f = config.flags();
        set_if(&mut f, flags::GAMMA, args.gamma.is_some());
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
            kernel: Kernel::RmsNormForward,
            launch: Some(launch),
            groups: launch.groups,
            params,
            slots: vec![
                Slot::new(binding::X, "x", Some(args.x), n),
                Slot::new(binding::GAMMA, "gamma", args.gamma, c),
                Slot::new(binding::Y, "y", Some(args.y), n),
                Slot::new(binding::RSTD, "rstd", args.rstd, r),
            ],
        };
        dispatch::record(self, encoder, "wgpu_norm.rms_norm_forward", vec![d])
    }

    /// Bytes of workspace [`RmsNormBackward::workspace`] needs for `shape` on this context.
    pub fn rms_norm_backward_workspace_size(&self, shape: Shape) -> Result<u64> {
        let (rows, cols) = shape.checked()?;
        Ok(dispatch::workspace_bytes(self, rows, cols, 1))
    }

    /// Records an RMSNorm backward (dx, and dgamma when asked) into `encoder`.
    /// dgamma is summed deterministically: the same inputs give bitwise the same result.
    pub fn encode_rms_norm_backward(
        &self,
        encoder: &mut impl Recorder,
        shape: Shape,
        config: &RmsNormConfig,
        args: &RmsNormBackward<'_>,
    ) -> Result<()> {
        let (rows, cols) = shape.checked()?;
        check_eps(config.eps)?;
        if args.dgamma.is_some() && args.workspace.is_none() {
            return Err(NormError::MissingArgument {
                what: "workspace",
                why: "dgamma is summed over rows through it",
            });
        }
        let launch = self.row_launch(rows, cols, true);
        let mut f = config.flags();
        set_if(&mut f, flags::GAMMA, args.gamma.is_some());
        set_if(&mut f, flags::RSTD, args.rstd.is_some());
        set_if(&mut f, flags::DGAMMA, args.dgamma.is_some());
        let params = Params {
            rows,
            cols,
            eps_bits: config.eps.to_bits(),
            flags: f,
            part_rows: launch.partial_rows(),
            ..Default::default()
        };
        let (n, c, r) = (shape.elements() as u64, u64::from(cols), u64::from(rows));
        let ws = u64::from(launch.partial_rows()) * c;
        let mut dispatches = vec![Dispatch {
            kernel: Kernel::RmsNormBackward,
            launch: Some(launch),
            groups: launch.groups,
            params,
            slots: vec![
                Slot::new(binding::X, "x", Some(args.x), n),
                Slot::new(binding::GAMMA, "gamma", args.gamma, c),
                Slot::new(binding::RSTD, "rstd", args.rstd, r),
                Slot::new(binding::DY, "dy", Some(args.dy), n),
                Slot::new(binding::DX, "dx", Some(args.dx), n),
                Slot::new(
                    binding::PARTIAL,
                    "workspace",
                    args.workspace.filter(|_| args.dgamma.is_some()),
                    ws,
                ),
            ],
        }];
        if args.dgamma.is_some() {
            dispatches.push(dispatch::column_sums(
                self,
                params,
                args.workspace,
                ws,
                args.dgamma,
                None,
            ));
        }
        dispatch::record(self, encoder, "wgpu_norm.rms_norm_backward", dispatches)
    }
}

pub(crate) fn set_if(flags: &mut u32, flag: u32, on: bool) {
    if on {
        *flags |= flag;
    }
}
