#!/usr/bin/env bash
# The GPU check: everything nnfs can only prove on an NVIDIA GPU, in one command, with one summary.
#
#   scripts/gpu_check.sh              # on the GPU machine, from a plain checkout
#   scripts/gpu_check.sh --rehearse   # anywhere: every part on the CPU stand-in, to check the script
#
# Needs nothing but the checkout and what is already installed (python3 with numpy, CuPy for the
# machine's CUDA, pytest, and nnfs's dependencies Pillow, tqdm and threadpoolctl; PyTorch with
# CUDA, mpi4py and NCCL where present): no network, no install step. A part whose packages are
# missing is not run and fails, naming them.
# The checkout's nnfs is used (PYTHONPATH=.). Parts, each with its own time limit (all together
# within 8 minutes, a cold CuPy kernel cache included):
#
#   tests    the gpu-marked tests on CuPy (python -m pytest -m "gpu and not nccl")
#   example  one short epoch of examples/CNN_custom_dataset.py with NNFS_BACKEND=cupy
#   bench    benchmarks/bench.py on CuPy against PyTorch CUDA (nnfs alone without PyTorch)
#   nccl     one rank training over NCCL, compared with one process (needs mpi4py)
#
# Then it prints one summary, between two marker lines, to paste as it is; the full logs stay in
# $GPU_CHECK_LOGS (default: a new folder under /tmp). Exit status: 0 when every part passed (or
# was skipped for a stated reason), 1 when one failed or ran out of time, 2 when there is no
# usable GPU (it then stops at once and says why). Environment: PYTHON (default python3),
# GPU_CHECK_LOGS.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
unset NNFS_DTYPE NNFS_TRANSPORT
START=$SECONDS
BUDGET=480

REHEARSE=0
case "${1:-}" in
    "") ;;
    --rehearse) REHEARSE=1 ;;
    *) echo "usage: scripts/gpu_check.sh [--rehearse]" >&2; exit 2 ;;
esac

stop() { echo "gpu_check: $*" >&2; exit 2; }

