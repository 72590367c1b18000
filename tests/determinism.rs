//! Two runs on the same input agree bit for bit: dgamma/dbeta are summed in a fixed order
//! (per-workgroup partial rows, then a column pass), never with atomics.

mod common;

use common::{contexts, randn, rng};
use wgpu_norm::host;
use wgpu_norm::{LayerNormConfig, RmsNormConfig, Shape};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

#[test]
fn backward_is_bitwise_deterministic() {
    for (label, ctx) in contexts() {
        for (seed, (rows, cols)) in
            [(4096, 256), (3000, 1000), (64, 16384), (70_000, 3)].into_iter().enumerate()
        {
            let shape = Shape::new(rows, cols);
            let mut r = rng(seed as u64);
            let (x, dy, g) =
                (randn(&mut r, shape.elements()), randn(&mut r, shape.elements()), randn(&mut r, cols));
            let context = format!("{label}, seed {seed}, {shape:?}");
            let rms = RmsNormConfig::default();
            let a = host::rms_norm_backward(ctx, &x, Some(&g), &dy, None, shape, &rms).unwrap();
            let b = host::rms_norm_backward(ctx, &x, Some(&g), &dy, None, shape, &rms).unwrap();
            assert_eq!(bits(&a.dx), bits(&b.dx), "rms dx, {context}");
            assert_eq!(bits(&a.dgamma), bits(&b.dgamma), "rms dgamma, {context}");
            let ln = LayerNormConfig::default();
            let a = host::layer_norm_backward(ctx, &x, Some(&g), &dy, None, None, shape, &ln).unwrap();
            let b = host::layer_norm_backward(ctx, &x, Some(&g), &dy, None, None, shape, &ln).unwrap();
            assert_eq!(bits(&a.dx), bits(&b.dx), "ln dx, {context}");
            assert_eq!(bits(&a.dgamma), bits(&b.dgamma), "ln dgamma, {context}");
            assert_eq!(bits(&a.dbeta), bits(&b.dbeta), "ln dbeta, {context}");
        }
    }
}
