#!/usr/bin/env bash
# Idempotent set-up of hpcflow on Debian (root, or sudo): an MPI and parallel HDF5 from Debian,
# a virtual environment in .venv with torch, mpi4py, h5py built against the MPI-enabled HDF5,
# Horovod, and the package itself in editable mode with its test extras.
# Shared by the Makefile, .ci/run and containers/hpcflow.def. A second run that finds
# everything in place returns in about a second. Recipe and pitfalls: shared/ENVIRONMENT.md.
#
# Environment:
#   HPCFLOW_VENV            the environment (default <repo>/.venv); PYTHON its interpreter (python3)
#   HPCFLOW_MPI=openmpi     Debian's Open MPI and hdf5-openmpi (default: Debian hosts, the tests)
#   HPCFLOW_MPI=mpich       Debian's MPICH 4 and hdf5-mpich: the MPICH ABI (libmpi.so.12) of Cray
#                           MPICH and Intel MPI, for images run on Frontier, Perlmutter, Polaris, Aurora
#   HPCFLOW_MPI=site        the site's MPI and parallel HDF5, nothing from Debian: MPICC (default
#                           cc, the Cray wrapper) and HDF5_DIR (e.g. from module load cray-hdf5-parallel)
#   HPCFLOW_TORCH=auto|cpu|cuda  torch's build (auto: CUDA where nvidia-smi sees a GPU, else CPU)
#   HPCFLOW_HOROVOD=0       skip the Horovod build (the optional backend)
#   HPCFLOW_TEST_SERVICES=0 no Slurm/munge for the tests (the container image)
#   HPCFLOW_KERNELS=0       skip the compiled CPU kernels (the torch reference is used)
#   HPCFLOW_CXXFLAGS        their optimisation flags (default -O3 -march=native: this machine)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${HPCFLOW_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
MPI_FLAVOUR=${HPCFLOW_MPI:-openmpi}
HOROVOD=${HPCFLOW_HOROVOD:-1}
HOROVOD_VERSION=0.28.1
TORCH_VERSION=2.13.0
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

APT_PACKAGES=(pkg-config cmake build-essential)
case $MPI_FLAVOUR in
    openmpi) APT_PACKAGES+=(openmpi-bin libopenmpi-dev libhdf5-openmpi-dev)
             MPICC_BIN=mpicc.openmpi; MPI_LIB=libmpi.so.40; MPI_NAME='Open MPI'; HDF5_TAG=openmpi; HDF5_BUILD=(HDF5_PKGCONFIG_NAME=hdf5-openmpi) ;;
    mpich)   APT_PACKAGES+=(mpich libmpich-dev libhdf5-mpich-dev)
             MPICC_BIN=mpicc.mpich; MPI_LIB=libmpich.so.12; MPI_NAME=MPICH; HDF5_TAG=mpich; HDF5_BUILD=(HDF5_PKGCONFIG_NAME=hdf5-mpich) ;;
    site)    MPICC_BIN=${MPICC:-cc}; MPI_LIB=""; MPI_NAME=""; HDF5_TAG=""
             HDF5_BUILD=(HDF5_DIR="${HDF5_DIR:?HPCFLOW_MPI=site needs HDF5_DIR, the parallel HDF5 of the site}") ;;
    *)       echo "hpcflow: HPCFLOW_MPI=$MPI_FLAVOUR: expected openmpi, mpich or site" >&2; exit 2 ;;
esac
# A single-node Slurm for the tests (started and stopped by the test fixtures, never as a
# service); HPCFLOW_TEST_SERVICES=0 leaves it out (the container image does).
[[ ${HPCFLOW_TEST_SERVICES:-1} == 0 ]] || APT_PACKAGES+=(slurm-wlm munge)
# Debian's own python3 needs python3-venv and python3-dev for the venv and the compiled builds;
# another interpreter (pyenv, a module) is asked directly.
"$PYTHON" -c 'import ensurepip, sysconfig, os, sys; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null \
    || APT_PACKAGES+=(python3-venv python3-dev)

