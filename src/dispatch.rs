//! Binding callers' tensors and recording dispatches: the part every kernel shares.

use crate::context::{NormContext, RowLaunch};
use crate::dtype::{DType, Storage};
use crate::error::{NormError, Result};
use crate::params::Params;
use crate::shader::{Kernel, Layout};

const F32_BYTES: u64 = 4;

/// A tensor in a caller's buffer, starting at byte `offset`; its dtype comes from the
/// call's [`Storage`](crate::Storage).
///
/// The offset needs only element alignment (4 bytes for f32, 2 for f16 and bf16): the crate
/// binds from the nearest offset the device allows below it and passes the rest to the
/// kernel, so activations can sit anywhere in one large buffer. The buffer needs
/// `BufferUsages::STORAGE`.
#[derive(Clone, Copy, Debug)]
pub struct Tensor<'a> {
    /// The buffer holding the elements.
    pub buffer: &'a wgpu::Buffer,
    /// Byte offset of the first element.
    pub offset: u64,
}

impl<'a> Tensor<'a> {
    /// The tensor at byte `offset` of `buffer`.
    pub fn new(buffer: &'a wgpu::Buffer, offset: u64) -> Self {
        Tensor { buffer, offset }
    }
}

impl<'a> From<&'a wgpu::Buffer> for Tensor<'a> {
    fn from(buffer: &'a wgpu::Buffer) -> Self {
        Tensor { buffer, offset: 0 }
    }
}

/// Binding numbers, as in the WGSL files.
pub(crate) mod binding {
    pub const X: u32 = 0;
    pub const GAMMA: u32 = 1;
    pub const BETA: u32 = 2;
    pub const Y: u32 = 3;
    pub const MEAN: u32 = 4;
    pub const RSTD: u32 = 5;
    pub const DY: u32 = 6;
    pub const DX: u32 = 7;
    pub const PARTIAL: u32 = 8;
    pub const DGAMMA: u32 = 9;
    pub const DBETA: u32 = 10;
    pub const RESIDUAL: u32 = 11;
    pub const H: u32 = 12;
    pub const DH: u32 = 13;
    pub const PARAMS: u32 = 15;
}

/// One storage binding of a kernel: the caller's tensor, or nothing (then the kernel's flag
/// for it is off and a placeholder is bound).
#[derive(Clone, Copy)]
pub(crate) struct Slot<'a> {
    pub binding: u32,
    pub what: &'static str,
    pub tensor: Option<Tensor<'a>>,
    pub elements: u64,
    pub dtype: DType,
}

impl<'a> Slot<'a> {
    /// An f32 tensor (statistics, workspace, gradients of parameters).
    pub fn new(binding: u32, what: &'static str, tensor: Option<Tensor<'a>>, elements: u64) -> Self {
        Self::typed(binding, what, tensor, elements, DType::F32)
    }

    /// A tensor stored as `dtype`.
    pub fn typed(
        binding: u32,
        what: &'static str,
        tensor: Option<Tensor<'a>>,
        elements: u64,
        dtype: DType,
    ) -> Self {
        Slot { binding, what, tensor, elements, dtype }
    }
}

struct Bound<'a> {
    binding: u32,
    buffer: &'a wgpu::Buffer,
    offset: u64,
    size: u64,
}

/// Checks `slot` against its buffer and the device limits; returns the binding and the
/// element offset the kernel adds.
fn bind<'a>(ctx: &'a NormContext, slot: &Slot<'a>) -> Result<(Bound<'a>, u32)> {
    let Some(t) = slot.tensor else {
        let buffer = ctx.placeholder();
        let b = Bound { binding: slot.binding, buffer, offset: 0, size: buffer.size() };
        return Ok((b, 0));
    };
    let what = slot.what;
    let elem = slot.dtype.size();
    if !t.buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
        return Err(NormError::MissingUsage { what, usage: "STORAGE" });
    }
    if !t.offset.is_multiple_of(elem) {
        return Err(NormError::UnalignedOffset { what, offset: t.offset, align: elem });
    }
    let end = slot.elements.checked_mul(elem).and_then(|b| b.checked_add(t.offset)).unwrap_or(u64::MAX);
    let buffer_size = t.buffer.size();
    if end > buffer_size {
        return Err(NormError::BufferTooSmall { what, offset: t.offset, end, size: buffer_size });
    }
    // At least 16 bytes, so a tensor on a 16-byte boundary gets an element offset that is a
    // multiple of 4 and can take the vector layout.
    let align = u64::from(ctx.limits().min_storage_buffer_offset_alignment.max(16));
    let base = t.offset - t.offset % align;
    // Bindings are whole 4-byte words: a 16-bit tensor ending mid-word takes the word.
    let size = end.next_multiple_of(F32_BYTES).min(buffer_size) - base;
    let limit = ctx.limits().max_storage_buffer_binding_size;
    // Element indices are u32 in the kernels.
    let index_limit = u64::from(u32::MAX) * elem;
    if size > limit.min(index_limit) {
        let limit = limit.min(index_limit);
        return Err(NormError::BindingTooLarge { what, bytes: size, limit });
    }
    let b = Bound { binding: slot.binding, buffer: t.buffer, offset: base, size };
    Ok((b, ((t.offset - base) / elem) as u32))
}

