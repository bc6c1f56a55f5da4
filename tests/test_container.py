"""The Apptainer recipe, linted (Apptainer itself is not installable here): it parses, builds
from Debian 12, installs through scripts/install.sh, puts the environment on PATH, runs hpcflow,
tests the parallel h5py, and its shell sections are valid bash."""

from __future__ import annotations

import subprocess

import pytest

from conftest import REPO

spython = pytest.importorskip("spython.main.parse.parsers", reason="spython (test extra) lints the recipe")

RECIPE = REPO / "containers" / "hpcflow.def"


@pytest.fixture(scope="module")
def recipe():  # noqa: ANN201 - spython's Recipe
    return spython.SingularityParser(str(RECIPE)).recipe["spython-base"]


def test_recipe_builds_from_debian_and_installs_with_the_project_script(recipe) -> None:  # noqa: ANN001
    assert recipe.fromHeader == "debian:12"
    assert recipe.files == [". /opt/hpcflow"]
    install = 'HPCFLOW_TEST_SERVICES=0 HPCFLOW_MPI={{ MPI }} HPCFLOW_CXXFLAGS="-O3 -march=x86-64-v3" bash scripts/install.sh'
    assert install in recipe.install  # kernels for any AVX2 node, not just the building machine
    assert recipe.install.index("cd /opt/hpcflow") < recipe.install.index(install)
    assert "PATH=/opt/hpcflow/.venv/bin:$PATH" in recipe.environ
    assert recipe.cmd == 'exec hpcflow "$@"'
    assert "h5py.get_config().mpi" in (REPO / "containers" / "hpcflow.def").read_text().split("%test", 1)[1]


def test_recipe_shell_sections_are_valid_bash(recipe) -> None:  # noqa: ANN001
    body = "\n".join(line for line in recipe.install if not line.startswith("echo ")).replace("{{ MPI }}", "openmpi")
    res = subprocess.run(["bash", "-n"], input=body, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_recipe_documents_hybrid_mpi_and_gpu_flags() -> None:
    text = RECIPE.read_text()
    for needle in ("hybrid model", "srun --mpi=pmix", "--nv", "--rocm"):
        assert needle in text, needle


def test_the_mpi_of_the_image_is_a_build_argument_that_install_sh_knows() -> None:
    """MPI=openmpi by default, MPI=mpich for the MPICH ABI of Cray systems; install.sh refuses
    anything else before it installs a thing, and the Cray systems use the MPICH image."""
    text = RECIPE.read_text()
    assert "%arguments\n    MPI=openmpi\n" in text and "--build-arg MPI=mpich" in text
    script = (REPO / "scripts" / "install.sh").read_text()
    for flavour in ("openmpi)", "mpich)", "site)"):
        assert flavour in script
    res = subprocess.run(["bash", str(REPO / "scripts" / "install.sh")], env={"PATH": "/usr/bin:/bin", "HPCFLOW_MPI": "lam"},
                         capture_output=True, text=True)
    assert res.returncode == 2 and "HPCFLOW_MPI=lam: expected openmpi, mpich or site" in res.stderr
    for system in ("frontier", "polaris"):
        assert 'container = "hpcflow-mpich.sif"' in (REPO / "jobs" / "systems" / f"{system}.toml").read_text()
