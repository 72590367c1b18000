//! The GPU side: timing (timestamp queries where the adapter has them, else the wall clock
//! around submit and wait), rotating buffer sets, and each kernel recorded on them.

use std::time::Instant;

use wgpu::util::DeviceExt as _;
use wgpu_norm::{
    Direction, LayerNormBackward, LayerNormConfig, LayerNormForward, NormContext, Op, Recorder,
    RmsNormBackward, RmsNormConfig, RmsNormForward, Shape, Tensor,
};

use crate::BenchError;

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
    pub fn new() -> Result<Gpu, BenchError> {
        let ctx = NormContext::new()?;
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
        Ok(Gpu { ctx, timing, copy_timing, queries })
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

    /// Copies `buffer` back to the host.
    pub fn read(&self, buffer: &wgpu::Buffer) -> Result<Vec<f32>, BenchError> {
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
        Ok(bytemuck::cast_slice(&view).to_vec())
    }
}

/// One set of activations: what a run reads and writes.
struct Set {
    x: wgpu::Buffer,
    dy: wgpu::Buffer,
    y: wgpu::Buffer,
    dx: wgpu::Buffer,
    mean: wgpu::Buffer,
    rstd: wgpu::Buffer,
}

/// Everything one row of the table runs on, and the host copy of set 0's inputs.
pub struct Workload {
    pub op: Op,
    pub direction: Direction,
    pub shape: Shape,
    pub x: Vec<f32>,
    pub dy: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    sets: Vec<Set>,
    gamma_buf: wgpu::Buffer,
    beta_buf: wgpu::Buffer,
    dgamma: wgpu::Buffer,
    dbeta: wgpu::Buffer,
    workspace: wgpu::Buffer,
}

const F32: wgpu_norm::Storage =
    wgpu_norm::Storage { activations: wgpu_norm::DType::F32, params: wgpu_norm::DType::F32 };
pub const RMS: RmsNormConfig = RmsNormConfig {
    eps: 1e-6,
    eps_placement: wgpu_norm::EpsPlacement::InsideSqrt,
    gamma_offset: 0.0,
    partial: None,
    storage: F32,
};
pub const LN: LayerNormConfig = LayerNormConfig { eps: 1e-5, gamma_offset: 0.0, storage: F32 };

/// Inputs for the benchmark: x = noise + 0.5 (not centred), dy noise, gamma near 1.
pub fn inputs(shape: Shape, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let x = noise(shape.elements(), seed).iter().map(|v| v + 0.5).collect();
    (x, noise(shape.elements(), seed + 1))
}

