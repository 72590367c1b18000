//! The encode-level API on a device the caller owns: tensors at unaligned byte offsets in
//! shared buffers, several kernels and the caller's own commands in one encoder, one
//! submit, and nothing written outside the tensors.

mod common;

use common::{DX, FORWARD, check, check_at_scale, randn, rng};
use wgpu::util::DeviceExt as _;
use wgpu_norm::host;
use wgpu_norm::{
    ContextOptions, LayerNormBackward, LayerNormBackwardOp, LayerNormConfig, LayerNormForward,
    LayerNormForwardOp, NormContext, RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape, Tensor,
    reference,
};

const SENTINEL: f32 = 777.0;

fn caller_device() -> (wgpu::Device, wgpu::Queue) {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .expect("no adapter: install mesa-vulkan-drivers");
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("caller"),
        required_features: adapter.features() & wgpu::Features::SUBGROUP,
        ..Default::default()
    }))
    .expect("device")
}

fn read(device: &wgpu::Device, queue: &wgpu::Queue, buffer: &wgpu::Buffer) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(&common::read_bytes(device, queue, buffer))
}

/// Element offsets of consecutive regions with a few guard elements between them.
fn layout(sizes: &[usize]) -> (Vec<usize>, usize) {
    let mut offsets = Vec::new();
    let mut at = 3; // not a multiple of 64 elements (256 bytes)
    for s in sizes {
        offsets.push(at);
        at += s + 5;
    }
    (offsets, at)
}

