"""Rendering a parameterised notebook with papermill into a report folder.

A report folder holds the executed notebook, a self-contained HTML page (code hidden, images
embedded, no external http(s) resources) with the provenance in its footer, the figures
and tables the notebook wrote, ``provenance.json`` and ``result.json``.

A report is written into a temporary folder beside its own (``.partial-<name>-<pid>``) and
moved into place only when complete, so a report folder never mixes two renders. A
failed attempt never replaces a good report: the good report stays (the attempt is
``stale``) and the attempt goes to its ``failed-attempt/`` subfolder.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from traitlets import default

from ..resources import notebook_path
from .parameters import ReportParameters
from .provenance import build_provenance, cache_key

__all__ = ["RenderResult", "KernelDied", "RenderInterrupted", "stop_on_signals", "render_notebook", "render_report",
           "notebook_path", "to_html", "partial_folder", "finish_attempt", "last_good", "describe_exit",
           "kill_process_group"]

#: what a report folder records about its render (status, error, key figures)
RESULT_FILE = "result.json"
#: subfolder of a good report where a later, failed attempt is kept
ATTEMPT_FOLDER = "failed-attempt"
#: file in the kernel socket folder that holds the kernel's process id (its process group)
KERNEL_PID_FILE = "kernel.pid"

#: kernel managers by socket folder, so that a render finds its kernel's exit status
_MANAGERS: dict[str, IPCKernelManager] = {}


class KernelDied(RuntimeError):
    """The kernel process ended while the notebook ran: a crash, an out-of-memory kill, a kill -9."""


class RenderInterrupted(KeyboardInterrupt):
    """A render stopped by SIGINT or SIGTERM (under :func:`stop_on_signals`); ``signum`` says which.

    A KeyboardInterrupt, so that it passes through the ``except Exception`` of the libraries
    it crosses, as Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"interrupted by {signal.Signals(self.signum).name}"


class _Stop:
    """What stopped a render under :func:`stop_on_signals` (``signum``; None: nothing), and
    whether its final move into place is under way (``moving``)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.moving = False


#: the stop state of the render running under stop_on_signals, if any
_current_stop: _Stop | None = None


@contextmanager
def stop_on_signals() -> Iterator[_Stop]:
    """While active (main thread only), SIGINT and SIGTERM stop the render cleanly.

    The running kernel's process group is killed; the render notices within a second or two
    and :func:`render_report` raises :class:`RenderInterrupted`, its temporary folders removed
    and its output folder as it was. With no kernel running the interrupt is raised at once.
    A signal during the final move into place lets the move finish (the report is complete);
    the yielded object's ``signum`` then records it.
    """
    global _current_stop
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum: int, frame: object) -> None:
        if stop.signum is None:
            stop.signum = signum
        kernels = [m.kernel_pid for m in list(_MANAGERS.values()) if m.kernel_pid is not None]
        for pid in kernels:
            kill_process_group(pid)
        if not kernels and not stop.moving:
            raise RenderInterrupted(signum)

    saved = {signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)}
    _current_stop = stop
    try:
        yield stop
    finally:
        _current_stop = None
        for signum, previous in saved.items():
            signal.signal(signum, previous)


def _check_stop() -> None:
    """Raise RenderInterrupted if a signal has stopped the current render."""
    if _current_stop is not None and _current_stop.signum is not None:
        raise RenderInterrupted(_current_stop.signum)


def _moving(flag: bool) -> None:
    if _current_stop is not None:
        _current_stop.moving = flag


class IPCKernelManager(AsyncKernelManager):
    """A kernel that talks over Unix sockets instead of TCP ports, so parallel renders never
    race for the same port. The sockets live in a private short folder per render
    (``KO_IPC_DIR``; Unix socket paths are limited to about 100 characters).

    Asynchronous, so that nbclient polls ``is_alive`` while a cell runs and notices a dead
    kernel within a second or two (with the blocking manager it waits on the shell channel
    for the whole cell timeout). The kernel's process id goes to ``kernel.pid`` in the socket
    folder (the kernel leads its own process group, which a batch stops with it), and its
    exit status, once seen dead, to ``exit_status``.
    """

    exit_status: int | None = None

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        folder = os.environ.get("KO_IPC_DIR") or tempfile.mkdtemp(prefix="ko-")
        return os.path.join(folder, "k")

    @property
    def socket_folder(self) -> str:
        """The folder holding this kernel's sockets."""
        return os.path.dirname(self.ip)

    @property
    def kernel_pid(self) -> int | None:
        """Process id of the kernel (None before it started)."""
        process = getattr(self.provisioner, "process", None)
        return None if process is None else process.pid

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        await super()._async_launch_kernel(kernel_cmd, **kw)
        _MANAGERS[self.socket_folder] = self
        if self.kernel_pid is not None:
            Path(self.socket_folder, KERNEL_PID_FILE).write_text(f"{self.kernel_pid}\n")

    async def _async_is_alive(self) -> bool:
        alive = await super()._async_is_alive()
        process = getattr(self.provisioner, "process", None)
        if not alive and self.exit_status is None and process is not None:
            self.exit_status = process.returncode
        return alive

    is_alive = _async_is_alive


