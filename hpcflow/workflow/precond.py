r"""The preconditioner stage: ``hpcflow precond train CARD`` trains a model on one configuration.

The model :math:`M` (:mod:`hpcflow.models.precond`) learns :math:`D^{-1}` from pairs
:math:`(v, Dv)` with :math:`v` Gaussian random (complex, unit variance per component), drawn anew
every step (so there is no overfitting to a data set), by Adam on the cost

.. math::
    C = \frac1B\sum_{i=1}^B \frac{|M D v_i - v_i|^2}{|v_i|^2},

the relative error of the preconditioned identity, as in Lehner & Wettig. Random vectors are
dominated by the high modes of :math:`D`, so this is the hi-mode (smoother) model. The cost on a
fixed set of held-out vectors is logged beside the training cost.

Writes into ``[precond].dir``: ``checkpoints/`` (model, optimizer, generator, step; atomic,
resumed with the same command), ``train_log.jsonl`` and at the end ``model.pt`` (architecture,
weights, and the provenance: configuration, mass, clover, training). ``[precond].init`` starts
from another model (another configuration, mass or volume: transfer).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hpcflow.io.atomic import atomic_write, atomic_write_text
from hpcflow.io.checkpoint import latest_checkpoint, save_checkpoint
from hpcflow.lattice.rng import seeded_generator
from hpcflow.models.precond import NeuralPreconditioner, PrecondSpec, build_model
from hpcflow.models.precond.layers import Sequence
from hpcflow.workflow.operator import Configuration
from hpcflow.workflow.progress import Progress
from hpcflow.workflow.runcard import RunCard, RunCardError
from hpcflow.workflow.rundir import lock_run_dir

__all__ = ["PrecondModelError", "precond_train", "read_model", "relative_cost"]

log = logging.getLogger(__name__)
DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}


class PrecondModelError(ValueError):
    """A model file that is missing or does not fit the operator."""


def _random_spinors(n: int, config: Configuration, gen: torch.Generator, dtype: torch.dtype) -> Tensor:
    real = dtype.to_real()
    shape = (n, *config.lattice, config.spin, config.colours)
    return torch.complex(torch.randn(shape, generator=gen, dtype=real, device=gen.device),
                         torch.randn(shape, generator=gen, dtype=real, device=gen.device)) / 2**0.5


def relative_cost(m: NeuralPreconditioner, op: Any, v: Tensor) -> Tensor:
    """:math:`\\frac1B\\sum_i |M D v_i - v_i|^2 / |v_i|^2` (differentiable in the model)."""
    residual = m.apply(op(v)) - v
    return ((residual.abs() ** 2).flatten(1).sum(1) / (v.abs() ** 2).flatten(1).sum(1)).mean()


def save_model(path: Path, model: Sequence, spec: PrecondSpec, meta: dict[str, Any]) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: torch.save({"spec": spec.to_dict(), "state_dict": state, "meta": meta}, tmp))


def read_model(path: Path, key: str, config: Configuration, dtype: torch.dtype) -> tuple[Sequence, dict[str, Any]]:
    """A trained model that fits ``config``'s operator (dimension, spin, colours; an LPTC its
    lattice), on its device in ``dtype``; a misfit names ``key``."""
    if not path.is_file():
        raise PrecondModelError(f"{key} = {str(path)!r}: no model there; run 'hpcflow precond train' first")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        spec = PrecondSpec.from_dict(payload["spec"])
    except Exception as err:  # not a torch file, or another object
        raise PrecondModelError(f"{key} = {str(path)!r}: not a preconditioner model ({type(err).__name__})") from None
    wanted = (config.dim, config.spin, config.colours)
    if (spec.dim, spec.spin, spec.colours) != wanted:
        raise PrecondModelError(f"{key} = {str(path)!r}: trained for d = {spec.dim}, spin {spec.spin}, colour {spec.colours}; "
                                f"this operator has d = {wanted[0]}, spin {wanted[1]}, colour {wanted[2]}")
    if spec.kind == "lptc" and spec.shape != config.lattice:
        raise PrecondModelError(f"{key} = {str(path)!r}: an LPTC model of lattice {list(spec.shape)}; this one is "
                                f"{list(config.lattice)} (a PTC model transfers to any volume)")
    model = build_model(spec, dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in payload["state_dict"].items()})
    return model.to(config.links.device), {"spec": spec, **payload.get("meta", {})}


def precond_train(card: RunCard, progress: bool = True) -> Path:
    """Train (or resume training) the model of a ``[precond]`` card; returns ``model.pt``."""
    if "precond" not in card.data:
        raise RunCardError(card.source, ["[precond]: missing required section for hpcflow precond train"])
    p, device = card.data["precond"], card.device()
    dtype = DTYPES[p["dtype"]]
    config = Configuration(p, card.source, "precond", device)
    op = config.operator(p["mass"], dtype)
    spec = PrecondSpec(p["kind"], tuple(p["channels"]), p["hops"], config.dim, config.spin, config.colours,
                       config.lattice if p["kind"] == "lptc" else ())
    out = Path(p["dir"])
    with lock_run_dir(out):
        return _train(card, p, config, op, spec, dtype, out, progress)


def _train(card: RunCard, p: dict[str, Any], config: Configuration, op: Any, spec: PrecondSpec, dtype: torch.dtype,
           out: Path, progress: bool) -> Path:
    torch.manual_seed(p["seed"])
    model = build_model(spec, dtype).to(config.links.device)
    init_meta = None
    if "init" in p:
        pretrained, init_meta = read_model(Path(p["init"]), "[precond].init", config, dtype)
        if pretrained.state_dict().keys() != model.state_dict().keys():
            raise PrecondModelError(f"[precond].init = {p['init']!r}: another architecture than the card's")
        model.load_state_dict(pretrained.state_dict())
        init_meta = {k: v for k, v in init_meta.items() if k != "spec"}
    opt = torch.optim.Adam(model.parameters(), lr=p["lr"])
    m = NeuralPreconditioner(model, op.links, clover=p["csw"] != 0)
    gen = seeded_generator(p["seed"], config.links.device)
    held_out = _random_spinors(8, config, seeded_generator(p["seed"] + 1, config.links.device), dtype)
    ckpt_dir, log_path = out / "checkpoints", out / "train_log.jsonl"
    start, seconds = 0, 0.0
    with torch.no_grad():
        initial = relative_cost(m, op, held_out).item()
    resumed = latest_checkpoint(ckpt_dir)
    if resumed is not None:
        start, ck = resumed
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["generator"])
        seconds, init_meta, initial = float(ck["seconds"]), ck.get("init"), float(ck["held_out_initial"])
    out.mkdir(parents=True, exist_ok=True)
    kept = [ln for ln in log_path.read_text().splitlines() if ln.strip()] if log_path.is_file() else []
    atomic_write_text(log_path, "".join(ln + "\n" for ln in kept if (k := _step(ln)) is not None and k <= start))
    bar = Progress(p["steps"], start, f"precond {out.name}", "step", True, bar=progress)
    t0 = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as log_file:
        for step in range(start + 1, p["steps"] + 1):
            loss = relative_cost(m, op, _random_spinors(p["batch"], config, gen, dtype))
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1)
            if step % p["log_every"] == 0 or step == p["steps"]:
                with torch.no_grad():
                    held = relative_cost(m, op, held_out).item()
                entry = {"step": step, "cost": loss.item(), "held_out": held, "seconds": seconds + time.perf_counter() - t0}
                log_file.write(json.dumps(entry) + "\n")
                log_file.flush()
                bar.set_postfix(cost=f"{entry['cost']:.4f}", held_out=f"{held:.4f}")
            if step % p["checkpoint_every"] == 0 or step == p["steps"]:
                save_checkpoint(ckpt_dir, step, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                                 "generator": gen.get_state(), "seconds": seconds + time.perf_counter() - t0,
                                                 "init": init_meta, "held_out_initial": initial})
    bar.close()
    with torch.no_grad():
        final = relative_cost(m, op, held_out).item()
    meta = {"configs": p["configs"], "chain": p["chain"], "step": p["step"], "mass": p["mass"], "csw": p["csw"],
            "antiperiodic_time": p["antiperiodic_time"], "lattice": list(config.lattice), "steps": p["steps"],
            "batch": p["batch"], "held_out_cost": {"initial": initial, "final": final},
            "seconds": seconds + time.perf_counter() - t0, **({"init": init_meta} if init_meta else {})}
    save_model(out / "model.pt", model, spec, meta)
    log.info("trained %s: held-out cost %.4g -> %.4g in %d steps", out / "model.pt", initial, final, p["steps"])
    if not final < 1.0:  # M = 0 has cost 1: restarted FGMRES with such a model can stagnate
        log.warning("%s: held-out cost %.4g is not below 1 (the cost of no preconditioner); "
                    "raise [precond].steps or lower [precond].lr before solving with it", out / "model.pt", final)
    return out / "model.pt"


def _step(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError):
        return None
