//! WGSL sources: one file per kernel family in `shaders/`, assembled with the shared helpers.
//!
//! No template engine: a variant is the family's file, `common.wgsl` and one of the two
//! reduction files, concatenated behind a few generated constants. Everything that varies
//! per launch (workgroup size, threads per row, reduction mode) is an `override` constant,
//! so the text depends only on the family and on whether subgroups are used.

use std::fmt::Write as _;

use crate::dtype::{Io, Storage};

/// Pairs of elements of a row each thread keeps in registers by default
/// ([`Tuning::register_pairs`](crate::Tuning::register_pairs)); rows up to
/// `2 * threads per row * register pairs` elements are read from memory once.
pub const MAX_CACHE: u32 = 16;
/// Largest workgroup the kernels are written for (the size of their workgroup scratch).
pub const MAX_WORKGROUP: u32 = 256;

const COMMON: &str = include_str!("../shaders/common.wgsl");
const REDUCE_WORKGROUP: &str = include_str!("../shaders/reduce_workgroup.wgsl");
const REDUCE_SUBGROUP: &str = include_str!("../shaders/reduce_subgroup.wgsl");
const RMS_NORM: &str = include_str!("../shaders/rms_norm.wgsl");
const LAYER_NORM: &str = include_str!("../shaders/layer_norm.wgsl");
const REDUCE_COLUMNS: &str = include_str!("../shaders/reduce_columns.wgsl");
const STREAM_COPY: &str = include_str!("../shaders/stream_copy.wgsl");
const IO_F32: &str = include_str!("../shaders/io_f32.wgsl");
const IO_F16: &str = include_str!("../shaders/io_f16.wgsl");
const IO_PACKED: &str = include_str!("../shaders/io_packed.wgsl");
const CVT_F16: &str = include_str!("../shaders/cvt_f16.wgsl");
const CVT_BF16: &str = include_str!("../shaders/cvt_bf16.wgsl");

/// Activation tensors the kernels read: (name, binding).
const INPUTS: [(&str, u32); 4] = [("x", 0), ("dy", 6), ("res", 11), ("dh", 13)];
/// Activation tensors the kernels write.
const OUTPUTS: [(&str, u32); 3] = [("y", 3), ("dx", 7), ("h", 12)];
/// Parameter tensors.
const PARAMS: [(&str, u32); 2] = [("gamma", 1), ("beta", 2)];

/// A kernel: one WGSL entry point, one pipeline label, one name everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `rms_norm_forward` in `shaders/rms_norm.wgsl`.
    RmsNormForward,
    /// `rms_norm_backward` in `shaders/rms_norm.wgsl`.
    RmsNormBackward,
    /// `layer_norm_forward` in `shaders/layer_norm.wgsl`.
    LayerNormForward,
    /// `layer_norm_backward` in `shaders/layer_norm.wgsl`.
    LayerNormBackward,
    /// `reduce_columns` in `shaders/reduce_columns.wgsl` (dgamma/dbeta column sums).
    ReduceColumns,
    /// `stream_copy` in `shaders/stream_copy.wgsl` (the benchmark's roofline).
    StreamCopy,
}

/// A WGSL file and the kernels it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// `shaders/rms_norm.wgsl`.
    RmsNorm,
    /// `shaders/layer_norm.wgsl`.
    LayerNorm,
    /// `shaders/reduce_columns.wgsl`.
    ReduceColumns,
    /// `shaders/stream_copy.wgsl`.
    StreamCopy,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 4] =
        [Family::RmsNorm, Family::LayerNorm, Family::ReduceColumns, Family::StreamCopy];

    /// The entry points this family's file defines.
    pub fn kernels(self) -> &'static [Kernel] {
        match self {
            Family::RmsNorm => &[Kernel::RmsNormForward, Kernel::RmsNormBackward],
            Family::LayerNorm => &[Kernel::LayerNormForward, Kernel::LayerNormBackward],
            Family::ReduceColumns => &[Kernel::ReduceColumns],
            Family::StreamCopy => &[Kernel::StreamCopy],
        }
    }

    /// The file name under `shaders/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Family::RmsNorm => "rms_norm.wgsl",
            Family::LayerNorm => "layer_norm.wgsl",
            Family::ReduceColumns => "reduce_columns.wgsl",
            Family::StreamCopy => "stream_copy.wgsl",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Family::RmsNorm => RMS_NORM,
            Family::LayerNorm => LAYER_NORM,
            Family::ReduceColumns => REDUCE_COLUMNS,
            Family::StreamCopy => STREAM_COPY,
        }
    }

    /// Whether the family reduces along rows (and so has a subgroup variant).
    pub fn reduces_rows(self) -> bool {
        matches!(self, Family::RmsNorm | Family::LayerNorm)
    }
}

