#!/usr/bin/env bash
# The one GPU check of hpcflow: on one GPU (sized for an H200, at most about 8 minutes) it runs
#   1. the GPU tests (pytest -m gpu: CuPy kernel vs the torch reference, samplers, trainer and
#      solver on the GPU, CUDA streams),
#   2. the Dslash benchmark: CuPy kernel vs torch reference vs copy bandwidth at 16^4, 32^4, 48^4,
#      complex128 and complex64 (aim on the H200: CuPy Wilson at >= 0.6 of the copy bandwidth at
#      32^4 in complex64),
#   3. flow training and HMC chain throughput on the GPU against the CPU of the same machine,
# and writes everything into OUT_DIR: gpu.txt, pytest_gpu.xml, bench_dslash_cuda.json/.png,
# bench_devices.json, gpu_check.log. Runs with the machine's python3 and this checkout on
# PYTHONPATH (no install step: a GPU node may have no network).
#
# Usage: bash benchmarks/gpu_check.sh OUT_DIR
set -uo pipefail
OUT=${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
status=0
{
    date -u
    nvidia-smi -L || true
    $PY -c 'import torch, sys; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name()); sys.exit(not torch.cuda.is_available())' \
        || { echo "gpu_check: no CUDA device visible to torch"; exit 3; }
    $PY -c 'import cupy; print("cupy", cupy.__version__)' || echo "gpu_check: CuPy missing: the kernel rows are skipped"
} 2>&1 | tee "$OUT/gpu.txt"
[[ ${PIPESTATUS[0]} == 0 ]] || exit 3

step() {  # step NAME SECONDS COMMAND...: one part, its own time limit, its output in gpu_check.log
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit}s): $*" | tee -a "$OUT/gpu_check.log"
    local t0=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$OUT/gpu_check.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$OUT/gpu_check.log"
    [[ $rc == 0 ]] || status=1
}

step "pytest -m gpu" 200 $PY -m pytest -m gpu -q -rs -p no:cacheprovider --timeout=150 tests -o junit_family=xunit2 \
    --junitxml="$OUT/pytest_gpu.xml"
step "dslash" 150 $PY benchmarks/bench_dslash.py --device cuda --sizes 16 32 48 --sizes-2d --no-naive --seconds 0.3 --out "$OUT"
step "devices" 130 $PY benchmarks/bench_devices.py --seconds 1.0 --out "$OUT"
exit $status
