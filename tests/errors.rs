//! Bad input gets a typed error, never a panic, a hang or a silent wrong answer; wgpu
//! validation errors come back as errors instead of reaching the uncaptured-error handler
//! (whose default panics, so a leak would fail these tests).

mod common;

use common::{buffer, ctx, storage};
use wgpu_norm::host;
use wgpu_norm::{
    AdapterChoice, ContextOptions, LayerNormBackward, LayerNormBackwardOp, LayerNormConfig, NormContext,
    NormError, RmsNormBackward, RmsNormBackwardOp, RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape,
    Tensor,
};

fn encode_rms(
    ctx: &NormContext,
    shape: Shape,
    cfg: RmsNormConfig,
    args: RmsNormForward<'_>,
) -> wgpu_norm::Result<()> {
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    RmsNormForwardOp::new(ctx, cfg)?.encode(&mut enc, shape, &args)
}

#[test]
fn empty_and_oversized_shapes() {
    let c = RmsNormConfig::default();
    for (rows, cols) in [(0, 4), (4, 0), (0, 0)] {
        let e = host::rms_norm_forward::<f32>(ctx(), &[], None, Shape::new(rows, cols), &c).unwrap_err();
        assert_eq!(e, NormError::EmptyShape { rows, cols });
    }
    let e = host::layer_norm_forward(
        ctx(),
        &[1.0],
        None,
        None,
        Shape::new(1 << 20, 1 << 13),
        &LayerNormConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(e, NormError::ShapeTooLarge { .. }), "{e}");
}

#[test]
fn mismatched_lengths() {
    let s = Shape::new(2, 3);
    let e = host::rms_norm_forward(ctx(), &[0.0; 5], None, s, &RmsNormConfig::default()).unwrap_err();
    assert_eq!(e, NormError::LengthMismatch { what: "x", expected: 6, actual: 5 });
    let e =
        host::rms_norm_forward(ctx(), &[0.0; 6], Some(&[1.0; 2]), s, &RmsNormConfig::default()).unwrap_err();
    assert_eq!(e, NormError::LengthMismatch { what: "gamma", expected: 3, actual: 2 });
    let e = host::layer_norm_backward(
        ctx(),
        &[0.0; 6],
        None,
        &[0.0; 6],
        Some(&[0.0; 3]),
        None,
        s,
        &LayerNormConfig::default(),
    )
    .unwrap_err();
    assert_eq!(e, NormError::LengthMismatch { what: "mean", expected: 2, actual: 3 });
}

#[test]
fn invalid_eps() {
    let s = Shape::new(1, 2);
    for eps in [-1e-6, f32::NAN, f32::INFINITY] {
        let e = host::layer_norm_forward(
            ctx(),
            &[1.0, 2.0],
            None,
            None,
            s,
            &LayerNormConfig { eps, ..Default::default() },
        )
        .unwrap_err();
        assert!(matches!(e, NormError::InvalidEps(_)), "{e}");
        let c = RmsNormConfig { eps, ..Default::default() };
        assert!(matches!(
            host::rms_norm_forward(ctx(), &[1.0, 2.0], None, s, &c),
            Err(NormError::InvalidEps(_))
        ));
    }
}

#[test]
fn buffer_too_small_unaligned_and_without_storage() {
    let c = ctx();
    let s = Shape::new(4, 64);
    let good = storage(c, 4 * 256);
    let small = storage(c, 4 * 255);
    fn args<'a>(x: Tensor<'a>, y: &'a wgpu::Buffer) -> RmsNormForward<'a> {
        RmsNormForward { residual: None, h: None, x, gamma: None, y: y.into(), rstd: None }
    }
    let e = encode_rms(c, s, RmsNormConfig::default(), args((&small).into(), &good)).unwrap_err();
    assert_eq!(e, NormError::BufferTooSmall { what: "x", offset: 0, end: 1024, size: 1020 });
    // In bounds at offset 0, out of bounds at offset 4.
    let e = encode_rms(c, s, RmsNormConfig::default(), args(Tensor::new(&good, 4), &good)).unwrap_err();
    assert!(matches!(e, NormError::BufferTooSmall { what: "x", offset: 4, .. }), "{e}");
    let e = encode_rms(c, s, RmsNormConfig::default(), args(Tensor::new(&good, 2), &good)).unwrap_err();
    assert_eq!(e, NormError::UnalignedOffset { what: "x", offset: 2, align: 4 });
    let uniform = buffer(c, 4 * 256, wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST);
    let e = encode_rms(c, s, RmsNormConfig::default(), args((&uniform).into(), &good)).unwrap_err();
    assert_eq!(e, NormError::MissingUsage { what: "x", usage: "STORAGE" });
}

