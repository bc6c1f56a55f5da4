"""The analysis stage: read a run's ``configs.h5``, write ``report/`` (JSON, Markdown, PNG).

Settings (:func:`analysis_settings`): the fit range ``t_min``, ``t_max`` of the correlator and
``reweight`` (importance reweighting of NMCMC proposals), from the run card's ``[analysis]``
unless given. An analysis with the card's settings goes to ``report/``; one with other settings
beside it, to ``report_<settings>/`` (e.g. ``report_t_min3``), so no analysis replaces another;
``out`` names the directory explicitly (the workflow's stage does).

Per-chain results treat each chain alone; combined results treat the chains as replicas of one
ensemble (Gamma method with replicas). The cost per independent configuration of an observable
is :func:`hpcflow.analysis.cost.cost_per_independent_config` (stated in the report). Where
``pyerrors`` is installed, the observables are also written as its ``Obs`` with their Monte
Carlo histories (``pyerrors.json.gz``; :mod:`hpcflow.io.formats.pyerrors_export`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpcflow.analysis.correlators import analyze_correlator
from hpcflow.analysis.cost import COST_DEFINITION, cost_per_independent_config
from hpcflow.analysis.format import value_error
from hpcflow.analysis.gamma import gamma_method
from hpcflow.analysis.gamma import GammaResult
from hpcflow.analysis.observables import (Definition, display_name, estimate, gauge_definitions, phi4_definitions,
                                          phi4_reweighted)
from hpcflow.analysis.report import plot_autocorrelation, plot_correlator, plot_histories, plot_log_weights
from hpcflow.io.atomic import atomic_write_json, atomic_write_text
from hpcflow.io.formats.pyerrors_export import pyerrors_available, write_pyerrors
from hpcflow.io.store import ConfigStore
from hpcflow.models.flows.loss import effective_sample_size
from hpcflow.workflow.runcard import UPDATES_KEY
from hpcflow.workflow.rundir import STORE

__all__ = ["AnalysisError", "analysis_settings", "analyze"]

MIN_MEASUREMENTS = 8
PYERRORS_FILE = "pyerrors.json.gz"


class AnalysisError(ValueError):
    """A run directory that cannot be analysed (missing, empty or too short)."""


def _read(run_dir: Path) -> dict[str, Any]:
    path = run_dir / STORE
    if not path.is_file():
        raise AnalysisError(f"{run_dir}: no {STORE} here; run 'hpcflow sample CARD.toml' first")
    with ConfigStore(path) as store:
        kind = str(store.attrs["sampler"])
        # observables by their short name; the sampler's per-update records keep their group
        data = {name.removeprefix("observables/"): store.read(name) for name in store.names if "/" in name}
        data["card"] = json.loads(store.attrs["run_card_normalized"])
        if "extensions" in store.attrs:  # an extended run: the card's updates and the extensions'
            key = UPDATES_KEY[kind]
            data["card"]["sampler"][key] += sum(e["updates"] for e in json.loads(store.attrs["extensions"]))
        data["complete"] = bool(store.attrs["complete"])
        data["kind"] = kind
        data["integration"] = {k: store.attrs[k].item() if hasattr(store.attrs[k], "item") else store.attrs[k]
                               for k in ("n_steps", "eps", "n_steps_card", "tuned") if k in store.attrs}
        if "log_q_integration_error" in store.attrs:  # NMCMC with a map that integrates a flow equation
            data["log_q_integration_error"] = float(store.attrs["log_q_integration_error"])
    return data


def analysis_settings(card: dict[str, Any], t_min: int | None = None, t_max: int | None = None,
                      reweight: bool | None = None) -> dict[str, Any]:
    """The settings of an analysis of a run of ``card`` (normalized): its ``[analysis]``, then
    the given overrides; ``t_max`` resolved (default ``L0/2``). Bad values: :class:`AnalysisError`."""
    a, half = card["analysis"], card["theory"]["shape"][0] // 2
    out = {
        "t_min": a["t_min"] if t_min is None else t_min,
        "t_max": a.get("t_max", half) if t_max is None else t_max,
        "reweight": a["reweight"] if reweight is None else reweight,
    }
    if card["theory"]["name"] == "phi4" and not 1 <= out["t_min"] < out["t_max"] <= half:
        raise AnalysisError(f"--t-min {out['t_min']} --t-max {out['t_max']}: the fit range needs "
                            f"1 <= t_min < t_max <= L0/2 = {half}")
    if out["reweight"] and card["sampler"]["kind"] != "nmcmc":
        raise AnalysisError(f"--reweight: reweighting needs flow proposals; this is a {card['sampler']['kind']} run")
    return out


def _report_dir(run_dir: Path, card: dict[str, Any], settings: dict[str, Any]) -> Path:
    """``report/`` for the card's own settings, else ``report_<the settings that differ>``."""
    default = analysis_settings(card)
    changed = [f"{k}{v}" if not isinstance(v, bool) else (k if v else f"no_{k}") for k, v in settings.items()
               if default[k] != v]
    return run_dir / ("report_" + "_".join(changed) if changed else "report")


