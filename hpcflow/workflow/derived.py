"""The cards that ``hpcflow run`` derives from one card: the samplers of ``[workflow].samplers``
beside the card's own, each a run of its own in a directory inside the card's.

===========  ====================  ===================================================================
sampler      settings              what it is
===========  ====================  ===================================================================
``hmc``      ``[baseline]``        HMC of the same theory and chains (``baseline_hmc/``), the baseline
``fhmc``     ``[fhmc]``            flow HMC with the card's flow (``fhmc/``)
``nmcmc``    ``[nmcmc]``           independence Metropolis with the card's flow (``nmcmc/``)
===========  ====================  ===================================================================

Every setting not given comes from the card's ``[sampler]`` (chains, measure_every; the number
of updates) or a default (the sections of :mod:`hpcflow.workflow.runcard.sections.derived`); each
derived run has its own seed (the card's plus 1, 2, 3), so no two runs share a random stream.
The flow samplers read the flow the card trains (``RUN_DIR/model/flow.pt``) or names
(``[sampler].model``). Derived cards are written to ``RUN_DIR/workflow/<name>.toml``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hpcflow.io.atomic import atomic_write_text
from hpcflow.workflow.model_io import flow_path
from hpcflow.workflow.runcard import RunCard, to_toml, validate_runcard
from hpcflow.workflow.runcard.sections import SECTIONS
from hpcflow.workflow.runcard.sections.workflow import SAMPLER_SECTION

__all__ = ["RUN_NAMES", "derived_card", "derived_cards", "write_card"]

RUN_NAMES = {"hmc": "baseline_hmc", "fhmc": "fhmc", "nmcmc": "nmcmc"}
SEED_OFFSET = {"hmc": 1, "fhmc": 2, "nmcmc": 3}


def _settings(card: RunCard, kind: str) -> dict[str, Any]:
    """The card's section of ``kind``'s settings with its defaults filled in."""
    section = SAMPLER_SECTION[kind]
    return SECTIONS[section].normalize(card.data.get(section, {}), [])


def _sampler(card: RunCard, kind: str) -> dict[str, Any]:
    b, s = _settings(card, kind), card.sampler
    common = {"kind": kind, "chains": s["chains"], "thermalization": b["thermalization"],
              "seed": b.get("seed", s["seed"] + SEED_OFFSET[kind]), "measure_every": s["measure_every"]}
    if kind == "nmcmc":
        return {**common, "updates": b.get("updates", card.updates), "chunk": b["chunk"], "model": str(flow_path(card)[0])}
    hmc = {"trajectories": b.get("trajectories", card.updates), "tau": b["tau"], "steps": b["steps"],
           "integrator": b["integrator"], **({"target_acceptance": b["target_acceptance"]} if "target_acceptance" in b else {})}
    return {**common, **hmc, **({"model": str(flow_path(card)[0])} if kind == "fhmc" else {})}


def derived_card(card: RunCard, kind: str) -> RunCard:
    """The validated card of sampler ``kind`` beside ``card``'s own (written by :func:`write_card`)."""
    analysis = {k: v for k, v in card.analysis.items() if k in ("t_min", "t_max")}
    if kind == "nmcmc":
        analysis["reweight"] = card.analysis["reweight"]
    data: dict[str, dict[str, Any]] = {"theory": {k: v for k, v in card.theory.items() if v is not None}}
    if kind != "hmc":
        data["model"] = card.data["model"]
    data.update({
        "sampler": _sampler(card, kind),
        "parallel": card.data["parallel"],
        "output": {"dir": str(card.run_dir / RUN_NAMES[kind]), "checkpoint_every": card.output["checkpoint_every"]},
        "analysis": analysis,
    })
    text = f"# the {kind} run beside {card.source}, written by `hpcflow run` (hpcflow.workflow.derived)\n" + to_toml(data)
    path = card.run_dir / "workflow" / f"{RUN_NAMES[kind]}.toml"
    return validate_runcard(tomllib.loads(text), source=str(path), text=text)


def derived_cards(card: RunCard) -> dict[str, RunCard]:
    """Every sampler of ``[workflow].samplers`` but the card's own, with its card."""
    return {kind: derived_card(card, kind) for kind in card.data["workflow"]["samplers"] if kind != card.sampler["kind"]}


def write_card(card: RunCard) -> Path:
    """Write a derived card to its ``source`` path (unchanged files are not rewritten)."""
    path = Path(card.source)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != card.text:
        atomic_write_text(path, card.text)
    return path
