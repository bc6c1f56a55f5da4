"""The hpcflow command end to end: run and report, kill -9 and SIGTERM then resume."""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import cli_env, hpcflow_cmd, tiny_flow_card, wait_for_checkpoint
from hpcflow.workflow.rundir import lock_run_dir

pytestmark = pytest.mark.slow


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(hpcflow_cmd("--no-progress", *args), env=cli_env(), capture_output=True, text=True, timeout=600)


def _h5_content(path: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    with h5py.File(path) as f:
        out.update({f"@{k}": f.attrs[k] for k in f.attrs})
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def _assert_same_file(a: Path, b: Path) -> None:
    ca, cb = _h5_content(a), _h5_content(b)
    assert ca.keys() == cb.keys()
    for key in ca:
        va, vb = ca[key], cb[key]
        if isinstance(va, np.ndarray):
            np.testing.assert_array_equal(va, vb, err_msg=key)
        else:
            assert va == vb, key


def test_help_lists_the_commands() -> None:
    res = _run("--help")
    assert res.returncode == 0
    for command in ("sample", "analyze", "run"):
        assert command in res.stdout


def test_run_writes_store_and_report(write_card, tmp_path: Path) -> None:
    card = write_card(shape=[8, 8], beta=0.576, trajectories=200, thermalization=50, checkpoint_every=50)
    res = _run("run", str(card))
    assert res.returncode == 0, res.stderr
    run = tmp_path / "run"
    assert res.stdout.strip().endswith(f"report: {run / 'workflow' / 'report.md'}")  # the workflow's comparison
    assert "| hmc | 4 x 200 |" in (run / "workflow" / "report.md").read_text()
    summary = json.loads((run / "report" / "analysis.json").read_text())
    assert summary["measurements"] == 200 and summary["chains"] == 4 and summary["complete"]
    for name in ("abs_magnetization", "susceptibility", "energy"):
        r = summary["observables"][name]
        assert np.isfinite(r["value"]) and r["error"] > 0 and r["tau_int"] > 0
        assert len(summary["per_chain"][name]) == 4
    assert summary["correlator"]["fit"]["xi"]["value"] > 0
    # one definition of the cost, in the run's analysis and in the workflow's comparison alike
    timing = json.loads((run / "timing.json").read_text())
    cost = summary["cost_per_independent_config"]["abs_magnetization"]
    tau = summary["observables"]["abs_magnetization"]["tau_int"]
    assert cost == pytest.approx(timing["seconds"] / timing["updates"] * 2 * tau / 4, rel=1e-12)
    row = json.loads((run / "workflow" / "comparison.json").read_text())["rows"][0]
    assert row["cost_observable"] == "magnetization"  # the cost of M, as the issue asks
    assert row["seconds_per_independent_config"] == summary["cost_per_independent_config"]["magnetization"]
    assert "/ chains" in summary["cost_definition"] and "/ chains" in (run / "workflow" / "report.md").read_text()
    for png in ("history.png", "autocorrelation.png", "correlator.png"):
        assert (run / "report" / png).stat().st_size > 10_000
    _assert_pyerrors_export_matches(run / "report", summary)
    with h5py.File(run / "configs.h5") as f:
        assert f["phi"].shape == (4, 200, 8, 8)
        assert f.attrs["complete"] and 0.0 < f.attrs["acceptance"] <= 1.0
        assert "[sampler]" in f.attrs["run_card"] and f.attrs["seed"] == 7
        assert json.loads(f.attrs["provenance"])["torch"]
    again = _run("sample", str(card))  # a finished run is not redone
    assert again.returncode == 0 and (run / "configs.h5").stat().st_size > 0
    # another fit range: a new analysis beside the old one, which differs in the fit and nothing else
    before = (run / "report" / "analysis.json").read_text()
    res = _run("analyze", str(run), "--t-min", "2")
    assert res.returncode == 0, res.stderr
    assert (run / "report" / "analysis.json").read_text() == before
    other = json.loads((run / "report_t_min2" / "analysis.json").read_text())
    assert other["settings"]["t_min"] == 2 and summary["settings"]["t_min"] != 2
    assert other["correlator"]["fit"] != summary["correlator"]["fit"]
    for key in set(summary) - {"settings", "correlator"}:
        assert other[key] == summary[key], key
    assert {k: v for k, v in other["correlator"].items() if k != "fit"} == {
        k: v for k, v in summary["correlator"].items() if k != "fit"}


def _assert_pyerrors_export_matches(report: Path, summary: dict) -> None:
    """pyerrors reads the exported Obs back: the report's values; its errors below the report's
    within the bound of the per-replica means (tests/test_gamma.py); each chain's history alone
    gives the report's per-chain result to rounding."""
    pe = pytest.importorskip("pyerrors", reason="pyerrors is a test dependency (pip install .[test])")
    assert summary["pyerrors"] == "pyerrors.json.gz" and "pyerrors.json.gz" in (report / "report.md").read_text()
    obs = pe.input.json.load_json_dict(str(report / "pyerrors.json.gz"), verbose=False)
    assert set(obs) == set(summary["observables"])
    for name, o in obs.items():
        o.gamma_method(S=1.5)
        ours = summary["observables"][name]
        assert o.value == pytest.approx(ours["value"], rel=1e-12), name
        assert sorted(o.names) == [f"run|r{c}" for c in range(summary["chains"])]
        bound = 4 * (2 * o.e_windowsize["run"] + 1) * (summary["chains"] - 1) / (summary["chains"] * summary["measurements"])
        assert 0 <= (ours["error"] / o.dvalue) ** 2 - 1 < bound, (name, ours["error"], o.dvalue)
    m = obs["abs_magnetization"]
    for chain in range(summary["chains"]):
        rep = f"run|r{chain}"
        alone = pe.Obs([m.deltas[rep] + m.r_values[rep]], [rep])
        alone.gamma_method(S=1.5)
        ours = summary["per_chain"]["abs_magnetization"][chain]
        assert alone.value == pytest.approx(ours["value"], rel=1e-12) and alone.dvalue == pytest.approx(ours["error"], rel=1e-10)


KILL_CARD = dict(shape=[8, 8], beta=0.576, chains=4, trajectories=3000, thermalization=60, steps=6, checkpoint_every=25)
KILL_EXTRA = "\n[analysis]\nt_min = 1\n"


def test_the_tuned_steps_are_reported(write_card, tmp_path: Path) -> None:
    """target_acceptance retunes the steps: the report and analysis.json give the steps and eps the
    production ran with, and say that the card's steps were only the start."""
    card = write_card(trajectories=40, thermalization=60, steps=40, chains=4)
    card.write_text(card.read_text().replace("seed = 7", "seed = 7\ntarget_acceptance = 0.8"))
    assert _run("sample", str(card)).returncode == 0
    res = _run("analyze", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    with h5py.File(tmp_path / "run" / "configs.h5") as f:
        tuned = int(f.attrs["n_steps"])
    assert tuned < 40  # from too many steps: tuned down
    info = json.loads((tmp_path / "run" / "report" / "analysis.json").read_text())["integration"]
    assert info == {"integrator": "leapfrog", "tau": 1.0, "steps": tuned, "eps": pytest.approx(1.0 / tuned),
                    "steps_card": 40, "tuned": True, "target_acceptance": 0.8}
    assert f"{tuned} steps (tuned during thermalization from the card's 40 towards acceptance 0.8)" in res.stdout


def _reference(write_card, tmp_path: Path) -> tuple[Path, Path]:
    card = write_card(**KILL_CARD)
    text = card.read_text().replace("seed = 7", "seed = 7\nmeasure_every = 2\ntarget_acceptance = 0.8")
    card.write_text(text + KILL_EXTRA)
    assert _run("sample", str(card)).returncode == 0
    reference = tmp_path / "reference"
    shutil.move(tmp_path / "run", reference)
    return card, reference


def test_kill_9_at_random_moments_then_resume_gives_identical_data(write_card, tmp_path: Path) -> None:
    card, reference = _reference(write_card, tmp_path)
    run = tmp_path / "run"
    rng = random.Random(1)
    beyond = 0
    for _ in range(3):
        proc = subprocess.Popen(hpcflow_cmd("--no-progress", "sample", str(card)), env=cli_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_checkpoint(run / "checkpoints", beyond, proc)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        beyond = max(int(p.name) for p in (run / "checkpoints").glob("[0-9]*"))
        assert beyond < 3060, "the run finished before the kill"
    res = _run("sample", str(card))
    assert res.returncode == 0, res.stderr
    _assert_same_file(reference / "configs.h5", run / "configs.h5")


def test_sigterm_checkpoints_and_exits_then_resumes(write_card, tmp_path: Path) -> None:
    card, reference = _reference(write_card, tmp_path)
    run = tmp_path / "run"
    proc = subprocess.Popen(hpcflow_cmd("--no-progress", "sample", str(card)), env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_checkpoint(run / "checkpoints", 100, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "rerun the same command to resume" in err
    with h5py.File(run / "configs.h5") as f:
        assert not f.attrs["complete"]
    res = _run("sample", str(card))
    assert res.returncode == 0, res.stderr
    _assert_same_file(reference / "configs.h5", run / "configs.h5")


def test_analyze_refuses_a_directory_without_data(tmp_path: Path) -> None:
    res = _run("analyze", str(tmp_path))
    assert res.returncode == 2 and "no configs.h5 here" in res.stderr


def test_nmcmc_kill_9_and_sigterm_then_resume_give_identical_data(tmp_path: Path) -> None:
    """The queue of pending proposals is checkpointed: chunks (48) straddle checkpoints (100)."""
    card = tmp_path / "nmcmc.toml"
    card.write_text(tiny_flow_card(tmp_path / "run", chains=4, updates=6000, seed=3, chunk=48, checkpoint_every=100,
                                   sampler_extra="measure_every = 2\n", extra="\n[analysis]\nreweight = true\n"))
    assert _run("train", str(card)).returncode == 0
    model = tmp_path / "run" / "model"
    assert _run("sample", str(card)).returncode == 0
    shutil.move(tmp_path / "run", tmp_path / "reference")
    (tmp_path / "run").mkdir()
    shutil.copytree(tmp_path / "reference" / "model", model)
    run = tmp_path / "run"
    for sig, beyond in ((signal.SIGKILL, 300), (signal.SIGTERM, 2000)):
        proc = subprocess.Popen(hpcflow_cmd("--no-progress", "sample", str(card)), env=cli_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_checkpoint(run / "checkpoints", beyond, proc)
        time.sleep(0.05)
        proc.send_signal(sig)
        proc.wait()
        assert proc.returncode in (-signal.SIGKILL, 128 + signal.SIGTERM)
    assert _run("sample", str(card)).returncode == 0
    _assert_same_file(tmp_path / "reference" / "configs.h5", run / "configs.h5")
    report = _run("analyze", str(run))
    assert report.returncode == 0 and "NMCMC acceptance" in report.stdout
    # the report's ESS and reweighted estimate equal a direct computation from the proposals
    summary = json.loads((run / "report" / "analysis.json").read_text())
    with h5py.File(run / "configs.h5") as f:
        log_w, prop_m = f["nmcmc/log_w"][()], f["nmcmc/proposal_M"][()]
        chain_log_w = f["observables/log_w"][()]
    w = np.exp(log_w - log_w.max())
    assert summary["ess"] == pytest.approx(w.sum() ** 2 / (w.size * (w**2).sum()), rel=1e-9)
    direct = (w * np.abs(prop_m)).sum() / w.sum() / 36
    assert summary["reweighted"]["abs_magnetization"]["value"] == pytest.approx(direct, rel=1e-9)
    assert not np.allclose(chain_log_w.mean(), log_w.mean())  # the two weight sets differ: the test can tell


def test_a_complete_store_survives_a_rerun_with_broken_or_lost_checkpoints(write_card, tmp_path: Path) -> None:
    """Unreadable checkpoints are an error (they were once taken for "no checkpoint", and a
    fresh store replaced the complete one); lost checkpoints beside a store with rows as well."""
    card = write_card(trajectories=20, thermalization=0, checkpoint_every=10)
    assert _run("sample", str(card)).returncode == 0
    run = tmp_path / "run"
    store = (run / "configs.h5").read_bytes()
    for state in (run / "checkpoints").glob("*/state.pt"):
        state.write_bytes(b"damaged")
    res = _run("sample", str(card))
    assert res.returncode == 2 and "no complete checkpoint can be read" in res.stderr, res.stderr
    assert (run / "configs.h5").read_bytes() == store
    shutil.rmtree(run / "checkpoints")
    res = _run("sample", str(card))
    assert res.returncode == 2 and "holds 20 rows but the run has no checkpoint" in res.stderr, res.stderr
    assert (run / "configs.h5").read_bytes() == store


@pytest.mark.parametrize("overrides, match", [
    (dict(shape=[2048, 2048], chains=16384, trajectories=10), r"\[sampler\]\.chains = 16384: 16384 chains .* need about .* GiB on this rank's cpu"),
    (dict(shape=[1024, 1024], chains=1, trajectories=10**8), r"\[sampler\]: the store needs .* GiB .* free"),
])
def test_a_lattice_too_large_for_memory_or_disk_is_refused_before_allocating(write_card, tmp_path: Path,
                                                                             overrides: dict, match: str) -> None:
    res = _run("sample", str(write_card(thermalization=0, **overrides)))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(match, lines[0]), res.stderr
    assert not (tmp_path / "run" / "configs.h5").exists()


def test_a_second_live_job_in_the_same_run_directory_is_refused(write_card, tmp_path: Path) -> None:
    card = write_card(shape=[8, 8], trajectories=100_000, thermalization=0, checkpoint_every=10)
    first = subprocess.Popen(hpcflow_cmd("--no-progress", "sample", str(card)), env=cli_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_checkpoint(tmp_path / "run" / "checkpoints", 0, first)
        second = _run("sample", str(card))
        assert second.returncode == 2 and f"in use by pid {first.pid} on" in second.stderr, second.stderr
    finally:
        first.kill()
        first.wait()
    lock_run_dir(tmp_path / "run").close()  # the lock went with the killed process


def test_progress_lines_without_a_terminal_and_the_status_of_a_live_run(write_card, tmp_path: Path) -> None:
    """--no-progress (or no terminal): one log line every HPCFLOW_PROGRESS_SECONDS with update N of M,
    the rate, the time left and the acceptance; `hpcflow status` names the live process and the update."""
    card = write_card(shape=[8, 8], trajectories=100_000, thermalization=0, checkpoint_every=20)
    env = dict(cli_env(), HPCFLOW_PROGRESS_SECONDS="0.5")
    proc = subprocess.Popen(hpcflow_cmd("--no-progress", "sample", str(card)), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for_checkpoint(tmp_path / "run" / "checkpoints", 40, proc)
        time.sleep(1.0)
        shown = _run("status", str(tmp_path / "run"))
        assert shown.returncode == 0, shown.stderr
        assert f"running: pid {proc.pid} on" in shown.stdout and "phi4 on 8x8, beta = 0.5, lam = 0.5" in shown.stdout
        assert re.search(r"sampling \(hmc, 4 chains\): update \d+ of 100000, [\d.e+]+/s, [\d.]+ (s|min|h) left", shown.stdout), shown.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert re.search(r"hmc run: update \d+/100000 \(\d+%\), [\d.e+]+ update/s, [\d.]+ (s|min|h) left, acceptance 0\.\d+", err), err
    after = _run("status", str(tmp_path / "run")).stdout
    assert "no live process" in after and "last checkpoint" in after
    assert _run("status", str(tmp_path)).returncode == 2


@pytest.mark.parametrize("flow", [False, True], ids=["hmc", "nmcmc"])
def test_an_extended_run_equals_a_run_of_the_longer_card(write_card, tmp_path: Path, flow: bool) -> None:
    """sample --extend 30 after 40 updates gives bitwise the store of a card with 70 (HMC with step
    tuning, NMCMC with its queue of proposals); the card is still the run's identity."""
    if flow:
        (tmp_path / "flow.toml").write_text(tiny_flow_card(tmp_path / "flow"))
        assert _run("train", str(tmp_path / "flow.toml")).returncode == 0
        model = f'model = "{tmp_path / "flow" / "model" / "flow.pt"}"\n'
        cards = []
        for name, updates in (("short", 40), ("long", 70)):
            path = tmp_path / f"{name}.toml"
            path.write_text(tiny_flow_card(tmp_path / name, updates=updates, chunk=16, checkpoint_every=10,
                                           sampler_extra=model))
            cards.append(path)
    else:
        cards = [write_card(f"{name}.toml", trajectories=n, dir=tmp_path / name, checkpoint_every=10) for name, n in
                 (("short", 40), ("long", 70))]
        for path in cards:
            path.write_text(path.read_text().replace("seed = 7", "seed = 7\ntarget_acceptance = 0.8"))
    for path in cards:
        assert _run("sample", str(path)).returncode == 0
    res = _run("sample", str(cards[0]), "--extend", "30")
    assert res.returncode == 0, res.stderr
    short, long = _h5_content(tmp_path / "short" / "configs.h5"), _h5_content(tmp_path / "long" / "configs.h5")
    data = [k for k in long if not k.startswith("@")]
    assert set(data) <= set(short)
    for key in data:
        np.testing.assert_array_equal(short[key], long[key], err_msg=key)
    assert _run("sample", str(cards[0])).returncode == 0  # the same card, nothing to do
    assert json.loads((tmp_path / "short" / "extensions.json").read_text())[0]["updates"] == 30
    assert _run("analyze", str(tmp_path / "short")).returncode == 0
    summary = json.loads((tmp_path / "short" / "report" / "analysis.json").read_text())
    assert summary["measurements"] == 70
    assert _run("sample", str(cards[0]), "--extend", "-3").returncode == 2
