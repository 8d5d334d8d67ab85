"""Batch rendering: a spec lists cohorts; each becomes a report, in parallel worker processes.

Every cohort is checked (names, parameters, data, cohort filters) before any kernel starts.
Each report runs in a worker process of its own session, with a time limit; its kernel leads
a process group of its own, and both groups are stopped when the report ends, times out or
the batch is stopped (SIGINT, SIGTERM). One failing cohort never stops the others. A report
is written into a temporary folder and moved into place only when complete; a failed rerun
keeps the last good report (``stale``). A report whose notebook, parameters, data and package
version are unchanged is skipped unless forced. ``index.html`` and ``index.json`` list every
cohort with its status.

With a Dask scheduler (``scheduler=``, ``--scheduler``) each report is one task on the
cluster instead (:mod:`analysis.report.distributed`), rendered by the same isolated worker
process as here (:func:`run_isolated`). Every report's kernel runs with BLAS and OpenMP pinned
to one thread (two renders on two cores with multi-threaded BLAS only burn CPU), and reads
its dataset from the batch's validated cache (:mod:`analysis.report.cache`) instead of
validating it again.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cache import ENV_VAR as CACHE_ENV_VAR
from .cache import DatasetCache, arrow_tables, dataset_digest
from .differencing import CohortMembers, withheld_cohorts
from .parameters import ParameterError, ReportParameters, parse_cli_value
from .provenance import cache_key
from .render import (
    ATTEMPT_FOLDER, KERNEL_PID_FILE, RenderResult, describe_exit, finish_attempt, kill_process_group,
    last_good, notebook_path, partial_folder, remove_tree, write_json,
)
from .worker import JOB_FILE as _JOB_FILE
from .worker import OUTCOME_FILE as _OUTCOME_FILE
from .worker import PID_FILE as _PID_FILE
from .zygote import BLAS_THREADS, WORKER_PRELOAD, worker_command
from .zygote import ENV_VAR as ZYGOTE_VAR
from .zygote import PRELOAD as KERNEL_PRELOAD

__all__ = ["BatchJob", "BatchInterrupted", "load_spec", "plan_batch", "run_batch", "run_isolated", "write_index",
           "SpecError"]

#: longest cohort name (a folder name; the temporary folder adds about 20 characters)
MAX_NAME_LENGTH = 100
#: names of the files a batch writes beside the report folders
RESERVED_NAMES = ("index.html", "index.json")


class SpecError(ValueError):
    """The spec file itself cannot be read (not a problem of one cohort)."""


class BatchInterrupted(Exception):
    """The batch was stopped by a signal (SIGINT or SIGTERM) after writing its index.

    ``signum`` is the signal, ``results`` the index's entries: finished reports as they
    ended, the others ``interrupted``.
    """

    def __init__(self, signum: int, results: list[RenderResult]):
        self.signum = signum
        self.results = results
        unfinished = sum(r.status == "interrupted" for r in results)
        super().__init__(f"batch interrupted by {signal.Signals(signum).name}: {unfinished} report(s) unfinished")


@dataclass
class BatchJob:
    """One cohort of a batch: its parameters (None when invalid) and why it is invalid."""

    name: str
    row: int
    params: ReportParameters | None
    error: str | None = None
    key: str | None = None
    #: what a job without parameters is reported as: ``invalid``, or ``withheld`` (its report
    #: and earlier ones would give counts by subtraction: :mod:`.differencing`)
    status: str = "invalid"


def load_spec(path: str | Path) -> list[dict[str, Any]]:
    """Read a batch spec (TOML, YAML or CSV) into one dict of parameters per cohort.

    TOML and YAML: an optional ``defaults`` table and a list ``cohort`` (TOML ``[[cohort]]``)
    or ``cohorts`` (YAML). CSV: one row per cohort, columns named after parameters; empty
    cells take the default, list parameters are comma-separated, ``definitions`` is JSON.
    A relative ``data`` path is relative to the spec file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the spec: {exc}") from exc
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            spec = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{path}: not valid TOML: {exc}") from exc
        rows = _with_defaults(spec, "cohort", path)
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            spec = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise SpecError(f"{path}: not valid YAML: {exc}") from exc
        rows = _with_defaults(spec, "cohorts", path)
    elif suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        rows = []
        for record in reader:
            row = {}
            for name, value in record.items():
                if name is None or value is None or value.strip() == "":
                    continue
                try:
                    row[name.strip()] = parse_cli_value(name.strip(), value.strip())
                except (ParameterError, ValueError) as exc:
                    row[name.strip()] = ("__invalid__", str(exc))
            rows.append(row)
    else:
        raise SpecError(f"{path}: spec must be .toml, .yaml, .yml or .csv")
    if not rows:
        raise SpecError(f"{path}: the spec lists no cohorts")
    for row in rows:
        if isinstance(row.get("data"), str) and row["data"] and not Path(row["data"]).is_absolute():
            row["data"] = str((path.parent / row["data"]).resolve())
    return rows


