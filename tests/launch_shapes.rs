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

/// Each launch edit against the reference on both reduction paths, over shapes that take
/// each of its row mappings.
fn check_launch(edit: impl Fn(&mut Tuning) + Copy, name: &str) {
    let shapes = [(70_000, 3), (37, 1000), (5, 4097), (3, 20_000), (1, 1), (131, 4097), (131, 4096)];
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
    );
}

#[test]
fn one_backward_group() {
    check_launch(|t| t.max_partials = 1, "one backward group");
}

#[test]
fn workgroup_64() {
    check_launch(|t| t.workgroup_size = 64, "workgroup 64");
}

#[test]
fn one_element_per_thread() {
    check_launch(|t| t.elements_per_thread = 1, "one element per thread");
}

#[test]
fn many_elements_per_thread() {
    check_launch(|t| t.elements_per_thread = 64, "64 elements per thread");
}

/// Short rows streamed (a tile of one quad, as SwiftShader's): RMSNorm's forward walks them
/// in pairs, longer ones four at a time.
#[test]
fn streamed_short_rows() {
    check_launch(|t| t.register_quads = 1, "streamed short rows");
}

/// The adapter's other way of walking a backward trip's sums (Tuning::joint_walks).
#[test]
fn backward_walks_flipped() {
    check_launch(|t| t.joint_walks = !t.joint_walks, "backward sums walked the other way");
}