impl Workload {
    pub fn new(gpu: &Gpu, op: Op, direction: Direction, shape: Shape) -> Result<Workload, BenchError> {
        let ctx = &gpu.ctx;
        let n = shape.elements();
        let moved = ctx.bytes_moved(op, direction, shape)?;
        let sets = ROTATE_BYTES.div_ceil(moved.max(1)).clamp(2, MAX_SETS) as usize;
        let gamma: Vec<f32> = noise(shape.cols, 7).iter().map(|v| 1.0 + 0.1 * v).collect();
        let beta: Vec<f32> = noise(shape.cols, 8).iter().map(|v| 0.1 * v).collect();
        let (x, dy) = inputs(shape, 1);
        let backward = direction == Direction::Backward;
        let mut built = Vec::with_capacity(sets);
        for s in 0..sets {
            let data = if s == 0 { None } else { Some(inputs(shape, 1 + 2 * s as u64)) };
            let (xs, dys) = data.as_ref().map_or((&x, &dy), |(a, b)| (a, b));
            built.push(Set {
                x: gpu.buffer("x", n, Some(xs))?,
                dy: gpu.buffer("dy", if backward { n } else { 1 }, backward.then_some(&dys[..]))?,
                y: gpu.buffer("y", if backward { 1 } else { n }, None)?,
                dx: gpu.buffer("dx", if backward { n } else { 1 }, None)?,
                mean: gpu.buffer("mean", shape.rows, None)?,
                rstd: gpu.buffer("rstd", shape.rows, None)?,
            });
        }
        let ws = match op {
            Op::RmsNorm => ctx.rms_norm_backward_workspace_size(shape)?,
            Op::LayerNorm => ctx.layer_norm_backward_workspace_size(shape)?,
        };
        let w = Workload {
            op,
            direction,
            shape,
            gamma_buf: gpu.buffer("gamma", shape.cols, Some(&gamma))?,
            beta_buf: gpu.buffer("beta", shape.cols, Some(&beta))?,
            dgamma: gpu.buffer("dgamma", shape.cols, None)?,
            dbeta: gpu.buffer("dbeta", shape.cols, None)?,
            workspace: gpu.buffer("workspace", (ws as usize / 4).max(1), None)?,
            x,
            dy,
            gamma,
            beta,
            sets: built,
        };
        if backward {
            // The statistics a training step saves in its forward pass.
            let mut enc = ctx.device().create_command_encoder(&Default::default());
            for s in 0..w.sets.len() {
                w.record_forward(ctx, &mut enc, s, true)?;
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
    ) -> Result<(), BenchError> {
        let s = &self.sets[set];
        // In the backward workload y is a placeholder; the forward only fills the stats.
        let y = if self.direction == Direction::Forward { &s.y } else { &s.dx };
        match self.op {
            Op::RmsNorm => ctx.encode_rms_norm_forward(
                enc,
                self.shape,
                &RMS,
                &RmsNormForward {
                    residual: None,
                    h: None,
                    x: (&s.x).into(),
                    gamma: Some((&self.gamma_buf).into()),
                    y: y.into(),
                    rstd: keep_stats.then_some((&s.rstd).into()),
                },
            )?,
            Op::LayerNorm => ctx.encode_layer_norm_forward(
                enc,
                self.shape,
                &LN,
                &LayerNormForward {
                    residual: None,
                    h: None,
                    x: (&s.x).into(),
                    gamma: Some((&self.gamma_buf).into()),
                    beta: Some((&self.beta_buf).into()),
                    y: y.into(),
                    mean: keep_stats.then_some((&s.mean).into()),
                    rstd: keep_stats.then_some((&s.rstd).into()),
                },
            )?,
        }
        Ok(())
    }

    /// Records this workload's kernel on buffer set `run % sets`.
    pub fn record(&self, ctx: &NormContext, enc: &mut impl Recorder, run: usize) -> Result<(), BenchError> {
        let set = run % self.sets.len();
        if self.direction == Direction::Forward {
            return self.record_forward(ctx, enc, set, false);
        }
        let s = &self.sets[set];
        let t = Tensor::from;
        match self.op {
            Op::RmsNorm => ctx.encode_rms_norm_backward(
                enc,
                self.shape,
                &RMS,
                &RmsNormBackward {
                    dh: None,
                    x: t(&s.x),
                    gamma: Some(t(&self.gamma_buf)),
                    dy: t(&s.dy),
                    rstd: Some(t(&s.rstd)),
                    dx: t(&s.dx),
                    dgamma: Some(t(&self.dgamma)),
                    workspace: Some(t(&self.workspace)),
                },
            )?,
            Op::LayerNorm => ctx.encode_layer_norm_backward(
                enc,
                self.shape,
                &LN,
                &LayerNormBackward {
                    dh: None,
                    x: t(&s.x),
                    gamma: Some(t(&self.gamma_buf)),
                    dy: t(&s.dy),
                    mean: Some(t(&s.mean)),
                    rstd: Some(t(&s.rstd)),
                    dx: t(&s.dx),
                    dgamma: Some(t(&self.dgamma)),
                    dbeta: Some(t(&self.dbeta)),
                    workspace: Some(t(&self.workspace)),
                },
            )?,
        }
        Ok(())
    }

    /// The outputs of the last run on set 0 (record run 0 first): y, or dx, dgamma and dbeta.
    pub fn outputs(&self, gpu: &Gpu) -> Result<Vec<Vec<f32>>, BenchError> {
        let s = &self.sets[0];
        Ok(match (self.direction, self.op) {
            (Direction::Forward, _) => vec![gpu.read(&s.y)?],
            (Direction::Backward, Op::RmsNorm) => vec![gpu.read(&s.dx)?, gpu.read(&self.dgamma)?],
            (Direction::Backward, Op::LayerNorm) => {
                vec![gpu.read(&s.dx)?, gpu.read(&self.dgamma)?, gpu.read(&self.dbeta)?]
            }
        })
    }
}
