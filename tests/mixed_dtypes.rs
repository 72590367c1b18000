//! Each tensor in its own dtype (issue 13 item 1): every pair of tensors in every pair of
//! dtypes, and the mixes engines use most, for both norms forward and backward, against the
//! f64 reference on the stored inputs. Each output must be within one rounding of its own
//! dtype (f32 outputs: the f32 bars). Outputs start poisoned (NaN) and sit between
//! sentinels; tensors sit at element offsets that take the vector layout or the scalar one
//! (odd halves of words for 16-bit tensors). f16 runs native where the adapter has it and
//! packed in u32 words where it has not (SwiftShader runs every mix packed; bf16 is always
//! packed; dtypes.rs runs f16 packed on every adapter).

mod common;

use common::{
    Bar, FORWARD, Norm, Placed, Reference, Step, check_stored, ctx, randn, record_step, rng, stored,
    workspace_for,
};
use wgpu_norm::{
    DType, LayerNormConfig, NormError, RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape, Storage,
};

const DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::BF16];
/// The tensors a storage sets, in `Storage`'s field order.
const TENSORS: [&str; 9] = ["x", "residual", "h", "y", "dy", "dh", "dx", "gamma", "beta"];

/// Storages in which every pair of tensors takes every pair of dtypes (a covering array of
/// strength 2, built greedily from all mixes: 3^9 candidates, about 15 rows).
fn pairwise() -> Vec<Storage> {
    let n = TENSORS.len();
    let digits = |mut i: usize| {
        let mut d = [0; TENSORS.len()];
        for slot in &mut d {
            *slot = i % 3;
            i /= 3;
        }
        d
    };
    let pair_index = |a: usize, b: usize, da: usize, db: usize| ((a * n + b) * 3 + da) * 3 + db;
    let mut uncovered = vec![false; n * n * 9];
    for a in 0..n {
        for b in a + 1..n {
            for (da, db) in (0..3).flat_map(|da| (0..3).map(move |db| (da, db))) {
                uncovered[pair_index(a, b, da, db)] = true;
            }
        }
    }
    let gain = |d: &[usize; TENSORS.len()], uncovered: &[bool]| {
        (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .filter(|&(a, b)| uncovered[pair_index(a, b, d[a], d[b])])
            .count()
    };
    let total = 3usize.pow(n as u32);
    let mut rows = Vec::new();
    while uncovered.iter().any(|&u| u) {
        let best = (0..total).map(digits).max_by_key(|d| gain(d, &uncovered)).unwrap();
        for a in 0..n {
            for b in a + 1..n {
                uncovered[pair_index(a, b, best[a], best[b])] = false;
            }
        }
        let text: Vec<String> =
            TENSORS.iter().zip(best).map(|(t, d)| format!("{t}={}", DTYPES[d].name())).collect();
        rows.push(text.join(",").parse().unwrap());
    }
    rows
}

/// Forward (x + residual in, y and h out when `fused`) and backward (dx, dgamma, dbeta;
/// plus dh when `fused`) of `norm` with every tensor in its dtype of `storage`.
fn check_mix(norm: Norm, storage: Storage, fused: bool, shape: Shape, seed: u64) {
    let c = ctx();
    let f16 = if c.uses_native_f16() { "f16 native" } else { "f16 packed" };
    let context = format!("{f16}, {norm:?}, storage {storage}, fused {fused}, {shape:?}, seed {seed}");
    let s = storage;
    let n = shape.elements();
    // Odd seeds put every tensor at an element offset of 3 (the scalar layout, 16-bit
    // tensors starting mid-word), even ones at 8 (the vector layout).
    let pad = if seed % 2 == 1 { 3 } else { 8 };
    let mut r = rng(seed);
    let x = stored(&randn(&mut r, n).iter().map(|v| v + 0.5).collect::<Vec<_>>(), s.x);
    let res = stored(&randn(&mut r, n), s.residual);
    let dy = stored(&randn(&mut r, n), s.dy);
    let dh = stored(&randn(&mut r, n), s.dh);
    let g = stored(&randn(&mut r, shape.cols).iter().map(|v| 1.0 + 0.25 * v).collect::<Vec<_>>(), s.gamma);
    let b = stored(&randn(&mut r, shape.cols).iter().map(|v| 0.5 * v).collect::<Vec<_>>(), s.beta);
    let place = |v: Option<&[f64]>, len: usize, dtype: DType| Placed::new(c, v, len, dtype, pad);
    let (xb, resb, dyb, dhb) = (
        place(Some(&x), n, s.x),
        place(Some(&res), n, s.residual),
        place(Some(&dy), n, s.dy),
        place(Some(&dh), n, s.dh),
    );
    let (gb, bb) = (place(Some(&g), shape.cols, s.gamma), place(Some(&b), shape.cols, s.beta));
    let (yb, hb, dxb) = (place(None, n, s.y), place(None, n, s.h), place(None, n, s.dx));
    let (dgb, dbb) = (place(None, shape.cols, DType::F32), place(None, shape.cols, DType::F32));
    let rms = RmsNormConfig { eps: 1e-5, storage, ..Default::default() };
    let ln = LayerNormConfig { storage, ..Default::default() };
    let workspace = workspace_for(c, norm, rms, ln, shape);
    let step = Step {
        x: xb.tensor(),
        y: yb.tensor(),
        dy: dyb.tensor(),
        dx: dxb.tensor(),
        residual: fused.then(|| resb.tensor()),
        h: fused.then(|| hb.tensor()),
        dh: fused.then(|| dhb.tensor()),
        gamma: Some(gb.tensor()),
        beta: Some(bb.tensor()),
        dgamma: Some(dgb.tensor()),
        dbeta: Some(dbb.tensor()),
        workspace: Some((&workspace).into()),
    };
    record_step(c, norm, rms, ln, shape, &step, &context);

    // The forward normalizes x + residual, summed in f32 before h is rounded to its dtype.
    let h: Vec<f64> = if fused { x.iter().zip(&res).map(|(a, b)| a + b).collect() } else { x.clone() };
    let want = Reference::of(norm, &h, &x, &g, &b, &dy, shape, &rms, &ln);
    check_stored("y", &yb.read(c, "y", &context), &want.y, s.y, FORWARD, 0.0, &context);
    if fused {
        let sum = Bar { rel: 1e-7, atol: 0.0, rtol: 2f64.powi(-24) };
        check_stored("h", &hb.read(c, "h", &context), &h, s.h, sum, 0.0, &context);
    } else {
        assert!(
            hb.read(c, "h", &context).iter().all(|v| v.is_nan()),
            "h written without a residual ({context})"
        );
    }
    let (dgamma, dbeta) = (dgb.read(c, "dgamma", &context), dbb.read(c, "dbeta", &context));
    let dh = fused.then_some(&dh[..]);
    let dx = dxb.read(c, "dx", &context);
    want.check_backward(&dx, s.dx, dh, Some(&dgamma), Some(&dbeta), &dy, &g, shape, &context);
}

const SHAPES: [(usize, usize); 6] = [(3, 257), (5, 64), (2, 1001), (1, 7), (4, 768), (3, 4097)];

/// Every pairwise storage through `norm`'s forward and backward. (A test per norm, so that
/// the harness runs them side by side: their pipelines' compiles are most of the time.)
fn every_pair(norm: Norm) {
    let rows = pairwise();
    assert!(rows.len() <= 20, "{} rows", rows.len());
    for (i, &storage) in rows.iter().enumerate() {
        let (r, cols) = SHAPES[i % SHAPES.len()];
        check_mix(norm, storage, true, Shape::new(r, cols), 100 + i as u64);
    }
}

#[test]
fn every_pair_of_tensors_in_every_pair_of_dtypes_rms_norm() {
    every_pair(Norm::Rms);
}

#[test]
fn every_pair_of_tensors_in_every_pair_of_dtypes_layer_norm() {
    every_pair(Norm::Layer);
}

/// The mixes engines ask for: an f32 residual stream with a 16-bit y (the pre-norm block
/// of an LLM), 16-bit x with f32 y and dx (mixed-precision training), 16-bit activations
/// with f32 gamma and beta; each with and without the fused residual.
#[test]
fn the_mixes_engines_use() {
    let mut mixes = Vec::new();
    for half in [DType::F16, DType::BF16] {
        mixes.push(Storage { y: half, ..Storage::default() });
        mixes.push(Storage { x: half, residual: half, dy: half, dh: half, ..Storage::default() });
        mixes.push(Storage::uniform(half).with_params(DType::F32));
    }
    for (i, &storage) in mixes.iter().enumerate() {
        for fused in [false, true] {
            let (r, cols) = SHAPES[(i + usize::from(fused)) % SHAPES.len()];
            let seed = 200 + 2 * i as u64 + u64::from(fused);
            for norm in [Norm::Rms, Norm::Layer] {
                check_mix(norm, storage, fused, Shape::new(r, cols), seed);
            }
        }
    }
}

/// In place needs one dtype: y over x in another dtype is refused (its elements would not
/// line up with the ones it replaces).
#[test]
fn in_place_across_dtypes_is_refused() {
    let c = ctx();
    let shape = Shape::new(2, 64);
    let buffer = common::storage(c, 4 * 128);
    let storage = Storage { y: DType::BF16, ..Storage::default() };
    let op = RmsNormForwardOp::new(c, RmsNormConfig { storage, ..Default::default() }).unwrap();
    let f = RmsNormForward {
        x: (&buffer).into(),
        residual: None,
        gamma: None,
        y: (&buffer).into(),
        h: None,
        rstd: None,
    };
    let e = op.bind(shape, &f).err().expect("in place across dtypes");
    assert_eq!(e, NormError::Aliasing { written: "y", other: "x" }, "{e}");
}