#[test]
fn backward_without_workspace() {
    let c = ctx();
    let s = Shape::new(4, 64);
    let b = storage(c, 4 * 256);
    let g = storage(c, 4 * 64);
    let mut enc = c.device().create_command_encoder(&Default::default());
    let e = RmsNormBackwardOp::new(c, RmsNormConfig::default())
        .and_then(|op| {
            op.encode(
                &mut enc,
                s,
                &RmsNormBackward {
                    dh: None,
                    x: (&b).into(),
                    gamma: None,
                    dy: (&b).into(),
                    rstd: None,
                    dx: (&b).into(),
                    dgamma: Some((&g).into()),
                    workspace: None,
                },
            )
        })
        .unwrap_err();
    assert!(matches!(e, NormError::MissingArgument { what: "workspace", .. }), "{e}");
    let small_ws = storage(c, 4);
    let e = LayerNormBackwardOp::new(c, LayerNormConfig::default())
        .and_then(|op| {
            op.encode(
                &mut enc,
                s,
                &LayerNormBackward {
                    dh: None,
                    x: (&b).into(),
                    gamma: None,
                    dy: (&b).into(),
                    mean: None,
                    rstd: None,
                    dx: (&b).into(),
                    dgamma: None,
                    dbeta: Some((&g).into()),
                    workspace: Some((&small_ws).into()),
                },
            )
        })
        .unwrap_err();
    assert!(matches!(e, NormError::BufferTooSmall { what: "workspace", .. }), "{e}");
}

