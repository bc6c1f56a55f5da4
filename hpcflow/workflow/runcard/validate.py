"""Reading a run card: TOML parsed, every section normalized, every rule checked, all problems
reported together (:class:`~hpcflow.workflow.runcard.card.RunCardError`, one line each)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from hpcflow.workflow.runcard.card import OPERATOR_COMMANDS, RunCard, RunCardError
from hpcflow.workflow.runcard.fields import suggest
from hpcflow.workflow.runcard.section import Context
from hpcflow.workflow.runcard.sections import SECTIONS

__all__ = ["load_runcard", "to_toml", "validate_runcard"]


def validate_runcard(raw: dict[str, Any], source: str = "<run card>", text: str = "") -> RunCard:
    """Validate and normalize a parsed run card; raises :class:`RunCardError` listing every problem.

    A card with ``[solve]`` or ``[precond]`` is a card of the Dirac operator and needs no
    ``[theory]`` or ``[sampler]``.
    """
    ctx = Context(raw=raw, data={})
    operator = next((s for s in OPERATOR_COMMANDS if s in raw), None)
    required = {operator} if operator else {s.name for s in SECTIONS.values() if s.presence == "required"}
    for name in raw:
        if name not in SECTIONS:
            ctx.add(f"[{name}]: unknown section; expected one of {', '.join(SECTIONS)}{suggest(name, list(SECTIONS))}")
    for name, section in SECTIONS.items():
        given = raw.get(name)
        if given is None:
            if name in required:
                ctx.add(f"[{name}]: missing required section")
                continue
            if section.presence != "defaults":
                continue
            given = {}
        if not isinstance(given, dict):
            ctx.add(f"{name} = {given!r}: must be a [{name}] table")
            continue
        ctx.data[name] = section.normalize(given, ctx.problems)
    for section in SECTIONS.values():
        if section.rules is not None:
            section.rules(ctx)
    if ctx.problems:
        raise RunCardError(source, ctx.problems)
    return RunCard(source=source, data=ctx.data, text=text)


def load_runcard(path: Path | str) -> RunCard:
    """Read and validate a TOML run card file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise RunCardError(str(path), [f"cannot read the run card ({err.strerror})"]) from err
    except UnicodeDecodeError as err:
        raise RunCardError(str(path), [f"not a text file ({err.reason} at byte {err.start})"]) from err
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise RunCardError(str(path), [f"not valid TOML: {err}"]) from err
    return validate_runcard(raw, source=str(path), text=text)


def to_toml(data: dict[str, dict[str, Any]]) -> str:
    """A run card as TOML (sections of scalars and flat lists), e.g. a card derived from another."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    return "\n".join(f"[{s}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in sec.items()) for s, sec in data.items())