fn set_offset(p: &mut Params, binding: u32, off: u32) {
    use binding::*;
    let field = match binding {
        X => &mut p.x_off,
        GAMMA => &mut p.gamma_off,
        BETA => &mut p.beta_off,
        Y => &mut p.y_off,
        MEAN => &mut p.mean_off,
        RSTD => &mut p.rstd_off,
        DY => &mut p.dy_off,
        DX => &mut p.dx_off,
        PARTIAL => &mut p.part_off,
        DGAMMA => &mut p.dgamma_off,
        DBETA => &mut p.dbeta_off,
        RESIDUAL => &mut p.res_off,
        H => &mut p.h_off,
        DH => &mut p.dh_off,
        _ => return,
    };
    *field = off;
}

/// Tensors the kernels move in quads through the io helpers (the rest are per-row
/// statistics).
fn moved_in_quads(binding: u32) -> bool {
    use binding::*;
    matches!(binding, X | GAMMA | BETA | Y | DY | DX | PARTIAL | DGAMMA | DBETA | RESIDUAL | H | DH)
}

/// The vector layout where the tuning allows it and every quad of every tensor the kernel
/// moves in quads is aligned and whole.
fn layout_for(ctx: &NormContext, d: &Dispatch<'_>, offsets: &[u32]) -> Layout {
    let p = &d.params;
    let aligned = ctx.tuning().vector_access
        && p.cols.is_multiple_of(4)
        && p.stride.is_multiple_of(4)
        && d.slots.iter().zip(offsets).all(|(s, off)| !moved_in_quads(s.binding) || off.is_multiple_of(4));
    if aligned { Layout::Vector } else { Layout::Scalar }
}

/// One dispatch to record: a kernel, how it is launched, its parameters and tensors.
pub(crate) struct Dispatch<'a> {
    pub kernel: Kernel,
    pub storage: Storage,
    pub launch: Option<RowLaunch>,
    pub groups: u32,
    pub params: Params,
    pub slots: Vec<Slot<'a>>,
}

/// Validates and binds every dispatch, then records them, in order, in one compute pass.
/// Nothing is recorded unless every dispatch is valid.
pub(crate) fn record(
    ctx: &NormContext,
    into: &mut impl Recorder,
    label: &str,
    dispatches: Vec<Dispatch<'_>>,
) -> Result<()> {
    let mut ready = Vec::with_capacity(dispatches.len());
    for d in &dispatches {
        ctx.check_cols(d.params.cols)?;
        let mut params = d.params;
        let mut bound = Vec::with_capacity(d.slots.len());
        let mut offsets = Vec::with_capacity(d.slots.len());
        for slot in &d.slots {
            let (b, off) = bind(ctx, slot)?;
            set_offset(&mut params, slot.binding, off);
            bound.push(b);
            offsets.push(off);
        }
        let layout = layout_for(ctx, d, &offsets);
        let pipeline = ctx.pipeline(d.kernel, d.storage, d.launch.as_ref(), layout, params.flags)?;
        let uniform = ctx.uniform(&params);
        let mut entries: Vec<wgpu::BindGroupEntry<'_>> = bound
            .iter()
            .map(|b| wgpu::BindGroupEntry {
                binding: b.binding,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: b.buffer,
                    offset: b.offset,
                    size: wgpu::BufferSize::new(b.size),
                }),
            })
            .collect();
        entries
            .push(wgpu::BindGroupEntry { binding: binding::PARAMS, resource: uniform.as_entire_binding() });
        let scope = ctx.device().push_error_scope(wgpu::ErrorFilter::Validation);
        let bind_group = ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(d.kernel.name()),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(NormError::Wgpu { during: "bind group creation", message: e.to_string() });
        }
        ready.push((pipeline, bind_group, d.groups));
    }
    into.in_compute_pass(label, &mut |pass| {
        for (pipeline, bind_group, groups) in &ready {
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, bind_group, &[]);
            pass.dispatch_workgroups(*groups, 1, 1);
        }
    });
    Ok(())
}

