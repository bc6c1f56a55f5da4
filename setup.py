"""Packaging for hpcflow (distribution name ``hpcflow-lft``; PyPI's ``hpcflow`` is another project)."""

import os

from setuptools import Extension, find_packages, setup


def compiled_kernels() -> dict:
    """The CPU kernels (hpcflow/kernels/csrc) as a C++ module with the CPython API only: no torch
    headers, so it builds in seconds, in or out of build isolation, and does not depend on the
    torch version. ``HPCFLOW_KERNELS=0`` skips it; ``HPCFLOW_CXXFLAGS`` replaces the optimisation
    flags (the default tunes for the building machine: an image that runs elsewhere sets a
    portable ``-march``). Without the module every caller uses the torch reference.
    """
    if os.environ.get("HPCFLOW_KERNELS", "1") == "0":
        return {}
    flags = os.environ.get("HPCFLOW_CXXFLAGS", "-O3 -march=native").split()
    ext = Extension(
        "hpcflow.kernels._cpu",
        ["hpcflow/kernels/csrc/module.cpp"],
        language="c++",
        extra_compile_args=[*flags, "-std=c++20", "-fopenmp"],
        extra_link_args=["-fopenmp"],
        depends=[f"hpcflow/kernels/csrc/{name}" for name in ("complex.h", "gauge.h", "rows.h", "wilson.h", "phi4.h")],
    )
    return {"ext_modules": [ext]}


setup(
    name="hpcflow-lft",
    version="0.1.0",
    description="Machine learning for lattice field theory at supercomputer scale",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["hpcflow", "hpcflow.*"]),
    install_requires=[
        "torch>=2.1",
        "numpy>=1.26",
        "scipy>=1.11",
        "h5py>=3.10",
        "matplotlib>=3.8",
        "tqdm>=4.66",
    ],
    extras_require={
        "mpi": ["mpi4py>=4"],
        "gpu": ["cupy-cuda12x>=13"],
        "workflow": ["parsl==2026.10.26"],
        "test": ["pytest>=8", "pytest-timeout>=2.3", "pyerrors>=2.10", "latqcdtools>=1.3", "mpi4py>=4", "parsl==2026.10.26", "spython>=0.3"],
    },
    entry_points={"console_scripts": ["hpcflow = hpcflow.cli:entry"]},
    **compiled_kernels(),
)
