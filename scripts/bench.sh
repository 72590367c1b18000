#!/usr/bin/env bash
# Runs both norms, forward and backward, on the best adapter and prints each result's error
# against the f64 reference. Arguments: [ROWS] [COLS].
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo run --release --example normalize -- "$@"
