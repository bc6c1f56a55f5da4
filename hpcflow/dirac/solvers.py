r"""Krylov solvers for :math:`Dx = b`: CG on the normal equations, BiCGStab, flexible GMRES.

They work on any array type with ``conj()``, ``sum()``, arithmetic and ``.real`` (torch tensors
and CuPy arrays): inner products are :math:`\langle a, b\rangle = \sum \bar a b` over every index,
so a right-hand side may carry a batch axis and is solved as one vector. Each returns a
:class:`SolveInfo` with the solution, the iteration count, the work in applications of ``D``
(a preconditioner's own applications of ``D`` are added when it reports them through
``work``), the history of :math:`|r|/|b|` and whether ``tol`` was reached; an unconverged solve
is reported, never hidden. The stopping test uses the true residual at the end.

References:
    | Saad, Iterative Methods for Sparse Linear Systems (2003), algorithms 6.9, 7.7, 9.6
    | van der Vorst, SIAM J. Sci. Stat. Comput. 13 (1992) 631
"""

from __future__ import annotations

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
    """Outcome of a solve."""

    x: Any
    iterations: int
    work: int
    converged: bool
    residuals: list[float] = field(default_factory=list)

    @property
    def final_residual(self) -> float:
        return self.residuals[-1] if self.residuals else math.nan


def _dot(a: Any, b: Any) -> complex:
    return complex((a.conj() * b).sum())


def _norm(a: Any) -> float:
    return math.sqrt(max(_dot(a, a).real, 0.0))


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
    x, s = b * 0, b
    r = ddag(s)
    p, rr = r, _dot(r, r).real
    history = [1.0]
    while history[-1] >= tol and len(history) <= maxiter:
        dp = d(p)
        alpha = rr / _dot(dp, dp).real
        x = x + alpha * p
        s = s - alpha * dp
        r = ddag(s)
        rr_new = _dot(r, r).real
        p = r + (rr_new / rr) * p
        rr = rr_new
        history.append(_norm(s) / b_norm)
    true_res = _norm(b - d(x)) / b_norm
    return SolveInfo(x, len(history) - 1, d.work + ddag.work, true_res < tol, history + [true_res])


def bicgstab(apply_d: Operator, b: Any, tol: float, maxiter: int) -> SolveInfo:
    r"""BiCGStab (van der Vorst) with shadow residual :math:`\hat r = b`; two applications of D per iteration."""
    d = _Counted(apply_d)
    b_norm = _norm(b)
    x, r = b * 0, b
    r_hat = b
    rho = alpha = omega = 1.0 + 0j
    v = p = b * 0
    history = [1.0]
    while history[-1] >= tol and len(history) <= maxiter:
        rho_new = _dot(r_hat, r)
        if rho_new == 0:
            break  # breakdown: reported as unconverged below
        beta = (rho_new / rho) * (alpha / omega)
        p = r + beta * (p - omega * v)
        v = d(p)
        alpha = rho_new / _dot(r_hat, v)
        s = r - alpha * v
        if _norm(s) / b_norm < tol:
            x = x + alpha * p
            history.append(_norm(s) / b_norm)
            break
        t = d(s)
        omega = _dot(t, s) / _dot(t, t)
        x = x + alpha * p + omega * s
        r = s - omega * t
        rho = rho_new
        history.append(_norm(r) / b_norm)
    true_res = _norm(b - d(x)) / b_norm
    return SolveInfo(x, len(history) - 1, d.work, true_res < tol, history + [true_res])


def fgmres(apply_d: Operator, b: Any, tol: float, maxiter: int, restart: int = 30,
           precond: Preconditioner | None = None) -> SolveInfo:
    r"""Right-preconditioned flexible GMRES(restart) (Saad, algorithm 9.6).

    :math:`x = x_0 + Z y` with :math:`z_j = M(v_j)`; the preconditioner may change from one
    iteration to the next (a neural network, an inner solve). The Arnoldi basis uses modified
    Gram-Schmidt; the small least-squares problem is solved on the host. ``maxiter`` counts
    inner iterations over all cycles. Work: one :math:`D` per iteration, one per restart for
    the residual, plus ``precond.work`` per preconditioner call when the preconditioner has it.
    """
    d = _Counted(apply_d)
    m_calls = 0
    b_norm = _norm(b)
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
    work = d.work + m_calls * int(getattr(precond, "work", 0))
    return SolveInfo(x, iterations, work, history[-1] < tol, history)
