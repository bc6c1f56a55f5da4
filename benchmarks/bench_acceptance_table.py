"""The NMCMC acceptance table of Del Debbio et al. 2021 at CPU scale (shared/PHYSICS.md).

For each row card in jobs/cards/acceptance/ (6^2, 8^2, 12^2, 16^2 at lam = 0.5, xi ~ L/4):
train the flow (hpcflow train), sample with NMCMC and analyse; run an HMC baseline on the same
theory (the baseline measured in the same run) and compare <|M|>/V, chi and E (z-scores); use
the same flow at twice the lattice side (volume transfer) and report its acceptance. Derived
cards are written next to the results, so every number can be rerun with `hpcflow run`. A row
whose card starts from a pretrained flow ([training].init, trained beforehand) counts both stages
in its training seconds, its Phi_train the configurations of the row's lattice (the pretraining's
are listed beside them).

Usage: python benchmarks/bench_acceptance_table.py [--rows 6 8 12 16] [--threads N]
Output: a table on stdout and benchmarks/results/acceptance_table.json. Where the row's NMCMC
run is shorter than 100 tau_int, the HMC comparison uses a longer NMCMC run of the same flow
(up to 20000 updates per chain), named in the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_json  # noqa: E402

from hpcflow.workflow.analyze import analyze  # noqa: E402
from hpcflow.workflow.runcard import load_runcard, to_toml  # noqa: E402
from hpcflow.workflow.sample import sample  # noqa: E402
from hpcflow.workflow.train import train  # noqa: E402

CARDS = Path(__file__).resolve().parent.parent / "jobs" / "cards" / "acceptance"
PUBLISHED = {6: (0.3, 0.2), 8: (0.04, 0.001), 12: (0.002, 7e-6), 16: (1e-4, None)}
"""Del Debbio et al. (review talk): acceptance on L x L, and of the same flow at 2L x 2L."""
COMPARED = ("abs_magnetization", "susceptibility", "energy")
MAX_LONG_UPDATES = 20_000


def derived_card(base: Path, name: str, change: dict[str, dict[str, Any]], drop: tuple[str, ...]) -> Path:
    raw = tomllib.loads(base.read_text())
    for section in drop:
        raw.pop(section, None)
    for section, keys in change.items():
        raw.setdefault(section, {}).update(keys)
        for k in [k for k, v in raw[section].items() if v is None]:
            del raw[section][k]
    path = RESULTS / "cards" / f"{base.stem}_{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_toml(raw))
    return path


def stage(card_path: Path) -> dict[str, Any]:
    card = load_runcard(card_path)
    t0 = time.perf_counter()
    if "training" in card.data:
        train(card, progress=False)
    sample(card, progress=False)
    report = json.loads((analyze(card.run_dir) / "analysis.json").read_text())
    report["wall_seconds_this_call"] = time.perf_counter() - t0
    return report


def row(side: int) -> dict[str, Any]:
    base = CARDS / f"phi4_L{side}.toml"
    card = load_runcard(base)
    nmcmc = stage(base)
    model = card.run_dir / "model" / "flow.pt"
    meta = torch.load(model, weights_only=True)["meta"]
    pre = meta.get("init")
    hmc = stage(derived_card(base, "hmc", {
        "sampler": {"kind": "hmc", "trajectories": 2000, "thermalization": 200, "tau": 1.0, "steps": 10,
                    "integrator": "omelyan", "target_acceptance": 0.9, "updates": None, "chunk": None, "seed": 5},
        "output": {"dir": f"{card.run_dir}_hmc"},
        "analysis": {"reweight": None},
    }, drop=("model", "training")))
    # The Gamma method needs runs much longer than tau_int; at low acceptance the row's own
    # NMCMC run may be too short, so the comparison with HMC then uses a longer run of the same flow.
    tau = max(r["tau_int"] for r in nmcmc["observables"].values())
    compared, long_updates = nmcmc, None
    if 100 * tau > card.updates:
        long_updates = min(1000 * math.ceil(100 * tau / 1000), MAX_LONG_UPDATES)
        compared = stage(derived_card(base, "long", {
            "sampler": {"updates": long_updates, "model": str(model)},
            "output": {"dir": f"{card.run_dir}_long"},
        }, drop=("training",)))
    transfer = stage(derived_card(base, "transfer", {
        "theory": {"shape": [2 * side, 2 * side]},
        "sampler": {"updates": 500, "model": str(model)},
        "output": {"dir": f"{card.run_dir}_transfer"},
    }, drop=("training",)))
    comparison = {}
    for name in COMPARED:
        a, b = compared["observables"][name], hmc["observables"][name]
        z = (a["value"] - b["value"]) / max((a["error"] ** 2 + b["error"] ** 2) ** 0.5, 1e-300)
        comparison[name] = {"nmcmc": [a["value"], a["error"]], "hmc": [b["value"], b["error"]], "z": z}
    return {
        "L": side,
        "beta": card.theory["beta"],
        "acceptance": nmcmc["acceptance"],
        "ess": nmcmc["ess"],
        "phi_train": meta["phi_train"],
        "train_seconds": meta["seconds"] + (pre["seconds"] if pre else 0.0),
        "pretraining": pre and {k: pre[k] for k in ("shape", "steps", "phi_train", "seconds")},
        "transfer_acceptance": transfer["acceptance"],
        "published": {"acceptance": PUBLISHED[side][0], "transfer_acceptance": PUBLISHED[side][1]},
        "comparison_nmcmc_updates": long_updates or card.updates,
        "tau_int_abs_M": {"nmcmc": compared["observables"]["abs_magnetization"]["tau_int"],
                          "hmc": hmc["observables"]["abs_magnetization"]["tau_int"]},
        "comparison": comparison,
        "reweighted": compared.get("reweighted"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[6, 8, 12, 16], choices=sorted(PUBLISHED))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out_path = RESULTS / "acceptance_table.json"
    rows: list[dict[str, Any]] = []
    for side in args.rows:
        new = row(side)
        # Re-read just before writing: rows may run as separate processes side by side.
        rows = json.loads(out_path.read_text())["rows"] if out_path.is_file() else []
        rows = [r for r in rows if r["L"] != side] + [new]
        rows.sort(key=lambda r: r["L"])
        write_json("acceptance_table", {"machine": machine(), "rows": rows})
    print(f"{'L':>3} {'beta':>6} {'acc':>6} {'pub.':>7} {'ESS':>6} {'Phi_train':>10} {'train s':>8} "
          f"{'acc 2L':>7} {'pub. 2L':>8} {'z |M|':>6} {'z chi':>6} {'z E':>6}")
    for r in rows:
        c = r["comparison"]
        pub2 = r["published"]["transfer_acceptance"]
        print(f"{r['L']:>3} {r['beta']:>6} {r['acceptance']:>6.3f} {r['published']['acceptance']:>7.0e} {r['ess']:>6.3f} "
              f"{r['phi_train']:>10} {r['train_seconds']:>8.0f} {r['transfer_acceptance']:>7.3f} "
              f"{'<1e-7' if pub2 is None else f'{pub2:.0e}':>8} {c['abs_magnetization']['z']:>6.2f} "
              f"{c['susceptibility']['z']:>6.2f} {c['energy']['z']:>6.2f}")
    print(f"results: {out_path}")


if __name__ == "__main__":
    main()
