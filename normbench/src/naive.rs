//! The naive baseline (`shaders/naive.wgsl`): the simplest correct kernels, timed in the same
//! turns as the crate's and checked against the same reference, so that `vs_naive` (naive
//! time / the crate's time) says what the crate's engineering buys.

use wgpu::util::DeviceExt as _;
use wgpu_norm::{DType, Direction, Norm, NormContext, Shape, Storage};

use crate::gpu::Workload;

/// Threads per workgroup: a few subgroups of any size from 4 to 64, each its own row.
const WORKGROUP_SIZE: u32 = 128;

/// The backward's column pass splits the rows into at most this many chunks, one thread per
/// quad and chunk, so that narrow rows still give every core work.
const CHUNKS: usize = 64;

/// The uniform's binding in naive.wgsl; the buffers of `Workload::naive_buffers` take the
/// others in order.
const PARAMS: u32 = 4;

/// An entry point of naive.wgsl, and the bindings it uses (its layout is derived from them).
struct Kernel {
    pipeline: wgpu::ComputePipeline,
    bindings: &'static [u32],
}

/// One norm's baseline: its forward, and its backward's three passes (rows, column chunks,
/// the chunks' sum).
struct Kernels {
    forward: Kernel,
    backward: [Kernel; 3],
}

pub struct Naive {
    rms_norm: Kernels,
    layer_norm: Kernels,
    /// Both forwards' floor (`record_floor`).
    forward_floor: Kernel,
}

impl Naive {
    /// The baseline's pipelines; `None` where the adapter has no subgroup operations (the
    /// baseline reduces a row with `subgroupAdd`, nothing else).
    pub fn new(ctx: &NormContext) -> Option<Naive> {
        let device = ctx.device();
        if !device.features().contains(wgpu::Features::SUBGROUP) {
            return None;
        }
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("naive.wgsl"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../shaders/naive.wgsl").into()),
        });
        let kernel = |entry: &str, bindings| Kernel {
            pipeline: device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &[("WORKGROUP_SIZE", f64::from(WORKGROUP_SIZE))],
                    ..Default::default()
                },
                cache: None,
            }),
            bindings,
        };
        Some(Naive {
            rms_norm: Kernels {
                forward: kernel("naive_rms_norm_forward", &[0, 1, 3, 4]),
                backward: [
                    kernel("naive_rms_norm_backward", &[0, 1, 4, 5, 7, 8]),
                    kernel("naive_rms_norm_dgamma", &[0, 4, 5, 7, 9]),
                    kernel("naive_rms_norm_dgamma_sum", &[4, 9, 10]),
                ],
            },
            layer_norm: Kernels {
                forward: kernel("naive_layer_norm_forward", &[0, 1, 2, 3, 4]),
                backward: [
                    kernel("naive_layer_norm_backward", &[0, 1, 4, 5, 6, 7, 8]),
                    kernel("naive_layer_norm_dgamma", &[0, 4, 5, 6, 7, 9]),
                    kernel("naive_layer_norm_dgamma_sum", &[4, 9, 10, 11]),
                ],
            },
            forward_floor: kernel("naive_forward_floor", &[0, 1, 3, 4]),
        })
    }

    /// Whether the baseline has a kernel for this workload: f32 rows a multiple of 4 long,
    /// without a fused residual; a backward from the forward's saved statistics.
    pub fn covers(w: &Workload) -> bool {
        let c = &w.case;
        (c.direction == Direction::Forward || c.saved_stats)
            && c.storage == Storage::uniform(DType::F32)
            && !c.fused_residual
            && c.shape.is_dense()
            && c.shape.cols.is_multiple_of(4)
    }

    /// Floats of the backward's column sums for `shape`: dgamma's and dbeta's, per chunk.
    pub fn partials_len(shape: Shape) -> usize {
        2 * CHUNKS * shape.cols
    }

    /// Records the baseline of `w` on its buffer set `run % sets`, writing the same outputs.
    pub fn record(&self, ctx: &NormContext, pass: &mut wgpu::ComputePass<'_>, w: &Workload, run: usize) {
        self.record_launches(ctx, pass, w, run, false);
    }

    /// Records the floor of `w`: the accesses every kernel that reads a row twice makes at
    /// least, so its time is a floor for such kernels (normbench's `floor` column). A
    /// backward's is its row pass alone (x, dy and gamma read twice, dx written once, no
    /// dgamma), whose dx is the baseline's, checked with it; a forward's reads x twice and
    /// writes y, with no gamma (y is then not the norm's).
    pub fn record_floor(
        &self,
        ctx: &NormContext,
        pass: &mut wgpu::ComputePass<'_>,
        w: &Workload,
        run: usize,
    ) {
        self.record_launches(ctx, pass, w, run, true);
    }

    /// The baseline's launches of `w`, or its floor's.
    fn record_launches(
        &self,
        ctx: &NormContext,
        pass: &mut wgpu::ComputePass<'_>,
        w: &Workload,
        run: usize,
        floor: bool,
    ) {
        let c = &w.case;
        let (kernels, eps) = match c.op {
            Norm::RmsNorm => (&self.rms_norm, c.rms().eps),
            Norm::LayerNorm => (&self.layer_norm, c.ln().eps),
        };
        let rows = c.shape.rows as u32;
        let quads = (c.shape.cols / 4) as u32;
        let chunk_rows = rows.div_ceil(CHUNKS as u32);
        let params: [u32; 4] = [rows, quads, eps.to_bits(), chunk_rows];
        let device = ctx.device();
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("naive.params"),
            contents: bytemuck::cast_slice(&params),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let rows_per_group = WORKGROUP_SIZE / ctx.adapter_info().subgroup_max_size.clamp(1, WORKGROUP_SIZE);
        let max = ctx.limits().max_compute_workgroups_per_dimension;
        let row_grid = [rows.div_ceil(rows_per_group).min(max), 1];
        let column_grid = quads.div_ceil(WORKGROUP_SIZE);
        let launches: Vec<(&Kernel, [u32; 2])> = match (c.direction, floor) {
            (Direction::Forward, false) => vec![(&kernels.forward, row_grid)],
            (Direction::Forward, true) => vec![(&self.forward_floor, row_grid)],
            (Direction::Backward, false) => {
                let [rows_pass, columns, sum] = &kernels.backward;
                let chunks = rows.div_ceil(chunk_rows);
                vec![(rows_pass, row_grid), (columns, [column_grid, chunks]), (sum, [column_grid, 1])]
            }
            (Direction::Backward, true) => vec![(&kernels.backward[0], row_grid)],
        };
        let buffers = w.naive_buffers(run);
        for (kernel, [x, y]) in launches {
            let entries: Vec<_> = kernel
                .bindings
                .iter()
                .map(|&binding| {
                    let buffer = match binding {
                        PARAMS => &uniform,
                        b if b < PARAMS => buffers[b as usize],
                        b => buffers[b as usize - 1],
                    };
                    wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() }
                })
                .collect();
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("naive"),
                layout: &kernel.pipeline.get_bind_group_layout(0),
                entries: &entries,
            });
            pass.set_pipeline(&kernel.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(x, y, 1);
        }
    }
}
