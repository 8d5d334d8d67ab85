"""The ``ketamine-outcomes`` command.

Exit status: 0 success, 1 the data have problems (or a job failed), 2 usage error,
128 + the signal when stopped by SIGINT (130) or SIGTERM (143) (``report`` and ``batch``).
Bad data never produce a Python traceback: they produce a list of problems.

The commands are thin: they parse options, call the package (``analysis.report`` for
``report``, ``batch`` and ``figures``) and turn its errors into messages and exit codes.
Nothing below the command line imports this module.

Examples
--------
>>> import analysis
>>> from analysis.cli import main
>>> main(["validate", str(analysis.sample_path())])
/...sample: usable (500 patients, 4760 sessions, 12323 assessments, 196 medications; 0 warning(s)).
0
>>> main(["report", "-p", "min_cell_count", "0"])
2
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors; keep that, say it plainly
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _build_parser(with_import: bool = True) -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="ketamine-outcomes", description="Outcome research on ketamine therapy for depression.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", help="check a dataset folder against data format v1")
    p.add_argument("path", type=Path, help="dataset folder")
    p.add_argument("--max-problems", type=int, default=100, help="problems to print (the rest are counted)")
    p.add_argument("--allow-free-text", action="append", default=[], metavar="COLUMN",
                   help="a column whose free text you allow (still scanned for e-mails, phone numbers, dates, ...); repeatable")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("simulate", help="write a simulated dataset with its ground truth")
    p.add_argument("--patients", type=int, default=500, help="number of patients (default 500)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--sites", type=int, default=3, help="number of sites (default 3)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="table file format (default csv)")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("outcomes", help="derive courses, relapse, durability and attrition tables")
    p.add_argument("path", type=Path, help="dataset folder")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--instrument", default="PHQ-9", help="instrument the outcomes are defined on (default PHQ-9)")
    p.add_argument("--allow-free-text", action="append", default=[], metavar="COLUMN",
                   help="a column whose free text you allow (still scanned for e-mails, phone numbers, dates, ...); repeatable")
    _add_definition_options(p)
    p.set_defaults(func=_cmd_outcomes)

    p = sub.add_parser("report", help="render the cohort report notebook with papermill")
    p.add_argument("--data", type=Path, default=None, help="dataset folder (default: the bundled sample)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default reports/<name>)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a report parameter (repeatable), e.g. -p instrument MADRS -p sites site_A,site_B")
    p.add_argument("--timeout", type=float, default=900, help="seconds a notebook cell may run (default 900)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("batch", help="render one cohort report per row of a spec (TOML, YAML or CSV)")
    p.add_argument("spec", type=Path, help="the spec file listing the cohorts")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default reports/)")
    p.add_argument("--workers", type=int, default=None, help="parallel renders (default: one per core)")
    p.add_argument("--force", action="store_true", help="render even the reports that are unchanged")
    p.add_argument("--timeout", type=float, default=900, help="seconds one report may take (default 900)")
    p.add_argument("--notebook", type=Path, default=None,
                   help="render this notebook instead of the bundled cohort report (it gets the same parameters)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="render on this Dask scheduler (tcp://HOST:PORT) instead of local workers; needs the "
                        "'distributed' extra")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--shared-output", dest="output", action="store_const", const="shared",
                       help="with --scheduler: the workers write into --out (a filesystem shared with them)")
    where.add_argument("--ship-output", dest="output", action="store_const", const="ship",
                       help="with --scheduler: the workers send each report back to this process")
    p.set_defaults(func=_cmd_batch, output="auto")

    p = sub.add_parser("figures", help="render the paper figures (byte-identical across runs) with a manifest")
    p.add_argument("--data", type=Path, default=None, help="dataset folder (default: the bundled sample)")
    p.add_argument("--out", type=Path, default=Path("reports/figures"), help="output folder (default reports/figures)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a figure parameter (repeatable)")
    p.set_defaults(func=_cmd_figures)

    if with_import:
        from .io.cli import add_import_parser  # import redcap|mapped|sdtm|omop (docs/import.md)

        add_import_parser(sub)
    else:
        # the readers' options need their modules (and those pandas): a stand-in, replaced by
        # the whole parser when the command is "import" (main)
        from .io.cli import IMPORT_HELP

        sub.add_parser("import", help=IMPORT_HELP, add_help=False)
    return parser


def _add_definition_options(parser: argparse.ArgumentParser) -> None:
    """One option per outcome definition, named after its field (``--relapse-confirmations 1``)."""
    from dataclasses import fields

    from .outcomes import Definitions

    group = parser.add_argument_group("outcome definitions (defaults: docs/outcomes.md)")
    for f in fields(Definitions):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None)
        elif f.name == "same_day":
            group.add_argument(flag, dest=f.name, choices=("mean", "first", "last", "max"), default=None)
        elif f.name in ("induction_sessions", "futility_after_session", "relapse_confirmations"):
            group.add_argument(flag, dest=f.name, type=int, default=None, metavar="N")
        else:
            group.add_argument(flag, dest=f.name, type=float, default=None, metavar="X")


def _definitions_from(args: argparse.Namespace) -> dict:
    from dataclasses import fields

    from .outcomes import Definitions

    return {f.name: getattr(args, f.name) for f in fields(Definitions) if getattr(args, f.name, None) is not None}


def _load_or_report(path: Path, allow_free_text=()):
    from .dataset import check_dataset

    dataset, report = check_dataset(path, allow_free_text=tuple(allow_free_text))
    if dataset is None:
        print(report.format(limit=50), file=sys.stderr)
    return dataset


def _cmd_outcomes(args: argparse.Namespace) -> int:
    from .outcomes import derive_outcomes

    dataset = _load_or_report(args.path, args.allow_free_text)
    if dataset is None:
        return EXIT_PROBLEMS
    try:
        outcomes = derive_outcomes(dataset, args.instrument, **_definitions_from(args))
    except (KeyError, TypeError, ValueError) as exc:
        print(f"ketamine-outcomes outcomes: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return EXIT_USAGE
    for path in outcomes.write(args.out):
        print(path)
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    from .dataset import check_dataset

    dataset, report = check_dataset(args.path, allow_free_text=tuple(args.allow_free_text))
    stream = sys.stdout if report.ok else sys.stderr
    if report.n_errors or report.n_warnings:
        print(report.format(limit=args.max_problems), file=stream)
    if dataset is None:
        print(f"{args.path}: not usable ({report.n_errors} error(s)).", file=sys.stderr)
        return EXIT_PROBLEMS
    counts = ", ".join(f"{len(t)} {n}" for n, t in dataset.tables.items())
    print(f"{args.path}: usable ({counts}; {report.n_warnings} warning(s)).")
    return EXIT_OK


def _cmd_simulate(args: argparse.Namespace) -> int:
    from .simulation import simulate

    if args.patients < 1:
        print("ketamine-outcomes simulate: --patients must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    sim = simulate(n_patients=args.patients, seed=args.seed, n_sites=args.sites)
    written = sim.write(args.out, format=args.format)
    print(f"wrote {len(written)} files to {args.out}")
    return EXIT_OK


def default_sample_path() -> Path:
    """Deprecated: use :func:`analysis.sample_path` (works from a wheel too)."""
    import warnings

    from .resources import sample_path

    warnings.warn("analysis.cli.default_sample_path() is deprecated; use analysis.sample_path()",
                  DeprecationWarning, stacklevel=2)
    return sample_path()


def _report_parameters(args: argparse.Namespace):
    """The report parameters from ``--data`` and ``-p NAME VALUE`` options, checked."""
    from .report import ReportParameters
    from .report.parameters import parse_cli_value

    values = {name: parse_cli_value(name, value) for name, value in args.parameter}
    if args.data is not None:
        values["data"] = str(args.data)
        values.setdefault("name", args.data.resolve().name)
    return ReportParameters.checked(values)


class _BadData(Exception):
    """The report's data have problems (already printed): the render stops before any cell."""


