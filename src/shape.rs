//! The shape of a normalization and the checks every entry point makes on it.

use crate::error::{NormError, Result};

/// `rows` independent rows of `cols` elements each; every row is normalized over its `cols`
/// elements. Rows are grouped `heads` to a token: row `r` is head `r % heads` of token
/// `r / heads`, and starts `(r / heads) * row_stride + (r % heads) * head_stride` elements
/// into every row tensor (x, residual, y, h, dy, dh, dx). With one head (the default) row
/// `r` starts at `r * row_stride`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Number of rows: tokens (batch x sequence, ...) times heads.
    pub rows: usize,
    /// Elements per row (the hidden size, or the head dimension).
    pub cols: usize,
    /// Elements from one token's rows to the next: `heads * cols` for dense rows, more for
    /// a view into a wider tensor (the q heads of a fused QKV projection, say).
    pub row_stride: usize,
    /// Rows per token, each normalized on its own with the same gamma and beta (per-head
    /// QK-norm): 1 for plain rows.
    pub heads: usize,
    /// Elements from one head of a token to the next: `cols` for dense heads.
    pub head_stride: usize,
}

/// `ROWSxCOLS` (or `ROWSXCOLS`), as normbench's `--shapes` and the browser page's query
/// spell a dense shape; both counts at least 1.
///
/// ```
/// let s: wgpu_norm::Shape = "4096x768".parse().unwrap();
/// assert_eq!(s, wgpu_norm::Shape::new(4096, 768));
/// assert!("0x768".parse::<wgpu_norm::Shape>().unwrap_err().contains("zero rows"));
/// ```
impl std::str::FromStr for Shape {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Shape, String> {
        let (r, c) = s
            .trim()
            .split_once(['x', 'X'])
            .ok_or_else(|| format!("`{s}` is not ROWSxCOLS (for example 4096x4096)"))?;
        let num = |v: &str, what: &str| -> std::result::Result<usize, String> {
            let n: usize =
                v.trim().parse().map_err(|_| format!("`{v}` in `{s}` is not a whole number of {what}"))?;
            if n == 0 {
                return Err(format!("`{s}` has zero {what}; both must be at least 1"));
            }
            Ok(n)
        };
        Ok(Shape::new(num(r, "rows")?, num(c, "columns")?))
    }
}

impl Shape {
    /// `rows` contiguous rows of `cols` elements.
    pub const fn new(rows: usize, cols: usize) -> Self {
        Shape { rows, cols, row_stride: cols, heads: 1, head_stride: cols }
    }

    /// `tokens` x `heads` rows of `head_dim` elements, dense: each token's heads one after
    /// the other. Gamma and beta have `head_dim` elements, shared by every head.
    ///
    /// ```
    /// // QK-norm of the q heads of a fused QKV projection: 16 tokens, 32 heads of 128, the
    /// // q, k and v heads of a token side by side.
    /// let q = wgpu_norm::Shape::heads(16, 32, 128).with_row_stride(3 * 32 * 128);
    /// assert_eq!((q.rows, q.cols, q.head_stride), (16 * 32, 128, 128));
    /// // Head-major: all tokens of head 0, then of head 1, ...
    /// let head_major = wgpu_norm::Shape::heads(16, 32, 128).with_row_stride(128).with_head_stride(16 * 128);
    /// assert_eq!(head_major.span(), 16 * 32 * 128);
    /// ```
    pub const fn heads(tokens: usize, heads: usize, head_dim: usize) -> Self {
        Shape {
            rows: tokens.saturating_mul(heads),
            cols: head_dim,
            row_stride: heads.saturating_mul(head_dim),
            heads,
            head_stride: head_dim,
        }
    }

    /// The same rows, tokens spaced `row_stride` elements apart.
    ///
    /// ```
    /// // One 128-wide head of a 3 x 32-head fused QKV row, 16 tokens.
    /// let q0 = wgpu_norm::Shape::new(16, 128).with_row_stride(3 * 32 * 128);
    /// assert_eq!(q0.span(), 15 * 3 * 32 * 128 + 128);
    /// ```
    pub const fn with_row_stride(self, row_stride: usize) -> Self {
        Shape { row_stride, ..self }
    }

