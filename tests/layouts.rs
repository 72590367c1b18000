//! The two memory layouts move the same values: a call whose tensors are quad-aligned runs
//! with one vector access per quad, the same call with `vector_access` off with four scalar
//! ones, and every output agrees bit for bit, in every dtype, on both sides of the register
//! tile's edge. (Both are also checked against the reference by the other tests: aligned
//! shapes take the vector layout by default.)

mod common;

use common::{Case, Input, check_layer, check_rms, ctx, input, randn, rng};
use wgpu_norm::half::{bf16, f16};
use wgpu_norm::host;
use wgpu_norm::{ContextOptions, Element, EpsPlacement, LayerNormConfig, NormContext, RmsNormConfig, Shape};

fn scalar_ctx() -> NormContext {
    let base = ctx();
    let tuning = wgpu_norm::Tuning { vector_access: false, ..*base.tuning() };
    base.sibling(ContextOptions { tuning: Some(tuning), ..Default::default() })
}

/// Hidden sizes around the CPU tile's edge (4 * 8 threads * 32 quads = 1024 on lavapipe), one
/// that streams, and short rows whose quads are partly past the tile.
fn shapes() -> Vec<Shape> {
    let edge = 4 * ctx().tuning().max_row_threads as usize * ctx().tuning().register_quads as usize;
    vec![
        Shape::new(37, 4),
        Shape::new(19, 100),
        Shape::new(9, edge),
        Shape::new(9, edge + 4),
        Shape::new(3, 4096),
    ]
}

fn bits<T: bytemuck::Pod>(v: &[T]) -> &[u8] {
    bytemuck::cast_slice(v)
}

fn same<T: Element>(scalar: &NormContext, shape: Shape, seed: u64) {
    let vector = ctx();
    let mut r = rng(seed);
    let conv = |v: Vec<f32>| v.into_iter().map(T::from_f32).collect::<Vec<T>>();
    let x = conv(input(&mut r, Input::Shifted, shape));
    let dy = conv(randn(&mut r, shape.elements()));
    let g = conv(randn(&mut r, shape.cols));
    let b = conv(randn(&mut r, shape.cols));
    let what = format!("{shape:?} {:?}", T::DTYPE);
    let rms = RmsNormConfig::default();
    let a = host::rms_norm_forward(vector, &x, Some(&g), shape, &rms).unwrap();
    let s = host::rms_norm_forward(scalar, &x, Some(&g), shape, &rms).unwrap();
    assert!(bits(&a.y) == bits(&s.y) && bits(&a.rstd) == bits(&s.rstd), "rms_norm forward: {what}");
    let a = host::rms_norm_backward(vector, &x, Some(&g), &dy, None, shape, &rms).unwrap();
    let s = host::rms_norm_backward(scalar, &x, Some(&g), &dy, None, shape, &rms).unwrap();
    assert!(bits(&a.dx) == bits(&s.dx) && bits(&a.dgamma) == bits(&s.dgamma), "rms_norm backward: {what}");
    let ln = LayerNormConfig::default();
    let a = host::layer_norm_forward(vector, &x, Some(&g), Some(&b), shape, &ln).unwrap();
    let s = host::layer_norm_forward(scalar, &x, Some(&g), Some(&b), shape, &ln).unwrap();
    let stats = bits(&a.mean) == bits(&s.mean) && bits(&a.rstd) == bits(&s.rstd);
    assert!(bits(&a.y) == bits(&s.y) && stats, "layer_norm forward: {what}");
    let a = host::layer_norm_backward(vector, &x, Some(&g), &dy, None, None, shape, &ln).unwrap();
    let s = host::layer_norm_backward(scalar, &x, Some(&g), &dy, None, None, shape, &ln).unwrap();
    let params = bits(&a.dgamma) == bits(&s.dgamma) && bits(&a.dbeta) == bits(&s.dbeta);
    assert!(bits(&a.dx) == bits(&s.dx) && params, "layer_norm backward: {what}");
}

#[test]
fn vector_and_scalar_layouts_agree_bit_for_bit() {
    let scalar = scalar_ctx();
    for (i, shape) in shapes().into_iter().enumerate() {
        let seed = 700 + i as u64;
        same::<f32>(&scalar, shape, seed);
        same::<f16>(&scalar, shape, seed);
        same::<bf16>(&scalar, shape, seed);
    }
}

#[test]
fn both_sides_of_the_register_tile_match_the_reference() {
    let scalar = scalar_ctx();
    for (i, shape) in shapes().into_iter().enumerate() {
        let mut case = Case::new(shape.rows, shape.cols, Input::LargeMean, 1e-5, 800 + i as u64);
        case.saved = i % 2 == 0;
        for (label, c) in [("vector", ctx()), ("scalar", &scalar)] {
            check_rms(c, label, &case, EpsPlacement::InsideSqrt);
            check_layer(c, label, &case);
        }
    }
}
