//! LayerNorm: its config, its tensors and their tables, forward and backward.

use crate::dtype::Storage;
use crate::error::Result;
use crate::ops::op::{Op, OpConfig, OpKind};
use crate::ops::params::{Params, TINY};
use crate::ops::rms_norm::{check_offset, row_params};
use crate::ops::table::{
    BETA, DBETA, DGAMMA, DH, DX, DY, GAMMA, H, MEAN_IN, MEAN_OUT, RESIDUAL, RSTD_IN, RSTD_OUT, TensorSpec, X,
    Y, workspace,
};
use crate::runtime::binding::Tensor;
use crate::shader::Kernel;
use crate::shape::{ResidualAdd, check_eps};

/// LayerNorm settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNormConfig {
    /// Added to the (biased) variance; finite and >= 0.
    pub eps: f32,
    /// `y = xh * (gamma_offset + gamma) + beta`, the offset added in f32. Ignored without
    /// gamma.
    pub gamma_offset: f32,
    /// Where a fused residual joins: the norm's input (pre-norm, the default) or its
    /// output (post-norm).
    pub residual_add: ResidualAdd,
    /// The dtype of each tensor.
    pub storage: Storage,
}

impl Default for LayerNormConfig {
    fn default() -> Self {
        LayerNormConfig {
            eps: 1e-5,
            gamma_offset: 0.0,
            residual_add: ResidualAdd::BeforeNorm,
            storage: Storage::default(),
        }
    }
}

impl OpConfig for LayerNormConfig {
    fn check(&self) -> Result<()> {
        check_eps(self.eps)?;
        check_offset(self.gamma_offset)
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
        p
    }

    /// Not with eps below TINY: the split form does not scale rows up first (as
    /// `flags::TINY_EPS` asks) and would lose the variance of tiny rows.
    fn splits(&self) -> bool {
        self.eps >= TINY
    }
}

/// Tensors of a LayerNorm forward: `y = (h - mean) * rstd * gamma + beta`, `h = x (+ residual)`.
#[derive(Clone, Copy, Debug)]
pub struct LayerNormForward<'a> {
    /// Input rows.
    pub x: Tensor<'a>,
    /// Fused residual add: the norm's input is `x + residual` (or `residual` is added to
    /// y, see [`LayerNormConfig::residual_add`]); `None` for plain `x`.
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
    /// [`Op::workspace_size`] bytes of the backward op; needed with dgamma or dbeta.
    pub workspace: Option<Tensor<'a>>,
}

impl<'a> LayerNormForward<'a> {
    /// `y = layernorm(x)`: no residual, no gamma or beta, no h, no statistics.
    pub fn new(x: impl Into<Tensor<'a>>, y: impl Into<Tensor<'a>>) -> Self {
        LayerNormForward {
            x: x.into(),
            residual: None,
            gamma: None,
            beta: None,
            y: y.into(),
            h: None,
            mean: None,
            rstd: None,
        }
    }
}

/// The LayerNorm forward op.
pub type LayerNormForwardOp = Op<LayerNormForwardKind>;
/// The LayerNorm backward op.
pub type LayerNormBackwardOp = Op<LayerNormBackwardKind>;

/// [`OpKind`] of [`LayerNormForwardOp`].
#[derive(Debug)]
pub struct LayerNormForwardKind;
/// [`OpKind`] of [`LayerNormBackwardOp`].
#[derive(Debug)]
pub struct LayerNormBackwardKind;

impl OpKind for LayerNormForwardKind {
    type Config = LayerNormConfig;
    type Tensors<'a> = LayerNormForward<'a>;
    const KERNEL: Kernel = Kernel::LayerNormForward;
    const TABLE: &'static [TensorSpec] = &[X, RESIDUAL, GAMMA, BETA, Y, H, MEAN_OUT, RSTD_OUT];

    fn tensors<'a>(t: &Self::Tensors<'a>) -> Vec<Option<Tensor<'a>>> {
        vec![Some(t.x), t.residual, t.gamma, t.beta, Some(t.y), t.h, t.mean, t.rstd]
    }
}

impl OpKind for LayerNormBackwardKind {
    type Config = LayerNormConfig;
    type Tensors<'a> = LayerNormBackward<'a>;
    const KERNEL: Kernel = Kernel::LayerNormBackward;
    const TABLE: &'static [TensorSpec] =
        &[X, GAMMA, DY, DH, MEAN_IN, RSTD_IN, DX, DGAMMA, DBETA, workspace(2)];

    fn tensors<'a>(t: &Self::Tensors<'a>) -> Vec<Option<Tensor<'a>>> {
        vec![Some(t.x), t.gamma, Some(t.dy), t.dh, t.mean, t.rstd, Some(t.dx), t.dgamma, t.dbeta, t.workspace]
    }
}
