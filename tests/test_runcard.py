"""Run-card validation: every bad input gets its one-line error, exit code 2, nothing touched."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import cli_env, hpcflow_cmd
from hpcflow.workflow.model_io import read_flow
from hpcflow.workflow.runcard import RunCardError, load_runcard, validate_runcard


def test_valid_card_is_normalized(write_card) -> None:
    card = load_runcard(write_card())
    assert card.sampler["integrator"] == "leapfrog" and card.sampler["measure_every"] == 1
    assert card.output["checkpoint_every"] == 10 and card.analysis["t_min"] == 1
    assert card.action().beta == 0.5


def test_m2_lamA_form_is_converted() -> None:
    raw = {
        "theory": {"name": "phi4", "shape": [8, 8], "m2": -4.0, "lamA": 8.0},
        "sampler": {"kind": "hmc", "chains": 2, "trajectories": 10, "thermalization": 0, "tau": 1.0, "steps": 4, "seed": 1},
    }
    card = validate_runcard(raw)
    assert card.theory["beta"] == pytest.approx(0.5) and card.theory["lam"] == pytest.approx(0.5)
    assert "m2" not in card.theory and card.run_dir.name.startswith("phi4_8x8_b0.5_l0.5_hmc_s1")


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"chains": "'eight'"}, r"\[sampler\].chains = 'eight': expected an integer >= 1"),
        ({"chains": 2.5}, r"\[sampler\].chains = 2.5: expected an integer >= 1"),
        ({"shape": [1, 8]}, r"\[theory\].shape = \[1, 8\]: expected a list of integers >= 2"),
        ({"lam": 0.0, "beta": 0.6}, r"\[theory\].beta = 0.6: with lam = 0 .* \|beta\| < 1/d = 0.5"),
        ({"lam": -0.1}, r"\[theory\].lam = -0.1: expected a number >= 0"),
        ({"trajectories": -5}, r"\[sampler\].trajectories = -5: expected an integer >= 1"),
        ({"thermalization": -1}, r"\[sampler\].thermalization = -1: expected an integer >= 0"),
        ({"seed": -1}, r"\[sampler\].seed = -1"),
        ({"dir": "/proc/version/run"}, r"\[output\].dir = '/proc/version/run': cannot write there .*not a directory"),
    ],
)
def test_bad_values(write_card, overrides: dict, match: str) -> None:
    with pytest.raises(RunCardError, match=match):
        load_runcard(write_card(**overrides))


def test_bad_tau_and_unknown_keys_are_all_reported(write_card, tmp_path: Path) -> None:
    text = write_card().read_text().replace("tau = 1.0", "tau = 0.0").replace("[output]", "[output]\nfoo = 1")
    (tmp_path / "c.toml").write_text(text + "\n[samplr]\nx = 1\n")
    with pytest.raises(RunCardError) as info:
        load_runcard(tmp_path / "c.toml")
    problems = info.value.problems
    assert len(problems) == 3
    assert any("[sampler].tau = 0.0: expected a number > 0" in p for p in problems)
    assert any("[output].foo: unknown key" in p for p in problems)
    assert any("[samplr]: unknown section" in p for p in problems)


def test_missing_coupling_has_no_default(write_card, tmp_path: Path) -> None:
    text = write_card().read_text().replace("beta = 0.5\n", "")
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(RunCardError, match='missing required key "beta"'):
        load_runcard(tmp_path / "c.toml")


def test_measure_every_must_divide_trajectories(write_card) -> None:
    path = write_card(extra="")
    path.write_text(path.read_text().replace("seed = 7", "seed = 7\nmeasure_every = 3"))
    with pytest.raises(RunCardError, match="multiple of measure_every = 3"):
        load_runcard(path)


def test_not_toml(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[theory\n")
    with pytest.raises(RunCardError, match="not valid TOML"):
        load_runcard(tmp_path / "c.toml")


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_cli_errors_exit_2_and_touch_nothing(write_card, tmp_path: Path) -> None:
    good = write_card(trajectories=20, thermalization=0)
    done = subprocess.run(hpcflow_cmd("--no-progress", "sample", str(good)), env=cli_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    before = _tree(tmp_path / "run")
    other = write_card("other.toml", beta=0.6)  # same output dir, different physics
    bad = write_card("bad.toml", chains=0)
    for card, match in ((other, "holds a run created by a different card"), (bad, "[sampler].chains = 0")):
        res = subprocess.run(hpcflow_cmd("sample", str(card)), env=cli_env(), capture_output=True, text=True)
        assert res.returncode == 2
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hpcflow: error: ") and match in lines[0], res.stderr
    assert _tree(tmp_path / "run") == before


@pytest.mark.parametrize("kernel", [1, 4])
def test_conditioner_kernel_must_be_odd_and_at_least_3(write_card, kernel: int) -> None:
    model = f'[model]\ncoupling = "affine"\nlayers = 2\nhidden = [4]\nkernel = {kernel}\n'
    with pytest.raises(RunCardError, match=rf"\[model\].kernel = {kernel}: must be odd and at least 3"):
        load_runcard(write_card(extra=model))


def test_an_unknown_kind_is_one_line_and_the_real_typo_is_still_found(write_card, tmp_path: Path) -> None:
    """kind = "HMC": one line for the kind (with the suggestion), no false "unknown key" lines for
    the keys of hmc, and the misspelt integrator of the same card reported beside it."""
    text = write_card().read_text().replace('kind = "hmc"', 'kind = "HMC"').replace("seed = 7", 'seed = 7\nintegrator = "omelyn"')
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(RunCardError) as info:
        load_runcard(tmp_path / "c.toml")
    assert info.value.problems == [
        "[sampler].kind = 'HMC': expected 'hmc', 'fhmc' or 'nmcmc' (did you mean 'hmc'?)",
        "[sampler].integrator = 'omelyn': expected 'leapfrog' or 'omelyan' (did you mean 'omelyan'?)",
    ]


@pytest.mark.parametrize(
    "old, new, match",
    [
        ('kind = "hmc"', 'kind = ["hmc"]', r"\[sampler\].kind = \['hmc'\]: expected 'hmc', 'fhmc' or 'nmcmc'$"),
        ('name = "phi4"', "name = 4", r"\[theory\].name = 4: expected 'phi4', 'u1', 'su2' or 'su3'"),
        ("tau = 1.0", "tau = 1" + "0" * 400, r"\[sampler\].tau = 10{400}: expected a number > 0"),
        ("chains = 4", "chains = 1" + "0" * 30, r"\[sampler\].chains = 10{30}: expected an integer >= 1"),
        ("seed = 7", "seed = 7\nmeasure_every = 0", r"\[sampler\].measure_every = 0: expected an integer >= 1$"),
        ("beta = 0.5", "beta = nan", r"\[theory\].beta = nan: expected a number"),
    ],
)
def test_values_of_the_wrong_type_give_one_line_not_a_traceback(write_card, tmp_path: Path, old: str, new: str,
                                                                  match: str) -> None:
    text = write_card().read_text()
    assert old in text
    (tmp_path / "c.toml").write_text(text.replace(old, new, 1))
    with pytest.raises(RunCardError) as info:
        load_runcard(tmp_path / "c.toml")
    assert len(info.value.problems) == 1 and re.search(match, info.value.problems[0]), info.value.problems


REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", sorted((REPO / "jobs" / "cards").rglob("*.toml")), ids=lambda p: p.name)
def test_every_committed_card_validates_and_its_pretrained_flow_loads(path: Path) -> None:
    """The cards users start from are valid, and a [training].init they name is a flow of their [model]."""
    card = load_runcard(path)
    init = card.data.get("training", {}).get("init")
    if init is not None:
        flow, meta = read_flow(REPO / init, card, "[training].init")
        assert meta["steps"] > 0 and sum(p.numel() for p in flow.parameters()) > 0
