"""The Dirac operator of an operator card (``[solve]``, ``[precond]``): one stored gauge
configuration (``configs``, ``chain``, ``step``) of a U(1) or SU(3) ensemble, the clover
coefficient and the time boundary, on the card's device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hpcflow.dirac.wilson import WilsonDirac
from hpcflow.io.store import ConfigStore
from hpcflow.theories.gauge import u1_links
from hpcflow.workflow.runcard import RunCardError

__all__ = ["Configuration", "load_configuration", "load_links"]


def load_links(path: Path, chain: int, step: int, source: str = "<run card>", section: str = "solve") -> tuple[torch.Tensor, str]:
    """Links ``(d, *L, N, N)`` of one stored configuration and the theory name."""
    if not path.is_file():
        raise RunCardError(source, [f"[{section}].configs = {str(path)!r}: no such file (run hpcflow sample on a gauge card)"])
    with ConfigStore(path) as store:
        theory = str(store.attrs.get("theory", "phi4"))
        if theory not in ("u1", "su3") or "links" not in store.names:
            raise RunCardError(source, [f"[{section}].configs: holds a {theory!r} ensemble without gauge links; "
                                        "expected a 'u1' or 'su3' store"])
        rows = store.rows("links")
        if not -rows <= step < rows or chain >= store.file["links"].shape[0]:
            raise RunCardError(source, [f"[{section}]: (chain {chain}, step {step}) is outside the {rows} stored steps"])
        field = torch.from_numpy(store.file["links"][chain, step % rows])
    return (u1_links(field[None])[0] if theory == "u1" else field), theory


class Configuration:
    """The gauge configuration of an operator card and the operators on it.

    Arguments:
        s: the card's ``[solve]`` or ``[precond]`` section.
        source: the card (for errors); section: its name; device: where the links live.
    """

    def __init__(self, s: dict[str, Any], source: str, section: str, device: torch.device) -> None:
        self.settings, self.source = s, source
        links, self.theory = load_links(Path(s["configs"]), s["chain"], s["step"], source, section)
        self.links = links.to(device)
        self.dim, self.colours = self.links.shape[0], self.links.shape[-1]
        self.spin = 4 if self.dim == 4 else 2
        self.lattice = tuple(self.links.shape[1:-2])

    def operator(self, mass: float, dtype: torch.dtype | None = None) -> WilsonDirac:
        """The Wilson(-clover) operator at ``mass`` (in the links' dtype, or ``dtype``)."""
        links = self.links if dtype is None else self.links.to(dtype)
        return WilsonDirac(links, mass=mass, csw=self.settings["csw"], antiperiodic_time=self.settings["antiperiodic_time"])

    def describe(self) -> str:
        s = self.settings
        return f"{self.theory} {'x'.join(map(str, self.lattice))}, configuration {s['chain']}/{s['step']} of {s['configs']}"


def load_configuration(s: dict[str, Any], source: str, section: str, device: torch.device) -> Configuration:
    """The :class:`Configuration` of an operator card's section."""
    return Configuration(s, source, section, device)