def _with_defaults(spec: dict, key: str, path: Path) -> list[dict[str, Any]]:
    if not isinstance(spec, dict):
        raise SpecError(f"{path}: expected a table with optional 'defaults' and a list '{key}'")
    defaults = spec.get("defaults", {}) or {}
    cohorts = spec.get(key, [])
    if not isinstance(cohorts, list) or not all(isinstance(c, dict) for c in cohorts):
        raise SpecError(f"{path}: '{key}' must be a list of tables, one per cohort")
    unknown = sorted(set(spec) - {"defaults", key})
    if unknown:
        raise SpecError(f"{path}: unknown top-level key(s) {unknown}; expected 'defaults' and '{key}'")
    return [{**defaults, **c} for c in cohorts]


def _shown(value: str, limit: int = 40) -> str:
    """``repr`` of a value, cut to about ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 2] + "…" + text[-1]


def _label(name: str) -> str:
    """A cohort name as the index shows it: printable, at most 60 characters."""
    text = name if name.isprintable() else repr(name)[1:-1]
    return text if len(text) <= 60 else text[:59] + "…"


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a report folder's name (None if it can)."""
    if any(unicodedata.category(c) == "Cc" for c in name):
        return f"must not contain control characters (NUL, tab, newline, ...), got {_shown(name)}"
    if len(name) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters, got {len(name)} characters ({_shown(name)})"
    if "/" in name or "\\" in name or os.sep in name or (os.altsep and os.altsep in name):
        return f"must not contain a path separator (/ or \\), got {_shown(name)}"
    if name.startswith(".") or ".." in name:
        return f"must not start with '.' or contain '..', got {_shown(name)}"
    if name.casefold() in RESERVED_NAMES:
        return f"{name!r} is the batch index's file name; choose another name"
    return None


