"""Theories as the sampling and analysis stages see them: field layout, action, start, observables.

=========  =============================================  ==========================================
``name``   field dataset (per chain and step)              observables per configuration
=========  =============================================  ==========================================
``phi4``   ``phi`` ``(L0, L1)`` float64                   ``action``, ``M``, ``e``, ``C (L0)``
``u1``     ``links`` ``(2, L0, L1)`` angles, float64      ``action``, ``plaquette``, ``Q``, loops
``su2/3``  ``links`` ``(d, *L, N, N)`` complex128         ``action``, ``plaquette``, loops
=========  =============================================  ==========================================

``plaquette`` is :math:`\\frac1N\\mathrm{Re\\,tr}\\,U_P` averaged over sites and planes (U(1):
:math:`\\cos\\theta_P`); ``wilson_1x2`` and ``wilson_2x2`` the same of the rectangles (both
orientations); ``Q`` the U(1) topological charge. Gauge fields start cold (``U = 1``)
or hot (random links) as ``[theory].start`` says.
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import torch
from torch import Tensor

from hpcflow.lattice.rng import ChainRNG
from hpcflow.samplers.gauge_hmc import GaugeHMC
from hpcflow.samplers.hmc import HMC
from hpcflow.samplers.integrators import INTEGRATORS
from hpcflow.theories.action import Action
from hpcflow.theories.gauge import (
    U1Action,
    WilsonGaugeAction,
    identity_links,
    mean_wilson_loop,
    reunitarize,
    topological_charge,
    u1_mean_wilson_loop,
    u1_plaquette_angle,
)
from hpcflow.theories.phi4 import Phi4Action, energy_density, magnetization, timeslice_correlator
from hpcflow.workflow.runcard import RunCard

__all__ = ["LOOPS", "THEORIES", "Theory", "theory_of"]

LOOPS = ((1, 2), (2, 2))
"""The rectangular Wilson loops measured on gauge fields besides the plaquette."""


class Theory(abc.ABC):
    """What the stages need to know of a theory."""

    name: ClassVar[str]
    field: ClassVar[str]
    dtype: ClassVar[str]
    proposal_names: ClassVar[tuple[str, ...]]
    """The keys of :meth:`proposal_observables`."""

    def __init__(self, card: RunCard) -> None:
        self.card = card
        self.shape = tuple(card.theory["shape"])

    @abc.abstractmethod
    def field_shape(self) -> tuple[int, ...]:
        """Shape of one configuration."""

    @abc.abstractmethod
    def initial(self, rng: ChainRNG) -> Tensor:
        """Starting fields of all chains."""

    @abc.abstractmethod
    def action(self) -> Action:
        """The action of ``[theory]``: the one HMC, NMCMC and the training use."""

    @abc.abstractmethod
    def hmc(self, rng: ChainRNG) -> HMC | GaugeHMC:
        """The HMC sampler of this theory."""

    @abc.abstractmethod
    def observables(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Per-configuration observables: name -> (shape beyond (chain, step), HDF5 dtype)."""

    @abc.abstractmethod
    def measure(self, field: Tensor, action: Tensor) -> dict[str, Tensor]:
        """Values of :meth:`observables` for fields ``(B, ...)``."""

    @abc.abstractmethod
    def proposal_observables(self, field: Tensor) -> dict[str, Tensor]:
        """What NMCMC records of every proposal ``(B, ...)`` (``proposal_<name>``, float64), for
        reweighting the proposals and checking the chain against them."""


