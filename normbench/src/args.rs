//! Command-line arguments.

use std::path::PathBuf;

use clap::Parser;
use wgpu_norm::{Direction, Norm, Shape, Storage};

/// LLM-typical shapes: decode (1 token), small and large prefill batches, BERT-base's 768
/// and the long rows of large models.
pub const DEFAULT_SHAPES: &str = "1x4096,32x4096,512x4096,4096x4096,8192x768,1024x8192,256x16384";

/// RMSNorm and LayerNorm kernels on the GPU next to the CPU, with the share of a stream-copy
/// roofline measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "normbench", version)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Shapes as ROWSxCOLS, comma separated.
    #[arg(long, value_delimiter = ',', value_parser = str::parse::<Shape>, default_value = DEFAULT_SHAPES)]
    pub shapes: Vec<Shape>,
    /// Ops: rms_norm, layer_norm.
    #[arg(long, value_delimiter = ',', value_parser = parse_op, default_value = "rms_norm,layer_norm")]
    pub ops: Vec<Norm>,
    /// Directions: forward, backward (dx plus dgamma/dbeta).
    #[arg(long, value_delimiter = ',', value_parser = parse_direction, default_value = "forward,backward")]
    pub dirs: Vec<Direction>,
    /// Timed runs per row of the table (median and min are reported); short kernels run
    /// more, until 100 ms of them are timed (at most 400 runs).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub iters: u32,
    /// Untimed runs before the timed ones.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=1_000))]
    pub warmup: u32,
    /// Storage dtype of every tensor (f32, f16 or bf16), then NAME=DTYPE for each tensor
    /// stored otherwise: `bf16`, `y=bf16` (an f32 residual stream with a bf16 output),
    /// `f16,gamma=f32`. Statistics and sums are f32.
    #[arg(long, value_parser = parse_storage, default_value = "f32")]
    pub dtype: Storage,
    /// Fuse the residual add: forward normalizes x + residual and writes h out; backward
    /// adds the gradient arriving on h.
    #[arg(long)]
    pub fused_residual: bool,
    /// Backward recomputes the statistics instead of reading the forward's saved mean and
    /// rstd (the byte model still counts reading them: rows x 8 bytes).
    #[arg(long)]
    pub no_saved_stats: bool,
    /// Per-head norm (QK-norm): each shape TOKENSxHEAD_DIM is HEADS heads per token, the q
    /// heads of a fused QKV projection (tokens 3 x HEADS x HEAD_DIM apart), in one dispatch.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub heads: u32,
    /// Override the adapter's tuning: threads per workgroup.
    #[arg(long)]
    pub workgroup_size: Option<u32>,
    /// Override the adapter's tuning: most threads sharing one row.
    #[arg(long)]
    pub max_row_threads: Option<u32>,
    /// Override the adapter's tuning: most threads a row may take to fit the register
    /// tile, where each row slot walks enough rows, forward and backward.
    #[arg(long)]
    pub max_tile_row_threads: Option<u32>,
    /// Override the adapter's tuning: rows per workgroup of the grid from which rows reduced
    /// through workgroup memory take one thread each (0: never; short rows from the fewer of
    /// this and the adapter's count for them).
    #[arg(long)]
    pub single_thread_rows: Option<u32>,
    /// Override the adapter's tuning: most quads of a row each thread holds in registers.
    #[arg(long)]
    pub register_quads: Option<u32>,
    /// Override the adapter's tuning: four scalar accesses per quad even where tensors are
    /// aligned for one vector access.
    #[arg(long)]
    pub scalar_access: bool,
    /// Override the adapter's tuning: elements each thread should own, forward and backward.
    #[arg(long)]
    pub elements_per_thread: Option<u32>,
    /// Override the adapter's tuning: elements per segment of a split row (0: never split).
    #[arg(long)]
    pub split_chunk: Option<u32>,
    /// Override the adapter's tuning: most iterations any one loop of a kernel may run per
    /// thread.
    #[arg(long)]
    pub max_loop_trips: Option<u32>,
    /// Override the adapter's tuning: least elements of work per workgroup (0: no floor).
    #[arg(long)]
    pub min_group_elements: Option<u32>,
    /// Override the adapter's tuning: most threads summing one column quad's partial rows in
    /// the column pass (1: one thread each).
    #[arg(long)]
    pub max_column_lanes: Option<u32>,
    /// Override the adapter's tuning: whether a backward's streamed trip walks its rows' sums
    /// together (true) or one row after another (false).
    #[arg(long)]
    pub joint_walks: Option<bool>,
    /// Override the adapter's tuning: whether a tile backward's workgroup sums its row slots'
    /// partial sums and leaves one row of them (true) or one row per slot (false).
    #[arg(long)]
    pub group_partials: Option<bool>,
    /// Compile the kernels with wgpu's bounds checks on (`ContextOptions::checked_shaders`).
    #[arg(long)]
    pub checked_shaders: bool,
    /// Autotune every kernel for the benchmark's shapes (and the roofline's) before timing:
    /// the launches it picks are the ones measured.
    #[arg(long)]
    pub autotune: bool,
    /// Autotune, reading and writing the chosen launches in this file (a second run on the
    /// same adapter takes them without timing).
    #[arg(long)]
    pub launch_cache: Option<PathBuf>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw GB/s against hidden size as SVG to this file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// What else normbench does besides the benchmark.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Each row's share of energy along the all-ones vector, from a LayerNorm forward's
    /// statistics on the GPU, and what swapping LayerNorm for RMSNorm would change.
    Geometry {
        /// Rows x cols of f32 or f16, as NumPy `.npy` in C order: one file per site (several
        /// comma separated, or the option given again), each reported on its own.
        #[arg(long, required = true, value_delimiter = ',')]
        input: Vec<PathBuf>,
        /// LayerNorm's eps.
        #[arg(long, default_value_t = 1e-12)]
        eps: f32,
        /// Draw the histogram of every row's share, over all sites, as SVG to this file.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
}

fn parse_storage(s: &str) -> Result<Storage, String> {
    s.parse().map_err(|e: wgpu_norm::NormError| e.to_string())
}

fn parse_op(s: &str) -> Result<Norm, String> {
    Norm::ALL
        .into_iter()
        .find(|o| o.name() == s.trim())
        .ok_or_else(|| format!("unknown op `{s}`: rms_norm or layer_norm"))
}

fn parse_direction(s: &str) -> Result<Direction, String> {
    Direction::ALL
        .into_iter()
        .find(|d| d.name() == s.trim())
        .ok_or_else(|| format!("unknown direction `{s}`: forward or backward"))
}