def describe_exit(code: int | None) -> str:
    """How a process ended, from its exit status (negative: the signal that killed it).

    Examples
    --------
    >>> from analysis.report.render import describe_exit
    >>> describe_exit(-9)
    'killed by SIGKILL (out of memory, or kill -9)'
    >>> describe_exit(-15), describe_exit(3)
    ('killed by SIGTERM', 'exited with code 3')
    """
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}" + (" (out of memory, or kill -9)" if -code == signal.SIGKILL else "")
    return f"exited with code {code}"


def kill_process_group(pgid: int) -> bool:
    """Send SIGKILL to the process group ``pgid``; False if the group no longer exists."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def remove_tree(path: Path) -> None:
    """Remove a folder and all it holds, if it exists."""
    if path.is_dir():
        shutil.rmtree(path)


@dataclass
class RenderResult:
    """What happened to one report.

    ``status`` is one of ``ok``, ``failed`` (a cell raised), ``crashed`` (the kernel or the
    worker died), ``timeout``, ``interrupted`` (the batch was stopped), ``stale`` (the latest
    attempt did not succeed, the last good report is kept; ``attempt`` says how the attempt
    ended and ``error`` why), ``skipped`` (unchanged) or ``invalid`` (a bad spec row; ``out``
    is None).
    """

    name: str
    out: Path | None
    status: str
    seconds: float = 0.0
    error: str | None = None
    failed_cell: str | None = None
    key_figures: dict[str, Any] = field(default_factory=dict)
    attempt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "out": None if self.out is None else str(self.out), "status": self.status,
                "seconds": round(self.seconds, 2), "error": self.error, "failed_cell": self.failed_cell,
                "key_figures": self.key_figures, "attempt": self.attempt}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderResult:
        return cls(data["name"], None if data["out"] is None else Path(data["out"]), data["status"], data["seconds"],
                   data["error"], data["failed_cell"], data["key_figures"], data.get("attempt"))


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def partial_folder(out: Path, pid: int | None = None) -> Path:
    """The temporary folder a report for ``out`` is written into by process ``pid`` (default: this one)."""
    return out.parent / f".partial-{out.name}-{pid or os.getpid()}"


def last_good(out: Path) -> dict[str, Any] | None:
    """The record of the complete, successful report in ``out``, or None if there is none.

    A report folder is good when its ``result.json`` says ``ok``; one written before
    ``result.json`` existed is good when its ``provenance.json`` says ``ok`` and its
    ``report.html`` exists. A record that cannot be parsed is not a good report (it is
    rendered again).
    """
    for name in (RESULT_FILE, "provenance.json"):
        path = out / name
        if not path.is_file():
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if record.get("status") != "ok":
            return None
        if name == RESULT_FILE:
            return record
        if (out / "report.html").is_file():
            key_file = out / "key_figures.json"
            return {**record, "key_figures": json.loads(key_file.read_text()) if key_file.is_file() else {}}
        return None
    return None


def _replace(out: Path, partial: Path) -> None:
    """Put ``partial`` where ``out`` is: each step an atomic rename, the old folder kept until
    the new one is in place (a batch restores it if it finds only the old one)."""
    if not out.exists():
        os.rename(partial, out)
        return
    old = out.parent / f".replaced-{out.name}-{os.getpid()}"
    remove_tree(old)
    os.rename(out, old)
    os.rename(partial, out)
    remove_tree(old)


def finish_attempt(partial: Path, result: RenderResult) -> RenderResult:
    """Move a finished attempt (its folder ``partial``) into place at ``result.out``.

    ``ok``: the attempt replaces the folder. Otherwise, if the folder holds a good report,
    that report stays and the attempt goes to its ``failed-attempt/`` subfolder: the result is
    ``stale``, with the attempt's status, error and failing cell and the good report's key
    figures. With no good report to keep, the attempt is put in place, so that its notebook
    shows how far it got. ``result.json`` records the attempt in its folder either way.
    """
    out = result.out
    partial.mkdir(parents=True, exist_ok=True)
    write_json(partial / RESULT_FILE, result.to_dict())
    good = None if result.status == "ok" else last_good(out)
    if good is None:
        _replace(out, partial)
        return result
    attempt = out / ATTEMPT_FOLDER
    remove_tree(attempt)
    os.rename(partial, attempt)
    return RenderResult(result.name, out, "stale", result.seconds, result.error, result.failed_cell,
                        good.get("key_figures", {}), attempt=result.status)


def render_notebook(notebook: Path, out_notebook: Path, parameters: dict[str, Any], *, timeout: float | None = 900,
                    cwd: Path | None = None, ipc_dir: Path | None = None) -> None:
    """Execute a notebook with papermill.

    Raises papermill's PapermillExecutionError on a failing cell and :class:`KernelDied`
    (with how the kernel ended, e.g. ``kernel died: killed by SIGKILL``) when the kernel
    process dies; within a second or two, whatever ``timeout`` (seconds a cell may run).

    Each render gets its own Jupyter runtime, IPython and matplotlib folders inside the output
    folder (no shared-cache clashes between parallel renders) and an IPC kernel whose sockets
    are in ``ipc_dir`` (default: a new ``ko-*`` folder in the temporary directory, removed
    afterwards; one passed in is left to the caller). Whatever happens, the kernel's process
    group (the kernel and any process it started) is stopped before this returns.
    """
    import papermill as pm
    from nbclient.exceptions import DeadKernelError

    private = out_notebook.parent / ".runtime"
    for sub in ("jupyter", "ipython", "matplotlib"):
        (private / sub).mkdir(parents=True, exist_ok=True)
    own_ipc = ipc_dir is None
    ipc = Path(tempfile.mkdtemp(prefix="ko-")) if own_ipc else Path(ipc_dir)
    saved = {k: os.environ.get(k) for k in ("JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "MPLCONFIGDIR", "MPLBACKEND", "KO_IPC_DIR")}
    os.environ.update({"JUPYTER_RUNTIME_DIR": str(private / "jupyter"), "IPYTHONDIR": str(private / "ipython"),
                       "MPLCONFIGDIR": str(private / "matplotlib"), "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                       "KO_IPC_DIR": str(ipc)})
    try:
        pm.execute_notebook(
            str(notebook), str(out_notebook), parameters=parameters, kernel_name="python3", progress_bar=False,
            log_output=False, execution_timeout=timeout, cwd=str(cwd) if cwd else None,
            kernel_manager_class=IPCKernelManager,
        )
    except Exception as exc:
        if _current_stop is not None and _current_stop.signum is not None:
            # stop_on_signals killed the kernel: whatever nbclient made of that, it is an interrupt
            raise RenderInterrupted(_current_stop.signum) from None
        manager = _MANAGERS.get(str(ipc))
        status = manager.exit_status if manager is not None else None
        # a kernel dying while it starts is nbclient's RuntimeError "Kernel died before replying ..."
        if isinstance(exc, DeadKernelError) or (isinstance(exc, RuntimeError) and status is not None):
            raise KernelDied(f"kernel died: {describe_exit(status)}") from exc
        raise
    finally:
        manager = _MANAGERS.pop(str(ipc), None)
        if manager is not None and manager.kernel_pid is not None:
            kill_process_group(manager.kernel_pid)
        if own_ipc:
            remove_tree(ipc)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 60em; margin: 2em auto;
       padding: 0 1em; color: #1d2733; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border-bottom: 1px solid #d5dde6; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; }
h1, h2 { color: #24466b; }
footer { margin-top: 3em; padding-top: 1em; border-top: 1px solid #d5dde6; font-size: 0.8em; color: #55626f; }
.jp-OutputPrompt, .jp-InputPrompt, .prompt { display: none; }
pre { white-space: pre-wrap; }
"""


