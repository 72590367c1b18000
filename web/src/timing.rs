//! GPU time of a bound op in the browser.
//!
//! Chrome quantises timestamp queries (to 100 µs unless its developer features are on), so
//! each measurement records enough runs into one compute pass to span tens of milliseconds.
//! Where the adapter has no timestamp queries, the wall clock is read around the submission
//! and `on_submitted_work_done`, which also counts the submission itself.

use wgpu_norm::{BoundOp, NormContext};

use crate::gpu;

/// How a time was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Timestamp queries written at the start and end of the compute pass.
    Timestamps,
    /// `performance.now()` around the submission and `on_submitted_work_done`.
    WallClock,
}

impl Clock {
    /// The clock a context measures with.
    pub fn of(ctx: &NormContext) -> Clock {
        if ctx.device().features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            Clock::Timestamps
        } else {
            Clock::WallClock
        }
    }

    /// What the page says about it.
    pub fn describe(self) -> &'static str {
        match self {
            Clock::Timestamps => "timestamp queries around one compute pass of many runs",
            Clock::WallClock => "wall clock around the submission and on_submitted_work_done",
        }
    }
}

/// Milliseconds a measurement should span, so that a quantised clock is accurate to ~1%.
const SPAN_MS: f64 = 25.0;

/// Measurements of each op, whose median is its time: one span alone swung by up to 30%
/// between page loads on the browser's CPU adapter.
const ROUNDS: usize = 5;

/// Mean milliseconds per run.
#[derive(Clone, Copy, Debug)]
pub struct Times {
    /// By the context's [`Clock`].
    pub gpu_ms: f64,
    /// By the wall clock around the same submission: the two agree unless a clock is off.
    pub wall_ms: f64,
}

/// Mean times per run of each of `bounds` (bound on contexts sharing `ctx`'s device): for
/// each a warm-up run and a run to size its measurement, then [`ROUNDS`] rounds of one
/// measurement of each in turn, so that every op sees the same moments of a shared machine
/// and their ratios hold (as normbench times them); the medians of the rounds.
pub async fn time(ctx: &NormContext, bounds: &[&BoundOp], clock: Clock) -> Result<Vec<Times>, String> {
    let mut runs = Vec::with_capacity(bounds.len());
    for bound in bounds {
        run(ctx, bound, 1, Clock::WallClock).await?;
        let once = run(ctx, bound, 1, Clock::WallClock).await?.wall_ms;
        runs.push((SPAN_MS / once.max(1e-3)).ceil().clamp(3.0, 500.0) as u32);
    }
    let mut rounds = vec![Vec::with_capacity(ROUNDS); bounds.len()];
    for _ in 0..ROUNDS {
        for ((bound, &n), times) in bounds.iter().zip(&runs).zip(&mut rounds) {
            let total = run(ctx, bound, n, clock).await?;
            times.push(Times { gpu_ms: total.gpu_ms / f64::from(n), wall_ms: total.wall_ms / f64::from(n) });
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok(rounds
        .into_iter()
        .map(|t| Times {
            gpu_ms: median(t.iter().map(|t| t.gpu_ms).collect()),
            wall_ms: median(t.iter().map(|t| t.wall_ms).collect()),
        })
        .collect())
}

/// Milliseconds `runs` runs of `bound` take, recorded into one compute pass.
async fn run(ctx: &NormContext, bound: &BoundOp, runs: u32, clock: Clock) -> Result<Times, String> {
    let device = ctx.device();
    let queries = (clock == Clock::Timestamps).then(|| {
        let set = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("wgpu_norm_web.timing"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolved = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgpu_norm_web.timestamps"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        (set, resolved)
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("wgpu_norm_web.timed"),
            timestamp_writes: queries.as_ref().map(|(set, _)| wgpu::ComputePassTimestampWrites {
                query_set: set,
                beginning_of_pass_write_index: Some(0),
                end_of_pass_write_index: Some(1),
            }),
        });
        for _ in 0..runs {
            bound.encode(&mut pass);
        }
    }
    if let Some((set, resolved)) = &queries {
        encoder.resolve_query_set(set, 0..2, resolved, 0);
    }
    let start = now();
    ctx.queue().submit([encoder.finish()]);
    let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
    ctx.queue().on_submitted_work_done(move || {
        tx.send(()).ok();
    });
    rx.receive().await.ok_or("the queue never finished its work")?;
    let wall_ms = now() - start;
    let gpu_ms = match &queries {
        None => wall_ms,
        Some((_, resolved)) => {
            let t: Vec<u64> = gpu::read_as(ctx, resolved).await?;
            let ticks = t[1].saturating_sub(t[0]) as f64;
            ticks * f64::from(ctx.queue().get_timestamp_period()) / 1e6
        }
    };
    Ok(Times { gpu_ms, wall_ms })
}

/// `performance.now()` in milliseconds.
fn now() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}
