"""Batches on a Dask distributed cluster: one task per report.

``run_batch(..., scheduler="tcp://host:8786")`` (``ketamine-outcomes batch SPEC --scheduler
tcp://host:8786``) connects to the scheduler first (:class:`DaskSession`, which has each
worker start its kernel zygote while the batch is checked), plans and checks the batch here,
as without a cluster, then submits one task per report to the scheduler. A task runs the report exactly as the local pool does
(:func:`analysis.report.batch.run_isolated`): in a worker process of its own session whose
kernel leads its own process group, both stopped when the report ends, times out or the
batch is stopped, so a report that crashes its kernel affects no other report and leaves
nothing on the Dask worker. The render process follows its Dask worker: if the worker dies,
the render and its kernel end within a second.

Lost workers. When a Dask worker dies (killed, out of memory, its machine gone) the
scheduler gives its tasks to other workers. A report is rendered at most twice: a task that
finds that its report already lost its worker twice reports it ``crashed`` without a third
attempt (and the scheduler's own limit, ``distributed.scheduler.allowed-failures``, ends it as
``crashed`` too). Attempts are counted in a Dask ``Variable`` per report.

Where the reports go (``output``):

``shared``
    The workers write each report straight into the output folder, which must be at the same
    path on every worker (a shared filesystem: NFS, Lustre, GPFS, or localhost). A worker that
    does not see it fails its report with a message saying so.
``ship``
    Each worker renders into a temporary folder of its own and sends the finished report
    folder back to this process as bytes (a tar archive), which puts it in place. Nothing is
    written on the workers' filesystems beyond their temporary folders.
``auto`` (default)
    Shared where a worker sees the output folder (this process writes a marker file,
    ``.ko-batch-<id>``, into it first and each task looks for it), shipped where it does not.

Either way the data folder must be readable at the same path on the workers (the reports
hash it for their provenance), as must the package; a ``--notebook`` of one's own is sent
with each task. The output folder holds the report folders only after they are complete
(atomic renames, ``stale`` for a failed rerun, as without a cluster).

Stopping. SIGINT or SIGTERM to the batch sets a Dask ``Event`` that every task watches: the
running renders are stopped within a second (their kernels killed), the tasks not yet
started return without starting, the futures are cancelled, and the index marks the
unfinished reports ``interrupted``.

Examples
--------
>>> from analysis.report.distributed import MAX_ATTEMPTS, OUTPUT_MODES
>>> OUTPUT_MODES, MAX_ATTEMPTS
(('auto', 'shared', 'ship'), 2)
"""

from __future__ import annotations

import io
import os
import re
import socket
import tarfile
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .render import RenderResult, finish_attempt, last_good, partial_folder, remove_tree

__all__ = ["OUTPUT_MODES", "DaskSession", "DistributedUnavailable", "SchedulerUnreachable", "ReportTask",
           "require_distributed", "render_task", "run_on_dask"]

#: how rendered reports reach the output folder (see the module docstring)
OUTPUT_MODES = ("auto", "shared", "ship")
#: renders of one report at most (the first, and one rerun after a lost worker)
MAX_ATTEMPTS = 2
#: seconds a stopped batch waits for its tasks to stop their renders before cancelling them
STOP_GRACE = 20.0
#: seconds to wait for the scheduler to answer
CONNECT_TIMEOUT = 30
_INSTALL = "pip install 'ketamine-outcomes[distributed]'"


class DistributedUnavailable(ImportError):
    """Dask distributed is not installed (the ``distributed`` extra)."""


class SchedulerUnreachable(ConnectionError):
    """No Dask scheduler answered at the address given."""


def require_distributed():
    """The ``distributed`` module, or :class:`DistributedUnavailable` naming the extra to install."""
    try:
        import distributed
    except ImportError as exc:
        raise DistributedUnavailable(
            f"--scheduler runs the batch on Dask distributed, which is not installed ({exc}); install the "
            f"'distributed' extra: {_INSTALL}") from exc
    return distributed


