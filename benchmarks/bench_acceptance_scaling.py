"""Acceptance against training cost Phi_train = batch x iterations for each lattice of the
acceptance table (the "cost scaling" and "diminishing returns" plots of Del Debbio et al.),
read from the training logs of the runs that bench_acceptance_table.py (or `hpcflow run` on
jobs/cards/acceptance/*.toml) made. The acceptance in the log is the independence-Metropolis
acceptance estimated on each logged training batch.

Usage: python benchmarks/bench_acceptance_scaling.py [--runs runs/acceptance]
Output: benchmarks/results/acceptance_scaling.json and .png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_json  # noqa: E402
from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402


def smooth(y: np.ndarray, window: int = 5) -> np.ndarray:
    """Running mean over ``window`` logged points (the per-batch estimate is noisy)."""
    if y.size < window:
        return y
    return np.convolve(y, np.ones(window) / window, mode="valid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/acceptance"))
    args = parser.parse_args()
    curves = {}
    for log in sorted(args.runs.glob("phi4_L*/model/train_log.jsonl")):
        side = int(log.parent.parent.name.split("_L")[1])
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        curves[side] = {
            "phi_train": [e["phi_train"] for e in entries],
            "acceptance": [e["acceptance"] for e in entries],
            "ess": [e["ess"] for e in entries],
            "seconds": [e["seconds"] for e in entries],
        }
    if not curves:
        raise SystemExit(f"no training logs under {args.runs}: run benchmarks/bench_acceptance_table.py first")
    out = write_json("acceptance_scaling", {"machine": machine(), "curves": {str(k): v for k, v in sorted(curves.items())}})
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for side, c in sorted(curves.items()):
        acc = smooth(np.array(c["acceptance"]))
        phi = np.array(c["phi_train"])[-acc.size:]
        ax1.plot(phi, acc, label=f"{side}x{side}")
        ax2.plot(np.array(c["seconds"])[-acc.size:] / 60, acc, label=f"{side}x{side}")
    ax1.set_xscale("log")
    ax1.set_xlabel("Phi_train = batch x iterations")
    ax2.set_xlabel("training wall time (min)")
    for ax in (ax1, ax2):
        ax.set_ylabel("acceptance (running mean of 5 logged batches)")
        ax.legend()
    fig.suptitle("phi^4, lam = 0.5, xi ~ L/4: NMCMC acceptance during training")
    save_figure(fig, RESULTS / "acceptance_scaling.png")
    for side, c in sorted(curves.items()):
        print(f"{side:>3}x{side:<3} Phi_train {c['phi_train'][-1]:>9}  acceptance {np.mean(c['acceptance'][-5:]):.3f}  "
              f"({c['seconds'][-1] / 60:.1f} min)")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
