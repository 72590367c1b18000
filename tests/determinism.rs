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

/// The kernels run without wgpu's bounds checks (`ContextOptions::checked_shaders` is off by
/// default). A check that clamped or skipped an access would change a result, so the checked
/// build must agree bit for bit, on rows in the register tile, streamed rows with ragged
/// tails, hidden size 3, and a row split over workgroups.
#[test]
fn checked_shaders_agree_bit_for_bit() {
    let base = common::ctx();
    let options = wgpu_norm::ContextOptions { checked_shaders: true, ..Default::default() };
    let checked = wgpu_norm::NormContext::from_device(base.device().clone(), base.queue().clone(), options);
    for (seed, (rows, cols)) in [(64, 768), (5, 4097), (300, 3), (1, 16384)].into_iter().enumerate() {
        let shape = Shape::new(rows, cols);
        let mut r = rng(100 + seed as u64);
        let (x, dy, g, b) = (
            randn(&mut r, shape.elements()),
            randn(&mut r, shape.elements()),
            randn(&mut r, cols),
            randn(&mut r, cols),
        );
        let context = format!("seed {}, {shape:?}", 100 + seed);
        let rms = RmsNormConfig::default();
        let [u, c] =
            [base, &checked].map(|ctx| host::rms_norm_forward(ctx, &x, Some(&g), shape, &rms).unwrap());
        assert_eq!((bits(&u.y), bits(&u.rstd)), (bits(&c.y), bits(&c.rstd)), "rms forward, {context}");
        let [u, c] = [base, &checked]
            .map(|ctx| host::rms_norm_backward(ctx, &x, Some(&g), &dy, None, shape, &rms).unwrap());
        assert_eq!((bits(&u.dx), bits(&u.dgamma)), (bits(&c.dx), bits(&c.dgamma)), "rms backward, {context}");
        let ln = LayerNormConfig::default();
        let [u, c] = [base, &checked]
            .map(|ctx| host::layer_norm_forward(ctx, &x, Some(&g), Some(&b), shape, &ln).unwrap());
        assert_eq!(
            (bits(&u.y), bits(&u.mean), bits(&u.rstd)),
            (bits(&c.y), bits(&c.mean), bits(&c.rstd)),
            "ln forward, {context}"
        );
        let [u, c] = [base, &checked]
            .map(|ctx| host::layer_norm_backward(ctx, &x, Some(&g), &dy, None, None, shape, &ln).unwrap());
        assert_eq!(
            (bits(&u.dx), bits(&u.dgamma), bits(&u.dbeta)),
            (bits(&c.dx), bits(&c.dgamma), bits(&c.dbeta)),
            "ln backward, {context}"
        );
    }
}
