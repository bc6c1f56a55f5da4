"""TOML run cards: parsed, validated as a whole, normalized (defaults filled in).

A run card describes one run: ``[theory]`` (phi4, u1, su2, su3), ``[sampler]`` (hmc, nmcmc),
``[output]``, and optionally ``[model]`` and ``[training]`` (flows), ``[analysis]``; a card
with a ``[solve]`` section alone describes Dirac-operator solves (README, "A run card"). Every problem is collected into one :class:`RunCardError`, one line each,
naming the file, the key, the value given and what is allowed. Physics couplings and stopping
criteria have no defaults on purpose; harmless knobs do.

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

from __future__ import annotations

import difflib
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcflow.theories.phi4 import Phi4Action

__all__ = ["RunCard", "RunCardError", "load_runcard", "to_toml", "validate_runcard"]


class RunCardError(ValueError):
    """Every problem of a run card, one line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {p}" for p in problems]
        head = f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in {source}"
        super().__init__("\n  ".join([head, *lines]) if len(problems) > 1 else lines[0])


@dataclass(frozen=True)
class Field:
    """One key of a section: its type, bounds, choices and default (``required`` if none)."""

    kind: str  # "int", "float", "str", "bool", "int_list", "str_list"
    required: bool = True
    default: Any = None
    minimum: float | None = None
    exclusive_min: bool = False
    maximum: float | None = None
    exclusive_max: bool = False
    choices: tuple[str, ...] = ()
    hint: str = ""


INT_MAX = 2**63 - 1

THEORY_COMMON: dict[str, Field] = {
    "name": Field("str", choices=("phi4", "u1", "su2", "su3")),
    "shape": Field("int_list", minimum=2, hint="e.g. shape = [8, 8]"),
}
_GAUGE = {
    "beta": Field("float", minimum=0.0, exclusive_min=True),
    "start": Field("str", required=False, default="cold", choices=("cold", "hot")),
}
THEORY_KINDS: dict[str, dict[str, Field]] = {
    "phi4": {
        "beta": Field("float", required=False),
        "lam": Field("float", required=False, minimum=0.0),
        "m2": Field("float", required=False),
        "lamA": Field("float", required=False, minimum=0.0),
    },
    "u1": _GAUGE,
    "su2": _GAUGE,
    "su3": _GAUGE,
}

SAMPLER_COMMON: dict[str, Field] = {
    "kind": Field("str", choices=("hmc", "nmcmc")),
    "chains": Field("int", minimum=1),
    "thermalization": Field("int", minimum=0),
    "seed": Field("int", minimum=0, maximum=INT_MAX),
    "measure_every": Field("int", required=False, default=1, minimum=1),
}
SAMPLER_KINDS: dict[str, dict[str, Field]] = {
    "hmc": {
        "trajectories": Field("int", minimum=1),
        "tau": Field("float", minimum=0.0, exclusive_min=True),
        "steps": Field("int", minimum=1),
        "integrator": Field("str", required=False, default="leapfrog", choices=("leapfrog", "omelyan")),
        "target_acceptance": Field(
            "float", required=False, minimum=0.0, exclusive_min=True, maximum=1.0, exclusive_max=True
        ),
    },
    "nmcmc": {
        "updates": Field("int", minimum=1),
        "chunk": Field("int", required=False, default=64, minimum=1),
        "model": Field("str", required=False),
    },
}
UPDATES_KEY = {"hmc": "trajectories", "nmcmc": "updates"}

