//! WGSL sources: one file per kernel family in `shaders/`, assembled with the shared helpers.
//!
//! No template engine: each file names what it uses from elsewhere in `//! include NAME`
//! lines, and a variant is the family's file with all it includes, each once. Besides
//! files, five names are resolved here: `constants` (from the [`Variant`]), `params` (the
//! parameter block's binding, read directly or copied on entry), `tensors` (each
//! tensor's binding and helpers: an `io_*.wgsl` template, itself a valid module, renamed
//! after the tensor and in its own dtype) and `reduce` (subgroup or workgroup reductions). What varies per launch (workgroup size, threads per row,
//! reduction mode, cached or streamed rows) is an `override` constant; the text depends on
//! the family, subgroups, the dtypes, the memory layout and the register tile (function
//! arrays need a size fixed in the text).

use std::fmt::Write as _;

use crate::dtype::{Io, Storage};
use crate::ops::params::{GUARD_HI, GUARD_LO, TINY_EXP};
use crate::ops::table::{self, Role, TensorSpec};

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
const FORWARD_WALKS: &str = include_str!("../shaders/forward_walks.wgsl");
const IO_NATIVE_SCALAR: &str = include_str!("../shaders/io_native_scalar.wgsl");
const IO_NATIVE_VECTOR: &str = include_str!("../shaders/io_native_vector.wgsl");
const IO_PACKED_SCALAR_IN: &str = include_str!("../shaders/io_packed_scalar_in.wgsl");
const IO_PACKED_SCALAR_OUT: &str = include_str!("../shaders/io_packed_scalar_out.wgsl");
const IO_PACKED_VECTOR: &str = include_str!("../shaders/io_packed_vector.wgsl");
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

/// A kernel: one name everywhere, its WGSL entry point's (with a [`Walk`]'s suffix where it has
/// more than one walk), its pipelines' labels and its benchmark rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kernel {
    /// `rms_norm_forward` in `shaders/rms_norm.wgsl`.
    RmsNormForward,
    /// `rms_norm_forward_split` in `shaders/rms_norm.wgsl`: the forward of rows split
    /// over several workgroups.
    RmsNormForwardSplit,
    /// `rms_norm_backward` in `shaders/rms_norm.wgsl`.
    RmsNormBackward,
    /// `layer_norm_forward` in `shaders/layer_norm.wgsl`.
    LayerNormForward,
    /// `layer_norm_forward_split` in `shaders/layer_norm.wgsl`: the forward of rows split
    /// over several workgroups.
    LayerNormForwardSplit,
    /// `layer_norm_backward` in `shaders/layer_norm.wgsl`.
    LayerNormBackward,
    /// `reduce_columns` in `shaders/reduce_columns.wgsl` (dgamma/dbeta column sums).
    ReduceColumns,
    /// `stream_copy` in `shaders/stream_copy.wgsl` (the benchmark's roofline).
    StreamCopy,
}

/// How a row kernel's slot goes over its rows. Each walk is an entry point of its own, the
/// kernel's name with the walk's suffix, so that a pipeline holds only the walk it runs:
/// walks behind override tests are compiled all the same. On SwiftShader LayerNorm's forward
/// compiled in 2.5-3.1 s with its three walks in one entry point, and in 0.6 s (tile) and
/// 1.7-2.1 s (streamed) with one; 0.7 s against 0.25 s and 0.5 s on lavapipe (BENCHMARKS.md,
/// "One entry point per walk").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Walk {
    /// One row per trip, its sums guarded as it goes: any launch.
    Rows,
    /// Streamed rows, several per trip while enough are left (`TRIP_ROWS`): rows not in the
    /// register tile.
    Streamed,
    /// Tile rows, those that need a walk only a few rows need (a forward's rows out of f32's
    /// range; LayerNorm's backward's rows with a peak) done after the slot's others.
    Tile,
}

