//! Autotuning: it picks a launch for every tuned kernel, the kernels stay exact on the
//! launches it picks, and its cache file round-trips, keeps other adapters' entries and
//! refuses a corrupt line with a typed error.

mod common;

use common::{Case, Input, check_layer, check_rms, ctx};
use wgpu_norm::{
    EpsPlacement, LayerNormBackwardOp, LayerNormConfig, NormContext, NormError, Shape, Storage, autotune,
};

const KERNELS: [&str; 5] =
    ["rms_norm_forward", "rms_norm_backward", "layer_norm_forward", "layer_norm_backward", "stream_copy"];

/// A context of its own on the test device, so the choices stay in this test (its
/// pipelines are shared: a choice is the context's own).
fn fresh() -> NormContext {
    ctx().sibling(Default::default())
}

fn temp_file(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("wgpu-norm-{name}-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn tuned_launches_are_timed_cached_and_exact() {
    let path = temp_file("launches");
    // Two buckets: short rows that fit a register tile, and a row too long for one.
    let shapes = [Shape::new(48, 96), Shape::new(3, 4100)];
    std::fs::write(&path, "some other adapter\trms_norm_forward\t64\t128\t2\ttile\n").unwrap();
    let c = fresh();
    let tuned = autotune(&c, &shapes, Storage::default(), Some(&path)).unwrap();
    assert_eq!(tuned.len(), shapes.len() * KERNELS.len(), "{tuned:#?}");
    for t in &tuned {
        assert!(KERNELS.contains(&t.kernel), "{t:?}");
        assert!(t.row_threads.is_power_of_two() && t.row_threads <= c.tuning().workgroup_size, "{t:?}");
        let (us, default) = (t.micros.unwrap(), t.default_micros.unwrap());
        assert!(us > 0.0 && default > 0.0, "{t:?}");
    }
    // Exact on what was chosen, including shapes that share a bucket with a tuned one.
    for (i, shape) in [Shape::new(48, 96), Shape::new(33, 100), Shape::new(3, 4100), Shape::new(4, 4097)]
        .into_iter()
        .enumerate()
    {
        let case = Case::new(shape.rows, shape.cols, Input::Randn, 1e-5, 500 + i as u64);
        check_rms(&c, "autotuned", &case, EpsPlacement::InsideSqrt);
        check_layer(&c, "autotuned", &case);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("some other adapter\trms_norm_forward"), "other adapters' lines are kept:\n{text}");
    assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 1 + tuned.len(), "{text}");

    // A new context on the same adapter takes every choice from the file, untimed.
    let again = fresh();
    let loaded = autotune(&again, &shapes, Storage::default(), Some(&path)).unwrap();
    assert_eq!(loaded.len(), tuned.len());
    for (a, b) in tuned.iter().zip(&loaded) {
        assert_eq!((a.kernel, a.row_threads, a.register_tile), (b.kernel, b.row_threads, b.register_tile));
        assert_eq!(b.micros, None, "{b:?} was timed again");
    }
    // Same launches, so the same workspace and bitwise the same gradients.
    assert_eq!(
        LayerNormBackwardOp::new(&c, LayerNormConfig::default()).unwrap().workspace_size(shapes[0]).unwrap(),
        LayerNormBackwardOp::new(&again, LayerNormConfig::default())
            .unwrap()
            .workspace_size(shapes[0])
            .unwrap()
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_corrupt_cache_file_is_a_typed_error() {
    let path = temp_file("corrupt");
    let c = fresh();
    autotune(&c, &[Shape::new(4, 8)], Storage::default(), Some(&path)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().find(|l| !l.starts_with('#')).unwrap();
    let adapter = line.split('\t').next().unwrap();
    std::fs::write(&path, format!("{adapter}\trms_norm_forward\t4\t8\t3\ttile\n")).unwrap();
    let e = autotune(&fresh(), &[Shape::new(4, 8)], Storage::default(), Some(&path)).unwrap_err();
    assert!(matches!(e, NormError::TuningFile { .. }), "{e}");
    assert!(e.to_string().contains("line 1"), "{e}");
    let e =
        autotune(&fresh(), &[Shape::new(4, 8)], Storage::default(), Some(&std::env::temp_dir())).unwrap_err();
    assert!(matches!(e, NormError::TuningFile { .. }), "a directory is no file: {e}");
    let _ = std::fs::remove_file(&path);
}

/// A cache file that cannot be written is reported before any timing, naming the user's
/// path, and changes nothing: the context then times the same shape afresh.
#[test]
fn an_unwritable_cache_path_fails_first_and_changes_nothing() {
    let c = fresh();
    let path = std::env::temp_dir()
        .join(format!("wgpu-norm-missing-dir-{}", std::process::id()))
        .join("launches.txt");
    let e = autotune(&c, &[Shape::new(4, 8)], Storage::default(), Some(&path)).unwrap_err();
    let NormError::TuningFile { path: named, message } = &e else { panic!("{e}") };
    assert_eq!(named, &path.display().to_string(), "{e}");
    // Only the check made before timing says this.
    assert!(message.contains("cannot write beside it"), "{e}");
    let tuned = autotune(&c, &[Shape::new(4, 8)], Storage::default(), None).unwrap();
    assert!(tuned.iter().all(|t| t.micros.is_some()), "a choice of the failed call was kept: {tuned:?}");
}
