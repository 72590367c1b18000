//! RMSNorm: recording into a caller's encoder.

use crate::context::NormContext;
use crate::dispatch::{self, Dispatch, Recorder, Slot, Tensor, binding};
use crate::dtype::Storage;
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
    /// `y = xh * (gamma_offset + gamma)`, the offset added in f32 (Gemma uses 1), so that
    /// `1 + gamma` does not round through a 16-bit gamma. Ignored without gamma.
    pub gamma_offset: f32,
    /// Partial RMSNorm: the RMS is estimated from the first `floor(p * cols)` elements of
    /// each row (at least one), p in (0, 1]; `None` uses the whole row.
    pub partial: Option<f32>,
    /// Dtypes of the tensors.
    pub storage: Storage,
}

impl Default for RmsNormConfig {
    fn default() -> Self {
        RmsNormConfig {
            eps: 1e-6,
            eps_placement: EpsPlacement::InsideSqrt,
            gamma_offset: 0.0,
            partial: None,
            storage: Storage::default(),
        }
    }
}

impl RmsNormConfig {
    /// Elements of a row of `cols` the RMS is estimated from.
    pub fn norm_cols(&self, cols: usize) -> usize {
        match self.partial {
            Some(p) => ((p as f64 * cols as f64).floor() as usize).clamp(1, cols),
            None => cols,
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        check_eps(self.eps)?;
        check_offset(self.gamma_offset)?;
        if let Some(p) = self.partial {
            if !(p > 0.0 && p <= 1.0) {
                return Err(NormError::InvalidPartial(p));
            }
        }
        self.storage.check()
    }

    fn params(&self, shape: Shape) -> Result<Params> {
        self.check()?;
        let mut p = row_params(shape, self.eps, self.gamma_offset)?;
        p.norm_cols = self.norm_cols(shape.cols) as u32;
        if p.norm_cols < p.cols {
            p.flags |= flags::PARTIAL;
        }
        if self.eps_placement == EpsPlacement::OutsideSqrt {
            p.flags |= flags::EPS_OUTSIDE;
        }
        Ok(p)
    }
}

pub(crate) fn check_offset(v: f32) -> Result<()> {
    if v.is_finite() { Ok(()) } else { Err(NormError::InvalidGammaOffset(v)) }
}

/// The parameter block every row kernel starts from.
pub(crate) fn row_params(shape: Shape, eps: f32, gamma_offset: f32) -> Result<Params> {
    let (rows, cols) = shape.checked()?;
    Ok(Params {
        rows,
        cols,
        eps_bits: eps.to_bits(),
        stride: shape.row_stride as u32,
        norm_cols: cols,
        gamma_shift_bits: gamma_offset.to_bits(),
        ..Default::default()
    })
}

/// Tensors of an RMSNorm forward: `y = h * rstd * gamma` with `h = x (+ residual)`.
#[derive(Clone, Copy, Debug)]
pub struct RmsNormForward<'a> {
    /// Input rows.
    pub x: Tensor<'a>,
    /// Fused residual add: the norm's input is `x + residual`; `None` for plain `x`.
    pub residual: Option<Tensor<'a>>,
    /// Scale, cols; `None` means all ones.
    pub gamma: Option<Tensor<'a>>,
    /// Output rows; may be `x` itself (in place).
    pub y: Tensor<'a>,
    /// Output: `h = x + residual` (the new residual stream); may be `x` or `residual`.
    pub h: Option<Tensor<'a>>,
    /// Per-row rstd output (rows, f32), kept for backward; `None` in inference.
    pub rstd: Option<Tensor<'a>>,
}

/// Tensors of an RMSNorm backward.
#[derive(Clone, Copy, Debug)]
pub struct RmsNormBackward<'a> {
    /// The forward's input rows: with a fused residual add, the `h` it wrote out.
    pub x: Tensor<'a>,
    /// The forward's scale, cols; `None` means all ones.
    pub gamma: Option<Tensor<'a>>,
    /// Gradient of the loss with respect to y.
    pub dy: Tensor<'a>,
    /// Gradient arriving on h, when the forward wrote h out; added to dx.
    pub dh: Option<Tensor<'a>>,
    /// The forward's saved rstd (rows); `None` recomputes it.
    pub rstd: Option<Tensor<'a>>,
    /// Output: gradient with respect to x (and to the residual: they are equal); may be
    /// `dy` or `dh` itself (in place).
    pub dx: Tensor<'a>,
    /// Output: gradient with respect to gamma (cols, f32); `None` skips it.
    pub dgamma: Option<Tensor<'a>>,
    /// Scratch for dgamma's partial sums, at least
    /// [`NormContext::rms_norm_backward_workspace_size`] bytes; needed with `dgamma`.
    pub workspace: Option<Tensor<'a>>,
}

pub(crate) fn set_if(flags: &mut u32, flag: u32, on: bool) {
    if on {
        *flags |= flag;
    }
}