/// A tensor over the device's max_storage_buffer_binding_size is refused with an error that
/// names the limit (proved on a device of its own with the limit lowered to 1 MiB).
#[test]
fn binding_over_the_device_limit() {
    let adapter_limits = {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let a = pollster::block_on(instance.request_adapter(&Default::default())).expect("adapter");
        a.limits()
    };
    let limit = 1 << 20;
    let small = NormContext::with_options(ContextOptions {
        limits: Some(wgpu::Limits { max_storage_buffer_binding_size: limit, ..adapter_limits }),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(small.limits().max_storage_buffer_binding_size, limit);
    let shape = Shape::new(512, 1024); // 2 MiB of f32
    let x = vec![1.0; shape.elements()];
    let e = host::rms_norm_forward(&small, &x, None, shape, &RmsNormConfig::default()).unwrap_err();
    assert_eq!(e, NormError::BindingTooLarge { what: "x", bytes: 2 << 20, limit });
    assert!(e.to_string().contains("max_storage_buffer_binding_size of 1048576"), "{e}");
    // Half the rows fit.
    let half = Shape::new(256, 1024);
    host::rms_norm_forward(&small, &x[..half.elements()], None, half, &RmsNormConfig::default()).unwrap();
}

/// A destroyed buffer is a wgpu validation error, captured and returned.
#[test]
fn wgpu_validation_errors_are_returned() {
    let c = ctx();
    let gone = storage(c, 4 * 64);
    gone.destroy();
    let mine = storage(c, 4 * 64);
    let e = encode_rms(
        c,
        Shape::new(1, 64),
        RmsNormConfig::default(),
        RmsNormForward {
            residual: None,
            h: None,
            x: (&gone).into(),
            gamma: None,
            y: (&mine).into(),
            rstd: None,
        },
    )
    .unwrap_err();
    assert!(matches!(e, NormError::Wgpu { during: "bind group creation", .. }), "{e}");
}

/// Without a hardware GPU, asking for one is a NoAdapter error that says how to get lavapipe.
#[test]
fn no_adapter_is_an_error() {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let hardware = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
        .iter()
        .any(|a| a.get_info().device_type != wgpu::DeviceType::Cpu);
    let r =
        NormContext::with_options(ContextOptions { adapter: AdapterChoice::Hardware, ..Default::default() });
    if hardware {
        assert!(r.is_ok());
    } else {
        let e = r.err().expect("no hardware adapter here");
        assert!(matches!(e, NormError::NoAdapter { .. }), "{e}");
        assert!(e.to_string().contains("mesa-vulkan-drivers"), "{e}");
    }
}

/// On a CPU adapter, whose shader loops stop after 65,535 iterations, a row longer than the
/// kernels can walk within the tuning's loop bound is refused instead of half-written.
#[test]
fn rows_longer_than_the_loop_limit_are_refused() {
    let c = ctx();
    let t = c.tuning();
    let max = 4 * t.workgroup_size as usize * t.max_loop_trips as usize;
    assert_eq!(c.adapter_info().device_type, wgpu::DeviceType::Cpu, "lavapipe is the test adapter");
    let x = vec![1.0_f32; max + 2];
    let e =
        host::rms_norm_forward(c, &x, None, Shape::new(1, max + 2), &RmsNormConfig::default()).unwrap_err();
    assert!(matches!(e, NormError::RowTooLong { .. }), "{e}");
    let out = host::layer_norm_backward(
        c,
        &x[..max],
        None,
        &x[..max],
        None,
        None,
        Shape::new(1, max),
        &Default::default(),
    );
    let grads = out.unwrap();
    assert!(grads.dx.iter().all(|v| v.is_finite()));
}

/// Host slices hold contiguous rows: a row stride is refused, not silently dropped.
#[test]
fn host_calls_refuse_a_row_stride() {
    let s = Shape::new(2, 3).with_row_stride(4);
    let e = host::rms_norm_forward(ctx(), &[1.0_f32; 8], None, s, &RmsNormConfig::default()).unwrap_err();
    assert_eq!(e, NormError::HostRowStride { cols: 3, stride: 4 });
}

/// A device allowing fewer storage buffers per shader stage than a kernel binds is refused
/// up front with the limit named (a device of its own, asking for 4).
#[test]
fn too_few_storage_buffers_per_stage() {
    let limits = wgpu::Limits { max_storage_buffers_per_shader_stage: 4, ..ctx().limits().clone() };
    let small =
        NormContext::with_options(ContextOptions { limits: Some(limits), ..Default::default() }).unwrap();
    let e = host::layer_norm_forward(
        &small,
        &[1.0_f32; 8],
        None,
        None,
        Shape::new(2, 4),
        &LayerNormConfig::default(),
    );
    let want = NormError::DeviceLimit {
        what: "layer_norm_forward",
        limit: "max_storage_buffers_per_shader_stage",
        needed: 8,
        allowed: 4,
    };
    assert_eq!(e.unwrap_err(), want);
}

/// A host call whose tensor is over the device's max_buffer_size is refused before any
/// buffer is made (a device of its own, max_buffer_size lowered to 1 MiB).
#[test]
fn host_tensor_over_max_buffer_size() {
    let limit = 1 << 20;
    let limits = wgpu::Limits { max_buffer_size: limit, ..ctx().limits().clone() };
    let small =
        NormContext::with_options(ContextOptions { limits: Some(limits), ..Default::default() }).unwrap();
    let shape = Shape::new(512, 1024); // 2 MiB of f32
    let e = host::rms_norm_forward(
        &small,
        &vec![1.0_f32; shape.elements()],
        None,
        shape,
        &RmsNormConfig::default(),
    );
    let e = e.unwrap_err();
    assert_eq!(
        e,
        NormError::DeviceLimit { what: "x", limit: "max_buffer_size", needed: 2 << 20, allowed: limit }
    );
    assert!(e.to_string().contains("`max_buffer_size`, but this device allows 1048576"), "{e}");
}

/// Within WebGPU's default limits (8 storage buffers per stage, 16 KiB of workgroup memory,
/// 256 invocations, 128 MiB per binding, 256-byte offset alignment) every kernel runs and is
/// right: a device asking for `wgpu::Limits::default()` and no more.
#[test]
fn kernels_run_within_webgpu_default_limits() {
    let options = ContextOptions { limits: Some(wgpu::Limits::default()), ..Default::default() };
    let c = NormContext::with_options(options).unwrap();
    assert_eq!(c.limits().max_storage_buffers_per_shader_stage, 8);
    for (rows, cols) in [(3, 7), (5, 1001), (2, 4097)] {
        let shape = Shape::new(rows, cols);
        let mut r = common::rng(900 + cols as u64);
        let (x, dy) = (common::randn(&mut r, shape.elements()), common::randn(&mut r, shape.elements()));
        let cfg = LayerNormConfig::default();
        let want = wgpu_norm::reference::layer_norm_backward(&x, None, &dy, shape, &cfg).unwrap();
        let got = host::layer_norm_backward(&c, &x, None, &dy, None, None, shape, &cfg).unwrap();
        common::check("dx", &got.dx, &want.dx, common::DX, &format!("seed {}, {rows}x{cols}", 900 + cols));
        let rms = RmsNormConfig::default();
        let want = wgpu_norm::reference::rms_norm_forward(&x, None, shape, &rms).unwrap();
        let got = host::rms_norm_forward(&c, &x, None, shape, &rms).unwrap();
        common::check("y", &got.y, &want.y, common::FORWARD, &format!("seed {}, {rows}x{cols}", 900 + cols));
    }
}
