//! Opt-in autotuning: time candidate launches of each kernel for the caller's shapes on the
//! device at hand, keep the fastest per shape bucket, and optionally remember the choices
//! in a file so the next process on the same adapter skips the timing.
//!
//! The rules of [`Tuning::for_device`](crate::Tuning::for_device) are a good start on any
//! adapter; autotuning checks them where it matters, on the hardware that runs the model.

use std::path::Path;
use std::time::Instant;

use crate::dtype::{DType, Storage};
use crate::error::{NormError, Result};
use crate::ops::layer_norm::{
    LayerNormBackward, LayerNormBackwardOp, LayerNormConfig, LayerNormForward, LayerNormForwardOp,
};
use crate::ops::rms_norm::{
    RmsNormBackward, RmsNormBackwardOp, RmsNormConfig, RmsNormForward, RmsNormForwardOp,
};
use crate::ops::roofline::{StreamCopy, StreamCopyOp};
use crate::runtime::binding::Tensor;
use crate::runtime::context::NormContext;
use crate::shader::Kernel;
use crate::shape::Shape;
use crate::tuning::rules::MAX_TUNED_TILE;
use crate::tuning::{LaunchChoice, LaunchKey};

/// The kernels autotuning times: both norms in both directions, and the stream copy the
/// benchmark measures them against (tuned as hard as they are).
const TUNED: [Kernel; 5] = [
    Kernel::RmsNormForward,
    Kernel::RmsNormBackward,
    Kernel::LayerNormForward,
    Kernel::LayerNormBackward,
    Kernel::StreamCopy,
];

/// Timed submissions per candidate (the median counts), each recording the kernel
/// `RECORDS` times so that submission latency weighs little.
const SAMPLES: usize = 5;
const RECORDS: usize = 3;

/// How much faster than the rules' launch another must be to replace it: less is within
/// the noise of a shared machine.
const MARGIN: f64 = 0.03;

const FILE_HEADER: &str = "# wgpu-norm launch cache v1: adapter, kernel, rows bucket, cols bucket, \
                           threads per row, register tile";

/// A launch [`autotune`] settled on for one kernel and shape.
#[derive(Clone, Debug, PartialEq)]
pub struct TunedLaunch {
    /// The kernel's name (its WGSL entry point).
    pub kernel: &'static str,
    /// The shape it was tuned for; the choice holds for every shape in its bucket (rows
    /// and columns rounded up to powers of two).
    pub shape: Shape,
    /// Threads sharing one row.
    pub row_threads: u32,
    /// Whether a row is held in a register tile (else streamed).
    pub register_tile: bool,
    /// Median time of the chosen launch in microseconds; `None` when read from the file.
    pub micros: Option<f64>,
    /// Median time of the launch the tuning's rules give, in the same run.
    pub default_micros: Option<f64>,
}

/// Times candidate launches (threads per row, register tile or streamed) of RMSNorm and
/// LayerNorm, forward and backward, and of the benchmark's stream copy, for each of
/// `shapes` stored as `storage`; the fastest is used from then on for every shape in the
/// same bucket (rows and columns rounded up to powers of two).
///
/// With `cache_file`, choices already in the file for this adapter are taken without
/// timing, and the file is rewritten with every choice of this context (entries of other
/// adapters are kept). Blocks while it times; each candidate compiles a pipeline once.
///
/// Run it before sizing backward workspaces: the size depends on the launch. Other
/// threads may encode meanwhile: the timing runs on a context of its own.
///
/// ```no_run
/// use wgpu_norm::{NormContext, Shape, Storage, autotune};
/// let ctx = NormContext::new()?;
/// let path = std::env::temp_dir().join("wgpu-norm-launches.txt");
/// for t in autotune(&ctx, &[Shape::new(4096, 4096)], Storage::default(), Some(&path))? {
///     println!("{} {:?}: {} threads per row", t.kernel, t.shape, t.row_threads);
/// }
/// # Ok::<(), wgpu_norm::NormError>(())
/// ```
pub fn autotune(
    ctx: &NormContext,
    shapes: &[Shape],
    storage: Storage,
    cache_file: Option<&Path>,
) -> Result<Vec<TunedLaunch>> {
    let adapter = adapter_key(ctx);
    // Choices are applied to this context only once all is timed and saved: a failure
    // anywhere changes nothing.
    let (mut chosen, mut others) = (Vec::new(), Vec::new());
    if let Some(path) = cache_file {
        (chosen, others) = load_launches(path, &adapter)?;
        check_writable(path)?;
    }
    // Candidates are timed on a context of their own, so that this one only ever sees
    // final choices; a sibling, so that the chosen launch's pipelines are compiled once.
    let trial = ctx.sibling(ctx.options().clone());
    let mut out = Vec::new();
    for &shape in shapes {
        let (rows, cols) = shape.checked()?;
        ctx.check_cols(cols)?;
        let bench = Bench::new(&trial, shape, storage)?;
        for kernel in TUNED {
            let key = LaunchKey::of(kernel, rows, cols);
            let known = chosen.iter().find(|(k, _)| *k == key).map(|(_, c)| *c);
            if let Some(c) = known.or_else(|| ctx.launch_choice(&key)) {
                out.push(TunedLaunch {
                    kernel: kernel.name(),
                    shape,
                    row_threads: c.row_threads,
                    register_tile: c.cached,
                    micros: None,
                    default_micros: None,
                });
                continue;
            }
            let Some((choice, us, rule_us)) = tune(ctx, &trial, &bench, kernel, rows, cols)? else {
                continue;
            };
            chosen.push((key, choice));
            out.push(TunedLaunch {
                kernel: kernel.name(),
                shape,
                row_threads: choice.row_threads,
                register_tile: choice.cached,
                micros: Some(us),
                default_micros: Some(rule_us),
            });
        }
    }
    if let Some(path) = cache_file {
        let mut all = ctx.launch_choices();
        all.retain(|(k, _)| chosen.iter().all(|(c, _)| c != k));
        all.extend(chosen.iter().copied());
        all.sort_by_key(|(k, _)| *k);
        save_launches(path, &adapter, &others, &all)?;
    }
    for (key, choice) in chosen {
        ctx.set_launch_choice(key, choice);
    }
    Ok(out)
}