impl Walk {
    /// What the walk adds to its kernel's name to name its entry point.
    pub fn suffix(self) -> &'static str {
        match self {
            Walk::Rows => "",
            Walk::Streamed => "_streamed",
            Walk::Tile => "_tile",
        }
    }
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
            Family::RmsNorm => {
                &[Kernel::RmsNormForward, Kernel::RmsNormForwardSplit, Kernel::RmsNormBackward]
            }
            Family::LayerNorm => {
                &[Kernel::LayerNormForward, Kernel::LayerNormForwardSplit, Kernel::LayerNormBackward]
            }
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
            Kernel::RmsNormForwardSplit => "rms_norm_forward_split",
            Kernel::RmsNormBackward => "rms_norm_backward",
            Kernel::LayerNormForward => "layer_norm_forward",
            Kernel::LayerNormForwardSplit => "layer_norm_forward_split",
            Kernel::LayerNormBackward => "layer_norm_backward",
            Kernel::ReduceColumns => "reduce_columns",
            Kernel::StreamCopy => "stream_copy",
        }
    }

    /// The walks the kernel has an entry point for.
    pub fn walks(self) -> &'static [Walk] {
        match self {
            Kernel::RmsNormForward | Kernel::LayerNormForward | Kernel::LayerNormBackward => {
                &[Walk::Rows, Walk::Streamed, Walk::Tile]
            }
            Kernel::RmsNormBackward => &[Walk::Rows, Walk::Streamed],
            _ => &[Walk::Rows],
        }
    }

    /// The WGSL entry point of the kernel's `walk`.
    pub fn entry_point(self, walk: Walk) -> String {
        format!("{}{}", self.name(), walk.suffix())
    }

    /// The label of the compute pass a bound op of this kernel opens.
    pub fn pass_label(self) -> &'static str {
        match self {
            Kernel::RmsNormForward | Kernel::RmsNormForwardSplit => "wgpu_norm.rms_norm_forward",
            Kernel::RmsNormBackward => "wgpu_norm.rms_norm_backward",
            Kernel::LayerNormForward | Kernel::LayerNormForwardSplit => "wgpu_norm.layer_norm_forward",
            Kernel::LayerNormBackward => "wgpu_norm.layer_norm_backward",
            Kernel::ReduceColumns => "wgpu_norm.reduce_columns",
            Kernel::StreamCopy => "wgpu_norm.stream_copy",
        }
    }

    /// Whether the kernel is a backward (it leaves partial sums for the column pass).
    pub fn is_backward(self) -> bool {
        matches!(self, Kernel::RmsNormBackward | Kernel::LayerNormBackward)
    }

    /// How many streamed rows the kernel walks per trip at most, from as many row blocks,
    /// where a workgroup has that many left (so that a gamma quad, a reduction, and a
    /// backward's partial sums serve them all).
    pub fn streamed_rows_per_trip(self) -> u32 {
        match self {
            Kernel::RmsNormForward
            | Kernel::LayerNormForward
            | Kernel::RmsNormBackward
            | Kernel::LayerNormBackward => 4,
            _ => 1,
        }
    }

    /// How many streamed rows the kernel walks per trip (its `TRIP_ROWS`) when each thread
    /// walks `per_thread` quads of each: RMSNorm's forward goes in pairs where that is fewer
    /// than 32, since four such rows ran 0.78-0.89x the naive kernel on lavapipe and
    /// SwiftShader and pairs 0.95-1.07x (BENCHMARKS.md, "Short streamed rows in pairs").
    pub fn trip_rows(self, per_thread: u32) -> u32 {
        match self {
            Kernel::RmsNormForward if per_thread < 32 => 2,
            _ => self.streamed_rows_per_trip(),
        }
    }

    /// The kernel that runs this one's rows split into segments, if it has one.
    pub fn split(self) -> Option<Kernel> {
        match self {
            Kernel::RmsNormForward => Some(Kernel::RmsNormForwardSplit),
            Kernel::LayerNormForward => Some(Kernel::LayerNormForwardSplit),
            _ => None,
        }
    }

    /// Storage buffers the kernel binds: at most 8 (WebGPU's default limit per shader
    /// stage), but for LayerNorm's split forward, which binds the workspace next to its 8
    /// tensors (tests/shaders_validate.rs counts them).
    pub fn storage_buffers(self) -> u32 {
        match self {
            Kernel::LayerNormForwardSplit => 9,
            _ => 8,
        }
    }

    /// The file that defines the kernel.
    pub fn family(self) -> Family {
        match self {
            Kernel::RmsNormForward | Kernel::RmsNormForwardSplit | Kernel::RmsNormBackward => Family::RmsNorm,
            Kernel::LayerNormForward | Kernel::LayerNormForwardSplit | Kernel::LayerNormBackward => {
                Family::LayerNorm
            }
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
    /// The dtype of each tensor.
    pub storage: Storage,
    /// 16-bit floats as `array<f16>` (else packed in u32 words).
    pub native_f16: bool,
    /// How row tensors are accessed.
    pub layout: Layout,
    /// Quads of a row each thread holds in registers (the size of the register tile); 0 for
    /// streamed rows.
    pub register_quads: u32,
    /// The kernels read the parameters from a private copy made on entry (see
    /// `PARAMS_COPIED`: for streamed rows) rather than from the uniform block.
    pub params_copied: bool,
}

impl Default for Variant {
    fn default() -> Self {
        Variant {
            subgroups: false,
            storage: Storage::default(),
            native_f16: false,
            layout: Layout::Scalar,
            register_quads: MAX_CACHE,
            params_copied: false,
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

/// The WGSL module of `family` as `variant`: the family's file with everything its
/// `//! include` lines name, each once, ahead of the file that first names it.
pub fn wgsl_variant(family: Family, variant: &Variant) -> String {
    let subgroups = variant.subgroups && family.reduces_rows();
    let mut s = String::new();
    if ROW_TENSORS.iter().any(|spec| io_of(variant, *spec) == Io::F16) {
        s.push_str("enable f16;\n");
    }
    // WGSL spells this `enable subgroups;`, which naga does not parse yet; it accepts the
    // builtins whenever the device has `Features::SUBGROUP`.
    // Infallible: writing to a String.
    let _ = writeln!(
        s,
        "// {} variant: {} reductions, {:?} layout, {}, parameters {}",
        family.file_name(),
        if subgroups { "subgroup" } else { "workgroup" },
        variant.layout,
        match variant.register_quads {
            0 => "streamed rows".to_string(),
            n => format!("tile of {n} quads"),
        },
        if variant.params_copied { "copied" } else { "uniform" },
    );
    let mut assembly = Assembly { family, variant, subgroups, included: Vec::new(), out: s };
    assembly.include(family.file_name());
    assembly.out
}

/// How `spec` is read and written in `variant`.
fn io_of(variant: &Variant, spec: TensorSpec) -> Io {
    Io::of(spec.dtype(variant.storage), variant.native_f16)
}

/// The call's parameters, `p`, as tile modules read them: from the uniform block.
const PARAMS_UNIFORM: &str = "@group(0) @binding(15) var<uniform> p: Params;
fn load_params() {}
";

/// `p` as a private copy of the uniform block made on entry ([`Variant::params_copied`]).
/// LLVM (lavapipe) cannot tell the uniform block from the storage buffers a walk writes, so
/// it reloads every field a streamed loop uses after each store; from the copy it hoists
/// them: 1.05-1.16x on streamed rows there (BENCHMARKS.md, "Params read once"). Tile modules
/// read the uniform block: with the copy their unrolled backwards ran up to 1.25x slower, its
/// fields live through them. Never in the browser: Tint's uniformity analysis takes a
/// private variable as non-uniform, and so every barrier under a loop bound read from it.
const PARAMS_COPIED: &str = "@group(0) @binding(15) var<uniform> params: Params;
var<private> p: Params;
fn load_params() {
    p = params;
}
";

/// The files under `shaders/` by name.
const FILES: [(&str, &str); 15] = [
    ("common.wgsl", COMMON),
    ("reduce_workgroup.wgsl", REDUCE_WORKGROUP),
    ("reduce_subgroup.wgsl", REDUCE_SUBGROUP),
    ("rms_norm.wgsl", RMS_NORM),
    ("layer_norm.wgsl", LAYER_NORM),
    ("reduce_columns.wgsl", REDUCE_COLUMNS),
    ("stream_copy.wgsl", STREAM_COPY),
    ("forward_walks.wgsl", FORWARD_WALKS),
    ("io_native_scalar.wgsl", IO_NATIVE_SCALAR),
    ("io_native_vector.wgsl", IO_NATIVE_VECTOR),
    ("io_packed_scalar_in.wgsl", IO_PACKED_SCALAR_IN),
    ("io_packed_scalar_out.wgsl", IO_PACKED_SCALAR_OUT),
    ("io_packed_vector.wgsl", IO_PACKED_VECTOR),
    ("cvt_f16.wgsl", CVT_F16),
    ("cvt_bf16.wgsl", CVT_BF16),
];

/// The names an `//! include` line may give besides files: what the variant decides.
pub const GENERATED: [&str; 4] = ["constants", "params", "tensors", "reduce"];

/// The text of the file `name` under `shaders/`.
pub fn file_text(name: &str) -> Option<&'static str> {
    FILES.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

/// Every file under `shaders/`, by name.
pub fn file_names() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|(n, _)| *n)
}

/// The names a file's `//! include NAME` lines give.
pub fn includes(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|l| l.strip_prefix("//! include ")).map(str::trim)
}

/// One module being put together.
struct Assembly<'a> {
    family: Family,
    variant: &'a Variant,
    subgroups: bool,
    included: Vec<String>,
    out: String,
}

