"""Batched HMC against one-chain-at-a-time HMC, and its memory traffic against a copy bandwidth.

For every lattice L x L and batch B it measures site updates per second (one trajectory updates
every site of every chain once) of

- ``batched``: one HMC over a (B, L, L) tensor (hpcflow.samplers.HMC), and
- ``loop``: the same algorithm, B one-chain HMC objects stepped one after the other,

in the same run, and prints their ratio. It also estimates the bytes a leapfrog step must move
at least (fused kernels, float64): force = read phi + write F (16 B/site), momentum update = read
pi, F + write pi (24 B/site), field update = read phi, pi + write phi (24 B/site): 64 B/site,
and divides by the measured time per step to give an effective bandwidth, compared with the
measured ``copy_`` bandwidth.

The second study is the compiled phi^4 molecular dynamics (hpcflow.kernels.phi4) against the
torch path (ForceMoves) in the same run, at 1 and 2 threads: one trajectory of 10 leapfrog steps
is 11 drift-kick passes, each reading phi and pi (the neighbours from cache) and writing both:
32 B/site in float64, the traffic of the fused kernel; the torch path's minimum is the 64 B/site
above. Its rows give both paths' time and the fused kernel's effective bandwidth against the copy
bandwidth at that thread count.

Usage: python benchmarks/bench_hmc.py [--quick] [--seconds S] [--threads 1 2]
Output: a table on stdout, benchmarks/results/bench_hmc.json and bench_hmc.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, copy_bandwidth, machine, time_until, write_json  # noqa: E402

import torch  # noqa: E402

from hpcflow.kernels import compiled, why_not_compiled  # noqa: E402

from hpcflow.lattice.rng import ChainRNG  # noqa: E402
from hpcflow.samplers.hmc import HMC  # noqa: E402
from hpcflow.samplers.integrators import ForceMoves, Leapfrog  # noqa: E402
from hpcflow.theories.phi4 import Phi4Action  # noqa: E402
from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402

ACTION = Phi4Action(beta=0.576, lam=0.5)
N_STEPS = 10
BYTES_PER_SITE_STEP = 64
FUSED_BYTES_PER_SITE_MOVE = 32
FUSED_CASES = ((32, 256), (64, 256), (128, 64), (256, 16))


def fused_rows(threads: int, seconds: float, cases: tuple[tuple[int, int], ...]) -> list[dict]:
    """Compiled against torch molecular dynamics, seconds per trajectory, at ``threads``."""
    torch.set_num_threads(threads)
    bandwidth = copy_bandwidth()
    print(f"{threads} threads: copy bandwidth {bandwidth / 1e9:.2f} GB/s")
    print(f"{'L':>4} {'B':>5} {'compiled [ms]':>14} {'torch [ms]':>11} {'ratio':>6} {'GB/s':>7} {'of copy':>8}")
    rows = []
    for l, b in cases:
        hmc = HMC(ACTION, Leapfrog(), tau=1.0, n_steps=N_STEPS, rng=ChainRNG(1, range(b)))
        phi = hmc.rng.normal((l, l))
        pi = hmc.rng.normal((l, l))
        schedule = hmc.integrator.schedule(hmc.eps, hmc.n_steps)
        times = {}
        for name, dynamics in (("compiled", hmc.dynamics), ("torch", ForceMoves(ACTION.force))):
            elapsed, calls = time_until(lambda: dynamics.run(phi, pi, *schedule), seconds)
            times[name] = elapsed / calls
        moves = len(schedule[1]) + 1
        eff = FUSED_BYTES_PER_SITE_MOVE * moves * b * l * l / times["compiled"]
        row = dict(L=l, B=b, threads=threads, compiled_s=times["compiled"], torch_s=times["torch"],
                   speedup=times["torch"] / times["compiled"], effective_bandwidth=eff, copy_bandwidth=bandwidth,
                   fraction_of_copy=eff / bandwidth)
        rows.append(row)
        print(f"{l:>4} {b:>5} {times['compiled'] * 1e3:>14.2f} {times['torch'] * 1e3:>11.2f} {row['speedup']:>6.2f} "
              f"{eff / 1e9:>7.2f} {eff / bandwidth:>8.3f}")
    return rows


def batched_rate(b: int, l: int, seconds: float) -> float:
    hmc = HMC(ACTION, Leapfrog(), tau=1.0, n_steps=N_STEPS, rng=ChainRNG(1, range(b)))
    state = [hmc.init(hmc.rng.normal((l, l)))]

    def trajectory() -> None:
        state[0], _ = hmc.step(state[0])

    elapsed, calls = time_until(trajectory, seconds)
    return b * l * l * calls / elapsed


def loop_rate(b: int, l: int, seconds: float) -> float:
    chains = [HMC(ACTION, Leapfrog(), tau=1.0, n_steps=N_STEPS, rng=ChainRNG(1, [c])) for c in range(b)]
    states = [h.init(h.rng.normal((l, l))) for h in chains]

    def sweep() -> None:
        for i, h in enumerate(chains):
            states[i], _ = h.step(states[i])

    elapsed, calls = time_until(sweep, seconds, min_calls=1)
    return b * l * l * calls / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes (a smoke run)")
    parser.add_argument("--seconds", type=float, default=0.5, help="minimum timing per point")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts of the fused study")
    args = parser.parse_args()
    sizes = (8, 16) if args.quick else (8, 16, 32, 64)
    batches = (1, 16) if args.quick else (1, 4, 16, 64, 256)
    bandwidth = copy_bandwidth()
    rows = []
    print(f"copy bandwidth: {bandwidth / 1e9:.2f} GB/s (read + write)")
    print(f"{'L':>4} {'B':>5} {'batched [site/s]':>17} {'loop [site/s]':>14} {'ratio':>7} {'eff. GB/s':>10} {'of copy':>8}")
    for l in sizes:
        for b in batches:
            fast = batched_rate(b, l, args.seconds)
            slow = loop_rate(b, l, args.seconds)
            eff = fast * N_STEPS * BYTES_PER_SITE_STEP
            rows.append(dict(L=l, B=b, batched=fast, loop=slow, ratio=fast / slow, effective_bandwidth=eff,
                             fraction_of_copy=eff / bandwidth))
            print(f"{l:>4} {b:>5} {fast:>17.3e} {slow:>14.3e} {fast / slow:>7.2f} {eff / 1e9:>10.3f} {eff / bandwidth:>8.3f}")
    fused = []
    if compiled() is None:
        print(f"compiled phi^4 dynamics not measured: {why_not_compiled()}")
    else:
        for threads in args.threads:
            fused += fused_rows(threads, args.seconds, FUSED_CASES[:2] if args.quick else FUSED_CASES)
    out = write_json("bench_hmc", {
        "machine": machine(),
        "unit": "site updates per second (one trajectory of 10 leapfrog steps, float64)",
        "bytes_per_site_per_leapfrog_step_minimum": BYTES_PER_SITE_STEP,
        "copy_bandwidth_bytes_per_s": bandwidth,
        "rows": rows,
        "fused": {"bytes_per_site_per_move": FUSED_BYTES_PER_SITE_MOVE, "unit": "seconds per trajectory (molecular dynamics only)",
                  "rows": fused},
    })
    _plot(rows, RESULTS / "bench_hmc.png")
    print(f"results: {out}")


def _plot(rows: list[dict], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, l in enumerate(sorted({r["L"] for r in rows})):
        sel = [r for r in rows if r["L"] == l]
        ax.plot([r["B"] for r in sel], [r["batched"] for r in sel], "o-", color=f"C{i}", label=f"L={l} batched")
        ax.plot([r["B"] for r in sel], [r["loop"] for r in sel], "x--", color=f"C{i}", label=f"L={l} loop")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("chains B")
    ax.set_ylabel("site updates / s")
    ax.set_title("phi^4 HMC: batched vs one chain at a time")
    ax.legend(fontsize="x-small", ncol=2)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