/// Slots of the row tensors every norm kernel has, in `storage`'s dtypes.
pub(crate) fn row_slot<'a>(
    binding: u32,
    what: &'static str,
    t: Option<Tensor<'a>>,
    shape: Shape,
    storage: Storage,
) -> Slot<'a> {
    Slot::typed(binding, what, t, shape.span() as u64, storage.activations)
}

pub(crate) fn param_slot<'a>(
    binding: u32,
    what: &'static str,
    t: Option<Tensor<'a>>,
    shape: Shape,
    storage: Storage,
) -> Slot<'a> {
    Slot::typed(binding, what, t, shape.cols as u64, storage.params)
}

impl NormContext {
    /// Records an RMSNorm forward into `encoder` (or an open compute pass). Nothing is
    /// submitted.
    ///
    /// ```no_run
    /// use wgpu_norm::{NormContext, RmsNormConfig, RmsNormForward, Shape};
    /// # fn run(ctx: &NormContext, x: &wgpu::Buffer, y: &wgpu::Buffer) -> wgpu_norm::Result<()> {
    /// let mut encoder = ctx.device().create_command_encoder(&Default::default());
    /// ctx.encode_rms_norm_forward(
    ///     &mut encoder,
    ///     Shape::new(32, 4096),
    ///     &RmsNormConfig::default(),
    ///     &RmsNormForward { x: x.into(), residual: None, gamma: None, y: y.into(), h: None, rstd: None },
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
        let mut params = config.params(shape)?;
        let st = config.storage;
        let f = &mut params.flags;
        set_if(f, flags::GAMMA, args.gamma.is_some());
        set_if(f, flags::RSTD, args.rstd.is_some());
        set_if(f, flags::RESIDUAL, args.residual.is_some());
        set_if(f, flags::H_OUT, args.h.is_some());
        let launch = self.row_launch(Kernel::RmsNormForward, params.rows, params.cols);
        let d = Dispatch {
            kernel: Kernel::RmsNormForward,
            storage: st,
            launch: Some(launch),
            groups: launch.groups,
            params,
            slots: vec![
                row_slot(binding::X, "x", Some(args.x), shape, st),
                row_slot(binding::RESIDUAL, "residual", args.residual, shape, st),
                param_slot(binding::GAMMA, "gamma", args.gamma, shape, st),
                row_slot(binding::Y, "y", Some(args.y), shape, st),
                row_slot(binding::H, "h", args.h, shape, st),
                Slot::new(binding::RSTD, "rstd", args.rstd, shape.rows as u64),
            ],
        };
        dispatch::record(self, encoder, "wgpu_norm.rms_norm_forward", vec![d])
    }

    /// Bytes of workspace [`RmsNormBackward::workspace`] needs for `shape` on this context.
    pub fn rms_norm_backward_workspace_size(&self, shape: Shape) -> Result<u64> {
        let (rows, cols) = shape.checked()?;
        Ok(dispatch::workspace_bytes(self, Kernel::RmsNormBackward, rows, cols))
    }

    /// Records an RMSNorm backward (dx, and dgamma when asked) into `encoder` (or an open
    /// compute pass). dgamma is summed deterministically: the same inputs give bitwise the
    /// same result.
    pub fn encode_rms_norm_backward(
        &self,
        encoder: &mut impl Recorder,
        shape: Shape,
        config: &RmsNormConfig,
        args: &RmsNormBackward<'_>,
    ) -> Result<()> {
        let mut params = config.params(shape)?;
        if args.dgamma.is_some() && args.workspace.is_none() {
            return Err(NormError::MissingArgument {
                what: "workspace",
                why: "dgamma is summed over rows through it",
            });
        }
        let st = config.storage;
        let launch = self.row_launch(Kernel::RmsNormBackward, params.rows, params.cols);
        params.part_rows = launch.partial_rows;
        let f = &mut params.flags;
        set_if(f, flags::GAMMA, args.gamma.is_some());
        set_if(f, flags::RSTD, args.rstd.is_some());
        set_if(f, flags::DGAMMA, args.dgamma.is_some());
        set_if(f, flags::DH, args.dh.is_some());
        let ws = u64::from(launch.partial_rows) * shape.cols as u64;
        let workspace = args.workspace.filter(|_| args.dgamma.is_some());
        let mut dispatches = vec![Dispatch {
            kernel: Kernel::RmsNormBackward,
            storage: st,
            launch: Some(launch),
            groups: launch.groups,
            params,
            slots: vec![
                row_slot(binding::X, "x", Some(args.x), shape, st),
                param_slot(binding::GAMMA, "gamma", args.gamma, shape, st),
                row_slot(binding::DY, "dy", Some(args.dy), shape, st),
                row_slot(binding::DH, "dh", args.dh, shape, st),
                Slot::new(binding::RSTD, "rstd", args.rstd, shape.rows as u64),
                row_slot(binding::DX, "dx", Some(args.dx), shape, st),
                Slot::new(binding::PARTIAL, "workspace", workspace, ws),
            ],
        }];
        if args.dgamma.is_some() {
            dispatches.push(dispatch::column_sums(self, params, workspace, ws, args.dgamma, None));
        }
        dispatch::record(self, encoder, "wgpu_norm.rms_norm_backward", dispatches)
    }
}
