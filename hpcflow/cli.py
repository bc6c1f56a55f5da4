"""The ``hpcflow`` command.

``hpcflow train CARD.toml``    train (or resume training) the model of a run card (a flow, or a gauge gradient flow)
``hpcflow sample CARD.toml``   run (or resume) the sampler of a run card (HMC or NMCMC)
``hpcflow analyze RUN_DIR``    Gamma-method analysis and report of a run directory
``hpcflow status RUN_DIR``     where a run stands (stage, update N of M, checkpoint, rate, time left)
``hpcflow solve CARD.toml``    Dirac-operator solves on a stored gauge configuration (a [solve] card)
``hpcflow precond train CARD``  train a gauge-equivariant preconditioner (a [precond] card)
``hpcflow export RUN_DIR --format F``  stored SU(3) configurations as ILDG, NERSC or openQCD files
``hpcflow import FILE... --to STORE.h5``  gauge files of other codes into a new store
``hpcflow run CARD.toml``      the workflow (Parsl): train, sample and an HMC baseline, analyze, compare;
                               ``--system NAME`` (default local); prints the report path
``hpcflow jobs render|submit CARD.toml --system NAME``   batch job scripts (Slurm, PBS)

Bad input exits with status 2 and one line per problem; a run stopped by SIGTERM/SIGINT
checkpoints and exits with 128 + the signal number (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path

from hpcflow import __version__

__all__ = ["main"]


def _positive(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number of updates")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpcflow", description="Machine learning for lattice field theory at scale.")
    p.add_argument("--version", action="version", version=f"hpcflow {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    t = sub.add_parser("train", help="train or resume training the model of a run card (coupling flow, gauge gradient flow or U(1) gauge coupling flow)")
    t.add_argument("card", type=Path, help="TOML run card with [model] and [training]")
    s = sub.add_parser("sample", help="run or resume the sampler of a run card")
    s.add_argument("card", type=Path, help="TOML run card")
    s.add_argument("--extend", type=_positive, default=0, metavar="N",
                   help="continue the run for N more updates (the store equals that of the longer card)")
    a = sub.add_parser("analyze", help="analyse a run directory and write its report",
                       description="Gamma-method analysis of a run directory. With the card's [analysis] settings "
                       "it writes RUN_DIR/report/; with other settings a new analysis beside it, "
                       "RUN_DIR/report_<settings>/ (e.g. report_t_min3), unless --out says where.")
    a.add_argument("run_dir", type=Path, help="run directory (holds configs.h5)")
    a.add_argument("--t-min", type=int, help="first time slice of the correlator fit (default: the card's)")
    a.add_argument("--t-max", type=int, help="last time slice of the correlator fit (default: the card's, or L0/2)")
    a.add_argument("--reweight", action=argparse.BooleanOptionalAction, default=None,
                   help="importance-reweight the NMCMC proposals (default: the card's)")
    a.add_argument("--out", type=Path, help="report directory (default: see above)")
    st = sub.add_parser("status", help="where a run stands: stage, update N of M, checkpoint, rate, time left")
    st.add_argument("run_dir", type=Path, help="run directory")
    v = sub.add_parser("solve", help="Dirac-operator solves on a stored gauge configuration")
    v.add_argument("card", type=Path, help="TOML card with a [solve] section")
    pc = sub.add_parser("precond", help="gauge-equivariant preconditioners of the Dirac operator")
    pcsub = pc.add_subparsers(dest="precond_command", required=True, metavar="ACTION")
    pt = pcsub.add_parser("train", help="train the model of a [precond] card on its stored configuration")
    pt.add_argument("card", type=Path, help="TOML card with a [precond] section")
    ex = sub.add_parser("export", help="stored 4D SU(3) configurations as ILDG, NERSC or openQCD files")
    ex.add_argument("run_dir", type=Path, help="run directory (its configs.h5)")
    ex.add_argument("--format", required=True, choices=("ildg", "nersc", "openqcd"), help="the file format")
    ex.add_argument("--steps", type=int, nargs="+", help="stored steps (default all; -1 is the last)")
    ex.add_argument("--chains", type=int, nargs="+", help="chains (default all)")
    ex.add_argument("--precision", type=int, default=64, choices=(32, 64), help="ILDG and NERSC: bits per real")
    ex.add_argument("--out", type=Path, help="output directory (default RUN_DIR/export)")
    im = sub.add_parser("import", help="gauge files of other codes (ILDG, NERSC, openQCD) into a new store")
    im.add_argument("files", type=Path, nargs="+", help="gauge files, one store row each")
    im.add_argument("--to", type=Path, required=True, help="the new configs.h5")
    im.add_argument("--format", choices=("ildg", "nersc", "openqcd"), help="default: detected from each file")
    r = sub.add_parser("run", help="the workflow (Parsl): train, sample (+ HMC baseline), analyze, report")
    r.add_argument("card", type=Path, help="TOML run card")
    r.add_argument("--system", default="local", help="jobs/systems/NAME.toml or a path (default: local)")
    r.add_argument("--retries", type=int, default=1, help="retries of a failed stage (default 1)")
    j = sub.add_parser("jobs", help="batch job scripts: render or submit")
    jsub = j.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    for action, text in (("render", "print the job script"), ("submit", "write the job script and sbatch/qsub it")):
        a = jsub.add_parser(action, help=text)
        a.add_argument("card", type=Path, help="TOML run card")
        a.add_argument("--system", required=True, help="jobs/systems/NAME.toml or a path")
        a.add_argument("-o", "--output", type=Path, help="where to write the script")
    return p


def _is_root() -> bool:
    """Rank 0 of a parallel launch (or a serial run): it alone prints and analyses."""
    from hpcflow.parallel.env import ClusterEnv

    return ClusterEnv.detect().is_root


def _error(lines: list[str], same_on_every_rank: bool) -> None:
    """Print an error, one ``hpcflow: error:`` line each; at several ranks rank 0 prints the errors
    that every rank finds alike (a bad card), and every rank prints its own, with its rank."""
    from hpcflow.parallel.env import ClusterEnv

    env = ClusterEnv.detect()
    if env.size > 1 and not env.is_root and same_on_every_rank:
        return
    where = f"rank {env.rank}: " if env.size > 1 and not env.is_root else ""
    for line in lines:
        print(f"hpcflow: {where}error: {line}", file=sys.stderr)


def _say(text: str) -> None:
    if _is_root():
        print(text)


class _CardInvalid(Exception):
    """A card that does not validate: every rank finds the same problems (rank 0 reports them)."""

    def __init__(self, err: Exception) -> None:
        super().__init__(str(err))
        self.err = err


def _load(card_path: Path):  # noqa: ANN202 - a RunCard (imported lazily)
    from hpcflow.workflow.runcard import RunCardError, load_runcard

    try:
        return load_runcard(card_path)
    except RunCardError as err:
        raise _CardInvalid(err) from None


def _train(card_path: Path, progress: bool) -> None:
    from hpcflow.workflow.train import train

    _say(f"trained model: {train(_load(card_path), progress=progress)}")


def _sample(card_path: Path, progress: bool, extend: int) -> None:
    from hpcflow.workflow.sample import sample

    _say(f"configurations: {sample(_load(card_path), progress=progress, extend=extend)}")


def _solve(card_path: Path) -> None:
    from hpcflow.workflow.runcard import load_runcard
    from hpcflow.workflow.solve import solve

    out = solve(load_runcard(card_path))
    summary = json.loads((out / "solve.json").read_text())
    print(f"{'mass':>8} {'iterations':>10} {'work (D)':>9} {'seconds':>8} {'residual':>10} {'converged':>9}")
    for r in summary["results"]:
        print(f"{r['mass']:>8.4f} {r['iterations']:>10} {r['work']:>9.1f} {r['seconds']:>8.2f} {r['final_residual']:>10.2e} "
              f"{str(r['converged']):>9}")
    print(summary["work_definition"])
    print(f"results: {out / 'solve.json'}")


def _run(card_path: Path, system: str, retries: int) -> None:
    from hpcflow.workflow.pipeline import run_workflow
    from hpcflow.workflow.systems import load_system

    print(f"report: {run_workflow(card_path, load_system(system), retries)}")


def _jobs(action: str, card_path: Path, system_name: str, output: Path | None) -> None:
    from hpcflow.workflow.jobs import render, submit
    from hpcflow.workflow.runcard import load_runcard
    from hpcflow.workflow.systems import load_system

    card, system = load_runcard(card_path), load_system(system_name)
    script = render(card, str(card_path), system)
    if action == "render" and output is None:
        print(script, end="")
        return
    path = output or card.run_dir.with_name(f"{card.run_dir.name}.{system.name}.sh")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script, encoding="utf-8")
    print(f"job script: {path}")
    if action == "submit":
        print(f"job id: {submit(path, system)}")


def _analyze(args: argparse.Namespace) -> None:
    from hpcflow.workflow.analyze import analyze

    report = analyze(args.run_dir, t_min=args.t_min, t_max=args.t_max, reweight=args.reweight, out=args.out)
    print((report / "report.md").read_text(encoding="utf-8"))
    print(f"report: {report}")


def _dispatch(args: argparse.Namespace, progress: bool) -> None:
    """Run the subcommand of ``args``."""
    if args.command == "train":
        _train(args.card, progress)
    elif args.command == "sample":
        _sample(args.card, progress, args.extend)
    elif args.command == "solve":
        _solve(args.card)
    elif args.command == "analyze":
        _analyze(args)
    elif args.command == "precond":
        from hpcflow.workflow.precond import precond_train

        print(f"model: {precond_train(_load(args.card), progress=progress)}")
    elif args.command == "status":
        from hpcflow.workflow.status import status

        print("\n".join(status(args.run_dir)))
    elif args.command == "export":
        from hpcflow.workflow.interchange import export_run

        files = export_run(args.run_dir, args.format, args.steps, args.chains, args.out, args.precision)
        print(f"{len(files)} {args.format} files in {files[0].parent if files else args.out}")
    elif args.command == "import":
        from hpcflow.parallel.world import World
        from hpcflow.workflow.interchange import describe_import, import_files

        store = import_files(args.files, args.to, args.format, World.detect())
        _say("\n".join(describe_import(store)) + f"\nstore: {store}")
    elif args.command == "run":
        _run(args.card, args.system, args.retries)
    elif args.command == "jobs":
        _jobs(args.jobs_command, args.card, args.system, args.output)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hpcflow`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from hpcflow.io.checkpoint import CheckpointError
    from hpcflow.io.formats import GaugeFileError
    from hpcflow.io.shards import ShardingError
    from hpcflow.samplers.nmcmc import NonFiniteWeights
    from hpcflow.workflow.analyze import AnalysisError
    from hpcflow.workflow.interchange import InterchangeError
    from hpcflow.workflow.jobs import JobError
    from hpcflow.workflow.model_io import ModelError
    from hpcflow.workflow.pipeline import WorkflowError
    from hpcflow.workflow.precond import PrecondModelError
    from hpcflow.workflow.runcard import RunCardError
    from hpcflow.workflow.rundir import RunDirLocked
    from hpcflow.workflow.signals import Interrupted
    from hpcflow.workflow.status import StatusError
    from hpcflow.workflow.systems import SystemConfigError
    from hpcflow.workflow.train import TrainingDiverged

    try:
        _dispatch(args, progress=not args.no_progress)
    except _CardInvalid as invalid:
        _error([f"{invalid.err.source}: {p}" for p in invalid.err.problems], same_on_every_rank=True)
        return 2
    except (RunCardError, AnalysisError, ModelError, ShardingError, SystemConfigError, WorkflowError, JobError,
            CheckpointError, RunDirLocked, StatusError, PrecondModelError, GaugeFileError, InterchangeError) as err:
        problems = [f"{err.source}: {p}" for p in err.problems] if isinstance(err, RunCardError) else [str(err)]
        _error(problems, same_on_every_rank=False)
        return 2
    except Interrupted as err:  # every rank stops at the same update; rank 0 says so
        if _is_root():
            print(f"hpcflow: {err}", file=sys.stderr)
        return 128 + err.signum
    except KeyboardInterrupt:  # Ctrl-C outside a stage's own handler (the workflow waiting on its stages)
        print("hpcflow: interrupted; running stages checkpoint and stop; rerun the same command to resume",
              file=sys.stderr)
        return 130
    except (TrainingDiverged, NonFiniteWeights) as err:
        _error([str(err)], same_on_every_rank=False)
        return 1
    return 0


def entry() -> None:
    """The ``hpcflow`` command: :func:`main`, then exit with its status.

    A process of a parallel launch (more than one rank) leaves by
    :func:`~hpcflow.parallel.teardown.leave` after a success or a signal (which every rank
    answers alike), skipping the interpreter finalization where a torch.distributed teardown race
    can abort it; after a failure, or an exception it did not expect, it prints the error with its
    rank and ends the whole job (:func:`~hpcflow.parallel.teardown.abort`), so that ranks waiting
    for it in a collective do not wait until the walltime."""
    from hpcflow.parallel.env import ClusterEnv
    from hpcflow.parallel.teardown import abort, leave

    env = ClusterEnv.detect()
    if env.size == 1:
        sys.exit(main())
    try:
        status = main()
    except SystemExit as done:  # --help, --version, a bad command line
        status = done.code if isinstance(done.code, int) else 1
    except BaseException as err:  # noqa: BLE001 - any failure of one rank must end all of them
        print(f"hpcflow: rank {env.rank}: error: {type(err).__name__}: {err}", file=sys.stderr)
        traceback.print_exc()
        abort(1)
    if status == 0 or status > 128:
        leave(status)
    abort(status)


if __name__ == "__main__":
    entry()
