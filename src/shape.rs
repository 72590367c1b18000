//! The shape of a normalization and the checks every entry point makes on it.

use crate::error::{NormError, Result};

/// `rows` independent rows of `cols` elements each, row-major, row `r` starting `r *
/// row_stride` elements into every row tensor (x, residual, y, h, dy, dh, dx); every row is
/// normalized over its `cols` elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Number of rows (tokens, batch x sequence, ...).
    pub rows: usize,
    /// Elements per row (the hidden size).
    pub cols: usize,
    /// Elements from one row to the next: `cols` for contiguous rows, more for a view into
    /// a wider tensor (one head of a fused QKV projection, say).
    pub row_stride: usize,
}

impl Shape {
    /// `rows` contiguous rows of `cols` elements.
    pub fn new(rows: usize, cols: usize) -> Self {
        Shape { rows, cols, row_stride: cols }
    }

    /// The same rows spaced `row_stride` elements apart.
    ///
    /// ```
    /// // Per-head QK-norm: 128-wide heads of a 3 x 32-head fused QKV row, 16 tokens.
    /// let q_heads = wgpu_norm::Shape::new(16 * 32, 128);
    /// assert_eq!(q_heads.with_row_stride(128).row_stride, 128);
    /// ```
    pub fn with_row_stride(self, row_stride: usize) -> Self {
        Shape { row_stride, ..self }
    }

    /// Elements a row tensor spans: (rows - 1) * row_stride + cols.
    pub fn span(&self) -> usize {
        self.rows.saturating_sub(1).saturating_mul(self.row_stride).saturating_add(self.cols)
    }

    /// rows x cols.
    pub fn elements(&self) -> usize {
        self.rows.saturating_mul(self.cols)
    }

    /// Non-empty and small enough for u32 element indices: `(rows, cols)` as u32.
    pub(crate) fn checked(&self) -> Result<(u32, u32)> {
        if self.rows == 0 || self.cols == 0 {
            return Err(NormError::EmptyShape { rows: self.rows, cols: self.cols });
        }
        if self.row_stride < self.cols {
            return Err(NormError::InvalidStride { cols: self.cols, stride: self.row_stride });
        }
        let max = u64::from(u32::MAX);
        // The span is at least rows x cols, since the stride is at least cols.
        let span = self.span() as u64;
        if span > max || self.row_stride as u64 > max {
            let (rows, cols, stride) = (self.rows, self.cols, self.row_stride);
            return Err(NormError::ShapeTooLarge { rows, cols, stride, span, max });
        }
        Ok((self.rows as u32, self.cols as u32))
    }
}

/// Where RMSNorm adds eps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EpsPlacement {
    /// `x / sqrt(mean(x^2) + eps)`, as PyTorch and LLaMA.
    #[default]
    InsideSqrt,
    /// `x / (sqrt(mean(x^2)) + eps)`, as the RMSNorm paper's reference code.
    OutsideSqrt,
}

pub(crate) fn check_eps(eps: f32) -> Result<()> {
    if eps.is_finite() && eps >= 0.0 { Ok(()) } else { Err(NormError::InvalidEps(eps)) }
}

pub(crate) fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual { Ok(()) } else { Err(NormError::LengthMismatch { what, expected, actual }) }
}
