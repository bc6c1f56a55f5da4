"""A validated run card (:class:`RunCard`) and the error that lists every problem of a bad one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hpcflow.parallel.device import DeviceUnavailable, select_device
from hpcflow.parallel.env import ClusterEnv
from hpcflow.theories.phi4 import Phi4Action

__all__ = ["OPERATOR_COMMANDS", "UPDATES_KEY", "RunCard", "RunCardError", "default_run_name"]

UPDATES_KEY = {"hmc": "trajectories", "fhmc": "trajectories", "nmcmc": "updates"}
OPERATOR_COMMANDS = {"solve": "hpcflow solve", "precond": "hpcflow precond train"}
"""Cards of the Dirac operator (no theory or sampler) and the command that runs each."""
"""The key of ``[sampler]`` that counts production updates, per kind."""


class RunCardError(ValueError):
    """Every problem of a run card, one line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {p}" for p in problems]
        head = f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in {source}"
        super().__init__("\n  ".join([head, *lines]) if len(problems) > 1 else lines[0])


@dataclass(frozen=True)
class RunCard:
    """A validated run card: ``data`` holds every section with defaults filled in."""

    source: str
    data: dict[str, dict[str, Any]]
    text: str = field(default="", compare=False)

    @property
    def theory(self) -> dict[str, Any]:
        return self.data["theory"]

    @property
    def sampler(self) -> dict[str, Any]:
        return self.data["sampler"]

    @property
    def output(self) -> dict[str, Any]:
        return self.data["output"]

    @property
    def analysis(self) -> dict[str, Any]:
        return self.data["analysis"]

    @property
    def operator_section(self) -> str | None:
        """``"solve"`` or ``"precond"`` for a card of the Dirac operator (no sampler), else ``None``."""
        return next((s for s in OPERATOR_COMMANDS if s in self.data), None)

    def refuse_operator_card(self, what: str) -> None:
        """Raise the one-line error of an operator card given to ``what`` (a sampling command)."""
        section = self.operator_section
        if section is not None:
            raise RunCardError(self.source, [f"[{section}]: a {section} card is not for {what}; run "
                                             f"'{OPERATOR_COMMANDS[section]} CARD'"])

    @property
    def updates(self) -> int:
        """Production updates per chain (``trajectories`` for HMC, ``updates`` for NMCMC)."""
        return self.sampler[UPDATES_KEY[self.sampler["kind"]]]

    @property
    def run_dir(self) -> Path:
        """The run directory (``[output].dir``, else derived from the physics parameters)."""
        return Path(self.output["dir"])

    def device(self) -> torch.device:
        """This rank's device for ``[parallel].device`` (:func:`hpcflow.parallel.device.select_device`
        with the node-local rank of the launcher); a GPU the machine does not have is a card error."""
        try:
            return select_device(self.data["parallel"]["device"], ClusterEnv.detect().local_rank)
        except DeviceUnavailable as err:
            raise RunCardError(self.source, [str(err)]) from None

    def action(self) -> Phi4Action:
        """The phi^4 action described by ``[theory]`` (see :mod:`hpcflow.workflow.theories` for all)."""
        return Phi4Action(beta=self.theory["beta"], lam=self.theory["lam"])

    def canonical(self) -> str:
        """Canonical JSON of the normalized card: equal for equal runs."""
        return json.dumps(self.data, sort_keys=True)


def default_run_name(theory: dict[str, Any], sampler: dict[str, Any]) -> str:
    """Run directory name from the physics parameters, e.g. ``phi4_8x8_b0.576_l0.5_hmc_s1``."""
    shape = "x".join(str(n) for n in theory["shape"])
    lam = f"_l{theory['lam']:.6g}" if "lam" in theory else ""
    return f"{theory['name']}_{shape}_b{theory['beta']:.6g}{lam}_{sampler['kind']}_s{sampler['seed']}"
