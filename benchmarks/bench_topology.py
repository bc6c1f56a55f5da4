"""Topology in 2D U(1): tau_int of the topological charge Q for gauge HMC and for flow NMCMC, and
<Q^2>/V of both against the exact torus value (``u1_topological_susceptibility_exact``), on 16^2
and 32^2 at beta from 2 to 8.

The flow: the von Mises plaquette map (``[model] kind = "gauge_coupling"``, ``plaquette_map =
true``, no coupling layers; hpcflow.models.gauge_coupling.plaquette_map), which makes every
plaquette but one an independent von Mises angle; ``hpcflow train`` with 0 steps writes it.
(The gradient-flow maps of bench_u1_flow_kl reach an exact KL of 367 or more at 16^2, beta 6, and
a stuck chain; learned coupling layers on top of the map lower the KL but not the ESS, see the
note of issue 16.) HMC: trajectories of length 1, leapfrog, steps tuned during thermalization towards acceptance
0.8. Both run through the workflow (cards in jobs/cards/topology/, ``--write-cards``); the
comparison at equal wall time is the cost per independent configuration of Q
(hpcflow.analysis.cost: seconds per update x 2 tau_int / chains), the flow's training listed apart.

Usage: python benchmarks/bench_topology.py [--write-cards] [--sides 16 32] [--betas 2 4 6 8]
           [--hmc-trajectories 2000] [--nmcmc-updates 1000] [--runs runs/topology]
Output: a table, benchmarks/results/bench_topology.json and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_json  # noqa: E402

from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402
from hpcflow.theories.gauge_exact import u1_topological_susceptibility_exact  # noqa: E402
from hpcflow.workflow.analyze import analyze  # noqa: E402
from hpcflow.workflow.runcard import load_runcard, to_toml  # noqa: E402
from hpcflow.workflow.sample import sample  # noqa: E402
from hpcflow.workflow.train import train  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CARDS = REPO / "jobs" / "cards" / "topology"


def cards(side: int, beta: float, args: argparse.Namespace) -> dict[str, dict[str, dict[str, Any]]]:
    theory = {"name": "u1", "shape": [side, side], "beta": beta, "start": "hot"}
    name = f"u1_{side}x{side}_b{beta:g}"
    hmc = {"kind": "hmc", "chains": 16, "trajectories": args.hmc_trajectories, "thermalization": 200, "tau": 1.0,
           "steps": 10, "target_acceptance": 0.8, "seed": 1}
    nmcmc = {"kind": "nmcmc", "chains": 16, "updates": args.nmcmc_updates, "thermalization": 50, "chunk": 50, "seed": 2}
    return {
        "hmc": {"theory": theory, "sampler": hmc, "output": {"dir": str(args.runs / f"{name}_hmc")}},
        "nmcmc": {
            "theory": theory,
            "model": {"kind": "gauge_coupling", "layers": 0, "plaquette_map": True},
            "training": {"steps": 0, "batch": 32, "lr": 0.01, "seed": 3, "dtype": "float64"},
            "sampler": nmcmc, "output": {"dir": str(args.runs / f"{name}_nmcmc")},
        },
    }


def run(path: Path) -> dict[str, Any]:
    card = load_runcard(path)
    training = None
    if "training" in card.data:
        training = torch.load(train(card, progress=False), weights_only=True)["meta"]
    sample(card, progress=False)
    s = json.loads((analyze(card.run_dir) / "analysis.json").read_text())
    q, chi = s["observables"]["topological_charge"], s["observables"]["topological_susceptibility"]
    return {"acceptance": s["acceptance"], "tau_int_Q": q["tau_int"], "tau_int_Q_error": q["tau_int_error"],
            "chi": chi, "seconds_per_update": s["seconds_per_update"],
            "cost_per_independent_Q": s["cost_per_independent_config"]["topological_charge"],
            "training_seconds": training["seconds"] if training else 0.0, "ess": s.get("ess")}


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for k, side in enumerate(sorted({r["side"] for r in rows})):
        mine = sorted((r for r in rows if r["side"] == side), key=lambda r: r["beta"])
        betas = [r["beta"] for r in mine]
        for kind, marker in (("hmc", "o-"), ("nmcmc", "s--")):
            left.errorbar(betas, [r[kind]["tau_int_Q"] for r in mine], [r[kind]["tau_int_Q_error"] for r in mine],
                          fmt=marker, color=f"C{k}", label=f"{kind.upper()} {side}x{side}")
            right.errorbar(betas, [r[kind]["chi"]["value"] for r in mine], [r[kind]["chi"]["error"] for r in mine],
                           fmt=marker, color=f"C{k}", label=f"{kind.upper()} {side}x{side}")
        right.plot(betas, [r["chi_exact"] for r in mine], "k:", label="exact" if k == 0 else None)
    left.set(xlabel="beta", ylabel="tau_int(Q) (updates)", yscale="log", title="2D U(1): autocorrelation of Q")
    right.set(xlabel="beta", ylabel="<Q^2>/V", yscale="log", title="topological susceptibility")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-cards", action="store_true", help="write the cards to jobs/cards/topology/ and stop")
    parser.add_argument("--sides", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--betas", type=float, nargs="+", default=[2.0, 4.0, 6.0, 8.0])
    parser.add_argument("--hmc-trajectories", type=int, default=2000)
    parser.add_argument("--nmcmc-updates", type=int, default=1000)
    parser.add_argument("--runs", type=Path, default=Path("runs") / "topology", help="run directories (relative: to the repository)")
    args = parser.parse_args()
    os.chdir(REPO)  # the cards name their run directories relative to the repository
    CARDS.mkdir(parents=True, exist_ok=True)
    plan = []
    for side in args.sides:
        for beta in args.betas:
            paths = {}
            for kind, data in cards(side, beta, args).items():
                paths[kind] = CARDS / f"u1_{side}x{side}_b{beta:g}_{kind}.toml"
                paths[kind].write_text(to_toml(data))
            plan.append((side, beta, paths))
    if args.write_cards:
        print("\n".join(str(p.relative_to(REPO)) for _, _, paths in plan for p in paths.values()))
        return
    rows = []
    print(f"{'L':>3} {'beta':>4} {'tau HMC':>12} {'tau NMCMC':>12} {'acc':>5} {'cost ratio':>10} "
          f"{'chi HMC':>18} {'chi NMCMC':>18} {'exact':>9}")
    for side, beta, paths in plan:
        row = {"side": side, "beta": beta, "chi_exact": u1_topological_susceptibility_exact(beta, side * side),
               **{kind: run(path) for kind, path in paths.items()}}
        h, n = row["hmc"], row["nmcmc"]
        row["cost_ratio_hmc_over_nmcmc"] = h["cost_per_independent_Q"] / n["cost_per_independent_Q"]
        for kind in ("hmc", "nmcmc"):
            row[kind]["chi_agrees"] = abs(row[kind]["chi"]["value"] - row["chi_exact"]) < 4 * row[kind]["chi"]["error"]
        rows.append(row)
        print(f"{side:3d} {beta:4g} {h['tau_int_Q']:7.1f}({h['tau_int_Q_error']:.1f}) {n['tau_int_Q']:7.1f}"
              f"({n['tau_int_Q_error']:.1f}) {n['acceptance']:5.3f} {row['cost_ratio_hmc_over_nmcmc']:10.2f} "
              f"{h['chi']['value']:.5f}({h['chi']['error']:.5f}) {n['chi']['value']:.5f}({n['chi']['error']:.5f}) "
              f"{row['chi_exact']:.5f}", flush=True)
    out = write_json("bench_topology", {"machine": machine(), "rows": rows})
    plot(rows, RESULTS / "bench_topology.png")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
