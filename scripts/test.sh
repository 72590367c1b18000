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
# GALLIVM_PERF=nopt: llvmpipe compiles each pipeline with LLVM at its first dispatch, most of
# lavapipe's pass on a machine whose Mesa shader cache is empty, as CI's is; without LLVM's
# optimization passes that cost fell by a third (BENCHMARKS.md, "One entry point per walk").
# The tests check results, never speed; the benchmark keeps the optimized code. SwiftShader
# does not read it.
for icd in "$lavapipe" "$swiftshader"; do
    echo "== every test on $(VK_ICD_FILENAMES="$icd" cargo run --release -q --example adapter)"
    GALLIVM_PERF=nopt VK_ICD_FILENAMES="$icd" cargo test --release --workspace "$@"
done
# And on a hardware GPU, where the machine has one.
if gpu="$(WGPU_NORM_ADAPTER=hardware cargo run --release -q --example adapter 2>/dev/null)"; then
    echo "== every test on $gpu"
    WGPU_NORM_ADAPTER=hardware cargo test --release --workspace "$@"
fi
# And in the browser.
bash scripts/test-web.sh "$@"