def plan_batch(rows: list[dict[str, Any]], out: Path, *, notebook: str | Path | None = None,
               cache: DatasetCache | None = None) -> list[BatchJob]:
    """Check every cohort before anything runs: names, parameters, data, and the cohort filters.

    Each data folder is validated once; with ``cache``, the validated dataset and each filtered
    cohort's own patients are written to it for the reports to read (:mod:`analysis.report.cache`).
    Cohorts whose reports could be subtracted from earlier ones to give a small group are
    ``withheld`` (:mod:`analysis.report.differencing`).

    Invalid rows become jobs without parameters whose ``error`` starts with the row
    (``row 3, column name: ...`` or ``row 3: ...``) and says what is expected.

    Examples
    --------
    >>> from pathlib import Path
    >>> from analysis.report.batch import plan_batch
    >>> jobs = plan_batch([{"name": "all"}, {"name": "ALL"}, {"name": "a/b"}], Path("reports"))
    >>> [job.error is None for job in jobs]
    [True, False, False]
    >>> print(jobs[2].error)
    row 3, column name: must not contain a path separator (/ or \\), got 'a/b'
    """
    from ..dataset import check_dataset
    from .selection import CohortError, cohort_mask, selection_key

    jobs: list[BatchJob] = []
    seen: dict[str, tuple[int, str]] = {}
    datasets: dict[Path, Any] = {}
    first_key: dict[str, int] = {}           # the first patient key of each dataset (by content)
    folder_digest: dict[Path, str] = {}
    arrow: dict[Path, dict] = {}             # each dataset's tables as Arrow, for its cohorts' cache entries
    members: list[CohortMembers] = []
    notebook = Path(notebook) if notebook else notebook_path("cohort_report")
    for i, row in enumerate(rows, start=1):
        raw = row.get("name")
        name = str(raw or f"cohort_{i}")
        if isinstance(raw, str) and raw:
            problem = _name_problem(raw)
            if problem:
                jobs.append(BatchJob(_label(raw), i, None, f"row {i}, column name: {problem}"))
                continue
        bad = {k: v[1] for k, v in row.items() if isinstance(v, tuple) and v and v[0] == "__invalid__"}
        if bad:
            jobs.append(BatchJob(name, i, None, f"row {i}: " + "; ".join(bad.values())))
            continue
        try:
            params = ReportParameters.checked({"name": name, **row})
        except ParameterError as exc:
            jobs.append(BatchJob(_label(name), i, None, f"row {i}: {exc}"))
            continue
        if name.casefold() in seen:
            j, other = seen[name.casefold()]
            why = (f"{name!r} is used by row {j} too; names must be unique" if other == name else
                   f"{name!r} names the same folder as row {j} ({other!r}) on case-insensitive file systems; "
                   "names must differ in more than case")
            jobs.append(BatchJob(name, i, None, f"row {i}, column name: {why}"))
            continue
        seen[name.casefold()] = (i, name)
        folder = params.data_path().resolve()
        if folder not in datasets:
            datasets[folder] = check_dataset(folder)
            if cache is not None and datasets[folder][0] is not None:
                cache.put(datasets[folder][0], folder)
        dataset, report = datasets[folder]
        if dataset is None:
            jobs.append(BatchJob(name, i, None, f"row {i}: data {folder} are not usable: {report.n_errors} error(s); "
                                               f"run ketamine-outcomes validate {folder}"))
            continue
        try:
            keep = cohort_mask(dataset, params)
        except CohortError as exc:
            jobs.append(BatchJob(name, i, None, f"row {i}: {exc}"))
            continue
        selection = selection_key(params)
        if cache is not None and selection is not None and keep is not None:
            if folder not in arrow:
                arrow[folder] = arrow_tables(dataset)
            # the report reads its own patients only
            cache.put_cohort(dataset, keep, folder, selection, arrow=arrow[folder])
        if folder not in folder_digest:
            # patients are keyed by the folder's content, so two copies of one dataset are one
            # set of patients, and different datasets are apart
            content = dataset_digest(folder)
            if content not in first_key:
                first_key[content] = sum(len(datasets[f][0].patients) for f in
                                         {d: f for f, d in folder_digest.items()}.values())
            folder_digest[folder] = content
        positions = np.arange(len(dataset.patients)) if keep is None else np.flatnonzero(keep)
        members.append(CohortMembers(i, name, first_key[folder_digest[folder]] + positions.astype(np.int64),
                                     params.min_cell_count))
        key = cache_key(notebook=notebook, parameters={**params.literals(), "data": str(folder)}, data_folder=folder)
        jobs.append(BatchJob(name, i, params, key=key))
    withheld = withheld_cohorts(members)
    return [BatchJob(job.name, job.row, None, f"row {job.row}: {withheld[job.row]}", status="withheld")
            if job.row in withheld else job for job in jobs]


@dataclass
class _Worker:
    """A running report: its worker process, its kernel socket folder, when it started."""

    job: BatchJob
    out: Path
    proc: subprocess.Popen
    sockets: Path
    started: float

    @property
    def partial(self) -> Path:
        """The attempt's folder, named by the worker's process id (which a forked worker writes)."""
        pid_file = self.sockets / _PID_FILE
        text = pid_file.read_text().strip() if pid_file.is_file() else ""
        return partial_folder(self.out, int(text) if text.isdigit() else self.proc.pid)   # (not yet written)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def render_environment(cache_root: str | Path | None = None) -> dict[str, str]:
    """The environment of a report's worker process (and so of its kernel): this process's,
    with BLAS and OpenMP pinned to one thread unless already set, and the dataset cache.

    Examples
    --------
    >>> from analysis.report.batch import render_environment
    >>> env = render_environment("/tmp/cache")
    >>> env["KO_DATASET_CACHE"], all(name in env for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"))
    ('/tmp/cache', True)
    """
    env = {**BLAS_THREADS, **os.environ}   # one thread per render (unless the user set them)
    # the worker imports what this process imports, from where it does (as multiprocessing's spawn)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    if cache_root is not None:
        env[CACHE_ENV_VAR] = str(cache_root)
    return env


