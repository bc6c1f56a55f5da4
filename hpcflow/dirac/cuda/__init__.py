"""CUDA kernels for the Dirac operators, launched through CuPy (optional: ``pip install .[gpu]``)."""

from hpcflow.dirac.cuda.kernels import SOURCE, WilsonCloverKernel, cupy_available

__all__ = ["SOURCE", "WilsonCloverKernel", "cupy_available"]
