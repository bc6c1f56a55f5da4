r"""The cost of an independent configuration: the one figure every sampler comparison quotes.

A run of ``B`` chains takes :math:`t_u` wall seconds per update of all chains and measures every
``k``-th update; an observable has :math:`\tau_{int}` in units of measurements. Each chain gives
one independent measurement per :math:`2\tau_{int}` measurements, and the ``B`` chains give ``B``
of them in the same time, so

.. math::
    c = \frac{k\, t_u \cdot 2\tau_{int}}{B}

wall seconds per independent configuration (of the whole job, on all its ranks; training is
not included: reports list it separately). Every report and benchmark uses
:func:`cost_per_independent_config` and states :data:`COST_DEFINITION`.
"""

from __future__ import annotations

__all__ = ["COST_DEFINITION", "cost_per_independent_config"]

COST_DEFINITION = (
    "cost per independent configuration = wall seconds per update of all chains x measure_every "
    "x 2 tau_int (in measurements) / chains (the whole job on all its ranks; training not included)"
)


def cost_per_independent_config(seconds_per_update: float, tau_int: float, chains: int, measure_every: int = 1) -> float:
    """Wall seconds per independent configuration (:data:`COST_DEFINITION`).

    Arguments:
        seconds_per_update: wall seconds of one update of all chains.
        tau_int: integrated autocorrelation time of the observable, in measurements.
        chains: number of chains updated together.
        measure_every: updates per measurement.

    Example:
        >>> cost_per_independent_config(0.5, tau_int=10.0, chains=4)
        2.5
    """
    if chains < 1 or measure_every < 1 or seconds_per_update < 0 or tau_int < 0:
        raise ValueError(
            f"seconds_per_update = {seconds_per_update}, tau_int = {tau_int}, chains = {chains}, "
            f"measure_every = {measure_every}: expected non-negative times and at least one chain and update"
        )
    return seconds_per_update * measure_every * 2.0 * tau_int / chains