def _start(job: BatchJob, out: Path, notebook: Path | None, env: dict[str, str]) -> _Worker:
    """Start the worker for one report: a new session (its own process group), no terminal input;
    forked by the batch's zygote when ``env`` names one (:func:`.zygote.worker_command`: a third
    of a second of start-up and imports less a report), else a new Python process."""
    sockets = Path(tempfile.mkdtemp(prefix="ko-"))
    folder = out / job.name
    zygote = env.get(ZYGOTE_VAR)
    write_json(sockets / _JOB_FILE, {"parameters": job.params.literals(), "out": str(folder),
                                     "notebook": str(notebook) if notebook else None,
                                     "parent_pid": None if zygote else os.getpid()})
    command = (worker_command(zygote, str(sockets)) if zygote else
               [sys.executable, "-P", "-c", "from analysis.report.worker import main; main()", str(sockets)])
    # temporary files of the render and its kernel (jupyter's connection file...) go with the socket folder
    env = {**env, "TMPDIR": str(sockets)}
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    except BaseException:
        remove_tree(sockets)
        raise
    return _Worker(job, folder, proc, sockets, time.monotonic())


def _stop(worker: _Worker) -> None:
    """Stop a worker and its kernel: SIGKILL to both process groups, then reap the worker.

    The worker goes first, so it starts nothing more; the kernel's id is in its socket folder.
    (A kernel whose id the worker had no time to write notices its parent is gone and exits
    within a second: ipykernel's parent poller.)"""
    kill_process_group(worker.proc.pid)
    _stop_kernel(worker)
    worker.proc.wait(timeout=30)


def _stop_kernel(worker: _Worker) -> None:
    pid_file = worker.sockets / KERNEL_PID_FILE
    if pid_file.is_file():
        kill_process_group(int(pid_file.read_text()))


def _ended(worker: _Worker, code: int) -> RenderResult:
    """The result of a worker that exited by itself: what it reported, or how it died."""
    outcome = worker.sockets / _OUTCOME_FILE
    seconds = worker.elapsed()
    if outcome.is_file():
        data = json.loads(outcome.read_text(encoding="utf-8"))
        if "exception" not in data:
            return RenderResult.from_dict(data)
        result = RenderResult(worker.job.name, worker.out, "failed", seconds,
                              error=f"worker failed: {data['exception']}")
    elif code < 0:
        result = RenderResult(worker.job.name, worker.out, "crashed", seconds,
                              error=f"worker died: {describe_exit(code)}")
    else:
        result = RenderResult(worker.job.name, worker.out, "failed", seconds,
                              error=f"worker {describe_exit(code)} before reporting a result (its error is on stderr)")
    return finish_attempt(worker.partial, result)


def _poll(worker: _Worker, timeout: float) -> RenderResult | None:
    """The result of a report that ended or ran out of time (its processes stopped and its
    socket folder removed), or None while it runs within its time."""
    code = worker.proc.poll()
    if code is None and worker.elapsed() <= timeout:
        return None
    if code is None:
        _stop(worker)
        result = finish_attempt(worker.partial, RenderResult(
            worker.job.name, worker.out, "timeout", worker.elapsed(), error=f"stopped after {timeout:g} s (--timeout)"))
    else:
        _stop_kernel(worker)
        result = _ended(worker, code)
    remove_tree(worker.sockets)
    return result


def _abandon(worker: _Worker, why: str) -> RenderResult:
    """Stop a running report for good (the batch is stopping): ``interrupted``, its attempt
    removed and the previous report kept; one that ended meanwhile counts as it ended."""
    code = worker.proc.poll()
    if code is not None:
        _stop_kernel(worker)
        result = _ended(worker, code)
    else:
        _stop(worker)
        remove_tree(worker.partial)
        kept = "; the previous report is kept" if last_good(worker.out) is not None else ""
        result = RenderResult(worker.job.name, worker.out, "interrupted", worker.elapsed(),
                              error=f"stopped by {why} after {worker.elapsed():.1f} s{kept}")
    remove_tree(worker.sockets)
    return result


