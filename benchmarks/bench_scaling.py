"""Weak and strong scaling over ranks: flow training, HMC chains, HDF5 writes.

Two ways to run it:

- **driver** (a single process, the default): for each ``--ranks N`` it launches itself with
  ``--launcher`` (default ``mpiexec -n {n}``; on a cluster e.g. ``srun -n {n}``), collects each
  world's figures, and writes the efficiency table, JSON and plots.
- **one world** (started by a launcher with more than one rank, or with ``--measure``): measures
  at the current world size and prints one JSON line on rank 0.

Per world of N ranks, each figure the median of ``--repeats`` timings, all in the same run:

- training (16 affine layers, CNN [8, 8], phi^4 on ``--lattice``, float32, data parallel through
  ``[parallel].backend``'s strategy): samples/s at a global batch of ``--batch`` (strong) and at
  ``--batch`` per rank (weak);
- HMC chains (10 leapfrog steps per trajectory): chain-trajectories/s with ``--chains`` in all
  (strong) and per rank (weak);
- writes of ``--megabytes`` of configurations (chains x rows x L x L float64) into a store
  through each layout: ``single`` (collective ``mpio``; with 1 rank plain HDF5), ``per-rank``
  (+ virtual datasets), and ``serial`` (every row sent to rank 0, which writes alone), each
  flushed and fsync'ed, against a raw sequential ``write`` + ``fsync`` of as many bytes by
  rank 0 alone into a file created at its final size (the baseline; the stores allocate their
  datasets when created, which is not timed for either).

Efficiency: strong ``E = T_1 / (N T_N)`` for a fixed total, weak ``E = r_N / (N r_1)`` for rates
at a fixed load per rank. On a machine with fewer cores than ranks the efficiency measures
oversubscription, not the code: the JSON records the core count.

Usage: python benchmarks/bench_scaling.py [--ranks 1 2 4] [--launcher "srun -n {n}"] [--quick]
Output: a table on stdout, benchmarks/results/scaling.json and scaling.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_json  # noqa: E402

from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402
from hpcflow.io.store import ConfigStore, rank_file  # noqa: E402
from hpcflow.lattice.rng import ChainRNG  # noqa: E402
from hpcflow.models.flows import FlowSpec, build_flow, reverse_kl  # noqa: E402
from hpcflow.parallel import STRATEGIES, ClusterEnv, Strategy  # noqa: E402
from hpcflow.parallel.world import World, chain_blocks  # noqa: E402
from hpcflow.samplers.hmc import HMC  # noqa: E402
from hpcflow.samplers.integrators import Leapfrog  # noqa: E402
from hpcflow.theories.phi4 import Phi4Action  # noqa: E402

ACTION = Phi4Action(beta=0.576, lam=0.5)


def _median_time(world: World, fn: Callable[[], None], repeats: int) -> float:
    """Median over ``repeats`` of the slowest rank's wall time of ``fn`` (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        world.barrier()
        t0 = time.perf_counter()
        fn()
        times.append(max(world.allgather(time.perf_counter() - t0)))
    return statistics.median(times)


def training_rate(world: World, strategy: Strategy, lattice: int, local_batch: int, steps: int, repeats: int) -> float:
    """Samples per second (global batch x steps / time) of data-parallel reverse-KL training."""
    torch.manual_seed(0)
    flow = build_flow(FlowSpec("affine", 16, (8, 8), 3))
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    model, opt = strategy.wrap(flow, opt)
    gen = torch.Generator().manual_seed(world.rank)

    def run() -> None:
        for _ in range(steps):
            z = flow.prior.sample(local_batch, (lattice, lattice), gen, torch.float32)
            loss, _ = reverse_kl(flow, ACTION, z, forward=model)
            opt.zero_grad()
            loss.backward()
            strategy.reduce_gradients(opt)
            strategy.step(opt)

    seconds = _median_time(world, run, repeats)
    return local_batch * world.size * steps / seconds


def hmc_rate(world: World, lattice: int, local_chains: int, trajectories: int, repeats: int) -> float:
    """Chain-trajectories per second of HMC with ``local_chains`` chains per rank."""
    first = world.rank * local_chains
    rng = ChainRNG(1, range(first, first + local_chains))
    hmc = HMC(ACTION, Leapfrog(), tau=1.0, n_steps=10, rng=rng)
    state = [hmc.init(rng.normal((lattice, lattice)))]

    def run() -> None:
        for _ in range(trajectories):
            state[0], _ = hmc.step(state[0])

    seconds = _median_time(world, run, repeats)
    return local_chains * world.size * trajectories / seconds


