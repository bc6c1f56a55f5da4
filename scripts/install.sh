#!/usr/bin/env bash
# Idempotent set-up of hpcflow on Debian (root, or sudo): Open MPI and parallel HDF5 from
# Debian, a virtual environment in .venv with torch (CPU build), mpi4py, h5py built against
# the MPI-enabled HDF5, and the package itself in editable mode with its test extras.
# Shared by the Makefile, .ci/run and containers/hpcflow.def. A second run that finds
# everything in place returns in about a second. Recipe and pitfalls: shared/ENVIRONMENT.md.
#
# Environment: HPCFLOW_VENV (default <repo>/.venv), PYTHON (default python3),
# HPCFLOW_TEST_SERVICES=0 (no Slurm/munge for the tests: the container image).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${HPCFLOW_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
APT_PACKAGES=(openmpi-bin libopenmpi-dev libhdf5-openmpi-dev pkg-config cmake)
# A single-node Slurm for the tests (started and stopped by the test fixtures, never as a
# service); HPCFLOW_TEST_SERVICES=0 leaves it out (the container image does).
[[ ${HPCFLOW_TEST_SERVICES:-1} == 0 ]] || APT_PACKAGES+=(slurm-wlm munge)
HOROVOD_VERSION=0.28.1
TORCH_VERSION=2.13.0
STAMP=$VENV/.hpcflow-install
WANT=$( (cat scripts/install.sh setup.py; echo "${HPCFLOW_TEST_SERVICES:-1}") | sha256sum | cut -d' ' -f1)

missing_apt() {
    local p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"
    done
}

if [[ -f $STAMP && $(cat "$STAMP") == "$WANT" && -z $(missing_apt) ]]; then
    echo "hpcflow: environment up to date in $VENV"
    exit 0
fi

missing=$(missing_apt)
if [[ -n $missing ]]; then
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO=sudo
    echo "hpcflow: installing Debian packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q --no-install-recommends $missing build-essential
fi

[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q)

# torch first and pinned: a plain 'torch' requirement would pull a multi-GB CUDA build.
"$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null \
    || "${PIP[@]}" "torch==$TORCH_VERSION"
"${PIP[@]}" 'setuptools>=77' wheel 'cython>=3' pkgconfig 'numpy>=1.26' 'mpi4py>=4'

# h5py against Debian's MPI-enabled HDF5 (the PyPI wheel is serial); about 4 minutes once.
if ! "$VENV/bin/python" -c 'import h5py, sys; sys.exit(not h5py.get_config().mpi)' 2>/dev/null; then
    echo "hpcflow: building parallel h5py (a few minutes, once)"
    CC=mpicc HDF5_MPI=ON HDF5_PKGCONFIG_NAME=hdf5-openmpi \
        "${PIP[@]}" --force-reinstall --no-deps --no-binary=h5py --no-build-isolation h5py
fi

# Horovod (the optional data-parallel backend; the test suite runs it at 2 ranks). 0.28.1 is the
# last release and asks CMake for C++14, but torch >= 2.1 headers need C++17 (fixed upstream after
# the release): build the sdist with the standard raised to 17. About 5 minutes, once.
if ! "$VENV/bin/python" -c "import horovod.torch" 2>/dev/null; then
    echo "hpcflow: building Horovod $HOROVOD_VERSION with the C++17 patch (a few minutes, once)"
    HVD=$ROOT/build/horovod
    rm -rf "$HVD" && mkdir -p "$HVD"
    "$VENV/bin/python" -m pip download -q --no-deps --no-binary :all: "horovod==$HOROVOD_VERSION" -d "$HVD"
    tar xzf "$HVD/horovod-$HOROVOD_VERSION.tar.gz" -C "$HVD"
    SRC=$HVD/horovod-$HOROVOD_VERSION
    sed -i 's/set(CMAKE_CXX_STANDARD 14)/set(CMAKE_CXX_STANDARD 17)/' "$SRC/CMakeLists.txt" "$SRC/horovod/torch/CMakeLists.txt"
    grep -q 'CMAKE_CXX_STANDARD 17' "$SRC/horovod/torch/CMakeLists.txt"
    "${PIP[@]}" 'packaging' 'psutil' 'pyyaml' 'cloudpickle' 'cffi>=1.4'
    HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_MPI=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 \
        HOROVOD_WITHOUT_GLOO=1 MAKEFLAGS=-j"$(nproc)" "${PIP[@]}" --no-build-isolation "$SRC"
    "$VENV/bin/python" -c "import horovod.torch"
fi

# The rest after h5py so that nothing replaces the MPI build with the serial wheel.
"${PIP[@]}" --no-build-isolation -e ".[test]"
"$VENV/bin/python" -c 'import h5py; assert h5py.get_config().mpi, "h5py lost its MPI build"'

echo "$WANT" > "$STAMP"
echo "hpcflow: environment ready in $VENV"