def _kernel_zygote():
    """On Linux, a kernel zygote (:mod:`analysis.report.zygote`) starting now, or None: its
    imports (two seconds of CPU) run on another core while the command validates the data, and
    the report's kernel is forked from it with them done."""
    if not sys.platform.startswith("linux"):
        return None
    import os

    from .report.zygote import BLAS_THREADS, KernelZygote

    zygote = KernelZygote(env={**BLAS_THREADS, **os.environ})
    zygote.start(wait=False)
    return zygote


def _cmd_report(args: argparse.Namespace) -> int:
    zygote = _kernel_zygote()      # first of all, so that its imports overlap everything below
    import os
    import tempfile

    from .report.cache import ENV_VAR as CACHE_VAR
    from .report.zygote import ENV_VAR as ZYGOTE_VAR

    # the data this command validates, handed to the kernel (which reads it instead of
    # validating again: .report.cache); private to this command and removed with it
    cache_root = Path(tempfile.mkdtemp(prefix="ko-cache-"))
    # the variables this command sets for its kernel, put back as they were when it ends
    # (it may be called in a process that renders more: main(["report", ...]))
    saved = {name: os.environ.get(name) for name in (CACHE_VAR, ZYGOTE_VAR)}
    os.environ[CACHE_VAR] = str(cache_root)
    try:
        return _report_with(args, zygote, cache_root)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        import shutil

        shutil.rmtree(cache_root, ignore_errors=True)
        if zygote is not None:
            zygote.stop()


