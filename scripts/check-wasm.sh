#!/usr/bin/env bash
# The library on wasm32 (the browser's WebGPU): clippy clean, and no blocking crate in its
# dependency tree. Adds the target where it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi
cargo clippy --target wasm32-unknown-unknown -p wgpu-norm -- -D warnings
cargo clippy --target wasm32-unknown-unknown -p wgpu-norm-web --all-targets -- -D warnings
tree="$(cargo tree --target wasm32-unknown-unknown -p wgpu-norm -e normal)"
if [[ "$tree" == *pollster* ]]; then
    echo "pollster is in the wasm32 dependency tree: nothing may block in a browser" >&2
    exit 1
fi
echo "wasm32: clippy clean, no pollster in the dependency tree"
