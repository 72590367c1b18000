#!/usr/bin/env bash
# The page: builds web/src to wasm, binds it into web/www/pkg with wasm-bindgen, and serves
# web/www on http://127.0.0.1:${PORT:-8000}/ with Python's http.server. Open it in a browser
# with WebGPU.
#
# `--check` instead loads the page in headless Chromium through chromedriver, waits for its
# checks, saves a screenshot (web/screenshot.png, or $SCREENSHOT), and fails unless every check
# passed. `--check QUERY` loads the page with that URL query (web/src/query.rs), for example
# `--check '?shapes=4096x768&workgroup_size=64'`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-web.sh
cargo build --release --target wasm32-unknown-unknown -p wgpu-norm-web --lib
wasm-bindgen --target web --no-typescript --out-dir web/www/pkg \
    "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/wgpu_norm_web.wasm"
if [ "${1:-}" = "--check" ]; then
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    python3 -m http.server "$port" --bind 127.0.0.1 --directory web/www >/dev/null 2>&1 &
    server=$!
    trap 'kill $server' EXIT
    python3 scripts/page_check.py "http://127.0.0.1:$port/${2:-}" "${SCREENSHOT:-web/screenshot.png}"
else
    port="${PORT:-8000}"
    echo "Serving the page on http://127.0.0.1:$port/ (Ctrl-C stops it)"
    exec python3 -m http.server "$port" --bind 127.0.0.1 --directory web/www
fi
