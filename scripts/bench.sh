#!/usr/bin/env bash
# The benchmark: both norms, forward and backward, on the best adapter next to the CPU, with
# a roofline measured in the same run. Arguments go to normbench (`--help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo run --release -p normbench -- "$@"
