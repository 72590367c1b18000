//! normbench: wgpu-norm's kernels on the GPU next to the CPU, with the share of a roofline
//! measured in the same run. `normbench --help` lists the options.

mod args;
mod cpu;
mod geometry;
mod gpu;
mod naive;
mod plot;
mod report;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use wgpu_norm::{Direction, Norm, RmsNormForward, RmsNormForwardOp, Shape, StreamCopy, StreamCopyOp};

use args::Args;
use gpu::{Case, Gpu, Workload};
use naive::Naive;
use report::{Report, Row, median, min};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Norm(#[from] wgpu_norm::NormError),
    #[error("GPU: {0}")]
    Gpu(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("writing {path}: {message}")]
    Io { path: String, message: String },
    #[error("plot: {0}")]
    Plot(String),
    #[error("input: {0}")]
    Input(String),
}

/// The shape the rooflines are measured on: 64 MiB a buffer, past any last-level cache.
const ROOFLINE_SHAPE: Shape = Shape::new(4096, 4096);
/// Timed kernel milliseconds each row of the table gathers at least (within MAX_RUNS runs).
const MIN_TIMED_MS: f64 = 100.0;
const MAX_RUNS: usize = 400;

/// Encode + submit calls timed for the decode shape.
const HOST_CALLS: usize = 300;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("normbench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), BenchError> {
    if let Some(args::Command::Geometry { input, eps, plot }) = &args.command {
        return geometry::run(input, *eps, plot.as_deref());
    }
    let gpu = Gpu::new(args.checked_shaders, |t| {
        if let Some(v) = args.workgroup_size {
            t.workgroup_size = v;
        }
        if let Some(v) = args.max_row_threads {
            t.max_row_threads = v;
        }
        if let Some(v) = args.max_tile_row_threads {
            (t.max_forward_tile_row_threads, t.max_backward_tile_row_threads) = (v, v);
        }
        if let Some(v) = args.elements_per_thread {
            (t.forward_elements_per_thread, t.backward_elements_per_thread) = (v, v);
        }
        if let Some(v) = args.single_thread_rows {
            t.single_thread_rows = v;
        }
        if let Some(v) = args.register_quads {
            t.register_quads = v;
        }
        if let Some(v) = args.split_chunk {
            t.split_chunk = v;
        }
        if let Some(v) = args.min_group_elements {
            t.min_group_elements = v;
        }
        if let Some(v) = args.max_column_lanes {
            t.max_column_lanes = v;
        }
        if let Some(v) = args.max_loop_trips {
            t.max_loop_trips = v;
        }
        if let Some(v) = args.joint_walks {
            t.joint_walks = v;
        }
        if let Some(v) = args.group_partials {
            t.group_partials = v;
        }
        if args.scalar_access {
            t.vector_access = false;
        }
    })?;
    check_shapes(&gpu, &args.shapes)?;
    let info = gpu.ctx.adapter_info().clone();
    println!(
        "adapter: {} | backend {:?} | driver {} {} | {:?} | subgroup sizes {}..{} (subgroup reductions {}) | timing: {}",
        info.name,
        info.backend,
        info.driver,
        info.driver_info,
        info.device_type,
        info.subgroup_min_size,
        info.subgroup_max_size,
        if gpu.ctx.uses_subgroups() { "on" } else { "off" },
        match gpu.timing {
            gpu::Timing::Timestamp => "timestamp queries around the kernel passes",
            gpu::Timing::Wall => "wall clock around submit + wait (no timestamp queries)",
        }
    );
    let t = gpu.ctx.tuning();
    println!(
        "tuning: workgroup {} threads, at most {} threads per row ({} forward and {} backward for a row to fit the tile; without subgroup operations one from {} rows per workgroup of the grid, from {} for rows of up to {} elements), {} elements per thread forward and {} backward, at most {} register quads, \
         {} access, backward grid {} workgroups, split rows {}, at least {} elements per workgroup, at most {} loop trips, backward sums \
         walked {}, tile partial sums {}, at most {} column-pass lanes per quad, wgpu's bounds checks {}",
        t.workgroup_size,
        t.max_row_threads,
        t.max_forward_tile_row_threads,
        t.max_backward_tile_row_threads,
        t.single_thread_rows,
        t.single_thread_rows_for(t.single_thread_short_cols),
        t.single_thread_short_cols,
        t.forward_elements_per_thread,
        t.backward_elements_per_thread,
        t.register_quads,
        if t.vector_access { "vector" } else { "scalar" },
        t.backward_groups,
        match t.split_chunk {
            0 => "never".to_string(),
            n => format!("in segments of {n}"),
        },
        t.min_group_elements,
        t.max_loop_trips,
        if t.joint_walks { "together" } else { "one row at a time" },
        if t.group_partials { "a row per workgroup" } else { "a row per slot" },
        t.max_column_lanes,
        if args.checked_shaders { "on" } else { "off" }
    );
    if gpu.copy_timing != gpu.timing {
        println!(
            "copy_buffer_to_buffer is timed by the wall clock around submit + wait: timestamps outside \
             a pass need TIMESTAMP_QUERY_INSIDE_ENCODERS, which this adapter lacks"
        );
    }

    if args.autotune || args.launch_cache.is_some() {
        autotune(&gpu, args)?;
    }

    let jobs = args.shapes.len() * args.ops.len() * args.dirs.len() + 3;
    let bar = ProgressBar::new(jobs as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("rooflines");
    let (copy_gbps, sweep_gbps, stream_sweep) = rooflines(&gpu, args)?;
    // Raised below to the best same-shape copy of the run: a sweep timed in a burst of load
    // would otherwise make every kernel look closer to the roofline than it is.
    let mut stream_gbps = sweep_gbps;
    bar.inc(2);
    bar.set_message("host overhead");
    let host = host_overhead(&gpu)?;
    bar.inc(1);
    println!(
        "rooflines ({}x{} f32, read + write): copy_buffer_to_buffer {copy_gbps:.2} GB/s, \
         stream-copy shader {sweep_gbps:.2} GB/s (best of the sweep: {})",
        ROOFLINE_SHAPE.rows,
        ROOFLINE_SHAPE.cols,
        stream_sweep
            .iter()
            .map(|p| format!("wg {} T<={} {:.2}", p.workgroup_size, p.max_row_threads, p.gbps))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "host overhead of one 1x4096 rms_norm forward (medians of {HOST_CALLS} calls): bind {:.2} us; encode the \
         bound op into an open pass {:.3} us, with a pass of its own {:.2} us (an empty pass: {:.2} us); encode + submit {:.1} us; one-shot \
         bind + encode {:.2} us; submitting an empty compute pass {:.1} us; with a pass of its own right after the \
         previous step ran {:.2} us",
        host.bind_us,
        host.encode_us,
        host.encode_pass_us,
        host.empty_pass_us,
        host.encode_submit_us,
        host.oneshot_encode_us,
        host.empty_pass_submit_us,
        host.cold_encode_pass_us
    );

    let naive = Naive::new(&gpu.ctx);
    let mut rows = Vec::new();
    for &shape in &args.shapes {
        bar.set_message(format!("{}x{}", shape.rows, shape.cols));
        let shape = qk_view(shape, args.heads as usize);
        let mut loads = Vec::new();
        for &op in &args.ops {
            for &dir in &args.dirs {
                let fused_residual = args.fused_residual;
                let saved_stats = !args.no_saved_stats;
                let case =
                    Case { op, direction: dir, shape, storage: args.dtype, fused_residual, saved_stats };
                loads.push(Workload::new(&gpu, case)?);
            }
        }
        // The shape's stream copy (dense rows of as many elements) is timed in the same turns
        // as its kernels.
        let n = shape.elements();
        let dense = Shape::new(shape.rows, shape.cols);
        let copy_x = gpu.buffer("shape_copy.x", n, Some(&gpu::noise(n, 7)))?;
        let copy_y = gpu.buffer("shape_copy.y", n, None)?;
        let ctx = &gpu.ctx;
        let copy = |pass: &mut wgpu::ComputePass<'_>, _: usize| -> Result<(), BenchError> {
            Ok(StreamCopyOp::new(ctx, args.dtype.x)?.encode(
                pass,
                dense,
                &StreamCopy { x: (&copy_x).into(), y: (&copy_y).into() },
            )?)
        };
        let mut records: Vec<&Record<'_>> = vec![&copy];
        let kernels: Vec<_> =
            loads.iter().map(|w| move |pass: &mut wgpu::ComputePass<'_>, i| w.record(ctx, pass, i)).collect();
        records.extend(kernels.iter().map(|k| k as &Record<'_>));
        let bare: Vec<_> = loads
            .iter()
            .map(|w| move |pass: &mut wgpu::ComputePass<'_>, i| w.record_bare(ctx, pass, i))
            .collect();
        records.extend(bare.iter().map(|k| k as &Record<'_>));
        // The naive baseline of each workload it covers, in the same turns, and its floor.
        let naive_records = |floor: bool| -> Vec<_> {
            loads
                .iter()
                .filter_map(|w| naive.as_ref().filter(|_| Naive::covers(w)).map(|n| (w, n)))
                .map(|(w, n)| {
                    let record = move |pass: &mut wgpu::ComputePass<'_>, i| {
                        match floor {
                            true => n.record_floor(ctx, pass, w, i),
                            false => n.record(ctx, pass, w, i),
                        }
                        Ok(())
                    };
                    (w as *const Workload, record)
                })
                .collect()
        };
        let baselines = naive_records(false);
        let floors = naive_records(true);
        records.extend(baselines.iter().map(|(_, r)| r as &Record<'_>));
        records.extend(floors.iter().map(|(_, r)| r as &Record<'_>));
        let mut times = interleaved_runs(&gpu, args, &records)?;
        let copy_times = times.remove(0);
        let floor_times = times.split_off(2 * loads.len() + baselines.len());
        let naive_times = times.split_off(2 * loads.len());
        let bare_times = times.split_off(loads.len());
        let shape_copy = 2.0 * n as f64 * args.dtype.x.size() as f64 / (median(&copy_times) * 1e6);
        stream_gbps = stream_gbps.max(shape_copy);
        for ((w, t), bare) in loads.iter().zip(&times).zip(&bare_times) {
            let mut row = measure(&gpu, args, w, t, shape_copy)?;
            row.bare_copy_fraction = row.shape_copy_fraction * row.gpu_ms / median(bare);
            let baseline = baselines.iter().position(|(p, _)| std::ptr::eq(*p, w));
            if let (Some(i), Some(n)) = (baseline, &naive) {
                check_naive(&gpu, n, w, &mut row, &naive_times[i])?;
            }
            if let Some(i) = floors.iter().position(|(p, _)| std::ptr::eq(*p, w)) {
                row.floor_copy_fraction =
                    Some(row.shape_copy_fraction * row.gpu_ms / median(&floor_times[i]));
            }
            rows.push(row);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    for r in &mut rows {
        r.roofline_fraction = r.gpu_gbps / stream_gbps;
    }

    println!();
    println!(
        "storage: {} (f32 statistics and sums; the copy in x's dtype); fused residual add: {}",
        args.dtype,
        if args.fused_residual {
            "on (forward: x + residual in, y and h out; backward: + dh)"
        } else {
            "off"
        }
    );
    if args.no_saved_stats {
        println!("backward: recomputes the statistics (no saved mean or rstd)");
    }
    if args.heads > 1 {
        println!(
            "heads: {} per token (QK-norm of the q heads of a fused QKV projection, one dispatch); ROWSxCOLS \
             is tokens x head_dim, the rows column counts every head",
            args.heads
        );
    }
    println!(
        "stream-copy roofline for the % column: {stream_gbps:.2} GB/s, the best of the sweep ({sweep_gbps:.2}) and of \
         the same-shape copies timed with the kernels"
    );
    print!("{}", report::table(&rows));
    println!();
    println!(
        "byte model: forward = read x + write y + read gamma (and beta) once; backward = read x and dy + \
         write dx + read gamma and the saved stats (rstd, and mean for LayerNorm) + write and read the \
         dgamma/dbeta partial sums + write dgamma (and dbeta). GB/s = bytes / median GPU time; \
         % = GB/s over the stream-copy shader's GB/s (the roofline), and over the stream copy of the \
         same shape (what this shape's bytes cost to move before any arithmetic). CPU fast: f32 on {} threads; CPU ref: f64, one thread.",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("{}", report::h100_floor(&rows));
    for line in report::rms_over_layer(&rows) {
        println!("{line}");
    }
    for r in rows.iter().filter(|r| r.cpu_fast_rel_err > 1e-4) {
        println!(
            "warning: the CPU fast baseline is off the reference by {:.1e} for {} {} {}x{}",
            r.cpu_fast_rel_err, r.op, r.direction, r.rows, r.cols
        );
    }

    if let Some(path) = &args.json {
        let doc = Report {
            adapter: report::AdapterJson {
                name: info.name.clone(),
                backend: format!("{:?}", info.backend),
                driver: info.driver.clone(),
                device_type: format!("{:?}", info.device_type),
                subgroups: naive.is_some(),
            },
            timing: gpu.timing.name(),
            checked_shaders: args.checked_shaders,
            copy_gbps,
            stream_gbps,
            host,
            stream_sweep,
            results: rows.clone(),
        };
        let text = serde_json::to_string_pretty(&doc).map_err(|e| io_err(path, e))?;
        std::fs::write(path, text).map_err(|e| io_err(path, e))?;
    }
    if let Some(path) = &args.plot {
        plot::draw(path, &rows, &info.name)?;
    }
    Ok(())
}

fn io_err(path: &std::path::Path, e: impl std::fmt::Display) -> BenchError {
    BenchError::Io { path: path.display().to_string(), message: e.to_string() }
}

/// Every shape valid and within the adapter's limits before any time is spent.
/// `shape` read as tokens x head_dim with `heads` heads per token, the q heads of a fused QKV
/// projection; itself for one head.
fn qk_view(shape: Shape, heads: usize) -> Shape {
    if heads == 1 {
        return shape;
    }
    Shape::heads(shape.rows, heads, shape.cols).with_row_stride(3 * heads * shape.cols)
}

fn check_shapes(gpu: &Gpu, shapes: &[Shape]) -> Result<(), BenchError> {
    let limits = gpu.ctx.limits();
    for s in shapes {
        Norm::RmsNorm.bytes_moved(&gpu.ctx, Direction::Forward, *s)?;
        let bytes = s.elements() as u64 * 4;
        let limit = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        if bytes > limit {
            return Err(BenchError::TooLarge(format!(
                "shape {}x{} needs {bytes}-byte tensors, over this adapter's limit of {limit} bytes \
                 (max_storage_buffer_binding_size / max_buffer_size)",
                s.rows, s.cols
            )));
        }
    }
    Ok(())
}

/// Records one run of a timed kernel on buffer set `i`.
type Record<'a> = dyn Fn(&mut wgpu::ComputePass<'_>, usize) -> Result<(), BenchError> + 'a;

/// GPU ms of each record, timed in turns (one run of each per round) so that all of a
/// shape's kernels see the same moments of this shared machine and their ratios hold;
/// rounds go on until each has MIN_TIMED_MS timed (within MAX_RUNS rounds), or short
/// kernels' medians would follow the machine's bursts of load.
fn interleaved_runs(gpu: &Gpu, args: &Args, records: &[&Record<'_>]) -> Result<Vec<Vec<f64>>, BenchError> {
    for record in records {
        gpu.time_pass(args.warmup, 0, record)?;
    }
    let mut times = vec![Vec::new(); records.len()];
    for round in 0..MAX_RUNS {
        let enough = times.iter().all(|t: &Vec<f64>| t.iter().sum::<f64>() >= MIN_TIMED_MS);
        if round >= args.iters as usize && enough {
            break;
        }
        for (record, t) in records.iter().zip(&mut times) {
            t.extend(gpu.time_pass(0, 1, |pass, _| record(pass, round))?);
        }
    }
    Ok(times)
}

fn measure(gpu: &Gpu, args: &Args, w: &Workload, times: &[f64], shape_copy: f64) -> Result<Row, BenchError> {
    let ctx = &gpu.ctx;
    let case = w.case;
    // One more run on set 0, whose inputs the host holds, to check the outputs.
    gpu.time_pass(0, 1, |pass, _| w.record(ctx, pass, 0))?;
    let outputs = w.outputs(gpu)?;

    let mut ref_times = Vec::new();
    let mut want = Vec::new();
    for _ in 0..args.iters.min(3) {
        let t = Instant::now();
        want = cpu::reference_case(w)?;
        ref_times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut fast_times = Vec::new();
    let mut fast = Vec::new();
    for _ in 0..args.iters.min(10) {
        let t = Instant::now();
        fast = cpu::fast_case(w);
        fast_times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let max_err = |got: &[Vec<f32>]| cpu::max_rel_err(got, &want);

    let bytes = case.op.bytes_moved_as(ctx, case.direction, case.shape, case.storage, case.fused_residual)?;
    let gpu_ms = median(times);
    let gpu_gbps = bytes as f64 / (gpu_ms * 1e6);
    Ok(Row {
        op: case.op.name(),
        direction: case.direction.name(),
        dtype: case.storage.to_string(),
        fused_residual: case.fused_residual,
        saved_stats: case.saved_stats,
        heads: case.shape.heads,
        rows: case.shape.rows,
        cols: case.shape.cols,
        bytes,
        gpu_ms,
        gpu_min_ms: min(times),
        gpu_gbps,
        // Set once the run's roofline is known.
        roofline_fraction: 0.0,
        shape_copy_fraction: gpu_gbps / shape_copy,
        cpu_ref_ms: median(&ref_times),
        cpu_fast_ms: median(&fast_times),
        max_rel_err: max_err(&outputs),
        cpu_fast_rel_err: max_err(&fast),
        naive_ms: None,
        vs_naive: None,
        naive_copy_fraction: None,
        floor_copy_fraction: None,
        // Set once the bare kernel's times are known.
        bare_copy_fraction: 0.0,
    })
}

/// The naive baseline's time and `vs_naive` on `row`, once its outputs on set 0, poisoned
/// first, are checked against the reference: a baseline off the reference would prove
/// nothing.
fn check_naive(
    gpu: &Gpu,
    naive: &Naive,
    w: &Workload,
    row: &mut Row,
    times: &[f64],
) -> Result<(), BenchError> {
    w.poison_outputs(gpu);
    gpu.time_pass(0, 1, |pass, _| {
        naive.record(&gpu.ctx, pass, w, 0);
        Ok(())
    })?;
    let want = cpu::reference_case(w)?;
    let err = cpu::max_rel_err(&w.outputs(gpu)?, &want);
    if err.is_nan() || err >= 1e-5 {
        return Err(BenchError::Gpu(format!(
            "the naive baseline of {} {} {}x{} is off the reference by {err:.1e}",
            row.op, row.direction, row.rows, row.cols
        )));
    }
    let naive_ms = median(times);
    row.naive_ms = Some(naive_ms);
    row.vs_naive = Some(naive_ms / row.gpu_ms);
    row.naive_copy_fraction = Some(row.shape_copy_fraction * row.gpu_ms / naive_ms);
    Ok(())
}

/// Tunes the launches of every kernel for the benchmark's shapes and the roofline's, and
/// prints what was chosen against the tuning's rules.
fn autotune(gpu: &Gpu, args: &Args) -> Result<(), BenchError> {
    let mut shapes = args.shapes.clone();
    if !shapes.contains(&ROOFLINE_SHAPE) {
        shapes.push(ROOFLINE_SHAPE);
    }
    let storage = args.dtype;
    let started = Instant::now();
    let tuned = wgpu_norm::autotune(&gpu.ctx, &shapes, storage, args.launch_cache.as_deref())?;
    println!(
        "autotune ({:.1} s): chosen launch per kernel and shape bucket",
        started.elapsed().as_secs_f64()
    );
    for t in tuned {
        let timing = match (t.micros, t.default_micros) {
            (Some(us), Some(rule)) => format!("{us:.1} us, the rules' launch {rule:.1} us"),
            _ => "from the launch cache".to_string(),
        };
        println!(
            "  {:<20} {:>11}: {:>3} threads per row, {:<6} ({timing})",
            t.kernel,
            format!("{}x{}", t.shape.rows, t.shape.cols),
            t.row_threads,
            if t.register_tile { "tile" } else { "stream" }
        );
    }
    Ok(())
}

/// GB/s of copy_buffer_to_buffer and of the stream-copy shader on ROOFLINE_SHAPE, each
/// rotating over two buffer pairs (256 MiB in all). The stream copy is swept over launch
/// settings (threads per row, workgroup size, besides the adapter's own) and the best is
/// the roofline, so no kernel's share is inflated by a badly launched copy. Returns the
/// copy's GB/s, the roofline and the sweep.
fn rooflines(gpu: &Gpu, args: &Args) -> Result<(f64, f64, Vec<report::SweepPoint>), BenchError> {
    let shape = ROOFLINE_SHAPE;
    let n = shape.elements();
    let data = gpu::noise(n, 99);
    let pairs: Vec<(wgpu::Buffer, wgpu::Buffer)> = (0..2)
        .map(|_| Ok((gpu.buffer("roofline.src", n, Some(&data))?, gpu.buffer("roofline.dst", n, None)?)))
        .collect::<Result<_, BenchError>>()?;
    let bytes = 2.0 * 4.0 * n as f64;
    let copy = gpu.time_encoder(args.warmup, args.iters, |enc, i| {
        let (s, d) = &pairs[i % 2];
        enc.copy_buffer_to_buffer(s, 0, d, 0, s.size());
    })?;
    let base = *gpu.ctx.tuning();
    let sg = gpu.ctx.adapter_info().subgroup_max_size.max(1);
    let mut configs = vec![(base.workgroup_size, base.max_row_threads)];
    for wg in [64, 256] {
        for t in [sg, 32, wg] {
            if t <= wg && !configs.contains(&(wg, t)) {
                configs.push((wg, t));
            }
        }
    }
    let mut sweep = Vec::new();
    for (k, (wg, t)) in configs.into_iter().enumerate() {
        let tuning = wgpu_norm::Tuning { workgroup_size: wg, max_row_threads: t, ..base };
        let options = wgpu_norm::ContextOptions { tuning: Some(tuning), ..gpu.options.clone() };
        let other =
            wgpu_norm::NormContext::from_device(gpu.ctx.device().clone(), gpu.ctx.queue().clone(), options);
        // The first point is the benchmark's own context, with any autotuned launch.
        let ctx = if k == 0 { &gpu.ctx } else { &other };
        let times = gpu.time_pass(args.warmup, args.iters, |pass, i| {
            let (s, d) = &pairs[i % 2];
            Ok(StreamCopyOp::new(ctx, wgpu_norm::DType::F32)?.encode(
                pass,
                shape,
                &StreamCopy { x: s.into(), y: d.into() },
            )?)
        })?;
        sweep.push(report::SweepPoint {
            workgroup_size: wg,
            max_row_threads: t,
            gbps: bytes / (median(&times) * 1e6),
        });
    }
    let best = sweep.iter().map(|p| p.gbps).fold(0.0, f64::max);
    Ok((bytes / (median(&copy) * 1e6), best, sweep))
}

/// Median CPU times, in microseconds, of the host side of one 1x4096 RMSNorm forward, the
/// decode step's norm (see [`report::HostOverhead`]).
fn host_overhead(gpu: &Gpu) -> Result<report::HostOverhead, BenchError> {
    let ctx = &gpu.ctx;
    let shape = Shape::new(1, 4096);
    let x = gpu.buffer("decode.x", shape.elements(), Some(&gpu::noise(shape.elements(), 5)))?;
    let y = gpu.buffer("decode.y", shape.elements(), None)?;
    let g = gpu.buffer("decode.gamma", shape.cols, Some(&vec![1.0; shape.cols]))?;
    let args = RmsNormForward { gamma: Some((&g).into()), ..RmsNormForward::new(&x, &y) };
    let op = RmsNormForwardOp::new(ctx, gpu::RMS)?;
    let wait =
        || ctx.device().poll(wgpu::PollType::wait_indefinitely()).map_err(|e| BenchError::Gpu(e.to_string()));
    let micros = |t: Instant| t.elapsed().as_secs_f64() * 1e6;
    // HOST_CALLS timed calls after 10 untimed ones. The work submitted is drained every 32
    // calls, or after every call where only the host's own cost is timed: on a CPU adapter
    // the work runs on the cores that encode, and would be timed with the encoding.
    let timed =
        |drain_each: bool, f: &mut dyn FnMut() -> Result<f64, BenchError>| -> Result<f64, BenchError> {
            let mut v = Vec::with_capacity(HOST_CALLS);
            for i in 0..HOST_CALLS + 10 {
                let us = f()?;
                if i >= 10 {
                    v.push(us);
                }
                if drain_each || i % 32 == 31 {
                    wait()?;
                }
            }
            wait()?;
            Ok(median(&v))
        };
    let empty_pass_submit_us = timed(false, &mut || {
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        drop(enc.begin_compute_pass(&Default::default()));
        let commands = enc.finish();
        let t = Instant::now();
        ctx.queue().submit([commands]);
        Ok(micros(t))
    })?;
    // The host's own costs are timed warm: HOST_CALLS calls back to back, their work
    // submitted together afterwards. Timed right after a submission, a CPU adapter's kernel
    // has just run on the encoding cores and evicted their caches (BENCHMARKS.md).
    let fresh = |f: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<(), BenchError>| {
        let mut encoders: Vec<_> =
            (0..HOST_CALLS).map(|_| ctx.device().create_command_encoder(&Default::default())).collect();
        let mut v = Vec::with_capacity(HOST_CALLS);
        for enc in &mut encoders {
            let t = Instant::now();
            f(enc)?;
            v.push(micros(t));
        }
        ctx.queue().submit(encoders.into_iter().map(|e| e.finish()));
        wait()?;
        Ok::<f64, BenchError>(median(&v))
    };
    let mut bound = Vec::with_capacity(HOST_CALLS);
    let mut v = Vec::with_capacity(HOST_CALLS);
    for _ in 0..HOST_CALLS {
        let t = Instant::now();
        bound.push(op.bind(shape, &args)?);
        v.push(micros(t));
    }
    let bind_us = median(&v);
    let bound = bound.swap_remove(0);
    let encode_us = {
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        let mut pass = enc.begin_compute_pass(&Default::default());
        let mut v = Vec::with_capacity(HOST_CALLS);
        for _ in 0..HOST_CALLS {
            let t = Instant::now();
            bound.encode(&mut pass);
            v.push(micros(t));
        }
        drop(pass);
        ctx.queue().submit([enc.finish()]);
        wait()?;
        median(&v)
    };
    let encode_pass_us = fresh(&mut |enc| {
        bound.encode(enc);
        Ok(())
    })?;
    let empty_pass_us = fresh(&mut |enc| {
        let label = wgpu::ComputePassDescriptor { label: Some("empty"), timestamp_writes: None };
        drop(enc.begin_compute_pass(&label));
        Ok(())
    })?;
    let oneshot_encode_us =
        fresh(&mut |enc| Ok(RmsNormForwardOp::new(ctx, gpu::RMS)?.encode(enc, shape, &args)?))?;
    let cold_encode_pass_us = timed(true, &mut || {
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        let t = Instant::now();
        bound.encode(&mut enc);
        let us = micros(t);
        ctx.queue().submit([enc.finish()]);
        Ok(us)
    })?;
    let encode_submit_us = timed(false, &mut || {
        let t = Instant::now();
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        bound.encode(&mut enc);
        ctx.queue().submit([enc.finish()]);
        Ok(micros(t))
    })?;
    Ok(report::HostOverhead {
        bind_us,
        encode_us,
        encode_pass_us,
        empty_pass_us,
        cold_encode_pass_us,
        encode_submit_us,
        oneshot_encode_us,
        empty_pass_submit_us,
    })
}
