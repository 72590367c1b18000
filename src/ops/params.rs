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
    pub _pad: [u32; 2],
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
}
