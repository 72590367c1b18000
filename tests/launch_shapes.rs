//! The row mapping under launch settings other than the defaults: workgroups looping over
//! many row blocks, a single backward workgroup, small workgroups, one thread per element
//! and many elements per thread (rows streamed at mid sizes); streamed rows four and two per
//! trip, the last trip's blocks partly empty (131 rows), short rows streamed, and a
//! backward trip's sums walked the other way (together or one row after another). Each
//! against the reference.

mod common;

use common::{Case, Input, check_layer, check_rms};
use wgpu_norm::{ContextOptions, EpsPlacement, NormContext, Reduction, Tuning};

fn context(reduction: Reduction, edit: impl Fn(&mut Tuning)) -> NormContext {
    let base = common::ctx();
    let mut tuning = *base.tuning();
    edit(&mut tuning);
    NormContext::from_device(
        base.device().clone(),
        base.queue().clone(),
        ContextOptions { reduction, tuning: Some(tuning), ..Default::default() },
    )
}

/// Shapes that take each row mapping: many short rows, a tile, streamed rows (one trip, the
/// last trip's blocks partly empty, aligned or not), a row split over workgroups, one element.
const EVERY_MAPPING: &[(usize, usize)] =
    &[(70_000, 3), (37, 1000), (5, 4097), (3, 20_000), (1, 1), (131, 4097), (131, 4096)];
/// The shapes whose rows are streamed: the launches a streamed walk's edit changes.
const STREAMED: &[(usize, usize)] = &[(5, 4097), (3, 20_000), (131, 4097), (131, 4096)];

/// Each launch edit against the reference on both reduction paths, over `shapes`.
fn check_launch(edit: impl Fn(&mut Tuning) + Copy, name: &str, shapes: &[(usize, usize)]) {
    for reduction in [Reduction::Auto, Reduction::Workgroup] {
        let ctx = context(reduction, edit);
        let label = format!("{name}, {reduction:?}");
        for (i, &(rows, cols)) in shapes.iter().enumerate() {
            let case = Case::new(rows, cols, Input::Shifted, 1e-5, 900 + i as u64);
            check_rms(&ctx, &label, &case, EpsPlacement::InsideSqrt);
            check_layer(&ctx, &label, &case);
        }
    }
}

// One test per launch, so that the test harness runs them side by side.

#[test]
fn grid_stride() {
    check_launch(
        |t| {
            t.max_forward_groups = 3;
            t.backward_groups = 2;
        },
        "grid-stride",
        EVERY_MAPPING,
    );
}

#[test]
fn one_backward_group() {
    check_launch(|t| t.max_partials = 1, "one backward group", EVERY_MAPPING);
}

#[test]
fn workgroup_64() {
    check_launch(|t| t.workgroup_size = 64, "workgroup 64", EVERY_MAPPING);
}

#[test]
fn one_element_per_thread() {
    check_launch(|t| t.elements_per_thread = 1, "one element per thread", EVERY_MAPPING);
}

#[test]
fn many_elements_per_thread() {
    check_launch(|t| t.elements_per_thread = 64, "64 elements per thread", EVERY_MAPPING);
}

/// Short rows streamed (a tile of one quad, as SwiftShader's): RMSNorm's forward walks them
/// in pairs, longer ones four at a time. (Rows past the default tile stream already.)
#[test]
fn streamed_short_rows() {
    check_launch(|t| t.register_quads = 1, "streamed short rows", &[(70_000, 3), (37, 1000), (1, 1)]);
}

/// The adapter's other way of walking a backward trip's sums (Tuning::joint_walks).
#[test]
fn backward_walks_flipped() {
    check_launch(|t| t.joint_walks = !t.joint_walks, "backward sums walked the other way", STREAMED);
}
