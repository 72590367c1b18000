#!/usr/bin/env bash
# The browser suite: web/tests run on headless Chromium's WebGPU through wasm-bindgen-test
# and chromedriver. Installs what is missing: chromium and chromium-driver (Debian), the
# wasm32 target, and the wasm-bindgen-cli that matches the wasm-bindgen in Cargo.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "Installing chromium and chromium-driver..." >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi
version="$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')"
if [ "$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
    # Not --locked: the registry here lacks one of its locked dependencies.
    cargo install -q wasm-bindgen-cli --version "$version"
fi
cd web
# webdriver.json beside web/Cargo.toml passes Chromium the flags WebGPU needs headless. The
# runner's default timeout (20 s for the whole run) is short for WebGPU on a CPU.
WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-600}" \
    CHROMEDRIVER="$(command -v chromedriver)" \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test --target wasm32-unknown-unknown "$@"