/// The launch for `kernel` on rows x cols and its median time and the rules' launch's,
/// both in microseconds. The rules' launch is a candidate too, and another replaces it
/// only when faster by more than MARGIN. Candidates are timed in turns, one submission
/// of each per round, so all see the same moments of the machine; a candidate the device
/// refuses is dropped. `None` when the device refuses every candidate.
fn tune(
    ctx: &NormContext,
    trial: &NormContext,
    bench: &Bench<'_>,
    kernel: Kernel,
    rows: u32,
    cols: u32,
) -> Result<Option<(LaunchChoice, f64, f64)>> {
    let key = LaunchKey::of(kernel, rows, cols);
    let rule = trial.row_launch(kernel, rows, cols, true);
    let rule = LaunchChoice { row_threads: rule.row_threads, cached: rule.register_quads > 0 };
    let mut candidates = vec![rule];
    candidates.extend(candidate_launches(ctx, cols, rule.row_threads).into_iter().filter(|c| *c != rule));
    // The first submission of each compiles its pipelines and is not counted.
    candidates.retain(|&c| {
        trial.set_launch_choice(key, c);
        bench.time(kernel).is_ok()
    });
    let mut samples = vec![Vec::with_capacity(SAMPLES); candidates.len()];
    for _ in 0..SAMPLES {
        for (c, times) in candidates.iter().zip(&mut samples) {
            trial.set_launch_choice(key, *c);
            times.push(bench.time(kernel)?);
        }
    }
    let medians: Vec<f64> = samples.iter_mut().map(|t| median(t)).collect();
    let Some(&rule_us) = medians.first() else { return Ok(None) };
    let (mut choice, mut us) = (candidates[0], rule_us);
    for (c, &m) in candidates.iter().zip(&medians).skip(1) {
        if m < us && m < rule_us * (1.0 - MARGIN) {
            (choice, us) = (*c, m);
        }
    }
    Ok(Some((choice, us, rule_us)))
}

/// Powers of two from a quarter of the rules' threads per row to four times as many
/// (no more than the workgroup, nor than the row has quads), each with a register tile
/// when the row fits one.
fn candidate_launches(ctx: &NormContext, cols: u32, rule: u32) -> Vec<LaunchChoice> {
    let t = ctx.tuning();
    let quads = cols.div_ceil(4).max(1);
    let top = quads.next_power_of_two().min(t.workgroup_size).min(rule * 4);
    let mut v = Vec::new();
    let mut threads = (rule / 4).max(1);
    while threads <= top {
        if quads.div_ceil(threads) <= MAX_TUNED_TILE {
            v.push(LaunchChoice { row_threads: threads, cached: true });
        }
        v.push(LaunchChoice { row_threads: threads, cached: false });
        threads *= 2;
    }
    v
}

