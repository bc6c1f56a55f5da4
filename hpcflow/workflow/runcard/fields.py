"""The keys of a run-card section: type, bounds, choices, default; checking and describing a value.

Every value that a card gives is checked here (:func:`check_value`) against its :class:`Field`,
whatever its type: a list where a string is expected, a 400-digit integer where a number is
expected, or a boolean where an integer is expected is a problem on one line, never an exception.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Field", "INT_MAX", "check_value", "closest", "describe", "suggest"]

INT_MAX = 2**63 - 1
"""Largest integer a card may give (TOML's own limit; Python would take any)."""


@dataclass(frozen=True)
class Field:
    """One key of a section: its type, bounds, choices and default (``required`` if none).

    ``kind`` is one of ``"int"``, ``"float"``, ``"str"``, ``"bool"``, ``"int_list"``,
    ``"float_list"``, ``"str_list"`` (one string or a list, of the choices where there are any).
    """

    kind: str
    required: bool = True
    default: Any = None
    minimum: float | None = None
    exclusive_min: bool = False
    maximum: float | None = None
    exclusive_max: bool = False
    choices: tuple[str, ...] = ()
    hint: str = ""
    empty: bool = False
    """A list may be empty."""

    def optional(self) -> Field:
        """The same field, not required (for keys of a kind that could not be determined)."""
        return Field(**{**self.__dict__, "required": False})


def describe(f: Field) -> str:
    """What ``f`` allows, in words: ``an integer >= 1``, ``'hmc' or 'nmcmc'``."""
    if f.choices:
        quoted = [repr(c) for c in f.choices]
        choices = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
        return f"{choices}, or a list of them" if f.kind == "str_list" else choices
    kind = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
            "int_list": "a list of integers", "float_list": "a list of numbers",
            "str_list": "a string or a list of strings"}[f.kind]
    bounds = []
    if f.minimum is not None:
        bounds.append(f"{'>' if f.exclusive_min else '>='} {f.minimum:g}")
    if f.maximum is not None:
        bounds.append(f"{'<' if f.exclusive_max else '<='} {f.maximum:g}")
    return kind + (" " + " and ".join(bounds) if bounds else "")


def _in_bounds(x: float, f: Field) -> bool:
    if f.minimum is not None and (x <= f.minimum if f.exclusive_min else x < f.minimum):
        return False
    if f.maximum is not None and (x >= f.maximum if f.exclusive_max else x > f.maximum):
        return False
    return True


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and abs(v) <= INT_MAX


def _as_float(v: Any) -> float | None:
    """``v`` as a finite float, or ``None`` (not a number, a boolean, too large, inf or nan)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        x = float(v)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return x if math.isfinite(x) else None


def check_value(value: Any, f: Field) -> tuple[Any, bool]:
    """``(normalized value, ok)`` of a given value against its field."""
    if f.kind == "int":
        return value, _is_int(value) and _in_bounds(value, f)
    if f.kind == "float":
        x = _as_float(value)
        return (value, False) if x is None else (x, _in_bounds(x, f))
    if f.kind == "str":
        return value, isinstance(value, str) and (not f.choices or value in f.choices)
    if f.kind == "bool":
        return value, isinstance(value, bool)
    if f.kind == "str_list":
        items = value if isinstance(value, list) else [value]
        return value, len(items) > 0 and all(isinstance(v, str) and (not f.choices or v in f.choices) for v in items)
    if not isinstance(value, list) or not (value or f.empty):
        return value, False
    if f.kind == "float_list":
        xs = [_as_float(v) for v in value]
        ok = all(x is not None and _in_bounds(x, f) for x in xs)
        return (xs, True) if ok else (value, False)
    return value, all(_is_int(v) and _in_bounds(v, f) for v in value)  # int_list


def closest(name: str, known: list[str]) -> str | None:
    """The known name closest to ``name`` (case-insensitive), or ``None``."""
    lower = {k.lower(): k for k in known}
    found = difflib.get_close_matches(name.lower(), list(lower), n=1)
    return lower[found[0]] if found else None


def suggest(name: str, known: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or nothing."""
    found = closest(name, known)
    return f" (did you mean {found!r}?)" if found else ""
