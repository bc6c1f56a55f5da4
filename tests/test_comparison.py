"""The workflow's comparison: value(error) notation, z-scores, and the flags that must fire on a
poorly trained flow and stay quiet on a good one; the [workflow] and derived-sampler card rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import tiny_flow_card
from hpcflow.analysis.format import value_error
from hpcflow.workflow.comparison import flags
from hpcflow.workflow.derived import derived_cards
from hpcflow.workflow.runcard import RunCardError, load_runcard


def _row(sampler: str, m: tuple[float, float], acceptance: float, tau: float, measurements: int = 500,
         rejections: int | None = None, exp_dh: tuple[float, float] | None = None) -> dict:
    return {"sampler": sampler, "chains": 4, "measurements": measurements, "updates": measurements,
            "acceptance": acceptance, "longest_rejection_run": rejections,
            "exp_minus_dH": None if exp_dh is None else {"value": exp_dh[0], "error": exp_dh[1]},
            "tau_int": {"abs_magnetization": [tau, 0.1 * tau]},
            "observables": {"abs_magnetization": list(m), "energy": [0.361, 0.002]}}


def test_value_error_notation() -> None:
    assert [value_error(*p) for p in ((0.24163, 0.00372), (21.55, 0.65), (0.5, 0.0999), (12.34, 1.4))] == [
        "0.2416(37)", "21.55(65)", "0.50(10)", "12.3(1.4)"]


def test_a_poorly_trained_flow_does_not_pass_silently() -> None:
    """The issue's example: acceptance 0.08, a rejection run of 161 of 500, |M| 3-4 sigma off HMC."""
    hmc = _row("hmc", (0.2308, 0.0082), 0.9, 3.0, exp_dh=(1.001, 0.004))
    bad = _row("nmcmc", (0.275, 0.0091), 0.08, 30.0, rejections=161)
    found = flags([bad, hmc])
    assert any("NMCMC and HMC disagree on <|M|>/V: z = +3.6" in f for f in found), found
    assert any("NMCMC: acceptance 0.080 is below 0.1" in f for f in found)
    assert any("a run of 161 rejections in a chain of 500 updates" in f for f in found)
    assert any("each chain's 500 measurements of <|M|>/V are only 17 tau_int (< 50)" in f for f in found)


def test_good_samplers_raise_no_flag() -> None:
    hmc = _row("hmc", (0.2308, 0.0082), 0.9, 3.0, exp_dh=(1.001, 0.004))
    good = _row("nmcmc", (0.2416, 0.0037), 0.85, 1.5, rejections=6)
    fhmc = _row("fhmc", (0.228, 0.006), 0.95, 9.0, exp_dh=(0.998, 0.003))
    assert flags([good, fhmc, hmc]) == []
    broken = _row("fhmc", (0.228, 0.006), 0.95, 2.0, exp_dh=(0.9, 0.01))
    assert flags([broken, hmc]) == ["FHMC: <exp(-dH)> = 0.900(10) is not 1: the integrator is not reversible and area "
                                    "preserving, or the run is not thermalized"]


@pytest.mark.parametrize("extra, match", [
    ('\n[workflow]\nsamplers = ["hmc"]\n', r"must include the card's own sampler 'nmcmc'"),
    ('\n[workflow]\nsamplers = ["nmcmc", "fhmc"]\n', r"flow HMC needs a smooth map and the leaky-ReLU conditioners have kinks"),
    ('\n[fhmc]\nsteps = 4\n', r"\[fhmc\]: settings of a sampler the workflow does not run; add 'fhmc'"),
    ('\n[nmcmc]\nchunk = 4\n', r"\[nmcmc\]: the card's own sampler is 'nmcmc'"),
    ('\n[workflow]\nsamplers = ["nmcmc", "hmcc"]\n', r"\[workflow\]\.samplers = \['nmcmc', 'hmcc'\]: expected 'hmc', 'nmcmc' or 'fhmc', or a list"),
])
def test_workflow_cards_are_validated(tmp_path: Path, extra: str, match: str) -> None:
    card = tmp_path / "card.toml"
    card.write_text(tiny_flow_card(tmp_path / "run", extra=extra))
    with pytest.raises(RunCardError, match=match):
        load_runcard(card)


def test_the_samplers_beside_a_card_get_their_own_runs_and_seeds(tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    text = tiny_flow_card(tmp_path / "run", extra='\n[fhmc]\nsteps = 7\n\n[workflow]\nsamplers = ["nmcmc", "fhmc", "hmc"]\n')
    card.write_text(text.replace('kernel = 3', 'kernel = 3\nactivation = "tanh"'))
    beside = derived_cards(load_runcard(card))
    assert list(beside) == ["fhmc", "hmc"]
    fhmc, hmc = beside["fhmc"], beside["hmc"]
    assert fhmc.sampler["kind"] == "fhmc" and fhmc.sampler["steps"] == 7 and fhmc.sampler["trajectories"] == 200
    assert fhmc.sampler["model"] == str(tmp_path / "run" / "model" / "flow.pt") and fhmc.data["model"]["activation"] == "tanh"
    assert fhmc.run_dir == tmp_path / "run" / "fhmc" and hmc.run_dir == tmp_path / "run" / "baseline_hmc"
    assert {fhmc.sampler["seed"], hmc.sampler["seed"]} == {4, 3}  # the card's seed 2, plus 2 and 1
    assert "model" not in hmc.data
