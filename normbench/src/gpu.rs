//! The GPU side: timing (timestamp queries where the adapter has them, else the wall clock
//! around submit and wait), rotating buffer sets, and each kernel recorded on them.

use std::time::Instant;

use wgpu::util::DeviceExt as _;
use wgpu_norm::half::{bf16, f16};
use wgpu_norm::{
    DType, Direction, LayerNormBackward, LayerNormBackwardOp, LayerNormConfig, LayerNormForward,
    LayerNormForwardOp, Norm, NormContext, Recorder, ResidualAdd, RmsNormBackward, RmsNormBackwardOp,
    RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape, Storage, Tensor,
};

use crate::BenchError;
use crate::naive::Naive;

/// How GPU time is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// Timestamp queries written right before and after the recorded work.
    Timestamp,
    /// Wall clock around submit and wait (adds submission and wake-up latency).
    Wall,
}

impl Timing {
    pub fn name(self) -> &'static str {
        match self {
            Timing::Timestamp => "timestamp",
            Timing::Wall => "wall",
        }
    }
}

/// Working sets smaller than this rotate over several buffer sets, so successive runs do not
/// find their inputs in the last-level cache (256 MiB is above any current GPU's or CPU's).
const ROTATE_BYTES: u64 = 256 << 20;
const MAX_SETS: u64 = 64;

pub struct Gpu {
    pub ctx: NormContext,
    /// What `ctx` was made with: other contexts of the run take the same.
    pub options: wgpu_norm::ContextOptions,
    /// How kernel passes are timed.
    pub timing: Timing,
    /// How copy_buffer_to_buffer is timed (timestamps there need a further feature).
    pub copy_timing: Timing,
    queries: Option<Queries>,
}

struct Queries {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    period_ns: f64,
}

/// A deterministic generator: uniform in [-1, 1), no dependency needed.
pub fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

impl Gpu {
    /// The best adapter, with the tuning knobs `edit` changes from the adapter's defaults.
    pub fn new(checked_shaders: bool, edit: impl Fn(&mut wgpu_norm::Tuning)) -> Result<Gpu, BenchError> {
        let first = NormContext::new()?;
        let mut tuning = *first.tuning();
        edit(&mut tuning);
        let options =
            wgpu_norm::ContextOptions { tuning: Some(tuning), checked_shaders, ..Default::default() };
        let ctx = NormContext::from_device(first.device().clone(), first.queue().clone(), options.clone());
        let features = ctx.device().features();
        let queries = features.contains(wgpu::Features::TIMESTAMP_QUERY).then(|| {
            let device = ctx.device();
            Queries {
                set: device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("normbench.timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                }),
                resolve: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("normbench.resolve"),
                    size: 16,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
                readback: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("normbench.readback"),
                    size: 16,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                period_ns: f64::from(ctx.queue().get_timestamp_period()),
            }
        });
        let timing = if queries.is_some() { Timing::Timestamp } else { Timing::Wall };
        let inside = features.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS);
        let copy_timing = if inside { timing } else { Timing::Wall };
        Ok(Gpu { ctx, options, timing, copy_timing, queries })
    }

