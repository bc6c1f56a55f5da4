"""Acceptance against training cost Phi_train = batch x iterations for each lattice of the
acceptance table (the "cost scaling" and "diminishing returns" plots of Del Debbio et al.),
read from the training logs of the runs that bench_acceptance_table.py (or `hpcflow run` on
jobs/cards/acceptance/*.toml) made. The acceptance in the log is the independence-Metropolis
acceptance estimated on each logged training batch.

Several run directories (e.g. two architectures) are drawn side by side, in different line
styles, and their acceptance at equal training wall time is printed. A row that started from a
pretrained flow ([training].init) is drawn from the end of its pretraining on the wall-time axis.

Usage: python benchmarks/bench_acceptance_scaling.py [--runs runs/acceptance [OTHER_RUNS ...]]
Output: benchmarks/results/acceptance_scaling.json and .png.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_json  # noqa: E402
from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402
from hpcflow.io.checkpoint import latest_checkpoint  # noqa: E402


def smooth(y: np.ndarray, window: int = 5) -> np.ndarray:
    """Running mean over ``window`` logged points (the per-batch estimate is noisy)."""
    if y.size < window:
        return y
    return np.convolve(y, np.ones(window) / window, mode="valid")


STYLES = ("-", "--", ":", "-.")


def pretraining_seconds(run_dir: Path) -> float:
    """Training seconds of the flow the run started from (``[training].init``), else 0: read from
    the run's own ``flow.pt`` or, while it trains, its latest checkpoint (both keep the init's
    metadata, so the pretrained file itself may be gone)."""
    model = run_dir / "model"
    if (model / "flow.pt").is_file():
        init = torch.load(model / "flow.pt", weights_only=True)["meta"].get("init")
    else:
        latest = latest_checkpoint(model / "checkpoints")
        init = latest[1].get("init") if latest else None
    return float(init["seconds"]) if init else 0.0


def read_curves(runs: Path) -> dict[int, dict[str, list[float]]]:
    """Training-log curves of every row under ``runs``, keyed by the lattice side; the seconds of
    a pretrained row include its pretraining (its Phi_train counts the row's lattice only)."""
    curves = {}
    for log in sorted(runs.glob("phi4_L*/model/train_log.jsonl")):
        run_dir = log.parent.parent
        if not re.fullmatch(r"phi4_L\d+", run_dir.name):  # e.g. phi4_L16_pretrain
            continue
        side = int(run_dir.name.split("_L")[1])
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        if not entries:  # training has just started
            continue
        curves[side] = {key: [e[key] for e in entries] for key in ("phi_train", "acceptance", "ess", "seconds")}
        offset = pretraining_seconds(run_dir)
        curves[side]["seconds"] = [t + offset for t in curves[side]["seconds"]]
    if not curves:
        raise SystemExit(f"no training logs under {runs}: run benchmarks/bench_acceptance_table.py first")
    return dict(sorted(curves.items()))


def acceptance_at(curve: dict[str, list[float]], seconds: float, window: int = 5) -> float:
    """Mean logged acceptance of the ``window`` logged batches up to ``seconds`` of training."""
    upto = [a for a, t in zip(curve["acceptance"], curve["seconds"]) if t <= seconds]
    return float(np.mean(upto[-window:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, nargs="+", default=[Path("runs/acceptance")])
    args = parser.parse_args()
    sets = {str(runs): read_curves(runs) for runs in args.runs}
    out = write_json("acceptance_scaling", {"machine": machine(), "runs": {
        name: {str(side): c for side, c in curves.items()} for name, curves in sets.items()}})
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    colour = {side: f"C{j}" for j, side in enumerate(sorted(set().union(*sets.values())))}
    for i, (name, curves) in enumerate(sets.items()):
        for side, c in curves.items():
            acc = smooth(np.array(c["acceptance"]))
            kwargs = dict(label=f"{side}x{side}" if i == 0 else None, linestyle=STYLES[i % len(STYLES)], color=colour[side])
            ax1.plot(np.array(c["phi_train"])[-acc.size:], acc, **kwargs)
            ax2.plot(np.array(c["seconds"])[-acc.size:] / 60, acc, **kwargs)
    if len(sets) > 1:  # one legend entry per run directory, in black
        for i, name in enumerate(sets):
            ax2.plot([], [], color="k", linestyle=STYLES[i % len(STYLES)], label=name)
    ax1.set_xscale("log")
    ax1.set_xlabel("Phi_train = batch x iterations")
    ax2.set_xlabel("training wall time (min)")
    for ax in (ax1, ax2):
        ax.set_ylabel("acceptance (running mean of 5 logged batches)")
        ax.legend(fontsize="small")
    fig.suptitle("phi^4, lam = 0.5, xi ~ L/4: NMCMC acceptance during training")
    save_figure(fig, RESULTS / "acceptance_scaling.png")
    for name, curves in sets.items():
        print(name)
        for side, c in curves.items():
            print(f"  {side:>3}x{side:<3} Phi_train {c['phi_train'][-1]:>9}  acceptance {acceptance_at(c, c['seconds'][-1]):.3f}  "
                  f"({c['seconds'][-1] / 60:.1f} min)")
    if len(sets) > 1:
        print("acceptance at equal training wall time (mean of the last 5 logged batches):")
        first, *others = sets.items()
        for side, c in first[1].items():
            rivals = [(name, curves[side]) for name, curves in others if side in curves]
            if not rivals:
                continue
            t = min(x["seconds"][-1] for x in [c] + [r for _, r in rivals])
            cells = "  ".join(f"{name}: {acceptance_at(x, t):.3f}" for name, x in [(first[0], c)] + rivals)
            print(f"  {side:>3}x{side:<3} at {t / 60:.0f} min  {cells}")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
