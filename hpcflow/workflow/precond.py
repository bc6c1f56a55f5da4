r"""The preconditioner stage: ``hpcflow precond train CARD`` trains a model on one configuration.

The model :math:`M` (:mod:`hpcflow.models.precond`) learns :math:`D^{-1}` from pairs
:math:`(v, Dv)` with :math:`v` Gaussian random (complex, unit variance per component), drawn anew
every step (so there is no overfitting to a data set), by Adam on the cost

.. math::
    C = \frac1B\sum_{i=1}^B \frac{|M D v_i - v_i|^2}{|v_i|^2},

the relative error of the preconditioned identity, as in Lehner & Wettig. Random vectors are
dominated by the high modes of :math:`D`, so this is the hi-mode (smoother) model. The cost on a
fixed set of held-out vectors is logged beside the training cost.

``[precond].level = "coarse"`` trains the lo-mode model instead
(:mod:`hpcflow.models.precond.coarse`): near-null vectors of :math:`D` (``basis``, relaxed for
``setup_iterations`` from random starts), the aggregation on ``blocks`` and
:math:`\tilde D = RDP`; the model :math:`\tilde M` learns :math:`\tilde D^{-1}` from random coarse
vectors with the same cost, :math:`|\tilde M\tilde D v - v|^2/|v|^2`. Its ``model.pt`` holds the
near-null vectors, so a solve uses the very coarse basis it was trained on. Random vectors weight
every mode of :math:`\tilde D` alike, but the coarse correction must invert its low modes: a
fraction ``low_modes`` of every batch (and of the held-out set) is drawn as
:math:`v = \tilde D^{-1}u` (``u`` Gaussian; :func:`~hpcflow.models.precond.coarse.coarse_solver`),
whose components along an eigenvector of :math:`\tilde D` are enhanced by :math:`1/|\lambda|`.

Writes into ``[precond].dir``: ``checkpoints/`` (model, optimizer, generator, step; atomic,
resumed with the same command), ``train_log.jsonl`` and at the end ``model.pt`` (architecture,
weights, and the provenance: configuration, mass, clover, training). ``[precond].init`` starts
from another model (another configuration, mass or volume: transfer).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from hpcflow.io.atomic import atomic_write, atomic_write_text
from hpcflow.io.checkpoint import latest_checkpoint, save_checkpoint
from hpcflow.lattice.rng import seeded_generator
from hpcflow.models.precond import NeuralPreconditioner, PrecondSpec, build_model
from hpcflow.models.precond.coarse import (CoarseFieldOperator, coarse_preconditioner, coarse_solver, coarse_spec,
                                          neural_two_level)
from hpcflow.models.precond.layers import Sequence
from hpcflow.models.precond.multigrid import BlockProjector, CoarseOperator, TwoLevel, near_null_vectors
from hpcflow.workflow.operator import Configuration
from hpcflow.workflow.progress import Progress
from hpcflow.workflow.runcard import RunCard, RunCardError
from hpcflow.workflow.rundir import lock_run_dir

__all__ = ["LEVELS", "PrecondModelError", "Target", "block_projector", "check_blocks", "precond_train", "read_model",
           "relative_cost", "two_level_from_models"]

log = logging.getLogger(__name__)
DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}


class PrecondModelError(ValueError):
    """A model file that is missing or does not fit the operator."""


def _random_fields(n: int, site: tuple[int, ...], gen: torch.Generator, dtype: torch.dtype) -> Tensor:
    """``n`` complex Gaussian fields of shape ``site`` (unit variance per component)."""
    real = dtype.to_real()
    return torch.complex(torch.randn((n, *site), generator=gen, dtype=real, device=gen.device),
                         torch.randn((n, *site), generator=gen, dtype=real, device=gen.device)) / 2**0.5


@dataclass
class Target:
    """What a model learns to invert: the operator on the layers' fields, the model's
    architecture, the preconditioner that wraps a model, and what is stored beside the weights."""

    op: Callable[[Tensor], Tensor]
    spec: PrecondSpec
    wrap: Callable[[Sequence], NeuralPreconditioner]
    site: tuple[int, ...]
    stored: dict[str, Any]
    low_modes: float = 0.0
    solve: Callable[[Tensor], Tensor] | None = None  # u -> op^-1 u, for the low-mode vectors

    def vectors(self, n: int, gen: torch.Generator, dtype: torch.dtype) -> Tensor:
        """``n`` training vectors: Gaussian, the first ``round(low_modes * n)`` of them mapped to
        :math:`D^{-1}u` (module docstring)."""
        u = _random_fields(n, self.site, gen, dtype)
        k = round(self.low_modes * n)
        return torch.cat([self.solve(u[:k]), u[k:]]) if k else u


def fine_target(p: dict[str, Any], config: Configuration, dtype: torch.dtype) -> Target:
    """The hi-mode model: :math:`D` on the fine lattice."""
    op = config.operator(p["mass"], dtype)
    spec = PrecondSpec(p["kind"], tuple(p["channels"]), p["hops"], config.dim, config.spin, config.colours,
                       config.lattice if p["kind"] == "lptc" else ())
    return Target(op, spec, lambda model: NeuralPreconditioner(model, op.links, clover=p["csw"] != 0),
                  (*config.lattice, config.spin, config.colours), {})


def coarse_target(p: dict[str, Any], config: Configuration, dtype: torch.dtype) -> Target:
    """The lo-mode model: :math:`\\tilde D = RDP` on the coarse lattice of ``[precond].blocks``."""
    check_blocks(p["blocks"], config.lattice, config.source, "precond")
    op = config.operator(p["mass"], dtype)
    vectors = near_null_vectors(op, p["basis"], p["setup_iterations"], seeded_generator(p["seed"] + 7, op.links.device))
    projector = block_projector(vectors, p["blocks"], op, config.source, "precond")
    spec = coarse_spec(projector, tuple(p["channels"]), p["hops"])
    coarse, site = CoarseFieldOperator(CoarseOperator(op, projector)), (*projector.coarse, projector.k, 1)
    return Target(coarse, spec, lambda model: coarse_preconditioner(model, projector), site,
                  {"vectors": vectors.cpu(), "blocks": list(p["blocks"])}, p["low_modes"],
                  coarse_solver(coarse, site) if p["low_modes"] else None)


LEVELS = {"fine": fine_target, "coarse": coarse_target}


def check_blocks(blocks: list[int], lattice: tuple[int, ...], source: str, section: str) -> None:
    """A card error unless ``[section].blocks`` cut every lattice axis into at least two blocks."""
    if len(blocks) != len(lattice) or any(n % b or n // b < 2 for n, b in zip(lattice, blocks)):
        raise RunCardError(source, [f"[{section}].blocks = {list(blocks)}: must divide the lattice {list(lattice)} "
                                    "into at least 2 blocks along every axis"])


def block_projector(vectors: Tensor, blocks: list[int], op: Any, source: str, section: str) -> BlockProjector:
    """The aggregation of near-null ``vectors`` on ``[section].blocks``."""
    check_blocks(blocks, tuple(vectors.shape[1:-2]), source, section)
    return BlockProjector(vectors, tuple(blocks), op.gamma5)


def two_level_from_models(op: Any, hi: Sequence, lo: Sequence, lo_meta: dict[str, Any], clover: bool,
                          source: str, section: str) -> TwoLevel:
    """The neural two-level preconditioner for ``op`` from a hi-mode model and a lo-mode model with
    its stored near-null vectors and blocks (``lo_meta`` of :func:`read_model`)."""
    projector = block_projector(lo_meta["vectors"], lo_meta["blocks"], op, source, section)
    return neural_two_level(op, projector, NeuralPreconditioner(hi, op.links, clover=clover),
                            coarse_preconditioner(lo, projector))


def relative_cost(m: NeuralPreconditioner, op: Any, v: Tensor) -> Tensor:
    """:math:`\\frac1B\\sum_i |M D v_i - v_i|^2 / |v_i|^2` (differentiable in the model)."""
    residual = m.apply(op(v)) - v
    return ((residual.abs() ** 2).flatten(1).sum(1) / (v.abs() ** 2).flatten(1).sum(1)).mean()


def save_model(path: Path, model: Sequence, spec: PrecondSpec, meta: dict[str, Any], stored: dict[str, Any]) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"spec": spec.to_dict(), "state_dict": state, "meta": meta, **stored}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def read_model(path: Path, key: str, config: Configuration, dtype: torch.dtype,
               level: str = "fine") -> tuple[Sequence, dict[str, Any]]:
    """A trained model of ``level`` that fits ``config``'s operator (dimension, spin, colours; an
    LPTC its lattice; a lo-mode model the fine lattice of its near-null vectors), on its device in
    ``dtype``; a misfit names ``key``. A lo-mode model's ``meta`` carries ``vectors`` and ``blocks``."""
    if not path.is_file():
        raise PrecondModelError(f"{key} = {str(path)!r}: no model there; run 'hpcflow precond train' first")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        spec = PrecondSpec.from_dict(payload["spec"])
    except Exception as err:  # not a torch file, or another object
        raise PrecondModelError(f"{key} = {str(path)!r}: not a preconditioner model ({type(err).__name__})") from None
    meta = {"spec": spec, **payload.get("meta", {})}
    stored = "vectors" in payload
    if stored != (level == "coarse"):
        raise PrecondModelError(f"{key} = {str(path)!r}: a {'lo' if stored else 'hi'}-mode model (trained with "
                                f"[precond].level = {'coarse' if stored else 'fine'!r}); here a "
                                f"{'lo' if level == 'coarse' else 'hi'}-mode model is needed")
    if stored:
        fine = (*config.lattice, config.spin, config.colours)
        if tuple(payload["vectors"].shape[1:]) != fine:
            raise PrecondModelError(f"{key} = {str(path)!r}: a lo-mode model for fine fields {list(payload['vectors'].shape[1:])}; "
                                    f"this operator's are {list(fine)}")
        meta.update(vectors=payload["vectors"].to(device=config.links.device, dtype=dtype), blocks=payload["blocks"])
    else:
        wanted = (config.dim, config.spin, config.colours)
        if (spec.dim, spec.spin, spec.colours) != wanted:
            raise PrecondModelError(f"{key} = {str(path)!r}: trained for d = {spec.dim}, spin {spec.spin}, colour "
                                    f"{spec.colours}; this operator has d = {wanted[0]}, spin {wanted[1]}, colour {wanted[2]}")
        if spec.kind == "lptc" and spec.shape != config.lattice:
            raise PrecondModelError(f"{key} = {str(path)!r}: an LPTC model of lattice {list(spec.shape)}; this one is "
                                    f"{list(config.lattice)} (a PTC model transfers to any volume)")
    model = build_model(spec, dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in payload["state_dict"].items()})
    return model.to(config.links.device), meta