@dataclass(frozen=True)
class ReportTask:
    """What a Dask task needs to render one report (plain data; it travels to the worker)."""

    name: str
    parameters: dict[str, Any]
    out: str                      #: the report's folder as this process sees it (``<out>/<name>``)
    output: str                   #: ``auto``, ``shared`` or ``ship``
    marker: str                   #: the file a worker must see to write into ``out`` directly
    cache_root: str               #: the batch's dataset cache in the output folder (shared)
    timeout: float
    token: str                    #: the batch's id: names its stop event and attempt counters
    notebook_name: str | None = None
    notebook: bytes | None = None


def _attempts_name(token: str, name: str) -> str:
    return f"ko-attempts-{token}-{name}"


def _stop_names(token: str) -> tuple[str, str]:
    return f"ko-stop-{token}", f"ko-stop-reason-{token}"


def render_task(task: ReportTask, run_isolated: Callable[..., RenderResult]) -> dict[str, Any]:
    """The Dask task of one report (runs on a worker): render it with ``run_isolated`` and
    return its result, the archive of its folder when shipped, where and which attempt it was.

    ``run_isolated`` is :func:`analysis.report.batch.run_isolated`, passed in by the batch
    (this module never imports the batch module, which imports it)."""
    from distributed import Event, Variable, get_worker

    worker = get_worker()
    where = f"Dask worker {worker.address} on {socket.gethostname()}"
    stop_event_name, reason_name = _stop_names(task.token)
    stop_event = Event(stop_event_name)
    if stop_event.is_set():
        return {"started": False, "worker": worker.address}
    counter = Variable(_attempts_name(task.token, task.name))
    earlier = list(counter.get(timeout=30) or [])
    counter.set([*earlier, worker.address])
    payload: dict[str, Any] = {"started": True, "worker": worker.address, "attempt": len(earlier) + 1,
                               "shared": None, "archive": None}
    if len(earlier) >= MAX_ATTEMPTS:
        return {**payload, "result": RenderResult(
            task.name, Path(task.out), "crashed",
            error=f"lost its Dask worker {len(earlier)} times ({', '.join(earlier)}); not tried again").to_dict()}
    shared = task.output != "ship" and os.path.isfile(task.marker)
    if task.output == "shared" and not shared:
        return {**payload, "result": RenderResult(
            task.name, Path(task.out), "failed",
            error=f"{where} does not see the output folder {Path(task.out).parent} (no {Path(task.marker).name} "
                  "in it): with --shared-output every worker must see it at the same path; use --ship-output "
                  "to have the reports sent back").to_dict()}
    # in the worker's own folder, which Dask clears should the worker die
    scratch = Path(tempfile.mkdtemp(prefix="ko-ship-", dir=worker.local_directory))
    last_check = [0.0]

    def should_stop() -> str | None:
        now = time.monotonic()
        if now - last_check[0] < 0.5:       # one round trip to the scheduler per half second
            return None
        last_check[0] = now
        if not stop_event.is_set():
            return None
        try:
            return Variable(reason_name).get(timeout=5) or "the batch"
        except TimeoutError:
            return "the batch"

    try:
        notebook = None
        if task.notebook is not None:
            notebook = scratch / "notebook" / (task.notebook_name or "report.ipynb")
            notebook.parent.mkdir()
            notebook.write_bytes(task.notebook)
        if shared:
            base, cache_root = Path(task.out).parent, Path(task.cache_root)
        else:
            base = scratch / "out"
            cache_root = Path(worker.local_directory) / f"ko-cache-{task.token}"
            cache_root.mkdir(mode=0o700, exist_ok=True)
        result = run_isolated(task.parameters, base, notebook=notebook, timeout=task.timeout, cache_root=cache_root,
                              should_stop=should_stop, kernel_zygote=_kernel_zygote(task.token))
        payload["shared"] = shared
        folder = base / task.name
        if not shared and result.status != "interrupted" and folder.is_dir():
            payload["archive"] = _pack(folder)
        return {**payload, "result": result.to_dict()}
    finally:
        remove_tree(scratch)


def _pack(folder: Path) -> bytes:
    """A report folder as a gzip'd tar archive (paths relative to the folder)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def _unpack(archive: bytes, folder: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")      # no absolute paths, links out or special files


def _drop_worker_cache(token: str, dask_worker=None) -> None:
    """On a worker: remove this batch's shipped-mode dataset cache."""
    remove_tree(Path(dask_worker.local_directory) / f"ko-cache-{token}")


