//! The uniform parameter block every kernel reads, mirrored by `struct Params` in
//! `shaders/common.wgsl`.

use bytemuck::{Pod, Zeroable};

/// Per-dispatch parameters. Offsets are in elements from the start of each binding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub(crate) struct Params {
    pub rows: u32,
    pub cols: u32,
    /// f32 bits, so the struct can be hashed as the key of the uniform cache.
    pub eps_bits: u32,
    pub flags: u32,
    pub x_off: u32,
    pub y_off: u32,
    pub gamma_off: u32,
    pub beta_off: u32,
    pub mean_off: u32,
    pub rstd_off: u32,
    pub dy_off: u32,
    pub dx_off: u32,
    pub part_off: u32,
    pub part_rows: u32,
    pub dgamma_off: u32,
    pub dbeta_off: u32,
    pub res_off: u32,
    pub h_off: u32,
    pub dh_off: u32,
    pub stride: u32,
    pub norm_cols: u32,
    /// f32 bits.
    pub gamma_shift_bits: u32,
    pub pad: [u32; 2],
}

/// Flag bits of `Params::flags`, as in `shaders/common.wgsl`.
pub(crate) mod flags {
    pub const GAMMA: u32 = 1;
    pub const BETA: u32 = 2;
    pub const MEAN: u32 = 4;
    pub const RSTD: u32 = 8;
    pub const EPS_OUTSIDE: u32 = 16;
    pub const DGAMMA: u32 = 32;
    pub const DBETA: u32 = 64;
    pub const RESIDUAL: u32 = 128;
    pub const H_OUT: u32 = 256;
    pub const DH: u32 = 512;
    pub const PARTIAL: u32 = 1024;
}
