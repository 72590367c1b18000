//! Rows split over several workgroups (`Tuning::split_chunk`): the forward of few long rows,
//! RMSNorm's and LayerNorm's, each row's segments summed in one dispatch and finished in a
//! second. Forced on the test adapter with short segments, and as the GPU launch splits them;
//! each output poisoned, between sentinels, and checked against the f64 reference.

mod common;

use common::{Bar, FORWARD, Input, Norm, Placed, check_stored, input, randn, rng, stored, submit};
use wgpu_norm::{
    ContextOptions, DType, EpsPlacement, LayerNormConfig, LayerNormForward, LayerNormForwardOp, NormContext,
    Reduction, ResidualAdd, RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape, reference,
};

/// The test adapter with rows of more than 128 elements, up to 15 of them, split into
/// segments of 64 elements or more, as many as fill 64 workgroups; segments up to 128
/// elements held in registers.
fn forced(reduction: Reduction) -> NormContext {
    let base = common::ctx();
    let mut tuning = *base.tuning();
    (tuning.split_chunk, tuning.backward_groups, tuning.register_quads) = (64, 64, 4);
    base.sibling(ContextOptions { reduction, tuning: Some(tuning), ..Default::default() })
}

/// `norm`'s forward of `x` (+ `residual`) under `rms` or `ln` on `c`, every output poisoned
/// and between sentinels, against the reference.
#[allow(clippy::too_many_arguments)]
fn check_forward(
    c: &NormContext,
    norm: Norm,
    shape: Shape,
    kind: Input,
    rms: RmsNormConfig,
    ln: LayerNormConfig,
    residual: bool,
    seed: u64,
) {
    let add_after = match norm {
        Norm::Rms => rms.residual_add,
        Norm::Layer => ln.residual_add,
    } == ResidualAdd::AfterNorm;
    let context = format!("{norm:?}, {shape:?}, {kind:?}, {rms:?}, {ln:?}, residual {residual}, seed {seed}");
    let mut r = rng(seed);
    let n = shape.elements();
    let x = stored(&input(&mut r, kind, shape), DType::F32);
    let res = stored(&randn(&mut r, n), DType::F32);
    let g: Vec<f64> = randn(&mut r, shape.cols).iter().map(|v| 1.0 + 0.25 * f64::from(*v)).collect();
    let b: Vec<f64> = randn(&mut r, shape.cols).iter().map(|v| 0.5 * f64::from(*v)).collect();
    let with_h = residual && !add_after;
    let h_want: Vec<f64> = match with_h {
        true => x.iter().zip(&res).map(|(a, b)| f64::from((*a + *b) as f32)).collect(),
        false => x.clone(),
    };
    let f32s = DType::F32;
    let (pad, pad_odd) = (4, 3);
    let px = Placed::new(c, Some(&x), n, f32s, pad);
    let pres = Placed::new(c, Some(&res), n, f32s, pad_odd);
    let pg = Placed::new(c, Some(&g), shape.cols, f32s, pad);
    let pb = Placed::new(c, Some(&b), shape.cols, f32s, pad_odd);
    let py = Placed::new(c, None, n, f32s, pad);
    let ph = Placed::new(c, None, n, f32s, pad);
    let pmean = Placed::new(c, None, shape.rows, f32s, pad);
    let prstd = Placed::new(c, None, shape.rows, f32s, pad_odd);
    let (residual_t, h_t) = (residual.then(|| pres.tensor()), with_h.then(|| ph.tensor()));
    submit(c, |enc| match norm {
        Norm::Rms => {
            let args = RmsNormForward {
                x: px.tensor(),
                residual: residual_t,
                gamma: Some(pg.tensor()),
                y: py.tensor(),
                h: h_t,
                rstd: Some(prstd.tensor()),
            };
            RmsNormForwardOp::new(c, rms).unwrap().encode(enc, shape, &args).expect(&context)
        }
        Norm::Layer => {
            let args = LayerNormForward {
                x: px.tensor(),
                residual: residual_t,
                gamma: Some(pg.tensor()),
                beta: Some(pb.tensor()),
                y: py.tensor(),
                h: h_t,
                mean: Some(pmean.tensor()),
                rstd: Some(prstd.tensor()),
            };
            LayerNormForwardOp::new(c, ln).unwrap().encode(enc, shape, &args).expect(&context)
        }
    });
    let (mut want_y, want_mean, want_rstd) = match norm {
        Norm::Rms => {
            let f = reference::rms_norm_forward(&h_want, Some(&g), shape, &rms).unwrap();
            (f.y, None, f.rstd)
        }
        Norm::Layer => {
            let f = reference::layer_norm_forward(&h_want, Some(&g), Some(&b), shape, &ln).unwrap();
            (f.y, Some(f.mean), f.rstd)
        }
    };
    if residual && add_after {
        for (y, r) in want_y.iter_mut().zip(&res) {
            *y += r;
        }
    }
    check_stored("y", &py.read(c, "y", &context), &want_y, f32s, FORWARD, 0.0, &context);
    check_stored("rstd", &prstd.read(c, "rstd", &context), &want_rstd, f32s, FORWARD, 0.0, &context);
    if let Some(want_mean) = want_mean {
        // The mean's error matters relative to the size of x, as in norms_vs_reference.
        let bar = Bar { rel: f64::INFINITY, atol: 1e-6 * common::rms(&h_want), rtol: 1e-6 };
        let mean: Vec<f32> = pmean.read(c, "mean", &context).iter().map(|&v| v as f32).collect();
        common::check("mean", &mean, &want_mean, bar, &context);
    }
    if with_h {
        assert_eq!(ph.read(c, "h", &context), h_want, "h ({context})");
    }
    px.read(c, "x", &context);
    pg.read(c, "gamma", &context);
}

