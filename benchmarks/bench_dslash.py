"""Wilson and Wilson-clover throughput: the compiled CPU kernel, hpcflow's torch reference (and
the CuPy kernel on a GPU) against a naive per-direction torch.roll implementation and a copy
bandwidth, all measured in the same run, at each thread count.

Flop counts are the conventional ones: per site and direction (forward or backward) a spin
projection (H N complex adds, H = S/2), H colour mat-vecs (N^2 complex multiplies, N(N-1) adds)
and the reconstruction (S N complex adds, the first of them free): 1320 per site for 4D SU(3),
44 for 2D U(1); the clover term adds 504 (4D). Bytes are the minimum traffic per site without link
compression: 2d links x 2 N^2 reals + 2d neighbour spinors x 2 S N + 1 output x 2 S N (4D SU(3):
360 reals, 2880 B in float64, as shared/PHYSICS.md; 2D U(1): 28 reals), plus for the clover term
the local spinor and the clover matrix as the implementation stores it (torch: the 12x12 matrix,
288 reals; compiled: the two 6x6 chirality blocks, 144). The roofline is bytes / copy bandwidth.
Rows with operator ``hops`` time the 2d single parallel transports of a spinor (what the PTC
layers and the multigrid setup apply): per site and hop N^2 complex multiplies and N(N-1) adds per
spin, a link and a spinor read and a spinor written.

Usage: python benchmarks/bench_dslash.py [--sizes 8 12 16 24] [--sizes-2d 32 64 128 256]
          [--threads 1 2] [--device cpu|cuda] [--rhs 1] [--out DIR] [--no-naive] [--seconds S]
Output: a table, <DIR>/bench_dslash_<device>.json and .png (DIR default benchmarks/results).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, copy_bandwidth, machine, synchronized_timer, write_json  # noqa: E402

from hpcflow.dirac import GAMMA_4D, WilsonDirac  # noqa: E402
from hpcflow.kernels import compiled, why_not_compiled  # noqa: E402
from hpcflow.theories.gauge import reunitarize, u1_links  # noqa: E402
from hpcflow.analysis.report import pyplot, save_figure  # noqa: E402

CLOVER_FLOPS = 504
CLOVER_REALS = {"torch": 288, "compiled": 144, "cupy": 288}


def wilson_cost(dim: int, colours: int) -> tuple[int, int]:
    """``(flops, reals)`` per site of the Wilson hopping term by the counting rule above."""
    spin, n = (4 if dim == 4 else 2), colours
    half = spin // 2
    per_hop = 2 * half * n + half * (6 * n * n + 2 * n * (n - 1)) + 2 * spin * n
    reals = 2 * dim * 2 * n * n + 2 * dim * 2 * spin * n + 2 * spin * n
    return 2 * dim * per_hop - 2 * spin * n, reals


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


def random_fields(shape: tuple[int, ...], dtype: torch.dtype, rhs: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Random links (SU(3) in 4D, U(1) in 2D) ``(d, *L, N, N)`` and spinors ``(rhs, *L, S, N)``."""
    gen = torch.Generator(device=device).manual_seed(shape[0])
    real = dtype.to_real()
    dim = len(shape)

    def normal(*size: int) -> torch.Tensor:
        return torch.randn(size, generator=gen, device=device, dtype=real)

    if dim == 4:
        links = reunitarize(torch.complex(normal(4, *shape, 3, 3), normal(4, *shape, 3, 3)))
    else:
        links = u1_links(normal(1, 2, *shape).double())[0].to(dtype)
    spin, n = (4, 3) if dim == 4 else (2, 1)
    psi = torch.complex(normal(rhs, *shape, spin, n), normal(rhs, *shape, spin, n))
    return links, psi