def precond_train(card: RunCard, progress: bool = True) -> Path:
    """Train (or resume training) the model of a ``[precond]`` card; returns ``model.pt``."""
    if "precond" not in card.data:
        raise RunCardError(card.source, ["[precond]: missing required section for hpcflow precond train"])
    p = card.data["precond"]
    dtype = DTYPES[p["dtype"]]
    config = Configuration(p, card.source, "precond", card.device())
    target = LEVELS[p["level"]](p, config, dtype)
    out = Path(p["dir"])
    with lock_run_dir(out):
        return _train(p, config, target, dtype, out, progress)


def _train(p: dict[str, Any], config: Configuration, target: Target, dtype: torch.dtype, out: Path, progress: bool) -> Path:
    device = config.links.device
    torch.manual_seed(p["seed"])
    model = build_model(target.spec, dtype).to(device)
    init_meta = None
    if "init" in p:
        pretrained, init_meta = read_model(Path(p["init"]), "[precond].init", config, dtype, p["level"])
        if pretrained.state_dict().keys() != model.state_dict().keys():
            raise PrecondModelError(f"[precond].init = {p['init']!r}: another architecture than the card's")
        model.load_state_dict(pretrained.state_dict())
        init_meta = {k: v for k, v in init_meta.items() if k != "spec"}
    opt = torch.optim.Adam(model.parameters(), lr=p["lr"])
    m, op = target.wrap(model), target.op
    gen = seeded_generator(p["seed"], device)
    held_out = target.vectors(8, seeded_generator(p["seed"] + 1, device), dtype)
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
            loss = relative_cost(m, op, target.vectors(p["batch"], gen, dtype))
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
            "antiperiodic_time": p["antiperiodic_time"], "lattice": list(config.lattice), "level": p["level"],
            "low_modes": p["low_modes"],
            "steps": p["steps"], "batch": p["batch"], "held_out_cost": {"initial": initial, "final": final},
            "seconds": seconds + time.perf_counter() - t0, **({"init": init_meta} if init_meta else {})}
    save_model(out / "model.pt", model, target.spec, meta, target.stored)
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