#[test]
fn split_rows_match_the_reference() {
    let shapes = [(1, 4096), (1, 4097), (3, 1000), (5, 130), (2, 65536), (15, 300)];
    let rms = [
        RmsNormConfig::default(),
        RmsNormConfig { eps_placement: EpsPlacement::OutsideSqrt, gamma_offset: 1.0, ..Default::default() },
        RmsNormConfig { partial: Some(0.3), ..Default::default() },
        RmsNormConfig { residual_add: ResidualAdd::AfterNorm, ..Default::default() },
    ];
    let ln = [
        LayerNormConfig::default(),
        LayerNormConfig { gamma_offset: 1.0, eps: 1e-12, ..Default::default() },
        LayerNormConfig::default(),
        LayerNormConfig { residual_add: ResidualAdd::AfterNorm, ..Default::default() },
    ];
    for reduction in [Reduction::Auto, Reduction::Workgroup] {
        let c = forced(reduction);
        for (i, &(rows, cols)) in shapes.iter().enumerate() {
            for k in 0..rms.len() {
                let seed = 7000 + 10 * i as u64 + k as u64;
                let shape = Shape::new(rows, cols);
                for norm in [Norm::Rms, Norm::Layer] {
                    check_forward(&c, norm, shape, Input::Shifted, rms[k], ln[k], k != 2, seed);
                }
            }
        }
    }
}

/// The GPU rules' own split: few rows past the register tile's 8192 elements, in segments of
/// a workgroup's 2048.
#[test]
fn gpu_launch_splits_long_rows() {
    let c = common::ctx_gpu_launch();
    for (i, (rows, cols)) in [(1, 16384), (1, 262_144), (3, 20_001)].into_iter().enumerate() {
        for norm in [Norm::Rms, Norm::Layer] {
            let (rms, ln) = (RmsNormConfig::default(), LayerNormConfig::default());
            check_forward(c, norm, Shape::new(rows, cols), Input::LargeMean, rms, ln, true, 7100 + i as u64);
        }
    }
}

