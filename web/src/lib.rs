//! wgpu-norm in the browser: `tests/` runs the kernels on the browser's WebGPU through
//! wasm-bindgen-test (`bash scripts/test-web.sh`).
