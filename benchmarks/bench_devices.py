"""Flow training and HMC chains on a GPU against the CPU of the same machine, in the same run.

- Flow training: samples per second of one reverse-KL step (forward, backward, Adam) of
  hpcflow's flow (16 affine couplings, CNN [8, 8], kernel 3, float32, latent draws from the
  device's generator as in ``hpcflow train``) at 32^2 and 64^2, batch 256 and 1024.
- HMC: site updates per second of phi^4 HMC (beta 0.6614, lam 0.5; Omelyan, 10 steps, float64)
  over B chains in one tensor, with the per-chain random streams of the sampler; and the share of
  a trajectory spent drawing those streams (one generator per chain: B draws per trajectory).

Every row is a ratio against the CPU row of the same size. The CPU runs with all its threads.

Usage: python benchmarks/bench_devices.py [--out DIR] [--seconds S] [--quick]
Output: a table, <DIR>/bench_devices.json (DIR default benchmarks/results).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, synchronized_timer, write_json  # noqa: E402

from hpcflow.lattice.rng import ChainRNG, seeded_generator  # noqa: E402
from hpcflow.models.flows import FlowSpec, build_flow, reverse_kl  # noqa: E402
from hpcflow.samplers.hmc import HMC  # noqa: E402
from hpcflow.samplers.integrators import Omelyan  # noqa: E402
from hpcflow.theories.phi4 import Phi4Action  # noqa: E402

ACTION = Phi4Action(beta=0.6614, lam=0.5)
SPEC = FlowSpec("affine", 16, (8, 8), 3, equivariant=True, rescaling=True)


def flow_rate(device: torch.device, side: int, batch: int, seconds: float) -> float:
    """Reverse-KL training samples per second."""
    torch.manual_seed(0)
    flow = build_flow(SPEC).to(device)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    gen = seeded_generator(1, device)

    def step() -> None:
        z = flow.prior.sample(batch, (side, side), gen, torch.float32)
        loss, _ = reverse_kl(flow, ACTION, z)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return batch / synchronized_timer(device)(step, seconds)


def hmc_rates(device: torch.device, side: int, chains: int, seconds: float) -> tuple[float, float]:
    """``(site updates per second, fraction of a trajectory spent in the per-chain draws)``."""
    rng = ChainRNG(1, range(chains), device)
    hmc = HMC(ACTION, Omelyan(), tau=1.0, n_steps=10, rng=rng)
    state = [hmc.init(rng.normal((side, side)))]

    def trajectory() -> None:
        state[0], _ = hmc.step(state[0])

    timer = synchronized_timer(device)
    per_trajectory = timer(trajectory, seconds)
    draws = timer(lambda: (rng.normal((side, side)), rng.uniform()), seconds / 2)
    return chains * side * side / per_trajectory, draws / per_trajectory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum timing per point")
    parser.add_argument("--quick", action="store_true", help="one size each (a smoke run)")
    args = parser.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    flows, chains = [], []
    print(f"{'flow L':>6} {'batch':>6} {'device':>6} {'samples/s':>11} {'vs cpu':>7}")
    for side in (32,) if args.quick else (32, 64):
        for batch in (256,) if args.quick else (256, 1024):
            cpu = None
            for device in devices:
                rate = flow_rate(device, side, batch, args.seconds)
                cpu = rate if device.type == "cpu" else cpu
                flows.append(dict(L=side, batch=batch, device=device.type, samples_per_s=rate, vs_cpu=rate / cpu))
                print(f"{side:>6} {batch:>6} {device.type:>6} {rate:>11.0f} {rate / cpu:>7.2f}")
    print(f"\n{'hmc L':>6} {'chains':>6} {'device':>6} {'site upd/s':>11} {'vs cpu':>7} {'draws':>6}")
    for side in (64,) if args.quick else (32, 64):
        for b in (64,) if args.quick else (64, 256, 1024):
            cpu = None
            for device in devices:
                rate, draws = hmc_rates(device, side, b, args.seconds)
                cpu = rate if device.type == "cpu" else cpu
                chains.append(dict(L=side, chains=b, device=device.type, site_updates_per_s=rate, vs_cpu=rate / cpu,
                                   draw_fraction=draws))
                print(f"{side:>6} {b:>6} {device.type:>6} {rate:>11.3e} {rate / cpu:>7.2f} {draws:>6.2f}")
    out = write_json("bench_devices", {
        "machine": machine(), "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "flow": {"spec": SPEC.to_dict(), "unit": "reverse-KL training samples per second (float32)", "rows": flows},
        "hmc": {"unit": "site updates per second (Omelyan, 10 steps, float64)", "rows": chains},
    }, args.out)
    print(f"results: {out}")


if __name__ == "__main__":
    main()