    fn wait(&self) -> Result<(), BenchError> {
        self.ctx
            .device()
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| BenchError::Gpu(e.to_string()))
    }

    /// Times `warmup + iters` runs of kernels recorded into one compute pass, with the pass's
    /// timestamp writes where the adapter has timestamps; returns the timed runs' ms.
    pub fn time_pass(
        &self,
        warmup: u32,
        iters: u32,
        mut record: impl FnMut(&mut wgpu::ComputePass<'_>, usize) -> Result<(), BenchError>,
    ) -> Result<Vec<f64>, BenchError> {
        self.time_runs(warmup, iters, self.timing, |enc, i| {
            let timestamp_writes = self.queries.as_ref().map(|q| wgpu::ComputePassTimestampWrites {
                query_set: &q.set,
                beginning_of_pass_write_index: Some(0),
                end_of_pass_write_index: Some(1),
            });
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("normbench"),
                timestamp_writes,
            });
            record(&mut pass, i)
        })
    }

    /// Times `warmup + iters` runs of encoder-level work (copies), with timestamps written in
    /// the encoder where the adapter allows it.
    pub fn time_encoder(
        &self,
        warmup: u32,
        iters: u32,
        mut record: impl FnMut(&mut wgpu::CommandEncoder, usize),
    ) -> Result<Vec<f64>, BenchError> {
        let timed = self.copy_timing == Timing::Timestamp;
        self.time_runs(warmup, iters, self.copy_timing, |enc, i| {
            if let Some(q) = self.queries.as_ref().filter(|_| timed) {
                enc.write_timestamp(&q.set, 0);
                record(enc, i);
                enc.write_timestamp(&q.set, 1);
            } else {
                record(enc, i);
            }
            Ok(())
        })
    }

    /// One submission per run, each waited for; ms from the timestamps or the wall clock.
    fn time_runs(
        &self,
        warmup: u32,
        iters: u32,
        timing: Timing,
        mut record: impl FnMut(&mut wgpu::CommandEncoder, usize) -> Result<(), BenchError>,
    ) -> Result<Vec<f64>, BenchError> {
        let device = self.ctx.device();
        let queries = self.queries.as_ref().filter(|_| timing == Timing::Timestamp);
        let mut times = Vec::with_capacity(iters as usize);
        for i in 0..(warmup + iters) as usize {
            let mut enc = device.create_command_encoder(&Default::default());
            record(&mut enc, i)?;
            if let Some(q) = queries {
                enc.resolve_query_set(&q.set, 0..2, &q.resolve, 0);
                enc.copy_buffer_to_buffer(&q.resolve, 0, &q.readback, 0, 16);
            }
            let start = Instant::now();
            self.ctx.queue().submit([enc.finish()]);
            self.wait()?;
            let wall_ms = start.elapsed().as_secs_f64() * 1e3;
            let ms = match queries {
                Some(q) => {
                    q.readback.slice(..).map_async(wgpu::MapMode::Read, |_| {});
                    self.wait()?;
                    let ticks: [u64; 2] = {
                        let view = q
                            .readback
                            .slice(..)
                            .get_mapped_range()
                            .map_err(|e| BenchError::Gpu(e.to_string()))?;
                        bytemuck::pod_read_unaligned(&view)
                    };
                    q.readback.unmap();
                    ticks[1].saturating_sub(ticks[0]) as f64 * q.period_ns / 1e6
                }
                None => wall_ms,
            };
            if i >= warmup as usize {
                times.push(ms);
            }
        }
        Ok(times)
    }

    /// A storage buffer of `len` f32, uploaded from `data` or left uninitialized.
    pub fn buffer(&self, label: &str, len: usize, data: Option<&[f32]>) -> Result<wgpu::Buffer, BenchError> {
        let bytes = (len as u64 * 4).max(4);
        let max = self.ctx.limits().max_buffer_size;
        if bytes > max {
            return Err(BenchError::TooLarge(format!(
                "`{label}` needs {bytes} bytes, over this adapter's max_buffer_size of {max}"
            )));
        }
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let device = self.ctx.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let b = match data {
            Some(d) => device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(d),
                usage,
            }),
            None => device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            }),
        };
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(BenchError::TooLarge(format!("`{label}` ({bytes} bytes): {e}"))),
            None => Ok(b),
        }
    }

    /// A storage buffer holding `bytes` (a multiple of 4 long after padding).
    pub fn buffer_bytes(&self, label: &str, bytes: &[u8]) -> Result<wgpu::Buffer, BenchError> {
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len().next_multiple_of(4).max(4), 0);
        let words: Vec<f32> = bytemuck::pod_collect_to_vec(&padded);
        self.buffer(label, words.len(), Some(&words))
    }

    /// Copies `buffer` back to the host as f32.
    pub fn read(&self, buffer: &wgpu::Buffer) -> Result<Vec<f32>, BenchError> {
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes(buffer)?))
    }

    /// Copies `buffer` back to the host.
    pub fn read_bytes(&self, buffer: &wgpu::Buffer) -> Result<Vec<u8>, BenchError> {
        let device = self.ctx.device();
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("normbench.read"),
            size: buffer.size(),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
        self.ctx.queue().submit([enc.finish()]);
        staging.slice(..).map_async(wgpu::MapMode::Read, |_| {});
        self.wait()?;
        let view = staging.slice(..).get_mapped_range().map_err(|e| BenchError::Gpu(e.to_string()))?;
        Ok(view.to_vec())
    }
}