SCHEMA: dict[str, dict[str, Field]] = {
    "theory": THEORY_COMMON,
    "sampler": SAMPLER_COMMON,
    "model": {
        "coupling": Field("str_list", choices=("affine", "spline")),
        "layers": Field("int", minimum=1),
        "hidden": Field("int_list", minimum=1, hint="e.g. hidden = [16, 16]"),
        "kernel": Field("int", minimum=1),
        "activation": Field("str", required=False, default="leaky_relu", choices=("leaky_relu", "tanh", "gelu", "silu")),
        "equivariant": Field("bool", required=False, default=True),
        "rescaling": Field("bool", required=False, default=False),
        "fourier": Field("bool", required=False, default=False),
        "bins": Field("int", required=False, default=8, minimum=2),
        "bound": Field("float", required=False, default=5.0, minimum=0.0, exclusive_min=True),
    },
    "training": {
        "steps": Field("int", minimum=1),
        "batch": Field("int", minimum=1),
        "shard": Field("int", required=False, minimum=1),
        "lr": Field("float", minimum=0.0, exclusive_min=True),
        "seed": Field("int", minimum=0, maximum=INT_MAX),
        "schedule": Field("str", required=False, default="cosine", choices=("cosine", "constant")),
        "clip": Field("float", required=False, default=1.0, minimum=0.0, exclusive_min=True),
        "dtype": Field("str", required=False, default="float32", choices=("float32", "float64")),
        "checkpoint_every": Field("int", required=False, default=100, minimum=1),
        "log_every": Field("int", required=False, default=10, minimum=1),
        "max_rollbacks": Field("int", required=False, default=20, minimum=1),
        "init": Field("str", required=False, hint='e.g. init = "runs/phi4_L8/model/flow.pt"'),
    },
    "parallel": {
        "backend": Field("str", required=False, default="ddp", choices=("ddp", "horovod", "serial")),
        "io": Field("str", required=False, default="auto", choices=("auto", "mpio", "per-rank")),
    },
    "output": {
        "dir": Field("str", required=False),
        "checkpoint_every": Field("int", required=False, default=100, minimum=1),
    },
    "solve": {
        "configs": Field("str", hint='e.g. configs = "runs/su3_16x8x8x8_b5.8/configs.h5"'),
        "chain": Field("int", required=False, default=0, minimum=0),
        "step": Field("int", required=False, default=-1),
        "masses": Field("float_list", hint="e.g. masses = [-0.5, -0.45, -0.4]"),
        "csw": Field("float", required=False, default=0.0, minimum=0.0),
        "antiperiodic_time": Field("bool", required=False, default=True),
        "solver": Field("str", choices=("fgmres", "bicgstab", "cg")),
        "tol": Field("float", minimum=0.0, exclusive_min=True, hint="e.g. tol = 1e-8"),
        "maxiter": Field("int", minimum=1),
        "restart": Field("int", required=False, default=30, minimum=1),
        "sources": Field("int", required=False, default=2, minimum=1),
        "seed": Field("int", minimum=0, maximum=INT_MAX),
        "dir": Field("str"),
    },
    "baseline": {  # the HMC baseline that `hpcflow run` samples beside an NMCMC card
        "trajectories": Field("int", required=False, minimum=1),
        "thermalization": Field("int", required=False, default=100, minimum=0),
        "tau": Field("float", required=False, default=1.0, minimum=0.0, exclusive_min=True),
        "steps": Field("int", required=False, default=10, minimum=1),
        "integrator": Field("str", required=False, default="omelyan", choices=("leapfrog", "omelyan")),
        "target_acceptance": Field(
            "float", required=False, default=0.9, minimum=0.0, exclusive_min=True, maximum=1.0, exclusive_max=True
        ),
        "seed": Field("int", required=False, minimum=0, maximum=INT_MAX),
    },
    "analysis": {
        "t_min": Field("int", required=False, default=1, minimum=1),
        "reweight": Field("bool", required=False, default=False),
    },
}
REQUIRED_SECTIONS = ("theory", "sampler")
OPTIONAL_SECTIONS = ("model", "training", "solve", "baseline")  # absent unless given; the others get their defaults


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
    def updates(self) -> int:
        """Production updates per chain (``trajectories`` for HMC, ``updates`` for NMCMC)."""
        return self.sampler[UPDATES_KEY[self.sampler["kind"]]]

    @property
    def run_dir(self) -> Path:
        """The run directory (``[output].dir``, else derived from the physics parameters)."""
        return Path(self.output["dir"])

    def action(self) -> Phi4Action:
        """The phi^4 action described by ``[theory]`` (see :mod:`hpcflow.workflow.theories` for all)."""
        return Phi4Action(beta=self.theory["beta"], lam=self.theory["lam"])

    def canonical(self) -> str:
        """Canonical JSON of the normalized card: equal for equal runs."""
        return json.dumps(self.data, sort_keys=True)


def _describe(f: Field) -> str:
    if f.choices:
        choices = " or ".join(repr(c) for c in f.choices)
        return f"{choices}, or a list of them" if f.kind == "str_list" else choices
    kind = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
            "int_list": "a list of integers", "float_list": "a list of numbers"}[f.kind]
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