def _sampler_summary(data: dict[str, Any], volume: int, reweight: bool) -> dict[str, Any]:
    """Acceptance and the sampler's own diagnostics (``<exp(-dH)>`` for HMC, ESS for NMCMC)."""
    kind = data["kind"]
    out: dict[str, Any] = {"acceptance": float(data[f"{kind}/accepted"].mean())}
    if f"{kind}/dH" in data:  # HMC and flow HMC
        out["exp_minus_dH"] = gamma_method(np.exp(-data[f"{kind}/dH"])).to_dict()
        out["integration"] = _integration(data)
    else:  # proposals: nmcmc/log_w (observables/log_w are the chain's current weights)
        out["ess"] = effective_sample_size(torch.from_numpy(data["nmcmc/log_w"]).flatten())
        out["longest_rejection_run"] = int(_longest_rejection_run(data["nmcmc/accepted"]))
        if "log_q_integration_error" in data:
            out["log_q_integration_error"] = data["log_q_integration_error"]
        if reweight:
            rw = phi4_reweighted(data["nmcmc/log_w"], data["nmcmc/proposal_M"], data["nmcmc/proposal_e"], volume)
            out["reweighted"] = {name: r.to_dict() for name, r in rw.items()}
    return out


def _longest_rejection_run(accepted: np.ndarray) -> int:
    """Longest stretch of consecutive rejections in any chain (a stuck chain shows here)."""
    longest = 0
    for row in accepted:
        run = 0
        for a in row:
            run = 0 if a else run + 1
            longest = max(longest, run)
    return longest


def _integration(data: dict[str, Any]) -> dict[str, Any]:
    """The steps and step size the production ran with: tuned ones where the card asked for a
    target acceptance (the card's ``steps`` was only the start then)."""
    s, stored = data["card"]["sampler"], data["integration"]
    n = int(stored.get("n_steps", s["steps"]))
    return {"integrator": s["integrator"], "tau": s["tau"], "steps": n, "eps": s["tau"] / n,
            "steps_card": s["steps"], "tuned": "target_acceptance" in s,
            "target_acceptance": s.get("target_acceptance")}


def _sampler_line(summary: dict[str, Any]) -> str:
    if "exp_minus_dH" in summary:
        r, i = summary["exp_minus_dH"], summary["integration"]
        steps = (f"{i['steps']} steps (tuned during thermalization from the card's {i['steps_card']} towards "
                 f"acceptance {i['target_acceptance']})" if i["tuned"] else f"{i['steps']} steps")
        return (f"{summary['sampler_kind'].upper()} acceptance {summary['acceptance']:.4f}; "
                f"<exp(-dH)> = {r['value']:.4f} +- {r['error']:.4f}; "
                f"{i['integrator']}, tau = {i['tau']:g}, {steps}, eps = {i['eps']:.4g}")
    error = summary.get("log_q_integration_error")
    return (f"NMCMC acceptance {summary['acceptance']:.4f}; ESS of the proposals {summary['ess']:.4f}; "
            f"longest run of rejections {summary['longest_rejection_run']}"
            + ("" if error is None else f"; integration error of log q {error:.2g} (spread at doubled steps)"))


