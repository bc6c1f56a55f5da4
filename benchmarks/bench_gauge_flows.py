"""Gradient-flow maps for 2D SU(3) on 16^2 at beta = 4, 5, 6 (S = -(beta/3) sum_P Re tr U_P): the
ESS of Luscher's LO map, model A and model B (Bacchio et al. 2022, shared/PHYSICS.md), trained by
``hpcflow train`` on 8^2 and sampled by NMCMC on 16^2 through the workflow (the coefficients do
not depend on the volume; ``[sampler].model`` takes the map trained on the smaller lattice).

Models (cards in jobs/cards/gauge_flows/, ``--write-cards``):

- ``luscher_lo``: the plaquette with Luscher's leading-order coefficient -beta/16, untrained;
- ``luscher_nlo``: Luscher's next-to-leading-order map (the 12 terms of the family
  ``"luscher_nlo"``: the plaquette in four representations, the 1x2 rectangles, the
  figure-eights and the products of neighbouring plaquette traces), untrained;
- ``model_a``: the plaquette in the fundamental, symmetric, antisymmetric and adjoint
  representations, the 1x2 rectangles and the two figure-eights (8 loops), coefficients affine in
  flow time (16 parameters), started at Luscher's LO map;
- ``model_a_nlo``: the terms of ``luscher_nlo``, coefficients affine in flow time (24
  parameters), started at Luscher's NLO map;
- ``model_b``: ``perimeter8_reps``, the 10 loops of at most 8 links, the doubly wound plaquette,
  the figure-eights, and the plaquette and the 1x2 rectangles in the three other representations
  (22 loops), and the four products of neighbouring plaquette traces: 26 terms, natural cubic
  splines with 6 knots (156 parameters), 12 RK3 steps, started at Luscher's NLO map.

Per row: parameters, training steps, Phi_train (batch x steps), training seconds, the ESS of the
NMCMC proposals and the acceptance, and the NMCMC plaquette against the exact infinite-volume
value (``sun_plaquette_infinite_volume``; on 16^2 the torus corrections are below 1e-50).
The paper's ESS (Luscher NLO / 14 / 420 parameters / Boyda et al.): 42/91/98/88 % at beta 4,
4/65/88/75 % at 5, <1/26/70/48 % at 6, after GPU training far beyond this CPU budget.

Usage: python benchmarks/bench_gauge_flows.py [--write-cards] [--betas 4 5 6] [--models ...]
           [--steps-a 300] [--steps-b 120] [--workers 2] [--runs runs/gauge_flows]
Output: a table, benchmarks/results/bench_gauge_flows.json and .png; the rows of models and betas
not run this time are kept from the previous JSON (each row names the commit it ran at).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_json  # noqa: E402

from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402
from hpcflow.models.gradflow import FAMILIES, PRODUCTS  # noqa: E402
from hpcflow.theories.gauge_exact import sun_plaquette_infinite_volume  # noqa: E402
from hpcflow.workflow.analyze import analyze  # noqa: E402
from hpcflow.workflow.model_io import model_spec  # noqa: E402
from hpcflow.workflow.runcard import load_runcard, to_toml  # noqa: E402
from hpcflow.workflow.sample import sample  # noqa: E402
from hpcflow.workflow.train import train  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CARDS = REPO / "jobs" / "cards" / "gauge_flows"
MODELS: dict[str, dict[str, Any]] = {
    "luscher_lo": {"loops": ["1x1"], "coefficients": "affine", "init": "luscher_lo"},
    "model_a": {"loops": ["1x1", "1x1@sym", "1x1@anti", "1x1@adj", "1x2", "2x1", "fig8_0", "fig8_1"],
                "coefficients": "affine", "init": "luscher_lo"},
    "luscher_nlo": {"loops": "luscher_nlo", "coefficients": "affine", "init": "luscher_nlo"},
    "model_a_nlo": {"loops": "luscher_nlo", "coefficients": "affine", "init": "luscher_nlo"},
    "model_b": {"loops": [*FAMILIES["perimeter8_reps"], *PRODUCTS], "coefficients": "spline", "knots": 6,
                "init": "luscher_nlo", "steps": 12},
}
"""Each model's ``[model]``; ``steps`` (RK3 steps) defaults to :data:`FLOW_STEPS`. Model B takes 12:
with 6, its splines learned to exploit the integration error (the loss fell to -50.7, below
-log Z = -33.9; log q moved by 104 +- 11 when the steps were doubled), which sampling now refuses."""
PAPER = {4.0: [42, 91, 98, 88], 5.0: [4, 65, 88, 75], 6.0: [1, 26, 70, 48]}
"""ESS in % (Luscher NLO, 14 parameters, 420 parameters, Boyda et al.); '< 1' written as 1."""
FLOW_STEPS = 6
TRAIN_SHAPE, SAMPLE_SHAPE = [8, 8], [16, 16]


def cards(beta: float, model: str, steps: int, runs: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The training card on 8^2 and the sampling card on 16^2 that takes its map."""
    train_name, name = f"su3_8x8_b{beta:g}_{model}_train", f"su3_16x16_b{beta:g}_{model}"
    sampler = {"kind": "nmcmc", "chains": 8, "updates": 64, "thermalization": 4, "seed": 2, "chunk": 16}
    training = {
        "theory": {"name": "su3", "shape": TRAIN_SHAPE, "beta": beta},
        "model": {"kind": "gradflow", "steps": FLOW_STEPS, **MODELS[model]},
        "training": {"steps": steps, "batch": 32, "lr": 0.01, "seed": 1, "dtype": "float32", "log_every": 10,
                     "checkpoint_every": 50},
        "sampler": sampler,  # required by the schema; this card only trains
        "output": {"dir": str(runs / train_name)},
    }
    sampling = {
        "theory": {"name": "su3", "shape": SAMPLE_SHAPE, "beta": beta},
        "sampler": {**sampler, "model": str(runs / train_name / "model" / "flow.pt")},
        "output": {"dir": str(runs / name)},
    }
    return training, sampling


