//! criterion: forward and backward of both norms at three shapes, each iteration one
//! submission waited for (so a figure includes submit and wake-up latency; normbench has the
//! timestamp-timed numbers), with throughput from the crate's byte model.
//!
//! `cargo bench --bench norms`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgpu::util::DeviceExt as _;
use wgpu_norm::{
    Direction, LayerNormBackward, LayerNormBackwardOp, LayerNormConfig, LayerNormForward, LayerNormForwardOp,
    Norm, NormContext, RmsNormBackward, RmsNormBackwardOp, RmsNormConfig, RmsNormForward, RmsNormForwardOp,
    Shape,
};

const SHAPES: [(usize, usize); 3] = [(32, 4096), (512, 4096), (8192, 768)];

struct Buffers {
    x: wgpu::Buffer,
    dy: wgpu::Buffer,
    out: wgpu::Buffer,
    gamma: wgpu::Buffer,
    beta: wgpu::Buffer,
    mean: wgpu::Buffer,
    rstd: wgpu::Buffer,
    dgamma: wgpu::Buffer,
    dbeta: wgpu::Buffer,
    workspace: wgpu::Buffer,
}

fn buffer(ctx: &NormContext, len: usize, fill: impl Fn(usize) -> f32) -> wgpu::Buffer {
    let data: Vec<f32> = (0..len).map(fill).collect();
    ctx.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&data),
        usage: wgpu::BufferUsages::STORAGE,
    })
}

fn buffers(ctx: &NormContext, shape: Shape) -> Buffers {
    let (n, c, r) = (shape.elements(), shape.cols, shape.rows);
    let ws = LayerNormBackwardOp::new(ctx, LayerNormConfig::default()).unwrap().workspace_size(shape).unwrap()
        as usize
        / 4;
    let b = Buffers {
        x: buffer(ctx, n, |i| ((i * 7919) % 1000) as f32 / 500.0 - 0.5),
        dy: buffer(ctx, n, |i| ((i * 104_729) % 1000) as f32 / 500.0 - 1.0),
        out: buffer(ctx, n, |_| 0.0),
        gamma: buffer(ctx, c, |_| 1.0),
        beta: buffer(ctx, c, |_| 0.0),
        mean: buffer(ctx, r, |_| 0.0),
        rstd: buffer(ctx, r, |_| 0.0),
        dgamma: buffer(ctx, c, |_| 0.0),
        dbeta: buffer(ctx, c, |_| 0.0),
        workspace: buffer(ctx, ws.max(1), |_| 0.0),
    };
    // Saved statistics for backward.
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    record(ctx, &mut enc, &b, Norm::LayerNorm, Direction::Forward, shape, true);
    ctx.queue().submit([enc.finish()]);
    b
}

fn record(
    ctx: &NormContext,
    enc: &mut wgpu::CommandEncoder,
    b: &Buffers,
    op: Norm,
    dir: Direction,
    shape: Shape,
    keep_stats: bool,
) {
    let rms = RmsNormConfig::default();
    let ln = LayerNormConfig::default();
    let stats = |t| keep_stats.then_some(t);
    match (op, dir) {
        (Norm::RmsNorm, Direction::Forward) => RmsNormForwardOp::new(ctx, rms).unwrap().encode(
            enc,
            shape,
            &RmsNormForward {
                residual: None,
                h: None,
                x: (&b.x).into(),
                gamma: Some((&b.gamma).into()),
                y: (&b.out).into(),
                rstd: None,
            },
        ),
        (Norm::LayerNorm, Direction::Forward) => LayerNormForwardOp::new(ctx, ln).unwrap().encode(
            enc,
            shape,
            &LayerNormForward {
                residual: None,
                h: None,
                x: (&b.x).into(),
                gamma: Some((&b.gamma).into()),
                beta: Some((&b.beta).into()),
                y: (&b.out).into(),
                mean: stats((&b.mean).into()),
                rstd: stats((&b.rstd).into()),
            },
        ),
        (Norm::RmsNorm, Direction::Backward) => RmsNormBackwardOp::new(ctx, rms).unwrap().encode(
            enc,
            shape,
            &RmsNormBackward {
                dh: None,
                x: (&b.x).into(),
                gamma: Some((&b.gamma).into()),
                dy: (&b.dy).into(),
                rstd: Some((&b.rstd).into()),
                dx: (&b.out).into(),
                dgamma: Some((&b.dgamma).into()),
                workspace: Some((&b.workspace).into()),
            },
        ),
        (Norm::LayerNorm, Direction::Backward) => LayerNormBackwardOp::new(ctx, ln).unwrap().encode(
            enc,
            shape,
            &LayerNormBackward {
                dh: None,
                x: (&b.x).into(),
                gamma: Some((&b.gamma).into()),
                dy: (&b.dy).into(),
                mean: Some((&b.mean).into()),
                rstd: Some((&b.rstd).into()),
                dx: (&b.out).into(),
                dgamma: Some((&b.dgamma).into()),
                dbeta: Some((&b.dbeta).into()),
                workspace: Some((&b.workspace).into()),
            },
        ),
    }
    .expect("valid arguments");
}

fn norms(c: &mut Criterion) {
    let ctx = NormContext::new().expect("no adapter: install mesa-vulkan-drivers");
    for (rows, cols) in SHAPES {
        let shape = Shape::new(rows, cols);
        let b = buffers(&ctx, shape);
        for op in Norm::ALL {
            for dir in Direction::ALL {
                let mut group = c.benchmark_group(format!("{}_{}", op.name(), dir.name()));
                group.throughput(Throughput::Bytes(op.bytes_moved(&ctx, dir, shape).unwrap()));
                group.bench_function(format!("{rows}x{cols}"), |bench| {
                    bench.iter(|| {
                        let mut enc = ctx.device().create_command_encoder(&Default::default());
                        record(&ctx, &mut enc, &b, op, dir, shape, false);
                        ctx.queue().submit([enc.finish()]);
                        ctx.device().poll(wgpu::PollType::wait_indefinitely()).unwrap();
                    })
                });
                group.finish();
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = norms
}
criterion_main!(benches);