def _markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# hpcflow report: {summary['run_dir']}",
        "",
        f"{_describe_theory(summary['theory'])}; "
        f"{summary['chains']} chains x {summary['measurements']} measurements"
        f"{'' if summary['complete'] else ' (run not complete)'}",
        "",
        _sampler_line(summary),
        "",
        "| observable | value(error) | tau_int (measurements) | cost per indep. config (s) |",
        "|---|---|---|---|",
    ]
    for name, r in summary["observables"].items():
        cost = summary["cost_per_independent_config"].get(name)
        lines.append(
            f"| {display_name(name)} | {value_error(r['value'], r['error'])} | {value_error(r['tau_int'], r['tau_int_error'])} | "
            f"{'n/a' if cost is None else f'{cost:.3g}'} |"
        )
    for name, r in summary.get("reweighted", {}).items():
        lines.append(f"| {display_name(name)} (reweighted proposals) | {value_error(r['value'], r['error'])} | "
                     f"{r['tau_int']:.2f} | n/a |")
    lines += ["", f"Cost: {summary['cost_definition']}.", "",
              (f"The observables as pyerrors Obs (one replica per chain): {summary['pyerrors']} "
               "(pyerrors.input.json.load_json_dict)." if summary["pyerrors"] else
               "pyerrors is not installed: no pyerrors export (pip install pyerrors)."), "",
              "![histories](history.png)", "![autocorrelation](autocorrelation.png)"]
    if summary["correlator"] is not None:
        fit = summary["correlator"]["fit"]
        lines[-2:-2] = [
            f"Correlation length xi = {fit['xi']['value']:.4f} +- {fit['xi']['error']:.4f} "
            f"(uncorrelated cosh fit on t = {fit['t_range'][0]}..{fit['t_range'][1]}, "
            f"chi2/dof = {fit['chi2_per_dof']:.2f}, not a goodness of fit)",
            "",
        ]
        lines.append("![correlator](correlator.png)")
    if summary["sampler_kind"] == "nmcmc":
        lines.append("![log weights](log_weights.png)")
    return "\n".join(lines + [""])


def _describe_theory(t: dict[str, Any]) -> str:
    couplings = f"beta = {t['beta']:g}" + (f", lam = {t['lam']:g}" if "lam" in t else "")
    return f"{t['name']} on {'x'.join(map(str, t['shape']))}, {couplings}"


def _definitions(data: dict[str, Any], theory: str, volume: int, rows: slice = slice(None)) -> dict[str, Definition]:
    """The theory's observables for the chains in ``rows``."""
    if theory == "phi4":
        return phi4_definitions(data["M"][rows], data["e"][rows], data["action"][rows], volume)
    charge = data["Q"][rows] if "Q" in data else None
    loops = {name: data[name][rows] for name in sorted(data) if name.startswith("wilson_")}  # stores before them: none
    return gauge_definitions(data["plaquette"][rows], data["action"][rows], volume, charge, loops)


def _observables(data: dict[str, Any], theory: str, volume: int, rows: slice = slice(None)) -> dict[str, GammaResult]:
    """Gamma-method results of the theory's observables for the chains in ``rows``."""
    return estimate(_definitions(data, theory, volume, rows))