def write_rates(world: World, directory: Path, megabytes: float, lattice: int, repeats: int) -> dict[str, float]:
    """Bytes per second of writing the same configurations through each layout, and raw."""
    chains = 8 * world.size
    rows = max(1, int(megabytes * 2**20 / (chains * lattice * lattice * 8)))
    blocks = chain_blocks(chains, world.size)
    block = blocks[world.rank]
    mine = np.random.default_rng(world.rank).normal(size=(len(block), rows, lattice, lattice))
    nbytes = chains * rows * lattice * lattice * 8
    layout = {"phi": ((chains, rows, lattice, lattice), "f8")}
    path = directory / "bench.h5"
    rates: dict[str, float] = {}

    def fresh(blocks_arg: list[range] | None) -> None:
        if world.is_root:
            for old in directory.glob("bench*.h5"):
                old.unlink()
            ConfigStore.create(path, layout, {}, blocks=blocks_arg)
        world.barrier()

    def timed(name: str, prepare: Callable[[], None], write: Callable[[], None]) -> None:
        times = []
        for _ in range(repeats):
            prepare()
            world.barrier()
            t0 = time.perf_counter()
            write()
            world.barrier()
            times.append(time.perf_counter() - t0)
        rates[name] = nbytes / statistics.median(times)

    def single() -> None:
        comm = world.comm if world.size > 1 else None
        with ConfigStore(path, "r+", comm=comm, chains=block if comm else None) as store:
            store.write("phi", 0, mine)
            store.flush()

    def per_rank() -> None:
        with ConfigStore(rank_file(path, world.rank), "r+") as store:
            store.write("phi", 0, mine)
            store.flush()
        world.barrier()
        if world.is_root:
            with ConfigStore(path, "r+") as main:
                main.set_rows("phi", rows)
                main.flush()

    def serial() -> None:
        parts = world.gather(mine)
        if parts is not None:
            with ConfigStore(path, "r+") as store:
                store.write("phi", 0, np.concatenate(parts))
                store.flush()

    raw_file = directory / "raw.bin"

    def fresh_raw() -> None:
        # like the stores' early allocation (without fill): the file has its size before the write
        if world.is_root:
            raw_file.unlink(missing_ok=True)
            with open(raw_file, "wb") as fh:
                fh.truncate(nbytes)
        world.barrier()

    def raw() -> None:  # rank 0 alone writes as many bytes (its block once per rank; blocks are equal)
        if world.is_root:
            with open(raw_file, "r+b") as fh:
                for _ in range(world.size):
                    fh.write(np.ascontiguousarray(mine).data)
                fh.flush()
                os.fsync(fh.fileno())

    if world.size == 1 or __import__("h5py").get_config().mpi:
        timed("single", lambda: fresh(None), single)
    timed("per-rank", lambda: fresh(blocks), per_rank)
    timed("serial", lambda: fresh(None), serial)
    timed("raw", fresh_raw, raw)
    return rates


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every figure at the current world size."""
    world = World.detect()
    torch.set_num_threads(1)
    l, r = args.lattice, args.repeats
    out: dict[str, Any] = {"ranks": world.size, "launcher": ClusterEnv.detect().launcher}
    strategy = STRATEGIES[args.backend]()
    strategy.init()
    out["train_strong"] = training_rate(world, strategy, l, max(1, args.batch // world.size), args.steps, r)
    out["train_weak"] = training_rate(world, strategy, l, args.batch, args.steps, r)
    out["hmc_strong"] = hmc_rate(world, l, max(1, args.chains // world.size), args.trajectories, r)
    out["hmc_weak"] = hmc_rate(world, l, args.chains, args.trajectories, r)
    shared = world.bcast(tempfile.mkdtemp(prefix="hpcflow-bench-", dir=args.scratch) if world.is_root else None)
    out["write"] = write_rates(world, Path(shared), args.megabytes, l, r)
    world.barrier()
    if world.is_root:
        for p in Path(shared).iterdir():
            p.unlink()
        Path(shared).rmdir()
    return out


def drive(args: argparse.Namespace) -> None:
    """Launch one world per rank count, then tabulate and plot."""
    worlds = []
    for n in args.ranks:
        launch = shlex.split(args.launcher.format(n=n)) if n > 1 else []
        cmd = [*launch, sys.executable, __file__, "--measure", *sys.argv[1:]]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
        if res.returncode:
            sys.exit(f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}")
        worlds.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(f"measured {n} rank(s)", flush=True)
    base = worlds[0]
    n0 = base["ranks"]
    for w in worlds:
        n = w["ranks"] / n0
        w["efficiency"] = {
            # strong: fixed total work, so E = rate_N / (N rate_1); weak: fixed work per rank, the same formula
            key: w[key] / (n * base[key]) for key in ("train_strong", "train_weak", "hmc_strong", "hmc_weak")
        }
        w["write_vs_raw"] = {k: v / w["write"]["raw"] for k, v in w["write"].items() if k != "raw"}
    result = {"machine": machine(), "settings": {k: v for k, v in vars(args).items() if k != "measure"}, "worlds": worlds}
    path = write_json("scaling", result)
    print(f"{'ranks':>5} {'train strong':>13} {'E':>5} {'train weak':>11} {'E':>5} {'HMC strong':>11} {'E':>5} "
          f"{'HMC weak':>9} {'E':>5} | MB/s: {'raw':>6} {'single':>7} {'per-rank':>8} {'serial':>7}")
    for w in worlds:
        e, wr = w["efficiency"], w["write"]
        print(f"{w['ranks']:>5} {w['train_strong']:>13.0f} {e['train_strong']:>5.2f} {w['train_weak']:>11.0f} "
              f"{e['train_weak']:>5.2f} {w['hmc_strong']:>11.0f} {e['hmc_strong']:>5.2f} {w['hmc_weak']:>9.0f} "
              f"{e['hmc_weak']:>5.2f} |       {wr['raw'] / 2**20:>6.0f} {wr.get('single', float('nan')) / 2**20:>7.0f} "
              f"{wr['per-rank'] / 2**20:>8.0f} {wr['serial'] / 2**20:>7.0f}")
    plot(worlds)
    print(f"results: {path}")


def plot(worlds: list[dict[str, Any]]) -> None:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ranks = [w["ranks"] for w in worlds]
    for key, label in (("train_strong", "training, strong"), ("train_weak", "training, weak"),
                       ("hmc_strong", "HMC, strong"), ("hmc_weak", "HMC, weak")):
        ax1.plot(ranks, [w["efficiency"][key] for w in worlds], "o-", label=label)
    ax1.axhline(1.0, color="gray", lw=0.8)
    ax1.set(xlabel="ranks", ylabel="parallel efficiency", xticks=ranks, ylim=(0, 1.2))
    ax1.legend()
    for key in ("raw", "single", "per-rank", "serial"):
        values = [w["write"].get(key, float("nan")) / 2**20 for w in worlds]
        ax2.plot(ranks, values, "o-", label=key)
    ax2.set(xlabel="ranks", ylabel="write bandwidth (MiB/s, incl. fsync)", xticks=ranks)
    ax2.legend()
    save_figure(fig, RESULTS / "scaling.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--launcher", default="mpiexec -n {n}", help="command line that starts {n} ranks")
    parser.add_argument("--backend", default="ddp", choices=sorted(STRATEGIES), help="training strategy")
    parser.add_argument("--lattice", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64, help="global batch (strong) / per-rank batch (weak)")
    parser.add_argument("--steps", type=int, default=5, help="training steps per timing")
    parser.add_argument("--chains", type=int, default=32, help="chains in all (strong) / per rank (weak)")
    parser.add_argument("--trajectories", type=int, default=10, help="HMC trajectories per timing")
    parser.add_argument("--megabytes", type=float, default=64.0, help="configurations written per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scratch", default=None, help="directory for the write test (default: the temp dir)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.lattice, args.batch, args.steps, args.chains, args.trajectories, args.megabytes, args.repeats = 8, 16, 2, 8, 3, 4.0, 1
    if args.measure or ClusterEnv.detect().size > 1:
        out = measure(args)
        if ClusterEnv.detect().is_root:
            print(json.dumps(out), flush=True)
    else:
        drive(args)


if __name__ == "__main__":
    main()