def _check(value: Any, f: Field) -> tuple[Any, bool]:
    """``(normalized value, ok)``."""
    if f.kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and _in_bounds(value, f)
        return value, ok
    if f.kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return (float(value), ok and _in_bounds(float(value), f)) if ok else (value, False)
    if f.kind == "str":
        ok = isinstance(value, str) and (not f.choices or value in f.choices)
        return value, ok
    if f.kind == "bool":
        return value, isinstance(value, bool)
    if f.kind == "float_list":
        ok = isinstance(value, list) and len(value) > 0 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
        )
        return ([float(v) for v in value], True) if ok else (value, False)
    if f.kind == "str_list":
        items = value if isinstance(value, list) else [value]
        ok = len(items) > 0 and all(isinstance(v, str) and v in f.choices for v in items)
        return value, ok
    ok = (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(v, int) and not isinstance(v, bool) and _in_bounds(v, f) for v in value)
    )
    return value, ok


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_writable(path: Path) -> str | None:
    """Why ``path`` cannot serve as an output directory, or ``None``."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def _theory_checks(t: dict[str, Any], problems: list[str]) -> None:
    has_b = "beta" in t or "lam" in t
    has_a = "m2" in t or "lamA" in t
    if has_b and has_a:
        problems.append("[theory]: give either beta and lam, or m2 and lamA, not both")
        return
    if has_a:
        if "m2" not in t or "lamA" not in t:
            problems.append("[theory]: the (m2, lamA) form needs both m2 and lamA")
            return
        try:
            action = Phi4Action.from_m2_lam(t["m2"], t["lamA"])
        except ValueError as err:
            problems.append(f"[theory].m2 = {t['m2']}: {err}")
            return
        t["beta"], t["lam"] = action.beta, action.lam
    elif "beta" not in t or "lam" not in t:
        problems.append('[theory]: missing required key "beta" and/or "lam" (e.g. beta = 0.576, lam = 0.5)')
        return
    d = len(t.get("shape", [0, 0]))
    if t["lam"] == 0 and not abs(t["beta"]) < 1.0 / d:
        problems.append(
            f"[theory].beta = {t['beta']}: with lam = 0 the free theory in d = {d} is stable only for "
            f"|beta| < 1/d = {1.0 / d:g}"
        )


def validate_runcard(raw: dict[str, Any], source: str = "<run card>", text: str = "") -> RunCard:
    """Validate and normalize a parsed run card; raises :class:`RunCardError` listing every problem."""
    problems: list[str] = []
    data: dict[str, dict[str, Any]] = {}
    required = ("solve",) if "solve" in raw else REQUIRED_SECTIONS
    for section in raw:
        if section not in SCHEMA:
            problems.append(
                f"[{section}]: unknown section; expected one of {', '.join(SCHEMA)}{_suggest(section, list(SCHEMA))}"
            )
    for section, fields in SCHEMA.items():
        given = raw.get(section, {})
        if section == "sampler" and isinstance(given, dict) and given.get("kind") in SAMPLER_KINDS:
            fields = {**SAMPLER_COMMON, **SAMPLER_KINDS[given["kind"]]}
        if section == "theory" and isinstance(given, dict) and given.get("name") in THEORY_KINDS:
            fields = {**THEORY_COMMON, **THEORY_KINDS[given["name"]]}
        if not isinstance(given, dict):
            problems.append(f"{section} = {given!r}: must be a [{section}] table")
            continue
        if section not in raw:
            if section in required:
                problems.append(f"[{section}]: missing required section")
                continue
            if section in OPTIONAL_SECTIONS or section in REQUIRED_SECTIONS:
                continue  # absent; only sections of harmless defaults are filled in
        out: dict[str, Any] = {}
        for key, value in given.items():
            if key not in fields:
                problems.append(
                    f"[{section}].{key}: unknown key; allowed: {', '.join(fields)}{_suggest(key, list(fields))}"
                )
                continue
            norm, ok = _check(value, fields[key])
            if ok:
                out[key] = norm
            else:
                problems.append(f"[{section}].{key} = {value!r}: expected {_describe(fields[key])}")
        for key, f in fields.items():
            if key in out or key in given:
                continue
            if f.required:
                hint = f" ({f.hint})" if f.hint else ""
                problems.append(f'[{section}]: missing required key "{key}"{hint}')
            elif f.default is not None:
                out[key] = f.default
        data[section] = out
    theory, sampler, output = data.get("theory", {}), data.get("sampler", {}), data.get("output", {})
    if "shape" in theory and not 1 <= len(theory["shape"]) <= 4:
        problems.append(f"[theory].shape = {theory['shape']}: expected 1 to 4 extents")
    coupling_problem = any(p.startswith(f"[theory].{k} =") for p in problems for k in ("beta", "lam", "m2", "lamA"))
    if theory.get("name") == "phi4" and not coupling_problem:
        _theory_checks(theory, problems)
    if theory.get("name") in ("u1", "su2", "su3"):
        if theory["name"] == "u1" and len(theory.get("shape", [0, 0])) != 2:
            problems.append(f"[theory].shape = {theory['shape']}: the U(1) theory is two-dimensional (2 extents)")
        if sampler.get("kind") not in (None, "hmc"):
            problems.append(f"[sampler].kind = {sampler['kind']!r}: gauge theories are sampled with 'hmc'")
        if "model" in raw:
            problems.append("[model]: flows are implemented for phi4 only")
        if sampler.get("kind") == "hmc" and theory["name"] != "u1" and sampler.get("integrator") == "omelyan":
            problems.append("[sampler].integrator = 'omelyan': SU(N) HMC has the leapfrog integrator only")
    for key in ("m2", "lamA"):
        theory.pop(key, None)
    updates_key = UPDATES_KEY.get(sampler.get("kind", ""), "")
    if updates_key in sampler and sampler[updates_key] % sampler["measure_every"]:
        problems.append(
            f"[sampler].{updates_key} = {sampler[updates_key]}: must be a multiple of "
            f"measure_every = {sampler['measure_every']}"
        )
    model = data.get("model", {})
    if "model" in raw and "shape" in theory:
        odd = [i for i, n in enumerate(theory["shape"]) if n % 2]
        if len(theory["shape"]) != 2:
            problems.append(f"[theory].shape = {theory['shape']}: the flows are two-dimensional (2 extents)")
        elif odd:
            problems.append(
                f"[theory].shape = {theory['shape']}: extents must be even for the checkerboard sublattices "
                f"(axis {odd[0]} is {theory['shape'][odd[0]]})"
            )
    training = data.get("training", {})
    if "shard" in training and "batch" in training and training["batch"] % training["shard"]:
        problems.append(
            f"[training].shard = {training['shard']}: must divide batch = {training['batch']} "
            "(each rank draws batch / shard latent shards, one random stream each)"
        )
    if "kernel" in model and (model["kernel"] % 2 == 0 or model["kernel"] < 3):
        problems.append(f"[model].kernel = {model['kernel']}: must be odd and at least 3 (3, 5, 7, ...)")
    if isinstance(model.get("coupling"), list) and "layers" in model and len(model["coupling"]) != model["layers"]:
        problems.append(
            f"[model].coupling lists {len(model['coupling'])} kinds for layers = {model['layers']}: give one per layer"
        )
    if sampler.get("kind") == "nmcmc" and "model" not in raw and "model" not in sampler:
        problems.append('[sampler].kind = "nmcmc": needs a [model] section (trained by hpcflow train) or [sampler].model')
    if "shape" in theory and "analysis" in data and data["analysis"].get("t_min", 1) >= theory["shape"][0] // 2:
        problems.append(
            f"[analysis].t_min = {data['analysis']['t_min']}: must be < L0/2 = {theory['shape'][0] // 2}"
        )
    if "solve" in data:
        output["dir"] = data["solve"].get("dir", "")
    if "dir" not in output and not problems:
        output["dir"] = str(Path("runs") / default_run_name(theory, sampler))
    if "dir" in output:
        why = _check_writable(Path(output["dir"]))
        if why:
            problems.append(f"[output].dir = {output['dir']!r}: cannot write there ({why})")
    if problems:
        raise RunCardError(source, problems)
    return RunCard(source=source, data=data, text=text)


def default_run_name(theory: dict[str, Any], sampler: dict[str, Any]) -> str:
    """Run directory name from the physics parameters, e.g. ``phi4_8x8_b0.576_l0.5_hmc_s1``."""
    shape = "x".join(str(n) for n in theory["shape"])
    lam = f"_l{theory['lam']:.6g}" if "lam" in theory else ""
    return f"{theory['name']}_{shape}_b{theory['beta']:.6g}{lam}_{sampler['kind']}_s{sampler['seed']}"


def load_runcard(path: Path | str) -> RunCard:
    """Read and validate a TOML run card file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise RunCardError(str(path), [f"cannot read the run card ({err.strerror})"]) from err
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