def _operators(links: torch.Tensor, psi: torch.Tensor, device: str, naive: bool):
    """``{impl-op: (callable, flops, reals)}`` for the implementations that run here."""
    dim, n = links.shape[0], links.shape[-1]
    flops, reals = wilson_cost(dim, n)
    spinor = 2 * psi.shape[-1] * psi.shape[-2]
    out = {}
    hop_flops = 2 * dim * psi.shape[-2] * (6 * n * n + 2 * n * (n - 1))
    hop_reals = 2 * dim * (2 * n * n + 4 * spinor // 2)
    if naive and dim == 4:
        out["naive-wilson"] = (lambda: naive_wilson(links, psi, -0.4), flops, reals)
    backends = ["torch"] + (["cupy"] if device == "cuda" else []) + (["compiled"] if device == "cpu" and compiled() else [])
    for backend in backends:
        for op_name, csw in (("wilson", 0.0), ("clover", 1.0))[: 2 if dim == 4 else 1]:
            op = WilsonDirac(links, mass=-0.4, csw=csw, backend=backend)
            extra = (CLOVER_FLOPS, CLOVER_REALS[backend] + spinor) if csw else (0, 0)
            out[f"{backend}-{op_name}"] = ((lambda op=op: op(psi)), flops + extra[0], reals + extra[1])
        if backend != "cupy":  # the hops of the last operator's transporter
            steps = [s * (mu + 1) for mu in range(dim) for s in (1, -1)]
            out[f"{backend}-hops"] = ((lambda t=op.transporter: [t.hop(psi, step) for step in steps]), hop_flops, hop_reals)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[8, 12, 16, 24], help="4D SU(3) lattices L^4")
    parser.add_argument("--sizes-2d", type=int, nargs="*", default=[32, 64, 128, 256], help="2D U(1) lattices L^2")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rhs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON and PNG")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive torch.roll operator")
    parser.add_argument("--seconds", type=float, default=0.5, help="minimum timing per point")
    args = parser.parse_args()
    timed = synchronized_timer(args.device)
    if args.device == "cpu" and not compiled():
        print(f"compiled kernel not measured: {why_not_compiled()}")
    lattices = [(s,) * 4 for s in args.sizes] + [(s,) * 2 for s in args.sizes_2d]
    rows, bandwidths = [], {}
    for threads in args.threads if args.device == "cpu" else [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        bandwidth = bandwidths[threads] = copy_bandwidth(device=args.device)
        print(f"device {args.device}, {threads} threads; copy bandwidth {bandwidth / 1e9:.1f} GB/s (read + write)")
        print(f"{'lattice':>9} {'dtype':>9} {'operator':>8} {'impl':>8} {'ms':>9} {'GFLOP/s':>8} {'GB/s':>7} "
              f"{'of copy':>7} {'vs torch':>8}")
        for shape in lattices:
            for dtype in (torch.complex128, torch.complex64):
                links, psi = random_fields(shape, dtype, args.rhs, args.device)
                volume = torch.Size(shape).numel() * args.rhs
                real_bytes = 8 if dtype == torch.complex128 else 4
                timings = {name: (timed(fn, args.seconds), flops, reals)
                           for name, (fn, flops, reals) in _operators(links, psi, args.device, not args.no_naive).items()}
                for name, (seconds, flops, reals) in timings.items():
                    impl, op_name = name.split("-")
                    gbytes = reals * real_bytes * volume / seconds / 1e9
                    row = dict(lattice="x".join(map(str, shape)), dim=len(shape), L=shape[0], threads=threads,
                               dtype=str(dtype).split(".")[1], operator=op_name, impl=impl, seconds=seconds,
                               gflops=flops * volume / seconds / 1e9, gbytes=gbytes, fraction_of_copy=gbytes * 1e9 / bandwidth,
                               speedup_vs_torch=timings[f"torch-{op_name}"][0] / seconds)
                    rows.append(row)
                    print(f"{row['lattice']:>9} {row['dtype']:>9} {op_name:>8} {impl:>8} {seconds * 1e3:>9.3f} "
                          f"{row['gflops']:>8.2f} {gbytes:>7.2f} {row['fraction_of_copy']:>7.3f} {row['speedup_vs_torch']:>8.2f}")
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else None
    out = write_json(f"bench_dslash_{args.device}", {
        "machine": machine(), "device": args.device, "gpu": gpu, "rhs": args.rhs,
        "compiled_kernel": bool(compiled()) if args.device == "cpu" else None,
        "copy_bandwidth_bytes_per_s": bandwidths, "rows": rows}, args.out)
    _plot(rows, bandwidths, args.out / f"bench_dslash_{args.device}.png")
    print(f"results: {out}")


def _plot(rows: list[dict], bandwidths: dict[int, float], path: Path) -> None:
    plt = pyplot()
    threads = max(bandwidths)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, dim in zip(axes, (4, 2)):
        sel_dim = [r for r in rows if r["dim"] == dim and r["threads"] == threads]
        for key in sorted({(r["impl"], r["operator"], r["dtype"]) for r in sel_dim}):
            sel = [r for r in sel_dim if (r["impl"], r["operator"], r["dtype"]) == key]
            ax.plot([r["L"] for r in sel], [r["gbytes"] for r in sel], "o-", label=" ".join(key))
        ax.axhline(bandwidths[threads] / 1e9, color="k", ls="--", label="copy bandwidth")
        ax.set_xlabel(f"L (lattice L^{dim})")
        ax.set_ylabel("effective GB/s")
        ax.set_yscale("log")
        ax.set_title(f"{'4D SU(3)' if dim == 4 else '2D U(1)'}, {threads} threads")
        ax.legend(fontsize="x-small")
    save_figure(fig, path)


if __name__ == "__main__":
    main()
