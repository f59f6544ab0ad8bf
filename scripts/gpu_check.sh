#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU and CuPy (pip install -e ".[gpu,test]").
#
# 1. The gpu-marked parity tests on CuPy: python -m pytest -m gpu, with NNFS_BACKEND=cupy.
# 2. The training benchmark on CuPy, against PyTorch CUDA where that is installed.
#
# Finishes within about 5 minutes (each part has its own time limit) and prints the
# benchmark table last. Exits non-zero, saying why, when there is no usable GPU, when
# a test fails or when a part runs out of time.
set -uo pipefail
cd "$(dirname "$0")/.."

fail() { echo "gpu_check: $*" >&2; exit 1; }

command -v nvidia-smi >/dev/null 2>&1 || fail "nvidia-smi not found: this machine has no NVIDIA driver, so no GPU to check"
nvidia-smi -L >/dev/null 2>&1 || fail "nvidia-smi finds no usable NVIDIA GPU ($(nvidia-smi -L 2>&1 | head -n 1))"
python - <<'PY' || fail "CuPy cannot use the GPU (see above); install the wheel for your CUDA: pip install -e \".[gpu]\" or \".[gpu-cuda13]\""
import sys
try:
    import cupy
except ImportError:
    sys.exit("CuPy is not installed")
if not cupy.is_available():
    sys.exit("CuPy is installed but finds no usable GPU")
print("gpu_check: CuPy", cupy.__version__, "on", cupy.cuda.runtime.getDeviceProperties(0)["name"].decode())
PY

export NNFS_BACKEND=cupy
status=0

echo "gpu_check: parity tests (pytest -m gpu, NNFS_BACKEND=cupy)"
timeout 130 python -m pytest -q -m gpu -p no:cacheprovider
code=$?
case $code in
    0) ;;
    5) echo "gpu_check: no gpu-marked tests were collected" >&2; status=1 ;;
    124) echo "gpu_check: the GPU tests ran out of time (130 s)" >&2; status=1 ;;
    *) echo "gpu_check: GPU tests failed (pytest exit code $code)" >&2; status=1 ;;
esac

echo "gpu_check: benchmark (CuPy against PyTorch CUDA where installed)"
table=$(timeout 150 python benchmarks/bench.py --configs 1x28x28:64,1x28x28:256,3x32x32:64,3x32x32:256 \
    --steps 50 --warmup 10 2>&1)
code=$?
if [ $code -ne 0 ]; then
    echo "$table" >&2
    [ $code -eq 124 ] && echo "gpu_check: the benchmark ran out of time (150 s)" >&2 \
        || echo "gpu_check: the benchmark failed (exit code $code)" >&2
    exit 1
fi
echo
echo "$table" | grep -v "^  done "
[ $status -eq 0 ] && echo "gpu_check: OK" || echo "gpu_check: FAILED (see above)"
exit $status