/// Identifies the adapter, driver and workgroup size a cached choice was measured with.
fn adapter_key(ctx: &NormContext) -> String {
    let i = ctx.adapter_info();
    let key = format!(
        "{} | {:?} | {} {} | wg {}",
        i.name,
        i.backend,
        i.driver,
        i.driver_info,
        ctx.tuning().workgroup_size
    );
    key.replace(['\t', '\n', '\r'], " ")
}

/// Launch choices, each for its kernel and shape bucket.
type Choices = Vec<(LaunchKey, LaunchChoice)>;

/// This adapter's entries of `path` (a missing file has none), and the other adapters'
/// lines, to be written back.
fn load_launches(path: &Path, adapter: &str) -> Result<(Choices, Vec<String>)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(file_error(path, &e.to_string())),
    };
    let (mut mine, mut others) = (Vec::new(), Vec::new());
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.first() != Some(&adapter) {
            others.push(line.to_string());
            continue;
        }
        let parsed = parse_entry(&fields)
            .ok_or_else(|| file_error(path, &format!("line {} is not a launch entry: {line:?}", n + 1)))?;
        mine.push(parsed);
    }
    Ok((mine, others))
}

/// The file written next to `path` and renamed over it, so a reader never sees half a file.
fn temporary(path: &Path) -> std::path::PathBuf {
    path.with_extension("tmp")
}

/// Before any timing: whether the cache can be written where `path` says.
fn check_writable(path: &Path) -> Result<()> {
    let tmp = temporary(path);
    std::fs::write(&tmp, "")
        .map_err(|e| file_error(path, &format!("cannot write beside it ({}): {e}", tmp.display())))?;
    std::fs::remove_file(&tmp).map_err(|e| file_error(path, &e.to_string()))
}

