//! Both norms, forward and backward, on a real BERT's hidden states against the f64
//! reference: the input of all-MiniLM-L6-v2's last LayerNorm (tests/data), with that
//! LayerNorm's own gamma, beta and eps (1e-12). Its rows have outlier dimensions far above
//! the median one, and gamma is about 0 on them; a seeded random dy.

mod common;

use common::{Inputs, check_layer_on, check_rms_on, contexts, randn, rng};
use wgpu_norm::{LayerNormConfig, RmsNormConfig, Shape};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/minilm_layer5_output");

#[test]
fn both_norms_on_minilm_hidden_states() {
    let (dims, x) = common::read_npy(&format!("{DATA}.x.f32.npy"));
    let (_, gamma) = common::read_npy(&format!("{DATA}.gamma.f32.npy"));
    let (_, beta) = common::read_npy(&format!("{DATA}.beta.f32.npy"));
    let shape = Shape::new(dims[0], dims[1]);
    assert_eq!((shape.cols, gamma.len(), beta.len()), (384, 384, 384));
    // What makes the data hard: outliers far above the rest, and gamma near 0 on some.
    let largest = x.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
    let smallest_gamma = gamma.iter().fold(f32::INFINITY, |m, v| m.min(v.abs()));
    assert!(largest > 20.0 && smallest_gamma < 0.05, "max |x| {largest}, min |gamma| {smallest_gamma}");
    let dy = randn(&mut rng(12), shape.elements());
    let ln = LayerNormConfig { eps: 1e-12, ..Default::default() };
    let rms = RmsNormConfig { eps: 1e-12, ..Default::default() };
    for (label, c) in contexts() {
        for saved in [true, false] {
            let inputs = Inputs { shape, x: &x, dy: &dy, gamma: Some(&gamma), beta: Some(&beta), saved };
            let context = format!("MiniLM layer5.output, {label}, saved statistics {saved}, seed 12");
            check_layer_on(c, &inputs, &ln, &format!("layer_norm, {context}"));
            check_rms_on(c, &Inputs { beta: None, ..inputs }, &rms, &format!("rms_norm, {context}"));
        }
    }
}
