"""Every figure a run, a training, a workflow or a solve writes has a title naming the lattice
and couplings (and the sampler), labelled axes, updates (not measurement indices) on the axes of
Monte Carlo time and integer ticks where the quantity is an integer."""

from __future__ import annotations

from pathlib import Path

import pytest

import hpcflow.analysis.report as report
import hpcflow.workflow.comparison as comparison
from conftest import tiny_flow_card
from hpcflow.workflow.analyze import analyze
from hpcflow.workflow.runcard import load_runcard
from hpcflow.workflow.sample import sample
from hpcflow.workflow.train import train


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Figures by file name, captured as they are saved."""
    captured: dict[str, object] = {}
    original = report.save_figure

    def keep(fig: object, path: Path) -> None:
        captured[Path(path).name] = fig
        fig.canvas.draw()  # tick labels exist only after a draw
        texts = {"title": _titles(fig), "axes": [(ax.get_xlabel(), ax.get_ylabel(), [t.get_text() for t in ax.get_xticklabels()])
                                                 for ax in fig.axes if ax.get_visible() and ax.has_data()]}
        captured[Path(path).name] = texts
        original(fig, path)

    monkeypatch.setattr(report, "save_figure", keep)
    monkeypatch.setattr(comparison, "save_figure", keep)
    return captured


def _titles(fig: object) -> str:
    sup = fig._suptitle.get_text() if fig._suptitle is not None else ""
    return " ".join([sup, *(ax.get_title() for ax in fig.axes)])


def test_every_figure_is_titled_and_labelled(write_card, tmp_path: Path, figures: dict) -> None:
    hmc = load_runcard(write_card(shape=[8, 8], trajectories=60, thermalization=10, chains=2))
    sample(hmc, progress=False)
    analyze(hmc.run_dir)
    card = tmp_path / "flow.toml"
    card.write_text(tiny_flow_card(tmp_path / "flow", updates=100))
    flow = load_runcard(card)
    train(flow, progress=False)
    sample(flow, progress=False)
    analyze(flow.run_dir)
    comparison.write_report(flow, [(flow.run_dir, flow.run_dir), (hmc.run_dir, None)], tmp_path)
    expected = {"history.png", "autocorrelation.png", "correlator.png", "log_weights.png", "training.png", "comparison.png"}
    assert expected <= set(figures)
    for name, fig in figures.items():
        assert "phi4" in fig["title"] and ("8x8" in fig["title"] or "6x6" in fig["title"]), (name, fig["title"])
        assert "beta = 0.5" in fig["title"], (name, fig["title"])
        for xlabel, ylabel, ticks in fig["axes"]:
            assert ylabel, (name, xlabel)
            if name != "comparison.png" and any(ticks):  # comparison: the samplers as categories; shared x: below
                assert xlabel, name
            if xlabel.startswith(("update", "lag t", "t (time slices)", "training step")):
                assert all("." not in t for t in ticks if t), (name, xlabel, ticks)  # integer ticks
    assert "nmcmc" in figures["history.png"]["title"] or "hmc" in figures["history.png"]["title"]
    assert figures["history.png"]["axes"][-1][0] == "update (trajectory for HMC)"
    assert figures["autocorrelation.png"]["axes"][0][0] == "lag t (updates)"
