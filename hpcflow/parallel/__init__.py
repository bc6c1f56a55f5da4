"""Parallel runtime: rank discovery and data-parallel strategies."""

from hpcflow.parallel.env import ClusterEnv
from hpcflow.parallel.strategy import (
    STRATEGIES,
    DDPStrategy,
    HorovodStrategy,
    SerialStrategy,
    Strategy,
    StrategyNotInitialized,
    StrategyUnavailable,
)

__all__ = [
    "ClusterEnv",
    "DDPStrategy",
    "HorovodStrategy",
    "STRATEGIES",
    "SerialStrategy",
    "Strategy",
    "StrategyNotInitialized",
    "StrategyUnavailable",
]
