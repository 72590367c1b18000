#!/usr/bin/env bash
# What the browser suite and the page need, installed where missing: chromium and
# chromium-driver (Debian), the wasm32 target, and the wasm-bindgen-cli that matches the
# wasm-bindgen in Cargo.lock (in ~/.cargo/bin, where a CI cache keeps it).
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
