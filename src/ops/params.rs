//! The uniform parameter block every kernel reads, mirrored by `struct Params` in
//! `shaders/common.wgsl`.

use bytemuck::{Pod, Zeroable};

/// Per-dispatch parameters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    pub rows: u32,
    pub cols: u32,
    pub eps: f32,
    pub flags: u32,
    /// Element offset of each tensor from the start of its binding, indexed by binding
    /// number ([`TensorSpec::binding`](super::table::TensorSpec::binding)).
    pub offsets: [u32; 16],
    pub partial_rows: u32,
    pub stride: u32,
    pub norm_cols: u32,
    pub gamma_offset: f32,
    pub heads: u32,
    pub head_stride: u32,
    /// 2^[`GUARD_HI`] and 2^[`GUARD_LO`], the powers of two the kernels scale rows whose
    /// squares leave f32's range by. Passed at run time, not written into the shaders as
    /// constants: a shader compiler may fold `(h * c) * (h * c)` into `h * h * (c * c)`,
    /// and `c * c` is out of f32's range (lavapipe does).
    pub guard_hi: f32,
    pub guard_lo: f32,
    /// Split rows: segments per row and elements per segment ([`RowLaunch`](crate::tuning::RowLaunch)).
    pub chunks: u32,
    pub chunk_len: u32,
}

/// The exponent rows whose squares overflow are scaled by (elements past about 1e19): their
/// squares, up to f32's largest, then stay in range, summed over 2^24 elements.
pub(crate) const GUARD_HI: i32 = -96;
/// The exponent rows whose squares underflow are scaled by (elements below about 1e-19,
/// where eps is below [`TINY`] too).
pub(crate) const GUARD_LO: i32 = 86;
/// 2^TINY_EXP is `TINY`: an eps below it no longer hides a row whose squares underflow.
pub(crate) const TINY_EXP: i32 = -100;
/// The eps below which rows whose squares underflow f32 (elements below about 1e-19) need
/// scaling up ([`flags::TINY_EPS`]); above it, their squares are negligible next to eps.
pub(crate) const TINY: f32 = pow2(TINY_EXP);

/// 2^e for e in [-126, 127], exactly.
pub(crate) const fn pow2(e: i32) -> f32 {
    f32::from_bits(((e + 127) as u32) << 23)
}

/// Flags of config options, above the tensors' `1 << binding` bits (as in
/// `shaders/common.wgsl`).
pub(crate) mod flags {
    /// RMSNorm: eps added to the RMS, outside the root.
    pub const EPS_OUTSIDE: u32 = 1 << 16;
    /// RMSNorm: the RMS estimated from the first `norm_cols` elements.
    pub const PARTIAL: u32 = 1 << 17;
    /// The residual is added to the norm's output, not to its input.
    pub const ADD_AFTER: u32 = 1 << 18;
    /// Split rows, both passes.
    pub const SPLIT: u32 = 1 << 19;
    /// Split rows, the finishing pass.
    pub const SPLIT_FINISH: u32 = 1 << 20;
    /// eps is below [`TINY`](super::TINY): rows are scaled up before their squares are summed.
    pub const TINY_EPS: u32 = 1 << 21;
    /// A backward's streamed trip walks its rows' sums together (`RowLaunch::joint_walks`).
    pub const JOINT_WALKS: u32 = 1 << 22;
    /// A tile backward's workgroup sums its slots' partial sums (`RowLaunch::group_partials`).
    pub const GROUP_PARTIALS: u32 = 1 << 23;
}
