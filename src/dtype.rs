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

/// The dtype of each tensor of a norm, chosen per tensor: an f32 residual stream with a
/// bf16 `y`, 16-bit activations with f32 `gamma`, or any other mix. Statistics (mean,
/// rstd), dgamma, dbeta and the backward's workspace are always f32, and every sum is
/// accumulated in f32. A field names the tensor of the same name in every op that has one.
///
/// ```
/// use wgpu_norm::{DType, Storage};
/// // The pre-norm block of an LLM: x, residual and h in f32, y in bf16 for the next matmul.
/// let pre_norm = Storage { y: DType::BF16, ..Storage::default() };
/// // Mixed-precision training: 16-bit activations, f32 parameters.
/// let mixed = Storage::uniform(DType::F16).with_params(DType::F32);
/// assert_eq!(mixed.gamma, DType::F32);
/// assert_eq!("f16,gamma=f32,beta=f32".parse::<Storage>(), Ok(mixed));
/// assert_eq!("y=bf16".parse::<Storage>(), Ok(pre_norm));
/// assert_eq!(pre_norm.to_string(), "f32,y=bf16");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Storage {
    /// The input rows (the saved input or h in a backward).
    pub x: DType,
    /// The residual added to x before the norm.
    pub residual: DType,
    /// The sum x + residual, written out.
    pub h: DType,
    /// The normalized rows.
    pub y: DType,
    /// The gradient arriving on y.
    pub dy: DType,
    /// The gradient arriving on h besides the one through the norm.
    pub dh: DType,
    /// The gradient of x.
    pub dx: DType,
    /// The scale.
    pub gamma: DType,
    /// The shift (LayerNorm).
    pub beta: DType,
}

impl Storage {
    /// Every tensor in `dtype`.
    pub const fn uniform(dtype: DType) -> Storage {
        let d = dtype;
        Storage { x: d, residual: d, h: d, y: d, dy: d, dh: d, dx: d, gamma: d, beta: d }
    }

    /// The same, with the parameters (gamma and beta) in `dtype`.
    pub const fn with_params(self, dtype: DType) -> Storage {
        Storage { gamma: dtype, beta: dtype, ..self }
    }

    /// The dtype of the tensor named `name`, if it is one of the fields.
    pub fn dtype(&self, name: &str) -> Option<DType> {
        let mut s = *self;
        s.slot(name).map(|d| *d)
    }

    /// Whether any tensor is stored as `dtype`.
    ///
    /// ```
    /// use wgpu_norm::{DType, Storage};
    /// assert!(Storage { y: DType::F16, ..Storage::default() }.contains(DType::F16));
    /// assert!(!Storage::uniform(DType::BF16).contains(DType::F16));
    /// ```
    pub fn contains(&self, dtype: DType) -> bool {
        let mut s = *self;
        s.fields().into_iter().any(|(_, d)| *d == dtype)
    }

    fn slot(&mut self, name: &str) -> Option<&mut DType> {
        self.fields().into_iter().find(|(n, _)| *n == name).map(|(_, d)| d)
    }

    /// The one place a tensor's name meets its field.
    fn fields(&mut self) -> [(&'static str, &mut DType); 9] {
        let Storage { x, residual, h, y, dy, dh, dx, gamma, beta } = self;
        [
            ("x", x),
            ("residual", residual),
            ("h", h),
            ("y", y),
            ("dy", dy),
            ("dh", dh),
            ("dx", dx),
            ("gamma", gamma),
            ("beta", beta),
        ]
    }
}

/// What [`Storage`]'s `FromStr` reads: x's dtype, then `NAME=DTYPE` for each tensor stored
/// otherwise (`f32,y=bf16`); one dtype alone when all agree (`bf16`).
impl std::fmt::Display for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = *self;
        f.write_str(self.x.name())?;
        for (name, dtype) in s.fields() {
            if *dtype != self.x {
                write!(f, ",{name}={}", dtype.name())?;
            }
        }
        Ok(())
    }
}

/// `DTYPE` for every tensor, `NAME=DTYPE` for one, separated by commas and applied in
/// order from f32: `bf16`, `y=bf16`, `f16,gamma=f32,beta=f32`.
impl std::str::FromStr for Storage {
    type Err = NormError;

    fn from_str(text: &str) -> Result<Storage> {
        let bad = |why: String| NormError::InvalidStorage { text: text.to_string(), why };
        let mut storage = Storage::default();
        for part in text.split(',').map(str::trim) {
            match part.split_once('=') {
                None => storage = Storage::uniform(part.parse().map_err(bad)?),
                Some((name, dtype)) => {
                    let dtype = dtype.trim().parse().map_err(bad)?;
                    let name = name.trim();
                    *storage.slot(name).ok_or_else(|| bad(format!("no tensor is named {name:?}")))? = dtype;
                }
            }
        }
        Ok(storage)
    }
}

impl std::str::FromStr for DType {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<DType, String> {
        [DType::F32, DType::F16, DType::BF16]
            .into_iter()
            .find(|d| d.name() == text)
            .ok_or_else(|| format!("{text:?} is not a dtype (f32, f16 or bf16)"))
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
