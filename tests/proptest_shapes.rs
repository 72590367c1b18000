//! Random shapes, seeds, inputs and settings against the reference.

mod common;

use common::{Case, Input, check_layer, check_rms, ctx, ctx_workgroup};
use proptest::prelude::*;
use wgpu_norm::{EpsPlacement, Shape};

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_shapes_match_the_reference(
        rows in 1usize..300,
        cols in 1usize..5000,
        seed in any::<u64>(),
        input in 0usize..4,
        eps in prop::sample::select(vec![1e-12f32, 1e-6, 1e-5, 0.1, 1.0]),
        outside in any::<bool>(),
        saved in any::<bool>(),
        affine in any::<bool>(),
        workgroup in any::<bool>(),
    ) {
        let input = [Input::Randn, Input::Shifted, Input::LargeMean, Input::Small][input];
        let case = Case { shape: Shape::new(rows, cols), input, eps, seed, saved, affine };
        let (label, ctx) = if workgroup { ("workgroup", ctx_workgroup()) } else { ("subgroup", ctx()) };
        let placement = if outside { EpsPlacement::OutsideSqrt } else { EpsPlacement::InsideSqrt };
        check_rms(ctx, label, &case, placement);
        check_layer(ctx, label, &case);
    }
}
