"""Run cards and the stages of a run (sample, analyze)."""

from hpcflow.workflow.runcard import RunCard, RunCardError, load_runcard, validate_runcard

__all__ = ["RunCard", "RunCardError", "load_runcard", "validate_runcard"]
