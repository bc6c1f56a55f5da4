"""Wilson and Wilson-clover throughput: hpcflow's torch reference (and the CuPy kernel on a GPU)
against a naive per-direction torch.roll implementation and a copy bandwidth, all measured in
the same run.

Flop counts are the conventional ones (Wilson hopping term 1320 per site, clover term 504 per
site), so GFLOP/s compare across codes; bytes are the minimum traffic per site without link
compression: Wilson 8 links x 18 reals + 8 neighbour spinors x 24 + 1 output x 24 = 360 reals
(2880 B in float64, as shared/PHYSICS.md), plus for the clover term the 12x12 complex matrix
as stored here (288 reals) and the local spinor (24): the roofline is bytes / copy bandwidth.

Usage: python benchmarks/bench_dslash.py [--sizes 8 12 16 24] [--device cpu|cuda] [--rhs 1] [--out DIR]
          [--no-naive] [--seconds S]
Output: a table, <DIR>/bench_dslash_<device>.json and .png (DIR default benchmarks/results).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, synchronized_timer, write_json  # noqa: E402

from hpcflow.dirac import GAMMA_4D, WilsonDirac  # noqa: E402
from hpcflow.theories.gauge import reunitarize  # noqa: E402
from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402

FLOPS = {"wilson": 1320, "clover": 1320 + 504}
REALS = {"wilson": 360, "clover": 360 + 288 + 24}


def naive_wilson(links: torch.Tensor, psi: torch.Tensor, mass: float) -> torch.Tensor:
    """Textbook version: roll the spinor and the links per direction, apply (1 -+ gamma) in full."""
    gammas = GAMMA_4D.to(device=psi.device, dtype=psi.dtype)
    eye = torch.eye(4, dtype=psi.dtype, device=psi.device)
    out = (4 + mass) * psi
    for mu in range(4):
        fwd = torch.roll(psi, -1, mu + 1)
        u_back = torch.roll(links[mu], 1, mu).conj().transpose(-1, -2)
        bwd = torch.roll(psi, 1, mu + 1)
        hop_f = torch.einsum("...ab,n...sb->n...sa", links[mu], fwd)
        hop_b = torch.einsum("...ab,n...sb->n...sa", u_back, bwd)
        out = out - 0.5 * torch.einsum("st,n...ta->n...sa", eye - gammas[mu], hop_f)
        out = out - 0.5 * torch.einsum("st,n...ta->n...sa", eye + gammas[mu], hop_b)
    return out


def copy_bandwidth(device: str, nbytes: int = 1024 * 2**20) -> float:
    """``dst.copy_(src)`` of 1 GiB on ``device``, read + write bytes per second."""
    src = torch.empty(nbytes // 8, dtype=torch.float64, device=device).normal_()
    dst = torch.empty_like(src)
    return 2 * nbytes / synchronized_timer(device)(lambda: dst.copy_(src), 0.5)


def random_fields(side: int, dtype: torch.dtype, rhs: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Random SU(3) links ``(4, L^4, 3, 3)`` and spinors ``(rhs, L^4, 4, 3)``, made on ``device``."""
    gen = torch.Generator(device=device).manual_seed(side)
    shape = (side,) * 4
    real = dtype.to_real()
    links = reunitarize(torch.complex(*(torch.randn((4, *shape, 3, 3), generator=gen, device=device, dtype=real)
                                        for _ in range(2))))
    psi = torch.complex(*(torch.randn((rhs, *shape, 4, 3), generator=gen, device=device, dtype=real) for _ in range(2)))
    return links, psi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 12, 16, 24])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rhs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON and PNG")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive torch.roll operator")
    parser.add_argument("--seconds", type=float, default=0.5, help="minimum timing per point")
    args = parser.parse_args()
    timed = synchronized_timer(args.device)
    bandwidth = copy_bandwidth(args.device)
    print(f"device {args.device}; copy bandwidth {bandwidth / 1e9:.1f} GB/s (read + write)")
    print(f"{'L':>3} {'dtype':>9} {'operator':>8} {'impl':>7} {'ms':>9} {'GFLOP/s':>8} {'GB/s':>7} {'of copy':>7} {'vs base':>8}")
    rows = []
    for side in args.sizes:
        for dtype in (torch.complex128, torch.complex64):
            links, psi = random_fields(side, dtype, args.rhs, args.device)
            volume = side**4 * args.rhs
            real_bytes = 8 if dtype == torch.complex128 else 4
            impls = {}
            if not args.no_naive:
                impls["naive"] = ("wilson", timed(lambda: naive_wilson(links, psi, -0.4), args.seconds))
            for op_name, csw in (("wilson", 0.0), ("clover", 1.0)):
                op = WilsonDirac(links, mass=-0.4, csw=csw, backend="torch")
                impls[f"torch-{op_name}"] = (op_name, timed(lambda: op(psi), args.seconds))
                if args.device == "cuda":
                    gpu = WilsonDirac(links, mass=-0.4, csw=csw, backend="cupy")
                    impls[f"cupy-{op_name}"] = (op_name, timed(lambda: gpu(psi), args.seconds))
            base = impls["naive"][1] if "naive" in impls else impls["torch-wilson"][1]
            for impl, (op_name, seconds) in impls.items():
                gflops = FLOPS[op_name] * volume / seconds / 1e9
                gbytes = REALS[op_name] * real_bytes * volume / seconds / 1e9
                row = dict(L=side, dtype=str(dtype).split(".")[1], operator=op_name, impl=impl.split("-")[0],
                           seconds=seconds, gflops=gflops, gbytes=gbytes, fraction_of_copy=gbytes * 1e9 / bandwidth,
                           speedup_vs_baseline=base / seconds)
                rows.append(row)
                print(f"{side:>3} {row['dtype']:>9} {op_name:>8} {row['impl']:>7} {seconds * 1e3:>9.2f} {gflops:>8.2f} "
                      f"{gbytes:>7.2f} {row['fraction_of_copy']:>7.3f} {row['speedup_vs_baseline']:>8.2f}")
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else None
    out = write_json(f"bench_dslash_{args.device}", {
        "machine": machine(), "device": args.device, "gpu": gpu, "rhs": args.rhs,
        "baseline": "naive" if not args.no_naive else "torch-wilson",
        "copy_bandwidth_bytes_per_s": bandwidth, "rows": rows}, args.out)
    _plot(rows, bandwidth, args.out / f"bench_dslash_{args.device}.png")
    print(f"results: {out}")


def _plot(rows: list[dict], bandwidth: float, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key in sorted({(r["impl"], r["operator"], r["dtype"]) for r in rows}):
        sel = [r for r in rows if (r["impl"], r["operator"], r["dtype"]) == key]
        ax.plot([r["L"] for r in sel], [r["gbytes"] for r in sel], "o-", label=" ".join(key))
    ax.axhline(bandwidth / 1e9, color="k", ls="--", label="copy bandwidth")
    ax.set_xlabel("L (lattice L^4)")
    ax.set_ylabel("effective GB/s")
    ax.set_yscale("log")
    ax.legend(fontsize="x-small")
    save_figure(fig, path)


if __name__ == "__main__":
    main()
