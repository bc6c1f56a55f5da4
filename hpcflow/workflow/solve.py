"""The solve stage: Dirac-operator inversions on a stored gauge configuration.

For every mass of ``[solve].masses`` the Wilson(-clover) operator is built on configuration
``(chain, step)`` of ``[solve].configs`` (4D SU(3): 4 spins x 3 colours; 2D U(1): the Schwinger
model, 2 spins), ``sources`` Gaussian random sources are solved with the chosen solver to
``tol``, and iterations, applications of D, wall time and residual histories are written to
``<dir>/solve.json`` with a plot ``<dir>/solve.png`` (iterations against mass).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpcflow.dirac.solvers import SolveInfo, bicgstab, cg_normal, fgmres
from hpcflow.dirac.wilson import WilsonDirac
from hpcflow.io.atomic import atomic_write_json
from hpcflow.io.store import ConfigStore
from hpcflow.lattice.rng import ChainRNG
from hpcflow.theories.gauge import u1_links
from hpcflow.workflow.runcard import RunCard, RunCardError
from hpcflow.analysis.report import pyplot, save_figure

__all__ = ["load_links", "solve"]


def load_links(path: Path, chain: int, step: int, source: str = "<run card>") -> tuple[torch.Tensor, str]:
    """Links ``(d, *L, N, N)`` of one stored configuration and the theory name."""
    if not path.is_file():
        raise RunCardError(source, [f"[solve].configs = {str(path)!r}: no such file (run hpcflow sample on a gauge card)"])
    with ConfigStore(path) as store:
        theory = str(store.attrs.get("theory", "phi4"))
        if theory not in ("u1", "su3"):
            raise RunCardError(source, [f"[solve].configs: holds a {theory!r} ensemble; expected 'u1' or 'su3' links"])
        rows = store.rows("links")
        if not -rows <= step < rows or chain >= store.file["links"].shape[0]:
            raise RunCardError(source, [f"[solve]: (chain {chain}, step {step}) is outside the {rows} stored steps"])
        field = torch.from_numpy(store.file["links"][chain, step % rows])
    return (u1_links(field[None])[0] if theory == "u1" else field), theory


def _solve_one(op: WilsonDirac, b: torch.Tensor, s: dict[str, Any]) -> SolveInfo:
    if s["solver"] == "cg":
        return cg_normal(op, op.dagger, b, s["tol"], s["maxiter"])
    if s["solver"] == "bicgstab":
        return bicgstab(op, b, s["tol"], s["maxiter"])
    return fgmres(op, b, s["tol"], s["maxiter"], restart=s["restart"])


def solve(card: RunCard) -> Path:
    """Run the solves of a ``[solve]`` card; returns the output directory."""
    s = card.data["solve"]
    device = card.device()
    links, theory = load_links(Path(s["configs"]), s["chain"], s["step"], card.source)
    links = links.to(device)
    out_dir = Path(s["dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    spin = 4 if links.shape[0] == 4 else 2
    lattice = tuple(links.shape[1:-2])
    rng = ChainRNG(s["seed"], range(s["sources"]), device)
    sources = torch.complex(rng.normal((*lattice, spin, links.shape[-1])), rng.normal((*lattice, spin, links.shape[-1])))
    results = []
    for mass in s["masses"]:
        op = WilsonDirac(links, mass=mass, csw=s["csw"], antiperiodic_time=s["antiperiodic_time"])
        for k in range(s["sources"]):
            t0 = time.perf_counter()
            info = _solve_one(op, sources[k : k + 1], s)
            results.append({
                "mass": mass, "kappa": op.kappa, "source": k, "iterations": info.iterations, "work": info.work,
                "converged": info.converged, "reason": info.reason, "final_residual": info.final_residual,
                "seconds": time.perf_counter() - t0, "residuals": info.residuals,
            })
    summary = {"card": card.data["solve"], "theory": theory, "lattice": list(lattice), "device": device.type,
               "results": results}
    atomic_write_json(out_dir / "solve.json", summary)
    title = (f"{theory} {'x'.join(map(str, lattice))}, configuration {s['chain']}/{s['step']} of {s['configs']}: "
             f"{'Wilson-clover c_sw = ' + format(s['csw'], 'g') if s['csw'] else 'Wilson'}, tol {s['tol']:g}")
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
