"""Gauge-equivariant preconditioners against no preconditioner and classical two-level multigrid,
approaching the critical mass (Lehner & Wettig's setting, scaled to this machine).

2D U(1) (the Schwinger model's Wilson operator) on 32^2 at beta = 3: a configuration of
jobs/cards/u1_32x32_b3.toml (sampled here if absent), m_crit from the smallest real part of the
spectrum of D at m = 0 (dense: 2048 x 2048), masses m_crit + 0.2, 0.1, 0.05, 0.02; FGMRES(30) to
tol 1e-8 with: no preconditioner (the baseline, measured in the same run), the paper's one-layer
one-hop PTC (9 paths in 4D, 5 in 2D) and a four-layer smoother (channels 1, 2, 2, 2, 1), both
trained at m_crit + 0.05 and used at every mass (transfer across masses), and the classical
two-level preconditioner on 4 x 4 blocks with 8 or 4 near-null vectors, chirally split (16 or 8
coarse vectors per block; 4 smoother iterations, coarse solve to 0.05).
The work in applications of D (hpcflow.workflow.solve.WORK_DEFINITION) is reported beside the
iterations. The 4D SU(3) 8^3 x 16 study of issue #15 is not part of this benchmark yet (it needs an
ensemble of hpcflow's gauge HMC at beta about 6: a GPU or a long CPU run).

Usage: python benchmarks/bench_precond.py [--steps 1000]
Output: a table, benchmarks/results/bench_precond.json and .png.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_json  # noqa: E402

from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402
from hpcflow.dirac import fgmres  # noqa: E402
from hpcflow.lattice.rng import ChainRNG  # noqa: E402
from hpcflow.models.precond import NeuralPreconditioner  # noqa: E402
from hpcflow.models.precond.multigrid import two_level_preconditioner  # noqa: E402
from hpcflow.workflow.operator import Configuration  # noqa: E402
from hpcflow.workflow.precond import precond_train, read_model  # noqa: E402
from hpcflow.workflow.runcard import validate_runcard  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DISTANCES = (0.2, 0.1, 0.05, 0.02)
MODELS = {"ptc_1h1l": [1, 1], "ptc_1h4l": [1, 2, 2, 2, 1]}
MULTIGRID = {"multigrid_nv8": 8, "multigrid_nv4": 4}  # near-null vectors, each split by chirality


def m_crit(config: Configuration) -> float:
    """The mass at which the smallest real part of the spectrum of D reaches 0: -min Re lambda(D(0))."""
    op = config.operator(0.0)
    shape = (*config.lattice, config.spin, config.colours)
    size = int(np.prod(shape))
    dense = op(torch.eye(size, dtype=torch.complex128, device=config.links.device).reshape(size, *shape)).reshape(size, size).T
    return -float(torch.linalg.eigvals(dense).real.min())


def train(configs: Path, name: str, channels: list[int], mass: float, steps: int) -> Path:
    card = validate_runcard({"precond": {
        "configs": str(configs), "mass": mass, "channels": channels, "steps": steps, "batch": 4, "lr": 0.01,
        "seed": 1, "dir": str(REPO / "runs" / "precond" / name), "checkpoint_every": 100}}, source=f"<bench {name}>")
    return precond_train(card, progress=False)


def solve(config: Configuration, mass: float, precond: Any, seed: int = 2) -> dict[str, Any]:
    op = config.operator(mass)
    rng = ChainRNG(seed, [0], config.links.device)
    site = (*config.lattice, config.spin, config.colours)
    b = torch.complex(rng.normal(site), rng.normal(site))
    t0 = time.perf_counter()
    m = precond(op) if precond is not None else None
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    info = fgmres(op, b, 1e-8, 20_000, restart=30, precond=m)
    return {"iterations": info.iterations, "work": float(info.work), "seconds": time.perf_counter() - t0,
            "setup_seconds": setup, "converged": info.converged}


def u1_study(steps: int) -> dict[str, Any]:
    configs = REPO / "runs" / "u1_32x32_b3" / "configs.h5"
    if not configs.is_file():
        subprocess.run([sys.executable, "-m", "hpcflow.cli", "--no-progress", "sample", "jobs/cards/u1_32x32_b3.toml"],
                       cwd=REPO, check=True)
    s = {"configs": str(configs), "chain": 0, "step": -1, "csw": 0.0, "antiperiodic_time": True}
    config = Configuration(s, "<bench>", "solve", torch.device("cpu"))
    crit = m_crit(config)
    models = {name: train(configs, name, channels, crit + 0.05, steps) for name, channels in MODELS.items()}
    loaded = {name: read_model(path, name, config, torch.complex128) for name, path in models.items()}
    mg = {name: {"basis": basis, "setup_iterations": 10, "blocks": [4, 4], "smoother_iterations": 4,
                 "coarse_tol": 0.05, "coarse_maxiter": 300, "seed": 1} for name, basis in MULTIGRID.items()}
    kinds: dict[str, Any] = {
        "none": None,
        **{name: (lambda op, m=model: NeuralPreconditioner(m, op.links, clover=False)) for name, (model, _) in loaded.items()},
        **{name: (lambda op, s=settings: two_level_preconditioner(op, s)) for name, settings in mg.items()},
    }
    rows = []
    for distance in DISTANCES:
        mass = crit + distance
        row: dict[str, Any] = {"m_minus_mcrit": distance, "mass": mass}
        for kind, precond in kinds.items():
            row[kind] = solve(config, mass, precond)
        rows.append(row)
        print(f"m - m_crit = {distance:<5} " + "  ".join(f"{k}: {row[k]['iterations']} it / {row[k]['work']:.0f} D / "
                                                         f"{row[k]['seconds']:.2f} s"
                                                         for k in kinds), flush=True)
    training = {name: {k: meta[k] for k in ("held_out_cost", "seconds", "steps", "mass")} for name, (_, meta) in loaded.items()}
    return {"lattice": [32, 32], "beta": 3.0, "m_crit": crit, "rows": rows, "training": training, "multigrid": mg}


def _plot(study: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.3))
    x = [r["m_minus_mcrit"] for r in study["rows"]]
    for kind in ("none", *MODELS, *MULTIGRID):
        ax1.plot(x, [r[kind]["iterations"] for r in study["rows"]], "o-", label=kind)
        ax2.plot(x, [r[kind]["work"] for r in study["rows"]], "o-", label=kind)
    for ax, label in ((ax1, "FGMRES(30) iterations"), (ax2, "work (applications of D)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.set_xlabel("m - m_crit")
        ax.set_ylabel(label)
        ax.legend(fontsize="small")
    fig.suptitle(f"2D U(1) 32x32, beta = 3, m_crit = {study['m_crit']:.4f}: preconditioners, tol 1e-8")
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps of each model")
    args = parser.parse_args()
    study = u1_study(args.steps)
    out = write_json("bench_precond", {"machine": machine(), "u1": study})
    _plot(study, RESULTS / "bench_precond.png")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
