"""Plots of a run's analysis (matplotlib, Agg backend; imported only when a report is made)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpcflow.analysis.correlators import CorrelatorAnalysis
from hpcflow.analysis.gamma import GammaResult

__all__ = [
    "log_plot",
    "plot_autocorrelation",
    "plot_correlator",
    "plot_histories",
    "plot_log_weights",
    "plot_training",
    "pyplot",
    "save_figure",
]


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


def log_plot(ax: object, x: np.ndarray, y: np.ndarray, **style: object) -> None:
    """``y`` against ``x`` for a log y axis: points at or below zero are not dropped but drawn as
    open triangles at a floor a decade below the smallest positive value (their |y| is unknown
    to a log axis), and the legend says how many there are."""
    positive = y > 0
    floor = y[positive].min() / 10 if positive.any() else 1e-6
    label = style.pop("label", None)
    bad = int((~positive).sum())
    (line,) = ax.plot(x, np.where(positive, y, np.nan), label=f"{label} ({bad} points <= 0 at the floor)" if bad and label else label, **style)
    if bad:
        ax.plot(x[~positive], np.full(bad, floor), "v", mfc="none", color=line.get_color())


def _integer_ticks(ax: object) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_histories(path: Path, series: dict[str, np.ndarray], title: str, first_update: int, every: int,
                   max_chains: int = 4) -> None:
    """Monte Carlo histories against the update (measurement ``i`` is update ``first_update + i every``),
    one panel per observable, up to ``max_chains`` chains each."""
    plt = pyplot()
    fig, axes = plt.subplots(len(series), 1, figsize=(8, 2.2 * len(series) + 0.4), sharex=True, squeeze=False)
    for ax, (name, data) in zip(axes[:, 0], series.items()):
        updates = first_update + every * np.arange(data.shape[1])
        for c in range(min(max_chains, data.shape[0])):
            ax.plot(updates, data[c], lw=0.6, label=f"chain {c}")
        ax.set_ylabel(name)
    axes[0, 0].legend(loc="upper right", fontsize="x-small", ncol=max_chains)
    axes[-1, 0].set_xlabel("update (trajectory for HMC)")
    _integer_ticks(axes[-1, 0])
    fig.suptitle(title)
    save_figure(fig, path)


def plot_autocorrelation(path: Path, results: dict[str, GammaResult], title: str, every: int) -> None:
    """Normalized autocorrelation functions against the lag in updates, the automatic window ``W``
    marked; tau_int in updates in the legend."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.3))
    for name, r in results.items():
        t_max = max(4 * r.window, 10)
        rho = r.rho[: t_max + 1]
        (line,) = ax.plot(every * np.arange(rho.size), rho,
                          label=f"{name}: tau_int = {every * r.tau_int:.2f}({every * r.tau_int_error:.2f}) updates")
        ax.axvline(every * r.window, color=line.get_color(), ls=":", lw=1)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xlabel("lag t (updates)")
    ax.set_ylabel("rho(t)")
    _integer_ticks(ax)
    ax.set_title(f"{title}\nautocorrelation (dotted: window W)")
    ax.legend(fontsize="small")
    save_figure(fig, path)


def plot_correlator(path: Path, corr: CorrelatorAnalysis, title: str) -> None:
    """``G(t)`` with the cosh fit (log scale; points at or below zero drawn at a floor, open) and
    the effective mass against the fitted mass."""
    plt = pyplot()
    l0 = len(corr.g)
    t = np.arange(l0)
    g = np.array([r.value for r in corr.g])
    dg = np.array([r.error for r in corr.g])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.3))
    positive = g > 0
    ax1.errorbar(t[positive], g[positive], dg[positive], fmt="o", ms=3, capsize=2, label="G(t)")
    if not positive.all():
        floor = g[positive].min() / 10 if positive.any() else 1e-6
        ax1.plot(t[~positive], np.full(int((~positive).sum()), floor), "v", mfc="none", color="C0",
                 label=f"G(t) <= 0 ({int((~positive).sum())} points, at the floor)")
    tt = np.linspace(0, l0 - 1, 200)
    m = corr.mass.value
    ax1.plot(tt, corr.amplitude * np.cosh(m * (tt - l0 / 2)),
             label=f"cosh fit t = {corr.t_min}..{corr.t_max}, xi = {corr.xi.value:.3f}({corr.xi.error:.3f})")
    ax1.set_yscale("log")
    ax1.set_xlabel("t (time slices)")
    ax1.set_ylabel("G(t)")
    ax1.set_title("zero-momentum correlator")
    ax1.legend(fontsize="small")
    te = [i for i, r in enumerate(corr.m_eff) if r is not None]
    ax2.errorbar(te, [corr.m_eff[i].value for i in te], [corr.m_eff[i].error for i in te], fmt="o", ms=3, capsize=2,
                 label="m_eff(t)")
    ax2.axhspan(m - corr.mass.error, m + corr.mass.error, alpha=0.3, color="C1", label=f"fit m = {m:.4f}({corr.mass.error:.4f})")
    ax2.set_xlabel("t (time slices)")
    ax2.set_ylabel("m_eff(t)")
    ax2.set_title("effective mass")
    ax2.legend(fontsize="small")
    for ax in (ax1, ax2):
        _integer_ticks(ax)
    fig.suptitle(title)
    save_figure(fig, path)


def plot_log_weights(path: Path, log_w: np.ndarray, title: str) -> None:
    """Histogram of the NMCMC proposals' log weights (shifted by their maximum): a narrow peak
    near 0 is a good flow; a long tail to the left is what stalls the chain."""
    plt = pyplot()
    finite = log_w[np.isfinite(log_w)]
    fig, ax = plt.subplots(figsize=(7, 4.3))
    ax.hist(finite - finite.max() if finite.size else finite, bins=80, color="C0")
    ax.set_yscale("log")
    ax.set_xlabel("log w - max log w (proposals)")
    ax.set_ylabel("proposals")
    bad = log_w.size - finite.size
    ax.set_title(f"{title}\nlog weights of {log_w.size} proposals" + (f" ({bad} not finite, left out)" if bad else ""))
    save_figure(fig, path)


def plot_training(path: Path, entries: list[dict], title: str) -> None:
    """Training curves: loss, ESS and the estimated acceptance against the step (bottom axis) and
    Phi_train = configurations drawn (top axis); ESS and acceptance on a log axis."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    steps = np.array([e["step"] for e in entries])
    phi_train = np.array([e["phi_train"] for e in entries])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(steps, [e["loss"] for e in entries], lw=1)
    ax1.set_ylabel("loss = <log q + S> (reverse KL - log Z)")
    ax1.set_title("loss")
    ax2.set_title("ESS and acceptance")
    for key, label in (("ess", "ESS (normalized)"), ("acceptance", "acceptance (estimated on the batch)")):
        log_plot(ax2, steps, np.array([e[key] for e in entries]), label=label, lw=1)
    ax2.set_yscale("log")
    ax2.set_ylabel("ESS, acceptance")
    ax2.legend(fontsize="small")
    for ax in (ax1, ax2):
        ax.set_xlabel("training step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        top = ax.secondary_xaxis("top", functions=(lambda s: s * phi_train[-1] / steps[-1],
                                                   lambda p: p * steps[-1] / phi_train[-1]))
        top.set_xlabel("Phi_train (configurations drawn)")
    fig.suptitle(title)
    save_figure(fig, path)