class Phi4(Theory):
    name, field, dtype, proposal_names = "phi4", "phi", "f8", ("M", "e")

    def action(self) -> Phi4Action:
        return self.card.action()

    def field_shape(self) -> tuple[int, ...]:
        return self.shape

    def initial(self, rng: ChainRNG) -> Tensor:
        return rng.normal(self.shape)

    def hmc(self, rng: ChainRNG) -> HMC:
        s = self.card.sampler
        return HMC(self.action(), INTEGRATORS[s["integrator"]](), tau=s["tau"], n_steps=s["steps"], rng=rng)

    def observables(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {"action": ((), "f8"), "M": ((), "f8"), "e": ((), "f8"), "C": ((self.shape[0],), "f8")}

    def measure(self, field: Tensor, action: Tensor) -> dict[str, Tensor]:
        return {"action": action, "M": magnetization(field), "e": energy_density(field), "C": timeslice_correlator(field)}

    def proposal_observables(self, field: Tensor) -> dict[str, Tensor]:
        return {"M": magnetization(field), "e": energy_density(field)}


class U1(Theory):
    name, field, dtype, proposal_names = "u1", "links", "f8", ("plaquette", "Q")

    def field_shape(self) -> tuple[int, ...]:
        return (2, *self.shape)

    def initial(self, rng: ChainRNG) -> Tensor:
        if self.card.theory["start"] == "cold":
            return torch.zeros((len(rng), *self.field_shape()), dtype=torch.float64, device=rng.device)
        return math.pi * (2.0 * rng.uniform(self.field_shape()) - 1.0)

    def action(self) -> U1Action:
        return U1Action(beta=self.card.theory["beta"])

    def hmc(self, rng: ChainRNG) -> HMC:
        s = self.card.sampler
        return HMC(self.action(), INTEGRATORS[s["integrator"]](), tau=s["tau"], n_steps=s["steps"], rng=rng)

    def observables(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {"action": ((), "f8"), "plaquette": ((), "f8"), "Q": ((), "f8"), **{f"wilson_{a}x{b}": ((), "f8") for a, b in LOOPS}}

    def measure(self, field: Tensor, action: Tensor) -> dict[str, Tensor]:
        return {"action": action, **self.proposal_observables(field),
                **{f"wilson_{a}x{b}": u1_mean_wilson_loop(field, a, b) for a, b in LOOPS}}

    def proposal_observables(self, field: Tensor) -> dict[str, Tensor]:
        return {"plaquette": torch.cos(u1_plaquette_angle(field)).flatten(1).mean(1), "Q": topological_charge(field)}


class SUN(Theory):
    field, dtype, proposal_names = "links", "c16", ("plaquette",)
    n: ClassVar[int]

    def field_shape(self) -> tuple[int, ...]:
        return (len(self.shape), *self.shape, self.n, self.n)

    def _loops(self) -> tuple[tuple[int, int], ...]:
        """The rectangles of :data:`LOOPS` (none on a 1D lattice: no plane)."""
        return LOOPS if len(self.shape) > 1 else ()

    def initial(self, rng: ChainRNG) -> Tensor:
        cold = identity_links(len(rng), self.shape, self.n, device=rng.device)
        if self.card.theory["start"] == "cold":
            return cold
        noise = torch.complex(rng.normal(self.field_shape()), rng.normal(self.field_shape()))
        return reunitarize(noise)

    def action(self) -> WilsonGaugeAction:
        return WilsonGaugeAction(beta=self.card.theory["beta"])

    def hmc(self, rng: ChainRNG) -> GaugeHMC:
        s = self.card.sampler
        return GaugeHMC(self.action(), tau=s["tau"], n_steps=s["steps"], rng=rng)

    def observables(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {"action": ((), "f8"), "plaquette": ((), "f8"), **{f"wilson_{a}x{b}": ((), "f8") for a, b in self._loops()}}

    def measure(self, field: Tensor, action: Tensor) -> dict[str, Tensor]:
        return {"action": action, **self.proposal_observables(field),
                **{f"wilson_{a}x{b}": mean_wilson_loop(field, a, b) for a, b in self._loops()}}

    def proposal_observables(self, field: Tensor) -> dict[str, Tensor]:
        return {"plaquette": WilsonGaugeAction.mean_plaquette(field)}


class SU2(SUN):
    name, n = "su2", 2


class SU3(SUN):
    name, n = "su3", 3


THEORIES: dict[str, type[Theory]] = {t.name: t for t in (Phi4, U1, SU2, SU3)}


def theory_of(card: RunCard) -> Theory:
    """The adapter of ``[theory].name``."""
    return THEORIES[card.theory["name"]](card)
