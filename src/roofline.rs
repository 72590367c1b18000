//! What speed is measured against: the bytes each kernel must move (the byte model behind
//! every GB/s figure) and a stream copy launched like the kernels (the roofline).

use crate::context::NormContext;
use crate::dispatch::{self, Dispatch, Recorder, Tensor, binding};
use crate::dtype::{DType, Storage};
use crate::error::Result;
use crate::rms_norm::{row_params, row_slot};
use crate::shader::Kernel;
use crate::shape::Shape;

/// A normalization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// RMSNorm.
    RmsNorm,
    /// LayerNorm.
    LayerNorm,
}

impl Op {
    /// Both ops.
    pub const ALL: [Op; 2] = [Op::RmsNorm, Op::LayerNorm];

    /// `rms_norm` or `layer_norm`.
    pub fn name(self) -> &'static str {
        match self {
            Op::RmsNorm => "rms_norm",
            Op::LayerNorm => "layer_norm",
        }
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

impl NormContext {
    /// Bytes `op` in `direction` moves to and from device memory for `shape` on this
    /// context, in f32 with gamma (and beta) given: [`NormContext::bytes_moved_as`] with
    /// f32 storage and no fused residual.
    pub fn bytes_moved(&self, op: Op, direction: Direction, shape: Shape) -> Result<u64> {
        self.bytes_moved_as(op, direction, shape, Storage::default(), false)
    }

    /// Bytes `op` in `direction` moves to and from device memory for `shape` on this
    /// context, with gamma (and beta) given:
    ///
    /// - forward: read x, write y, read gamma (and beta) once; with a fused residual also
    ///   read the residual and write h;
    /// - backward: read x and dy, write dx, read gamma and the saved statistics (rstd, and
    ///   the mean for LayerNorm), write the partial sums and read them back, write dgamma
    ///   (and dbeta); with a fused residual also read the gradient arriving on h.
    ///
    /// The floor of a memory-bound kernel's time is these bytes over the bandwidth.
    pub fn bytes_moved_as(
        &self,
        op: Op,
        direction: Direction,
        shape: Shape,
        storage: Storage,
        fused_residual: bool,
    ) -> Result<u64> {
        let (rows, cols) = shape.checked()?;
        let (n, r, c) = (shape.elements() as u64, u64::from(rows), u64::from(cols));
        let (act, param) = (storage.activations.size(), storage.params.size());
        let (params, backward) = match op {
            Op::RmsNorm => (1, Kernel::RmsNormBackward),
            Op::LayerNorm => (2, Kernel::LayerNormBackward),
        };
        let fused = u64::from(fused_residual);
        Ok(match direction {
            Direction::Forward => act * (2 + 2 * fused) * n + param * params * c,
            Direction::Backward => {
                let stats = params; // rstd, and mean for LayerNorm
                let partial_rows = u64::from(self.row_launch(backward, rows, cols).partial_rows);
                let sums = F32 * (2 * params * partial_rows * c + params * c);
                act * (3 + fused) * n + param * c + F32 * stats * r + sums
            }
        })
    }

    /// Records a copy of the rows of `x` to `y`, stored as `dtype`, launched exactly like
    /// the forward kernels for that shape: the roofline the benchmark compares them with.
    pub fn encode_stream_copy(
        &self,
        encoder: &mut impl Recorder,
        shape: Shape,
        dtype: DType,
        x: Tensor<'_>,
        y: Tensor<'_>,
    ) -> Result<()> {
        let params = row_params(shape, 0.0, 0.0)?;
        let launch = self.row_launch(Kernel::StreamCopy, params.rows, params.cols);
        let storage = Storage::uniform(dtype);
        let d = Dispatch {
            kernel: Kernel::StreamCopy,
            storage,
            launch: Some(launch),
            groups: launch.groups,
            params,
            slots: vec![
                row_slot(binding::X, "x", Some(x), shape, storage),
                row_slot(binding::Y, "y", Some(y), shape, storage),
            ],
        };
        dispatch::record(self, encoder, "wgpu_norm.stream_copy", vec![d])
    }
}
