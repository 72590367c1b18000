//! The prepared path: an op bound once and encoded many times gives what the one-shot call
//! gives, bit for bit; the row count changes between submissions without binding again;
//! pipelines are compiled once per launch, never while encoding; and every binding mistake
//! is a typed error that names the tensor (wgpu's default uncaptured-error handler panics,
//! so anything that reached it would fail these tests).

mod common;

use common::{buffer, ctx, randn, read_bytes, rng, storage, submit};
use wgpu_norm::host;
use wgpu_norm::{
    ContextOptions, ExpectedCall, LayerNormBackward, LayerNormBackwardOp, LayerNormConfig, LayerNormForward,
    LayerNormForwardOp, NormContext, NormError, Reduction, ResidualAdd, RmsNormBackward, RmsNormBackwardOp,
    RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape, Tensor, Tuning, reference,
};

fn upload(c: &NormContext, data: &[f32]) -> wgpu::Buffer {
    let b = storage(c, (4 * data.len()).max(4) as u64);
    c.queue().write_buffer(&b, 0, bytemuck::cast_slice(data));
    b
}

fn nan(c: &NormContext, len: usize) -> wgpu::Buffer {
    upload(c, &vec![f32::NAN; len])
}

fn read(c: &NormContext, b: &wgpu::Buffer) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(&read_bytes(c.device(), c.queue(), b))
}

/// 100 encodes of one bound RMSNorm forward, in one open pass, write what one one-shot
/// call writes; so do 100 encodes of a bound LayerNorm backward with its column pass.
#[test]
fn a_bound_op_reused_100_times_equals_the_one_shot_call() {
    let c = ctx();
    let shape = Shape::new(37, 1000);
    let mut r = rng(501);
    let (x, g, dy) =
        (randn(&mut r, shape.elements()), randn(&mut r, shape.cols), randn(&mut r, shape.elements()));
    let (xb, gb, dyb) = (upload(c, &x), upload(c, &g), upload(c, &dy));

    let config = RmsNormConfig::default();
    let (y_once, y_bound) = (nan(c, shape.elements()), nan(c, shape.elements()));
    let args = |y| RmsNormForward { gamma: Some(Tensor::from(&gb)), ..RmsNormForward::new(&xb, y) };
    submit(c, |enc| RmsNormForwardOp::new(c, config).unwrap().encode(enc, shape, &args(&y_once)).unwrap());
    let bound = RmsNormForwardOp::new(c, config).unwrap().bind(shape, &args(&y_bound)).unwrap();
    submit(c, |enc| {
        let mut pass = enc.begin_compute_pass(&Default::default());
        for _ in 0..100 {
            bound.encode(&mut pass);
        }
    });
    let once = read(c, &y_once);
    assert!(once.iter().all(|v| v.is_finite()), "seed 501: the one-shot call left an element unwritten");
    assert_eq!(read(c, &y_bound), once, "seed 501: RMSNorm forward, bound x100 vs one-shot");

    let config = LayerNormConfig::default();
    let op = LayerNormBackwardOp::new(c, config).unwrap();
    let ws = storage(c, op.workspace_size(shape).unwrap());
    let outputs = || (nan(c, shape.elements()), nan(c, shape.cols), nan(c, shape.cols));
    let (once, bound) = (outputs(), outputs());
    fn ln_args<'a>(
        [x, gamma, dy, workspace]: [&'a wgpu::Buffer; 4],
        o: &'a (wgpu::Buffer, wgpu::Buffer, wgpu::Buffer),
    ) -> LayerNormBackward<'a> {
        LayerNormBackward {
            x: x.into(),
            gamma: Some(gamma.into()),
            dy: dy.into(),
            dh: None,
            mean: None,
            rstd: None,
            dx: (&o.0).into(),
            dgamma: Some((&o.1).into()),
            dbeta: Some((&o.2).into()),
            workspace: Some(workspace.into()),
        }
    }
    let inputs = [&xb, &gb, &dyb, &ws];
    submit(c, |enc| {
        LayerNormBackwardOp::new(c, config).unwrap().encode(enc, shape, &ln_args(inputs, &once)).unwrap()
    });
    let b = op.bind(shape, &ln_args(inputs, &bound)).unwrap();
    submit(c, |enc| {
        for _ in 0..100 {
            b.encode(enc);
        }
    });
    for (what, o, b) in
        [("dx", &once.0, &bound.0), ("dgamma", &once.1, &bound.1), ("dbeta", &once.2, &bound.2)]
    {
        let once = read(c, o);
        assert!(once.iter().all(|v| v.is_finite()), "seed 501: {what} left unwritten");
        assert_eq!(read(c, b), once, "seed 501: LayerNorm backward {what}, bound x100 vs one-shot");
    }
}