/// One set of activations: what a run reads and writes (tensors a workload does not use
/// are one element).
struct Set {
    x: wgpu::Buffer,
    residual: wgpu::Buffer,
    dy: wgpu::Buffer,
    dh: wgpu::Buffer,
    y: wgpu::Buffer,
    h: wgpu::Buffer,
    dx: wgpu::Buffer,
    mean: wgpu::Buffer,
    rstd: wgpu::Buffer,
}

/// What one row of the table measures.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub op: Norm,
    pub direction: Direction,
    pub shape: Shape,
    pub storage: Storage,
    /// Forward: the input is x + residual and h is written out. Backward: the gradient
    /// arriving on h is added to dx.
    pub fused_residual: bool,
    /// Backward: read the forward's saved statistics (else recompute them).
    pub saved_stats: bool,
}

impl Case {
    pub fn rms(&self) -> RmsNormConfig {
        RmsNormConfig { storage: self.storage, ..RMS }
    }

    pub fn ln(&self) -> LayerNormConfig {
        LayerNormConfig { storage: self.storage, ..LN }
    }
}

/// Everything one row of the table runs on, and the host copy of set 0's inputs (already
/// rounded to their dtypes, so the CPU sees what the GPU sees).
pub struct Workload {
    pub case: Case,
    pub x: Vec<f32>,
    pub residual: Vec<f32>,
    pub dy: Vec<f32>,
    pub dh: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    sets: Vec<Set>,
    gamma_buf: wgpu::Buffer,
    beta_buf: wgpu::Buffer,
    dgamma: wgpu::Buffer,
    dbeta: wgpu::Buffer,
    workspace: wgpu::Buffer,
    naive_partials: wgpu::Buffer,
}

const F32: Storage = Storage::uniform(DType::F32);
pub const RMS: RmsNormConfig = RmsNormConfig {
    eps: 1e-6,
    eps_placement: wgpu_norm::EpsPlacement::InsideSqrt,
    gamma_offset: 0.0,
    partial: None,
    residual_add: ResidualAdd::BeforeNorm,
    storage: F32,
};
pub const LN: LayerNormConfig =
    LayerNormConfig { eps: 1e-5, gamma_offset: 0.0, residual_add: ResidualAdd::BeforeNorm, storage: F32 };

/// `v` rounded to `dtype` and back.
pub fn round_to(v: &[f32], dtype: DType) -> Vec<f32> {
    match dtype {
        DType::F32 => v.to_vec(),
        DType::F16 => v.iter().map(|&e| f16::from_f32(e).to_f32()).collect(),
        DType::BF16 => v.iter().map(|&e| bf16::from_f32(e).to_f32()).collect(),
    }
}

/// The rows of `rows` (one after the other) placed where `shape` puts them, zeros between.
fn scatter(shape: Shape, rows: &[f32]) -> Vec<f32> {
    if shape.is_dense() {
        return rows.to_vec();
    }
    let mut all = vec![0.0; shape.span()];
    for (r, row) in rows.chunks_exact(shape.cols).enumerate() {
        all[shape.row_start(r)..][..shape.cols].copy_from_slice(row);
    }
    all
}

