#!/usr/bin/env bash
# Every test, on the real adapter (lavapipe where there is no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo test --release --workspace "$@"
