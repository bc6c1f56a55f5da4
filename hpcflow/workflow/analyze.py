"""The analysis stage: read a run's ``configs.h5``, write ``report/`` (JSON, Markdown, PNG).

Per-chain results treat each chain alone; combined results treat the chains as replicas of one
ensemble (Gamma method with replicas). The cost per independent configuration of an observable
is (seconds per measurement) x 2 tau_int.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hpcflow.analysis.correlators import analyze_correlator
from hpcflow.analysis.gamma import gamma_method
from hpcflow.analysis.observables import phi4_observables
from hpcflow.analysis.report import plot_autocorrelation, plot_correlator, plot_histories
from hpcflow.io.atomic import atomic_write_json, atomic_write_text
from hpcflow.io.store import ConfigStore
from hpcflow.workflow.sample import STORE

__all__ = ["AnalysisError", "analyze"]

MIN_MEASUREMENTS = 8


class AnalysisError(ValueError):
    """A run directory that cannot be analysed (missing, empty or too short)."""


def _read(run_dir: Path) -> dict[str, Any]:
    path = run_dir / STORE
    if not path.is_file():
        raise AnalysisError(f"{run_dir}: no {STORE} here; run 'hpcflow sample CARD.toml' first")
    with ConfigStore(path) as store:
        data = {name: store.read(name) for name in ("observables/M", "observables/e", "observables/action", "observables/C", "hmc/dH", "hmc/accepted")}
        data["card"] = json.loads(store.attrs["run_card_normalized"])
        data["complete"] = bool(store.attrs["complete"])
    return data


def _markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# hpcflow report: {summary['run_dir']}",
        "",
        f"phi^4, shape {summary['shape']}, beta = {summary['beta']}, lam = {summary['lam']}; "
        f"{summary['chains']} chains x {summary['measurements']} measurements"
        f"{'' if summary['complete'] else ' (run not complete)'}",
        "",
        f"HMC acceptance {summary['acceptance']:.4f}; <exp(-dH)> = "
        f"{summary['exp_minus_dH']['value']:.4f} +- {summary['exp_minus_dH']['error']:.4f}",
        "",
        "| observable | value | error | tau_int | cost per indep. config (s) |",
        "|---|---|---|---|---|",
    ]
    for name, r in summary["observables"].items():
        cost = summary["cost_per_independent_config"].get(name)
        lines.append(
            f"| {name} | {r['value']:.6g} | {r['error']:.2g} | {r['tau_int']:.2f}({r['tau_int_error']:.2f}) | "
            f"{'n/a' if cost is None else f'{cost:.3g}'} |"
        )
    fit = summary["correlator"]["fit"]
    lines += [
        "",
        f"Correlation length xi = {fit['xi']['value']:.4f} +- {fit['xi']['error']:.4f} "
        f"(cosh fit on t = {fit['t_range'][0]}..{fit['t_range'][1]}, chi2/dof = {fit['chi2_per_dof']:.2f})",
        "",
        "![histories](history.png)",
        "![autocorrelation](autocorrelation.png)",
        "![correlator](correlator.png)",
        "",
    ]
    return "\n".join(lines)


def analyze(run_dir: Path | str) -> Path:
    """Analyse the run in ``run_dir``; returns the report directory."""
    run_dir = Path(run_dir)
    data = _read(run_dir)
    card = data["card"]
    m, e, s, c = data["observables/M"], data["observables/e"], data["observables/action"], data["observables/C"]
    if m.shape[1] < MIN_MEASUREMENTS:
        raise AnalysisError(f"{run_dir}: {m.shape[1]} measurements stored; the analysis needs at least {MIN_MEASUREMENTS}")
    shape = card["theory"]["shape"]
    volume = int(np.prod(shape))
    combined = phi4_observables(m, e, s, volume)
    per_chain = [phi4_observables(m[i : i + 1], e[i : i + 1], s[i : i + 1], volume) for i in range(m.shape[0])]
    corr = analyze_correlator(c, m, volume, t_min=card["analysis"]["t_min"])
    timing_path = run_dir / "timing.json"
    cost: dict[str, float] = {}
    seconds_per_measurement: float | None = None
    if timing_path.is_file():
        timing = json.loads(timing_path.read_text())
        seconds_per_measurement = timing["seconds"] / timing["trajectories"] * card["sampler"]["measure_every"]
        cost = {name: seconds_per_measurement * 2.0 * r.tau_int for name, r in combined.items()}
    summary = {
        "run_dir": str(run_dir),
        "complete": data["complete"],
        "shape": shape,
        "beta": card["theory"]["beta"],
        "lam": card["theory"]["lam"],
        "sampler": card["sampler"],
        "chains": int(m.shape[0]),
        "measurements": int(m.shape[1]),
        "acceptance": float(data["hmc/accepted"].mean()),
        "exp_minus_dH": gamma_method(np.exp(-data["hmc/dH"])).to_dict(),
        "seconds_per_measurement": seconds_per_measurement,
        "observables": {name: r.to_dict(rho_points=2 * r.window + 1) for name, r in combined.items()},
        "per_chain": {name: [pc[name].to_dict() for pc in per_chain] for name in combined},
        "cost_per_independent_config": cost,
        "correlator": corr.to_dict(),
    }
    report = run_dir / "report"
    report.mkdir(exist_ok=True)
    atomic_write_json(report / "analysis.json", summary)
    atomic_write_text(report / "report.md", _markdown(summary))
    v = float(volume)
    plot_histories(report / "history.png", {"M/V": m / v, "|M|/V": np.abs(m) / v, "e": e, "S/V": s / v})
    plot_autocorrelation(report / "autocorrelation.png", {k: combined[k] for k in ("abs_magnetization", "energy", "susceptibility")})
    plot_correlator(report / "correlator.png", corr)
    return report
