//! Random shapes, seeds, inputs and settings against the reference.

mod common;

use common::{Case, Input, check_layer, check_rms, ctx, ctx_workgroup};
use proptest::prelude::*;
use wgpu_norm::{EpsPlacement, NormContext, Shape};

/// A random case: its shape, seed, input, eps, whether the statistics are saved and the
/// affine tensors given, and the reduction path (workgroup memory or subgroups).
fn random_case() -> impl Strategy<Value = (Case, bool)> {
    (
        1usize..300,
        1usize..5000,
        any::<u64>(),
        0usize..4,
        prop::sample::select(vec![1e-12f32, 1e-6, 1e-5, 0.1, 1.0]),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(rows, cols, seed, input, eps, saved, affine, workgroup)| {
            let input = [Input::Randn, Input::Shifted, Input::LargeMean, Input::Small][input];
            (Case { shape: Shape::new(rows, cols), input, eps, seed, saved, affine }, workgroup)
        })
}

fn context(workgroup: bool) -> (&'static str, &'static NormContext) {
    if workgroup { ("workgroup", ctx_workgroup()) } else { ("subgroup", ctx()) }
}

// One test per norm, so that the test harness runs them side by side.
proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn rms_norm_random_shapes_match_the_reference((case, workgroup) in random_case(), outside in any::<bool>()) {
        let (label, ctx) = context(workgroup);
        let placement = if outside { EpsPlacement::OutsideSqrt } else { EpsPlacement::InsideSqrt };
        check_rms(ctx, label, &case, placement);
    }

    #[test]
    fn layer_norm_random_shapes_match_the_reference((case, workgroup) in random_case()) {
        let (label, ctx) = context(workgroup);
        check_layer(ctx, label, &case);
    }
}
