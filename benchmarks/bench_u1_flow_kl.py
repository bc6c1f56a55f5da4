"""Exact reverse KL of trained 2D U(1) gradient-flow maps: KL(q||p) = E_q[log q + S] + log Z with
the exact torus log Z (``u1_log_partition_function``), the ESS of the proposals and <Q^2> of the
proposals against the exact chi V. The chain's acceptance and a batch ESS say little once the
log-weights spread over tens of units; the exact KL says how far the map is from trivializing.

Usage: python benchmarks/bench_u1_flow_kl.py CARD [CARD ...] [--proposals 512]
       (each card trained first: hpcflow train CARD)
Output: a table and benchmarks/results/bench_u1_flow_kl.json.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_json  # noqa: E402

from hpcflow.models.flows.loss import effective_sample_size  # noqa: E402
from hpcflow.theories.gauge import U1Action, topological_charge  # noqa: E402
from hpcflow.theories.gauge_exact import (  # noqa: E402
    u1_log_partition_function,
    u1_topological_susceptibility_exact,
)
from hpcflow.workflow.model_io import load_flow  # noqa: E402
from hpcflow.workflow.runcard import load_runcard  # noqa: E402

BATCH = 32


def measure(path: Path, proposals: int) -> dict:
    """KL, its error, the spread of the log-weights, the ESS per proposal and <Q^2> of the proposals."""
    card = load_runcard(path)
    shape = tuple(card.theory["shape"])
    beta, volume = card.theory["beta"], math.prod(shape)
    flow, action = load_flow(card).double(), U1Action(beta)
    generator = torch.Generator().manual_seed(7)
    log_w, charge = [], []
    with torch.no_grad():
        for _ in range(-(-proposals // BATCH)):
            theta, log_q = flow.sample(BATCH, shape, generator)
            log_w.append(-action(theta) - log_q)
            charge.append(topological_charge(theta))
        # log q is relative to the prior's measure: log Z in that measure is the Haar one minus log q_0
        log_z = u1_log_partition_function(beta, volume) - float(flow.prior.log_prob(theta[:1])[0])
    lw, q = torch.cat(log_w) - log_z, torch.cat(charge).double()
    return {"card": str(path), "model": card.data["model"], "training": card.data.get("training"),
            "beta": beta, "shape": list(shape), "proposals": len(lw),
            "kl": -float(lw.mean()), "kl_error": float(lw.std() / math.sqrt(len(lw))),
            "log_weight_std": float(lw.std()), "ess": effective_sample_size(lw),
            "q2_proposals": float((q**2).mean()),
            "q2_exact": u1_topological_susceptibility_exact(beta, volume) * volume}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cards", type=Path, nargs="+")
    parser.add_argument("--proposals", type=int, default=512)
    args = parser.parse_args()
    rows = [measure(path, args.proposals) for path in args.cards]
    print(f"{'card':40} {'KL':>14} {'std log w':>9} {'ESS':>7} {'<Q^2> q':>8} {'exact':>6}")
    for r in rows:
        print(f"{Path(r['card']).name:40} {r['kl']:8.1f}({r['kl_error']:.1f}) {r['log_weight_std']:9.1f} "
              f"{r['ess']:7.4f} {r['q2_proposals']:8.2f} {r['q2_exact']:6.2f}")
    print(f"wrote {write_json('bench_u1_flow_kl', {'machine': machine(), 'rows': rows})}")


if __name__ == "__main__":
    main()