/// set_rows reruns a bound op over fewer rows: those rows match the reference, the rows past
/// them stay as they were, and the row count must lie within what was bound.
#[test]
fn set_rows_changes_the_row_count_without_binding_again() {
    // A context of its own: the compile count below is not raced by the other tests.
    let base = ctx();
    let own = NormContext::from_device(base.device().clone(), base.queue().clone(), Default::default());
    let c = &own;
    let bound_shape = Shape::new(64, 300);
    let mut r = rng(502);
    let x = randn(&mut r, bound_shape.elements());
    let xb = upload(c, &x);
    let op = RmsNormForwardOp::new(c, RmsNormConfig::default()).unwrap();
    for rows in [17, 1, 64, 40] {
        let y = nan(c, bound_shape.elements());
        let mut bound = op.bind(bound_shape, &RmsNormForward::new(&xb, &y)).unwrap();
        let compiled = c.pipelines_compiled();
        bound.set_rows(c.queue(), rows).unwrap();
        assert_eq!(bound.rows(), rows);
        submit(c, |enc| bound.encode(enc));
        assert_eq!(c.pipelines_compiled(), compiled, "set_rows compiled a pipeline");
        let got = read(c, &y);
        let n = rows as usize * bound_shape.cols;
        let want = reference::rms_norm_forward(
            &x[..n],
            None,
            Shape::new(rows as usize, 300),
            &RmsNormConfig::default(),
        )
        .unwrap();
        common::check("y", &got[..n], &want.y, common::FORWARD, &format!("seed 502, {rows} rows"));
        assert!(got[n..].iter().all(|v| v.is_nan()), "seed 502: set_rows({rows}) wrote past its rows");
    }
    let y = nan(c, bound_shape.elements());
    let mut bound = op.bind(bound_shape, &RmsNormForward::new(&xb, &y)).unwrap();
    for rows in [0, 65] {
        assert_eq!(bound.set_rows(c.queue(), rows), Err(NormError::RowsOutsideBinding { rows, bound: 64 }));
    }
}

/// The first bind of a launch compiles its pipeline; binding the same launch again, on other
/// buffers, and encoding any number of times compile nothing.
#[test]
fn pipelines_are_compiled_once_per_launch() {
    let base = ctx();
    let c = NormContext::from_device(base.device().clone(), base.queue().clone(), Default::default());
    assert_eq!(c.pipelines_compiled(), 0, "making a context compiles nothing");
    let shape = Shape::new(8, 512);
    let op = RmsNormForwardOp::new(&c, RmsNormConfig::default()).unwrap();
    assert_eq!(c.pipelines_compiled(), 0, "making an op compiles nothing");
    let (x, y) = (storage(&c, 4 * 4096), storage(&c, 4 * 4096));
    let bound = op.bind(shape, &RmsNormForward::new(&x, &y)).unwrap();
    let forward = c.pipelines_compiled();
    assert!(forward >= 1, "binding compiles the launch's pipeline");
    let (x2, y2) = (storage(&c, 4 * 4096), storage(&c, 4 * 4096));
    let again = op.clone().bind(shape, &RmsNormForward::new(&x2, &y2)).unwrap();
    submit(&c, |enc| {
        for _ in 0..100 {
            bound.encode(enc);
            again.encode(enc);
        }
    });
    assert_eq!(c.pipelines_compiled(), forward, "rebinding or encoding compiled a pipeline");
    let ln = LayerNormBackwardOp::new(&c, LayerNormConfig::default()).unwrap();
    let ws = storage(&c, ln.workspace_size(shape).unwrap());
    let (g, dg) = (storage(&c, 4 * 512), storage(&c, 4 * 1024));
    let args = LayerNormBackward {
        x: (&x).into(),
        gamma: Some((&g).into()),
        dy: (&x2).into(),
        dh: None,
        mean: None,
        rstd: None,
        dx: (&y).into(),
        dgamma: Some((&dg).into()),
        dbeta: Some(Tensor::new(&dg, 4 * 512)),
        workspace: Some((&ws).into()),
    };
    pollster::block_on(ln.bind_async(shape, &args)).unwrap();
    let backward = c.pipelines_compiled();
    assert!(backward >= forward + 2, "a backward is its row kernel and the column pass");
    ln.bind(shape, &args).unwrap();
    assert_eq!(c.pipelines_compiled(), backward);
}

