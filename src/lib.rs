//! GPU normalization kernels on wgpu: a fused single-pass RMSNorm and a two-pass LayerNorm,
//! forward and backward, with subgroup reductions where the adapter has them, checked
//! against an f64 CPU reference ([`reference`]).
//!
//! Two levels of API:
//! - `encode_*` methods of [`NormContext`] record into the caller's `wgpu::CommandEncoder`
//!   (or into a compute pass the caller has open, see [`Recorder`]) on the caller's buffers
//!   at byte offsets ([`Tensor`]); nothing is submitted, read back or allocated beyond a
//!   cached parameter block.
//! - `rms_norm_forward` and friends take host slices, run and return vectors (blocking).
//!
//! ```
//! use wgpu_norm::{LayerNormConfig, NormContext, Shape};
//! let ctx = NormContext::new()?;
//! let x: Vec<f32> = (0..4 * 10).map(|i| (i as f32 * 0.37).sin() + 1e3).collect();
//! let out = ctx.layer_norm_forward(&x, None, None, Shape::new(4, 10), &LayerNormConfig::default())?;
//! assert!(out.mean.iter().all(|m| (m - 1e3).abs() < 1.0));
//! # Ok::<(), wgpu_norm::NormError>(())
//! ```

mod dtype;
mod error;
mod host;
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
pub use ops::op::{BoundOp, Op, OpKind};
pub use ops::rms_norm::{
    RmsNormBackward, RmsNormBackwardKind, RmsNormBackwardOp, RmsNormConfig, RmsNormForward,
    RmsNormForwardKind, RmsNormForwardOp,
};
pub use ops::roofline::{Direction, Norm, StreamCopy, StreamCopyKind, StreamCopyOp};
pub use ops::table;
pub use runtime::binding::Tensor;
pub use runtime::context::{AdapterChoice, ContextOptions, F16Path, NormContext, Reduction};
pub use runtime::recorder::Recorder;
pub use shape::{EpsPlacement, Shape};
#[cfg(not(target_arch = "wasm32"))]
pub use tuning::autotune::TunedLaunch;
pub use tuning::rules::Tuning;

#[doc(hidden)]
pub fn params_size() -> usize {
    std::mem::size_of::<ops::params::Params>()
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
