//! Where bound ops are recorded.

/// Where kernels are recorded: a `wgpu::CommandEncoder`, where each op opens a compute
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
