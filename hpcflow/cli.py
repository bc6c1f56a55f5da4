"""The ``hpcflow`` command.

``hpcflow train CARD.toml``    train (or resume training) the flow of a run card
``hpcflow sample CARD.toml``   run (or resume) the sampler of a run card (HMC or NMCMC)
``hpcflow analyze RUN_DIR``    Gamma-method analysis and report of a run directory
``hpcflow solve CARD.toml``    Dirac-operator solves on a stored gauge configuration (a [solve] card)
``hpcflow run CARD.toml``      train (if the card has [training]), sample, analyze; prints the report path

Bad input exits with status 2 and one line per problem; a run stopped by SIGTERM/SIGINT
checkpoints and exits with 128 + the signal number (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from hpcflow import __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpcflow", description="Machine learning for lattice field theory at scale.")
    p.add_argument("--version", action="version", version=f"hpcflow {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    t = sub.add_parser("train", help="train or resume training the flow of a run card")
    t.add_argument("card", type=Path, help="TOML run card with [model] and [training]")
    s = sub.add_parser("sample", help="run or resume the sampler of a run card")
    s.add_argument("card", type=Path, help="TOML run card")
    a = sub.add_parser("analyze", help="analyse a run directory and write its report")
    a.add_argument("run_dir", type=Path, help="run directory (holds configs.h5)")
    v = sub.add_parser("solve", help="Dirac-operator solves on a stored gauge configuration")
    v.add_argument("card", type=Path, help="TOML card with a [solve] section")
    r = sub.add_parser("run", help="train (if the card has [training]), sample, analyze; prints the report path")
    r.add_argument("card", type=Path, help="TOML run card")
    return p


def _is_root() -> bool:
    """Rank 0 of a parallel launch (or a serial run): it alone prints and analyses."""
    from hpcflow.parallel.env import ClusterEnv

    return ClusterEnv.detect().is_root


def _say(text: str) -> None:
    if _is_root():
        print(text)


def _train(card_path: Path, progress: bool) -> None:
    from hpcflow.workflow.runcard import load_runcard
    from hpcflow.workflow.train import train

    _say(f"trained flow: {train(load_runcard(card_path), progress=progress)}")


def _sample(card_path: Path, progress: bool, train_first: bool = False) -> Path:
    from hpcflow.workflow.runcard import load_runcard
    from hpcflow.workflow.sample import sample
    from hpcflow.workflow.train import train

    card = load_runcard(card_path)
    if train_first and "training" in card.data:
        _say(f"trained flow: {train(card, progress=progress)}")
    path = sample(card, progress=progress)
    _say(f"configurations: {path}")
    return card.run_dir


def _solve(card_path: Path) -> None:
    from hpcflow.workflow.runcard import load_runcard
    from hpcflow.workflow.solve import solve

    out = solve(load_runcard(card_path))
    summary = json.loads((out / "solve.json").read_text())
    print(f"{'mass':>8} {'iterations':>10} {'work':>8} {'residual':>10} {'converged':>9}")
    for r in summary["results"]:
        print(f"{r['mass']:>8.4f} {r['iterations']:>10} {r['work']:>8} {r['final_residual']:>10.2e} {str(r['converged']):>9}")
    print(f"results: {out / 'solve.json'}")


def _analyze(run_dir: Path) -> None:
    from hpcflow.workflow.analyze import analyze

    report = analyze(run_dir)
    print((report / "report.md").read_text(encoding="utf-8"))
    print(f"report: {report}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hpcflow`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from hpcflow.io.shards import ShardingError
    from hpcflow.workflow.analyze import AnalysisError
    from hpcflow.workflow.model_io import ModelError
    from hpcflow.workflow.runcard import RunCardError
    from hpcflow.workflow.signals import Interrupted
    from hpcflow.workflow.train import TrainingDiverged

    progress = not args.no_progress
    try:
        if args.command == "train":
            _train(args.card, progress)
        elif args.command == "sample":
            _sample(args.card, progress)
        elif args.command == "solve":
            _solve(args.card)
        elif args.command == "analyze":
            _analyze(args.run_dir)
        elif args.command == "run":
            run_dir = _sample(args.card, progress, train_first=True)
            if _is_root():
                _analyze(run_dir)
    except (RunCardError, AnalysisError, ModelError, ShardingError) as err:
        problems = err.problems if isinstance(err, RunCardError) else [str(err)]
        source = f"{err.source}: " if isinstance(err, RunCardError) else ""
        for line in problems:
            print(f"hpcflow: error: {source}{line}", file=sys.stderr)
        return 2
    except Interrupted as err:
        print(f"hpcflow: {err}", file=sys.stderr)
        return 128 + err.signum
    except TrainingDiverged as err:
        print(f"hpcflow: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
