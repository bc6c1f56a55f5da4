"""Flow training throughput (samples per second, one reverse-KL step = forward, backward, Adam)
of hpcflow's flow against a straightforward reference in the style of the MIT tutorial, with the
same architecture (16 affine layers, CNN [8, 8], kernel 3, float32), measured in the same run.
The reference runs its CNNs over the full lattice with the active sites masked to zero; hpcflow's
conditioners run on the packed sublattices (half the sites, no masks). Also hpcflow's
Z2-equivariant variant (two conditioner calls per layer) for its cost.

Second part (``--train-seconds``, default 240): the two non-equivariant flows trained for the same
wall time at 8^2, beta = 0.576, lam = 0.5 (batch 256, Adam 1e-3, one thread each, one after the
other), then the independence-Metropolis acceptance of 16384 proposals of each, so that the
throughput gain can be read as acceptance per CPU second (the two conditioners are not the same
function class: the per-step learning differs).

Usage: python benchmarks/bench_flow_training.py [--seconds S] [--threads N] [--train-seconds T]
Output: tables, benchmarks/results/bench_flow_training.json and .png.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, time_until, write_json  # noqa: E402
from mit_reference import ReferenceFlow  # noqa: E402

from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402
from hpcflow.models.flows import FlowSpec, build_flow, effective_sample_size, imh_acceptance  # noqa: E402
from hpcflow.theories.phi4 import Phi4Action  # noqa: E402

ACTION = Phi4Action(beta=0.576, lam=0.5)


def reverse_kl_step(flow: torch.nn.Module, opt: torch.optim.Optimizer, side: int, batch: int,
                    gen: torch.Generator) -> None:
    phi, log_q = flow.push(torch.randn(batch, side, side, generator=gen))
    loss = (log_q + ACTION(phi)).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def throughput(flow: torch.nn.Module, side: int, batch: int, seconds: float) -> float:
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    elapsed, calls = time_until(lambda: reverse_kl_step(flow, opt, side, batch, gen), seconds)
    return batch * calls / elapsed


def train_for(flow: torch.nn.Module, seconds: float, side: int = 8, batch: int = 256) -> dict[str, float]:
    """Train for ``seconds`` of wall time, then measure acceptance and ESS of 16384 proposals."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        reverse_kl_step(flow, opt, side, batch, gen)
        steps += 1
    with torch.no_grad():
        log_w = torch.cat([-ACTION(phi) - log_q for phi, log_q in
                           (flow.push(torch.randn(1024, side, side, generator=gen)) for _ in range(16))])
    return {"steps": steps, "seconds": time.perf_counter() - t0, "acceptance": imh_acceptance(log_w.double(), gen),
            "ess": effective_sample_size(log_w.double())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timing per point")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for the throughput (0: default)")
    parser.add_argument("--train-seconds", type=float, default=240.0, help="equal-time training per flow (0: skip)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    print(f"{'L':>3} {'batch':>6} {'reference':>10} {'hpcflow':>10} {'ratio':>6} {'Z2-equiv.':>10}")
    for side, batch in ((8, 64), (8, 256), (16, 256), (32, 64)):
        torch.manual_seed(0)
        ref = throughput(ReferenceFlow(16, [8, 8], 3, (side, side)), side, batch, args.seconds)
        ours = throughput(build_flow(FlowSpec("affine", 16, (8, 8), 3, equivariant=False)), side, batch, args.seconds)
        equiv = throughput(build_flow(FlowSpec("affine", 16, (8, 8), 3, equivariant=True)), side, batch, args.seconds)
        rows.append(dict(L=side, batch=batch, reference=ref, hpcflow=ours, ratio=ours / ref, equivariant=equiv))
        print(f"{side:>3} {batch:>6} {ref:>10.0f} {ours:>10.0f} {ours / ref:>6.2f} {equiv:>10.0f}")
    equal_time = {}
    if args.train_seconds > 0:
        torch.set_num_threads(1)
        equal_time["reference"] = train_for(ReferenceFlow(16, [8, 8], 3, (8, 8)), args.train_seconds)
        equal_time["hpcflow"] = train_for(build_flow(FlowSpec("affine", 16, (8, 8), 3, equivariant=False)), args.train_seconds)
        print(f"\nequal-time training, 8^2, {args.train_seconds:.0f} s each:")
        for name, r in equal_time.items():
            print(f"  {name:>9}: {r['steps']:>5} steps, acceptance {r['acceptance']:.3f}, ESS {r['ess']:.3f}")
    out = write_json("bench_flow_training", {"machine": machine(), "unit": "samples per second", "rows": rows,
                                             "equal_time_training": equal_time})
    _plot(rows, RESULTS / "bench_flow_training.png")
    print(f"results: {out}")


def _plot(rows: list[dict], path: Path) -> None:
    plt = pyplot()
    labels = [f"{r['L']}^2, B={r['batch']}" for r in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, (key, name) in enumerate((("reference", "MIT-style reference"), ("hpcflow", "hpcflow"), ("equivariant", "hpcflow Z2"))):
        ax.bar([i + 0.27 * (k - 1) for i in x], [r[key] for r in rows], width=0.27, label=name)
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("samples / s")
    ax.set_title("flow training throughput (16 affine layers, CNN [8, 8])")
    ax.legend()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
