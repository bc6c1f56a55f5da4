"""Iterations and time to solution against the bare mass, approaching m_crit, for CG (normal
equations), BiCGStab and FGMRES(30), on a thermalized 2D U(1) configuration (Schwinger-model
Wilson operator) and a 4D SU(3) one (Wilson-clover, c_sw = 1). CG is the baseline measured in
the same run; the table gives each solver's work (applications of D) relative to it.

The ensembles are generated here (small, CPU-sized), or read from stored runs with --u1 and
--su3 (configs.h5 of `hpcflow sample` on jobs/cards/u1_32x32_b3.toml, su3_16x8x8x8_b5.8.toml).

Usage: python benchmarks/bench_solvers.py [--u1 PATH] [--su3 PATH] [--tol 1e-8]
Output: a table, benchmarks/results/bench_solvers.json and .png.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_json  # noqa: E402

from hpcflow.dirac import WilsonDirac, bicgstab, cg_normal, fgmres  # noqa: E402
from hpcflow.lattice.rng import ChainRNG  # noqa: E402
from hpcflow.samplers.gauge_hmc import GaugeHMC  # noqa: E402
from hpcflow.samplers.hmc import HMC  # noqa: E402
from hpcflow.samplers.integrators import Leapfrog  # noqa: E402
from hpcflow.theories.gauge import U1Action, WilsonGaugeAction, identity_links, u1_links  # noqa: E402
from hpcflow.workflow.operator import load_links  # noqa: E402
from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402

MASSES = {"u1": [0.3, 0.2, 0.1, 0.05, 0.0], "su3": [-0.3, -0.45, -0.6, -0.7, -0.75]}


def u1_config() -> torch.Tensor:
    hmc = HMC(U1Action(3.0), Leapfrog(), tau=1.0, n_steps=10, rng=ChainRNG(1, [0]))
    state = hmc.init(torch.zeros(1, 2, 16, 16, dtype=torch.float64))
    for _ in range(200):
        state, _ = hmc.step(state)
    return u1_links(state.phi)[0]


def su3_config() -> torch.Tensor:
    hmc = GaugeHMC(WilsonGaugeAction(5.8), tau=1.0, n_steps=50, rng=ChainRNG(1, [0]))  # eps = 0.02: stiff near U = 1
    state = hmc.init(identity_links(1, (8, 4, 4, 4), 3))
    for _ in range(30):
        state, _ = hmc.step(state)
    plaquette = WilsonGaugeAction.mean_plaquette(state.phi).item()
    if plaquette > 0.9:
        raise RuntimeError(f"SU(3) configuration did not thermalize (plaquette {plaquette:.3f})")
    return state.phi[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--u1", type=Path, help="configs.h5 of a U(1) run (last configuration of chain 0)")
    parser.add_argument("--su3", type=Path, help="configs.h5 of an SU(3) run")
    parser.add_argument("--tol", type=float, default=1e-8)
    parser.add_argument("--maxiter", type=int, default=5000)
    args = parser.parse_args()
    configs = {
        "u1": (load_links(args.u1, 0, -1)[0] if args.u1 else u1_config(), 0.0),
        "su3": (load_links(args.su3, 0, -1)[0] if args.su3 else su3_config(), 1.0),
    }
    rows = []
    print(f"{'ensemble':>8} {'mass':>6} {'solver':>9} {'iter':>6} {'work':>6} {'seconds':>8} {'work/CG':>8} {'conv':>5}")
    for name, (links, csw) in configs.items():
        spin = 4 if links.shape[0] == 4 else 2
        gen = torch.Generator().manual_seed(3)
        shape = (1, *links.shape[1:-2], spin, links.shape[-1])
        b = torch.view_as_complex(torch.randn(*shape, 2, generator=gen, dtype=torch.float64))
        for mass in MASSES[name]:
            op = WilsonDirac(links, mass=mass, csw=csw, antiperiodic_time=True)
            solvers = {
                "cg": lambda: cg_normal(op, op.dagger, b, args.tol, args.maxiter),
                "bicgstab": lambda: bicgstab(op, b, args.tol, args.maxiter),
                "fgmres": lambda: fgmres(op, b, args.tol, args.maxiter, restart=30),
            }
            base = None
            for solver, run in solvers.items():
                t0 = time.perf_counter()
                info = run()
                seconds = time.perf_counter() - t0
                base = base or info.work
                row = dict(ensemble=name, lattice=list(links.shape[1:-2]), mass=mass, kappa=op.kappa, solver=solver,
                           iterations=info.iterations, work=info.work, seconds=seconds, converged=info.converged,
                           work_relative_to_cg=info.work / base, final_residual=info.final_residual)
                rows.append(row)
                print(f"{name:>8} {mass:>6.2f} {solver:>9} {info.iterations:>6} {info.work:>6} {seconds:>8.2f} "
                      f"{info.work / base:>8.2f} {str(info.converged):>5}")
    out = write_json("bench_solvers", {"machine": machine(), "tol": args.tol, "rows": rows})
    _plot(rows, RESULTS / "bench_solvers.png")
    print(f"results: {out}")


def _plot(rows: list[dict], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, name in zip(axes, ("u1", "su3")):
        for solver in ("cg", "bicgstab", "fgmres"):
            sel = [r for r in rows if r["ensemble"] == name and r["solver"] == solver]
            ax.plot([r["mass"] for r in sel], [r["work"] for r in sel], "o-", label=solver)
        ax.set_title({"u1": "2D U(1) Wilson", "su3": "4D SU(3) Wilson-clover"}[name])
        ax.set_xlabel("bare mass m")
        ax.set_ylabel("applications of D")
        ax.set_yscale("log")
        ax.legend()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