/// `v` as `dtype`'s bytes.
fn encode(v: &[f32], dtype: DType) -> Vec<u8> {
    match dtype {
        DType::F32 => bytemuck::cast_slice(v).to_vec(),
        DType::F16 => v.iter().flat_map(|&e| f16::from_f32(e).to_le_bytes()).collect(),
        DType::BF16 => v.iter().flat_map(|&e| bf16::from_f32(e).to_le_bytes()).collect(),
    }
}

/// The first `len` elements of `dtype` in `bytes`, as f32.
fn decode(bytes: &[u8], dtype: DType, len: usize) -> Vec<f32> {
    match dtype {
        DType::F32 => bytemuck::pod_collect_to_vec(&bytes[..4 * len]),
        DType::F16 => {
            bytes[..2 * len].chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
        }
        DType::BF16 => {
            bytes[..2 * len].chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
        }
    }
}

/// Inputs for the benchmark: x = noise + 0.5 (not centred), the others noise.
pub fn inputs(n: usize, seed: u64) -> [Vec<f32>; 4] {
    [
        noise(n, seed).iter().map(|v| v + 0.5).collect(),
        noise(n, seed + 1),
        noise(n, seed + 2),
        noise(n, seed + 3),
    ]
}

impl Workload {
    pub fn new(gpu: &Gpu, case: Case) -> Result<Workload, BenchError> {
        let ctx = &gpu.ctx;
        let Case { op, direction, shape, storage: st, fused_residual, .. } = case;
        let n = shape.elements();
        let moved = op.bytes_moved_as(ctx, direction, shape, st, fused_residual)?;
        let sets = ROTATE_BYTES.div_ceil(moved.max(1)).clamp(2, MAX_SETS) as usize;
        let gamma =
            round_to(&noise(shape.cols, 7).iter().map(|v| 1.0 + 0.1 * v).collect::<Vec<_>>(), st.gamma);
        let beta = round_to(&noise(shape.cols, 8).iter().map(|v| 0.1 * v).collect::<Vec<_>>(), st.beta);
        let round = |[x, residual, dy, dh]: [Vec<f32>; 4]| {
            [round_to(&x, st.x), round_to(&residual, st.residual), round_to(&dy, st.dy), round_to(&dh, st.dh)]
        };
        let [x, residual, dy, dh] = round(inputs(n, 1));
        let (fwd, bwd) = (direction == Direction::Forward, direction == Direction::Backward);
        // Rows sit where the shape puts them (the heads of a QKV view), zeros between.
        let up = |label: &str, used: bool, data: &[f32], dtype| -> Result<wgpu::Buffer, BenchError> {
            if used {
                gpu.buffer_bytes(label, &encode(&scatter(shape, data), dtype))
            } else {
                gpu.buffer("unused", 1, None)
            }
        };
        let out = |label: &str, used: bool, dtype: DType| -> Result<wgpu::Buffer, BenchError> {
            let len = if used { (shape.span() * dtype.size() as usize).next_multiple_of(4) } else { 4 };
            gpu.buffer_bytes(label, &vec![0; len])
        };
        let mut built = Vec::with_capacity(sets);
        for s in 0..sets {
            let fresh = (s > 0).then(|| round(inputs(n, 1 + 4 * s as u64)));
            let [xs, rs, dys, dhs] =
                fresh.as_ref().map_or([&x, &residual, &dy, &dh], |[a, b, c, d]| [a, b, c, d]);
            built.push(Set {
                x: up("x", true, xs, st.x)?,
                residual: up("residual", fwd && fused_residual, rs, st.residual)?,
                dy: up("dy", bwd, dys, st.dy)?,
                dh: up("dh", bwd && fused_residual, dhs, st.dh)?,
                y: out("y", fwd, st.y)?,
                h: out("h", fwd && fused_residual, st.h)?,
                dx: out("dx", bwd, st.dx)?,
                mean: gpu.buffer("mean", shape.rows, None)?,
                rstd: gpu.buffer("rstd", shape.rows, None)?,
            });
        }
        let ws = match op {
            Norm::RmsNorm => RmsNormBackwardOp::new(ctx, RmsNormConfig::default())?.workspace_size(shape)?,
            Norm::LayerNorm => {
                LayerNormBackwardOp::new(ctx, LayerNormConfig::default())?.workspace_size(shape)?
            }
        };
        let w = Workload {
            case,
            gamma_buf: gpu.buffer_bytes("gamma", &encode(&gamma, st.gamma))?,
            beta_buf: gpu.buffer_bytes("beta", &encode(&beta, st.beta))?,
            dgamma: gpu.buffer("dgamma", shape.cols, None)?,
            dbeta: gpu.buffer("dbeta", shape.cols, None)?,
            workspace: gpu.buffer("workspace", (ws as usize / 4).max(1), None)?,
            naive_partials: gpu.buffer(
                "naive.partials",
                if bwd { Naive::partials_len(shape) } else { 1 },
                None,
            )?,
            x,
            residual,
            dy,
            dh,
            gamma,
            beta,
            sets: built,
        };
        if bwd {
            // The statistics a training step saves in its forward pass.
            let mut enc = ctx.device().create_command_encoder(&Default::default());
            for s in 0..w.sets.len() {
                w.record_forward(ctx, &mut enc, s, true, true)?;
            }
            ctx.queue().submit([enc.finish()]);
        }
        Ok(w)
    }

