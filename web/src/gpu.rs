//! Buffers in and out of the browser's GPU, seeded inputs, and the error measure.

use wgpu_norm::{Element, NormContext};

/// Seeded noise in [-1, 1), plus `shift`.
pub fn noise(n: usize, seed: u64, shift: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0 + shift
        })
        .collect()
}

/// `‖gpu − want‖ / ‖want‖`.
pub fn rel_err<T: Element>(gpu: &[T], want: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (g, w) in gpu.iter().zip(want) {
        num += (g.to_f64() - w).powi(2);
        den += w * w;
    }
    (num / den).sqrt()
}

/// A storage buffer holding `data`, which tests may copy out of and write to.
pub fn storage(ctx: &NormContext, data: &[f32]) -> wgpu::Buffer {
    let b = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (4 * data.len()).max(4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue().write_buffer(&b, 0, bytemuck::cast_slice(data));
    b
}

/// An output buffer of `n` f32s, all NaN, so that an element the kernel leaves unwritten
/// fails the check.
pub fn poisoned(ctx: &NormContext, n: usize) -> wgpu::Buffer {
    storage(ctx, &vec![f32::NAN; n])
}

/// The buffer's f32s, after everything submitted so far.
pub async fn read(ctx: &NormContext, buffer: &wgpu::Buffer) -> Result<Vec<f32>, String> {
    read_as(ctx, buffer).await
}

/// The buffer's contents as `T`s, after everything submitted so far.
pub async fn read_as<T: bytemuck::Pod>(ctx: &NormContext, buffer: &wgpu::Buffer) -> Result<Vec<T>, String> {
    let staging = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: buffer.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
    ctx.queue().submit([enc.finish()]);
    let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        tx.send(r).ok();
    });
    let unmapped = |e: &dyn std::fmt::Debug| format!("reading a buffer back: {e:?}");
    rx.receive().await.ok_or_else(|| unmapped(&"no answer"))?.map_err(|e| unmapped(&e))?;
    let mapped = staging.slice(..).get_mapped_range().map_err(|e| unmapped(&e))?;
    Ok(bytemuck::pod_collect_to_vec(&mapped))
}
