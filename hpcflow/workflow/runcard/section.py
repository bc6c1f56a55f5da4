"""One section of a run card: its keys (per kind, where a key selects a kind) and its own rules.

A :class:`Section` normalizes what a card gives for it (:meth:`Section.normalize`: unknown keys,
bad values, missing required keys, defaults filled in) and then checks the rules that involve
several keys, of this section or of the sections it depends on (:attr:`Section.rules`, called
with the :class:`Context` of the whole card). Each section lives in its own module of
:mod:`hpcflow.workflow.runcard.sections`.

Where a key selects the kind of a section (``[sampler].kind``, ``[theory].name``), an unknown
kind is reported once, on that key, and the other keys are checked against the closest kind
(``"HMC"`` against ``"hmc"``), so that one wrong value does not bury the real typos of the card
under lines about keys that the intended kind has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from hpcflow.workflow.runcard.fields import Field, check_value, closest, describe, suggest

__all__ = ["Context", "Section"]


@dataclass
class Context:
    """The card while it is validated: what was given (``raw``), what is normalized so far
    (``data``, one dict per section), and the problems found (one line each)."""

    raw: dict[str, Any]
    data: dict[str, dict[str, Any]]
    problems: list[str] = field(default_factory=list)

    def given(self, section: str) -> bool:
        """Whether the card has the section at all."""
        return section in self.raw

    def section(self, name: str) -> dict[str, Any]:
        """The normalized section (empty if absent or not a table)."""
        return self.data.get(name, {})

    def bad(self, section: str, *keys: str) -> bool:
        """Whether one of ``keys`` of ``section`` already has a problem."""
        return any(p.startswith(f"[{section}].{k} =") or p.startswith(f"[{section}].{k}:") for p in self.problems for k in keys)

    def add(self, problem: str) -> None:
        self.problems.append(problem)


Rules = Callable[[Context], None]


@dataclass(frozen=True)
class Section:
    """A section of the run card.

    Attributes:
        name: the TOML table.
        fields: keys every kind has.
        presence: ``"required"`` (a sampling card must have it), ``"optional"`` (absent unless
            given) or ``"defaults"`` (filled in with its defaults when absent).
        kind_key: the key that selects the kind (``None``: one kind).
        kinds: the keys of each kind, beside :attr:`fields`.
        default_kind: the kind of a section that does not name one (``None``: it must).
        rules: checks of several keys, run once every section is normalized.
    """

    name: str
    fields: dict[str, Field]
    presence: str = "defaults"
    kind_key: str | None = None
    kinds: dict[str, dict[str, Field]] = field(default_factory=dict)
    rules: Rules | None = None
    default_kind: str | None = None

    def fields_for(self, given: dict[str, Any]) -> dict[str, Field]:
        """The keys allowed for the kind that ``given`` selects; for an unknown kind, those of the
        closest kind (or of every kind), all optional: its absent keys are not reported."""
        if self.kind_key is None:
            return self.fields
        kind = given.get(self.kind_key, self.default_kind)
        if isinstance(kind, str) and kind in self.kinds:
            return {**self.fields, **self.kinds[kind]}
        guess = closest(kind, list(self.kinds)) if isinstance(kind, str) else None
        extra = self.kinds[guess] if guess else {k: f for kind_fields in self.kinds.values() for k, f in kind_fields.items()}
        return {**self.fields, **{k: f.optional() for k, f in extra.items()}}

    def normalize(self, given: dict[str, Any], problems: list[str]) -> dict[str, Any]:
        """The section with defaults filled in; each problem of it appended to ``problems``."""
        fields = self.fields_for(given)
        out: dict[str, Any] = {}
        for key, value in given.items():
            if key not in fields:
                problems.append(f"[{self.name}].{key}: unknown key; allowed: {', '.join(fields)}{suggest(key, list(fields))}")
                continue
            norm, ok = check_value(value, fields[key])
            if ok:
                out[key] = norm
                continue
            hint = suggest(value, list(fields[key].choices)) if fields[key].choices and isinstance(value, str) else ""
            problems.append(f"[{self.name}].{key} = {value!r}: expected {describe(fields[key])}{hint}")
        for key, f in fields.items():
            if key in out or key in given:
                continue
            if f.required:
                problems.append(f'[{self.name}]: missing required key "{key}"' + (f" ({f.hint})" if f.hint else ""))
            elif f.default is not None:
                out[key] = f.default
        return out
