"""The compiled SU(N) gauge-HMC moves against the torch path, measured in the same run.

For each lattice, gauge group and thread count it times the two moves of the Lie-group leapfrog
(hpcflow.samplers.gauge_hmc.WilsonMoves) on the compiled kernels (hpcflow.kernels.gauge) and on
their torch specification (``compiled=False``: staples by ``torch.roll``, ``matrix_exp``):

- ``force``: the Wilson force beta/(2N) [U A - (U A)^dag]/2i made traceless, A the staple sum;
- ``drift``: U -> exp(i eps P) U;

and one whole trajectory (tau = 1, 10 leapfrog steps: 11 forces and 10 drifts) on both paths,
printing the ratio torch / compiled. Links are Haar-random SU(N), two chains, complex128.

Usage: python benchmarks/bench_gauge_hmc.py [--seconds S] [--threads 1 2]
Output: a table on stdout and benchmarks/results/bench_gauge_hmc.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, time_until, write_json  # noqa: E402

import torch  # noqa: E402

from hpcflow.kernels import compiled, why_not_compiled  # noqa: E402
from hpcflow.lattice.rng import ChainRNG  # noqa: E402
from hpcflow.samplers.gauge_hmc import GaugeHMC, WilsonMoves  # noqa: E402
from hpcflow.theories.gauge import WilsonGaugeAction, random_su_n  # noqa: E402

CHAINS = 2
N_STEPS = 10
CASES = (((16, 8, 8, 8), 3), ((8, 8, 8, 8), 3), ((8, 8, 8, 8), 2), ((64, 64), 3))


def case_rows(shape: tuple[int, ...], n: int, threads: int, seconds: float) -> dict:
    """Seconds per force, per drift and per trajectory on both paths for one lattice."""
    torch.set_num_threads(threads)
    action = WilsonGaugeAction(5.8 if n == 3 else 2.3)
    u = random_su_n((CHAINS, len(shape), *shape), n, torch.Generator().manual_seed(1))
    hmc = GaugeHMC(action, tau=1.0, n_steps=N_STEPS, rng=ChainRNG(1, range(CHAINS)))
    p = hmc.momenta(u)
    row: dict = {"shape": list(shape), "N": n, "chains": CHAINS, "threads": threads}
    for path, moves in (("compiled", WilsonMoves(action)), ("torch", WilsonMoves(action, compiled=False))):
        hmc.moves = moves
        for name, call in (("force", lambda: moves.force(u)), ("drift", lambda: moves.drift(p, u, 0.1)),
                           ("trajectory", lambda: hmc.trajectory(u, p))):
            elapsed, calls = time_until(call, seconds)
            row[f"{path}_{name}_s"] = elapsed / calls
    for name in ("force", "drift", "trajectory"):
        row[f"{name}_speedup"] = row[f"torch_{name}_s"] / row[f"compiled_{name}_s"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum timing per point")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts")
    args = parser.parse_args()
    if compiled() is None:
        sys.exit(f"the compiled kernels are not built: {why_not_compiled()}")
    print(f"{'lattice':>12} {'N':>2} {'thr':>3} {'force ms':>17} {'drift ms':>17} {'trajectory s':>17}"
          "   (compiled / torch, ratio)")
    rows = []
    for threads in args.threads:
        for shape, n in CASES:
            r = case_rows(shape, n, threads, args.seconds)
            rows.append(r)
            cells = [f"{r[f'compiled_{k}_s'] * f:.3g} / {r[f'torch_{k}_s'] * f:.3g}, {r[f'{k}_speedup']:.1f}x"
                     for k, f in (("force", 1e3), ("drift", 1e3), ("trajectory", 1.0))]
            print(f"{'x'.join(map(str, shape)):>12} {n:>2} {threads:>3} " + " ".join(f"{c:>17}" for c in cells), flush=True)
    out = write_json("bench_gauge_hmc", {"machine": machine(), "unit": "seconds per call, complex128",
                                         "trajectory": f"tau = 1, {N_STEPS} leapfrog steps", "rows": rows})
    print(f"results: {out}")


if __name__ == "__main__":
    main()
