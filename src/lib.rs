//! GPU normalization kernels on wgpu: a fused single-pass RMSNorm and a two-pass LayerNorm,
//! forward and backward, with subgroup reductions where the adapter has them, checked
//! against an f64 CPU reference ([`reference`]).
//!
//! Three levels of API, each built on the one before:
//! - **Prepared ops.** An op ([`RmsNormForwardOp`], [`RmsNormBackwardOp`],
//!   [`LayerNormForwardOp`], [`LayerNormBackwardOp`]) is made from a [`NormContext`] and a
//!   config, bound once to the caller's buffers at byte offsets ([`Tensor`]) and a
//!   [`Shape`], and the [`BoundOp`] records itself into the caller's `wgpu::CommandEncoder`
//!   or open `wgpu::ComputePass` ([`Recorder`]) with three calls per dispatch. Nothing
//!   blocks, so it runs in a browser too.
//! - **One-shot calls**: `encode_*` methods of [`NormContext`] bind and record in one call.
//! - **Host slices**: `rms_norm_forward_async` and friends upload, run and read back; the
//!   blocking `rms_norm_forward` and friends wrap them on native.
//!
//! From encode to the GPU, through few files:
//!
//! ```text
//! Op::new        src/ops/op.rs         checks the config (src/ops/rms_norm.rs, layer_norm.rs);
//!                                      Op::with_calls compiles the pipelines of named calls too
//! Op::bind       src/ops/op.rs         for each row of the op's tensor table (src/ops/table.rs):
//!                src/runtime/binding.rs  check size, alignment, usage, limits, overlaps
//!                src/tuning/rules.rs     the launch for this shape on this adapter
//!                src/runtime/pipelines.rs  the pipeline, compiled once per context
//!                                        (WGSL from src/shader.rs and shaders/)
//!                src/runtime/verdict.rs  wgpu's word on what was created, without blocking
//!                -> BoundOp: pipelines, bind groups, parameter block
//! BoundOp::encode  src/ops/op.rs       set_pipeline, set_bind_group, dispatch_workgroups
//! ```
//!
//! ```
//! # #[cfg(not(target_arch = "wasm32"))] {
//! use wgpu_norm::{LayerNormConfig, NormContext, Shape, host};
//! let ctx = NormContext::new()?;
//! let x: Vec<f32> = (0..4 * 10).map(|i| (i as f32 * 0.37).sin() + 1e3).collect();
//! let out = host::layer_norm_forward(&ctx, &x, None, None, Shape::new(4, 10), &LayerNormConfig::default())?;
//! assert!(out.mean.iter().all(|m| (m - 1e3).abs() < 1.0));
//! # }
//! # Ok::<(), wgpu_norm::NormError>(())
//! ```

mod dtype;
mod error;
pub mod geometry;
pub mod host;
mod ops;
pub mod reference;
mod runtime;
pub mod shader;
mod shape;
mod tuning;

pub use dtype::{DType, Element, Storage};
pub use error::{NormError, Result};
pub use half;
pub use host::{LayerNormGrads, LayerNormOutput, RmsNormGrads, RmsNormOutput};
pub use ops::layer_norm::{
    LayerNormBackward, LayerNormBackwardKind, LayerNormBackwardOp, LayerNormConfig, LayerNormForward,
    LayerNormForwardKind, LayerNormForwardOp,
};
pub use ops::op::{BoundOp, ExpectedCall, Op, OpConfig, OpKind};
pub use ops::rms_norm::{
    RmsNormBackward, RmsNormBackwardKind, RmsNormBackwardOp, RmsNormConfig, RmsNormForward,
    RmsNormForwardKind, RmsNormForwardOp,
};
pub use ops::roofline::{Direction, Norm, StreamCopy, StreamCopyKind, StreamCopyOp};
pub use ops::table;
pub use runtime::binding::Tensor;
pub use runtime::context::{AdapterChoice, ContextOptions, F16Path, NormContext, Reduction};
pub use runtime::recorder::Recorder;
pub use shape::{EpsPlacement, ResidualAdd, Shape};
#[cfg(not(target_arch = "wasm32"))]
pub use tuning::autotune::{TunedLaunch, autotune};
pub use tuning::rules::Tuning;

#[doc(hidden)]
pub fn params_size() -> usize {
    std::mem::size_of::<ops::params::Params>()
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
