r"""The Wilson loops that drive a gradient-flow map in 2D: rectangles :math:`a\times b` in the
(0, 1) plane as closed paths (:func:`hpcflow.theories.gauge.path_links` conventions).

A loop's *link counts* :math:`n_l` are how often it traverses each link (forward +1, backward -1;
on a small torus a loop may run over a link twice). For U(1),
:math:`\theta_C = \sum_l n_l\theta_l`, so :math:`\Delta\cos\theta_C = -k_C\cos\theta_C` exactly,
with :math:`k_C = \sum_l n_l^2`: the loop's length :math:`l_C` when it visits every link once
(shared/PHYSICS.md), less when it wraps around a lattice smaller than itself.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache

from hpcflow.theories.gauge import path_links

__all__ = ["LOOPS", "Loop", "loops_named", "rectangle"]


def rectangle(a: int, b: int) -> list[int]:
    """The closed path of an ``a x b`` rectangle: ``a`` steps along 0, ``b`` along 1, back."""
    return [1] * a + [2] * b + [-1] * a + [-2] * b


@dataclass(frozen=True)
class Loop:
    """A loop shape: its name (``"1x2"``: 1 step along axis 0, 2 along axis 1) and path."""

    name: str
    path: tuple[int, ...]

    @property
    def length(self) -> int:
        """Links on the path, :math:`l_C`."""
        return len(self.path)

    @cached_property
    def links(self) -> list[tuple[int, tuple[int, int], bool]]:
        """The links of the path from the origin (:func:`~hpcflow.theories.gauge.path_links`)."""
        return path_links(list(self.path), 2)

    @lru_cache(maxsize=16)
    def laplacian_factor(self, shape: tuple[int, ...]) -> int:
        """:math:`k_C = \\sum_l n_l^2` on a periodic lattice of ``shape`` (the same at every site)."""
        counts: Counter = Counter()
        for mu, offset, forward in self.links:
            site = tuple(o % n for o, n in zip(offset, shape))
            counts[(mu, site)] += 1 if forward else -1
        return sum(n * n for n in counts.values())


LOOPS: dict[str, Loop] = {f"{a}x{b}": Loop(f"{a}x{b}", tuple(rectangle(a, b))) for a in (1, 2, 3) for b in (1, 2, 3)}
"""The rectangles up to 3x3 (``"1x1"`` is the plaquette)."""


def loops_named(names: list[str]) -> list[Loop]:
    """The loops of ``names``; an unknown name is refused with the allowed ones."""
    unknown = [n for n in names if n not in LOOPS]
    if unknown:
        raise ValueError(f"loops {unknown}: unknown; allowed: {sorted(LOOPS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"loops {names}: each loop once")
    return [LOOPS[n] for n in names]
