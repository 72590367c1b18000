//! What speed is measured against: the bytes each kernel must move (the byte model behind
//! every GB/s figure) and a stream copy launched like the kernels (the roofline).

use crate::dtype::{DType, Storage};
use crate::error::Result;
use crate::ops::op::{Op, OpConfig, OpKind};
use crate::ops::params::Params;
use crate::ops::rms_norm::row_params;
use crate::ops::table::{TensorSpec, X, Y};
use crate::runtime::binding::Tensor;
use crate::runtime::context::NormContext;
use crate::shader::Kernel;
use crate::shape::Shape;

/// A normalization, as the benchmark and the byte model name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Norm {
    /// RMSNorm.
    RmsNorm,
    /// LayerNorm.
    LayerNorm,
}

impl Norm {
    /// Both ops.
    pub const ALL: [Norm; 2] = [Norm::RmsNorm, Norm::LayerNorm];

    /// `rms_norm` or `layer_norm`.
    pub fn name(self) -> &'static str {
        match self {
            Norm::RmsNorm => "rms_norm",
            Norm::LayerNorm => "layer_norm",
        }
    }

    /// Bytes this norm in `direction` moves to and from device memory for `shape` on this
    /// context `ctx`, in f32 with gamma (and beta) given: [`Norm::bytes_moved_as`] with
    /// f32 storage and no fused residual.
    pub fn bytes_moved(self, ctx: &NormContext, direction: Direction, shape: Shape) -> Result<u64> {
        self.bytes_moved_as(ctx, direction, shape, Storage::default(), false)
    }

    /// Bytes this norm in `direction` moves to and from device memory for `shape` on this
    /// context `ctx`, with gamma (and beta) given:
    ///
    /// - forward: read x, write y, read gamma (and beta) once; with a fused residual also
    ///   read the residual and write h;
    /// - backward: read x and dy, write dx, read gamma and the saved statistics (rstd, and
    ///   the mean for LayerNorm), write the partial sums and read them back, write dgamma
    ///   (and dbeta); with a fused residual also read the gradient arriving on h.
    ///
    /// The floor of a memory-bound kernel's time is these bytes over the bandwidth.
    pub fn bytes_moved_as(
        self,
        ctx: &NormContext,
        direction: Direction,
        shape: Shape,
        storage: Storage,
        fused_residual: bool,
    ) -> Result<u64> {
        let (rows, cols) = shape.checked()?;
        let (n, r, c) = (shape.elements() as u64, u64::from(rows), u64::from(cols));
        let s = storage;
        let (layer, backward) = match self {
            Norm::RmsNorm => (0, Kernel::RmsNormBackward),
            Norm::LayerNorm => (1, Kernel::LayerNormBackward),
        };
        let fused = u64::from(fused_residual);
        Ok(match direction {
            Direction::Forward => {
                let rows = s.x.size() + s.y.size() + fused * (s.residual.size() + s.h.size());
                rows * n + (s.gamma.size() + layer * s.beta.size()) * c
            }
            Direction::Backward => {
                let gradients = 1 + layer; // dgamma, and dbeta for LayerNorm
                let stats = gradients; // rstd, and mean for LayerNorm
                let partial_rows = u64::from(ctx.row_launch(backward, rows, cols, false).partial_rows);
                let sums = F32 * (2 * gradients * partial_rows * c + gradients * c);
                let rows = s.x.size() + s.dy.size() + s.dx.size() + fused * s.dh.size();
                rows * n + s.gamma.size() * c + F32 * stats * r + sums
            }
        })
    }
}

/// Forward or backward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// y from x.
    Forward,
    /// dx and the parameter gradients from dy.
    Backward,
}

impl Direction {
    /// Both directions.
    pub const ALL: [Direction; 2] = [Direction::Forward, Direction::Backward];

    /// `forward` or `backward`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Backward => "backward",
        }
    }
}

const F32: u64 = 4;

/// The stream copy's config is the rows' dtype.
impl OpConfig for DType {
    fn check(&self) -> Result<()> {
        Ok(())
    }

    fn storage(&self) -> Storage {
        Storage::uniform(*self)
    }

    fn params(&self, rows: u32, cols: u32, stride: u32) -> Params {
        row_params(rows, cols, stride, 0.0, 0.0)
    }
}

/// Tensors of the stream copy: `y = x`.
#[derive(Clone, Copy, Debug)]
pub struct StreamCopy<'a> {
    /// Rows read.
    pub x: Tensor<'a>,
    /// Rows written.
    pub y: Tensor<'a>,
}

/// The stream copy op: the benchmark's roofline, launched like the forward kernels.
pub type StreamCopyOp = Op<StreamCopyKind>;

/// [`OpKind`] of [`StreamCopyOp`]: its config is the rows' dtype.
#[derive(Debug)]
pub struct StreamCopyKind;

impl OpKind for StreamCopyKind {
    type Config = DType;
    type Tensors<'a> = StreamCopy<'a>;
    const KERNEL: Kernel = Kernel::StreamCopy;
    const TABLE: &'static [TensorSpec] = &[X, Y];

    fn tensors<'a>(t: &Self::Tensors<'a>) -> Vec<Option<Tensor<'a>>> {
        vec![Some(t.x), Some(t.y)]
    }
}