command -v "$PYTHON" >/dev/null 2>&1 || stop "no Python interpreter '$PYTHON' (set PYTHON=...)"
command -v timeout >/dev/null 2>&1 || stop "the 'timeout' command (GNU coreutils) is missing"
LOGS=${GPU_CHECK_LOGS:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
mkdir -p "$LOGS" || stop "cannot create the log folder $LOGS"

if [ $REHEARSE -eq 1 ]; then
    BACKEND=strict
    TEST_LIMIT=150 EXAMPLE_LIMIT=60 BENCH_LIMIT=120 NCCL_LIMIT=60
    EXAMPLE_ARGS=(--limit 10 --epochs 1 --batch_size 16)
    BENCH_ARGS=(--configs 1x28x28:32 --steps 2 --warmup 1 --threads 1)
else
    BACKEND=cupy
    # Most of the budget goes to the tests: they compile most of CuPy's kernels (a cold
    # kernel cache), which the later parts then find compiled.
    TEST_LIMIT=230 EXAMPLE_LIMIT=50 BENCH_LIMIT=120 NCCL_LIMIT=50
    EXAMPLE_ARGS=(--limit 60 --epochs 1 --batch_size 64)
    BENCH_ARGS=(--configs 1x28x28:64,1x28x28:256,3x32x32:256 --steps 30 --warmup 5)
    command -v nvidia-smi >/dev/null 2>&1 || stop "nvidia-smi not found: this machine has no NVIDIA driver, so no GPU to check"
    timeout 30 nvidia-smi -L >/dev/null 2>&1 || stop "nvidia-smi finds no usable NVIDIA GPU ($(timeout 30 nvidia-smi -L 2>&1 | head -n 1))"
fi

# What the machine is: one line each, and whether CuPy can use the GPU (else stop here).
timeout 90 "$PYTHON" - "$BACKEND" >"$LOGS/machine.txt" 2>"$LOGS/machine.log" <<'PY'
import importlib.util
import platform
import sys
import warnings

backend = sys.argv[1]
versions = [f"python {platform.python_version()}"]
import numpy
versions.append(f"numpy {numpy.__version__}")
machine = "CPU rehearsal (strict backend): no GPU is used"
if backend == "cupy":
    try:
        import cupy
    except ImportError:
        sys.exit("CuPy is not installed for this Python: install the wheel for the machine's "
                 "CUDA, e.g. pip install 'cupy-cuda13x[ctk]' (see docs/gpu.md)")
    if not cupy.is_available():
        sys.exit(f"CuPy {cupy.__version__} is installed but finds no usable GPU (check the driver)")
    runtime = cupy.cuda.runtime
    props = runtime.getDeviceProperties(0)
    free, total = runtime.memGetInfo()
    driver = runtime.driverGetVersion()
    built = runtime.runtimeGetVersion()
    machine = (f"{runtime.getDeviceCount()} x {props['name'].decode()} ({total / 2**30:.0f} GiB), "
               f"CUDA driver {driver // 1000}.{driver % 1000 // 10}, "
               f"CuPy built for CUDA {built // 1000}.{built % 1000 // 10}")
    versions.append(f"cupy {cupy.__version__}")
    from nnfs.backend.cupy_backend import find_nccl
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nccl, reason = find_nccl()
    versions.append(f"nccl {nccl.get_version()}" if nccl else f"nccl unusable ({reason})")
# What the parts import besides NumPy and CuPy: pytest and nnfs's own dependencies. Nothing is
# installed here, so a part that needs a missing one is reported as not run, saying which.
packages = {"pytest": "pytest", "PIL": "pillow", "tqdm": "tqdm", "threadpoolctl": "threadpoolctl"}
missing = [package for module, package in packages.items() if importlib.util.find_spec(module) is None]
if importlib.util.find_spec("torch"):
    import torch
    cuda = f"CUDA {torch.version.cuda}" if torch.cuda.is_available() else "no CUDA device"
    versions.append(f"torch {torch.__version__} ({cuda})")
else:
    versions.append("torch not installed")
versions.append("mpi4py installed" if importlib.util.find_spec("mpi4py") else "mpi4py not installed")
if missing:
    versions.append(f"not installed: {', '.join(missing)}")
print(machine)
print("; ".join(versions))
print(" ".join(missing))
PY
code=$?
if [ $code -ne 0 ]; then
    reason=$(tail -n 1 "$LOGS/machine.log")
    [ $code -eq 124 ] && reason="the machine check ran out of time (90 s)"
    stop "${reason:-the machine check failed (exit code $code)}; log: $LOGS/machine.log"
fi
export NNFS_BACKEND=$BACKEND
MISSING=$(sed -n 3p "$LOGS/machine.txt")

# -- the parts -------------------------------------------------------------------------------------
declare -a NAMES=() STATUS=() SECS=() DETAIL=()
failed=0

# run_part NAME LIMIT COMMAND...: run with a time limit, log to $LOGS/NAME.log, record the outcome.
run_part() {
    local name=$1 limit=$2
    shift 2
    local left=$((BUDGET - 10 - (SECONDS - START)))
    [ "$limit" -gt "$left" ] && limit=$left
    echo "gpu_check: $name (at most $limit s) ..." >&2
    local begin=$SECONDS code status
    if [ "$limit" -lt 5 ]; then
        code=124
        echo "no time left in the $BUDGET s budget" >"$LOGS/$name.log"
    else
        timeout -k 10 "$limit" "$@" >"$LOGS/$name.log" 2>&1 </dev/null
        code=$?
    fi
    case $code in
        0) status=PASS ;;
        124|137) status=TIMEOUT; failed=1 ;;
        *) status=FAIL; failed=1 ;;
    esac
    NAMES+=("$name") STATUS+=("$status") SECS+=($((SECONDS - begin))) DETAIL+=("")
    [ $status = TIMEOUT ] && DETAIL[${#DETAIL[@]}-1]="stopped at its time limit ($limit s)"
    return $code
}

# lacking PACKAGE...: those of the packages that this Python does not have (empty: it has all).
lacking() {
    local package found=()
    for package in "$@"; do
        case " $MISSING " in *" $package "*) found+=("$package") ;; esac
    done
    echo "${found[*]}"
}

# not_run NAME PACKAGES: record part NAME as failed without running it, for want of PACKAGES.
not_run() {
    local why="not run: needs $2, not installed for $PYTHON (the check installs nothing)"
    echo "$why" >"$LOGS/$1.log"
    NAMES+=("$1") STATUS+=(FAIL) SECS+=(0) DETAIL+=("$why")
    failed=1
}