    fn record_forward(
        &self,
        ctx: &NormContext,
        enc: &mut impl Recorder,
        set: usize,
        keep_stats: bool,
        affine: bool,
    ) -> Result<(), BenchError> {
        let s = &self.sets[set];
        let c = &self.case;
        let t = Tensor::from;
        // In the backward workload the forward only fills the statistics; y goes to dx.
        let forward = c.direction == Direction::Forward;
        let y = if forward { &s.y } else { &s.dx };
        let residual = (forward && c.fused_residual).then(|| t(&s.residual));
        let h = (forward && c.fused_residual).then(|| t(&s.h));
        match c.op {
            Norm::RmsNorm => RmsNormForwardOp::new(ctx, c.rms())?.encode(
                enc,
                c.shape,
                &RmsNormForward {
                    x: t(&s.x),
                    residual,
                    gamma: affine.then(|| t(&self.gamma_buf)),
                    y: t(y),
                    h,
                    rstd: keep_stats.then(|| t(&s.rstd)),
                },
            )?,
            Norm::LayerNorm => LayerNormForwardOp::new(ctx, c.ln())?.encode(
                enc,
                c.shape,
                &LayerNormForward {
                    x: t(&s.x),
                    residual,
                    gamma: affine.then(|| t(&self.gamma_buf)),
                    beta: affine.then(|| t(&self.beta_buf)),
                    y: t(y),
                    h,
                    mean: keep_stats.then(|| t(&s.mean)),
                    rstd: keep_stats.then(|| t(&s.rstd)),
                },
            )?,
        }
        Ok(())
    }

    /// Records this workload's kernel on buffer set `run % sets`.
    pub fn record(&self, ctx: &NormContext, enc: &mut impl Recorder, run: usize) -> Result<(), BenchError> {
        self.record_as(ctx, enc, run, true)
    }

    /// Records this workload's kernel bare: the same op, launch and buffers without gamma,
    /// beta and their gradients, so only the accesses the kernel's form cannot avoid (x and
    /// y forward; x, dy and dx backward, with no partial sums and no column pass). Its time
    /// bounds the kernel's from below: normbench's `bare` column.
    pub fn record_bare(
        &self,
        ctx: &NormContext,
        enc: &mut impl Recorder,
        run: usize,
    ) -> Result<(), BenchError> {
        self.record_as(ctx, enc, run, false)
    }

