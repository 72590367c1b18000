//! The row mapping under launch settings other than the defaults: workgroups looping over
//! many row blocks, a single backward workgroup, small workgroups, one thread per element
//! and many elements per thread (rows streamed at mid sizes); streamed rows four and two per
//! trip, the last trip's blocks partly empty (131 rows), short rows streamed, rows held by
//! several subgroups, a thread per row without subgroup operations, and a backward trip's
//! sums walked the other way (together or one row after another). Each against the
//! reference; and backwards on a workspace full of NaN against a fresh one.

mod common;

use common::{Case, Input, Placed, check_layer, check_rms, input, randn, rng, stored, submit};
use wgpu_norm::{
    ContextOptions, DType, EpsPlacement, LayerNormBackward, LayerNormBackwardOp, LayerNormConfig,
    NormContext, Reduction, RmsNormBackward, RmsNormBackwardOp, RmsNormConfig, Shape, Tuning, host,
};

fn context(reduction: Reduction, edit: impl Fn(&mut Tuning)) -> NormContext {
    let base = common::ctx();
    let mut tuning = *base.tuning();
    edit(&mut tuning);
    base.sibling(ContextOptions { reduction, tuning: Some(tuning), ..Default::default() })
}

/// Shapes that take each row mapping: many short rows, a tile, streamed rows (one trip, the
/// last trip's blocks partly empty, aligned or not), a row split over workgroups, one element.
const EVERY_MAPPING: &[(usize, usize)] =
    &[(70_000, 3), (37, 1000), (5, 4097), (3, 20_000), (1, 1), (131, 4097), (131, 4096)];
/// The shapes whose rows are streamed: the launches a streamed walk's edit changes.
const STREAMED: &[(usize, usize)] = &[(5, 4097), (3, 20_000), (131, 4097), (131, 4096)];

/// A launch edit against the reference on `reduction`'s path, over `shapes`.
fn check_launch(reduction: Reduction, edit: impl Fn(&mut Tuning), name: &str, shapes: &[(usize, usize)]) {
    let ctx = context(reduction, edit);
    let label = format!("{name}, {reduction:?}");
    for (i, &(rows, cols)) in shapes.iter().enumerate() {
        let case = Case::new(rows, cols, Input::Shifted, 1e-5, 900 + i as u64);
        check_rms(&ctx, &label, &case, EpsPlacement::InsideSqrt);
        check_layer(&ctx, &label, &case);
    }
}

