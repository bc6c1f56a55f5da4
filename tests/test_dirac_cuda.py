"""CUDA Wilson-clover kernel: compiles with nvcc where it exists; equals the torch reference on a GPU."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from hpcflow.dirac import WilsonDirac
from hpcflow.dirac.cuda import SOURCE, cupy_available
from hpcflow.dirac.cuda.kernels import WilsonCloverKernel
from hpcflow.theories.gauge import random_su_n

requires_gpu = pytest.mark.skipif(not cupy_available(), reason="no CUDA GPU visible to CuPy (pip install .[gpu])")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_kernel_source_compiles(tmp_path: Path, arch: str) -> None:
    out = tmp_path / "wilson_clover.ptx"
    res = subprocess.run(["nvcc", "-ptx", f"-arch={arch}", "-o", str(out), str(SOURCE)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    ptx = out.read_text()
    assert ".entry wilson_clover_f64" in ptx and ".entry wilson_clover_f32" in ptx


def test_backend_choice_is_validated() -> None:
    links = random_su_n((4, 2, 2, 2, 2), 3, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="backend = 'gpu'"):
        WilsonDirac(links, mass=0.1, backend="gpu")
    assert not isinstance(WilsonDirac(links, mass=0.1).kernel, WilsonCloverKernel)  # CPU links: no CuPy
    assert WilsonDirac(links, mass=0.1, backend="torch").kernel is None


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("dtype, tol", [(torch.complex128, 1e-12), (torch.complex64, 1e-5)])
@pytest.mark.parametrize("csw, antiperiodic", [(0.0, False), (1.0, True)])
def test_cupy_kernel_equals_the_reference(dtype: torch.dtype, tol: float, csw: float, antiperiodic: bool) -> None:
    shape = (8, 4, 4, 6)
    gen = torch.Generator().manual_seed(1)
    links = random_su_n((4, *shape), 3, gen, dtype)
    psi = torch.view_as_complex(torch.randn(3, *shape, 4, 3, 2, generator=gen, dtype=torch.float64)).to(dtype)
    reference = WilsonDirac(links, mass=-0.4, csw=csw, antiperiodic_time=antiperiodic, backend="torch")(psi)
    gpu = WilsonDirac(links.cuda(), mass=-0.4, csw=csw, antiperiodic_time=antiperiodic, backend="cupy")
    assert gpu.kernel is not None
    out = gpu(psi.cuda()).cpu()
    err = ((out - reference).abs().max() / reference.abs().max()).item()
    assert err < tol, err
