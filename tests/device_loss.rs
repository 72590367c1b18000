//! A lost device: every later call returns a typed error, and so does a call in flight; none
//! panics (wgpu's default uncaptured-error handler would) and none hangs.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use wgpu_norm::host;

use common::{randn, rng, storage};
use wgpu_norm::{NormContext, NormError, RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape, reference};

#[test]
fn calls_after_the_device_is_lost_are_typed_errors() {
    let c = NormContext::with_options(Default::default()).unwrap();
    let (x, y) = (storage(&c, 1024), storage(&c, 1024));
    let op = RmsNormForwardOp::new(&c, RmsNormConfig::default()).unwrap();
    let shape = Shape::new(4, 64);
    op.bind(shape, &RmsNormForward::new(&x, &y)).unwrap();
    c.device().destroy();
    let lost = |e: Option<NormError>| matches!(e, Some(NormError::DeviceLost { .. }));
    let e = op.bind(shape, &RmsNormForward::new(&x, &y)).err();
    assert!(lost(e.clone()), "bind after the loss: {e:?}");
    let e = host::rms_norm_forward(&c, &[1.0_f32; 256], None, shape, &RmsNormConfig::default()).err();
    assert!(lost(e.clone()), "host call after the loss: {e:?}");
    let e = host::layer_norm_backward(
        &c,
        &[1.0_f32; 256],
        None,
        &[1.0; 256],
        None,
        None,
        shape,
        &Default::default(),
    )
    .err();
    assert!(lost(e.clone()), "backward after the loss: {e:?}");
}

/// The device is destroyed while four threads run calls in a loop: each call is right or a
/// typed error, and every thread finishes.
const CALLS: usize = 40;

#[test]
fn losing_the_device_mid_loop_on_several_threads() {
    let c = NormContext::with_options(Default::default()).unwrap();
    let shape = Shape::new(64, 512);
    let x = randn(&mut rng(801), shape.elements());
    let want = reference::rms_norm_forward(&x, None, shape, &RmsNormConfig::default()).unwrap();
    let (ok, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..CALLS {
                    match host::rms_norm_forward(&c, &x, None, shape, &RmsNormConfig::default()) {
                        Ok(out) => {
                            common::check("y", &out.y, &want.y, common::FORWARD, "seed 801");
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            assert!(
                                matches!(
                                    e,
                                    NormError::DeviceLost { .. }
                                        | NormError::Wgpu { .. }
                                        | NormError::Readback(_)
                                ),
                                "{e:?}"
                            );
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        // Lose it once some calls are through, while the rest are running.
        while ok.load(Ordering::Relaxed) < 8
            && ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < 4 * CALLS
        {
            std::thread::yield_now();
        }
        c.device().destroy();
    });
    let (ok, failed) = (ok.into_inner(), failed.into_inner());
    println!("{ok} calls right, {failed} typed errors");
    assert_eq!(ok + failed, 4 * CALLS);
    assert!(failed > 0, "the loss came after every call: make the loop longer");
    let e = host::rms_norm_forward(&c, &x, None, shape, &RmsNormConfig::default()).err();
    assert!(matches!(e, Some(NormError::DeviceLost { .. })), "after the loss: {e:?}");
}
