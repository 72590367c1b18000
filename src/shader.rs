//! WGSL sources: one file per kernel family in `shaders/`, assembled with the shared helpers.
//!
//! No template engine: a variant is the family's file, `common.wgsl` and one of the two
//! reduction files, concatenated behind a few generated constants and the load/store
//! helpers of each tensor. What varies per launch (workgroup size, threads per row,
//! reduction mode, cached or streamed rows) is an `override` constant; the text depends on
//! the family, subgroups, the dtypes, the memory layout and the register tile (function
//! arrays need a size fixed in the text).

use std::fmt::Write as _;

use crate::dtype::{Io, Storage};
use crate::ops::table::{self, Class, Role, TensorSpec};

/// Quads (4 elements) of a row each thread may keep in registers on a GPU by default
/// ([`Tuning::register_quads`](crate::Tuning::register_quads)).
pub const MAX_CACHE: u32 = 8;
/// Largest workgroup the kernels are written for (the size of their workgroup scratch).
pub const MAX_WORKGROUP: u32 = 256;

const COMMON: &str = include_str!("../shaders/common.wgsl");
const REDUCE_WORKGROUP: &str = include_str!("../shaders/reduce_workgroup.wgsl");
const REDUCE_SUBGROUP: &str = include_str!("../shaders/reduce_subgroup.wgsl");
const RMS_NORM: &str = include_str!("../shaders/rms_norm.wgsl");
const LAYER_NORM: &str = include_str!("../shaders/layer_norm.wgsl");
const REDUCE_COLUMNS: &str = include_str!("../shaders/reduce_columns.wgsl");
const STREAM_COPY: &str = include_str!("../shaders/stream_copy.wgsl");
const IO_NATIVE: &str = include_str!("../shaders/io_native.wgsl");
const IO_PACKED: &str = include_str!("../shaders/io_packed.wgsl");
const CVT_F16: &str = include_str!("../shaders/cvt_f16.wgsl");
const CVT_BF16: &str = include_str!("../shaders/cvt_bf16.wgsl");

/// Tensors every family gets load/store helpers for (common.wgsl refers to them); bindings a
/// kernel does not use stay out of its pipeline's layout.
const ROW_TENSORS: [TensorSpec; 9] = [
    table::X,
    table::DY,
    table::RESIDUAL,
    table::DH,
    table::Y,
    table::DX,
    table::H,
    table::GAMMA,
    table::BETA,
];

/// A kernel: one WGSL entry point, one pipeline label, one name everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

    /// The label of the compute pass a bound op of this kernel opens.
    pub fn pass_label(self) -> &'static str {
        match self {
            Kernel::RmsNormForward => "wgpu_norm.rms_norm_forward",
            Kernel::RmsNormBackward => "wgpu_norm.rms_norm_backward",
            Kernel::LayerNormForward => "wgpu_norm.layer_norm_forward",
            Kernel::LayerNormBackward => "wgpu_norm.layer_norm_backward",
            Kernel::ReduceColumns => "wgpu_norm.reduce_columns",
            Kernel::StreamCopy => "wgpu_norm.stream_copy",
        }
    }

    /// Whether the kernel is a backward (it leaves partial sums for the column pass).
    pub fn is_backward(self) -> bool {
        matches!(self, Kernel::RmsNormBackward | Kernel::LayerNormBackward)
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

/// How row tensors sit in memory, which decides how a quad is moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Any element alignment: four scalar loads or stores per quad.
    #[default]
    Scalar,
    /// Every quad aligned and whole (offsets, row stride and row length multiples of 4):
    /// one 16-byte (f32) or 8-byte (16-bit) vector access per quad.
    Vector,
}

/// Everything besides the family that changes a module's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    /// Subgroup reductions (row families only).
    pub subgroups: bool,
    /// Dtypes of the activations and parameters.
    pub storage: Storage,
    /// 16-bit floats as `array<f16>` (else packed in u32 words).
    pub native_f16: bool,
    /// How row tensors are accessed.
    pub layout: Layout,
    /// Quads of a row each thread holds in registers (the size of the register tile).
    pub register_quads: u32,
}

impl Default for Variant {
    fn default() -> Self {
        Variant {
            subgroups: false,
            storage: Storage::default(),
            native_f16: false,
            layout: Layout::Scalar,
            register_quads: MAX_CACHE,
        }
    }
}