def run_row(model: str, train_path: Path, path: Path) -> dict[str, Any]:
    torch.set_num_threads(1)  # rows run side by side, one core each
    os.chdir(REPO)  # the cards name their run directories relative to the repository
    t0 = time.perf_counter()
    trained = load_runcard(train_path)
    flow_pt = train(trained, progress=False)
    meta = torch.load(flow_pt, weights_only=True)["meta"]
    c = load_runcard(path)
    sample(c, progress=False)
    summary = json.loads((analyze(c.run_dir) / "analysis.json").read_text())
    plaq = summary["observables"]["plaquette"]
    exact = sun_plaquette_infinite_volume(c.theory["beta"], 3)
    spec = model_spec(trained)
    return {
        "model": model, "card": str(path.relative_to(REPO)), "training_card": str(train_path.relative_to(REPO)),
        "beta": c.theory["beta"], "parameters": spec.parameters(), "loops": len(spec.loops),
        "training_shape": TRAIN_SHAPE, "shape": SAMPLE_SHAPE,
        "training_steps": meta["steps"], "phi_train": meta["phi_train"],
        "training_seconds": meta["seconds"], "ess": summary["ess"], "acceptance": summary["acceptance"],
        "proposals": c.sampler["chains"] * (c.sampler["updates"] + c.sampler["thermalization"]),
        "plaquette": plaq, "plaquette_exact": exact,
        "plaquette_agrees": abs(plaq["value"] - exact) < 4 * plaq["error"], "seconds": time.perf_counter() - t0,
    }