    fn record_as(
        &self,
        ctx: &NormContext,
        enc: &mut impl Recorder,
        run: usize,
        affine: bool,
    ) -> Result<(), BenchError> {
        let set = run % self.sets.len();
        let c = &self.case;
        if c.direction == Direction::Forward {
            return self.record_forward(ctx, enc, set, false, affine);
        }
        let s = &self.sets[set];
        let t = Tensor::from;
        let dh = c.fused_residual.then(|| t(&s.dh));
        let saved = |b| c.saved_stats.then(|| t(b));
        match c.op {
            Norm::RmsNorm => RmsNormBackwardOp::new(ctx, c.rms())?.encode(
                enc,
                c.shape,
                &RmsNormBackward {
                    x: t(&s.x),
                    gamma: affine.then(|| t(&self.gamma_buf)),
                    dy: t(&s.dy),
                    dh,
                    rstd: saved(&s.rstd),
                    dx: t(&s.dx),
                    dgamma: affine.then(|| t(&self.dgamma)),
                    workspace: affine.then(|| t(&self.workspace)),
                },
            )?,
            Norm::LayerNorm => LayerNormBackwardOp::new(ctx, c.ln())?.encode(
                enc,
                c.shape,
                &LayerNormBackward {
                    x: t(&s.x),
                    gamma: affine.then(|| t(&self.gamma_buf)),
                    dy: t(&s.dy),
                    dh,
                    mean: saved(&s.mean),
                    rstd: saved(&s.rstd),
                    dx: t(&s.dx),
                    dgamma: affine.then(|| t(&self.dgamma)),
                    dbeta: affine.then(|| t(&self.dbeta)),
                    workspace: affine.then(|| t(&self.workspace)),
                },
            )?,
        }
        Ok(())
    }

    /// The buffers of set `run % sets` in the order of naive.wgsl's storage bindings: x,
    /// gamma, beta, y, dy, mean, rstd, dx, the baseline's column sums, dgamma, dbeta.
    pub fn naive_buffers(&self, run: usize) -> [&wgpu::Buffer; 11] {
        let s = &self.sets[run % self.sets.len()];
        [
            &s.x,
            &self.gamma_buf,
            &self.beta_buf,
            &s.y,
            &s.dy,
            &s.mean,
            &s.rstd,
            &s.dx,
            &self.naive_partials,
            &self.dgamma,
            &self.dbeta,
        ]
    }

    /// Fills set 0's outputs with NaN (all-ones bytes, NaN in every dtype), so that a kernel
    /// run after another shows only what it wrote itself.
    pub fn poison_outputs(&self, gpu: &Gpu) {
        let s = &self.sets[0];
        for b in [&s.y, &s.h, &s.dx, &self.dgamma, &self.dbeta] {
            gpu.ctx.queue().write_buffer(b, 0, &vec![0xff; b.size() as usize]);
        }
    }

    /// The outputs of the last run on set 0 (record run 0 first), as f32: y (and h), or
    /// dx, dgamma (and dbeta).
    pub fn outputs(&self, gpu: &Gpu) -> Result<Vec<Vec<f32>>, BenchError> {
        let s = &self.sets[0];
        let c = &self.case;
        let shape = c.shape;
        let act = |b: &wgpu::Buffer, dtype| -> Result<Vec<f32>, BenchError> {
            let all = decode(&gpu.read_bytes(b)?, dtype, shape.span());
            Ok((0..shape.rows).flat_map(|r| all[shape.row_start(r)..][..shape.cols].to_vec()).collect())
        };
        let st = c.storage;
        Ok(match (c.direction, c.op) {
            (Direction::Forward, _) if c.fused_residual => vec![act(&s.y, st.y)?, act(&s.h, st.h)?],
            (Direction::Forward, _) => vec![act(&s.y, st.y)?],
            (Direction::Backward, Norm::RmsNorm) => vec![act(&s.dx, st.dx)?, gpu.read(&self.dgamma)?],
            (Direction::Backward, Norm::LayerNorm) => {
                vec![act(&s.dx, st.dx)?, gpu.read(&self.dgamma)?, gpu.read(&self.dbeta)?]
            }
        })
    }
}