def run_isolated(parameters: dict[str, Any], out: str | Path, *, notebook: str | Path | None = None,
                 timeout: float = 900, cache_root: str | Path | None = None,
                 should_stop: Callable[[], str | None] = lambda: None, poll: float = 0.02,
                 kernel_zygote: str | None = None) -> RenderResult:
    """Render one report into ``out/<name>/`` in a worker process of its own, as a batch does, and wait.

    The worker leads a session of its own and its kernel a process group of its own; both are
    stopped when the report ends, after ``timeout`` seconds (``timeout``) or as soon as
    ``should_stop()`` returns a reason (``interrupted``, "stopped by <reason>", the previous
    report kept). This is what a Dask task of a batch runs on its worker
    (:mod:`analysis.report.distributed`); ``cache_root`` is the dataset cache its kernel reads,
    ``kernel_zygote`` the socket of a kernel zygote to fork the worker and its kernel from (:mod:`.zygote`).
    """
    params = ReportParameters.checked(parameters)
    job = BatchJob(params.name, 0, params)
    env = render_environment(cache_root)
    if kernel_zygote:
        env[ZYGOTE_VAR] = kernel_zygote
    worker = _start(job, Path(out), Path(notebook) if notebook else None, env)
    try:
        while True:
            result = _poll(worker, timeout)
            if result is not None:
                return result
            why = should_stop()
            if why:
                return _abandon(worker, why)
            time.sleep(poll)
    except BaseException:
        if worker.proc.poll() is None or worker.sockets.exists():
            _abandon(worker, "an error")
        raise