#[test]
fn records_into_callers_encoder_at_byte_offsets() {
    let (device, queue) = caller_device();
    let ctx = NormContext::from_device(device.clone(), queue.clone(), ContextOptions::default());
    let shape = Shape::new(37, 1000);
    let (n, c, r) = (shape.elements(), shape.cols, shape.rows);
    let seed = 31;
    let mut g = rng(seed);
    let x = randn(&mut g, n).iter().map(|v| 3.0 + v).collect::<Vec<_>>();
    let dy = randn(&mut g, n);
    let gamma = randn(&mut g, c);
    let beta = randn(&mut g, c);

    // One activation buffer: x, y (LayerNorm), y (RMSNorm), dy, dx. One for parameters and
    // their gradients, one for statistics, one workspace.
    let (a, a_len) = layout(&[n, n, n, n, n]);
    let (w, w_len) = layout(&[c, c, c, c]);
    let (s, s_len) = layout(&[r, r]);
    let mut acts = vec![SENTINEL; a_len];
    acts[a[0]..a[0] + n].copy_from_slice(&x);
    acts[a[3]..a[3] + n].copy_from_slice(&dy);
    let mut weights = vec![SENTINEL; w_len];
    weights[w[0]..w[0] + c].copy_from_slice(&gamma);
    weights[w[1]..w[1] + c].copy_from_slice(&beta);
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let buf = |label, data: &[f32]| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(data),
            usage,
        })
    };
    let acts_buf = buf("acts", &acts);
    let weights_buf = buf("weights", &weights);
    let stats_buf = buf("stats", &vec![SENTINEL; s_len]);
    let ws_off = 12u64;
    let ws_bytes =
        LayerNormBackwardOp::new(&ctx, LayerNormConfig::default()).unwrap().workspace_size(shape).unwrap();
    let ws_buf = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("workspace"),
        size: ws_off + ws_bytes,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let at = |b, e: usize| Tensor::new(b, 4 * e as u64);

    let mut enc = device.create_command_encoder(&Default::default());
    // The caller's own work before ours, on the same buffers.
    let mirror = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("caller's own"),
        size: 4 * n as u64,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    enc.copy_buffer_to_buffer(&acts_buf, 4 * a[0] as u64, &mirror, 0, 4 * n as u64);
    let ln = LayerNormConfig { eps: 1e-5, ..Default::default() };
    LayerNormForwardOp::new(&ctx, ln)
        .unwrap()
        .encode(
            &mut enc,
            shape,
            &LayerNormForward {
                residual: None,
                h: None,
                x: at(&acts_buf, a[0]),
                gamma: Some(at(&weights_buf, w[0])),
                beta: Some(at(&weights_buf, w[1])),
                y: at(&acts_buf, a[1]),
                mean: Some(at(&stats_buf, s[0])),
                rstd: Some(at(&stats_buf, s[1])),
            },
        )
        .unwrap();
    LayerNormBackwardOp::new(&ctx, ln)
        .unwrap()
        .encode(
            &mut enc,
            shape,
            &LayerNormBackward {
                dh: None,
                x: at(&acts_buf, a[0]),
                gamma: Some(at(&weights_buf, w[0])),
                dy: at(&acts_buf, a[3]),
                mean: Some(at(&stats_buf, s[0])),
                rstd: Some(at(&stats_buf, s[1])),
                dx: at(&acts_buf, a[4]),
                dgamma: Some(at(&weights_buf, w[2])),
                dbeta: Some(at(&weights_buf, w[3])),
                workspace: Some(Tensor::new(&ws_buf, ws_off)),
            },
        )
        .unwrap();
    let rms = RmsNormConfig::default();
    RmsNormForwardOp::new(&ctx, rms)
        .unwrap()
        .encode(
            &mut enc,
            shape,
            &RmsNormForward {
                residual: None,
                h: None,
                x: at(&acts_buf, a[0]),
                gamma: Some(at(&weights_buf, w[0])),
                y: at(&acts_buf, a[2]),
                rstd: None,
            },
        )
        .unwrap();
    queue.submit([enc.finish()]);

    let got = read(&device, &queue, &acts_buf);
    let got_w = read(&device, &queue, &weights_buf);
    let got_s = read(&device, &queue, &stats_buf);
    let context = format!("seed {seed}, {shape:?}");
    let want = reference::layer_norm_forward(&x, Some(&gamma), Some(&beta), shape, &ln).unwrap();
    check("ln y", &got[a[1]..a[1] + n], &want.y, FORWARD, &context);
    let mean_bar = common::Bar { rel: 1e-6, atol: 1e-5, rtol: 1e-6 };
    check("mean", &got_s[s[0]..s[0] + r], &want.mean, mean_bar, &context);
    let grads = reference::layer_norm_backward(&x, Some(&gamma), &dy, shape, &ln).unwrap();
    check_at_scale("ln dx", &got[a[4]..a[4] + n], &grads.dx, DX, 1.0, &context);
    let sums = common::column_sum_bar(r, 1.0);
    check("dgamma", &got_w[w[2]..w[2] + c], &grads.dgamma, sums, &context);
    check("dbeta", &got_w[w[3]..w[3] + c], &grads.dbeta, sums, &context);
    let want = reference::rms_norm_forward(&x, Some(&gamma), shape, &rms).unwrap();
    check("rms y", &got[a[2]..a[2] + n], &want.y, FORWARD, &context);

    // Inputs untouched, and every guard element still the sentinel.
    assert_eq!(&got[a[0]..a[0] + n], &x[..]);
    assert_eq!(&got[a[3]..a[3] + n], &dy[..]);
    for (buf, offs, sizes) in [(&got, &a, vec![n; 5]), (&got_w, &w, vec![c; 4]), (&got_s, &s, vec![r; 2])] {
        let mut inside = vec![false; buf.len()];
        for (o, len) in offs.iter().zip(&sizes) {
            inside[*o..o + len].iter_mut().for_each(|v| *v = true);
        }
        for (i, v) in buf.iter().enumerate() {
            if !inside[i] {
                assert_eq!(*v, SENTINEL, "element {i} outside every tensor was written");
            }
        }
    }
}

/// Repeated calls reuse the cached pipelines and parameter blocks and give bitwise
/// identical results.
#[test]
fn repeated_encodes_give_identical_results() {
    let ctx = common::ctx();
    let shape = Shape::new(5, 300);
    let x = randn(&mut rng(9), shape.elements());
    let a = host::rms_norm_forward(ctx, &x, None, shape, &RmsNormConfig::default()).unwrap();
    let b = host::rms_norm_forward(ctx, &x, None, shape, &RmsNormConfig::default()).unwrap();
    assert_eq!(a, b);
}
