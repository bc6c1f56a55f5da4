"""The workflow's report: the samplers of one card side by side (``RUN_DIR/workflow/report.md``,
``comparison.json``, ``comparison.png``), from the analyses of their runs.

- **Samplers**: chains x updates, acceptance, ESS of the flow's proposals, tau_int of M and
  |M|, wall seconds per update, the cost per independent configuration of M
  (:data:`hpcflow.analysis.cost.COST_DEFINITION`, stated in the report) and the training cost,
  listed apart (with that of a pretrained flow the training started from).
- **Observables**: every observable of every sampler in ``value(error)``, with the z-score
  against the HMC baseline, :math:`z = (x - x_{HMC})/\\sqrt{\\sigma^2 + \\sigma_{HMC}^2}`.
- **Flags** a careful physicist would raise (:func:`flags`): samplers that disagree beyond
  3 sigma, an NMCMC acceptance below 0.1, a run of rejections longer than 5 % of a chain, chains
  shorter than 50 tau_int (the Gamma method's window and error are then unreliable, whatever
  the number of chains: a stuck chain is not helped by others stuck elsewhere), and
  :math:`\\langle e^{-\\delta H}\\rangle` off 1 by more than 4 sigma. A report without flags says so.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from hpcflow.analysis.cost import COST_DEFINITION
from hpcflow.analysis.format import value_error
from hpcflow.analysis.observables import DISPLAY_NAMES, display_name
from hpcflow.analysis.report import pyplot, save_figure
from hpcflow.io.atomic import atomic_write_json, atomic_write_text

__all__ = ["DISPLAY", "THRESHOLDS", "flags", "summarize", "write_report"]

DISPLAY = DISPLAY_NAMES

THRESHOLDS = {"z": 3.0, "nmcmc_acceptance": 0.1, "rejection_run_fraction": 0.05, "chain_length_in_tau": 50.0,
              "exp_minus_dH_sigma": 4.0}


def _training(run_dir: Path) -> dict[str, Any] | None:
    model = run_dir / "model" / "flow.pt"
    if not model.is_file():
        return None
    import torch

    meta = torch.load(model, weights_only=True)["meta"]
    out = {"seconds": float(meta["seconds"]), "steps": meta.get("steps"), "phi_train": meta.get("phi_train")}
    if "init" in meta:
        out["pretraining_seconds"] = float(meta["init"].get("seconds", 0.0))
    return out


def summarize(run_dir: Path, training_dir: Path | None = None) -> dict[str, Any]:
    """One sampler's row from ``run_dir/report/analysis.json`` (and the training of ``training_dir``)."""
    data = json.loads((run_dir / "report" / "analysis.json").read_text(encoding="utf-8"))
    obs = data["observables"]
    m = next((k for k in ("magnetization", "plaquette") if k in obs), next(iter(obs)))  # phi^4: M; gauge: the plaquette
    return {
        "run_dir": str(run_dir),
        "sampler": data["sampler_kind"],
        "chains": data["chains"],
        "measurements": data["measurements"],
        "acceptance": data.get("acceptance"),
        "ess": data.get("ess"),
        "longest_rejection_run": data.get("longest_rejection_run"),
        "exp_minus_dH": data.get("exp_minus_dH"),
        "integration": data.get("integration"),
        "updates": data["sampler"].get("trajectories", data["sampler"].get("updates")),
        "cost_observable": m,
        "tau_int": {k: [v["tau_int"], v["tau_int_error"]] for k, v in obs.items()},
        "observables": {k: [v["value"], v["error"]] for k, v in obs.items()},
        "seconds_per_update": data.get("seconds_per_update"),
        "seconds_per_independent_config": data["cost_per_independent_config"].get(m),
        "training": _training(training_dir) if training_dir is not None else None,
    }


def _z(a: list[float], b: list[float]) -> float:
    spread = math.hypot(a[1], b[1])
    return (a[0] - b[0]) / spread if spread > 0 else (0.0 if a[0] == b[0] else math.inf)


