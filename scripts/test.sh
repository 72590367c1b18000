#!/usr/bin/env bash
# Every test, on each Vulkan driver the scripts install: Mesa's lavapipe (subgroups of 8,
# SHADER_F16) and SwiftShader (subgroups of 4, no f16: the packed path), both on the CPU.
# Each run names its adapter first; a missing driver or adapter fails the run. Then the
# browser suite and the page check on headless Chromium's WebGPU (scripts/test-web.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
swiftshader="$(bash scripts/install-swiftshader.sh)"
lavapipe="$(compgen -G '/usr/share/vulkan/icd.d/lvp_icd.*.json' | head -n 1 || true)"
if [ -z "$lavapipe" ]; then
    echo "lavapipe's ICD is missing from /usr/share/vulkan/icd.d" >&2
    exit 1
fi
# One driver's pass. GALLIVM_PERF=nopt: llvmpipe compiles each pipeline with LLVM at its first
# dispatch, most of lavapipe's pass where Mesa's shader cache is empty, as on CI; without
# LLVM's optimization passes, tests/dtypes.rs took 224 s against 296 s (BENCHMARKS.md, "CI:
# both drivers at once"). The tests check results, never speed; the benchmark keeps the
# optimized code. SwiftShader does not read it.
driver_pass() {
    local icd="$1"
    shift
    echo "== every test on $(VK_ICD_FILENAMES="$icd" cargo run --release -q --example adapter)"
    GALLIVM_PERF=nopt VK_ICD_FILENAMES="$icd" cargo test --release --workspace "$@"
}
# Both drivers at once: a test binary keeps about one core busy (most of its time is one
# pipeline compile after another), so one pass alone leaves a 2-core machine half idle.
# SwiftShader's pass writes to a file, shown after lavapipe's.
cargo test --release --workspace --no-run "$@"
swiftshader_log="$(mktemp)"
driver_pass "$swiftshader" "$@" > "$swiftshader_log" 2>&1 &
swiftshader_pass=$!
lavapipe_status=0
driver_pass "$lavapipe" "$@" || lavapipe_status=$?
swiftshader_status=0
wait "$swiftshader_pass" || swiftshader_status=$?
cat "$swiftshader_log"
rm -f "$swiftshader_log"
if [ "$lavapipe_status" -ne 0 ] || [ "$swiftshader_status" -ne 0 ]; then
    echo "lavapipe's pass exited $lavapipe_status, SwiftShader's $swiftshader_status" >&2
    exit 1
fi
# And on a hardware GPU, where the machine has one.
if gpu="$(WGPU_NORM_ADAPTER=hardware cargo run --release -q --example adapter 2>/dev/null)"; then
    echo "== every test on $gpu"
    WGPU_NORM_ADAPTER=hardware cargo test --release --workspace "$@"
fi
# And in the browser.
bash scripts/test-web.sh "$@"