/// A test per launch edit and reduction path, so that the harness runs them side by side.
/// Their contexts are siblings of the test context: a pipeline two edits share (most
/// forwards, under an edit of the backward) is compiled once.
macro_rules! launch_tests {
    ($($(#[$doc:meta])* $name:ident: $edit:expr, $label:expr, $shapes:expr;)*) => {
        mod default_reduction {
            use super::*;
            $($(#[$doc])* #[test] fn $name() { check_launch(Reduction::Auto, $edit, $label, $shapes); })*
        }
        mod workgroup_reduction {
            use super::*;
            $($(#[$doc])* #[test] fn $name() { check_launch(Reduction::Workgroup, $edit, $label, $shapes); })*
        }
    };
}

launch_tests! {
    grid_stride: |t| (t.max_forward_groups, t.backward_groups) = (3, 2), "grid-stride", EVERY_MAPPING;
    one_backward_group: |t| t.max_partials = 1, "one backward group", EVERY_MAPPING;
    workgroup_64: |t| t.workgroup_size = 64, "workgroup 64", EVERY_MAPPING;
    one_element_per_thread:
        |t| (t.forward_elements_per_thread, t.backward_elements_per_thread) = (1, 1),
        "one element per thread",
        EVERY_MAPPING;
    many_elements_per_thread:
        |t| (t.forward_elements_per_thread, t.backward_elements_per_thread) = (64, 64),
        "64 elements per thread",
        EVERY_MAPPING;
    /// Short rows streamed (a tile of one quad, as SwiftShader's): RMSNorm's forward walks
    /// them in pairs, longer ones four at a time. (Rows past the default tile stream already.)
    streamed_short_rows:
        |t| t.register_quads = 1,
        "streamed short rows",
        &[(70_000, 3), (37, 1000), (1, 1)];
    /// Rows held in the register tile by several subgroups (Tuning::max_forward_tile_row_threads
    /// and max_backward_tile_row_threads; SwiftShader's tile given 32 quads too), one small
    /// workgroup each way so that its slots walk enough rows: whole tiles, and a row whose
    /// last quads are partly past it.
    wide_tile_rows:
        |t| {
            (t.max_forward_groups, t.backward_groups, t.workgroup_size, t.register_quads) = (1, 1, 64, 32);
            (t.max_forward_tile_row_threads, t.max_backward_tile_row_threads) =
                (4 * t.max_row_threads, 8 * t.max_row_threads);
        },
        "rows held by several subgroups",
        &[(131, 2048), (131, 4096), (70, 3001), (70, 8192)];
    /// A thread per row from one row per workgroup of grids of two and three for rows of up
    /// to 1000 elements, and from two for longer rows (Tuning::single_thread_rows_for): where
    /// rows are reduced through workgroup memory, every short row but a lone one reduces
    /// nothing, and 5 long rows take one thread forward (from 4) but not backward (from 6);
    /// rows held in the tile, streamed, and too long for one thread's loop trips.
    single_thread_rows:
        |t| {
            (t.single_thread_rows, t.single_thread_short_cols, t.single_thread_short_rows) = (2, 1000, 1);
            (t.max_forward_groups, t.backward_groups) = (2, 3);
        },
        "a thread per row",
        &[(70_000, 3), (37, 100), (37, 1000), (5, 1001), (131, 4097), (7, 20_000), (1, 1)];
    /// The adapter's other way of walking a backward trip's sums (Tuning::joint_walks).
    backward_walks_flipped:
        |t| t.joint_walks = !t.joint_walks,
        "backward sums walked the other way",
        STREAMED;
    /// The adapter's other way of leaving a tile backward's partial sums
    /// (Tuning::group_partials), on a grid of three workgroups whose slots walk several rows
    /// each, the last row block partly past the rows.
    group_partials_flipped:
        |t| (t.group_partials, t.backward_groups) = (!t.group_partials, 3),
        "tile partial sums left the other way",
        &[(70_000, 3), (1001, 128), (131, 768), (37, 1000), (9, 64)];
}

/// Each slot's partial sums are written before they are read: on a workspace full of NaN
/// (what an engine's reused workspace may hold), the backwards give the same bits as on a
/// fresh one. A backward grid of two workgroups makes slots walk several trips, and on 131
/// and 200 rows leaves slots of the last workgroup past the last row (they write zeros);
/// tile rows (1000) leave a row of partial sums per slot and per workgroup.
#[test]
fn dirty_workspace() {
    for group_partials in [false, true] {
        dirty_workspace_with(group_partials);
    }
}

fn dirty_workspace_with(group_partials: bool) {
    let c = context(Reduction::Auto, |t| (t.backward_groups, t.group_partials) = (2, group_partials));
    for (i, (rows, cols)) in [(131, 4097), (200, 4096), (200, 1000), (9, 4096)].into_iter().enumerate() {
        let shape = Shape::new(rows, cols);
        let mut r = rng(950 + i as u64);
        let x = input(&mut r, Input::Shifted, shape);
        let dy = randn(&mut r, shape.elements());
        let g = randn(&mut r, cols);
        let context = format!("{shape:?}, seed {}, group partials {group_partials}", 950 + i);
        let place = |v: &[f32]| Placed::new(&c, Some(&stored(v, DType::F32)), v.len(), DType::F32, 0);
        let (xb, dyb, gb) = (place(&x), place(&dy), place(&g));
        let poisoned = |len: usize| Placed::new(&c, None, len, DType::F32, 0);
        let bits = |v: &[f64]| v.iter().map(|&e| (e as f32).to_bits()).collect::<Vec<_>>();
        let same = |what: &str, gpu: &Placed, want: &[f32]| {
            let got = bits(&gpu.read(&c, what, &context));
            let want: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
            assert!(got == want, "{what} differs on a dirty workspace ({context})");
        };

        let rms = RmsNormConfig::default();
        let fwd = host::rms_norm_forward(&c, &x, Some(&g), shape, &rms).unwrap();
        let want = host::rms_norm_backward(&c, &x, Some(&g), &dy, Some(&fwd.rstd), shape, &rms).unwrap();
        let op = RmsNormBackwardOp::new(&c, rms).unwrap();
        let (rb, dx, dgamma) = (place(&fwd.rstd), poisoned(shape.elements()), poisoned(cols));
        let ws = poisoned(op.workspace_size(shape).unwrap() as usize / 4);
        let args = RmsNormBackward {
            x: xb.tensor(),
            gamma: Some(gb.tensor()),
            dy: dyb.tensor(),
            dh: None,
            rstd: Some(rb.tensor()),
            dx: dx.tensor(),
            dgamma: Some(dgamma.tensor()),
            workspace: Some(ws.tensor()),
        };
        submit(&c, |enc| op.encode(enc, shape, &args).expect(&context));
        same("rms_norm dx", &dx, &want.dx);
        same("rms_norm dgamma", &dgamma, &want.dgamma);

        let ln = LayerNormConfig::default();
        let fwd = host::layer_norm_forward(&c, &x, Some(&g), None, shape, &ln).unwrap();
        let want =
            host::layer_norm_backward(&c, &x, Some(&g), &dy, Some(&fwd.mean), Some(&fwd.rstd), shape, &ln)
                .unwrap();
        let op = LayerNormBackwardOp::new(&c, ln).unwrap();
        let (mb, rb) = (place(&fwd.mean), place(&fwd.rstd));
        let (dx, dgamma, dbeta) = (poisoned(shape.elements()), poisoned(cols), poisoned(cols));
        let ws = poisoned(op.workspace_size(shape).unwrap() as usize / 4);
        let args = LayerNormBackward {
            x: xb.tensor(),
            gamma: Some(gb.tensor()),
            dy: dyb.tensor(),
            dh: None,
            mean: Some(mb.tensor()),
            rstd: Some(rb.tensor()),
            dx: dx.tensor(),
            dgamma: Some(dgamma.tensor()),
            dbeta: Some(dbeta.tensor()),
            workspace: Some(ws.tensor()),
        };
        submit(&c, |enc| op.encode(enc, shape, &args).expect(&context));
        same("layer_norm dx", &dx, &want.dx);
        same("layer_norm dgamma", &dgamma, &want.dgamma);
        same("layer_norm dbeta", &dbeta, &want.dbeta);
    }
}