STAMP=$VENV/.hpcflow-install
WANT=$( (cat scripts/install.sh scripts/check_mpi_stack.py setup.py hpcflow/kernels/csrc/*; echo "${HPCFLOW_TEST_SERVICES:-1} $MPI_FLAVOUR $HOROVOD ${HPCFLOW_TORCH:-auto} ${HPCFLOW_KERNELS:-1} ${HPCFLOW_CXXFLAGS:-}") | sha256sum | cut -d' ' -f1)

missing_apt() {
    local p
    for p in "${APT_PACKAGES[@]}"; do
        # no pipe into 'grep -q' under pipefail: its early exit kills a writer that writes twice (SIGPIPE)
        [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *"ok installed" ]] || echo "$p"
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
    $SUDO apt-get install -y -q --no-install-recommends $missing
fi

[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q)

# torch first and pinned: a plain 'torch' requirement would pull a multi-GB CUDA build. Where
# there is no GPU the CPU build comes from torch's own index; where that index cannot be reached
# (these development machines: only PyPI), the plain pin, which a local wheel cache may serve.
torch_build=${HPCFLOW_TORCH:-auto}
if [[ $torch_build == auto ]]; then
    torch_build=cpu
    if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then torch_build=cuda; fi
fi
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    if [[ $torch_build == cpu ]] && curl -fsS --max-time 5 -o /dev/null "$TORCH_CPU_INDEX/torch/" 2>/dev/null; then
        echo "hpcflow: torch $TORCH_VERSION, CPU build ($TORCH_CPU_INDEX)"
        "${PIP[@]}" --index-url "$TORCH_CPU_INDEX" "torch==$TORCH_VERSION"
    else
        echo "hpcflow: torch $TORCH_VERSION from PyPI ($torch_build; the CUDA build unless a local wheel serves the pin)"
        "${PIP[@]}" "torch==$TORCH_VERSION"
    fi
fi
"${PIP[@]}" 'setuptools>=77' wheel 'cython>=3' pkgconfig 'numpy>=1.26'

# mpi4py: the binary wheel loads Debian's Open MPI; MPICH (Debian's or the site's) needs a build
# against it (the wheel looks for libmpi.so.12 under another name), not from pip's wheel cache.
if ! "$VENV/bin/python" -c 'import mpi4py' 2>/dev/null; then
    if [[ $MPI_FLAVOUR == openmpi ]]; then
        "${PIP[@]}" 'mpi4py>=4'
    else
        echo "hpcflow: building mpi4py against $MPICC_BIN (a minute, once)"
        MPICC=$MPICC_BIN "${PIP[@]}" --no-cache-dir --no-binary=mpi4py --no-build-isolation 'mpi4py>=4'
    fi
fi

# h5py against the MPI-enabled HDF5 (the PyPI wheel is serial); about 4 minutes once. Never from
# pip's wheel cache: a wheel built earlier against another MPI would be taken (seen: an MPICH
# environment got the Open MPI build of h5py).
if ! "$VENV/bin/python" -c 'import h5py, sys; sys.exit(not h5py.get_config().mpi)' 2>/dev/null; then
    echo "hpcflow: building parallel h5py against $MPICC_BIN (a few minutes, once)"
    env CC="$MPICC_BIN" HDF5_MPI=ON "${HDF5_BUILD[@]}" \
        "${PIP[@]}" --no-cache-dir --force-reinstall --no-deps --no-binary=h5py --no-build-isolation h5py
fi

# Horovod (the optional data-parallel backend; the test suite runs it at 2 ranks). 0.28.1 is the
# last release and asks CMake for C++14, but torch >= 2.1 headers need C++17 (fixed upstream after
# the release): build the sdist with the standard raised to 17. About 5 minutes, once.
if [[ $HOROVOD == 1 ]] && ! "$VENV/bin/python" -c "import horovod.torch" 2>/dev/null; then
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

# The rest after h5py so that nothing replaces the MPI build with the serial wheel. The editable
# install also compiles the CPU kernels (hpcflow/kernels/csrc, about 10 s); HPCFLOW_KERNELS=0
# skips them.
"${PIP[@]}" --no-build-isolation -e ".[test]"
if [[ ${HPCFLOW_KERNELS:-1} != 0 ]]; then
    "$VENV/bin/python" -c "from hpcflow.kernels import compiled, why_not_compiled; assert compiled(), why_not_compiled()"
fi
# h5py still the MPI build, and h5py and mpi4py on the same MPI as the loader maps them (two
# MPIs in one process abort)
"$VENV/bin/python" scripts/check_mpi_stack.py "$MPI_LIB" "${MPI_NAME:-}" "${HDF5_TAG:-}"

echo "$WANT" > "$STAMP"
echo "hpcflow: environment ready in $VENV (MPI: $MPI_FLAVOUR, torch: $torch_build)"
