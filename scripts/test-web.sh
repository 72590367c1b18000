#!/usr/bin/env bash
# The browser suite: web/tests run on headless Chromium's WebGPU through wasm-bindgen-test
# and chromedriver, then the page check (scripts/web.sh --check). Installs what is missing
# first (scripts/install-web.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-web.sh
(
    cd web
    # webdriver.json beside web/Cargo.toml passes Chromium the flags WebGPU needs headless. The
    # runner's default timeout (20 s for the whole run) is short for WebGPU on a CPU.
    WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-600}" \
        CHROMEDRIVER="$(command -v chromedriver)" \
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
        cargo test --target wasm32-unknown-unknown "$@"
)
bash scripts/web.sh --check
