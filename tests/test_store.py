"""HDF5 store and checkpoints: round trip, row counters, atomic checkpoints."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from hpcflow.io.checkpoint import CheckpointError, latest_checkpoint, save_checkpoint
from hpcflow.io.store import ConfigStore


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "configs.h5"
    ConfigStore.create(path, {"phi": ((3, 5, 4, 4), "f8"), "obs/M": ((3, 5), "f8")}, {"seed": 4, "card": {"a": [1, 2]}})
    data = np.random.default_rng(0).normal(size=(3, 5, 4, 4))
    with ConfigStore(path, "r+") as store:
        assert store.rows("phi") == 0 and store.capacity("phi") == 5
        store.write("phi", 0, data[:, :2])
        store.write("phi", 2, data[:, 2:4])
        store.write("obs/M", 0, data[:, :3].sum((2, 3)))
        store.flush()
    with ConfigStore(path) as store:
        np.testing.assert_array_equal(store.read("phi"), data[:, :4])
        assert store.rows("obs/M") == 3
        assert store.attrs["seed"] == 4 and store.attrs["card"] == '{"a": [1, 2]}'
    with h5py.File(path) as f:  # plain h5py sees the declared layout
        assert f["phi"].shape == (3, 5, 4, 4) and f["phi"].dtype == np.float64


def test_truncate_then_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "configs.h5"
    ConfigStore.create(path, {"x": ((2, 6), "f8")}, {})
    with ConfigStore(path, "r+") as store:
        store.write("x", 0, np.ones((2, 4)))
        store.truncate("x", 2)
        assert store.rows("x") == 2
        store.write("x", 2, np.full((2, 1), 7.0))
        np.testing.assert_array_equal(store.read("x"), [[1, 1, 7], [1, 1, 7]])


def test_write_outside_the_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "configs.h5"
    ConfigStore.create(path, {"x": ((2, 3), "f8")}, {})
    with ConfigStore(path, "r+") as store, pytest.raises(ValueError, match="do not fit"):
        store.write("x", 2, np.ones((2, 2)))


def test_create_is_atomic(tmp_path: Path) -> None:
    """A failure while building the file leaves no partial configs.h5 behind."""
    path = tmp_path / "configs.h5"
    with pytest.raises(TypeError):
        ConfigStore.create(path, {"x": ((2, 3), "not-a-dtype")}, {})
    assert list(tmp_path.iterdir()) == []


def test_checkpoints_are_atomic_and_pruned(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoints"
    assert latest_checkpoint(ckpt) is None
    for step in (10, 20, 30):
        save_checkpoint(ckpt, step, {"phi": torch.full((2,), float(step)), "n": step})
    step, state = latest_checkpoint(ckpt)
    assert step == 30 and state["n"] == 30 and torch.equal(state["phi"], torch.full((2,), 30.0))
    assert sorted(p.name for p in ckpt.iterdir()) == ["0000000020", "0000000030"]
    # a folder without the completion marker (killed mid-write) is ignored
    (ckpt / "0000000040").mkdir()
    (ckpt / "0000000040" / "state.pt").write_bytes(b"partial")
    assert latest_checkpoint(ckpt)[0] == 30
    # a damaged newest checkpoint falls back to the previous one
    (ckpt / "0000000030" / "state.pt").write_bytes(b"garbage")
    assert latest_checkpoint(ckpt)[0] == 20
    # all of them damaged is an error, never "no checkpoint" (which would start the run over)
    (ckpt / "0000000020" / "state.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no complete checkpoint can be read .*0000000030.*0000000020"):
        latest_checkpoint(ckpt)


def test_a_file_system_that_refuses_hdf5_locks_is_opened_without_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Lustre without flock: HDF5 fails with "unable to lock file"; the store opens without
    HDF5's lock (and says so) instead of stopping the run."""
    path = tmp_path / "configs.h5"
    ConfigStore.create(path, {"x": ((2, 3), "f8")}, {"complete": False})
    real = h5py.File

    def refusing(name, mode="r", *args, locking=None, **kwargs):  # noqa: ANN001, ANN202
        if locking is None:
            raise OSError("Unable to open file (unable to lock file, errno = 38, error message = 'Function not implemented')")
        return real(name, mode, *args, locking=locking, **kwargs)

    monkeypatch.setattr(h5py, "File", refusing)
    with caplog.at_level("WARNING"), ConfigStore(path, "r+") as store:
        assert store.rows("x") == 0
    assert "refuses HDF5's file lock" in caplog.text
    monkeypatch.setattr(h5py, "File", lambda *a, **k: (_ for _ in ()).throw(OSError("no such file")))
    with pytest.raises(OSError, match="no such file"):
        ConfigStore(path)
