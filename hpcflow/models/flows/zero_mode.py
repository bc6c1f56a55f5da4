r"""A learned map of the zero mode: the magnetization per site through a smooth odd function.

With :math:`m = \frac1V\sum_x x_x` the mean of the field, the layer shifts every site by the same
amount so that the new mean is :math:`g(m)`:

.. math::
    y_x = x_x + g(m) - m, \qquad
    g(m) = e^{c}\,s\,\sinh\!\big(\delta\,\mathrm{asinh}(m/s)\big), \quad \delta = e^{d},\ s = e^{\sigma}

(the sinh-arcsinh transform of Jones and Pewsey, Biometrika 96 (2009) 761). The Jacobian is
:math:`1 + (g'(m) - 1)\,\frac1V\mathbf 1\mathbf 1^T`: eigenvalue :math:`g'(m)` along the constant
mode and 1 on the :math:`V - 1` modes orthogonal to it, so

.. math::
    \log|\det J| = \log g'(m), \qquad
    g'(m) = e^{c}\,\delta\,\frac{\cosh(\delta\,\mathrm{asinh}(m/s))}{\sqrt{1 + m^2/s^2}} > 0,

and the inverse is closed-form: :math:`m = s\,\sinh(\mathrm{asinh}(e^{-c}\bar y/s)/\delta)` from the mean
:math:`\bar y = g(m)` of the output, then :math:`x = y + m - \bar y`.

Why: a Gaussian (or momentum-space) flow trained by reverse KL fits the many short-distance modes
and leaves the single zero mode too narrow and too Gaussian; near the critical point the
distribution of :math:`M` is flat-topped or double-humped (:math:`\langle M^4\rangle/\langle M^2\rangle^2`
below the Gaussian 3: 2.27 on 16^2 at beta = 0.634, lam = 0.5). In flow
HMC the latent zero mode then sits in a wide, flat potential and :math:`M` moves slowly. The
map :math:`g` is odd (Z2 equivariant), infinitely differentiable (smooth forces), monotone for
all parameters, and can stretch the centre against the tails (:math:`\delta < 1`, with
:math:`s` small enough a minimum of the density at :math:`M = 0`). All three parameters start at
zero: the identity map. They refer to :math:`M/V` and so are tuned for the training volume; on
another volume the map stays exact but is no longer optimal.

Reverse KL leaves this layer close to the identity: a model whose other modes do not follow
:math:`M` pays less for a narrow :math:`M` distribution than for the right one. :meth:`ZeroModeMap.fit`
sets it instead by maximum likelihood on samples of the target's :math:`M/V` (a flow-HMC chain's:
:mod:`hpcflow.samplers.zero_mode_calibration`), given the distribution of the mean entering the layer.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from hpcflow.lattice.sublattice import SplitField

__all__ = ["ZeroModeMap", "sinh_arcsinh", "sinh_arcsinh_inverse"]


def sinh_arcsinh(m: Tensor, c: Tensor, d: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
    """``(g(m), log g'(m))`` for the parameters ``(c, d, sigma)`` of the module docstring."""
    delta, s = torch.exp(d), torch.exp(sigma)
    a = torch.asinh(m / s)
    return (torch.exp(c) * s * torch.sinh(delta * a),
            c + d + torch.log(torch.cosh(delta * a)) - 0.5 * torch.log1p((m / s) ** 2))


def sinh_arcsinh_inverse(g: Tensor, c: Tensor, d: Tensor, sigma: Tensor) -> Tensor:
    """:math:`g^{-1}`."""
    s = torch.exp(sigma)
    return s * torch.sinh(torch.asinh(torch.exp(-c) * g / s) * torch.exp(-d))


class ZeroModeMap(nn.Module):
    """The layer of the module docstring, acting on a :class:`SplitField`."""

    def __init__(self) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(()))  # c
        self.log_power = nn.Parameter(torch.zeros(()))  # d
        self.log_width = nn.Parameter(torch.zeros(()))  # sigma

    def _params(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        return tuple(p.to(dtype) for p in self.parameters())  # type: ignore[return-value]  # c, d, sigma

    def fit(self, input_variance: float, means: Tensor, iterations: int = 500) -> float:
        r"""Set :math:`(c, d, \sigma)` by maximum likelihood of the target means ``means`` (M/V,
        any shape) when the mean entering the layer is :math:`N(0, v)`, ``v = input_variance``
        (exact when the layers before are linear; otherwise its Gaussian approximation):
        maximise :math:`\langle -u^2/2v - \log g'(u)\rangle`, :math:`u = g^{-1}(M/V)`. Adam in float64
        from the linear map of the right width (:math:`c = \frac12\log(\langle m^2\rangle/v)`,
        :math:`d = 0`, :math:`s` the width of ``means``); returns the mean log-likelihood, constants dropped."""
        m = means.detach().double().flatten()
        second_moment = float((m * m).mean())
        start = (0.5 * math.log(second_moment / input_variance), 0.0, 0.5 * math.log(second_moment))
        params = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in start]
        opt = torch.optim.Adam(params, lr=0.02)

        def negative_log_likelihood() -> Tensor:
            u = sinh_arcsinh_inverse(m, *params)
            return (0.5 * u * u / input_variance + sinh_arcsinh(u, *params)[1]).mean()

        for _ in range(iterations):
            opt.zero_grad()
            negative_log_likelihood().backward()
            opt.step()
        with torch.no_grad():
            for mine, fitted in zip(self.parameters(), params):
                mine.copy_(fitted.to(mine.dtype))
            return -float(negative_log_likelihood())

    @staticmethod
    def _shifted(field: SplitField, shift: Tensor) -> SplitField:
        return SplitField((field.parts[0] + shift[:, None], field.parts[1] + shift[:, None]), field.frame)

    @staticmethod
    def mean(field: SplitField) -> Tensor:
        """The field's mean per configuration ``(B,)``."""
        return (field.parts[0].sum(1) + field.parts[1].sum(1)) / field.volume

    def forward(self, field: SplitField) -> tuple[SplitField, Tensor]:
        """``(y, log|det dy/dx|)`` with the log-det per configuration ``(B,)``."""
        m = self.mean(field)
        g, log_dg = sinh_arcsinh(m, *self._params(m.dtype))
        return self._shifted(field, g - m), log_dg

    def inverse(self, field: SplitField) -> tuple[SplitField, Tensor]:
        """``(x, log|det dx/dy|)``."""
        g = self.mean(field)
        params = self._params(g.dtype)
        m = sinh_arcsinh_inverse(g, *params)
        return self._shifted(field, m - g), -sinh_arcsinh(m, *params)[1]
