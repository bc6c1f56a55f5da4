r"""The Wilson loops that drive a gradient-flow map in 2D, as closed paths in the (0, 1) plane
(:func:`hpcflow.theories.gauge.path_links` conventions: step ``+1`` is forward along axis 0).

- Rectangles ``"axb"`` (``a`` steps along axis 0, ``b`` along axis 1), ``a, b <= 3``; ``"1x1"``
  is the plaquette.
- The boundaries of the other fixed polyominoes (cell sets up to translation, rotations and
  reflections counted apart) traced counterclockwise, named by their cells ``"cells:00.10.01"``
  (cells ``(i, j)``: ``i`` along axis 0); simple closed paths that visit each link once.
- The doubly wound plaquette ``"1x1_twice"`` and the figure-eights ``"fig8_0"`` / ``"fig8_1"``
  (a plaquette and its neighbour along axis 0 / 1 with opposite orientations,
  :math:`\theta_P(x) - \theta_P(x+\hat\mu)` in U(1)), which run over a link twice: the loops
  of Luscher's next-to-leading-order U(1) map, and for SU(N) (:mod:`.sun`) the loops that
  reach beyond the fundamental plaquette, :math:`\mathrm{tr}\,P^2 = \chi_S(P) - \chi_A(P)`.

Products of traces (:class:`TraceProduct`, SU(N) only): ``"1x1*1x1_0"`` is
:math:`\mathrm{Re}[\mathrm{tr}\,P(x)\,\mathrm{tr}\,P(x+\hat 0)]` and ``"1x1*1x1bar_0"``
:math:`\mathrm{Re}[\mathrm{tr}\,P(x)\,\overline{\mathrm{tr}\,P(x+\hat 0)}]` (and ``_1`` along
axis 1): the neighbouring-plaquette terms of Luscher's next-to-leading-order SU(N) map, which in
U(1) would be the single loops of the summed angles (``"2x1"``, ``"fig8_0"``).

Families (:data:`FAMILIES`) name loop lists for a run card: ``"rectangles"``, ``"perimeter8"``
(the 10 polyomino boundaries of at most 8 links), ``"perimeter10"`` (38 of at most 10 links),
``"perimeter8_twice"`` (``"perimeter8"`` with the three loops that run over a link twice) and
``"perimeter8_reps"`` (that and the plaquette and the 1x2 rectangles in the three
representations of :data:`REPRESENTATIONS`, 22 loops) and ``"luscher_nlo"`` (the 12 terms of
Luscher's SU(N) map to next-to-leading order, :mod:`.luscher`).

A loop's *link counts* :math:`n_l` are how often it traverses each link (forward +1, backward
-1). For U(1), :math:`\theta_C = \sum_l n_l\theta_l`, so :math:`\Delta\cos\theta_C = -k_C\cos\theta_C`
exactly, with :math:`k_C = \sum_l n_l^2`: the length :math:`l_C` when the loop visits every link
once (shared/PHYSICS.md), otherwise more (a link run over twice the same way) or less (forward
and back, e.g. a loop wrapped around a lattice smaller than itself).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache

from hpcflow.theories.gauge import path_links

__all__ = ["FAMILIES", "LOOPS", "PRODUCTS", "REPRESENTATIONS", "Loop", "TraceProduct", "loops_named", "polyominoes", "rectangle"]


def rectangle(a: int, b: int) -> list[int]:
    """The closed path of an ``a x b`` rectangle: ``a`` steps along 0, ``b`` along 1, back."""
    return [1] * a + [2] * b + [-1] * a + [-2] * b


@dataclass(frozen=True)
class Loop:
    """A loop shape: its name, its closed path and the representation of its trace (SU(N) only:
    :data:`REPRESENTATIONS`)."""

    name: str
    path: tuple[int, ...]
    rep: str = "fund"

    @property
    def length(self) -> int:
        """Links on the path, :math:`l_C`."""
        return len(self.path)

    @cached_property
    def links(self) -> list[tuple[int, tuple[int, int], bool]]:
        """The links of the path from the origin (:func:`~hpcflow.theories.gauge.path_links`)."""
        return path_links(list(self.path), 2)

    def _sites(self, shape: tuple[int, ...]) -> list[tuple[int, tuple[int, ...], bool]]:
        return [(mu, tuple(o % n for o, n in zip(offset, shape)), forward) for mu, offset, forward in self.links]

    @lru_cache(maxsize=16)
    def laplacian_factor(self, shape: tuple[int, ...]) -> int:
        """:math:`k_C = \\sum_l n_l^2` on a periodic lattice of ``shape`` (the same at every site)."""
        counts: Counter = Counter()
        for mu, site, forward in self._sites(shape):
            counts[(mu, site)] += 1 if forward else -1
        return sum(n * n for n in counts.values())

    @lru_cache(maxsize=16)
    def max_visits(self, shape: tuple[int, ...]) -> int:
        """How often the path runs over its most visited link (either way) on a lattice of ``shape``."""
        return max(Counter((mu, site) for mu, site, _ in self._sites(shape)).values())

    @lru_cache(maxsize=16)
    def repeated_links(self, shape: tuple[int, ...]) -> tuple[tuple[int, int, bool, bool], ...]:
        """``(j, k, forward_j, forward_k)``, ``j < k``, for each link the path runs over twice on a
        lattice of ``shape`` (positions on the path and directions); a link run over more often
        is an error."""
        positions: dict[tuple[int, tuple[int, ...]], list[int]] = {}
        sites = self._sites(shape)
        for j, (mu, site, _) in enumerate(sites):
            positions.setdefault((mu, site), []).append(j)
        if any(len(p) > 2 for p in positions.values()):
            raise ValueError(f"loop {self.name!r} runs over a link more than twice on a {'x'.join(map(str, shape))} lattice")
        return tuple((j, k, sites[j][2], sites[k][2]) for j, k in (p for p in positions.values() if len(p) == 2))


@dataclass(frozen=True)
class TraceProduct:
    r""":math:`\mathrm{Re}[\mathrm{tr}\,W_A(x)\,\mathrm{tr}\,W_B(x + s)]`, the second trace
    conjugated if ``conjugate``: a product of the traces of two loops (fundamental, each visiting
    each link once) at a fixed separation ``shift``."""

    name: str
    first: Loop
    second: Loop
    shift: tuple[int, int]
    conjugate: bool

    @property
    def length(self) -> int:
        """Links on both paths."""
        return self.first.length + self.second.length

    @lru_cache(maxsize=16)
    def shared_links(self, shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        """``(j, k)`` for each link on the ``j``-th step of the first loop and the ``k``-th of
        the second on a lattice of ``shape``; a factor that runs over a link twice is an error."""
        for loop in (self.first, self.second):
            if loop.max_visits(shape) > 1:
                raise ValueError(f"loop {self.name!r}: its factor {loop.name!r} runs over a link twice on a "
                                 f"{'x'.join(map(str, shape))} lattice")
        first = self.first._sites(shape)
        second = [(mu, tuple((o + s) % n for o, s, n in zip(site, self.shift, shape)), fw)
                  for mu, site, fw in self.second._sites(shape)]
        return tuple((j, k) for j, a in enumerate(first) for k, b in enumerate(second) if a[:2] == b[:2])

    def max_visits(self, shape: tuple[int, ...]) -> int:
        """How often a factor runs over its most visited link."""
        return max(self.first.max_visits(shape), self.second.max_visits(shape))


def _boundary(cells: frozenset[tuple[int, int]]) -> tuple[int, ...]:
    """The counterclockwise boundary of a simply connected polyomino without pinch points."""
    outgoing: dict[tuple[int, int], tuple[int, tuple[int, int]]] = {}
    for i, j in cells:
        edges = (((i, j - 1), (i, j), 1, (i + 1, j)), ((i + 1, j), (i + 1, j), 2, (i + 1, j + 1)),
                 ((i, j + 1), (i + 1, j + 1), -1, (i, j + 1)), ((i - 1, j), (i, j + 1), -2, (i, j)))
        for neighbour, start, step, end in edges:
            if neighbour not in cells:
                if start in outgoing:
                    raise ValueError(f"polyomino {sorted(cells)}: pinch point at {start}")
                outgoing[start] = (step, end)
    vertex = min(outgoing)
    path = []
    while True:
        step, vertex = outgoing[vertex]
        path.append(step)
        if vertex == min(outgoing):
            break
    if len(path) != len(outgoing):
        raise ValueError(f"polyomino {sorted(cells)}: its boundary is not one closed path")
    return tuple(path)


def polyominoes(max_cells: int) -> list[frozenset[tuple[int, int]]]:
    """Every fixed polyomino of at most ``max_cells`` cells, translated to touch both axes."""

    def normal(cells: set[tuple[int, int]]) -> frozenset[tuple[int, int]]:
        i0, j0 = min(c[0] for c in cells), min(c[1] for c in cells)
        return frozenset((i - i0, j - j0) for i, j in cells)

    found = {normal({(0, 0)})}
    layer = set(found)
    for _ in range(max_cells - 1):
        layer = {normal(set(p) | {(i + di, j + dj)}) for p in layer for i, j in p
                 for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)) if (i + di, j + dj) not in p}
        found |= layer
    return sorted(found, key=lambda p: (len(p), sorted(p)))


def _polyomino_loop(cells: frozenset[tuple[int, int]]) -> Loop:
    a, b = max(c[0] for c in cells) + 1, max(c[1] for c in cells) + 1
    if len(cells) == a * b:
        return Loop(f"{a}x{b}", tuple(rectangle(a, b)))
    return Loop("cells:" + ".".join(f"{i}{j}" for i, j in sorted(cells)), _boundary(cells))


def _perimeter(max_links: int) -> list[Loop]:
    loops = [_polyomino_loop(p) for p in polyominoes(max_links // 2 + 1)]
    return sorted((lp for lp in loops if lp.length <= max_links), key=lambda lp: (lp.length, lp.name))


_TWICE = [Loop("1x1_twice", tuple(rectangle(1, 1) * 2)), Loop("fig8_0", (1, 2, 1, -2, -1, 2, -1, -2)),
          Loop("fig8_1", (1, 2, -1, 2, 1, -2, -1, -2))]

_RECTANGLES = [Loop(f"{a}x{b}", tuple(rectangle(a, b))) for a in (1, 2, 3) for b in (1, 2, 3)]
_PERIMETER10 = _perimeter(10)

_PLAQUETTE = _RECTANGLES[0]
PRODUCTS: dict[str, TraceProduct] = {p.name: p for p in (
    TraceProduct(f"1x1*1x1{'bar' if conjugate else ''}_{mu}", _PLAQUETTE, _PLAQUETTE, (1 - mu, mu), conjugate)
    for conjugate in (False, True) for mu in (0, 1))}
"""The products of the traces of neighbouring plaquettes, by name."""

LOOPS: dict[str, Loop | TraceProduct] = {lp.name: lp for lp in (*_RECTANGLES, *_PERIMETER10, *_TWICE, *PRODUCTS.values())}
"""Every named loop (and product of loops)."""

REPRESENTATIONS = ("sym", "anti", "adj")
"""The SU(N) representations a loop's trace may take beyond the fundamental (``"1x1@adj"``): the
symmetric and antisymmetric two-index ones and the adjoint (:mod:`.sun`)."""

_PERIMETER8 = [lp.name for lp in _PERIMETER10 if lp.length <= 8]
_PERIMETER8_TWICE = _PERIMETER8 + [lp.name for lp in _TWICE]

FAMILIES: dict[str, list[str]] = {
    "rectangles": [lp.name for lp in _RECTANGLES],
    "perimeter8": _PERIMETER8,
    "perimeter8_twice": _PERIMETER8_TWICE,
    "perimeter10": [lp.name for lp in _PERIMETER10],
    "perimeter8_reps": _PERIMETER8_TWICE + [f"{name}@{rep}" for name in ("1x1", "1x2", "2x1") for rep in REPRESENTATIONS],
    "luscher_nlo": ["1x1", "1x1@sym", "1x1@anti", "1x1@adj", "1x2", "2x1", "fig8_0", "fig8_1", *PRODUCTS],
}
"""Named loop lists for ``[model].loops``."""


def loops_named(names: list[str] | str) -> list[Loop | TraceProduct]:
    """The loops of ``names`` (a list of loop names, or a family of :data:`FAMILIES`); ``"name@rep"``
    takes the trace of loop ``name`` in representation ``rep`` of :data:`REPRESENTATIONS`; an
    unknown name or representation is refused with the allowed ones."""
    if isinstance(names, str):
        if names not in FAMILIES:
            raise ValueError(f"loops = {names!r}: unknown family; allowed: {sorted(FAMILIES)} or a list of loop names")
        names = FAMILIES[names]
    unknown = [n for n in names if n.partition("@")[0] not in LOOPS]
    if unknown:
        raise ValueError(f"loops {unknown}: unknown; allowed: {sorted(LOOPS, key=lambda n: (LOOPS[n].length, n))}, "
                         f"each optionally with @rep, rep one of {list(REPRESENTATIONS)}")
    reps = [n for n in names if "@" in n and n.partition("@")[2] not in REPRESENTATIONS]
    if reps:
        raise ValueError(f"loops {reps}: unknown representation; allowed: {list(REPRESENTATIONS)}")
    products = [n for n in names if "@" in n and n.partition("@")[0] in PRODUCTS]
    if products:
        raise ValueError(f"loops {products}: a product of traces is taken in the fundamental representation only")
    if len(set(names)) != len(names):
        raise ValueError(f"loops {names}: each loop once")
    loops = []
    for name in names:
        base, _, rep = name.partition("@")
        loops.append(Loop(name, LOOPS[base].path, rep) if rep else LOOPS[base])
    return loops
