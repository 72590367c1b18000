//! wgpu-norm in the browser.
//!
//! The page in `www/` (built and served by `bash scripts/web.sh`) calls [`run`]: RMSNorm and
//! LayerNorm, forward and backward, over a few shapes on the browser's WebGPU, each result
//! checked against the f64 reference compiled to wasm, each op timed, and a table and a chart
//! drawn into the page. `tests/` is the browser suite (`bash scripts/test-web.sh`).
//!
//! In the browser wgpu 30 maps no subgroups, so rows are reduced through workgroup memory.
#![cfg(target_arch = "wasm32")]

pub mod cases;
pub mod gpu;
pub mod query;
mod report;
pub mod timing;

use wasm_bindgen::prelude::wasm_bindgen;

/// Runs every case of [`cases::cases`] (the shapes and launch knobs of the page's query,
/// [`query::Query`]) and draws the report into the element `#report`.
/// The body's `data-status` ends as `pass` (every check passed), `fail`, or `error` (no
/// WebGPU adapter, or an op refused); a page check waits for it.
#[wasm_bindgen]
pub async fn run() {
    let page = report::Page::new();
    page.status("running");
    let outcome = match query::Query::of_page() {
        Ok(query) => cases::run_all(&page, &query).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(results) => {
            let passed = results.iter().all(|r| r.pass);
            page.finish(&results);
            page.status(if passed { "pass" } else { "fail" });
        }
        Err(e) => {
            page.error(&e);
            page.status("error");
        }
    }
}