/// Segments each in range, whose row's sum of squares is not, or whose elements' squares
/// are not: the merged sums carry the guards.
#[test]
fn split_rows_that_leave_f32s_range() {
    let c = forced(Reduction::Auto);
    let kinds = [Input::Huge, Input::Tiny, Input::Dominated, Input::LargeMean, Input::Constant, Input::Zeros];
    for (i, kind) in kinds.into_iter().enumerate() {
        for eps in [1e-6, 0.0] {
            if eps == 0.0 && matches!(kind, Input::Zeros | Input::Constant) {
                continue;
            }
            let (rms, ln) =
                (RmsNormConfig { eps, ..Default::default() }, LayerNormConfig { eps, ..Default::default() });
            for norm in [Norm::Rms, Norm::Layer] {
                check_forward(&c, norm, Shape::new(2, 5000), kind, rms, ln, false, 7200 + i as u64);
            }
        }
    }
    // 1.5e19 squares past 1e38: each segment's sum is finite, the row's is not; 3e38, near
    // f32's largest, overflows each segment's own sums too.
    for (i, size) in [1.5e19_f32, 3e38].into_iter().enumerate() {
        let mut r = rng(7300 + i as u64);
        let shape = Shape::new(1, 4096);
        let x: Vec<f32> = randn(&mut r, shape.elements()).iter().map(|v| size * v.signum()).collect();
        let context = format!("rows of +-{size:e}");
        let cfg = RmsNormConfig::default();
        let out = wgpu_norm::host::rms_norm_forward(&c, &x, None, shape, &cfg).unwrap();
        let want = reference::rms_norm_forward(&x, None, shape, &cfg).unwrap();
        common::check("y", &out.y, &want.y, FORWARD, &context);
        let x: Vec<f32> = x.iter().enumerate().map(|(j, v)| if j % 3 == 0 { *v } else { v * 0.5 }).collect();
        let cfg = LayerNormConfig::default();
        let out = wgpu_norm::host::layer_norm_forward(&c, &x, None, None, shape, &cfg).unwrap();
        let want = reference::layer_norm_forward(&x, None, None, shape, &cfg).unwrap();
        common::check("y", &out.y, &want.y, FORWARD, &context);
    }
}

/// A bound split op encodes the same bits every time, and runs over fewer rows after
/// `set_rows`.
#[test]
fn bound_split_op_is_reused_and_resized() {
    let c = forced(Reduction::Auto);
    let shape = Shape::new(7, 3000);
    let mut r = rng(7400);
    let x = randn(&mut r, shape.elements());
    let cfg = RmsNormConfig::default();
    let px = Placed::new(&c, Some(&stored(&x, DType::F32)), x.len(), DType::F32, 0);
    let py = Placed::new(&c, None, x.len(), DType::F32, 0);
    let op = RmsNormForwardOp::new(&c, cfg).unwrap();
    let bound = op.bind(shape, &RmsNormForward::new(px.tensor(), py.tensor())).unwrap();
    let mut runs = Vec::new();
    for _ in 0..3 {
        submit(&c, |enc| bound.encode(enc));
        runs.push(py.read(&c, "y", "reuse"));
    }
    assert!(runs.iter().all(|y| y == &runs[0]), "a bound split op gave different bits");
    let want = reference::rms_norm_forward(&x, None, shape, &cfg).unwrap();
    let got: Vec<f32> = runs[0].iter().map(|&v| v as f32).collect();
    common::check("y", &got, &want.y, FORWARD, "7x3000");
    // Fewer rows: the rest of y keeps what the first run wrote.
    let y2: Vec<f64> = runs[0].iter().enumerate().map(|(i, &v)| if i < 2 * 3000 { 0.0 } else { v }).collect();
    let py2 = Placed::new(&c, Some(&y2), x.len(), DType::F32, 0);
    let mut bound = op.bind(shape, &RmsNormForward::new(px.tensor(), py2.tensor())).unwrap();
    bound.set_rows(c.queue(), 2).unwrap();
    submit(&c, |enc| bound.encode(enc));
    let got: Vec<f32> = py2.read(&c, "y", "set_rows").iter().map(|&v| v as f32).collect();
    common::check("y", &got, &want.y, FORWARD, "7x3000 bound, run over 2 rows");
}