/// A sibling context uses the pipelines its sibling compiled and compiles only what differs:
/// the same options bind without a compile, the workgroup reduction compiles its own row
/// kernel, and unchecked kernels are never shared with checked ones. Each sibling's results
/// match the reference (bound on the other's pipeline, the output would still be right, so
/// the count is what shows the sharing).
#[test]
fn siblings_share_compiled_pipelines() {
    let base = ctx();
    let c = NormContext::from_device(base.device().clone(), base.queue().clone(), Default::default());
    let shape = Shape::new(8, 512);
    let mut r = rng(520);
    let x = randn(&mut r, shape.elements());
    let xb = upload(&c, &x);
    let want = reference::rms_norm_forward(&x, None, shape, &RmsNormConfig::default()).unwrap();
    let run = |ctx: &NormContext, what: &str| {
        let y = nan(ctx, shape.elements());
        let op = RmsNormForwardOp::new(ctx, RmsNormConfig::default()).unwrap();
        let bound = op.bind(shape, &RmsNormForward::new(&xb, &y)).unwrap();
        submit(ctx, |enc| bound.encode(enc));
        common::check("y", &read(ctx, &y), &want.y, common::FORWARD, &format!("seed 520, {what}"));
        ctx.pipelines_compiled()
    };
    assert!(run(&c, "first") >= 1);
    assert_eq!(run(&c.sibling(Default::default()), "same options"), 0, "a sibling compiled again");
    let workgroup = c.sibling(ContextOptions { reduction: Reduction::Workgroup, ..Default::default() });
    assert!(run(&workgroup, "workgroup reduction") >= 1, "another reduction is another kernel");
    let checked = c.sibling(ContextOptions { checked_shaders: true, ..Default::default() });
    assert!(run(&checked, "checked") >= 1, "checked kernels took unchecked ones");
}

/// Binding compiles every pipeline the same tensors need for fewer rows: after one binding
/// at the most rows (prefill), binding any smaller row count (a decode step) compiles
/// nothing, whatever launch the rules give it. A forward grid of three workgroups puts the
/// row count from which a forward row of 4096 takes more threads to fit the register tile
/// (Tuning::max_forward_tile_row_threads, on lavapipe) below 600, and not at a power of two;
/// so do the grids of three and five workgroups the counts from which rows reduced through
/// workgroup memory take one thread each (Tuning::single_thread_rows_for): 21 and 35 for the
/// rows of 4096, 9 and 15 for the shorter ones.
#[test]
fn binding_fewer_rows_compiles_nothing() {
    for reduction in [Reduction::Auto, Reduction::Workgroup] {
        binding_fewer_rows_compiles_nothing_on(reduction);
    }
}

fn binding_fewer_rows_compiles_nothing_on(reduction: Reduction) {
    let base = ctx();
    let tuning = Tuning {
        max_forward_groups: 3,
        backward_groups: 5,
        single_thread_rows: 7,
        single_thread_short_cols: 1024,
        single_thread_short_rows: 3,
        ..*base.tuning()
    };
    let options = ContextOptions { tuning: Some(tuning), reduction, ..Default::default() };
    let c = NormContext::from_device(base.device().clone(), base.queue().clone(), options);
    for cols in [7, 512, 4096] {
        let rows = 600;
        let shape = Shape::new(rows, cols);
        let rows_buffer = || storage(&c, 4 * shape.elements() as u64);
        let (x, y, dx) = (rows_buffer(), rows_buffer(), rows_buffer());
        let (g, dg) = (storage(&c, 4 * cols as u64), storage(&c, 4 * cols as u64));
        let fwd = RmsNormForwardOp::new(&c, RmsNormConfig::default()).unwrap();
        let fwd_args = RmsNormForward { gamma: Some((&g).into()), ..RmsNormForward::new(&x, &y) };
        let bwd = RmsNormBackwardOp::new(&c, RmsNormConfig::default()).unwrap();
        let ws = storage(&c, bwd.workspace_size(shape).unwrap());
        let bwd_args = RmsNormBackward {
            x: (&x).into(),
            gamma: Some((&g).into()),
            dy: (&y).into(),
            dh: None,
            rstd: None,
            dx: (&dx).into(),
            dgamma: Some((&dg).into()),
            workspace: Some((&ws).into()),
        };
        fwd.bind(shape, &fwd_args).unwrap();
        bwd.bind(shape, &bwd_args).unwrap();
        let compiled = c.pipelines_compiled();
        for r in 1..=rows {
            fwd.bind(Shape::new(r, cols), &fwd_args).unwrap();
            bwd.bind(Shape::new(r, cols), &bwd_args).unwrap();
            assert_eq!(
                c.pipelines_compiled(),
                compiled,
                "binding {r} rows of {cols} compiled a pipeline ({reduction:?})"
            );
        }
    }
}

