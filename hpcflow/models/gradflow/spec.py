"""The architecture of a gradient-flow map (``[model]`` with ``kind = "gradflow"``) and its builder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpcflow.models.gradflow.coefficients import COEFFICIENTS
from hpcflow.models.gradflow.loops import loops_named
from hpcflow.models.gradflow.luscher import GROUP_N, luscher_coefficients
from hpcflow.models.gradflow.map import GradientFlow
from hpcflow.models.gradflow.sun import SUNGradientFlow
from hpcflow.models.gradflow.u1 import U1GradientFlow

__all__ = ["INITS", "GradFlowSpec", "build_gradflow"]

INITS = ("zero", "luscher_lo", "luscher_nlo")
"""Starting coefficients: zero (the identity map) or Luscher's map (:mod:`.luscher`)."""


@dataclass(frozen=True)
class GradFlowSpec:
    """Architecture of a gradient-flow map.

    Attributes:
        group: ``"u1"``, ``"su2"`` or ``"su3"`` (the card's theory).
        loops: loop names (a family of :data:`~.loops.FAMILIES` is expanded).
        coefficients: ``"affine"`` (model A, 2 per loop) or ``"spline"`` (model B, ``knots`` per loop).
        knots: spline knots.
        steps: RK3 steps from flow time 0 to 1.
        init: :data:`INITS`.
    """

    group: str
    loops: tuple[str, ...]
    coefficients: str = "affine"
    knots: int = 10
    steps: int = 20
    init: str = "luscher_lo"
    kind = "gradflow"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GradFlowSpec:
        """From a ``to_dict`` or a ``[model]`` section with the theory's name as ``group``."""
        fields = {k: v for k, v in d.items() if k != "kind"}
        return cls(**{**fields, "loops": tuple(lp.name for lp in loops_named(fields["loops"]))})

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.__dict__, "loops": list(self.loops)}

    def parameters(self) -> int:
        """Number of trained parameters."""
        return len(self.loops) * (2 if self.coefficients == "affine" else self.knots)

    def describe(self) -> str:
        """A few words for plot titles and logs."""
        return f"gradient flow, {len(self.loops)} loops, {self.coefficients} coefficients ({self.parameters()} parameters)"

    def proposal_buffers(self) -> float:
        """Field-sized buffers per proposal during a map evaluation without gradients: the RK3
        stages and the prefix and suffix products of the longest loop."""
        return 6.0 + 3.0 * max(lp.length for lp in loops_named(list(self.loops)))

    def roughness(self) -> str | None:
        """The map is smooth (flow HMC would not be refused for smoothness)."""
        return None


def build_gradflow(spec: GradFlowSpec, theory: dict[str, Any]) -> GradientFlow:
    """The map of ``spec``, its coefficients set by ``spec.init`` at the theory's ``beta``."""
    if spec.group not in GROUP_N:
        raise ValueError(f"group = {spec.group!r}: expected one of {sorted(GROUP_N)}")
    if spec.coefficients not in COEFFICIENTS:
        raise ValueError(f"coefficients = {spec.coefficients!r}: expected one of {sorted(COEFFICIENTS)}")
    if spec.init not in INITS:
        raise ValueError(f"init = {spec.init!r}: expected one of {INITS}")
    loops = loops_named(list(spec.loops))
    kind = COEFFICIENTS[spec.coefficients]
    coefficients = kind(len(loops), spec.knots) if spec.coefficients == "spline" else kind(len(loops))
    if spec.init != "zero":
        coefficients.set_affine(*luscher_coefficients(spec.group, theory["beta"], loops, spec.init.removeprefix("luscher_")))
    if spec.group == "u1":
        flow: GradientFlow = U1GradientFlow(loops, coefficients, spec.steps)
    else:
        flow = SUNGradientFlow(GROUP_N[spec.group], loops, coefficients, spec.steps)
    flow.spec = spec
    return flow
