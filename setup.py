"""Packaging for hpcflow (distribution name ``hpcflow-lft``; PyPI's ``hpcflow`` is another project)."""

from setuptools import find_packages, setup

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
)