def to_html(notebook: Path, provenance: dict[str, Any], title: str) -> str:
    """A self-contained HTML page of an executed notebook: outputs only, images embedded,
    no scripts or external resources, provenance in the footer."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    git = provenance.get("git", {})
    rows = [
        ("package", f"ketamine-outcomes {provenance.get('package_version')}"),
        ("git commit", f"{git.get('commit') or 'unknown'}{' (uncommitted changes)' if git.get('dirty') else ''}"),
        ("notebook", f"{Path(provenance['notebook']['path']).name} sha256 {provenance['notebook']['sha256'][:16]}…"),
        ("data", "; ".join(f"{n} {h[:12]}…" for n, h in provenance["data"]["sha256"].items())),
        ("parameters", json.dumps(provenance["parameters"], sort_keys=True)),
        ("python", f"{provenance['python']} on {provenance['platform']}"),
        ("dependencies", ", ".join(f"{k} {v}" for k, v in provenance["dependencies"].items() if v)),
        ("rendered in", f"{provenance['timings_seconds'].get('total', 0):.1f} s"),
    ]
    footer = "".join(f"<div><strong>{html.escape(k)}</strong>: {html.escape(str(v))}</div>" for k, v in rows)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n{body}\n<footer><h3>Provenance</h3>{footer}</footer></body></html>\n")


def render_report(params: ReportParameters, out: str | Path, *, notebook: str | Path | None = None,
                  timeout: float | None = 900, ipc_dir: Path | None = None) -> RenderResult:
    """Render the cohort report for ``params`` into ``out``.

    Writes ``<notebook>.ipynb`` (executed), ``report.html``, ``figures/``, ``tables/``,
    ``provenance.json``, ``key_figures.json``, ``cache_key.txt`` and ``result.json``, first
    into ``.partial-<name>-<pid>`` beside ``out``, moved into place by :func:`finish_attempt`
    (a failed attempt never replaces a good report: the result is then ``stale``). A failing
    cell or a dead kernel does not raise: the result says which cell failed (or was running)
    and why, and the executed notebook shows it. Anything else (an interrupt included)
    removes the temporary folder, leaves ``out`` as it was and propagates. ``timeout`` is the
    seconds a cell may run (None: no limit); ``ipc_dir`` the kernel socket folder (default:
    a new one, removed afterwards).
    """
    from papermill.exceptions import PapermillExecutionError

    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_folder(out)
    remove_tree(partial)
    partial.mkdir()
    try:
        nb_path = Path(notebook) if notebook else notebook_path("cohort_report")
        data = params.data_path().resolve()
        literals = {**params.literals(), "data": str(data), "output_dir": str(partial)}
        executed = partial / nb_path.name
        started = time.perf_counter()
        status, error, failed_cell = "ok", None, None
        try:
            render_notebook(nb_path, executed, literals, timeout=timeout, ipc_dir=ipc_dir)
        except PapermillExecutionError as exc:
            status, error = "failed", f"{exc.ename}: {exc.evalue}"
            failed_cell = _failed_cell_source(executed)
        except KernelDied as exc:
            status, error = "crashed", str(exc)
            failed_cell = _last_started_cell_source(executed)
        seconds = time.perf_counter() - started
        provenance = build_provenance(parameters={**params.literals(), "data": str(data)}, data_folder=data,
                                      notebook=nb_path, timings={"total": seconds}, status=status)
        (partial / "provenance.json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n",
                                                 encoding="utf-8")
        (partial / "report.html").write_text(to_html(executed, provenance, params.title), encoding="utf-8")
        (partial / "cache_key.txt").write_text(
            cache_key(notebook=nb_path, parameters={**params.literals(), "data": str(data)}, data_folder=data) + "\n")
        key_file = partial / "key_figures.json"
        figures = json.loads(key_file.read_text()) if status == "ok" and key_file.exists() else {}
        result = RenderResult(params.name, out, status, seconds, error, failed_cell, figures)
        _check_stop()
        _moving(True)
    except BaseException:
        remove_tree(partial)
        raise
    try:
        return finish_attempt(partial, result)
    finally:
        _moving(False)


def _last_started_cell_source(executed: Path) -> str | None:
    """Source of the last cell papermill started (the one running when the kernel died)."""
    import nbformat

    if not executed.exists():
        return None
    nb = nbformat.read(str(executed), as_version=4)
    started = [c for c in nb.cells
               if c.get("cell_type") == "code" and c.metadata.get("papermill", {}).get("start_time")]
    return started[-1].source if started else None


def _failed_cell_source(executed: Path) -> str | None:
    """Source of the first cell whose output is an error, from the executed notebook."""
    import nbformat

    if not executed.exists():
        return None
    nb = nbformat.read(str(executed), as_version=4)
    for cell in nb.cells:
        if cell.get("cell_type") == "code" and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return cell.source
    return None
