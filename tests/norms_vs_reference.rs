//! Every kernel against the f64 reference on the real adapter, over the hidden sizes, row
//! counts, input distributions and eps values that break toy kernels, on both reduction
//! paths (subgroup and workgroup memory).

mod common;

use common::{Case, Input, check_layer, check_rms, contexts};
use wgpu_norm::EpsPlacement;

/// On every launch some of these rows are longer than the registers hold (2 x threads per
/// row x register pairs elements) and take the streaming path.
const HIDDEN: [usize; 23] = [
    1, 2, 3, 7, 31, 32, 33, 127, 128, 129, 255, 256, 257, 1000, 1023, 1024, 1025, 4096, 4097, 8193, 16384,
    65536, 131072,
];
const EPS: [f32; 5] = [1e-12, 1e-6, 1e-5, 0.1, 1.0];

fn hidden_cases() -> impl Iterator<Item = Case> {
    HIDDEN.iter().enumerate().map(|(i, &cols)| {
        let input = [Input::Randn, Input::Shifted, Input::LargeMean][i % 3];
        let mut c = Case::new(3, cols, input, EPS[i % EPS.len()], 1000 + i as u64);
        c.saved = i % 2 == 0;
        c.affine = i % 4 != 3;
        c
    })
}

#[test]
fn rms_norm_every_hidden_size() {
    for (_, c) in contexts() {
        let t = c.tuning();
        assert!(4 * t.max_row_threads * t.register_quads < 65536, "{t:?}");
    }
    for (label, ctx) in contexts() {
        for (i, case) in hidden_cases().enumerate() {
            let placement = [EpsPlacement::InsideSqrt, EpsPlacement::OutsideSqrt][i % 2];
            check_rms(ctx, label, &case, placement);
        }
    }
}

#[test]
fn layer_norm_every_hidden_size() {
    for (label, ctx) in contexts() {
        for case in hidden_cases() {
            check_layer(ctx, label, &case);
        }
    }
}

/// Every input distribution with every eps, on a row held in registers and a streamed one.
fn input_cases() -> impl Iterator<Item = Case> {
    let mut seed = 5000;
    [(5, 1000), (2, 16384)].into_iter().flat_map(move |(rows, cols)| {
        Input::ALL.into_iter().flat_map(move |input| {
            EPS.into_iter().map(move |eps| {
                seed += 1;
                let mut c = Case::new(rows, cols, input, eps, seed + cols as u64);
                c.saved = seed % 2 == 0;
                c
            })
        })
    })
}

#[test]
fn rms_norm_inputs_and_eps() {
    for (label, ctx) in contexts() {
        for case in input_cases() {
            for placement in [EpsPlacement::InsideSqrt, EpsPlacement::OutsideSqrt] {
                check_rms(ctx, label, &case, placement);
            }
        }
    }
}

#[test]
fn layer_norm_inputs_and_eps() {
    for (label, ctx) in contexts() {
        for case in input_cases() {
            check_layer(ctx, label, &case);
        }
    }
}

/// One row, a few, counts that are no multiple of any block size, thousands, and more rows
/// than one dispatch dimension holds (65,535), up to millions.
#[test]
fn row_counts() {
    let shapes =
        [(1, 4096), (2, 1000), (37, 257), (199, 33), (4096, 256), (70_000, 3), (66_000, 1), (2_000_000, 2)];
    for (label, ctx) in contexts() {
        for (i, &(rows, cols)) in shapes.iter().enumerate() {
            let case = Case::new(rows, cols, Input::Shifted, 1e-5, 7000 + i as u64);
            check_rms(ctx, label, &case, EpsPlacement::InsideSqrt);
            check_layer(ctx, label, &case);
        }
    }
}

/// eps 0 (any row not all zeros has a finite rstd) where rows leave slots past the last row:
/// a slot's last trips there have no elements and an rstd of 1 / sqrt(0), which must add
/// nothing to dgamma and dbeta. Short rows share a subgroup and long ones take few
/// workgroups, so each launch has such slots.
#[test]
fn eps_zero_with_slots_past_the_last_row() {
    let shapes = [(5, 16), (9, 64), (5, 4096)];
    for (label, ctx) in contexts() {
        for (i, &(rows, cols)) in shapes.iter().enumerate() {
            let placement = [EpsPlacement::InsideSqrt, EpsPlacement::OutsideSqrt][i % 2];
            for saved in [true, false] {
                let mut case = Case::new(rows, cols, Input::Randn, 0.0, 7100 + i as u64);
                case.saved = saved;
                check_rms(ctx, label, &case, placement);
                check_layer(ctx, label, &case);
            }
        }
    }
}
