"""Trained models on disk: ``flow.pt`` holds the architecture (a coupling flow or a gradient-flow
map, :mod:`hpcflow.models.registry`), the lattice it was trained on and the parameters; loading
checks the architecture against the run card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hpcflow.io.atomic import atomic_write
from hpcflow.io.checkpoint import has_checkpoint
from torch import nn

from hpcflow.models.registry import ModelSpec, build_model, spec_from_dict
from hpcflow.workflow.runcard import RunCard

__all__ = [
    "ModelError",
    "check_compatible",
    "check_flow_inputs",
    "flow_path",
    "load_flow",
    "model_spec",
    "load_parameters",
    "read_flow",
    "save_flow",
]


class ModelError(ValueError):
    """A model file that is missing or does not fit the run card."""


def model_spec(card: RunCard) -> ModelSpec:
    """The architecture of the card's ``[model]`` section (a gradient flow's group is the theory's)."""
    model = card.data["model"]
    return spec_from_dict({**model, "group": card.theory["name"]} if model.get("kind") == "gradflow" else model)


def save_flow(path: Path, flow: nn.Module, shape: tuple[int, ...], meta: dict[str, Any]) -> None:
    """Atomically write the flow with its architecture and training lattice."""
    state = {k: v.detach().cpu() for k, v in flow.state_dict().items()}
    payload = {"spec": flow.spec.to_dict(), "shape": list(shape), "state_dict": state, "meta": meta}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def check_compatible(stored_spec: dict[str, Any], card: RunCard, what: str) -> None:
    """Refuse a stored architecture that differs from the card's ``[model]``."""
    if "model" not in card.data:
        return
    wanted = model_spec(card).to_dict()
    stored_spec = spec_from_dict(stored_spec).to_dict()  # keys added since it was written take their defaults
    diff = sorted(k for k in wanted if stored_spec.get(k) != wanted[k])
    if diff:
        details = ", ".join(f"{k}: {stored_spec.get(k)!r} there, {wanted[k]!r} in the card" for k in diff)
        raise ModelError(f"{what} was made for another architecture ({details})")


def load_parameters(flow: nn.Module, state_dict: dict[str, Any], what: str) -> None:
    """Load ``state_dict`` into ``flow``; parameters of another layout (e.g. a flow written by an
    hpcflow whose conditioners were laid out differently) get a :class:`ModelError`."""
    try:
        flow.load_state_dict(state_dict)
    except RuntimeError as err:
        lines = str(err).splitlines()
        detail = lines[1].strip() if len(lines) > 1 else lines[0]
        raise ModelError(f"{what}: its parameters do not fit this version's flow ({detail}); train it again") from None


def _read_payload(path: Path, key: str) -> dict[str, Any]:
    """The contents of a ``flow.pt``; anything else (missing, not a torch file, another object)
    is a :class:`ModelError` naming the card key that points there."""
    if not path.is_file():
        raise ModelError(f"{key} = {str(path)!r}: no trained flow there; run 'hpcflow train' on the card that makes it")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a torch file of another kind, a truncated file, not a torch file at all
        raise ModelError(f"{key} = {str(path)!r}: not a trained flow ({type(err).__name__}: {str(err).splitlines()[0][:120]})") from None
    if not isinstance(payload, dict) or not {"spec", "shape", "state_dict"} <= set(payload):
        raise ModelError(f"{key} = {str(path)!r}: not a trained flow (written by 'hpcflow train' it holds spec, shape, state_dict)")
    return payload


def read_flow(path: Path, card: RunCard, key: str = "[sampler].model") -> tuple[nn.Module, dict[str, Any]]:
    """A trained flow and what was stored with it: ``{"shape": training lattice, **meta}``;
    ``key`` names the card key that led to ``path`` in messages."""
    payload = _read_payload(path, key)
    if len(payload["shape"]) != len(card.theory["shape"]):
        raise ModelError(f"{key} = {str(path)!r}: trained on a {len(payload['shape'])}D lattice {payload['shape']}, "
                         f"the card's lattice is {len(card.theory['shape'])}D")
    check_compatible(payload["spec"], card, str(path))
    flow = build_model(spec_from_dict(payload["spec"]), card.theory)
    load_parameters(flow, payload["state_dict"], str(path))
    return flow, {"shape": payload["shape"], **payload["meta"]}


def flow_path(card: RunCard) -> tuple[Path, str]:
    """The flow a sampling card uses and the key that says so: ``[sampler].model``, else the
    ``model/flow.pt`` that ``hpcflow train`` writes into the run directory."""
    if "model" in card.sampler:
        return Path(card.sampler["model"]), "[sampler].model"
    return card.run_dir / "model" / "flow.pt", "[model] (trained into the run directory)"


def load_flow(card: RunCard) -> nn.Module:
    """The card's trained flow for sampling on its lattice (any even shape: volume transfer)."""
    path, key = flow_path(card)
    return read_flow(path, card, key)[0]


def check_flow_inputs(card: RunCard, will_train: bool = True) -> None:
    """Before any stage runs: every flow file the card names exists and fits it. The run
    directory's own ``model/flow.pt`` may be missing while ``[training]`` (``will_train``) is
    there to make it; ``[training].init`` must exist unless the training has started already."""
    training = card.data.get("training", {})
    model_dir = card.run_dir / "model"
    started = has_checkpoint(model_dir / "checkpoints") or (model_dir / "flow.pt").is_file()
    if "init" in training and not started:  # a resumed training continues from its checkpoint
        read_flow(Path(training["init"]), card, "[training].init")
    if card.operator_section or card.sampler["kind"] == "hmc":
        return
    path, key = flow_path(card)
    trained_here = (card.run_dir / "model" / "flow.pt").resolve() == path.resolve()
    if not path.is_file() and trained_here and will_train and "training" in card.data:
        return  # the training stage writes it
    if not path.is_file() and "model" not in card.sampler:
        hint = ("run 'hpcflow train' on this card first" if "training" in card.data
                else "add [training] to train one, or set [sampler].model to a trained flow.pt")
        raise ModelError(f"[sampler].kind = {card.sampler['kind']!r}: no trained flow at {path}; {hint}")
    read_flow(path, card, key)
