r"""Krylov solvers for :math:`Dx = b`: CG on the normal equations, BiCGStab, flexible GMRES.

They work on any array type with ``conj()``, ``sum()``, arithmetic and ``.real`` (torch tensors
and CuPy arrays): inner products are :math:`\langle a, b\rangle = \sum \bar a b` over every index,
so a right-hand side may carry a batch axis and is solved as one vector. Each returns a
:class:`SolveInfo` with the solution, the iteration count, the work in applications of ``D``
(a preconditioner's own applications of ``D`` are added when it reports them through
``work``), the history of :math:`|r|/|b|`, whether ``tol`` was reached and why the iteration
stopped (``reason``); an unconverged solve is reported, never hidden or raised: a breakdown of
the recurrence (a zero or non-finite denominator) ends the solve with ``converged = False`` and
the reason. The stopping test uses the true residual at the end. A zero right-hand side has the
solution zero (no iterations).

References:
    | Saad, Iterative Methods for Sparse Linear Systems (2003), algorithms 6.9, 7.7, 9.6
    | van der Vorst, SIAM J. Sci. Stat. Comput. 13 (1992) 631
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

__all__ = ["Preconditioner", "SolveInfo", "bicgstab", "cg_normal", "fgmres"]

Operator = Callable[[Any], Any]


class Preconditioner(Protocol):
    """``M(v) ~ D^{-1} v``; may expose ``work`` (applications of D per call)."""

    def __call__(self, v: Any) -> Any: ...


@dataclass
class SolveInfo:
    """Outcome of a solve: ``reason`` is ``"converged"``, ``"maxiter"`` or ``"breakdown: ..."``."""

    x: Any
    iterations: int
    work: float
    converged: bool
    residuals: list[float] = field(default_factory=list)
    reason: str = ""

    @property
    def final_residual(self) -> float:
        return self.residuals[-1] if self.residuals else math.nan


def _dot(a: Any, b: Any) -> complex:
    return complex((a.conj() * b).sum())


def _norm(a: Any) -> float:
    return math.sqrt(max(_dot(a, a).real, 0.0))


def _degenerate(x: complex) -> bool:
    """A denominator that ends a recurrence: zero, or not finite."""
    return x == 0 or not cmath.isfinite(x)


def _finish(x: Any, iterations: int, work: float, history: list[float], tol: float, why: str | None) -> SolveInfo:
    """The :class:`SolveInfo` of a solve whose last history entry is the true residual."""
    converged = history[-1] < tol
    reason = "converged" if converged else (why or "maxiter")
    return SolveInfo(x, iterations, work, converged, history, reason)


def _zero_rhs(b: Any) -> SolveInfo:
    return SolveInfo(b * 0, 0, 0, True, [0.0], "converged")


class _Counted:
    def __init__(self, op: Operator, cost: int = 1) -> None:
        self.op, self.cost, self.calls = op, cost, 0

    def __call__(self, v: Any) -> Any:
        self.calls += 1
        return self.op(v)

    @property
    def work(self) -> int:
        return self.calls * self.cost


def cg_normal(apply_d: Operator, apply_ddag: Operator, b: Any, tol: float, maxiter: int) -> SolveInfo:
    r"""Conjugate gradient on :math:`D^\dagger D x = D^\dagger b` (CGNR).

    Besides the normal-equation residual :math:`r = D^\dagger s` it carries :math:`s = b - Dx`
    (updated with :math:`Dp`, which the step needs anyway), so it stops on :math:`|s|/|b| < tol`.
    Work: one :math:`D` and one :math:`D^\dagger` per iteration, plus one :math:`D` for the final
    true residual.
    """
    d, ddag = _Counted(apply_d), _Counted(apply_ddag)
    b_norm = _norm(b)
    if b_norm == 0:
        return _zero_rhs(b)
    x, s = b * 0, b
    r = ddag(s)
    p, rr = r, _dot(r, r).real
    history, why = [1.0], None
    while history[-1] >= tol and len(history) <= maxiter:
        dp = d(p)
        pdp = _dot(dp, dp).real
        if _degenerate(pdp) or _degenerate(rr):
            why = f"breakdown: |D p|^2 = {pdp:g}, |r|^2 = {rr:g}"
            break
        alpha = rr / pdp
        x = x + alpha * p
        s = s - alpha * dp
        r = ddag(s)
        rr_new = _dot(r, r).real
        p = r + (rr_new / rr) * p
        rr = rr_new
        history.append(_norm(s) / b_norm)
    true_res = _norm(b - d(x)) / b_norm
    return _finish(x, len(history) - 1, d.work + ddag.work, history + [true_res], tol, why)


def bicgstab(apply_d: Operator, b: Any, tol: float, maxiter: int) -> SolveInfo:
    r"""BiCGStab (van der Vorst) with shadow residual :math:`\hat r = b`; two applications of D per iteration.

    The recurrence divides by :math:`\rho = (\hat r, r)`, :math:`(\hat r, Dp)` and
    :math:`\omega = (t, s)/(t, t)`; when one of them vanishes (e.g. :math:`D` antisymmetric and
    :math:`b` real, where :math:`(\hat r, D\hat r) = 0`) the solve stops with
    ``reason = "breakdown: ..."`` and ``converged = False``: restart with another method (FGMRES
    has no such breakdown).
    """
    d = _Counted(apply_d)
    b_norm = _norm(b)
    if b_norm == 0:
        return _zero_rhs(b)
    x, r = b * 0, b
    r_hat = b
    rho = alpha = omega = 1.0 + 0j
    v = p = b * 0
    history, why = [1.0], None
    while history[-1] >= tol and len(history) <= maxiter:
        rho_new = _dot(r_hat, r)
        if _degenerate(rho_new):
            why = f"breakdown: (r^, r) = {rho_new:g}"
            break
        beta = (rho_new / rho) * (alpha / omega)
        p = r + beta * (p - omega * v)
        v = d(p)
        r_hat_v = _dot(r_hat, v)
        if _degenerate(r_hat_v):
            why = f"breakdown: (r^, D p) = {r_hat_v:g}"
            break
        alpha = rho_new / r_hat_v
        s = r - alpha * v
        if _norm(s) / b_norm < tol:
            x = x + alpha * p
            history.append(_norm(s) / b_norm)
            break
        t = d(s)
        tt = _dot(t, t)
        omega = _dot(t, s) / tt if not _degenerate(tt) else 0j
        if _degenerate(omega):
            x = x + alpha * p  # the half step is still an improvement
            history.append(_norm(s) / b_norm)
            why = f"breakdown: omega = (t, s)/(t, t) = {omega:g}"
            break
        x = x + alpha * p + omega * s
        r = s - omega * t
        rho = rho_new
        history.append(_norm(r) / b_norm)
    true_res = _norm(b - d(x)) / b_norm
    return _finish(x, len(history) - 1, d.work, history + [true_res], tol, why)


def fgmres(apply_d: Operator, b: Any, tol: float, maxiter: int, restart: int = 30,
           precond: Preconditioner | None = None) -> SolveInfo:
    r"""Right-preconditioned flexible GMRES(restart) (Saad, algorithm 9.6).

    :math:`x = x_0 + Z y` with :math:`z_j = M(v_j)`; the preconditioner may change from one
    iteration to the next (a neural network, an inner solve). The Arnoldi basis uses modified
    Gram-Schmidt; the small least-squares problem is solved on the host. ``maxiter`` counts
    inner iterations over all cycles. Work: one :math:`D` per iteration, one per restart for
    the residual, plus the preconditioner's: what it counted itself (``precond.work_done``), or
    ``precond.work`` per call.
    """
    d = _Counted(apply_d)
    m_calls = 0
    counted = getattr(precond, "work_done", None)  # a preconditioner that counts its own work call by call
    b_norm = _norm(b)
    if b_norm == 0:
        return _zero_rhs(b)
    x = b * 0
    history = [1.0]
    iterations = 0
    while iterations < maxiter:
        r = b - d(x) if iterations else b
        beta = _norm(r)
        history[-1] = beta / b_norm
        if history[-1] < tol:
            break
        basis, zs = [r / beta], []
        h = np.zeros((restart + 1, restart), dtype=np.complex128)
        y = np.zeros(0, dtype=np.complex128)
        for j in range(restart):
            z = precond(basis[j]) if precond is not None else basis[j]
            m_calls += precond is not None
            zs.append(z)
            w = d(z)
            for i in range(j + 1):
                h[i, j] = _dot(basis[i], w)
                w = w - h[i, j] * basis[i]
            h[j + 1, j] = _norm(w)
            rhs = np.zeros(j + 2, dtype=np.complex128)
            rhs[0] = beta
            y = np.linalg.lstsq(h[: j + 2, : j + 1], rhs, rcond=None)[0]
            res = float(np.linalg.norm(rhs - h[: j + 2, : j + 1] @ y))
            iterations += 1
            history.append(res / b_norm)
            if history[-1] < tol or h[j + 1, j] == 0 or iterations >= maxiter:
                break
            basis.append(w / h[j + 1, j])
        for coeff, z in zip(y, zs):
            x = x + complex(coeff) * z
        if history[-1] < tol:
            history.append(_norm(b - d(x)) / b_norm)
            if history[-1] < tol:
                break
    if history[-1] >= tol:  # stopped by maxiter: report the true residual
        history.append(_norm(b - d(x)) / b_norm)
    if counted is not None:
        work = d.work + (precond.work_done - counted)
    else:
        work = d.work + m_calls * getattr(precond, "work", 0)
    return _finish(x, iterations, work, history, tol, None)
