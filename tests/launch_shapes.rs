//! The row mapping under launch settings other than the defaults: workgroups looping over
//! many row blocks, a single backward workgroup, small workgroups, one thread per element
//! and many elements per thread (rows streamed at mid sizes); streamed rows in pairs, the
//! last pair's second block part empty (131 rows). Each against the reference.

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

#[test]
fn non_default_launches_match_the_reference() {
    type Edit = fn(&mut Tuning);
    let edits: [(&str, Edit); 5] = [
        ("grid-stride", |t| {
            t.max_forward_groups = 3;
            t.backward_groups = 2;
        }),
        ("one backward group", |t| t.max_partials = 1),
        ("workgroup 64", |t| t.workgroup_size = 64),
        ("one element per thread", |t| t.elements_per_thread = 1),
        ("64 elements per thread", |t| t.elements_per_thread = 64),
    ];
    let shapes = [(70_000, 3), (37, 1000), (5, 4097), (3, 20_000), (1, 1), (131, 4097), (131, 4096)];
    for reduction in [Reduction::Auto, Reduction::Workgroup] {
        for (name, edit) in edits {
            let ctx = context(reduction, edit);
            let label = format!("{name}, {reduction:?}");
            for (i, &(rows, cols)) in shapes.iter().enumerate() {
                let case = Case::new(rows, cols, Input::Shifted, 1e-5, 900 + i as u64);
                check_rms(&ctx, &label, &case, EpsPlacement::InsideSqrt);
                check_layer(&ctx, &label, &case);
            }
        }
    }
}
