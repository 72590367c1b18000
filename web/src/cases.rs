//! What the page runs: each norm and direction over a few shapes, checked against the f64
//! reference and timed.

use wgpu_norm::{
    BoundOp, ContextOptions, Direction, LayerNormBackward, LayerNormBackwardOp, LayerNormConfig,
    LayerNormForward, LayerNormForwardOp, Norm, NormContext, RmsNormBackward, RmsNormBackwardOp,
    RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape, reference,
};

use crate::gpu::{noise, poisoned, read, rel_err, storage};
use crate::query::Query;
use crate::report::Page;
use crate::timing::{self, Clock, Times};

/// Shapes (rows, cols): one decode row, prefill-like blocks, and rows of odd length.
pub const SHAPES: [(usize, usize); 4] = [(1, 4096), (64, 1024), (512, 768), (33, 4097)];

/// One op, direction and shape.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// The norm.
    pub norm: Norm,
    /// Forward or backward.
    pub direction: Direction,
    /// Rows and columns.
    pub shape: Shape,
}

impl Case {
    /// The name of the case's kernel, as everywhere in the crate.
    pub fn name(&self) -> String {
        format!("{}_{}", self.norm.name(), self.direction.name())
    }

    /// The bound on the relative error: an f32 forward within 1e-6, a backward within 1e-5.
    pub fn tolerance(&self) -> f64 {
        match self.direction {
            Direction::Forward => 1e-6,
            Direction::Backward => 1e-5,
        }
    }
}

/// What one case gave.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The case.
    pub case: Case,
    /// Mean milliseconds per run.
    pub times: Times,
    /// Launch B's, timed in turns with the first's, where the query asks for it
    /// ([`Query::tuning_b`]).
    pub b_times: Option<Times>,
    /// The byte model's bytes over the GPU time.
    pub gb_per_s: f64,
    /// The largest relative error of the case's outputs against the f64 reference.
    pub max_error: f64,
    /// Whether every output is within the case's tolerance (under launch B too).
    pub pass: bool,
}

/// Every case of `shapes`, in the order the page lists them.
pub fn cases(shapes: &[Shape]) -> Vec<Case> {
    let mut all = Vec::new();
    for norm in Norm::ALL {
        for direction in Direction::ALL {
            for &shape in shapes {
                all.push(Case { norm, direction, shape });
            }
        }
    }
    all
}

