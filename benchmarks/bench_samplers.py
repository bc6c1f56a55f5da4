"""HMC, flow HMC and NMCMC side by side on the xi ~ L/4 line of phi^4 (lam = 0.5): at which volumes
does each sampler give the cheapest independent configuration, and how does tau_int(M) scale?

Rows L = 8, 12, 16, 32 here (beta 0.576, 0.616, 0.634, 0.6614; shared/PHYSICS.md) and L = 64 as a
card for a GPU node (beta 0.6744). For every row, in jobs/cards/samplers/ (``--write-cards``):

- ``phi4_L<L>.toml``: flow HMC with a cheap smooth flow (the learned momentum-space layer, one
  Z2-equivariant affine pair of single 3x3 convolutions, a global rescaling and the zero-mode map,
  fitted after the training to the M distribution of short flow-HMC runs: 30 parameters, a
  Gaussian flow up to the map of M), NMCMC with the same flow and the HMC baseline, through
  ``hpcflow run`` (the workflow's report compares them, agreement of <|M|>/V, chi, E included);
- ``phi4_L<L>_k3.toml`` and ``phi4_L<L>_k<k>.toml``: flow HMC with the paper's minimal flow
  (Albandea et al.: one affine pair of single k x k convolutions and a rescaling) at fixed k = 3
  and with k growing like xi;
- ``phi4_L32_nmcmc.toml`` (about an hour of training on one core: 16 spline couplings after the
  momentum-space layer) and ``phi4_L64_transfer.toml`` (that flow on 64^2, volume transfer).

Both HMC kinds use trajectories of length 1 (tau_int in trajectories). The cost per independent
configuration of M is hpcflow.analysis.cost's (training listed apart). The dynamical exponent z
of each sampler is fitted to tau_int(M) ~ xi^z with xi from the HMC run's cosh fit.

Usage: python benchmarks/bench_samplers.py [--write-cards] [--rows 8 12 16 32] [--skip-runs]
Output: a table, benchmarks/results/bench_samplers.json and .png (the ``--best`` rows not run this
time are kept from the previous JSON, with the commit they ran at).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_json  # noqa: E402

from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402
from hpcflow.workflow.runcard import load_runcard, to_toml  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CARDS = REPO / "jobs" / "cards" / "samplers"
BETA = {8: 0.576, 12: 0.616, 16: 0.634, 32: 0.6614, 64: 0.6744}
K_XI = {8: 3, 12: 5, 16: 5, 32: 9, 64: 17}
"""Kernel of the minimal flow growing with xi ~ L/4 (odd, about xi + 1)."""
TRAJECTORIES = {8: 2000, 12: 3000, 16: 4000, 32: 8000, 64: 20000}


def _common(side: int, name: str, kind: str, seed: int) -> dict[str, dict[str, Any]]:
    updates = TRAJECTORIES[side]
    sampler: dict[str, Any] = {"kind": kind, "chains": 16, "seed": seed}
    if kind == "fhmc":
        sampler.update(trajectories=updates, thermalization=200, tau=1.0, steps=8, integrator="leapfrog",
                       target_acceptance=0.9)
    else:
        sampler.update(updates=updates, thermalization=100, chunk=64)
    return {
        "theory": {"name": "phi4", "shape": [side, side], "beta": BETA[side], "lam": 0.5},
        "sampler": sampler,
        "output": {"dir": f"runs/samplers/{name}", "checkpoint_every": 500},
        "parallel": {"device": "auto"},
    }


def _minimal(kernel: int, fourier: bool) -> dict[str, Any]:
    """The paper's minimal flow (``fourier = False``), or this study's main flow for flow HMC:
    the momentum-space layer, the pair made Z2-equivariant and the zero-mode map."""
    extra = {"equivariant": True, "zero_mode": True} if fourier else {"equivariant": False}
    return {"coupling": "affine", "layers": 2, "hidden": [], "kernel": kernel, "rescaling": True,
            "fourier": fourier, **extra}


def cards() -> dict[str, dict[str, dict[str, Any]]]:
    """Every card of the study, by file name."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for side in BETA:
        name = f"phi4_L{side}"
        main = _common(side, name, "fhmc", seed=side)
        main["model"] = _minimal(3, fourier=True)
        main["training"] = {"steps": 1500, "batch": 256, "lr": 0.01, "seed": 1, "checkpoint_every": 250}
        main["nmcmc"] = {"updates": TRAJECTORIES[side], "thermalization": 100}
        main["baseline"] = {"trajectories": TRAJECTORIES[side], "thermalization": 500, "tau": 1.0, "steps": 10,
                            "integrator": "omelyan", "target_acceptance": 0.9}
        main["workflow"] = {"samplers": ["fhmc", "nmcmc", "hmc"]}
        out[name] = main
        for k in sorted({3, K_XI[side]}):
            card = _common(side, f"{name}_k{k}", "fhmc", seed=1000 * side + k)  # apart from the main card's seeds
            card["model"] = _minimal(k, fourier=False)
            card["training"] = {"steps": 1500, "batch": 256, "lr": 0.01, "seed": 1, "checkpoint_every": 250}
            card["workflow"] = {"samplers": ["fhmc"]}
            out[f"{name}_k{k}"] = card
    best = _common(32, "phi4_L32_nmcmc", "nmcmc", seed=321)
    best["model"] = {"coupling": "spline", "layers": 16, "hidden": [8, 8], "kernel": 3, "equivariant": True,
                     "rescaling": True, "fourier": True, "bins": 8, "bound": 5.0}
    best["training"] = {"steps": 900, "batch": 256, "lr": 0.002, "seed": 1, "checkpoint_every": 50, "log_every": 10}
    best["sampler"].update(updates=4000, thermalization=0)
    best["workflow"] = {"samplers": ["nmcmc"]}
    best["analysis"] = {"reweight": True}
    out["phi4_L32_nmcmc"] = best
    transfer = _common(64, "phi4_L64_transfer", "nmcmc", seed=641)
    transfer["model"] = best["model"]
    transfer["sampler"].update(updates=500, thermalization=0, chunk=16, model="runs/samplers/phi4_L32_nmcmc/model/flow.pt")
    transfer["workflow"] = {"samplers": ["nmcmc"]}
    out["phi4_L64_transfer"] = transfer
    return out


