"""Trained flows on disk: ``flow.pt`` holds the architecture, the lattice it was trained on and
the parameters; loading checks the architecture against the run card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hpcflow.io.atomic import atomic_write
from hpcflow.models.flows.flow import Flow, FlowSpec, build_flow
from hpcflow.workflow.runcard import RunCard

__all__ = ["ModelError", "check_compatible", "flow_spec", "load_flow", "load_parameters", "read_flow", "save_flow"]


class ModelError(ValueError):
    """A model file that is missing or does not fit the run card."""


def flow_spec(card: RunCard) -> FlowSpec:
    """The :class:`FlowSpec` of the card's ``[model]`` section."""
    return FlowSpec.from_dict(card.data["model"])


def save_flow(path: Path, flow: Flow, shape: tuple[int, ...], meta: dict[str, Any]) -> None:
    """Atomically write the flow with its architecture and training lattice."""
    payload = {"spec": flow.spec.to_dict(), "shape": list(shape), "state_dict": flow.state_dict(), "meta": meta}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def check_compatible(stored_spec: dict[str, Any], card: RunCard, what: str) -> None:
    """Refuse a stored architecture that differs from the card's ``[model]``."""
    if "model" not in card.data:
        return
    wanted = flow_spec(card).to_dict()
    stored_spec = FlowSpec.from_dict(stored_spec).to_dict()  # keys added since it was written take their defaults
    diff = sorted(k for k in wanted if stored_spec.get(k) != wanted[k])
    if diff:
        details = ", ".join(f"{k}: {stored_spec.get(k)!r} there, {wanted[k]!r} in the card" for k in diff)
        raise ModelError(f"{what} was made for another architecture ({details})")


def load_parameters(flow: Flow, state_dict: dict[str, Any], what: str) -> None:
    """Load ``state_dict`` into ``flow``; parameters of another layout (e.g. a flow written by an
    hpcflow whose conditioners were laid out differently) get a :class:`ModelError`."""
    try:
        flow.load_state_dict(state_dict)
    except RuntimeError as err:
        lines = str(err).splitlines()
        detail = lines[1].strip() if len(lines) > 1 else lines[0]
        raise ModelError(f"{what}: its parameters do not fit this version's flow ({detail}); train it again") from None


def read_flow(path: Path, card: RunCard) -> tuple[Flow, dict[str, Any]]:
    """A trained flow and what was stored with it: ``{"shape": training lattice, **meta}``."""
    if not path.is_file():
        raise ModelError(f"{path}: no trained flow here; run 'hpcflow train' first or set [sampler].model")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    check_compatible(payload["spec"], card, str(path))
    flow = build_flow(FlowSpec.from_dict(payload["spec"]))
    load_parameters(flow, payload["state_dict"], str(path))
    return flow, {"shape": payload["shape"], **payload["meta"]}


def load_flow(path: Path, card: RunCard) -> Flow:
    """Load a trained flow for sampling on the card's lattice (any even shape: volume transfer)."""
    return read_flow(path, card)[0]