/// Each binding mistake is refused with a typed error naming the tensor, what is wrong, and
/// the expected and actual values; nothing reaches wgpu's validation.
#[test]
fn binding_mistakes_are_typed_errors() {
    let c = ctx();
    let op = RmsNormForwardOp::new(c, RmsNormConfig::default()).unwrap();
    let shape = Shape::new(4, 64);
    let (x, y) = (storage(c, 1024), storage(c, 1024));
    let bind = |shape, args: &RmsNormForward<'_>| op.bind(shape, args).err();

    let short = storage(c, 1020);
    let e = bind(shape, &RmsNormForward::new(&short, &y));
    assert_eq!(e, Some(NormError::BufferTooSmall { what: "x", offset: 0, end: 1024, size: 1020 }));
    let e = bind(shape, &RmsNormForward::new(&x, Tensor::new(&y, 2)));
    assert_eq!(e, Some(NormError::UnalignedOffset { what: "y", offset: 2, align: 4 }));
    let uniform = buffer(c, 1024, wgpu::BufferUsages::UNIFORM);
    let e = bind(shape, &RmsNormForward::new(&x, &uniform));
    assert_eq!(e, Some(NormError::MissingUsage { what: "y", usage: "STORAGE" }));
    for (rows, cols) in [(0, 64), (4, 0)] {
        let e = bind(Shape::new(rows, cols), &RmsNormForward::new(&x, &y));
        assert_eq!(e, Some(NormError::EmptyShape { rows, cols }));
    }
    let e = bind(shape.with_row_stride(63), &RmsNormForward::new(&x, &y));
    assert_eq!(e, Some(NormError::InvalidStride { cols: 64, stride: 63 }));
    // A stride too large to index: the error names the stride and the span, not rows x cols.
    let e = bind(Shape::new(2, 64).with_row_stride(1 << 32), &RmsNormForward::new(&x, &y)).unwrap();
    let span = (1 << 32) + 64;
    assert_eq!(
        e,
        NormError::ShapeTooLarge { rows: 2, cols: 64, stride: 1 << 32, span, max: u32::MAX.into() }
    );
    assert!(e.to_string().contains("4294967296 apart, span 4294967360 elements"), "{e}");
    let rstd = storage(c, 12);
    let args = RmsNormForward { rstd: Some((&rstd).into()), ..RmsNormForward::new(&x, &y) };
    assert_eq!(
        bind(shape, &args),
        Some(NormError::BufferTooSmall { what: "rstd", offset: 0, end: 16, size: 12 })
    );

    // A workspace too small, and none at all, for the backward's dgamma and dbeta.
    let ln = LayerNormBackwardOp::new(c, LayerNormConfig::default()).unwrap();
    let need = ln.workspace_size(shape).unwrap();
    let (ws, dg) = (storage(c, need - 4), storage(c, 512));
    let mut args = LayerNormBackward {
        x: (&x).into(),
        gamma: None,
        dy: (&x).into(),
        dh: None,
        mean: None,
        rstd: None,
        dx: (&y).into(),
        dgamma: Some((&dg).into()),
        dbeta: Some(Tensor::new(&dg, 256)),
        workspace: Some((&ws).into()),
    };
    let e = ln.bind(shape, &args).err();
    assert_eq!(
        e,
        Some(NormError::BufferTooSmall { what: "workspace", offset: 0, end: need, size: need - 4 })
    );
    args.workspace = None;
    assert!(matches!(ln.bind(shape, &args), Err(NormError::MissingArgument { what: "workspace", .. })));
}

