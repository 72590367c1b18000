//! The kernels on the browser's WebGPU, checked against the f64 reference compiled to wasm.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use wgpu_norm::{LayerNormConfig, NormContext, RmsNormConfig, Shape, reference};

wasm_bindgen_test_configure!(run_in_browser);

fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn rel_err(gpu: &[f32], want: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (g, w) in gpu.iter().zip(want) {
        num += (f64::from(*g) - w).powi(2);
        den += w * w;
    }
    (num / den).sqrt()
}

async fn context() -> NormContext {
    let ctx = NormContext::with_options_async(Default::default()).await.expect("a WebGPU adapter");
    let i = ctx.adapter_info();
    console_log!("adapter: {} ({:?}), subgroups: {}", i.name, i.backend, ctx.uses_subgroups());
    assert_eq!(i.backend, wgpu::Backend::BrowserWebGpu, "WebGPU, not a fallback");
    ctx
}

#[wasm_bindgen_test]
async fn rms_norm_forward_matches_the_reference() {
    let ctx = context().await;
    for (rows, cols) in [(1, 1), (3, 7), (5, 1001), (2, 4097)] {
        let shape = Shape::new(rows, cols);
        let x = noise(shape.elements(), 1);
        let cfg = RmsNormConfig::default();
        let out = ctx.rms_norm_forward_async(&x, None, shape, &cfg).await.unwrap();
        let want = reference::rms_norm_forward(&x, None, shape, &cfg).unwrap();
        let e = rel_err(&out.y, &want.y);
        assert!(e < 1e-6, "{rows}x{cols}: relative error {e:e}");
    }
}

#[wasm_bindgen_test]
async fn layer_norm_backward_matches_the_reference() {
    let ctx = context().await;
    let shape = Shape::new(9, 1001);
    let (x, dy, g) = (noise(shape.elements(), 2), noise(shape.elements(), 3), noise(shape.cols, 4));
    let cfg = LayerNormConfig::default();
    let out = ctx.layer_norm_backward_async(&x, Some(&g), &dy, None, None, shape, &cfg).await.unwrap();
    let want = reference::layer_norm_backward(&x, Some(&g), &dy, shape, &cfg).unwrap();
    let e = rel_err(&out.dx, &want.dx);
    assert!(e < 1e-5, "dx: relative error {e:e}");
}