def _histories(data: dict[str, Any], theory: str, volume: int) -> dict[str, np.ndarray]:
    v = float(volume)
    if theory == "phi4":
        return {"M/V": data["M"] / v, "|M|/V": np.abs(data["M"]) / v, "e": data["e"], "S/V": data["action"] / v}
    out = {"plaquette": data["plaquette"], "S/V": data["action"] / v}
    if "Q" in data:
        out["Q"] = data["Q"]
    return out


def analyze(run_dir: Path | str, t_min: int | None = None, t_max: int | None = None, reweight: bool | None = None,
            out: Path | None = None) -> Path:
    """Analyse the run in ``run_dir`` (settings: the card's, or those given); returns the report
    directory (``out``, or as the module docstring says)."""
    run_dir = Path(run_dir)
    data = _read(run_dir)
    card = data["card"]
    settings = analysis_settings(card, t_min, t_max, reweight)
    theory = card["theory"]["name"]
    n_chains, n_meas = data["action"].shape
    if n_meas < MIN_MEASUREMENTS:
        raise AnalysisError(f"{run_dir}: {n_meas} measurements stored; the analysis needs at least {MIN_MEASUREMENTS}")
    shape = card["theory"]["shape"]
    volume = int(np.prod(shape))
    combined = _observables(data, theory, volume)
    per_chain = [_observables(data, theory, volume, slice(i, i + 1)) for i in range(n_chains)]
    corr = (analyze_correlator(data["C"], data["M"], volume, t_min=settings["t_min"], t_max=settings["t_max"])
            if theory == "phi4" else None)
    timing_path = run_dir / "timing.json"
    cost: dict[str, float] = {}
    seconds_per_update: float | None = None
    if timing_path.is_file():
        timing = json.loads(timing_path.read_text())
        seconds_per_update = timing["seconds"] / timing["updates"]
        every = card["sampler"]["measure_every"]
        cost = {name: cost_per_independent_config(seconds_per_update, r.tau_int, int(n_chains), every)
                for name, r in combined.items()}
    summary = {
        "run_dir": str(run_dir),
        "complete": data["complete"],
        "theory": card["theory"],
        "sampler": card["sampler"],
        "chains": int(n_chains),
        "measurements": int(n_meas),
        "sampler_kind": data["kind"],
        "settings": settings,
        **_sampler_summary(data, volume, settings["reweight"]),
        "seconds_per_update": seconds_per_update,
        "cost_definition": COST_DEFINITION,
        "observables": {name: r.to_dict(rho_points=2 * r.window + 1) for name, r in combined.items()},
        "per_chain": {name: [pc[name].to_dict() for pc in per_chain] for name in combined},
        "cost_per_independent_config": cost,
        "correlator": corr.to_dict() if corr is not None else None,
        "pyerrors": PYERRORS_FILE if pyerrors_available() else None,
    }
    report = Path(out) if out is not None else _report_dir(run_dir, card, settings)
    report.mkdir(parents=True, exist_ok=True)
    if summary["pyerrors"]:
        write_pyerrors(report / PYERRORS_FILE, _definitions(data, theory, volume), run_dir.name,
                       f"hpcflow analysis of {run_dir}: {_describe_theory(card['theory'])}; {data['kind']}, "
                       f"{n_chains} chains (replicas), one idl per measurement")
    atomic_write_json(report / "analysis.json", summary)
    atomic_write_text(report / "report.md", _markdown(summary))
    title = f"{_describe_theory(card['theory'])}; {data['kind']}, {n_chains} chains"
    every = card["sampler"]["measure_every"]
    plot_histories(report / "history.png", _histories(data, theory, volume), title,
                   card["sampler"]["thermalization"] + every, every)
    plot_autocorrelation(report / "autocorrelation.png", {display_name(k): r for k, r in list(combined.items())[:3]},
                         title, every)
    if corr is not None:
        plot_correlator(report / "correlator.png", corr, title)
    if data["kind"] == "nmcmc":
        plot_log_weights(report / "log_weights.png", data["nmcmc/log_w"].ravel(), title)
    return report
