"""Batch rendering: a spec lists cohorts; each becomes a report, in parallel worker processes.

Every cohort is checked (parameters, data, cohort filters) before any kernel starts. Each
report runs in its own process group with a time limit; one failing cohort never stops
the others. A report whose notebook, parameters, data and package version are unchanged
is skipped unless forced. ``index.html`` lists every cohort with its status.
"""

from __future__ import annotations

import csv
import html
import json
import multiprocessing as mp
import os
import signal
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .parameters import ParameterError, ReportParameters, parse_cli_value
from .provenance import cache_key
from .render import RenderResult, notebook_path, render_report

__all__ = ["BatchJob", "load_spec", "plan_batch", "run_batch", "write_index", "SpecError"]

RESULT_FILE = "result.json"


class SpecError(ValueError):
    """The spec file itself cannot be read (not a problem of one cohort)."""


@dataclass
class BatchJob:
    """One cohort of a batch: its parameters (None when invalid) and why it is invalid."""

    name: str
    row: int
    params: ReportParameters | None
    error: str | None = None
    key: str | None = None


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


def plan_batch(rows: list[dict[str, Any]], out: Path) -> list[BatchJob]:
    """Check every cohort before anything runs: parameters, names, data, and the cohort filters."""
    from ..dataset import check_dataset
    from .selection import CohortError, select_cohort

    jobs: list[BatchJob] = []
    seen: dict[str, int] = {}
    datasets: dict[Path, Any] = {}
    notebook = notebook_path("cohort_report")
    for i, row in enumerate(rows, start=1):
        name = str(row.get("name") or f"cohort_{i}")
        bad = {k: v[1] for k, v in row.items() if isinstance(v, tuple) and v and v[0] == "__invalid__"}
        if bad:
            jobs.append(BatchJob(name, i, None, "; ".join(bad.values())))
            continue
        try:
            params = ReportParameters.checked({"name": name, **row})
        except ParameterError as exc:
            jobs.append(BatchJob(name, i, None, str(exc)))
            continue
        if name in seen:
            jobs.append(BatchJob(name, i, None, f"name {name!r} is used by cohort {seen[name]} too; names must be unique"))
            continue
        seen[name] = i
        folder = params.data_path().resolve()
        if folder not in datasets:
            datasets[folder] = check_dataset(folder)
        dataset, report = datasets[folder]
        if dataset is None:
            jobs.append(BatchJob(name, i, None, f"data {folder} are not usable: {report.n_errors} error(s); "
                                               f"run ketamine-outcomes validate {folder}"))
            continue
        try:
            select_cohort(dataset, params)
        except CohortError as exc:
            jobs.append(BatchJob(name, i, None, str(exc)))
            continue
        key = cache_key(notebook=notebook, parameters={**params.literals(), "data": str(folder)}, data_folder=folder)
        jobs.append(BatchJob(name, i, params, key=key))
    return jobs


def _child(params: ReportParameters, out: str) -> None:
    """Worker process: its own session (so the whole group can be stopped), one report."""
    os.setsid()
    result = render_report(params, out, timeout=None)
    Path(out, RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2) + "\n")