impl Assembly<'_> {
    fn include(&mut self, name: &str) {
        if self.included.iter().any(|n| n == name) {
            return;
        }
        self.included.push(name.to_string());
        match name {
            "constants" => {
                let v = self.variant;
                let _ = writeln!(self.out, "const MAX_CACHE: u32 = {}u;", v.register_quads.max(1));
                let _ = writeln!(self.out, "const MAX_WORKGROUP: u32 = {MAX_WORKGROUP}u;");
                let _ = writeln!(self.out, "const WHOLE_QUADS: bool = {};", v.layout == Layout::Vector);
                let _ = writeln!(self.out, "const GUARD_HI: i32 = {GUARD_HI};");
                let _ = writeln!(self.out, "const GUARD_LO: i32 = {GUARD_LO};");
                let _ = writeln!(self.out, "const TINY: f32 = 0x1p{TINY_EXP}f;");
            }
            "params" => {
                self.out.push_str(if self.variant.params_copied { PARAMS_COPIED } else { PARAMS_UNIFORM })
            }
            "tensors" => self.tensors(),
            "reduce" => {
                self.include(if self.subgroups { "reduce_subgroup.wgsl" } else { "reduce_workgroup.wgsl" })
            }
            file => {
                // Every name is one of FILES (a test resolves every include of every file).
                let text = file_text(file).unwrap_or_default();
                for dep in includes(text) {
                    self.include(dep);
                }
                self.out.push_str(text);
            }
        }
    }

    /// The binding and ld_/st_ helpers of every tensor the family may name: the row
    /// tensors (common.wgsl refers to them all; those a kernel does not use stay out of
    /// its pipeline's layout), the column sums of reduce_columns and the workspace.
    fn tensors(&mut self) {
        let layout = self.variant.layout;
        for spec in ROW_TENSORS {
            self.tensor(io_of(self.variant, spec), layout, spec);
        }
        if self.family == Family::ReduceColumns {
            self.tensor(Io::F32, layout, table::DGAMMA);
            self.tensor(Io::F32, layout, table::DBETA);
        }
        self.tensor(Io::F32, layout, table::workspace(1));
    }

    /// Tensor `spec` stored as `io`: its io_*.wgsl template, renamed.
    fn tensor(&mut self, io: Io, layout: Layout, spec: TensorSpec) {
        let (template, elem) = match (io, layout, spec.role) {
            (Io::F32, Layout::Scalar, _) => ("io_native_scalar.wgsl", "f32"),
            (Io::F16, Layout::Scalar, _) => ("io_native_scalar.wgsl", "f16"),
            (Io::F32, Layout::Vector, _) => ("io_native_vector.wgsl", "f32"),
            (Io::F16, Layout::Vector, _) => ("io_native_vector.wgsl", "f16"),
            (_, Layout::Scalar, Role::In) => ("io_packed_scalar_in.wgsl", ""),
            (_, Layout::Scalar, _) => ("io_packed_scalar_out.wgsl", ""),
            (_, Layout::Vector, _) => ("io_packed_vector.wgsl", ""),
        };
        let text = file_text(template).unwrap_or_default();
        // The packed templates are written for f16 (they include cvt_f16.wgsl and call its
        // unpack_f16 and pack_f16); cvt_bf16.wgsl has the same functions named for bf16.
        let text = if io == Io::PackedBf16 { text.replace("f16", "bf16") } else { text.to_string() };
        for dep in includes(&text) {
            self.include(dep);
        }
        let binding = format!("@binding({})", spec.binding);
        for line in text.lines().filter(|l| !l.starts_with("//")) {
            let line = if line.starts_with("alias tensor_elem") {
                format!("alias tensor_elem = {elem};")
            } else {
                line.replace("@binding(0)", &binding)
            };
            self.out.push_str(&line.replace("tensor", spec.name));
            self.out.push('\n');
        }
    }
}
