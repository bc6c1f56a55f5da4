"""Gauge-equivariant preconditioners against no preconditioner and classical two-level multigrid,
approaching the critical mass (Lehner & Wettig's setting, scaled to this machine).

2D U(1) (the Schwinger model's Wilson operator) on 32^2 at beta = 3: a configuration of
jobs/cards/u1_32x32_b3.toml (sampled here if absent), m_crit from the smallest real part of the
spectrum of D at m = 0 (dense: 2048 x 2048), masses m_crit + 0.2, 0.1, 0.05, 0.02; FGMRES(30) to
tol 1e-8 with: no preconditioner (the baseline, measured in the same run), the paper's one-layer
one-hop PTC (9 paths in 4D, 5 in 2D) and a four-layer smoother (channels 1, 2, 2, 2, 1), both
trained at m_crit + 0.05 and used at every mass (transfer across masses), and the classical
two-level preconditioner on 4 x 4 blocks with 8 or 4 near-null vectors, chirally split (16 or 8
coarse vectors per block; 4 smoother iterations, coarse solve to 0.05), and the neural two-level
model: the four-layer smoother with a lo-mode model (one LPTC layer on the coarse grid of the
multigrid_nv8 basis, paths of up to 3 hops, trained 1500 steps with |M~ D~ v - v|^2 on low-mode
vectors v = D~^-1 u) in place of the coarse solve.

Transfer (issue #15 item 5): the four-layer model on another configuration of the ensemble (chain 3,
its own m_crit) with 0, 10 and 100 retraining steps, and on a 64^2 configuration of the same beta
(no retraining: PTC weights do not depend on the volume), at the 32^2 distances 0.2 and 0.1 (the
64^2 spectrum is not computed densely).
The work in applications of D (hpcflow.workflow.solve.WORK_DEFINITION) is reported beside the
iterations. The 4D SU(3) 8^3 x 16 study of issue #15 is not part of this benchmark yet: it needs a
thermalized ensemble of hpcflow's gauge HMC (jobs/cards/su3_16x8x8x8_b5.8.toml), measured at 63 s
per trajectory of its 2 chains on the 2-core development machine (5.5 h for the card's 300).

Usage: python benchmarks/bench_precond.py [--steps 1000]
Output: a table, benchmarks/results/bench_precond.json and .png.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_json  # noqa: E402

from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402
from hpcflow.dirac import fgmres  # noqa: E402
from hpcflow.lattice.rng import ChainRNG  # noqa: E402
from hpcflow.models.precond import NeuralPreconditioner  # noqa: E402
from hpcflow.models.precond.coarse import coarse_preconditioner, neural_two_level  # noqa: E402
from hpcflow.models.precond.multigrid import two_level_preconditioner  # noqa: E402
from hpcflow.workflow.operator import Configuration  # noqa: E402
from hpcflow.workflow.precond import block_projector, precond_train, read_model  # noqa: E402
from hpcflow.workflow.runcard import validate_runcard  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DISTANCES = (0.2, 0.1, 0.05, 0.02)
MODELS = {"ptc_1h1l": [1, 1], "ptc_1h4l": [1, 2, 2, 2, 1]}
MULTIGRID = {"multigrid_nv8": 8, "multigrid_nv4": 4}  # near-null vectors, each split by chirality
LO_MODE = {"channels": [1, 1], "hops": 3, "level": "coarse", "kind": "lptc", "blocks": [4, 4], "basis": 8, "low_modes": 1.0}
LO_MODE_TRAINING = {"steps": 1500, "lr": 0.001}
SMOOTHER = "ptc_1h4l"  # the hi-mode model of the neural two-level preconditioner and of the transfer
RETRAINING = (0, 10, 100)


def m_crit(config: Configuration) -> float:
    """The mass at which the smallest real part of the spectrum of D reaches 0: -min Re lambda(D(0))."""
    op = config.operator(0.0)
    shape = (*config.lattice, config.spin, config.colours)
    size = int(np.prod(shape))
    dense = op(torch.eye(size, dtype=torch.complex128, device=config.links.device).reshape(size, *shape)).reshape(size, size).T
    return -float(torch.linalg.eigvals(dense).real.min())


def train(configs: Path, name: str, mass: float, steps: int, lr: float = 0.01, **settings: Any) -> Path:
    """Train (or find trained) the model ``runs/precond/<name>`` of ``[precond]`` ``settings``."""
    card = validate_runcard({"precond": {
        "configs": str(configs), "mass": mass, "steps": steps, "batch": 4, "lr": lr, "seed": 1,
        "dir": str(REPO / "runs" / "precond" / name), "checkpoint_every": 100, **settings}}, source=f"<bench {name}>")
    return precond_train(card, progress=False)


def sample(card: str, configs: Path) -> None:
    if not configs.is_file():
        subprocess.run([sys.executable, "-m", "hpcflow.cli", "--no-progress", "sample", card], cwd=REPO, check=True)


def configuration(configs: Path, chain: int = 0) -> Configuration:
    s = {"configs": str(configs), "chain": chain, "step": -1, "csw": 0.0, "antiperiodic_time": True}
    return Configuration(s, "<bench>", "solve", torch.device("cpu"))


def solve(config: Configuration, mass: float, precond: Any, seed: int = 2) -> dict[str, Any]:
    op = config.operator(mass)
    rng = ChainRNG(seed, [0], config.links.device)
    site = (*config.lattice, config.spin, config.colours)
    b = torch.complex(rng.normal(site), rng.normal(site))
    t0 = time.perf_counter()
    m = precond(op) if precond is not None else None
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    info = fgmres(op, b, 1e-8, 20_000, restart=30, precond=m)
    return {"iterations": info.iterations, "work": float(info.work), "seconds": time.perf_counter() - t0,
            "setup_seconds": setup, "converged": info.converged}


def two_level(hi: Any, lo: Any, lo_meta: dict[str, Any]) -> Any:
    """The neural two-level preconditioner of a hi-mode and a lo-mode model, for an operator."""
    def make(op: Any) -> Any:
        projector = block_projector(lo_meta["vectors"], lo_meta["blocks"], op, "<bench>", "solve")
        return neural_two_level(op, projector, NeuralPreconditioner(hi, op.links, clover=False),
                                coarse_preconditioner(lo, projector))
    return make


def u1_study(steps: int) -> dict[str, Any]:
    configs = REPO / "runs" / "u1_32x32_b3" / "configs.h5"
    sample("jobs/cards/u1_32x32_b3.toml", configs)
    config = configuration(configs)
    crit = m_crit(config)
    models = {name: train(configs, name, crit + 0.05, steps, channels=channels) for name, channels in MODELS.items()}
    loaded = {name: read_model(path, name, config, torch.complex128) for name, path in models.items()}
    lo_path = train(configs, "lo_mode", crit + 0.05, **LO_MODE_TRAINING, **LO_MODE)
    lo, lo_meta = read_model(lo_path, "lo_mode", config, torch.complex128, "coarse")
    mg = {name: {"basis": basis, "setup_iterations": 10, "blocks": [4, 4], "smoother_iterations": 4,
                 "coarse_tol": 0.05, "coarse_maxiter": 300, "seed": 1} for name, basis in MULTIGRID.items()}
    kinds: dict[str, Any] = {
        "none": None,
        **{name: (lambda op, m=model: NeuralPreconditioner(m, op.links, clover=False)) for name, (model, _) in loaded.items()},
        **{name: (lambda op, s=settings: two_level_preconditioner(op, s)) for name, settings in mg.items()},
        "nn_two_level": two_level(loaded[SMOOTHER][0], lo, lo_meta),
    }
    rows = []
    for distance in DISTANCES:
        mass = crit + distance
        row: dict[str, Any] = {"m_minus_mcrit": distance, "mass": mass}
        for kind, precond in kinds.items():
            row[kind] = solve(config, mass, precond)
        rows.append(row)
        print(f"m - m_crit = {distance:<5} " + "  ".join(f"{k}: {row[k]['iterations']} it / {row[k]['work']:.0f} D / "
                                                         f"{row[k]['seconds']:.2f} s"
                                                         for k in kinds), flush=True)
    training = {name: {k: meta[k] for k in ("held_out_cost", "seconds", "steps", "mass")}
                for name, (_, meta) in {**loaded, "lo_mode": (lo, lo_meta)}.items()}
    return {"lattice": [32, 32], "beta": 3.0, "m_crit": crit, "rows": rows, "training": training, "multigrid": mg,
            "lo_mode": {**LO_MODE, **LO_MODE_TRAINING}, "transfer": transfer(configs, models[SMOOTHER], crit)}


def transfer(configs: Path, model: Path, crit: float) -> dict[str, Any]:
    """The smoother on configurations it was not trained on: another of the ensemble after 0, 10 and
    100 retraining steps (from the trained weights), and a 64^2 configuration as it is."""
    other = configuration(configs, chain=3)
    other_crit = m_crit(other)
    out: dict[str, Any] = {"other_configuration": {"chain": 3, "step": -1, "m_crit": other_crit, "rows": []},
                           "volume_64": {"rows": []}}
    retrained = {}
    for n in RETRAINING:
        path = model if n == 0 else train(configs, f"{SMOOTHER}_chain3_retrain{n}", other_crit + 0.05, n,
                                          lr=0.002, chain=3, channels=MODELS[SMOOTHER], init=str(model))
        retrained[n] = read_model(path, "transfer", other, torch.complex128)[0]
    for distance in (0.1, 0.05, 0.02):
        row: dict[str, Any] = {"m_minus_mcrit": distance, "none": solve(other, other_crit + distance, None)}
        for n, m in retrained.items():
            row[f"retrain_{n}"] = solve(other, other_crit + distance, lambda op, m=m: NeuralPreconditioner(m, op.links, False))
        out["other_configuration"]["rows"].append(row)
        print(f"chain 3, m - m_crit = {distance}: " + "  ".join(f"{k}: {v['iterations']} it" for k, v in row.items()
                                                                if isinstance(v, dict)), flush=True)
    big_configs = REPO / "runs" / "u1_64x64_b3" / "configs.h5"
    sample("jobs/cards/u1_64x64_b3.toml", big_configs)
    big = configuration(big_configs)
    m = read_model(model, "transfer", big, torch.complex128)[0]
    for distance in (0.2, 0.1):
        row = {"m_minus_mcrit_32": distance, "none": solve(big, crit + distance, None),
               SMOOTHER: solve(big, crit + distance, lambda op: NeuralPreconditioner(m, op.links, False))}
        out["volume_64"]["rows"].append(row)
        print(f"64^2, m - m_crit(32^2) = {distance}: none {row['none']['iterations']} it, "
              f"{SMOOTHER} {row[SMOOTHER]['iterations']} it", flush=True)
    return out


def _plot(study: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.3))
    x = [r["m_minus_mcrit"] for r in study["rows"]]
    for kind in ("none", *MODELS, *MULTIGRID, "nn_two_level"):
        ax1.plot(x, [r[kind]["iterations"] for r in study["rows"]], "o-", label=kind)
        ax2.plot(x, [r[kind]["work"] for r in study["rows"]], "o-", label=kind)
    for ax, label in ((ax1, "FGMRES(30) iterations"), (ax2, "work (applications of D)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.set_xlabel("m - m_crit")
        ax.set_ylabel(label)
        ax.legend(fontsize="small")
    fig.suptitle(f"2D U(1) 32x32, beta = 3, m_crit = {study['m_crit']:.4f}: preconditioners, tol 1e-8")
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps of each model")
    args = parser.parse_args()
    study = u1_study(args.steps)
    out = write_json("bench_precond", {"machine": machine(), "u1": study})
    _plot(study, RESULTS / "bench_precond.png")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
