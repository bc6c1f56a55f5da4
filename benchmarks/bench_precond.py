"""Gauge-equivariant preconditioners against no preconditioner and classical two-level multigrid,
approaching the critical mass (Lehner & Wettig's setting, scaled to this machine).

2D U(1) (the Schwinger model's Wilson operator) on 32^2 at beta = 3: a configuration of
jobs/cards/u1_32x32_b3.toml (sampled here if absent), m_crit from the smallest real part of the
spectrum of D at m = 0, masses m_crit + 0.2, 0.1, 0.05, 0.02; FGMRES(30) to
tol 1e-8 with: no preconditioner (the baseline, measured in the same run), the paper's one-layer
one-hop PTC (9 paths in 4D, 5 in 2D) and a four-layer smoother (channels 1, 2, 2, 2, 1), both
trained at m_crit + 0.05 and used at every mass (transfer across masses), and the classical
two-level preconditioner on 4 x 4 blocks with 8 or 4 near-null vectors, chirally split (16 or 8
coarse vectors per block; 4 smoother iterations, coarse solve to 0.05), and the neural two-level
model: a hi-mode smoother (``nn_two_level`` the four-layer one, ``nn_two_level_1h1l`` the
one-layer one, cheaper per application) with a lo-mode model (one LPTC layer on the coarse grid of the
multigrid_nv8 basis, paths of up to 3 hops, trained 1500 steps with |M~ D~ v - v|^2 on low-mode
vectors v = D~^-1 u) in place of the coarse solve.

Transfer (issue #15 item 5): the four-layer model on another configuration of the ensemble (chain 3,
its own m_crit) with 0, 10 and 100 retraining steps, and on a 64^2 configuration of the same beta
(no retraining: PTC weights do not depend on the volume) at 0.2, 0.1 and 0.05 from its own m_crit.
The work in applications of D (hpcflow.workflow.solve.WORK_DEFINITION) is reported beside the
iterations. m_crit comes from hpcflow.dirac.spectrum (dense up to 4096 unknowns, Arnoldi above).

4D SU(3) (``--su3 configs.h5``): the same kinds on a Wilson-clover operator (c_sw = 1) with 12
near-null vectors (40 relaxation iterations each) on ``--su3-blocks`` (4^4 by default) and a
two-hop lo-mode model, models in runs/precond/su3_*. Measured (about 30 min on 2 cores, most of it
the four-layer model's training, 814 s) on the last configuration of chain 0 of
jobs/cards/su3_16x8x8x8_b5.8.toml (hpcflow's gauge HMC, 600 trajectories, plaquette 0.5675),
m_crit = -0.6474, at m - m_crit = 0.2 / 0.1 / 0.05 / 0.02: none 152 / 275 / 490 / 964 iterations;
1h1l PTC 88 / 160 / 279 / 532; 4-layer PTC 47 / 84 / 145 / 273; multigrid_nv12 15 / 20 / 25 / 30
(209 / 281 / 355 / 433 D); nn_two_level (4-layer smoother) 21 / 25 / 30 / 42 (434 / 516 / 619 /
868 D); nn_two_level_1h1l 40 / 46 / 54 / 68 (223 / 256 / 300 / 379 D).

Usage: python benchmarks/bench_precond.py [--steps 1000] [--su3 runs/su3_16x8x8x8_b5.8/configs.h5 [--su3-blocks 4 4 4 4]]
Output: a table, benchmarks/results/bench_precond.json and .png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_json  # noqa: E402

from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402
from hpcflow.dirac import fgmres  # noqa: E402
from hpcflow.dirac.spectrum import smallest_real_part  # noqa: E402
from hpcflow.lattice.rng import ChainRNG  # noqa: E402
from hpcflow.models.precond import NeuralPreconditioner  # noqa: E402
from hpcflow.models.precond.multigrid import two_level_preconditioner  # noqa: E402
from hpcflow.workflow.operator import Configuration  # noqa: E402
from hpcflow.workflow.precond import precond_train, read_model, two_level_from_models  # noqa: E402
from hpcflow.workflow.runcard import validate_runcard  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DISTANCES = (0.2, 0.1, 0.05, 0.02)
MODELS = {"ptc_1h1l": [1, 1], "ptc_1h4l": [1, 2, 2, 2, 1]}
MULTIGRID = {"multigrid_nv8": 8, "multigrid_nv4": 4}  # near-null vectors, each split by chirality
LO_MODE = {"channels": [1, 1], "hops": 3, "level": "coarse", "kind": "lptc", "blocks": [4, 4], "basis": 8, "low_modes": 1.0}
LO_MODE_TRAINING = {"steps": 1500, "lr": 0.001}
SMOOTHER = "ptc_1h4l"  # the hi-mode model of the neural two-level preconditioner and of the transfer
NN_TWO_LEVEL = {"nn_two_level": SMOOTHER, "nn_two_level_1h1l": "ptc_1h1l"}  # kind -> its hi-mode smoother
RETRAINING = (0, 10, 100)


@dataclass(frozen=True)
class Setup:
    """One study: its store, clover coefficient, blocks, multigrid bases and lo-mode model; models
    go to ``runs/precond/<prefix><name>``."""

    title: str
    configs: Path
    csw: float
    blocks: list[int]
    multigrid: dict[str, int]  # name -> near-null vectors, each split by chirality
    lo_mode: dict[str, Any]
    prefix: str = ""
    setup_iterations: int = 10  # of every near-null vector, for the multigrid and the lo-mode basis
    lo_training: dict[str, Any] = field(default_factory=lambda: dict(LO_MODE_TRAINING))


U1 = Setup("2D U(1) 32x32, beta = 3, Wilson", REPO / "runs" / "u1_32x32_b3" / "configs.h5", 0.0, [4, 4], MULTIGRID, LO_MODE)


def su3_setup(configs: Path, blocks: list[int]) -> Setup:
    """The 4D SU(3) Wilson-clover study (c_sw = 1): the paper's 12 near-null vectors per block, each
    relaxed for 40 iterations (10 left the lightest mass at 96 multigrid iterations, 40 / 80 / 150
    give 30 / 27 / 26), and a two-hop lo-mode model trained 5000 steps (on the 2^3 x 4 coarse grid
    of 4^4 blocks three hops diverged at this learning rate)."""
    return Setup(f"4D SU(3) Wilson-clover c_sw = 1, {configs}", configs, 1.0, blocks, {"multigrid_nv12": 12},
                 {**LO_MODE, "blocks": blocks, "basis": 12, "hops": 2}, prefix="su3_", setup_iterations=40,
                 lo_training={"steps": 5000, "lr": 0.001})


def m_crit(config: Configuration) -> float:
    """The mass at which the smallest real part of the spectrum of D reaches 0: -min Re lambda(D(0))."""
    return -smallest_real_part(config.operator(0.0), (*config.lattice, config.spin, config.colours), torch.complex128,
                               config.links.device)


def train(configs: Path, name: str, mass: float, steps: int, lr: float = 0.01, **settings: Any) -> Path:
    """Train (or find trained) the model ``runs/precond/<name>`` of ``[precond]`` ``settings``."""
    card = validate_runcard({"precond": {
        "configs": str(configs), "mass": mass, "steps": steps, "batch": 4, "lr": lr, "seed": 1,
        "dir": str(REPO / "runs" / "precond" / name), "checkpoint_every": 100, **settings}}, source=f"<bench {name}>")
    return precond_train(card, progress=False)


def sample(card: str, configs: Path) -> None:
    if not configs.is_file():
        subprocess.run([sys.executable, "-m", "hpcflow.cli", "--no-progress", "sample", card], cwd=REPO, check=True)


def configuration(configs: Path, chain: int = 0, csw: float = 0.0) -> Configuration:
    s = {"configs": str(configs), "chain": chain, "step": -1, "csw": csw, "antiperiodic_time": True}
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


def study(setup: Setup, steps: int) -> dict[str, Any]:
    """Every preconditioner of the module docstring at the four distances from this configuration's m_crit."""
    config = configuration(setup.configs, csw=setup.csw)
    crit = m_crit(config)
    clover = setup.csw != 0
    print(f"{setup.title}: m_crit = {crit:.5f}", flush=True)
    models = {name: train(setup.configs, setup.prefix + name, crit + 0.05, steps, channels=channels, csw=setup.csw)
              for name, channels in MODELS.items()}
    loaded = {name: read_model(path, name, config, torch.complex128) for name, path in models.items()}
    lo_path = train(setup.configs, setup.prefix + "lo_mode", crit + 0.05, **setup.lo_training, **setup.lo_mode,
                    setup_iterations=setup.setup_iterations, csw=setup.csw)
    lo, lo_meta = read_model(lo_path, "lo_mode", config, torch.complex128, "coarse")
    mg = {name: {"basis": basis, "setup_iterations": setup.setup_iterations, "blocks": setup.blocks, "smoother_iterations": 4,
                 "coarse_tol": 0.05, "coarse_maxiter": 300, "seed": 1} for name, basis in setup.multigrid.items()}
    kinds: dict[str, Any] = {
        "none": None,
        **{name: (lambda op, m=model: NeuralPreconditioner(m, op.links, clover=clover)) for name, (model, _) in loaded.items()},
        **{name: (lambda op, s=settings: two_level_preconditioner(op, s)) for name, settings in mg.items()},
        **{name: (lambda op, m=model: two_level_from_models(op, loaded[m][0], lo, lo_meta, clover, "<bench>", "solve"))
           for name, model in NN_TWO_LEVEL.items()},
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
    return {"title": setup.title, "lattice": list(config.lattice), "csw": setup.csw, "m_crit": crit, "rows": rows,
            "kinds": list(kinds), "training": training, "multigrid": mg,
            "lo_mode": {**setup.lo_mode, **setup.lo_training, "setup_iterations": setup.setup_iterations},
            "models": {k: str(v) for k, v in models.items()}}


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
    out["volume_64"]["m_crit"] = big_crit = m_crit(big)  # Arnoldi: 8192 unknowns
    for distance in (0.2, 0.1, 0.05):
        row = {"m_minus_mcrit": distance, "none": solve(big, big_crit + distance, None),
               SMOOTHER: solve(big, big_crit + distance, lambda op: NeuralPreconditioner(m, op.links, False))}
        out["volume_64"]["rows"].append(row)
        print(f"64^2, m - m_crit = {distance}: none {row['none']['iterations']} it, "
              f"{SMOOTHER} {row[SMOOTHER]['iterations']} it", flush=True)
    return out


def _plot(studies: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(len(studies), 2, figsize=(11, 4.3 * len(studies)), squeeze=False)
    for (ax1, ax2), result in zip(axes, studies.values()):
        x = [r["m_minus_mcrit"] for r in result["rows"]]
        for kind in result["kinds"]:
            ax1.plot(x, [r[kind]["iterations"] for r in result["rows"]], "o-", label=kind)
            ax2.plot(x, [r[kind]["work"] for r in result["rows"]], "o-", label=kind)
        for ax, label in ((ax1, "FGMRES(30) iterations"), (ax2, "work (applications of D)")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(x, [f"{v:g}" for v in x])
            ax.set_xlabel("m - m_crit")
            ax.set_ylabel(label)
            ax.legend(fontsize="small")
        ax1.set_title(f"{result['title'].split(',')[0]}, m_crit = {result['m_crit']:.4f}", fontsize="medium")
    fig.suptitle("Preconditioners approaching m_crit, FGMRES(30), tol 1e-8")
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps of each hi-mode model")
    parser.add_argument("--su3", type=Path, help="configs.h5 of a 4D SU(3) ensemble: run its study (not the 2D one)")
    parser.add_argument("--su3-blocks", type=int, nargs=4, default=[4, 4, 4, 4], help="multigrid blocks in 4D")
    args = parser.parse_args()
    previous = RESULTS / "bench_precond.json"
    studies = json.loads(previous.read_text()).get("studies", {}) if previous.is_file() else {}
    if args.su3 is None:
        sample("jobs/cards/u1_32x32_b3.toml", U1.configs)
        result = study(U1, args.steps)
        studies["u1"] = {**result, "transfer": transfer(U1.configs, Path(result["models"][SMOOTHER]), result["m_crit"])}
    else:
        studies["su3"] = study(su3_setup(args.su3, args.su3_blocks), args.steps)
    out = write_json("bench_precond", {"machine": machine(), "studies": studies})
    _plot(studies, RESULTS / "bench_precond.png")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