def run_batch(spec: str | Path, out: str | Path, *, workers: int | None = None, force: bool = False,
              timeout: float = 900, progress: bool = True) -> list[RenderResult]:
    """Render every cohort of ``spec`` into ``out/<name>/`` and write ``out/index.html``.

    Returns the results in spec order; invalid cohorts are results with status ``invalid``.
    """
    from tqdm import tqdm

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan_batch(load_spec(spec), out)
    results: dict[int, RenderResult] = {}
    todo = []
    for job in jobs:
        folder = out / job.name
        if job.params is None:
            results[job.row] = RenderResult(job.name, folder, "invalid", error=job.error)
            continue
        previous = folder / RESULT_FILE
        key_file = folder / "cache_key.txt"
        if (not force and previous.exists() and key_file.exists() and key_file.read_text().strip() == job.key):
            old = json.loads(previous.read_text())
            if old.get("status") == "ok":
                results[job.row] = RenderResult(job.name, folder, "skipped", key_figures=old.get("key_figures", {}))
                continue
        todo.append(job)

    workers = max(1, workers or os.cpu_count() or 1)
    # spawn, not fork: the parent has used pyarrow's and tqdm's threads, which fork does not copy safely
    context = mp.get_context("spawn")
    running: dict[int, tuple[mp.Process, BatchJob, float]] = {}
    queue = list(todo)
    tqdm.monitor_interval = 0
    bar = tqdm(total=len(todo), desc="reports", unit="report", disable=not progress or not todo)
    while queue or running:
        while queue and len(running) < workers:
            job = queue.pop(0)
            folder = out / job.name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / RESULT_FILE).unlink(missing_ok=True)
            proc = context.Process(target=_child, args=(job.params, str(folder)), daemon=False)
            proc.start()
            running[job.row] = (proc, job, time.monotonic())
        time.sleep(0.2)
        for row, (proc, job, started) in list(running.items()):
            folder = out / job.name
            elapsed = time.monotonic() - started
            if proc.is_alive() and elapsed > timeout:
                _kill_group(proc)
                results[row] = RenderResult(job.name, folder, "timeout", elapsed, error=f"stopped after {timeout:.0f} s")
            elif not proc.is_alive():
                proc.join()
                result_file = folder / RESULT_FILE
                if result_file.exists():
                    data = json.loads(result_file.read_text())
                    results[row] = RenderResult(job.name, folder, data["status"], data["seconds"], data["error"],
                                                data["failed_cell"], data["key_figures"])
                else:
                    results[row] = RenderResult(job.name, folder, "failed", elapsed,
                                                error=f"worker exited with code {proc.exitcode} before writing a result")
            else:
                continue
            del running[row]
            bar.update(1)
    bar.close()
    ordered = [results[job.row] for job in jobs]
    write_index(ordered, out)
    return ordered


def _kill_group(proc: mp.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.join(timeout=10)


def write_index(results: list[RenderResult], out: Path) -> Path:
    """``index.html``: every cohort with its status, key figures and a link; failures with their error."""
    keys = ["patients", "response", "remission", "median_days_to_relapse"]
    head = "".join(f"<th>{html.escape(k.replace('_', ' '))}</th>" for k in ["cohort", "status", *keys, "seconds"])
    rows = []
    for r in results:
        link = (f'<a href="{html.escape(r.name)}/report.html">{html.escape(r.name)}</a>'
                if r.status in ("ok", "skipped", "failed") else html.escape(r.name))
        cells = [link, f'<span class="{r.status}">{r.status}</span>',
                 *[html.escape(str(r.key_figures.get(k, ""))) for k in keys], f"{r.seconds:.1f}"]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        if r.error:
            detail = f"<div><strong>error</strong>: {html.escape(r.error)}</div>"
            if r.failed_cell:
                detail += f"<div><strong>failing cell</strong></div><pre>{html.escape(r.failed_cell)}</pre>"
            rows.append(f'<tr class="detail"><td colspan="{len(keys) + 3}">{detail}</td></tr>')
    n_bad = sum(r.status not in ("ok", "skipped") for r in results)
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Cohort reports</title><style>"
        "body{font-family:Helvetica,Arial,sans-serif;margin:2em;color:#1d2733}table{border-collapse:collapse}"
        "td,th{border-bottom:1px solid #d5dde6;padding:.3em .7em;text-align:left}.ok{color:#2b7a3d}"
        ".skipped{color:#4a6c8c}.failed,.invalid,.timeout{color:#b03a2e;font-weight:bold}pre{background:#f5f5f5;padding:.5em}"
        "</style></head><body>\n"
        f"<h1>Cohort reports</h1><p>{len(results)} cohort(s): {len(results) - n_bad} rendered or unchanged, "
        f"{n_bad} failed.</p>\n<table><tr>{head}</tr>\n" + "\n".join(rows) + "\n</table></body></html>\n"
    )
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    (out / "index.json").write_text(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    return path