def flags(rows: list[dict[str, Any]]) -> list[str]:
    """What a careful physicist would not let pass, one line each (see the module docstring)."""
    out = []
    hmc = next((r for r in rows if r["sampler"] == "hmc"), None)
    t = THRESHOLDS
    for r in rows:
        name = r["sampler"].upper()
        if hmc is not None and r is not hmc:
            for key, value in r["observables"].items():
                if key in hmc["observables"] and abs(z := _z(value, hmc["observables"][key])) > t["z"]:
                    out.append(f"{name} and HMC disagree on {DISPLAY.get(key, key)}: z = {z:+.1f} "
                               f"({value_error(*value)} against {value_error(*hmc['observables'][key])})")
        if r["sampler"] == "nmcmc" and r["acceptance"] is not None and r["acceptance"] < t["nmcmc_acceptance"]:
            out.append(f"{name}: acceptance {r['acceptance']:.3f} is below {t['nmcmc_acceptance']}: the flow is poor "
                       "here and the chain moves rarely")
        run = r.get("longest_rejection_run")
        if run is not None and r["updates"] and run > t["rejection_run_fraction"] * r["updates"]:
            out.append(f"{name}: a run of {run} rejections in a chain of {r['updates']} updates "
                       f"(more than {t['rejection_run_fraction']:.0%}): the chain sticks")
        for key, (tau, _) in r["tau_int"].items():
            n = r["measurements"]
            if tau > 0 and n / tau < t["chain_length_in_tau"]:
                out.append(f"{name}: each chain's {n} measurements of {DISPLAY.get(key, key)} are only {n / tau:.0f} "
                           f"tau_int (< {t['chain_length_in_tau']:.0f}): its error and tau_int are not to be trusted; run longer")
        e = r.get("exp_minus_dH")
        if e and e["error"] > 0 and abs(e["value"] - 1) > t["exp_minus_dH_sigma"] * e["error"]:
            out.append(f"{name}: <exp(-dH)> = {value_error(e['value'], e['error'])} is not 1: the integrator is not "
                       "reversible and area preserving, or the run is not thermalized")
    return out