def _hand_over(dataset, params, cache_root: Path) -> None:
    """Write what the report ``params`` asks for of the validated ``dataset`` into the
    command's dataset cache at ``cache_root``: the cohort's patients when the parameters
    select some (all the kernel reads), else the whole dataset."""
    from .report.cache import DatasetCache
    from .report.selection import CohortError, cohort_mask, selection_key

    cache = DatasetCache(cache_root)
    folder = params.data_path()
    selection = selection_key(params)
    if selection is not None:
        try:
            keep = cohort_mask(dataset, params)
        except CohortError:
            return                 # the kernel's first cell raises it, in the report, as without a cache
        if keep is not None:
            cache.put_cohort(dataset, keep, folder, selection)
            return
    cache.put(dataset, folder)


def _report_with(args: argparse.Namespace, zygote, cache_root: Path) -> int:
    import os
    import signal

    from .report import ParameterError
    from .report.render import ATTEMPT_FOLDER, RenderInterrupted, render_report, stop_on_signals, terminal_progress

    try:
        params = _report_parameters(args)
    except ParameterError as exc:
        print(f"ketamine-outcomes report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = args.out or Path("reports") / params.name
    missing = [p for p in (out.resolve().parent, *out.resolve().parent.parents) if not p.exists()]
    here = Path.cwd()

    def validate() -> None:
        # checked here, not kept: bad data stop the render before any cell runs, and nothing is
        # written; good data go to the kernel through the command's cache. From the command's
        # folder (papermill moves to the report's while the kernel starts), so that problems
        # name the data as given
        there = Path.cwd()
        os.chdir(here)
        try:
            dataset = _load_or_report(params.data_path())
            if dataset is not None:
                _hand_over(dataset, params, cache_root)
        finally:
            os.chdir(there)
        if dataset is None:
            raise _BadData

    try:
        with stop_on_signals() as stop:
            if zygote is not None:
                validate()                 # while the zygote imports
                _fork_kernels_from(zygote)
            result = render_report(params, out, timeout=args.timeout, progress=terminal_progress(name=params.name),
                                   while_kernel_starts=None if zygote is not None else validate)
    except _BadData:
        for folder in missing:  # the folders made for the report (deepest first), as they were
            try:
                folder.rmdir()
            except OSError:
                break
        return EXIT_PROBLEMS
    except RenderInterrupted as exc:
        print(f"report {params.name}: {exc}; {out} is as it was", file=sys.stderr)
        return 128 + exc.signum
    if stop.signum is not None:
        print(f"report {params.name}: {result.status}; finished as {signal.Signals(stop.signum).name} arrived",
              file=sys.stderr)
        return 128 + stop.signum
    if result.status == "stale":
        print(f"report {params.name}: stale: the latest attempt {result.attempt}: {result.error}", file=sys.stderr)
        if result.failed_cell:
            print(f"failing cell:\n{result.failed_cell}", file=sys.stderr)
        print(f"the last good report is kept in {result.out}; the attempt is in {result.out / ATTEMPT_FOLDER}",
              file=sys.stderr)
        return EXIT_PROBLEMS
    if result.status != "ok":
        print(f"report {params.name}: {result.status}: {result.error}", file=sys.stderr)
        if result.failed_cell:
            print(f"failing cell:\n{result.failed_cell}", file=sys.stderr)
        print(f"the executed notebook is in {result.out}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"report {params.name}: {result.out / 'report.html'} ({result.seconds:.1f} s)")
    return EXIT_OK


def _fork_kernels_from(zygote) -> None:
    """Have this process's renders fork their kernel from ``zygote`` once it listens; if it
    could not start, say so and let the kernel start as usual."""
    import os

    from .report.zygote import ENV_VAR

    try:
        zygote.wait_ready()
    except RuntimeError as exc:
        print(f"ketamine-outcomes report: {exc}; the kernel starts without it", file=sys.stderr)
        return
    os.environ[ENV_VAR] = zygote.socket_path


def _cmd_batch(args: argparse.Namespace) -> int:
    import signal

    from .report.batch import BatchInterrupted, SpecError, run_batch
    from .report.distributed import DistributedUnavailable, SchedulerUnreachable

    if args.output != "auto" and args.scheduler is None:
        print("ketamine-outcomes batch: --shared-output and --ship-output need --scheduler", file=sys.stderr)
        return EXIT_USAGE
    if args.workers is not None and args.workers < 1:
        print("ketamine-outcomes batch: --workers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.notebook is not None and not args.notebook.is_file():
        print(f"ketamine-outcomes batch: --notebook: no such file: {args.notebook}", file=sys.stderr)
        return EXIT_USAGE
    interrupted = None
    try:
        results = run_batch(args.spec, args.out, workers=args.workers, force=args.force, timeout=args.timeout,
                            notebook=args.notebook, scheduler=args.scheduler, output=args.output)
    except (SpecError, DistributedUnavailable, SchedulerUnreachable) as exc:
        print(f"ketamine-outcomes batch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BatchInterrupted as exc:
        interrupted, results = exc, exc.results
    bad = [r for r in results if r.status not in ("ok", "skipped")]
    for r in results:
        how = f" (latest attempt {r.attempt}; the last good report is kept)" if r.status == "stale" else ""
        line = f"{r.status:11} {r.name}" + (f": {r.error}" if r.error else "") + how
        print(line, file=sys.stderr if r in bad else sys.stdout)
    print(f"index: {Path(args.out) / 'index.html'}")
    if interrupted is not None:
        print(f"ketamine-outcomes batch: interrupted by {signal.Signals(interrupted.signum).name}; "
              "run the same command again to resume (finished reports are skipped)", file=sys.stderr)
        return 128 + interrupted.signum
    return EXIT_PROBLEMS if bad else EXIT_OK


def _cmd_figures(args: argparse.Namespace) -> int:
    from .report import ParameterError
    from .report.paper import render_figures

    try:
        result = render_figures(data=args.data, out=args.out,
                                parameters={name: value for name, value in args.parameter})
    except ParameterError as exc:
        print(f"ketamine-outcomes figures: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if result.status != "ok":
        print(f"figures: {result.status}: {result.error}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"figures: {result.out / 'manifest.json'}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ketamine-outcomes`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # built without the import readers' options, which import pandas (0.6 s of every command)
    parser = _build_parser(with_import=False)
    args, unknown = parser.parse_known_args(argv)
    if args.command == "import":
        args = _build_parser().parse_args(argv)
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
