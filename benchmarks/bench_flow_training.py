"""Flow training throughput (samples per second, one reverse-KL step = forward, backward, Adam)
of hpcflow's flow against a straightforward reference in the style of the MIT tutorial, with the
same architecture (16 affine layers, CNN [8, 8], kernel 3, float32), measured in the same run.
Also hpcflow's Z2-equivariant variant (two conditioner calls per layer) for its cost.

Usage: python benchmarks/bench_flow_training.py [--seconds S] [--threads N]
Output: a table, benchmarks/results/bench_flow_training.json and .png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, time_until, write_json  # noqa: E402
from mit_reference import ReferenceFlow  # noqa: E402

from hpcflow.models.flows import FlowSpec, build_flow  # noqa: E402
from hpcflow.theories.phi4 import Phi4Action  # noqa: E402
from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402

ACTION = Phi4Action(beta=0.576, lam=0.5)


def throughput(flow: torch.nn.Module, side: int, batch: int, seconds: float) -> float:
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        phi, log_q = flow.push(torch.randn(batch, side, side, generator=gen))
        loss = (log_q + ACTION(phi)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    elapsed, calls = time_until(step, seconds)
    return batch * calls / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timing per point")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
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
    out = write_json("bench_flow_training", {"machine": machine(), "unit": "samples per second", "rows": rows})
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
