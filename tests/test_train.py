"""Training stage: resume after kill -9 to identical parameters, NaN rollback, bad input."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from conftest import cli_env, hpcflow_cmd
from hpcflow.theories.phi4 import Phi4Action
from hpcflow.workflow.model_io import ModelError
from hpcflow.workflow.runcard import RunCardError, load_runcard
from hpcflow.workflow.sample import sample
from hpcflow.workflow.train import train

CARD = """\
[theory]
name = "phi4"
shape = {shape}
beta = 0.5
lam = 0.5

[model]
coupling = {coupling}
layers = 2
hidden = {hidden}
kernel = 3
bins = {bins}
{model_extra}
[training]
steps = {steps}
batch = 32
lr = 0.003
seed = 4
checkpoint_every = 10
log_every = 5
{training_extra}
[sampler]
kind = "nmcmc"
chains = 4
updates = 20
thermalization = 0
seed = 2
{sampler_extra}
[output]
dir = "{dir}"
"""


def _card(tmp_path: Path, name: str = "card.toml", **kw: object) -> Path:
    values = dict(shape=[6, 6], coupling='"affine"', hidden=[8], bins=4, steps=40, sampler_extra="", training_extra="",
                  model_extra="", dir=tmp_path / "run")
    values.update(kw)
    path = tmp_path / name
    path.write_text(CARD.format(**values))
    return path


def _params(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_same_parameters(tmp_path: Path) -> None:
    card = _card(tmp_path, steps=800, coupling='["affine", "spline"]')
    done = subprocess.run(hpcflow_cmd("--no-progress", "train", str(card)), env=cli_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shutil.move(tmp_path / "run", tmp_path / "reference")
    run = tmp_path / "run"
    proc = subprocess.Popen(hpcflow_cmd("--no-progress", "train", str(card)), env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = run / "model" / "checkpoints"
    t0 = time.monotonic()
    while not (ckpts.is_dir() and any(int(p.name) >= 100 for p in ckpts.glob("[0-9]*"))):
        assert proc.poll() is None and time.monotonic() - t0 < 300
        time.sleep(0.01)
    time.sleep(0.13)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "model" / "flow.pt").exists(), "the training finished before the kill"
    res = subprocess.run(hpcflow_cmd("--no-progress", "train", str(card)), env=cli_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    ref, new = _params(tmp_path / "reference" / "model" / "flow.pt"), _params(run / "model" / "flow.pt")
    assert ref.keys() == new.keys()
    for key in ref:
        assert torch.equal(ref[key], new[key]), key
    log = [json.loads(line) for line in (run / "model" / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == list(range(5, 801, 5))  # no step lost or repeated
    assert log[-1]["phi_train"] == 800 * 32
    assert {"loss", "ess", "acceptance", "lr", "grad_norm", "rollbacks"} <= log[-1].keys()


def test_non_finite_steps_roll_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    original = Phi4Action.__call__

    def sometimes_nan(self: Phi4Action, phi: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        s = original(self, phi)
        return s * float("nan") if calls["n"] in (7, 8, 20) else s

    monkeypatch.setattr(Phi4Action, "__call__", sometimes_nan)
    card = load_runcard(_card(tmp_path, steps=30))
    path = train(card, progress=False)
    assert all(torch.isfinite(v).all() for v in _params(path).values())
    log = [json.loads(line) for line in (tmp_path / "run" / "model" / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["rollbacks"] == 3 and log[-1]["step"] == 30


def test_bad_model_input(tmp_path: Path) -> None:
    with pytest.raises(RunCardError, match=r"extents must be even for the checkerboard sublattices \(axis 1 is 5\)"):
        load_runcard(_card(tmp_path, shape=[6, 5]))
    with pytest.raises(RunCardError, match=r"\[model\].bins = 0: expected an integer >= 2"):
        load_runcard(_card(tmp_path, bins=0, coupling='"spline"'))
    with pytest.raises(RunCardError, match=r"\[model\].coupling = 'realnvp': expected 'affine' or 'spline'"):
        load_runcard(_card(tmp_path, coupling='"realnvp"'))


def test_model_from_another_architecture_or_lattice_is_refused(tmp_path: Path) -> None:
    first = load_runcard(_card(tmp_path, steps=10))
    flow_path = train(first, progress=False)
    # sampling with a [model] that differs from the stored flow
    other = load_runcard(_card(tmp_path, "other.toml", hidden=[4], dir=tmp_path / "other",
                               sampler_extra=f'model = "{flow_path}"\n'))
    with pytest.raises(ModelError, match=r"another architecture \(hidden: \[8\] there, \[4\] in the card\)"):
        sample(other, progress=False)
    # resuming training from checkpoints made on another lattice
    moved = load_runcard(_card(tmp_path, "moved.toml", shape=[8, 8], dir=tmp_path / "moved", steps=20))
    (tmp_path / "moved").mkdir()
    shutil.copytree(tmp_path / "run" / "model", tmp_path / "moved" / "model")
    (tmp_path / "moved" / "model" / "flow.pt").unlink()
    with pytest.raises(ModelError, match=r"trained on lattice \[6, 6\], the card has \[8, 8\]"):
        train(moved, progress=False)
    # a flow.pt whose parameters have another layout (the full-lattice 3x3 first convolution of
    # hpcflow before its conditioners moved to the sublattices)
    payload = torch.load(flow_path, weights_only=True)
    first_conv = "layers.0.net.net.0.weight"
    payload["state_dict"][first_conv] = torch.zeros(8, 1, 3, 3)
    old = tmp_path / "old_flow.pt"
    torch.save(payload, old)
    stale = load_runcard(_card(tmp_path, "stale.toml", dir=tmp_path / "stale", sampler_extra=f'model = "{old}"\n'))
    with pytest.raises(ModelError, match=rf"old_flow.pt: its parameters do not fit this version's flow \(.*{first_conv}"):
        sample(stale, progress=False)
    # a flow.pt written before [model].fourier existed reads as fourier = false
    del payload["spec"]["fourier"]
    payload["state_dict"][first_conv] = _params(flow_path)[first_conv]
    torch.save(payload, old)
    assert sample(load_runcard(_card(tmp_path, "legacy.toml", dir=tmp_path / "legacy",
                                     sampler_extra=f'model = "{old}"\n')), progress=False).is_file()
    fourier = load_runcard(_card(tmp_path, "fourier.toml", dir=tmp_path / "fourier", model_extra="fourier = true\n",
                                 sampler_extra=f'model = "{old}"\n'))
    with pytest.raises(ModelError, match=r"another architecture \(fourier: False there, True in the card\)"):
        sample(fourier, progress=False)
    # a flow trained on 6x6 samples an 8x8 lattice (volume transfer)
    transfer = load_runcard(_card(tmp_path, "transfer.toml", shape=[8, 8], dir=tmp_path / "transfer",
                                  sampler_extra=f'model = "{flow_path}"\n'))
    assert sample(transfer, progress=False).is_file()


def test_init_fine_tunes_a_flow_trained_on_a_smaller_lattice(tmp_path: Path) -> None:
    small = train(load_runcard(_card(tmp_path)), progress=False)  # 6x6, 40 steps
    init = f'init = "{small}"\n'
    tuned = train(load_runcard(_card(tmp_path, "tuned.toml", shape=[8, 8], steps=1, training_extra=init,
                                     dir=tmp_path / "tuned")), progress=False)
    fresh = train(load_runcard(_card(tmp_path, "fresh.toml", shape=[8, 8], steps=1, dir=tmp_path / "fresh")),
                  progress=False)
    start = _params(small)
    # one Adam step moves each parameter by at most lr = 0.003 (plus rounding)
    assert max((_params(tuned)[k] - v).abs().max().item() for k, v in start.items()) < 0.0031
    assert max((_params(fresh)[k] - v).abs().max().item() for k, v in start.items()) > 0.01
    meta = torch.load(tuned, weights_only=True)["meta"]
    assert meta["phi_train"] == 32 and meta["init"]["phi_train"] == 40 * 32 and meta["init"]["path"] == str(small)
    assert meta["init"]["shape"] == [6, 6]
    missing = load_runcard(_card(tmp_path, "missing.toml", training_extra='init = "nowhere/flow.pt"\n',
                                 dir=tmp_path / "missing"))
    with pytest.raises(ModelError, match=r"\[training\].init = 'nowhere/flow.pt': no trained flow there"):
        train(missing, progress=False)
    wrong = load_runcard(_card(tmp_path, "wrong.toml", hidden=[4], training_extra=init, dir=tmp_path / "wrong"))
    with pytest.raises(ModelError, match=r"another architecture \(hidden: \[8\] there, \[4\] in the card\)"):
        train(wrong, progress=False)
    # a resumed run takes its checkpoint (and the init's metadata from it), not the init file
    small.unlink()
    again = train(load_runcard(tmp_path / "tuned.toml"), progress=False)
    assert torch.load(again, weights_only=True)["meta"]["init"] == meta["init"]


def test_train_needs_model_and_training_sections(write_card) -> None:
    with pytest.raises(RunCardError, match=r"\[model\]: missing required section for hpcflow train"):
        train(load_runcard(write_card()), progress=False)


def test_a_torn_last_line_of_the_training_log_is_dropped_on_resume(tmp_path: Path) -> None:
    """A kill while a log line is written leaves half a JSON object; the resumed run drops it
    (it was a JSONDecodeError traceback) and writes the steps after the checkpoint again."""
    card = load_runcard(_card(tmp_path, steps=20))
    train(card, progress=False)
    model = tmp_path / "run" / "model"
    (model / "flow.pt").unlink()
    shutil.rmtree(model / "checkpoints" / f"{20:010d}")  # resume from step 10
    log = model / "train_log.jsonl"
    log.write_text(log.read_text() + '{"step": 21, "loss": 1.2')
    train(card, progress=False)
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == list(range(5, 21, 5))


def test_a_model_file_that_is_not_a_flow_is_one_line_and_touches_nothing(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.pt"
    bogus.write_text("not a torch file")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    for path, why in ((bogus, "not a trained flow (UnpicklingError"), (tmp_path / "other.pt", "not a trained flow (written by")):
        card = _card(tmp_path, sampler_extra=f'model = "{path}"\n', dir=tmp_path / "nmcmc")
        res = subprocess.run(hpcflow_cmd("--no-progress", "sample", str(card)), env=cli_env(), capture_output=True, text=True)
        assert res.returncode == 2
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and f"[sampler].model = '{path}': {why}" in lines[0], res.stderr
        assert not (tmp_path / "nmcmc").exists()
