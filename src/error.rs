//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong in this crate, as a value: nothing here panics on bad input.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum NormError {
    /// No adapter could be found (or the one asked for by `WGPU_NORM_ADAPTER` is absent).
    #[error(
        "no usable GPU adapter found ({detail}); on Debian or Ubuntu without a GPU, install \
         Mesa's software Vulkan driver: `apt-get install mesa-vulkan-drivers libvulkan1`"
    )]
    NoAdapter {
        /// What was looked for and what was seen.
        detail: String,
    },
    /// The launch cache file of [`autotune`](crate::autotune())
    /// could not be read, parsed or written.
    #[error("launch cache file {path}: {message}")]
    TuningFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The adapter refused to create a device.
    #[error("could not create a device on adapter {adapter:?}: {message}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// wgpu's message.
        message: String,
    },
    /// Zero rows or zero columns.
    #[error("empty shape: {rows} rows x {cols} columns (both must be at least 1)")]
    EmptyShape {
        /// Rows asked for.
        rows: usize,
        /// Columns asked for.
        cols: usize,
    },
    /// A row tensor of the shape spans more elements than the kernels can index.
    #[error(
        "{rows} rows of {cols} elements, {stride} apart, span {span} elements ((rows - 1) x stride + \
         cols): more than the kernels can index (at most {max})"
    )]
    ShapeTooLarge {
        /// Rows asked for.
        rows: usize,
        /// Columns asked for.
        cols: usize,
        /// Row stride asked for.
        stride: usize,
        /// Elements a row tensor spans (saturating).
        span: u64,
        /// Largest span supported.
        max: u64,
    },
    /// A row is longer than this adapter's kernels can walk.
    #[error(
        "rows of {cols} elements are longer than this adapter can normalize (at most {max}: \
         its shader loops are limited to {trips} iterations per thread)"
    )]
    RowTooLong {
        /// Columns asked for.
        cols: usize,
        /// Longest row supported.
        max: u64,
        /// The tuning's max_loop_trips.
        trips: u32,
    },
    /// A host slice has the wrong length for the shape.
    #[error("`{what}` has {actual} elements, expected {expected}")]
    LengthMismatch {
        /// Which argument.
        what: &'static str,
        /// Elements the shape needs.
        expected: usize,
        /// Elements given.
        actual: usize,
    },
    /// A buffer is too small for the tensor placed in it at its offset.
    #[error("`{what}` needs bytes {offset}..{end} but its buffer holds {size} bytes")]
    BufferTooSmall {
        /// Which argument.
        what: &'static str,
        /// Byte offset given.
        offset: u64,
        /// End of the tensor in bytes.
        end: u64,
        /// Size of the buffer.
        size: u64,
    },
    /// A buffer lacks a usage the kernels need.
    #[error("`{what}` was created without `BufferUsages::{usage}`")]
    MissingUsage {
        /// Which argument.
        what: &'static str,
        /// The missing usage flag.
        usage: &'static str,
    },
    /// A byte offset is not a multiple of the element size.
    #[error("`{what}` starts at byte {offset}, which is not a multiple of {align}")]
    UnalignedOffset {
        /// Which argument.
        what: &'static str,
        /// Byte offset given.
        offset: u64,
        /// Required alignment in bytes.
        align: u64,
    },
    /// A tensor binding exceeds the device's `max_storage_buffer_binding_size`.
    #[error(
        "`{what}` needs a {bytes}-byte storage binding, over this device's \
         max_storage_buffer_binding_size of {limit} bytes; split the rows over several calls"
    )]
    BindingTooLarge {
        /// Which argument.
        what: &'static str,
        /// Bytes the binding needs.
        bytes: u64,
        /// The device limit.
        limit: u64,
    },
    /// The row stride is smaller than a row.
    #[error("row stride {stride} is smaller than the {cols} columns of a row")]
    InvalidStride {
        /// Columns per row.
        cols: usize,
        /// Stride given.
        stride: usize,
    },
    /// A row count that is not a whole number of tokens of `heads` rows each.
    #[error("{rows} rows are not a whole number of tokens of {heads} heads each")]
    InvalidHeads {
        /// Rows given.
        rows: usize,
        /// Heads per token given.
        heads: usize,
    },
    /// Heads and tokens laid out so that two rows would overlap.
    #[error(
        "{heads} heads of {cols} elements, {head_stride} apart, in tokens {row_stride} apart overlap: put a \
         token's heads side by side (head stride >= cols, row stride >= the heads' span) or a head's tokens \
         side by side (row stride >= cols, head stride >= the tokens' span)"
    )]
    OverlappingHeads {
        /// Columns per row.
        cols: usize,
        /// Heads per token.
        heads: usize,
        /// Elements between the heads of a token.
        head_stride: usize,
        /// Elements between tokens.
        row_stride: usize,
    },
    /// A host call was given a row stride: host slices hold contiguous rows.
    #[error("host calls take contiguous rows: row stride {stride} must equal the {cols} columns")]
    HostRowStride {
        /// Columns per row.
        cols: usize,
        /// Stride given.
        stride: usize,
    },
    /// A storage spec that does not parse ([`Storage`](crate::Storage)'s `FromStr`).
    #[error("storage {text:?}: {why}")]
    InvalidStorage {
        /// The text given.
        text: String,
        /// What is wrong with it.
        why: String,
    },
    /// The fraction of a row partial RMSNorm estimates the RMS from is not in (0, 1].
    #[error("partial RMSNorm fraction must be in (0, 1], got {0}")]
    InvalidPartial(f32),
    /// The gamma offset is not finite.
    #[error("gamma offset must be finite, got {0}")]
    InvalidGammaOffset(f32),
    /// eps is negative, NaN or infinite.
    #[error("eps must be finite and >= 0, got {0}")]
    InvalidEps(f32),
    /// An argument that this call needs was not given.
    #[error("`{what}` is required here: {why}")]
    MissingArgument {
        /// Which argument.
        what: &'static str,
        /// Why it is needed.
        why: &'static str,
    },
    /// A tensor given that the config leaves no use for.
    #[error("{what} was given, but {why}")]
    UnusedArgument {
        /// Which argument.
        what: &'static str,
        /// Why it has no use.
        why: &'static str,
    },
    /// A tensor named in an [`ExpectedCall`](crate::ExpectedCall) that is not one of the
    /// op's optional tensors.
    #[error("{op} has no optional tensor `{name}`; it has {optional:?}")]
    UnknownTensor {
        /// The op's kernel.
        op: &'static str,
        /// The name given.
        name: String,
        /// The op's optional tensors.
        optional: Vec<&'static str>,
    },
    /// A limit of the device is below what the call needs.
    #[error("{what} needs {needed} for wgpu's `{limit}`, but this device allows {allowed}")]
    DeviceLimit {
        /// What needs it.
        what: &'static str,
        /// The wgpu limit's name.
        limit: &'static str,
        /// What the call needs.
        needed: u64,
        /// What the device allows.
        allowed: u64,
    },
    /// An in-place pair (the same range bound twice, once written) on the browser's WebGPU,
    /// which forbids a writable binding to alias another binding; use separate buffers there.
    #[error("`{written}` is `{other}` in place, which WebGPU forbids; give `{written}` a range of its own")]
    InPlaceOnWebGpu {
        /// The written tensor.
        written: &'static str,
        /// The tensor it is bound over.
        other: &'static str,
    },
    /// A tensor the call writes overlaps another tensor of the call. Exact in-place pairs
    /// (y = x, h = x or residual, dx = dy or dh, the very same range) are allowed.
    #[error("`{written}` overlaps `{other}` in the same buffer; only exact in-place pairs may share memory")]
    Aliasing {
        /// The written tensor.
        written: &'static str,
        /// The tensor it overlaps.
        other: &'static str,
    },
    /// [`BoundOp::set_rows`](crate::BoundOp::set_rows) asked for no rows or for more rows
    /// than the op was bound for.
    #[error("{rows} rows asked of an op bound for {bound}: between 1 and {bound}, or bind again")]
    RowsOutsideBinding {
        /// Rows asked for.
        rows: u32,
        /// Rows the op was bound for.
        bound: u32,
    },
    /// The device was lost (destroyed, reset or removed); every call after the loss, and the
    /// call in flight, returns this. Only contexts that made their own device learn of the
    /// loss through wgpu's callback; on a caller's device, errors of a lost device come back
    /// as [`NormError::Wgpu`] and the caller's own callback hears of the loss.
    #[error("the device was lost ({reason}): {message}")]
    DeviceLost {
        /// wgpu's reason.
        reason: String,
        /// wgpu's message.
        message: String,
    },
    /// wgpu reported a validation or out-of-memory error for work this crate recorded.
    #[error("wgpu rejected {during}: {message}")]
    Wgpu {
        /// What was being done.
        during: &'static str,
        /// wgpu's message.
        message: String,
    },
    /// Reading results back from the device failed.
    #[error("reading back from the device failed: {0}")]
    Readback(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = NormError> = std::result::Result<T, E>;