#: on a worker: the kernel zygote of the batch it renders for (one batch's at a time), by token
_ZYGOTES: dict[str, Any] = {}
_ZYGOTE_LOCK = threading.Lock()


def _kernel_zygote(token: str, *, wait: bool = True) -> str | None:
    """On a worker (Linux): the socket of this batch's kernel zygote, so that the worker's
    kernels are forked with their imports done (:mod:`.zygote`); started here unless the batch
    started it when it connected (:func:`_start_kernel_zygote`), and waited for unless ``wait``
    is false. A zygote of an earlier batch is stopped first: it has the code of its time, and
    a batch's kernels run the code the worker has now."""
    if not sys.platform.startswith("linux"):
        return None
    from .zygote import BLAS_THREADS, PRELOAD, WORKER_PRELOAD, KernelZygote

    with _ZYGOTE_LOCK:
        zygote = _ZYGOTES.get(token)
        if zygote is None or zygote.process is None or zygote.process.poll() is not None:
            for old in list(_ZYGOTES):
                _ZYGOTES.pop(old).stop()
            # it forks the workers too, which import what this process imports, from where it does
            env = {**BLAS_THREADS, **os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            zygote = KernelZygote(PRELOAD + WORKER_PRELOAD, env=env)
            zygote.start(wait=False)
            _ZYGOTES[token] = zygote
    if wait:
        zygote.wait_ready()
    return zygote.socket_path


async def _start_kernel_zygote(token: str) -> None:
    """On a worker, when a batch connects: start its kernel zygote, whose imports (two
    seconds of CPU) then run while the batch checks its cohorts, not before the first report.
    (A coroutine: Dask runs only those without waiting for them; starting the process takes
    milliseconds of the worker's event loop.)"""
    _kernel_zygote(token, wait=False)


def _stop_kernel_zygote(token: str) -> None:
    """On a worker: stop this batch's kernel zygote (the batch has ended)."""
    with _ZYGOTE_LOCK:
        zygote = _ZYGOTES.pop(token, None)
    if zygote is not None:
        zygote.stop()


def _remove_lost_attempts(out: Path, name: str) -> None:
    """Unfinished attempts of ``name`` left in the output folder by renders whose Dask worker died."""
    pattern = re.compile(rf"\.partial-{re.escape(name)}-\d+")
    for entry in out.iterdir():
        if pattern.fullmatch(entry.name) and entry.is_dir():
            remove_tree(entry)


def _without_attempt(target: Path, result: RenderResult) -> RenderResult:
    """A result whose render left no attempt folder: stale if a good report is kept."""
    good = last_good(target)
    if good is None or result.status == "ok":
        return result
    return RenderResult(result.name, target, "stale", result.seconds, result.error, result.failed_cell,
                        good.get("key_figures", {}), attempt=result.status)


def _collect(future, name: str, out: Path) -> RenderResult | None:
    """The result of a finished task (None: it never started, the batch was stopped first)."""
    from distributed import KilledWorker

    target = out / name
    if future.status == "finished":
        payload = future.result()
        if not payload["started"]:
            return None
        result = replace(RenderResult.from_dict(payload["result"]), out=target)
        if payload["shared"] or result.status == "interrupted":
            return result
        if payload["archive"] is None:
            return _without_attempt(target, result)
        partial = partial_folder(target)
        remove_tree(partial)
        partial.mkdir()
        _unpack(payload["archive"], partial)
        return finish_attempt(partial, result)
    if future.status == "cancelled":
        return RenderResult(name, target, "interrupted", error="its Dask task was cancelled on the cluster")
    error = future.exception()
    if isinstance(error, KilledWorker):
        result = RenderResult(name, target, "crashed", error=f"its Dask workers kept dying: {error}")
    else:
        result = RenderResult(name, target, "failed", error=f"the Dask task failed: {type(error).__name__}: {error}")
    return _without_attempt(target, result)


class DaskSession:
    """A batch's connection to a Dask cluster, opened before the batch is planned and closed
    (``with DaskSession(...)``) when it ends.

    Opening it connects to ``scheduler`` (an address or a Dask cluster object; raises
    :class:`SchedulerUnreachable` when none answers), writes the output folder's marker and
    starts each worker's kernel zygote, so that their imports run while this process checks
    the cohorts. Closing it stops the zygotes and removes the workers' shipped-mode caches
    and the marker.
    """

    def __init__(self, scheduler: Any, out: Path):
        require_distributed()
        from distributed import Client

        self.token = uuid.uuid4().hex[:12]
        self.marker = out / f".ko-batch-{self.token}"
        self.marker.write_text(f"{scheduler}\n", encoding="utf-8")
        try:
            self.client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            self.marker.unlink()
            raise SchedulerUnreachable(f"no Dask scheduler answered at {scheduler}: {exc}") from exc
        # fire and forget: a worker whose zygote did not start starts one with its first report
        self.client.run(_start_kernel_zygote, self.token, wait=False)

    def __enter__(self) -> DaskSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers' zygotes of this batch, remove its caches there, disconnect."""
        try:
            self.client.run(_drop_worker_cache, self.token)
            self.client.run(_stop_kernel_zygote, self.token)
        finally:
            self.client.close()
            self.marker.unlink(missing_ok=True)


def run_on_dask(queue: list, out: Path, *, session: DaskSession, notebook: Path | None, timeout: float, output: str,
                cache_root: Path, results: dict, stop, on_done: Callable[[RenderResult], None],
                run_isolated: Callable[..., RenderResult]) -> list:
    """Render the batch's queue (:class:`~analysis.report.batch.BatchJob` list) on the cluster of
    ``session``; fills ``results`` by row and returns the jobs that never started (stopped).

    ``stop`` is the batch's signal record (``signum`` is set by SIGINT or SIGTERM, ``name``
    names it); ``on_done`` is called with each finished report's result.
    """
    from distributed import Event, Variable

    if output not in OUTPUT_MODES:
        raise ValueError(f"output must be one of {OUTPUT_MODES}, got {output!r}")
    client, token, marker = session.client, session.token, session.marker
    unstarted: list = []
    futures: dict[Any, Any] = {}
    stop_event_name, reason_name = _stop_names(token)
    try:
        stop_event = Event(stop_event_name, client=client)
        for job in queue:
            Variable(_attempts_name(token, job.name), client=client).set([])
        for i, job in enumerate(queue):
            task = ReportTask(
                name=job.name, parameters=job.params.literals(), out=str(out / job.name), output=output,
                marker=str(marker), cache_root=str(cache_root), timeout=timeout, token=token,
                notebook_name=notebook.name if notebook else None, notebook=notebook.read_bytes() if notebook else None)
            # earlier rows first; a key of the batch's own, so nothing is shared with another batch
            future = client.submit(render_task, task, run_isolated, key=f"ko-report-{token}-{i}", pure=False,
                                   priority=len(queue) - i)
            futures[future] = job
        pending = set(futures)

        def take(done) -> None:
            for future in done:
                job = futures[future]
                result = _collect(future, job.name, out)
                _remove_lost_attempts(out, job.name)
                if result is None:
                    unstarted.append(job)
                    continue
                results[job.row] = result
                on_done(result)

        while pending and stop.signum is None:
            done, pending = _wait_some(pending)
            take(done)
        if pending:                       # stopped: tell every task, let the running ones stop their renders
            Variable(reason_name, client=client).set(stop.name or "an error of the batch")
            stop_event.set()
            deadline = time.monotonic() + STOP_GRACE
            while pending and time.monotonic() < deadline:
                done, pending = _wait_some(pending)
                take(done)
            for future in pending:
                job = futures[future]
                results[job.row] = RenderResult(job.name, out / job.name, "interrupted",
                                                error=f"stopped by {stop.name or 'an error of the batch'}; its Dask "
                                                      f"task did not stop within {STOP_GRACE:g} s and was cancelled")
    finally:
        client.cancel(list(futures), force=True)
        for job in queue:
            Variable(_attempts_name(token, job.name), client=client).delete()
        Variable(reason_name, client=client).delete()
        Event(stop_event_name, client=client).clear()
    unstarted.sort(key=lambda job: job.row)
    return unstarted


def _wait_some(pending: set) -> tuple[set, set]:
    """The futures of ``pending`` that have finished (waiting up to a quarter second for one), and the others."""
    done = {future for future in pending if future.done()}
    if not done:
        time.sleep(0.25)
        done = {future for future in pending if future.done()}
    return done, pending - done