def write_cards() -> None:
    CARDS.mkdir(parents=True, exist_ok=True)
    for name, data in cards().items():
        header = (f"# {name}: written by benchmarks/bench_samplers.py --write-cards (the study of #14);\n"
                  f"# run by that script, or by hand: hpcflow run jobs/cards/samplers/{name}.toml\n")
        (CARDS / f"{name}.toml").write_text(header + to_toml(data))
        load_runcard(CARDS / f"{name}.toml")  # every card validates
    print(f"cards: {CARDS}")


def run(name: str) -> None:
    """``hpcflow run`` of one card from the repository root, one thread per stage."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "hpcflow.cli", "--no-progress", "run", str(CARDS / f"{name}.toml")],
                         cwd=REPO, env=env, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"hpcflow run {name} failed:\n{res.stderr[-3000:]}")


def _comparison(name: str) -> dict[str, Any]:
    card = load_runcard(CARDS / f"{name}.toml")
    return json.loads((REPO / card.run_dir / "workflow" / "comparison.json").read_text())


def _xi(run_dir: Path) -> list[float]:
    fit = json.loads((run_dir / "report" / "analysis.json").read_text())["correlator"]["fit"]["xi"]
    return [fit["value"], fit["error"]]


def _z_fit(xi: list[float], tau: list[float]) -> float | None:
    if len(xi) < 2:
        return None
    return float(np.polyfit(np.log(xi), np.log(tau), 1)[0])


def collect(rows: list[int]) -> dict[str, Any]:
    table = []
    for side in rows:
        main = _comparison(f"phi4_L{side}")
        by = {r["sampler"]: r for r in main["rows"]}
        entry: dict[str, Any] = {"L": side, "beta": BETA[side], "xi": _xi(REPO / by["hmc"]["run_dir"]), "flags": main["flags"]}
        for label, r in (("hmc", by["hmc"]), ("fhmc_fourier", by["fhmc"]), ("nmcmc_fourier", by["nmcmc"])):
            entry[label] = {k: r[k] for k in ("acceptance", "ess", "seconds_per_update", "seconds_per_independent_config",
                                              "tau_int", "observables", "training", "updates")}
        for k in sorted({3, K_XI[side]}):
            r = _comparison(f"phi4_L{side}_k{k}")["rows"][0]
            entry[f"fhmc_k{k}"] = {key: r[key] for key in ("acceptance", "seconds_per_update",
                                                           "seconds_per_independent_config", "tau_int", "training")}
        entry["tau_ratio_fhmc_fourier_vs_hmc"] = (entry["fhmc_fourier"]["tau_int"]["magnetization"][0]
                                                  / entry["hmc"]["tau_int"]["magnetization"][0])
        table.append(entry)
    fits = {}
    xi = [e["xi"][0] for e in table]
    for label in ("hmc", "fhmc_fourier", "fhmc_k3"):
        fits[label] = _z_fit(xi, [e[label]["tau_int"]["magnetization"][0] for e in table])
    fits["fhmc_k~xi"] = _z_fit(xi, [e[f"fhmc_k{K_XI[e['L']]}"]["tau_int"]["magnetization"][0] for e in table])
    out: dict[str, Any] = {"rows": table, "z": fits}
    if 32 in rows and (REPO / "runs" / "samplers" / "phi4_L32_nmcmc" / "workflow" / "comparison.json").is_file():
        best = _comparison("phi4_L32_nmcmc")["rows"][0]
        out["nmcmc_best_32"] = {k: best[k] for k in ("acceptance", "ess", "training", "tau_int", "observables")}
        transfer = REPO / "runs" / "samplers" / "phi4_L64_transfer" / "workflow" / "comparison.json"
        if transfer.is_file():
            t = json.loads(transfer.read_text())["rows"][0]
            out["nmcmc_transfer_64"] = {k: t[k] for k in ("acceptance", "ess")}
    return out


def _plot(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.3))
    rows = result["rows"]
    xi = np.array([e["xi"][0] for e in rows])
    series = [("hmc", "HMC"), ("fhmc_fourier", "FHMC, momentum-space layer + equivariant pair + zero-mode map"),
              ("fhmc_k3", "FHMC, minimal k = 3")]
    for i, (key, label) in enumerate(series):
        tau = [e[key]["tau_int"]["magnetization"] for e in rows]
        z = result["z"].get(key)
        ax1.errorbar(xi, [t[0] for t in tau], yerr=[t[1] for t in tau], fmt="o-", color=f"C{i}",
                     label=f"{label} (z = {z:.2f})" if z is not None else label, capsize=3)
        cost = [e[key]["seconds_per_independent_config"] for e in rows]
        ax2.plot([e["L"] for e in rows], cost, "o-", color=f"C{i}", label=label)
    kxi = [e[f"fhmc_k{K_XI[e['L']]}"]["tau_int"]["magnetization"] for e in rows]
    ax1.errorbar(xi, [t[0] for t in kxi], yerr=[t[1] for t in kxi], fmt="s--", color="C3", capsize=3,
                 label=f"FHMC, minimal k ~ xi (z = {result['z']['fhmc_k~xi']:.2f})" if result["z"]["fhmc_k~xi"] else "k ~ xi")
    ax2.plot([e["L"] for e in rows], [e["nmcmc_fourier"]["seconds_per_independent_config"] for e in rows], "x:",
             color="C4", label="NMCMC, same flow")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("xi (HMC cosh fit)")
    ax1.set_ylabel("tau_int(M) [trajectories]")
    ax1.set_title("phi^4, lam = 0.5, xi ~ L/4: tau_int(M)")
    ax1.legend(fontsize="x-small")
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_xticks([e["L"] for e in rows], [str(e["L"]) for e in rows])
    ax2.set_xlabel("L (lattice L x L)")
    ax2.set_ylabel("wall s per independent configuration of M")
    ax2.set_title("cost (training not included)")
    ax2.legend(fontsize="x-small")
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write-cards", action="store_true", help="write jobs/cards/samplers/*.toml and stop")
    parser.add_argument("--rows", type=int, nargs="+", default=[8, 12, 16, 32])
    parser.add_argument("--skip-runs", action="store_true", help="collect the runs that are there")
    parser.add_argument("--best", action="store_true", help="also the NMCMC flow at 32^2 (an hour) and its 64^2 transfer")
    args = parser.parse_args()
    if args.write_cards:
        write_cards()
        return
    if not args.skip_runs:
        for side in args.rows:
            for name in [f"phi4_L{side}", *(f"phi4_L{side}_k{k}" for k in sorted({3, K_XI[side]}))]:
                print(f"running {name}", flush=True)
                run(name)
        if args.best:
            for name in ("phi4_L32_nmcmc", "phi4_L64_transfer"):
                print(f"running {name}", flush=True)
                run(name)
    result = collect(args.rows)
    print(f"{'L':>3} {'xi':>10} {'tau HMC':>10} {'tau FHMC':>10} {'ratio':>6} {'tau k3':>10} {'cost HMC':>9} "
          f"{'cost FHMC':>9} {'cost NMCMC':>10} {'acc NMCMC':>9}")
    for e in result["rows"]:
        t = {k: e[k]["tau_int"]["magnetization"] for k in ("hmc", "fhmc_fourier", "fhmc_k3")}
        print(f"{e['L']:>3} {e['xi'][0]:>6.2f}({e['xi'][1]:.2f}) {t['hmc'][0]:>10.1f} {t['fhmc_fourier'][0]:>10.1f} "
              f"{e['tau_ratio_fhmc_fourier_vs_hmc']:>6.2f} {t['fhmc_k3'][0]:>10.1f} "
              f"{e['hmc']['seconds_per_independent_config']:>9.3g} {e['fhmc_fourier']['seconds_per_independent_config']:>9.3g} "
              f"{e['nmcmc_fourier']['seconds_per_independent_config']:>10.3g} {e['nmcmc_fourier']['acceptance']:>9.3f}")
    print("z:", {k: None if v is None else round(v, 2) for k, v in result["z"].items()})
    previous = RESULTS / "bench_samplers.json"
    if previous.is_file():  # the hour-long NMCMC rows are kept from the run that measured them
        old = json.loads(previous.read_text())
        for key in ("nmcmc_best_32", "nmcmc_transfer_64"):
            if key not in result and key in old:
                result[key] = {"hpcflow": old[key].get("hpcflow", old["machine"]["hpcflow"]), **old[key]}
    out = write_json("bench_samplers", {"machine": machine(), **result})
    _plot(result, RESULTS / "bench_samplers.png")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
