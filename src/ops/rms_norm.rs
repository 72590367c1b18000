//! RMSNorm: its config, its tensors and their tables, forward and backward.

use crate::dtype::Storage;
use crate::error::{NormError, Result};
use crate::ops::op::{Op, OpConfig, OpKind};
use crate::ops::params::{GUARD_HI, GUARD_LO, Params, TINY, flags, pow2};
use crate::ops::table::{
    DGAMMA, DH, DX, DY, GAMMA, H, RESIDUAL, RSTD_IN, RSTD_OUT, TensorSpec, X, Y, workspace,
};
use crate::runtime::binding::Tensor;
use crate::shader::Kernel;
use crate::shape::{EpsPlacement, ResidualAdd, check_eps};

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
    /// Where a fused residual joins: the norm's input (pre-norm, the default) or its
    /// output (post-norm).
    pub residual_add: ResidualAdd,
    /// The dtype of each tensor.
    pub storage: Storage,
}

impl Default for RmsNormConfig {
    fn default() -> Self {
        RmsNormConfig {
            eps: 1e-6,
            eps_placement: EpsPlacement::InsideSqrt,
            gamma_offset: 0.0,
            partial: None,
            residual_add: ResidualAdd::BeforeNorm,
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
}

impl OpConfig for RmsNormConfig {
    fn check(&self) -> Result<()> {
        check_eps(self.eps)?;
        check_offset(self.gamma_offset)?;
        if let Some(p) = self.partial {
            if !(p > 0.0 && p <= 1.0) {
                return Err(NormError::InvalidPartial(p));
            }
        }
        Ok(())
    }

    fn storage(&self) -> Storage {
        self.storage
    }

    fn unused(&self, name: &str) -> Option<&'static str> {
        self.residual_add.unused(name)
    }

    fn params(&self, rows: u32, cols: u32, stride: u32) -> Params {
        let mut p = row_params(rows, cols, stride, self.eps, self.gamma_offset);
        p.flags |= self.residual_add.flags();
        p.norm_cols = self.norm_cols(cols as usize) as u32;
        if p.norm_cols < p.cols {
            p.flags |= flags::PARTIAL;
        }
        if self.eps_placement == EpsPlacement::OutsideSqrt {
            p.flags |= flags::EPS_OUTSIDE;
        }
        p
    }
}

pub(crate) fn check_offset(v: f32) -> Result<()> {
    if v.is_finite() { Ok(()) } else { Err(NormError::InvalidGammaOffset(v)) }
}

/// The parameter block every row kernel starts from.
pub(crate) fn row_params(rows: u32, cols: u32, stride: u32, eps: f32, gamma_offset: f32) -> Params {
    Params {
        rows,
        cols,
        eps,
        stride,
        norm_cols: cols,
        gamma_offset,
        guard_hi: pow2(GUARD_HI),
        guard_lo: pow2(GUARD_LO),
        flags: if eps < TINY { flags::TINY_EPS } else { 0 },
        ..Default::default()
    }
}

/// Tensors of an RMSNorm forward: `y = h * rstd * gamma` with `h = x (+ residual)`.
#[derive(Clone, Copy, Debug)]
pub struct RmsNormForward<'a> {
    /// Input rows.
    pub x: Tensor<'a>,
    /// Fused residual add: the norm's input is `x + residual` (or `residual` is added to
    /// y, see [`RmsNormConfig::residual_add`]); `None` for plain `x`.
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
    /// [`Op::workspace_size`] bytes of the backward op; needed with `dgamma`.
    pub workspace: Option<Tensor<'a>>,
}

impl<'a> RmsNormForward<'a> {
    /// `y = rmsnorm(x)`: no residual, no gamma, no h, no rstd.
    pub fn new(x: impl Into<Tensor<'a>>, y: impl Into<Tensor<'a>>) -> Self {
        RmsNormForward { x: x.into(), residual: None, gamma: None, y: y.into(), h: None, rstd: None }
    }
}

/// The RMSNorm forward op.
pub type RmsNormForwardOp = Op<RmsNormForwardKind>;
/// The RMSNorm backward op.
pub type RmsNormBackwardOp = Op<RmsNormBackwardKind>;

/// [`OpKind`] of [`RmsNormForwardOp`].
#[derive(Debug)]
pub struct RmsNormForwardKind;
/// [`OpKind`] of [`RmsNormBackwardOp`].
#[derive(Debug)]
pub struct RmsNormBackwardKind;

impl OpKind for RmsNormForwardKind {
    type Config = RmsNormConfig;
    type Tensors<'a> = RmsNormForward<'a>;
    const KERNEL: Kernel = Kernel::RmsNormForward;
    const TABLE: &'static [TensorSpec] = &[X, RESIDUAL, GAMMA, Y, H, RSTD_OUT];

    fn tensors<'a>(t: &Self::Tensors<'a>) -> Vec<Option<Tensor<'a>>> {
        vec![Some(t.x), t.residual, t.gamma, Some(t.y), t.h, t.rstd]
    }
}

impl OpKind for RmsNormBackwardKind {
    type Config = RmsNormConfig;
    type Tensors<'a> = RmsNormBackward<'a>;
    const KERNEL: Kernel = Kernel::RmsNormBackward;
    const TABLE: &'static [TensorSpec] = &[X, GAMMA, DY, DH, RSTD_IN, DX, DGAMMA, workspace(1)];

    fn tensors<'a>(t: &Self::Tensors<'a>) -> Vec<Option<Tensor<'a>>> {
        vec![Some(t.x), t.gamma, Some(t.dy), t.dh, t.rstd, Some(t.dx), t.dgamma, t.workspace]
    }
}
