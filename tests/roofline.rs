//! The benchmark's yardsticks: the stream copy copies exactly, the byte model counts what
//! each kernel moves.

mod common;

use common::{ctx, randn, rng};
use wgpu::util::DeviceExt as _;
use wgpu_norm::{
    DType, Direction, LayerNormBackwardOp, LayerNormConfig, Norm, NormError, RmsNormBackwardOp,
    RmsNormConfig, Shape, StreamCopy, StreamCopyOp,
};

#[test]
fn stream_copy_copies_every_element() {
    let c = ctx();
    for (i, &(rows, cols)) in [(1, 1), (3, 4097), (70_000, 3), (2, 65536)].iter().enumerate() {
        let shape = Shape::new(rows, cols);
        let x = randn(&mut rng(i as u64), shape.elements());
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let src = c.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&x),
            usage,
        });
        let dst = c.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&vec![f32::NAN; x.len()]),
            usage,
        });
        let mut enc = c.device().create_command_encoder(&Default::default());
        StreamCopyOp::new(c, DType::F32)
            .unwrap()
            .encode(&mut enc, shape, &StreamCopy { x: (&src).into(), y: (&dst).into() })
            .unwrap();
        c.queue().submit([enc.finish()]);
        let got: Vec<f32> = bytemuck::pod_collect_to_vec(&common::read_bytes(c.device(), c.queue(), &dst));
        assert!(got.iter().zip(&x).all(|(a, b)| a.to_bits() == b.to_bits()), "{shape:?}");
    }
}

#[test]
fn byte_model() {
    let c = ctx();
    let s = Shape::new(32, 4096);
    let n = 32 * 4096;
    assert_eq!(Norm::RmsNorm.bytes_moved(c, Direction::Forward, s).unwrap(), 4 * (2 * n + 4096));
    assert_eq!(Norm::LayerNorm.bytes_moved(c, Direction::Forward, s).unwrap(), 4 * (2 * n + 2 * 4096));
    // Backward: x, dy, dx; gamma; stats per row; partial sums written and read; the gradients.
    let rms_ws = RmsNormBackwardOp::new(c, RmsNormConfig::default()).unwrap().workspace_size(s).unwrap();
    let ln_ws = LayerNormBackwardOp::new(c, LayerNormConfig::default()).unwrap().workspace_size(s).unwrap();
    // Whole rows of partial sums: dgamma's, and for LayerNorm dbeta's as many again (the two
    // backwards may take different launches, so different numbers of rows).
    assert!(rms_ws > 0 && rms_ws.is_multiple_of(4 * 4096), "{rms_ws}");
    assert!(ln_ws > 0 && ln_ws.is_multiple_of(2 * 4 * 4096), "{ln_ws}");
    assert_eq!(
        Norm::RmsNorm.bytes_moved(c, Direction::Backward, s).unwrap(),
        4 * (3 * n + 4096 + 32 + 4096) + 2 * rms_ws
    );
    assert_eq!(
        Norm::LayerNorm.bytes_moved(c, Direction::Backward, s).unwrap(),
        4 * (3 * n + 4096 + 2 * 32 + 2 * 4096) + 2 * ln_ws
    );
    assert!(matches!(
        Norm::RmsNorm.bytes_moved(c, Direction::Forward, Shape::new(0, 3)),
        Err(NormError::EmptyShape { .. })
    ));
}