fn save_launches(
    path: &Path,
    adapter: &str,
    others: &[String],
    choices: &[(LaunchKey, LaunchChoice)],
) -> Result<()> {
    let mut text = format!("{FILE_HEADER}\n");
    for line in others {
        text.push_str(line);
        text.push('\n');
    }
    for (k, c) in choices {
        text.push_str(&format!(
            "{adapter}\t{}\t{}\t{}\t{}\t{}\n",
            k.kernel.name(),
            k.rows_bucket,
            k.cols_bucket,
            c.row_threads,
            if c.cached { "tile" } else { "stream" }
        ));
    }
    let tmp = temporary(path);
    std::fs::write(&tmp, text).map_err(|e| file_error(path, &format!("writing {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| file_error(path, &e.to_string()))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn parse_entry(fields: &[&str]) -> Option<(LaunchKey, LaunchChoice)> {
    let [_, kernel, rows, cols, threads, tile] = fields else { return None };
    let kernel = TUNED.into_iter().find(|k| k.name() == *kernel)?;
    let pow2 = |s: &str| s.parse::<u32>().ok().filter(|v| v.is_power_of_two());
    let key = LaunchKey { kernel, rows_bucket: pow2(rows)?, cols_bucket: pow2(cols)? };
    let cached = match *tile {
        "tile" => true,
        "stream" => false,
        _ => return None,
    };
    Some((key, LaunchChoice { row_threads: pow2(threads)?, cached }))
}

fn file_error(path: &Path, message: &str) -> NormError {
    NormError::TuningFile { path: path.display().to_string(), message: message.to_string() }
}

/// Buffers of one shape and the kernels recorded on them.
struct Bench<'a> {
    ctx: &'a NormContext,
    shape: Shape,
    storage: Storage,
    x: wgpu::Buffer,
    y: wgpu::Buffer,
    dy: wgpu::Buffer,
    params: wgpu::Buffer,
    stats: wgpu::Buffer,
    grads: wgpu::Buffer,
}

impl<'a> Bench<'a> {
    fn new(ctx: &'a NormContext, shape: Shape, storage: Storage) -> Result<Self> {
        let n = shape.elements() as u64;
        // Filled with noise of `dtype`, or left as is.
        let make = |label: &str, bytes: u64, fill: Option<DType>| {
            let size = bytes.next_multiple_of(16).max(16);
            let buffer = ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            if let Some(dtype) = fill {
                ctx.queue().write_buffer(&buffer, 0, &noise_bytes(dtype, size));
            }
            buffer
        };
        let cols = shape.cols as u64;
        let s = storage;
        Ok(Bench {
            ctx,
            shape,
            storage,
            x: make("autotune.x", n * s.x.size(), Some(s.x)),
            // y in the forward, dx in the backward, the copy's y (x's dtype).
            y: make("autotune.y", n * s.y.size().max(s.dx.size()).max(s.x.size()), None),
            dy: make("autotune.dy", n * s.dy.size(), Some(s.dy)),
            // gamma then beta, each padded to 16 bytes (the noise is finite in either dtype).
            params: make("autotune.params", 2 * (cols * 4).next_multiple_of(16), Some(DType::BF16)),
            // mean then rstd.
            stats: make("autotune.stats", 2 * (shape.rows as u64 * 4).next_multiple_of(16), None),
            // dgamma then dbeta.
            grads: make("autotune.grads", 2 * (cols * 4).next_multiple_of(16), None),
        })
    }

    /// Microseconds per `kernel` of one submission recording it RECORDS times on these
    /// buffers, with the context's launch.
    fn time(&self, kernel: Kernel) -> Result<f64> {
        let ctx = self.ctx;
        let workspace_bytes = match kernel {
            Kernel::RmsNormBackward => {
                RmsNormBackwardOp::new(ctx, RmsNormConfig::default())?.workspace_size(self.shape)?
            }
            Kernel::LayerNormBackward => {
                LayerNormBackwardOp::new(ctx, LayerNormConfig::default())?.workspace_size(self.shape)?
            }
            _ => 0,
        };
        let workspace = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("autotune.workspace"),
            size: workspace_bytes.next_multiple_of(16).max(16),
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        for _ in 0..RECORDS {
            self.record(&mut encoder, kernel, &workspace)?;
        }
        let start = Instant::now();
        ctx.queue().submit([encoder.finish()]);
        ctx.device()
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| NormError::Wgpu { during: "autotune", message: e.to_string() })?;
        Ok(start.elapsed().as_secs_f64() * 1e6 / RECORDS as f64)
    }

    fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        kernel: Kernel,
        workspace: &wgpu::Buffer,
    ) -> Result<()> {
        let ctx = self.ctx;
        let (shape, storage) = (self.shape, self.storage);
        let at = |b, offset| Some(Tensor::new(b, offset));
        let second_param = (shape.cols as u64 * 4).next_multiple_of(16);
        let second_stat = (shape.rows as u64 * 4).next_multiple_of(16);
        let second_grad = (shape.cols as u64 * 4).next_multiple_of(16);
        let (gamma, beta) = (at(&self.params, 0), at(&self.params, second_param));
        let (mean, rstd) = (at(&self.stats, 0), at(&self.stats, second_stat));
        let (dgamma, dbeta) = (at(&self.grads, 0), at(&self.grads, second_grad));
        let (x, y, dy) = ((&self.x).into(), (&self.y).into(), (&self.dy).into());
        let rms = RmsNormConfig { storage, ..Default::default() };
        let ln = LayerNormConfig { storage, ..Default::default() };
        let workspace = Some(workspace.into());
        match kernel {
            Kernel::RmsNormForward => {
                let args = RmsNormForward { x, residual: None, gamma, y, h: None, rstd };
                RmsNormForwardOp::new(ctx, rms)?.encode(encoder, shape, &args)
            }
            Kernel::RmsNormBackward => {
                let args = RmsNormBackward { x, gamma, dy, dh: None, rstd, dx: y, dgamma, workspace };
                RmsNormBackwardOp::new(ctx, rms)?.encode(encoder, shape, &args)
            }
            Kernel::LayerNormForward => {
                let args = LayerNormForward { x, residual: None, gamma, beta, y, h: None, mean, rstd };
                LayerNormForwardOp::new(ctx, ln)?.encode(encoder, shape, &args)
            }
            Kernel::LayerNormBackward => {
                let args =
                    LayerNormBackward { x, gamma, dy, dh: None, mean, rstd, dx: y, dgamma, dbeta, workspace };
                LayerNormBackwardOp::new(ctx, ln)?.encode(encoder, shape, &args)
            }
            _ => StreamCopyOp::new(ctx, storage.x)?.encode(encoder, shape, &StreamCopy { x, y }),
        }
    }
}

/// Finite values of order one in `dtype`, `bytes` long: inputs for timing.
fn noise_bytes(dtype: DType, bytes: u64) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    let n = (bytes / dtype.size()) as usize;
    match dtype {
        DType::F32 => bytemuck::cast_slice(&(0..n).map(|_| next()).collect::<Vec<f32>>()).to_vec(),
        DType::F16 => {
            bytemuck::cast_slice(&(0..n).map(|_| half::f16::from_f32(next())).collect::<Vec<_>>()).to_vec()
        }
        DType::BF16 => {
            bytemuck::cast_slice(&(0..n).map(|_| half::bf16::from_f32(next())).collect::<Vec<_>>()).to_vec()
        }
    }
}