# set_detail TEXT: the one-line detail of the part just run (a time-out keeps its own).
set_detail() {
    [ "${STATUS[${#STATUS[@]}-1]}" = TIMEOUT ] || DETAIL[${#DETAIL[@]}-1]=$1
}

# pytest_part NAME LIMIT MARKS NOT_COLLECTED [FLAGS...]: run the tests marked MARKS as part NAME;
# its detail is pytest's summary line, or NOT_COLLECTED (a failure) when none was collected.
pytest_part() {
    local name=$1 limit=$2 marks=$3 not_collected=$4 code
    shift 4
    run_part "$name" "$limit" "$PYTHON" -m pytest -q -m "$marks" -p no:cacheprovider "$@"
    code=$?
    set_detail "$(grep -E '(passed|failed|skipped|error)' "$LOGS/$name.log" | tail -n 1)"
    if [ $code -eq 5 ]; then  # pytest: nothing collected
        STATUS[${#STATUS[@]}-1]=FAIL failed=1
        set_detail "$not_collected"
    fi
}

# pytest collects every test module (they import Pillow and tqdm), and the NumPy references run
# with threadpoolctl; the example decodes images (Pillow) and draws progress (tqdm).
TEST_NEEDS=(pytest pillow tqdm threadpoolctl)
EXAMPLE_NEEDS=(pillow tqdm)

missing=$(lacking "${TEST_NEEDS[@]}")
if [ -n "$missing" ]; then
    not_run tests "$missing"
else
    pytest_part tests "$TEST_LIMIT" "gpu and not nccl" "no gpu-marked tests were collected" -rfE
fi

missing=$(lacking "${EXAMPLE_NEEDS[@]}")
if [ -n "$missing" ]; then
    not_run example "$missing"
else
    run_part example "$EXAMPLE_LIMIT" "$PYTHON" examples/CNN_custom_dataset.py "${EXAMPLE_ARGS[@]}" \
        --save "$LOGS/example/cnn.npz"
    set_detail "$(grep -E '^epoch ' "$LOGS/example.log" | tail -n 1 | tr -s ' ')"
fi

run_part bench "$BENCH_LIMIT" "$PYTHON" benchmarks/bench.py "${BENCH_ARGS[@]}"
set_detail "$(grep -E '^ *[0-9]+x[0-9]+x[0-9]+:' "$LOGS/bench.log" | wc -l) configurations, table below"

missing=$(lacking "${TEST_NEEDS[@]}")
if ! "$PYTHON" -c "import mpi4py" >/dev/null 2>&1; then
    NAMES+=(nccl) STATUS+=(SKIP) SECS+=(0) DETAIL+=("mpi4py is not installed: no MPI to bootstrap NCCL")
elif [ -n "$missing" ]; then
    not_run nccl "$missing"
else
    pytest_part nccl "$NCCL_LIMIT" "gpu and nccl" "the NCCL test was not collected" -rfEs
fi

# -- the summary -----------------------------------------------------------------------------------
total=$((SECONDS - START))
{
    echo "===== nnfs GPU check: paste from here ====="
    commit="not a git checkout"
    if revision=$(git rev-parse --short HEAD 2>/dev/null); then
        commit="commit $revision"
        git diff --quiet HEAD 2>/dev/null || commit="$commit with local changes"
    fi
    echo "date     $(date -u '+%Y-%m-%d %H:%M UTC'), $commit"
    echo "machine  $(sed -n 1p "$LOGS/machine.txt")"
    echo "software $(sed -n 2p "$LOGS/machine.txt")"
    for i in "${!NAMES[@]}"; do
        printf '%-8s %-7s %4s s  %s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECS[$i]}" "${DETAIL[$i]}"
    done
    echo
    grep -E -v '^  done ' "$LOGS/bench.log" | sed -n '/^nnfs training throughput/,$p'
    for i in "${!NAMES[@]}"; do
        if [ "${STATUS[$i]}" = FAIL ] || [ "${STATUS[$i]}" = TIMEOUT ]; then
            echo
            echo "--- ${NAMES[$i]}: ${STATUS[$i]}, the end of its log ($LOGS/${NAMES[$i]}.log) ---"
            tail -n 40 "$LOGS/${NAMES[$i]}.log"
        fi
    done
    echo
    [ $REHEARSE -eq 1 ] && echo "(a rehearsal on the CPU: nothing above ran on a GPU)"
    [ $failed -eq 0 ] && verdict=OK || verdict=FAILED
    echo "total    $total s of the $BUDGET s budget: $verdict (logs in $LOGS)"
    echo "===== to here ====="
} | tee "$LOGS/summary.txt"
exit $failed