/// The complete WGSL module of `family`, with subgroup reductions or without, for tensors
/// stored as `storage` (16-bit floats as `array<f16>` when `native_f16`, else packed in u32
/// words), scalar layout, the default register tile.
///
/// ```
/// use wgpu_norm::shader::{wgsl_source, Family};
/// use wgpu_norm::{DType, Storage};
/// let text = wgsl_source(Family::RmsNorm, true, Storage::uniform(DType::BF16), false);
/// assert!(text.contains("subgroupAdd"));
/// assert!(text.contains("fn rms_norm_forward"));
/// assert!(text.contains("fn st_y(i: u32, v: vec4<f32>, len: u32)"));
/// ```
pub fn wgsl_source(family: Family, subgroups: bool, storage: Storage, native_f16: bool) -> String {
    wgsl_variant(family, &Variant { subgroups, storage, native_f16, ..Variant::default() })
}

/// The WGSL module of `family` as `variant`.
pub fn wgsl_variant(family: Family, variant: &Variant) -> String {
    let subgroups = variant.subgroups && family.reduces_rows();
    let act = Io::of(variant.storage.activations, variant.native_f16);
    let param = Io::of(variant.storage.params, variant.native_f16);
    let layout = variant.layout;
    let mut s = String::new();
    if act == Io::F16 || param == Io::F16 {
        s.push_str("enable f16;\n");
    }
    // WGSL spells this `enable subgroups;`, which naga does not parse yet; it accepts the
    // builtins whenever the device has `Features::SUBGROUP`.
    // Infallible: writing to a String.
    let _ =
        writeln!(s, "// variant: {}, {layout:?} layout", if subgroups { "subgroup" } else { "workgroup" });
    let _ = writeln!(s, "const MAX_CACHE: u32 = {}u;", variant.register_quads.max(1));
    let _ = writeln!(s, "const MAX_WORKGROUP: u32 = {MAX_WORKGROUP}u;");
    let _ = writeln!(s, "const WHOLE_QUADS: bool = {};", layout == Layout::Vector);
    s.push_str(COMMON);
    if family.reduces_rows() {
        s.push_str(if subgroups { REDUCE_SUBGROUP } else { REDUCE_WORKGROUP });
    }
    match (act, param) {
        (Io::PackedBf16, _) | (_, Io::PackedBf16) => s.push_str(CVT_BF16),
        (Io::PackedF16, _) | (_, Io::PackedF16) => s.push_str(CVT_F16),
        _ => {}
    }
    for spec in ROW_TENSORS {
        let io = if spec.class == Class::Param { param } else { act };
        let access = if spec.role == Role::In { Access::Load } else { Access::Store };
        s.push_str(&io_helper(io, layout, access, spec.name, spec.binding));
    }
    if family == Family::ReduceColumns {
        for spec in [table::DGAMMA, table::DBETA] {
            s.push_str(&io_helper(Io::F32, layout, Access::Store, spec.name, spec.binding));
        }
    }
    let spec = table::workspace(1);
    s.push_str(&io_helper(Io::F32, layout, Access::LoadStore, spec.name, spec.binding));
    s.push_str(family.text());
    s
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Load,
    Store,
    LoadStore,
}

/// The declaration of tensor `name` at `binding` and its load and/or store helper, from
/// `io`'s template.
fn io_helper(io: Io, layout: Layout, access: Access, name: &str, binding: u32) -> String {
    let (template, elem) = match io {
        Io::F32 => (IO_NATIVE, "f32"),
        Io::F16 => (IO_NATIVE, "f16"),
        Io::PackedF16 | Io::PackedBf16 => (IO_PACKED, "u32"),
    };
    let packed = template == IO_PACKED;
    let ty = match (layout, packed) {
        (Layout::Vector, false) => format!("vec4<{elem}>"),
        (Layout::Vector, true) => "vec2<u32>".to_string(),
        // Scalar packed stores are atomic: two threads may write the two halves of a word.
        (Layout::Scalar, true) if access != Access::Load => "atomic<u32>".to_string(),
        (Layout::Scalar, _) => elem.to_string(),
    };
    let layout_name = match layout {
        Layout::Scalar => "scalar",
        Layout::Vector => "vector",
    };
    let mut s = format!("@group(0) @binding({binding}) var<storage, read_write> {name}: array<{ty}>;\n");
    if access != Access::Store {
        s.push_str(&template_section(template, &format!("load {layout_name}")));
    }
    if access != Access::Load {
        s.push_str(&template_section(template, &format!("store {layout_name}")));
    }
    s.replace("NAME", name).replace("ELEM", elem)
}

/// The lines after `//! {section}` up to the next `//!` marker.
fn template_section(template: &str, section: &str) -> String {
    let marker = format!("//! {section}\n");
    let Some((_, rest)) = template.split_once(&marker) else {
        return String::new();
    };
    rest.split("//! ").next().unwrap_or("").to_string()
}
