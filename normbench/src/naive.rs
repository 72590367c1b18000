//! The naive baseline (`shaders/naive.wgsl`): the simplest correct forward kernels, timed in
//! the same turns as the crate's and checked against the same reference, so that `vs_naive`
//! (naive time / the crate's time) says what the crate's engineering buys.

use wgpu::util::DeviceExt as _;
use wgpu_norm::{DType, Direction, Norm, NormContext, Storage};

use crate::gpu::Workload;

/// Threads per workgroup: a few subgroups of any size from 4 to 64, each its own row.
const WORKGROUP_SIZE: u32 = 128;

pub struct Naive {
    rms_norm: wgpu::ComputePipeline,
    layer_norm: wgpu::ComputePipeline,
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
        let pipeline = |entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &[("WORKGROUP_SIZE", f64::from(WORKGROUP_SIZE))],
                    ..Default::default()
                },
                cache: None,
            })
        };
        Some(Naive {
            rms_norm: pipeline("naive_rms_norm_forward"),
            layer_norm: pipeline("naive_layer_norm_forward"),
        })
    }

    /// Whether the baseline has a kernel for this workload: a forward of f32 rows a multiple
    /// of 4 long, without a fused residual.
    pub fn covers(w: &Workload) -> bool {
        let c = &w.case;
        c.direction == Direction::Forward
            && c.storage == Storage::uniform(DType::F32)
            && !c.fused_residual
            && c.shape.is_dense()
            && c.shape.cols.is_multiple_of(4)
    }

    /// Records the baseline of `w` on its buffer set `run % sets`, writing the same y.
    pub fn record(&self, ctx: &NormContext, pass: &mut wgpu::ComputePass<'_>, w: &Workload, run: usize) {
        let c = &w.case;
        let (pipeline, eps) = match c.op {
            Norm::RmsNorm => (&self.rms_norm, c.rms().eps),
            Norm::LayerNorm => (&self.layer_norm, c.ln().eps),
        };
        let quads = (c.shape.cols / 4) as u32;
        let params: [u32; 4] = [c.shape.rows as u32, quads, eps.to_bits(), 0];
        let device = ctx.device();
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("naive.params"),
            contents: bytemuck::cast_slice(&params),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let [x, gamma, beta, y] = w.forward_buffers(run);
        let buffers = [x, gamma, beta, y, &uniform];
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 2 || c.op == Norm::LayerNorm)
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("naive"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let rows_per_group = WORKGROUP_SIZE / ctx.adapter_info().subgroup_max_size.clamp(1, WORKGROUP_SIZE);
        let max = ctx.limits().max_compute_workgroups_per_dimension;
        let groups = (c.shape.rows as u32).div_ceil(rows_per_group).min(max);
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(groups, 1, 1);
    }
}