/// Where kernels are recorded: a `wgpu::CommandEncoder`, where each call opens a compute
/// pass of its own named after the kernel, or a `wgpu::ComputePass` the caller has open, to
/// put several kernels in one pass or to time them with the pass's timestamp writes.
pub trait Recorder {
    /// Runs `f` on a compute pass: a new one labelled `label`, or this one.
    fn in_compute_pass(&mut self, label: &str, f: &mut dyn FnMut(&mut wgpu::ComputePass<'_>));
}

impl Recorder for wgpu::CommandEncoder {
    fn in_compute_pass(&mut self, label: &str, f: &mut dyn FnMut(&mut wgpu::ComputePass<'_>)) {
        let mut pass = self
            .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes: None });
        f(&mut pass);
    }
}

impl Recorder for wgpu::ComputePass<'_> {
    fn in_compute_pass(&mut self, _label: &str, f: &mut dyn FnMut(&mut wgpu::ComputePass<'_>)) {
        f(self);
    }
}

/// Bytes of workspace `backward` needs for `rows x cols`: partial rows of dgamma, and of
/// dbeta for LayerNorm.
pub(crate) fn workspace_bytes(ctx: &NormContext, backward: Kernel, rows: u32, cols: u32) -> u64 {
    let launch = ctx.row_launch(backward, rows, cols);
    let gradients = if backward == Kernel::LayerNormBackward { 2 } else { 1 };
    u64::from(launch.partial_rows) * u64::from(cols) * gradients * F32_BYTES
}

/// The dispatch that sums the backward partials into dgamma and dbeta.
pub(crate) fn column_sums<'a>(
    ctx: &NormContext,
    params: Params,
    workspace: Option<Tensor<'a>>,
    workspace_elements: u64,
    dgamma: Option<Tensor<'a>>,
    dbeta: Option<Tensor<'a>>,
) -> Dispatch<'a> {
    let cols = u64::from(params.cols);
    let quads = params.cols.div_ceil(4);
    let groups = quads.div_ceil(ctx.tuning().workgroup_size).min(ctx.tuning().max_forward_groups);
    Dispatch {
        kernel: Kernel::ReduceColumns,
        storage: Storage::default(),
        launch: None,
        groups,
        params,
        slots: vec![
            Slot::new(binding::PARTIAL, "workspace", workspace, workspace_elements),
            Slot::new(binding::DGAMMA, "dgamma", dgamma, cols),
            Slot::new(binding::DBETA, "dbeta", dbeta, cols),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rms_norm::row_slot;
    use crate::shape::Shape;

    fn copy<'a>(ctx: &NormContext, shape: Shape, x: Tensor<'a>, y: Tensor<'a>) -> Dispatch<'a> {
        let params = crate::rms_norm::row_params(shape, 0.0, 0.0).unwrap();
        let st = Storage::default();
        Dispatch {
            kernel: Kernel::StreamCopy,
            storage: st,
            launch: Some(ctx.row_launch(Kernel::StreamCopy, params.rows, params.cols)),
            groups: 1,
            params,
            slots: vec![
                row_slot(binding::X, "x", Some(x), shape, st),
                row_slot(binding::Y, "y", Some(y), shape, st),
            ],
        }
    }

    /// The vector layout is taken exactly when every quad is aligned and whole.
    #[test]
    fn vector_layout_needs_aligned_whole_quads() {
        let ctx = NormContext::new().unwrap();
        let buffer = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 1 << 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let at = |offset| Tensor::new(&buffer, offset);
        let layout = |d: &Dispatch<'_>, offsets: &[u32]| layout_for(&ctx, d, offsets);
        let s = Shape::new(8, 64);
        assert_eq!(layout(&copy(&ctx, s, at(0), at(4096)), &[0, 0]), Layout::Vector);
        assert_eq!(layout(&copy(&ctx, s, at(0), at(4096)), &[0, 2]), Layout::Scalar, "y off a quad");
        assert_eq!(layout(&copy(&ctx, Shape::new(8, 62), at(0), at(4096)), &[0, 0]), Layout::Scalar, "cols");
        let strided = s.with_row_stride(66);
        assert_eq!(layout(&copy(&ctx, strided, at(0), at(8192)), &[0, 0]), Layout::Scalar, "stride");
        let scalar = NormContext::with_options(crate::ContextOptions {
            tuning: Some(crate::Tuning { vector_access: false, ..*ctx.tuning() }),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(layout_for(&scalar, &copy(&scalar, s, at(0), at(4096)), &[0, 0]), Layout::Scalar);
    }
}