class _StopSignals:
    """SIGINT and SIGTERM, while a batch runs, only record the signal (the batch loop then
    stops its workers); while ``raising`` is set they raise :class:`_Stopped` instead. Only
    in the main thread (elsewhere Python delivers no signals)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.raising = False
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is None:
            self.signum = signum
        if self.raising:
            self.raising = False
            raise _Stopped(signum)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


class _Stopped(Exception):
    """A stop signal arrived while the batch was checking its spec."""


def _sweep(out: Path) -> None:
    """Remove the temporary folders and dataset caches of batches that were killed (their
    process is gone); a report whose replacement was cut short between its two renames is
    put back."""
    for entry in sorted(out.iterdir()):
        cache = re.fullmatch(r"\.cache-(\d+)", entry.name)
        if cache and entry.is_dir() and not _alive(int(cache[1])):
            remove_tree(entry)                 # a killed batch's dataset cache
            continue
        match = re.fullmatch(r"\.(partial|replaced)-(.+)-(\d+)", entry.name)
        if not match or not entry.is_dir() or _alive(int(match[3])):
            continue
        target = out / match[2]
        if match[1] == "replaced" and not target.exists():
            os.rename(entry, target)
        else:
            remove_tree(entry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True          # exists, another user's
    return True


def progress_enabled(progress: bool) -> bool:
    """Whether a batch shows its progress bar: asked for, on a terminal, and not under CI."""
    return progress and sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("true", "1", "yes")


def run_batch(spec: str | Path, out: str | Path, *, workers: int | None = None, force: bool = False,
              timeout: float = 900, progress: bool = True, notebook: str | Path | None = None,
              scheduler: Any = None, output: str = "auto") -> list[RenderResult]:
    """Render every cohort of ``spec`` into ``out/<name>/`` and write ``out/index.html`` and ``index.json``.

    Returns the results in spec order; invalid cohorts are results with status ``invalid``.
    ``notebook`` renders another notebook than the cohort report (given the same parameters).
    Called from the main thread, SIGINT and SIGTERM stop every worker and kernel, mark the
    unfinished reports ``interrupted``, write the index and raise :class:`BatchInterrupted`.

    ``scheduler`` (a Dask scheduler address, ``tcp://host:8786``, or a Dask cluster object
    such as dask-jobqueue's ``SLURMCluster``) renders on that cluster instead of local worker
    processes (``workers`` is then ignored), with ``output`` saying
    how the reports reach ``out``: ``shared`` (the workers write into ``out`` through a shared
    filesystem), ``ship`` (each report comes back to this process as bytes) or ``auto``
    (shared where a worker sees ``out``, shipped where it does not); see
    :mod:`analysis.report.distributed`. Progress is one bar for the whole batch, shown on a
    terminal only (never when ``CI`` is set).
    """
    from tqdm import tqdm

    if scheduler is not None:
        from .distributed import OUTPUT_MODES, require_distributed

        require_distributed()              # before anything is written: a clear error naming the extra
        if output not in OUTPUT_MODES:
            raise ValueError(f"output must be one of {OUTPUT_MODES}, got {output!r}")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    notebook = Path(notebook).resolve() if notebook else None
    rows = load_spec(spec)
    # the validated datasets, once per batch, where every report reads them: in the output
    # folder when a cluster's workers may read it, else in this machine's temporary folder
    if scheduler is not None:
        _sweep(out)
        cache_root = out / f".cache-{os.getpid()}"
        remove_tree(cache_root)
        cache_root.mkdir(mode=0o700)
    else:
        cache_root = Path(tempfile.mkdtemp(prefix="ko-cache-"))
    zygote = session = None
    try:
        if scheduler is not None:
            from .distributed import DaskSession

            # connected before the spec is checked: each worker's zygote does its imports meanwhile
            session = DaskSession(scheduler, out)
        elif sys.platform.startswith("linux"):
            # every kernel and worker of the batch is forked from one process that has done the
            # imports (.zygote); started first, so that they run on another core while the spec is checked
            from .zygote import KernelZygote

            zygote = KernelZygote(KERNEL_PRELOAD + WORKER_PRELOAD, env=render_environment(cache_root))
            zygote.start(wait=False)
        with _StopSignals() as stop:
            try:
                stop.raising = True
                jobs = plan_batch(rows, out, notebook=notebook, cache=DatasetCache(cache_root))
            except _Stopped:
                results = [RenderResult(_label(str(row.get("name") or f"cohort_{i}")), None, "interrupted",
                                        error=f"not started: the batch was stopped by {stop.name} while checking "
                                              "the spec")
                           for i, row in enumerate(rows, start=1)]
                write_index(results, out)
                raise BatchInterrupted(stop.signum, results) from None
            finally:
                stop.raising = False
            _sweep(out)
            results: dict[int, RenderResult] = {}
            queue: list[BatchJob] = []
            for job in jobs:
                folder = out / job.name
                if job.params is None:
                    if job.status == "withheld" and folder.is_dir():
                        remove_tree(folder)    # an earlier batch's report of it would still leak with the others
                    results[job.row] = RenderResult(job.name, None, job.status, error=job.error)
                    continue
                good = last_good(folder)
                key_file = folder / "cache_key.txt"
                if not force and good is not None and key_file.is_file() and key_file.read_text().strip() == job.key:
                    results[job.row] = RenderResult(job.name, folder, "skipped", key_figures=good.get("key_figures", {}))
                    continue
                queue.append(job)

            tqdm.monitor_interval = 0
            bar = tqdm(total=len(queue), desc="reports", unit="report", disable=not progress_enabled(progress) or not queue)
            try:
                if scheduler is not None:
                    from .distributed import run_on_dask

                    unstarted = run_on_dask(queue, out, session=session, notebook=notebook, timeout=timeout,
                                            output=output, cache_root=cache_root, results=results, stop=stop,
                                            on_done=lambda _: bar.update(1), run_isolated=run_isolated)
                else:
                    unstarted = _run_local(queue, out, notebook=notebook, timeout=timeout, cache_root=cache_root,
                                           n_workers=max(1, workers or os.cpu_count() or 1), results=results,
                                           stop=stop, on_done=lambda _: bar.update(1), zygote=zygote)
            finally:
                bar.close()
            for job in unstarted:
                results[job.row] = RenderResult(job.name, out / job.name, "interrupted",
                                                error=f"not started: the batch was stopped by {stop.name}")
            ordered = [results[job.row] for job in jobs]
            write_index(ordered, out)
            if stop.signum is not None:
                raise BatchInterrupted(stop.signum, ordered)
    finally:
        try:
            if zygote is not None:
                zygote.stop()
            if session is not None:
                session.close()
        finally:
            remove_tree(cache_root)
    return ordered


def _run_local(queue: list[BatchJob], out: Path, *, notebook: Path | None, timeout: float, cache_root: Path,
               n_workers: int, results: dict[int, RenderResult], stop: _StopSignals,
               on_done: Callable[[RenderResult], None], zygote=None) -> list[BatchJob]:
    """Render the queue in up to ``n_workers`` local worker processes, forked by ``zygote``
    (a started :class:`.zygote.KernelZygote`) when given; fills ``results`` by row and returns
    the jobs never started (the batch was stopped). The caller stops the zygote."""
    queue = list(queue)
    env = render_environment(cache_root)
    running: list[_Worker] = []
    if queue and zygote is not None:
        zygote.wait_ready()
        env = {**env, ZYGOTE_VAR: zygote.socket_path}
    try:
        while (queue or running) and stop.signum is None:
            while queue and len(running) < n_workers and stop.signum is None:
                running.append(_start(queue.pop(0), out, notebook, env))
            time.sleep(0.02)       # a free worker slot is refilled within 20 ms (200 reports: 10 s less idle)
            for worker in list(running):
                result = _poll(worker, timeout)
                if result is None:
                    continue
                results[worker.job.row] = result
                running.remove(worker)
                on_done(result)
    finally:
        # stopped by a signal, or an error of the batch itself: nothing it started outlives it
        for worker in running:
            results[worker.job.row] = _abandon(worker, stop.name or "an error of the batch")
    return queue


_STATUS_ORDER = ("ok", "skipped", "stale", "failed", "crashed", "timeout", "interrupted", "invalid", "withheld")


def write_index(results: list[RenderResult], out: Path) -> Path:
    """``index.html`` and ``index.json``: every cohort with its status, key figures and a link;
    failures with their error (and failing cell), withheld cohorts with why, stale reports
    with their latest attempt."""
    keys = ["patients", "response", "remission", "median_days_to_relapse"]
    head = "".join(f"<th>{html.escape(k.replace('_', ' '))}</th>" for k in ["cohort", "status", *keys, "seconds"])
    rows = []
    for r in results:
        name = html.escape(r.name)
        has_page = r.out is not None and (r.out / "report.html").is_file()
        link = f'<a href="{html.escape(r.out.name)}/report.html">{name}</a>' if has_page else name
        cells = [link, f'<span class="{r.status}">{r.status}</span>',
                 *[html.escape(str(r.key_figures.get(k, ""))) for k in keys],
                 "" if r.status in ("invalid", "withheld") else f"{r.seconds:.1f}"]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        if r.error:
            if r.status == "stale":
                detail = (f"<div><strong>latest attempt {html.escape(str(r.attempt))}</strong>: "
                          f"{html.escape(r.error)}; the last good report is kept</div>")
                attempt = sorted((r.out / ATTEMPT_FOLDER).glob("*.ipynb"))
                if attempt:
                    href = html.escape(f"{r.out.name}/{ATTEMPT_FOLDER}/{attempt[0].name}")
                    detail += f'<div>its notebook: <a href="{href}">{href}</a></div>'
            else:
                label = "why" if r.status == "withheld" else "error"
                detail = f"<div><strong>{label}</strong>: {html.escape(r.error)}</div>"
            if r.failed_cell:
                detail += f"<div><strong>failing cell</strong></div><pre>{html.escape(r.failed_cell)}</pre>"
            rows.append(f'<tr class="detail"><td colspan="{len(keys) + 3}">{detail}</td></tr>')
    counts = {s: sum(r.status == s for r in results) for s in _STATUS_ORDER}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Cohort reports</title><style>"
        "body{font-family:Helvetica,Arial,sans-serif;margin:2em;color:#1d2733}table{border-collapse:collapse}"
        "td,th{border-bottom:1px solid #d5dde6;padding:.3em .7em;text-align:left}.ok{color:#2b7a3d}"
        ".skipped{color:#4a6c8c}.stale,.interrupted,.withheld{color:#a3620a;font-weight:bold}"
        ".failed,.invalid,.timeout,.crashed{color:#b03a2e;font-weight:bold}pre{background:#f5f5f5;padding:.5em}"
        "</style></head><body>\n"
        f"<h1>Cohort reports</h1><p>{len(results)} cohort(s): {summary}.</p>\n"
        f"<table><tr>{head}</tr>\n" + "\n".join(rows) + "\n</table></body></html>\n"
    )
    path = out / "index.html"
    tmp = out / f".index.html.{os.getpid()}.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    write_json(out / "index.json", [r.to_file_dict() for r in results])
    return path