    /// The same rows, the heads of a token spaced `head_stride` elements apart.
    pub const fn with_head_stride(self, head_stride: usize) -> Self {
        Shape { head_stride, ..self }
    }

    /// The element row `r` starts at: `(r / heads) * row_stride + (r % heads) * head_stride`.
    pub fn row_start(&self, r: usize) -> usize {
        let heads = self.heads.max(1);
        (r / heads) * self.row_stride + (r % heads) * self.head_stride
    }

    /// Tokens: rows / heads.
    pub fn tokens(&self) -> usize {
        self.rows / self.heads.max(1)
    }

    /// Elements a row tensor spans from its first element to its last:
    /// `(tokens - 1) * row_stride + (heads - 1) * head_stride + cols`.
    pub fn span(&self) -> usize {
        let last = |n: usize, stride: usize| n.saturating_sub(1).saturating_mul(stride);
        last(self.tokens(), self.row_stride)
            .saturating_add(last(self.heads, self.head_stride))
            .saturating_add(self.cols)
    }

    /// rows x cols.
    pub fn elements(&self) -> usize {
        self.rows.saturating_mul(self.cols)
    }

    /// Whether the rows are contiguous, one after the other.
    pub fn is_dense(&self) -> bool {
        self.head_stride == self.cols && self.row_stride == self.heads.saturating_mul(self.cols)
    }

    /// Non-empty, rows that do not overlap, and small enough for u32 element indices:
    /// `(rows, cols)` as u32.
    pub(crate) fn checked(&self) -> Result<(u32, u32)> {
        let (rows, cols, stride) = (self.rows, self.cols, self.row_stride);
        if rows == 0 || cols == 0 {
            return Err(NormError::EmptyShape { rows, cols });
        }
        if self.heads == 1 && stride < cols {
            return Err(NormError::InvalidStride { cols, stride });
        }
        if self.heads == 0 || !rows.is_multiple_of(self.heads) {
            return Err(NormError::InvalidHeads { rows, heads: self.heads });
        }
        // Heads side by side within a token, or tokens side by side within a head.
        let (tokens, heads, head_stride) = (self.tokens(), self.heads, self.head_stride);
        let spans = |n: usize, s: usize| n.saturating_sub(1).saturating_mul(s).saturating_add(cols);
        let token_major = head_stride >= cols && stride >= spans(heads, head_stride);
        let head_major = stride >= cols && head_stride >= spans(tokens, stride);
        if heads > 1 && !token_major && !head_major {
            return Err(NormError::OverlappingHeads { cols, heads, head_stride, row_stride: stride });
        }
        let max = u64::from(u32::MAX);
        // The span is at least rows x cols, since no two rows overlap.
        let span = self.span() as u64;
        if span > max || stride as u64 > max || head_stride as u64 > max {
            return Err(NormError::ShapeTooLarge { rows, cols, stride, span, max });
        }
        Ok((rows as u32, cols as u32))
    }
}

/// Where a fused residual joins the norm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ResidualAdd {
    /// Pre-norm: the norm's input is `h = x + residual`, and h may be written out as the
    /// new residual stream; the backward adds the gradient arriving on h (`dh`) to dx.
    #[default]
    BeforeNorm,
    /// Post-norm: `y = residual + norm(x) * gamma (+ beta)` (llama.cpp's fused
    /// RMS_NORM + MUL + ADD); y may be the residual itself. The backward's dx is the
    /// norm's, and the residual's gradient is dy itself: no kernel needs to copy it.
    AfterNorm,
}

impl ResidualAdd {
    /// Why the tensor `name` has no use with the residual added here, if it has none.
    pub(crate) fn unused(self, name: &str) -> Option<&'static str> {
        match (self, name) {
            (ResidualAdd::AfterNorm, "h") => {
                Some("with the residual added after the norm, y is the new residual stream")
            }
            (ResidualAdd::AfterNorm, "dh") => {
                Some("with the residual added after the norm, nothing reaches the norm's input but dy")
            }
            _ => None,
        }
    }

    pub(crate) fn flags(self) -> u32 {
        match self {
            ResidualAdd::BeforeNorm => 0,
            ResidualAdd::AfterNorm => crate::ops::params::flags::ADD_AFTER,
        }
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
