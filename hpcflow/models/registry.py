"""The model kinds of ``[model].kind``: each an architecture (``spec``) and its builder.

``"flow"`` (the default): the coupling flows of scalar fields (:mod:`hpcflow.models.flows`);
``"gradflow"``: the gradient-flow maps of gauge fields (:mod:`hpcflow.models.gradflow`);
``"gauge_coupling"``: the gauge-equivariant coupling flows of 2D U(1)
(:mod:`hpcflow.models.gauge_coupling`). Every model
offers what the trainer and the samplers use: ``model(latent) -> (field, log det J)``,
``push``, ``log_prob``, ``prior`` (``sample``, ``draw``, ``log_prob``) and ``spec``.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from hpcflow.models.flows.flow import FlowSpec, build_flow
from hpcflow.models.gauge_coupling.flow import GaugeCouplingSpec, build_gauge_coupling
from hpcflow.models.gradflow.spec import GradFlowSpec, build_gradflow

__all__ = ["MODEL_KINDS", "ModelSpec", "build_model", "spec_from_dict"]

ModelSpec = FlowSpec | GradFlowSpec | GaugeCouplingSpec

MODEL_KINDS: dict[str, tuple[type, Callable[[Any, dict[str, Any]], nn.Module]]] = {
    "flow": (FlowSpec, lambda spec, theory: build_flow(spec)),
    "gradflow": (GradFlowSpec, build_gradflow),
    "gauge_coupling": (GaugeCouplingSpec, build_gauge_coupling),
}


def spec_from_dict(d: dict[str, Any]) -> ModelSpec:
    """The spec of a stored or card ``[model]`` dict (``kind`` absent: a coupling flow)."""
    kind = d.get("kind", "flow")
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind = {kind!r}: expected one of {sorted(MODEL_KINDS)}")
    return MODEL_KINDS[kind][0].from_dict(d)


def build_model(spec: ModelSpec, theory: dict[str, Any]) -> nn.Module:
    """The model of ``spec`` for the card's ``[theory]`` (whose couplings set a gradient flow's
    starting coefficients), float64 parameters for a gradient flow, float32 for the others."""
    return MODEL_KINDS[spec.kind][1](spec, theory)