def _fmt(v: Any, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def _training_text(rows: list[dict[str, Any]]) -> list[str]:
    """The training cost of each flow, once per flow, with the samplers that use it."""
    users: dict[str, list[str]] = {}
    trainings: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.get("training"):
            key = json.dumps(r["training"], sort_keys=True)
            users.setdefault(key, []).append(r["sampler"].upper())
            trainings[key] = r["training"]
    lines = []
    for key, t in trainings.items():
        pre = (f", after {t['pretraining_seconds']:.0f} s of pretraining ({t['seconds'] + t['pretraining_seconds']:.0f} s "
               "in all)" if "pretraining_seconds" in t else "")
        lines.append(f"Training of the flow of {', '.join(users[key])}: {t['seconds']:.0f} s, {t['steps']} steps, "
                     f"Phi_train = {t['phi_train']}{pre}; not included in the cost per configuration.")
    return lines


def _markdown(card: Any, rows: list[dict[str, Any]], found: list[str], workflow: Path) -> str:
    th = card.theory
    couplings = ", ".join(f"{k} = {th[k]:g}" for k in ("beta", "lam") if k in th)
    cost = rows[0]["cost_observable"]
    name = "M" if cost == "magnetization" else display_name(cost)
    lines = [f"# hpcflow workflow: {card.source}", "",
             f"{th['name']} on {'x'.join(map(str, th['shape']))}, {couplings}", "", "## Samplers", "",
             f"| sampler | chains x updates | acceptance | ESS | tau_int({name}) | tau_int(abs M) | s / update | "
             f"s / independent config ({name}) | run |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        tau_m = r["tau_int"][r["cost_observable"]]
        tau_a = r["tau_int"].get("abs_magnetization")
        link = os.path.relpath(Path(r["run_dir"]) / "report" / "report.md", workflow)
        lines.append(f"| {r['sampler']} | {r['chains']} x {r['updates']} | {_fmt(r['acceptance'], '.3f')} | "
                     f"{_fmt(r['ess'], '.3f')} | {value_error(*tau_m)} | {value_error(*tau_a) if tau_a else 'n/a'} | "
                     f"{_fmt(r['seconds_per_update'], '.3g')} | {_fmt(r['seconds_per_independent_config'], '.3g')} | "
                     f"[{Path(r['run_dir']).name}]({link}) |")
    names = sorted(rows[0]["observables"], key=lambda k: list(DISPLAY).index(k) if k in DISPLAY else len(DISPLAY))
    hmc = next((r for r in rows if r["sampler"] == "hmc"), None)
    head = "| observable |" + "".join(f" {r['sampler'].upper()} |" + (" z |" if hmc and r is not hmc else "") for r in rows)
    lines += ["", "## Observables", "", "value(error); z: the difference to HMC in units of the combined error", "",
              head, "|---|" + "---|" * (head.count("|") - 2)]
    for key in names:
        cells = []
        for r in rows:
            v = r["observables"].get(key)
            cells.append(value_error(*v) if v else "n/a")
            if hmc and r is not hmc:
                cells.append(f"{_z(v, hmc['observables'][key]):+.1f}" if v and key in hmc["observables"] else "n/a")
        lines.append(f"| {DISPLAY.get(key, key)} | " + " | ".join(cells) + " |")
    lines += ["", "## Flags", ""] + ([f"- {f}" for f in found] or ["None: the samplers agree within 3 sigma and no "
                                                                  "diagnostic is out of range."])
    lines += ["", f"Cost: {COST_DEFINITION}.", *_training_text(rows), "", "![comparison](comparison.png)", ""]
    return "\n".join(lines)


def _plot(card: Any, rows: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    names = [r["sampler"].upper() for r in rows]
    colours = [f"C{i}" for i in range(len(rows))]
    obs = [k for k in ("abs_magnetization", "susceptibility", "energy", "plaquette", "topological_susceptibility",
                       "wilson_2x2") if k in rows[0]["observables"]][:3]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    tau_key = rows[0]["cost_observable"]
    panels = [("acceptance", lambda r: (r["acceptance"] or 0.0, 0.0)),
              (f"tau_int({DISPLAY.get(tau_key, tau_key)}) [updates]", lambda r: tuple(r["tau_int"][tau_key])),
              (f"s per independent config ({DISPLAY.get(tau_key, tau_key)})",
               lambda r: (r["seconds_per_independent_config"] or 0.0, 0.0))]
    for ax, (label, get) in zip(axes[0], panels):
        values = [get(r) for r in rows]
        ax.bar(names, [v[0] for v in values], yerr=[v[1] for v in values], color=colours)
        ax.set_ylabel(label)
    for ax, key in zip(axes[1], obs):
        for i, r in enumerate(rows):
            v, e = r["observables"][key]
            ax.errorbar([i], [v], yerr=[e], fmt="o", color=colours[i], capsize=4)
        ax.set_xticks(range(len(rows)), names)
        ax.set_ylabel(DISPLAY.get(key, key))
    for ax in axes[1][len(obs):]:
        ax.axis("off")
    th = card.theory
    fig.suptitle(f"{th['name']} {'x'.join(map(str, th['shape']))}, "
                 + ", ".join(f"{k} = {th[k]:g}" for k in ("beta", "lam") if k in th) + ": " + ", ".join(names))
    save_figure(fig, path)


def write_report(card: Any, runs: list[tuple[Path, Path | None]], workflow: Path) -> Path:
    """The report of ``card``'s workflow from its sampled runs ``(run_dir, training_dir)``."""
    rows = [summarize(run_dir, training) for run_dir, training in runs]
    found = flags(rows)
    atomic_write_json(workflow / "comparison.json", {"rows": rows, "flags": found, "thresholds": THRESHOLDS,
                                                     "cost_definition": COST_DEFINITION})
    _plot(card, rows, workflow / "comparison.png")
    path = workflow / "report.md"
    atomic_write_text(path, _markdown(card, rows, found, workflow))
    return path
