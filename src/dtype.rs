//! Storage dtypes: what tensors hold in memory. Arithmetic is always f32.

use crate::error::{NormError, Result};

/// The element type of a tensor in memory. Statistics (mean, rstd) and the backward
/// workspace are always f32, and every sum is accumulated in f32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float.
    #[default]
    F32,
    /// IEEE half: `enable f16` where the device has `Features::SHADER_F16`, else pairs in
    /// u32 words through `unpack2x16float` / `pack2x16float`.
    F16,
    /// bfloat16, pairs in u32 words (no WGSL type); stores round to nearest even.
    BF16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// `f32`, `f16` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        }
    }
}

/// Dtypes of a norm's tensors: activations (x, residual, y, h, dy, dh, dx) and parameters
/// (gamma, beta, and so dgamma, dbeta are written in f32 regardless).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Storage {
    /// x, residual, y, h, dy, dh, dx.
    pub activations: DType,
    /// gamma and beta: f32, or the activations' dtype.
    pub params: DType,
}

impl Storage {
    /// Activations and parameters both in `dtype`.
    pub fn uniform(dtype: DType) -> Storage {
        Storage { activations: dtype, params: dtype }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.params == DType::F32 || self.params == self.activations {
            Ok(())
        } else {
            Err(NormError::UnsupportedStorage { activations: self.activations, params: self.params })
        }
    }
}

/// How a dtype is read and written in WGSL: the template in `shaders/io_*.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Io {
    F32,
    /// `array<f16>`, needs `enable f16;`.
    F16,
    /// u32 words with f16 halves.
    PackedF16,
    /// u32 words with bf16 halves.
    PackedBf16,
}

impl Io {
    pub(crate) fn of(dtype: DType, native_f16: bool) -> Io {
        match dtype {
            DType::F32 => Io::F32,
            DType::F16 if native_f16 => Io::F16,
            DType::F16 => Io::PackedF16,
            DType::BF16 => Io::PackedBf16,
        }
    }
}

/// A host element type the convenience calls accept: `f32`, `half::f16`, `half::bf16`.
pub trait Element: bytemuck::Pod + Send + Sync {
    /// The dtype it is stored as.
    const DTYPE: DType;
    /// Its value, exactly.
    fn to_f64(self) -> f64;
    /// The nearest element to `v` (round to nearest even).
    fn from_f32(v: f32) -> Self;
    /// A NaN, to poison outputs before a run.
    fn nan() -> Self;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn from_f32(v: f32) -> Self {
        v
    }
    fn nan() -> Self {
        f32::NAN
    }
}

impl Element for half::f16 {
    const DTYPE: DType = DType::F16;
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
    fn from_f32(v: f32) -> Self {
        half::f16::from_f32(v)
    }
    fn nan() -> Self {
        half::f16::NAN
    }
}

impl Element for half::bf16 {
    const DTYPE: DType = DType::BF16;
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
    fn from_f32(v: f32) -> Self {
        half::bf16::from_f32(v)
    }
    fn nan() -> Self {
        half::bf16::NAN
    }
}
