"""Plots of a run's analysis (matplotlib, Agg backend; imported only when a report is made)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpcflow.analysis.correlators import CorrelatorAnalysis
from hpcflow.analysis.gamma import GammaResult

__all__ = ["plot_autocorrelation", "plot_correlator", "plot_histories", "pyplot", "save_figure"]


def pyplot():  # noqa: ANN201 - the matplotlib.pyplot module
    """matplotlib.pyplot on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: object, path: Path) -> None:
    """Lay out, write as PNG and close a figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


def plot_histories(path: Path, series: dict[str, np.ndarray], max_chains: int = 4) -> None:
    """Monte Carlo histories, one panel per observable, up to ``max_chains`` chains each."""
    plt = pyplot()
    fig, axes = plt.subplots(len(series), 1, figsize=(8, 2.2 * len(series)), sharex=True, squeeze=False)
    for ax, (name, data) in zip(axes[:, 0], series.items()):
        for c in range(min(max_chains, data.shape[0])):
            ax.plot(data[c], lw=0.6, label=f"chain {c}")
        ax.set_ylabel(name)
    axes[0, 0].legend(loc="upper right", fontsize="x-small", ncol=max_chains)
    axes[-1, 0].set_xlabel("measurement")
    save_figure(fig, path)


def plot_autocorrelation(path: Path, results: dict[str, GammaResult]) -> None:
    """Normalized autocorrelation functions with the automatic window ``W`` marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, r in results.items():
        t_max = max(4 * r.window, 10)
        rho = r.rho[: t_max + 1]
        (line,) = ax.plot(np.arange(rho.size), rho, label=f"{name}: tau_int = {r.tau_int:.2f}({r.tau_int_error:.2f})")
        ax.axvline(r.window, color=line.get_color(), ls=":", lw=1)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xlabel("t (measurements)")
    ax.set_ylabel("rho(t)")
    ax.set_title("autocorrelation (dotted: window W)")
    ax.legend(fontsize="small")
    save_figure(fig, path)


def plot_correlator(path: Path, corr: CorrelatorAnalysis) -> None:
    """``G(t)`` with the cosh fit (log scale) and the effective mass against the fitted mass."""
    plt = pyplot()
    l0 = len(corr.g)
    t = np.arange(l0)
    g = np.array([r.value for r in corr.g])
    dg = np.array([r.error for r in corr.g])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.errorbar(t, g, dg, fmt="o", ms=3, capsize=2, label="G(t)")
    tt = np.linspace(0, l0 - 1, 200)
    m = corr.mass.value
    ax1.plot(tt, corr.amplitude * np.cosh(m * (tt - l0 / 2)), label=f"cosh fit, xi = {corr.xi.value:.3f}({corr.xi.error:.3f})")
    ax1.set_yscale("log")
    ax1.set_xlabel("t")
    ax1.set_title("zero-momentum correlator")
    ax1.legend(fontsize="small")
    te = [i for i, r in enumerate(corr.m_eff) if r is not None]
    ax2.errorbar(te, [corr.m_eff[i].value for i in te], [corr.m_eff[i].error for i in te], fmt="o", ms=3, capsize=2, label="m_eff(t)")
    ax2.axhspan(m - corr.mass.error, m + corr.mass.error, alpha=0.3, color="C1", label=f"fit m = {m:.4f}({corr.mass.error:.4f})")
    ax2.set_xlabel("t")
    ax2.set_title("effective mass")
    ax2.legend(fontsize="small")
    save_figure(fig, path)
