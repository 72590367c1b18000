//! One-shot recording on the context, for scripts and tests: each call makes the op, binds
//! it and records it. An engine that runs the same op on the same tensors again binds once
//! ([`Op::bind`](crate::Op::bind)) and encodes the [`BoundOp`](crate::BoundOp).

use crate::error::Result;
use crate::ops::layer_norm::{
    LayerNormBackward, LayerNormBackwardOp, LayerNormConfig, LayerNormForward, LayerNormForwardOp,
};
use crate::ops::rms_norm::{
    RmsNormBackward, RmsNormBackwardOp, RmsNormConfig, RmsNormForward, RmsNormForwardOp,
};
use crate::runtime::context::NormContext;
use crate::runtime::recorder::Recorder;
use crate::shape::Shape;

impl NormContext {
    /// Records an RMSNorm forward into `encoder` (or an open compute pass). Nothing is
    /// submitted.
    ///
    /// ```no_run
    /// use wgpu_norm::{NormContext, RmsNormConfig, RmsNormForward, Shape};
    /// # fn run(ctx: &NormContext, x: &wgpu::Buffer, y: &wgpu::Buffer) -> wgpu_norm::Result<()> {
    /// let mut encoder = ctx.device().create_command_encoder(&Default::default());
    /// ctx.encode_rms_norm_forward(&mut encoder, Shape::new(32, 4096), &RmsNormConfig::default(), &RmsNormForward::new(x, y))?;
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
        RmsNormForwardOp::new(self, *config)?.encode(encoder, shape, args)
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
        RmsNormBackwardOp::new(self, *config)?.encode(encoder, shape, args)
    }

    /// Records a LayerNorm forward into `encoder` (or an open compute pass).
    pub fn encode_layer_norm_forward(
        &self,
        encoder: &mut impl Recorder,
        shape: Shape,
        config: &LayerNormConfig,
        args: &LayerNormForward<'_>,
    ) -> Result<()> {
        LayerNormForwardOp::new(self, *config)?.encode(encoder, shape, args)
    }

    /// Records a LayerNorm backward (dx, and dgamma/dbeta when asked) into `encoder` (or an
    /// open compute pass), summed deterministically.
    pub fn encode_layer_norm_backward(
        &self,
        encoder: &mut impl Recorder,
        shape: Shape,
        config: &LayerNormConfig,
        args: &LayerNormBackward<'_>,
    ) -> Result<()> {
        LayerNormBackwardOp::new(self, *config)?.encode(encoder, shape, args)
    }

    /// Bytes of workspace [`RmsNormBackward::workspace`] needs for `shape` on this context.
    pub fn rms_norm_backward_workspace_size(&self, shape: Shape) -> Result<u64> {
        RmsNormBackwardOp::new(self, RmsNormConfig::default())?.workspace_size(shape)
    }

    /// Bytes of workspace [`LayerNormBackward::workspace`] needs for `shape` on this context.
    pub fn layer_norm_backward_workspace_size(&self, shape: Shape) -> Result<u64> {
        LayerNormBackwardOp::new(self, LayerNormConfig::default())?.workspace_size(shape)
    }
}