def _merged(rows: list[dict[str, Any]], previous: Path) -> list[dict[str, Any]]:
    """This run's rows, then the previous file's rows of the (model, beta) pairs not run now."""
    revision = machine()["hpcflow"]
    for row in rows:
        row["hpcflow"] = revision
    done = {(r["model"], r["beta"]) for r in rows}
    old = json.loads(previous.read_text()) if previous.exists() else {"rows": []}
    kept = [{"hpcflow": r.get("hpcflow", old["machine"]["hpcflow"]), **r} for r in old["rows"]
            if (r["model"], r["beta"]) not in done]
    return sorted(rows + kept, key=lambda r: (r["beta"], list(MODELS).index(r["model"])))


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, model in enumerate(MODELS):
        mine = [r for r in rows if r["model"] == model]
        ax.plot([r["beta"] for r in mine], [100 * r["ess"] for r in mine], "o-", color=f"C{k}",
                label=f"{model} ({mine[0]['parameters'] if mine else '?'} parameters)")
    betas = sorted(PAPER)
    colour = {model: f"C{k}" for k, model in enumerate(MODELS)}
    for k, (label, model) in enumerate((("paper: Luscher NLO", "luscher_nlo"), ("paper: 14 parameters", "model_a"),
                                        ("paper: 420 parameters", "model_b"))):
        ax.plot(betas, [PAPER[b][k] for b in betas], "x--", color=colour[model], alpha=0.6, label=label)
    ax.set(xlabel="beta", ylabel="ESS (%)", yscale="log", title="2D SU(3), 16x16: gradient-flow NMCMC")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-cards", action="store_true", help="write the cards to jobs/cards/gauge_flows/ and stop")
    parser.add_argument("--betas", type=float, nargs="+", default=[4.0, 5.0, 6.0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--steps-a", type=int, default=300, help="training steps of model A")
    parser.add_argument("--steps-b", type=int, default=120, help="training steps of model B")
    parser.add_argument("--workers", type=int, default=2, help="rows run side by side, one core each")
    parser.add_argument("--runs", type=Path, default=Path("runs") / "gauge_flows", help="run directories (relative: to the repository)")
    args = parser.parse_args()
    os.chdir(REPO)
    steps = {"luscher_lo": 0, "luscher_nlo": 0, "model_a": args.steps_a, "model_a_nlo": args.steps_a, "model_b": args.steps_b}
    CARDS.mkdir(parents=True, exist_ok=True)
    rows_todo = []
    for beta in args.betas:
        for model in args.models:
            training, sampling = cards(beta, model, steps[model], args.runs)
            paths = (CARDS / f"su3_8x8_b{beta:g}_{model}_train.toml", CARDS / f"su3_16x16_b{beta:g}_{model}.toml")
            for p, c in zip(paths, (training, sampling)):
                p.write_text(to_toml(c))
            rows_todo.append((model, *paths))
    if args.write_cards:
        print("\n".join(str(p.relative_to(REPO)) for _, *paths in rows_todo for p in paths))
        return
    print(f"{'beta':>5} {'model':>11} {'params':>6} {'steps':>5} {'train s':>8} {'ESS':>7} {'acc':>6} "
          f"{'plaquette':>18} {'exact':>8}")
    rows = []
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
        for row in pool.map(run_row, *zip(*rows_todo)):
            rows.append(row)
            p = row["plaquette"]
            print(f"{row['beta']:5g} {row['model']:>11} {row['parameters']:6d} {row['training_steps']:5d} "
                  f"{row['training_seconds']:8.0f} {row['ess']:7.4f} {row['acceptance']:6.3f} "
                  f"{p['value']:10.5f}({p['error']:.5f}) {row['plaquette_exact']:8.5f}"
                  f"{'' if row['plaquette_agrees'] else '  DISAGREES'}", flush=True)
    out = write_json("bench_gauge_flows", {"machine": machine(), "flow_steps": FLOW_STEPS, "paper_ess_percent": PAPER,
                                           "rows": _merged(rows, RESULTS / "bench_gauge_flows.json")})
    plot(json.loads(out.read_text())["rows"], RESULTS / "bench_gauge_flows.png")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
