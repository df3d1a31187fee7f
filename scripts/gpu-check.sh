#!/usr/bin/env bash
# The whole GPU check in one go, for a machine with an NVIDIA GPU and the CUDA toolkit but
# possibly none of vidx's other dev files and no network (DECISIONS.md §11): builds common/,
# kernels/ and their tests only (-DVIDX_GPU_ONLY=ON), runs every kernel against its CPU loop,
# then compute-sanitizer memcheck and racecheck on the same test. Prints one verdict line.
#
# Usage: scripts/gpu-check.sh [BUILD_DIR]      (default build-gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-gpu}"
export PATH="/usr/local/cuda/bin:$PATH"
command -v nvcc >/dev/null || { echo "gpu-check: nvcc not found (install the CUDA toolkit)" >&2; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# Build only for this GPU's architecture: minutes matter on a lent machine.
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)
archs="${arch:+$arch-real}"
cmake -S . -B "$build" "${generator[@]}" -DVIDX_GPU_ONLY=ON -DVIDX_CUDA=ON \
    ${archs:+-DCMAKE_CUDA_ARCHITECTURES=$archs} >/dev/null
cmake --build "$build" -j "$(nproc)"

status=0
echo "== kernels vs CPU"
"$build/tests/kernels/test_kernels" || status=1
if command -v compute-sanitizer >/dev/null; then
    for tool in memcheck racecheck; do
        echo "== compute-sanitizer $tool"
        compute-sanitizer --tool "$tool" --error-exitcode 9 "$build/tests/kernels/test_kernels" \
            >"$build/sanitizer-$tool.log" 2>&1 || { status=1; tail -30 "$build/sanitizer-$tool.log"; }
        tail -2 "$build/sanitizer-$tool.log"
    done
else
    echo "gpu-check: compute-sanitizer not found; sanitizer runs skipped" >&2
    status=1
fi
if [ "$status" = 0 ]; then echo "gpu-check: PASS"; else echo "gpu-check: FAIL"; fi
exit "$status"