/// A written tensor overlapping any other tensor of the call is refused, naming both;
/// exact in-place pairs and interleaved views that share no element are allowed.
#[test]
fn overlapping_tensors_are_refused() {
    let c = ctx();
    let op = RmsNormForwardOp::new(c, RmsNormConfig::default()).unwrap();
    let shape = Shape::new(4, 64);
    let b = storage(c, 8 * 1024);
    let at = |offset| Tensor::new(&b, offset);
    // y over gamma.
    let args = RmsNormForward { gamma: Some(at(1024)), ..RmsNormForward::new(at(0), at(1024 + 128)) };
    assert_eq!(op.bind(shape, &args).err(), Some(NormError::Aliasing { written: "y", other: "gamma" }));
    // y = x shifted by one row.
    let e = op.bind(shape, &RmsNormForward::new(at(0), at(256))).err();
    assert_eq!(e, Some(NormError::Aliasing { written: "y", other: "x" }));
    // rstd inside x.
    let args = RmsNormForward { rstd: Some(at(64)), ..RmsNormForward::new(at(0), at(2048)) };
    assert_eq!(op.bind(shape, &args).err(), Some(NormError::Aliasing { written: "rstd", other: "x" }));
    // In place, and two heads of one row-strided buffer: allowed.
    op.bind(shape, &RmsNormForward::new(at(0), at(0))).unwrap();
    let heads = shape.with_row_stride(128);
    op.bind(heads, &RmsNormForward::new(at(0), at(256))).unwrap();
    let e = op.bind(heads, &RmsNormForward::new(at(0), at(128))).err();
    assert_eq!(e, Some(NormError::Aliasing { written: "y", other: "x" }), "y on x's second half-row");
}

/// A tuning that asks for more workgroups than a dispatch may have (one row per workgroup,
/// one loop trip per thread, 70,000 rows) gets the device's largest grid, whose workgroups
/// loop over the remaining rows: right results, and no error at the caller's submit.
#[test]
fn a_grid_past_the_device_limit_is_clamped() {
    let base = ctx();
    let tuning = wgpu_norm::Tuning {
        workgroup_size: 1,
        max_row_threads: 1,
        max_loop_trips: 1,
        max_forward_groups: u32::MAX,
        ..*base.tuning()
    };
    let options = wgpu_norm::ContextOptions { tuning: Some(tuning), ..Default::default() };
    let c = NormContext::from_device(base.device().clone(), base.queue().clone(), options);
    let shape = Shape::new(70_000, 4);
    assert!(shape.rows as u32 > c.limits().max_compute_workgroups_per_dimension);
    let x = randn(&mut rng(503), shape.elements());
    let out = host::rms_norm_forward(&c, &x, None, shape, &RmsNormConfig::default()).unwrap();
    let want = reference::rms_norm_forward(&x, None, shape, &RmsNormConfig::default()).unwrap();
    common::check("y", &out.y, &want.y, common::FORWARD, "seed 503, 70,000 one-row workgroups");
}

/// A buffer of another context's device is refused with wgpu's validation error, typed,
/// not bound as an unrelated buffer that happens to share its id.
#[test]
fn a_buffer_of_another_context_is_an_error() {
    let (a, b) = (NormContext::with_options(Default::default()).unwrap(), ctx());
    let (x, y) = (storage(&a, 1024), storage(b, 1024));
    let op = RmsNormForwardOp::new(b, RmsNormConfig::default()).unwrap();
    let e = op.bind(Shape::new(4, 64), &RmsNormForward::new(&x, &y)).err();
    assert!(matches!(e, Some(NormError::Wgpu { during: "bind group creation", .. })), "{e:?}");
}

