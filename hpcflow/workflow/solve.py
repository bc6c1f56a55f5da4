"""The solve stage: Dirac-operator inversions on a stored gauge configuration.

For every mass of ``[solve].masses`` the Wilson(-clover) operator is built on configuration
``(chain, step)`` of ``[solve].configs`` (4D SU(3): 4 spins x 3 colours; 2D U(1): the Schwinger
model, 2 spins), ``sources`` Gaussian random sources are solved with the chosen solver to
``tol``, and iterations, applications of D, wall time and residual histories are written to
``<dir>/solve.json`` with a plot ``<dir>/solve.png`` (iterations against mass).

``[solve].precond`` (FGMRES only): ``"none"``; ``"model"``, a trained model (``[solve].model``,
``hpcflow precond train``); ``"multigrid"``, the classical two-level preconditioner
(:mod:`hpcflow.models.precond.multigrid`); ``"two_level_model"``, the neural two-level
preconditioner (:mod:`hpcflow.models.precond.coarse`: ``[solve].model`` the hi-mode smoother,
``[solve].coarse_model`` the lo-mode model of ``level = "coarse"`` with its coarse basis). The
work is :data:`WORK_DEFINITION`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpcflow.analysis.report import pyplot, save_figure
from hpcflow.dirac.solvers import SolveInfo, bicgstab, cg_normal, fgmres
from hpcflow.dirac.wilson import WilsonDirac
from hpcflow.io.atomic import atomic_write_json
from hpcflow.lattice.rng import ChainRNG
from hpcflow.models.precond import NeuralPreconditioner
from hpcflow.models.precond.multigrid import two_level_preconditioner
from hpcflow.workflow.operator import Configuration
from hpcflow.workflow.precond import check_blocks, read_model, two_level_from_models
from hpcflow.workflow.runcard import RunCard

__all__ = ["WORK_DEFINITION", "solve"]

WORK_DEFINITION = (
    "work = applications of D: one per FGMRES iteration and restart, plus the preconditioner's cost per call "
    "(its floating-point operations per site over those of D, counted alike: one colour matrix-vector product "
    "per hop, one complex spin matrix per path and channel pair, the clover matrix); the multigrid setup apart"
)


def _solve_one(op: WilsonDirac, b: torch.Tensor, s: dict[str, Any], precond: Any) -> SolveInfo:
    if s["solver"] == "cg":
        return cg_normal(op, op.dagger, b, s["tol"], s["maxiter"])
    if s["solver"] == "bicgstab":
        return bicgstab(op, b, s["tol"], s["maxiter"])
    return fgmres(op, b, s["tol"], s["maxiter"], restart=s["restart"], precond=precond)


def _work_per_call(precond: Any, counted: float | None, calls: int) -> float:
    """The preconditioner's mean work per call (one call per FGMRES iteration), in applications of D:
    from its own count (``work_done``, multigrid) or its fixed ``work`` (a model); 0 without one."""
    if counted is not None:
        return (precond.work_done - counted) / max(calls, 1)
    return float(getattr(precond, "work", 0.0))


def _models(s: dict[str, Any], config: Configuration) -> dict[str, Any]:
    """The trained models a ``[solve].precond`` uses: ``hi`` (``[solve].model``), and for
    ``"two_level_model"`` ``lo`` (``[solve].coarse_model``) with its stored near-null vectors."""
    dtype = config.links.dtype
    out: dict[str, Any] = {}
    if s["precond"] in ("model", "two_level_model"):
        out["hi"], _ = read_model(Path(s["model"]), "[solve].model", config, dtype)
    if s["precond"] == "two_level_model":
        out["lo"], out["lo_meta"] = read_model(Path(s["coarse_model"]), "[solve].coarse_model", config, dtype, "coarse")
    return out


def _preconditioner(s: dict[str, Any], config: Configuration, op: WilsonDirac, models: dict[str, Any]) -> Any:
    """The preconditioner of ``[solve].precond`` for ``op`` (``None`` for ``"none"``)."""
    clover = s["csw"] != 0
    if s["precond"] == "model":
        return NeuralPreconditioner(models["hi"], op.links, clover)
    if s["precond"] == "two_level_model":
        return two_level_from_models(op, models["hi"], models["lo"], models["lo_meta"], clover, config.source, "solve")
    if s["precond"] == "multigrid":
        check_blocks(s["blocks"], config.lattice, config.source, "solve")
        return two_level_preconditioner(op, s)
    return None


def solve(card: RunCard) -> Path:
    """Run the solves of a ``[solve]`` card; returns the output directory."""
    s = card.data["solve"]
    config = Configuration(s, card.source, "solve", card.device())
    models = _models(s, config)
    out_dir = Path(s["dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = ChainRNG(s["seed"], range(s["sources"]), config.links.device)
    site = (*config.lattice, config.spin, config.colours)
    sources = torch.complex(rng.normal(site), rng.normal(site))
    results = []
    for mass in s["masses"]:
        op = config.operator(mass)
        t0 = time.perf_counter()
        precond = _preconditioner(s, config, op, models)
        setup = time.perf_counter() - t0
        for k in range(s["sources"]):
            t0 = time.perf_counter()
            counted = getattr(precond, "work_done", None)
            info = _solve_one(op, sources[k : k + 1], s, precond)
            results.append({
                "mass": mass, "kappa": op.kappa, "source": k, "iterations": info.iterations, "work": info.work,
                "converged": info.converged, "reason": info.reason, "final_residual": info.final_residual,
                "seconds": time.perf_counter() - t0, "setup_seconds": setup, "residuals": info.residuals,
                "precond_work": _work_per_call(precond, counted, info.iterations),
            })
    summary = {"card": card.data["solve"], "theory": config.theory, "lattice": list(config.lattice),
               "device": config.links.device.type, "work_definition": WORK_DEFINITION, "results": results}
    atomic_write_json(out_dir / "solve.json", summary)
    title = (f"{config.describe()}: {'Wilson-clover c_sw = ' + format(s['csw'], 'g') if s['csw'] else 'Wilson'}, "
             f"tol {s['tol']:g}, precond {s['precond']}")
    _plot(results, s["solver"], out_dir / "solve.png", title)
    return out_dir


def _plot(results: list[dict[str, Any]], solver: str, path: Path, title: str) -> None:
    """Iterations against the bare mass (the masses as ticks) and the residual histories."""
    plt = pyplot()
    masses = sorted({r["mass"] for r in results})
    mean_it = [np.mean([r["iterations"] for r in results if r["mass"] == m]) for m in masses]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.3))
    ax1.plot(masses, mean_it, "o-")
    ax1.set_xticks(masses, [f"{m:g}" for m in masses], rotation=45 if len(masses) > 6 else 0)
    ax1.set_xlabel("bare mass m")
    ax1.set_ylabel(f"{solver} iterations (mean over sources)")
    ax1.set_yscale("log")
    ax1.set_title("iterations against the mass")
    for r in results:
        if r["source"] == 0:
            ax2.semilogy(r["residuals"], label=f"m = {r['mass']:g}")
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("|r| / |b|")
    ax2.set_title("residual history (source 0)")
    ax2.legend(fontsize="x-small")
    fig.suptitle(title)
    save_figure(fig, path)