/// Runs every case the query asks for (the page's own shapes, with the adapter's rules,
/// when it asks for nothing) on the browser's WebGPU, reporting each to `page` as it
/// finishes.
pub async fn run_all(page: &Page, query: &Query) -> Result<Vec<Outcome>, String> {
    let mut ctx = NormContext::with_options_async(Default::default()).await.map_err(|e| e.to_string())?;
    if query.changes_tuning() {
        // The rules' tuning for this adapter is the one the query's knobs change.
        let tuning = Some(query.tuning(*ctx.tuning())?);
        ctx = ctx.sibling(ContextOptions { tuning, ..Default::default() });
    }
    // Launch B shares the device, so the two are timed on one queue in turns.
    let b = query
        .tuning_b(*ctx.tuning())?
        .map(|t| ctx.sibling(ContextOptions { tuning: Some(t), ..Default::default() }));
    let clock = Clock::of(&ctx);
    page.adapter(&ctx, b.as_ref(), clock);
    let shapes =
        query.shapes.clone().unwrap_or_else(|| SHAPES.map(|(rows, cols)| Shape::new(rows, cols)).to_vec());
    let mut outcomes = Vec::new();
    for (seed, case) in (1..).zip(cases(&shapes)) {
        let outcome = run_case(&ctx, b.as_ref(), case, clock, seed * 10)
            .await
            .map_err(|e| format!("{}: {e}", case.name()))?;
        page.row(&outcome);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// A bound op and, for each output, its buffer and the reference's values.
struct Prepared {
    bound: BoundOp,
    outputs: Vec<(wgpu::Buffer, Vec<f64>)>,
}

/// The case on `ctx`, and on `b` (launch B) where given: each checked, then timed in turns.
pub async fn run_case(
    ctx: &NormContext,
    b: Option<&NormContext>,
    case: Case,
    clock: Clock,
    seed: u64,
) -> Result<Outcome, String> {
    let mut max_error = 0.0_f64;
    let mut bounds = Vec::new();
    for ctx in std::iter::once(ctx).chain(b) {
        let prepared = prepare(ctx, case, seed).await.map_err(|e| e.to_string())?;
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        prepared.bound.encode(&mut encoder);
        ctx.queue().submit([encoder.finish()]);
        for (buffer, want) in &prepared.outputs {
            let e = rel_err(&read(ctx, buffer).await?, want);
            // NaN (an unwritten element) must win.
            max_error = if e.is_nan() || max_error.is_nan() { f64::NAN } else { max_error.max(e) };
        }
        bounds.push(prepared.bound);
    }
    let times = timing::time(ctx, &bounds.iter().collect::<Vec<_>>(), clock).await?;
    let bytes = case.norm.bytes_moved(ctx, case.direction, case.shape).map_err(|e| e.to_string())?;
    Ok(Outcome {
        case,
        times: times[0],
        b_times: times.get(1).copied(),
        gb_per_s: bytes as f64 / (times[0].gpu_ms * 1e6),
        max_error,
        pass: max_error < case.tolerance(),
    })
}

/// Seeded inputs, the reference's outputs, and the op bound to buffers holding them (outputs
/// poisoned with NaN).
async fn prepare(ctx: &NormContext, case: Case, seed: u64) -> wgpu_norm::Result<Prepared> {
    let shape = case.shape;
    let n = shape.elements();
    let x = noise(n, seed, 0.5);
    let gamma = noise(shape.cols, seed + 1, 1.0);
    let (xb, gb) = (storage(ctx, &x), storage(ctx, &gamma));
    let g = Some((&gb).into());
    match (case.norm, case.direction) {
        (Norm::RmsNorm, Direction::Forward) => {
            let cfg = RmsNormConfig::default();
            let want = reference::rms_norm_forward(&x, Some(&gamma), shape, &cfg)?;
            let yb = poisoned(ctx, n);
            let tensors = RmsNormForward { gamma: g, ..RmsNormForward::new(&xb, &yb) };
            let bound = RmsNormForwardOp::new(ctx, cfg)?.bind_async(shape, &tensors).await?;
            Ok(Prepared { bound, outputs: vec![(yb, want.y)] })
        }
        (Norm::LayerNorm, Direction::Forward) => {
            let cfg = LayerNormConfig::default();
            let beta = noise(shape.cols, seed + 2, 0.0);
            let want = reference::layer_norm_forward(&x, Some(&gamma), Some(&beta), shape, &cfg)?;
            let (bb, yb) = (storage(ctx, &beta), poisoned(ctx, n));
            let tensors =
                LayerNormForward { gamma: g, beta: Some((&bb).into()), ..LayerNormForward::new(&xb, &yb) };
            let bound = LayerNormForwardOp::new(ctx, cfg)?.bind_async(shape, &tensors).await?;
            Ok(Prepared { bound, outputs: vec![(yb, want.y)] })
        }
        (norm, Direction::Backward) => {
            let dy = noise(n, seed + 3, 0.0);
            let (dyb, dxb, dgb) = (storage(ctx, &dy), poisoned(ctx, n), poisoned(ctx, shape.cols));
            match norm {
                Norm::RmsNorm => {
                    let cfg = RmsNormConfig::default();
                    let want = reference::rms_norm_backward(&x, Some(&gamma), &dy, shape, &cfg)?;
                    let op = RmsNormBackwardOp::new(ctx, cfg)?;
                    let wb = poisoned(ctx, (op.workspace_size(shape)? / 4) as usize);
                    let tensors = RmsNormBackward {
                        x: (&xb).into(),
                        gamma: g,
                        dy: (&dyb).into(),
                        dh: None,
                        rstd: None,
                        dx: (&dxb).into(),
                        dgamma: Some((&dgb).into()),
                        workspace: Some((&wb).into()),
                    };
                    let bound = op.bind_async(shape, &tensors).await?;
                    Ok(Prepared { bound, outputs: vec![(dxb, want.dx), (dgb, want.dgamma)] })
                }
                Norm::LayerNorm => {
                    let cfg = LayerNormConfig::default();
                    let want = reference::layer_norm_backward(&x, Some(&gamma), &dy, shape, &cfg)?;
                    let op = LayerNormBackwardOp::new(ctx, cfg)?;
                    let wb = poisoned(ctx, (op.workspace_size(shape)? / 4) as usize);
                    let dbb = poisoned(ctx, shape.cols);
                    let tensors = LayerNormBackward {
                        x: (&xb).into(),
                        gamma: g,
                        dy: (&dyb).into(),
                        dh: None,
                        mean: None,
                        rstd: None,
                        dx: (&dxb).into(),
                        dgamma: Some((&dgb).into()),
                        dbeta: Some((&dbb).into()),
                        workspace: Some((&wb).into()),
                    };
                    let bound = op.bind_async(shape, &tensors).await?;
                    let outputs = vec![(dxb, want.dx), (dgb, want.dgamma), (dbb, want.dbeta)];
                    Ok(Prepared { bound, outputs })
                }
            }
        }
    }
}