/// An op made with the calls it will run compiles their pipelines then: binding those calls,
/// or fewer rows of them, compiles nothing, for both norms in both directions, tile rows,
/// streamed rows, a split row, unaligned rows and the backward's column pass.
#[test]
fn ops_made_with_their_calls_compile_nothing_at_bind() {
    let base = ctx();
    let split = 4 * (2 * base.tuning().split_chunk as usize).max(4096);
    for (rows, cols) in [(40, 7), (300, 512), (9, 4096), (1, split)] {
        // A context of its own: two shapes may share a launch (on SwiftShader 300x512 and
        // 9x4096 are both streamed), and then the second would compile nothing.
        let c = NormContext::from_device(base.device().clone(), base.queue().clone(), Default::default());
        let shape = Shape::new(rows, cols);
        let rows_buffer = || storage(&c, 4 * shape.elements() as u64);
        let (x, y, dx) = (rows_buffer(), rows_buffer(), rows_buffer());
        let cols_buffer = || storage(&c, 4 * cols as u64);
        let (g, b, dg, db) = (cols_buffer(), cols_buffer(), cols_buffer(), cols_buffer());
        let (mean, rstd) = (storage(&c, 4 * rows as u64), storage(&c, 4 * rows as u64));

        let forward = ExpectedCall::new(shape).with(&["gamma", "beta", "rstd", "mean"]);
        let rms_forward = forward.with(&["gamma", "rstd"]);
        let backward = ExpectedCall::new(shape).with(&["gamma", "dgamma", "dbeta"]);
        let rms_backward = backward.with(&["gamma", "rstd", "dgamma"]);
        let before = c.pipelines_compiled();
        let rms = RmsNormForwardOp::with_calls(&c, RmsNormConfig::default(), &[rms_forward]).unwrap();
        let rms_b = RmsNormBackwardOp::with_calls(&c, RmsNormConfig::default(), &[rms_backward]).unwrap();
        let ln = LayerNormForwardOp::with_calls(&c, LayerNormConfig::default(), &[forward]).unwrap();
        let made = pollster::block_on(LayerNormBackwardOp::with_calls_async(
            &c,
            LayerNormConfig::default(),
            &[backward],
        ));
        let ln_b = made.unwrap();
        let compiled = c.pipelines_compiled();
        assert!(compiled >= before + 4, "{rows}x{cols}: making the ops compiled {}", compiled - before);

        let rms_ws = storage(&c, rms_b.workspace_size(shape).unwrap());
        let ln_ws = storage(&c, ln_b.workspace_size(shape).unwrap());
        for r in [1, rows.div_ceil(2), rows] {
            let s = Shape::new(r, cols);
            let rms_args = RmsNormForward {
                gamma: Some((&g).into()),
                rstd: Some((&rstd).into()),
                ..RmsNormForward::new(&x, &y)
            };
            rms.bind(s, &rms_args).unwrap();
            let rms_b_args = RmsNormBackward {
                x: (&x).into(),
                gamma: Some((&g).into()),
                dy: (&y).into(),
                dh: None,
                rstd: Some((&rstd).into()),
                dx: (&dx).into(),
                dgamma: Some((&dg).into()),
                workspace: Some((&rms_ws).into()),
            };
            rms_b.bind(s, &rms_b_args).unwrap();
            let ln_args = LayerNormForward {
                gamma: Some((&g).into()),
                beta: Some((&b).into()),
                mean: Some((&mean).into()),
                rstd: Some((&rstd).into()),
                ..LayerNormForward::new(&x, &y)
            };
            ln.bind(s, &ln_args).unwrap();
            let ln_b_args = LayerNormBackward {
                x: (&x).into(),
                gamma: Some((&g).into()),
                dy: (&y).into(),
                dh: None,
                mean: None,
                rstd: None,
                dx: (&dx).into(),
                dgamma: Some((&dg).into()),
                dbeta: Some((&db).into()),
                workspace: Some((&ln_ws).into()),
            };
            ln_b.bind(s, &ln_b_args).unwrap();
            assert_eq!(c.pipelines_compiled(), compiled, "binding {r} rows of {cols} compiled a pipeline");
        }
    }
}

/// Naming a call wrongly is a typed error when the op is made, before anything compiles.
#[test]
fn expected_calls_are_checked() {
    let c = ctx();
    let cfg = RmsNormConfig::default();
    let call = ExpectedCall::new(Shape::new(4, 64));
    let made = RmsNormForwardOp::with_calls(c, cfg, &[call.with(&["gama"])]);
    let Err(NormError::UnknownTensor { op, name, optional }) = made else {
        panic!("a misspelt tensor: {:?}", made.err());
    };
    assert_eq!((op, name.as_str()), ("rms_norm_forward", "gama"));
    assert!(optional.contains(&"gamma") && !optional.contains(&"x"), "{optional:?}");
    let made = RmsNormForwardOp::with_calls(c, cfg, &[call.with(&["x"])]);
    assert!(
        matches!(made, Err(NormError::UnknownTensor { .. })),
        "a required tensor named: {:?}",
        made.err()
    );
    let after = RmsNormConfig { residual_add: ResidualAdd::AfterNorm, ..cfg };
    let made = RmsNormForwardOp::with_calls(c, after, &[call.with(&["residual", "h"])]);
    assert!(matches!(made, Err(NormError::UnusedArgument { what: "h", .. })), "{:?}", made.err());
    let made = RmsNormForwardOp::with_calls(c, cfg, &[ExpectedCall::new(Shape::new(0, 64))]);
    assert_eq!(made.err(), Some(NormError::EmptyShape { rows: 0, cols: 64 }));
}