impl Kernel {
    /// The WGSL entry point, which is also the kernel's name in labels and benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::RmsNormForward => "rms_norm_forward",
            Kernel::RmsNormBackward => "rms_norm_backward",
            Kernel::LayerNormForward => "layer_norm_forward",
            Kernel::LayerNormBackward => "layer_norm_backward",
            Kernel::ReduceColumns => "reduce_columns",
            Kernel::StreamCopy => "stream_copy",
        }
    }

    /// The file that defines the kernel.
    pub fn family(self) -> Family {
        match self {
            Kernel::RmsNormForward | Kernel::RmsNormBackward => Family::RmsNorm,
            Kernel::LayerNormForward | Kernel::LayerNormBackward => Family::LayerNorm,
            Kernel::ReduceColumns => Family::ReduceColumns,
            Kernel::StreamCopy => Family::StreamCopy,
        }
    }
}

/// The complete WGSL module of `family`, with subgroup reductions or without, for tensors
/// stored as `storage` (16-bit floats as `array<f16>` when `native_f16`, else packed in u32
/// words).
///
/// ```
/// use wgpu_norm::shader::{wgsl_source, Family};
/// use wgpu_norm::{DType, Storage};
/// let text = wgsl_source(Family::RmsNorm, true, Storage::uniform(DType::BF16), false);
/// assert!(text.contains("subgroupAdd"));
/// assert!(text.contains("fn rms_norm_forward"));
/// assert!(text.contains("fn st_y(i: u32, v: vec2<f32>, len: u32)"));
/// ```
pub fn wgsl_source(family: Family, subgroups: bool, storage: Storage, native_f16: bool) -> String {
    wgsl_source_with(family, subgroups, storage, native_f16, MAX_CACHE)
}

/// [`wgsl_source`] with `register_pairs` pairs of a row held per thread.
pub fn wgsl_source_with(
    family: Family,
    subgroups: bool,
    storage: Storage,
    native_f16: bool,
    register_pairs: u32,
) -> String {
    let subgroups = subgroups && family.reduces_rows();
    let act = Io::of(storage.activations, native_f16);
    let param = Io::of(storage.params, native_f16);
    let mut s = String::new();
    if act == Io::F16 || param == Io::F16 {
        s.push_str("enable f16;\n");
    }
    // WGSL spells this `enable subgroups;`, which naga does not parse yet; it accepts the
    // builtins whenever the device has `Features::SUBGROUP`.
    let _ = writeln!(s, "// variant: {}", if subgroups { "subgroup" } else { "workgroup" });
    // Infallible: writing to a String.
    let _ = writeln!(s, "const MAX_CACHE: u32 = {}u;", register_pairs.max(1));
    let _ = writeln!(s, "const MAX_WORKGROUP: u32 = {MAX_WORKGROUP}u;");
    s.push_str(COMMON);
    if family.reduces_rows() {
        s.push_str(if subgroups { REDUCE_SUBGROUP } else { REDUCE_WORKGROUP });
    }
    match (act, param) {
        (Io::PackedBf16, _) | (_, Io::PackedBf16) => s.push_str(CVT_BF16),
        (Io::PackedF16, _) | (_, Io::PackedF16) => s.push_str(CVT_F16),
        _ => {}
    }
    for (name, binding) in INPUTS {
        s.push_str(&io_helper(act, true, name, binding));
    }
    for (name, binding) in OUTPUTS {
        s.push_str(&io_helper(act, false, name, binding));
    }
    for (name, binding) in PARAMS {
        s.push_str(&io_helper(param, true, name, binding));
    }
    s.push_str(family.text());
    s
}

/// The load (or store) half of `io`'s template, for tensor `name` at `binding`.
fn io_helper(io: Io, load: bool, name: &str, binding: u32) -> String {
    let template = match io {
        Io::F32 => IO_F32,
        Io::F16 => IO_F16,
        Io::PackedF16 | Io::PackedBf16 => IO_PACKED,
    };
    // The template is `header //! load ... //! store ...`; both markers are always there.
    let (_, rest) = template.split_once("//! load\n").unwrap_or(("", template));
    let (load_part, store_part) = rest.split_once("//! store\n").unwrap_or((rest, ""));
    let part = if load { load_part } else { store_part };
    part.replace("NAME", name).replace("BINDING", &binding.to_string())
}
