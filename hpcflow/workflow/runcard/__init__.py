"""TOML run cards: parsed, validated as a whole, normalized (defaults filled in).

A run card describes one run: ``[theory]`` (phi4, u1, su2, su3), ``[sampler]`` (hmc, nmcmc),
``[output]``, and optionally ``[model]`` and ``[training]`` (flows), ``[parallel]``,
``[baseline]``, ``[analysis]``; a card with a ``[solve]`` section alone describes Dirac-operator
solves (README, "A run card"). Every problem is collected into one :class:`RunCardError`, one
line each, naming the file, the key, the value given and what is allowed. Physics couplings and
stopping criteria have no defaults on purpose; harmless knobs do.

Layout: :mod:`~hpcflow.workflow.runcard.fields` (a key's type and bounds),
:mod:`~hpcflow.workflow.runcard.section` (a section and its kinds),
:mod:`~hpcflow.workflow.runcard.sections` (one module per section, with its own rules),
:mod:`~hpcflow.workflow.runcard.validate` (the driver), :mod:`~hpcflow.workflow.runcard.card`
(the validated card).

Example card::

    [theory]
    name = "phi4"
    shape = [8, 8]
    beta = 0.576            # or m2 = ..., lamA = ... (the form of Albergo et al.)
    lam = 0.5

    [sampler]
    kind = "hmc"
    chains = 8
    trajectories = 1000
    thermalization = 100
    tau = 1.0
    steps = 10
    seed = 1

    [output]
    dir = "runs/example"
"""

from hpcflow.workflow.runcard.card import UPDATES_KEY, RunCard, RunCardError, default_run_name
from hpcflow.workflow.runcard.validate import load_runcard, to_toml, validate_runcard

__all__ = ["UPDATES_KEY", "RunCard", "RunCardError", "default_run_name", "load_runcard", "to_toml", "validate_runcard"]
