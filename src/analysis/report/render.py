"""Rendering a parameterised notebook with papermill into a report folder.

A report folder holds the executed notebook, a self-contained HTML page (code hidden, images
embedded, no scripts, nothing fetched; assembled by :mod:`analysis.report.html`) with the
provenance in its footer, the figures and tables the notebook wrote, ``provenance.json``
and ``result.json``.

Fixed costs are kept low: the kernel runs with one BLAS thread (a report's matrices are
small; several threads on two cores cost more than they gain), is stopped at once when the
last cell is done (every output has arrived by then) and without the interrupt
jupyter_client sends first by default (which only logs ``KeyboardInterrupt caught in
kernel``), and the page is built from the executed cells' outputs without nbconvert.

A report is written into a temporary folder beside its own (``.partial-<name>-<pid>``) and
moved into place only when complete, so a report folder never mixes two renders. A
failed attempt never replaces a good report: the good report stays (the attempt is
``stale``) and the attempt goes to its ``failed-attempt/`` subfolder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type, default

from ..resources import notebook_path
from .fonts import copy_font_lists, font_cache_folder
from .parameters import ReportParameters
from .provenance import build_provenance, cache_key
from .zygote import BLAS_THREADS

__all__ = ["RenderResult", "KernelDied", "RenderInterrupted", "stop_on_signals", "render_notebook", "render_report",
           "notebook_path", "to_html", "export_html", "render_phases", "SectionProgress", "terminal_progress", "partial_folder",
           "finish_attempt", "last_good", "describe_exit", "kill_process_group"]

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
    #: ready as soon as the kernel has answered, without jupyter_client's 0.2 s of silence (._kernel_client)
    client_class = DottedObjectName("analysis.report._kernel_client.ReadyClient")
    client_factory = Type(klass="analysis.report._kernel_client.ReadyClient")
    #: called (no arguments) once the kernel process is launched, while it starts up; what it
    #: raises stops the render before any cell runs (see ``while_kernel_starts`` of render_notebook)
    after_launch: Callable[[], None] | None = None

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
        from .zygote import ENV_VAR as ZYGOTE, proxy_command   # standard library only

        zygote = os.environ.get(ZYGOTE)
        if zygote and "ipykernel_launcher" in kernel_cmd and "-f" in kernel_cmd:
            # fork the kernel from the batch's zygote, which has its imports done (.zygote)
            kernel_cmd = proxy_command(zygote, kernel_cmd[kernel_cmd.index("-f") + 1])
        await super()._async_launch_kernel(kernel_cmd, **kw)
        _MANAGERS[self.socket_folder] = self
        if self.kernel_pid is not None:
            Path(self.socket_folder, KERNEL_PID_FILE).write_text(f"{self.kernel_pid}\n")
        if self.after_launch is not None:
            self.after_launch()  # on this core, while the kernel process starts on another

    async def _async_is_alive(self) -> bool:
        alive = await super()._async_is_alive()
        process = getattr(self.provisioner, "process", None)
        if not alive and self.exit_status is None and process is not None:
            self.exit_status = process.returncode
        return alive

    is_alive = _async_is_alive

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        # a kernel that was told to go (or killed) is gone within milliseconds: look every 5 ms,
        # not every 100 (jupyter_client's poll, which the report waited out at its end)
        await super()._async_wait(pollinterval=min(pollinterval, 0.005))

    async def _async_interrupt_kernel(self) -> None:
        # jupyter_client interrupts (SIGINT) before every shutdown request; the kernel then only
        # logs "KeyboardInterrupt caught in kernel". A render shuts down an idle kernel: no interrupt.
        if self.shutting_down:
            return
        await super()._async_interrupt_kernel()

    interrupt_kernel = _async_interrupt_kernel


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

    def to_file_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` for the files a report or batch writes (``result.json``,
        ``index.json``): ``out`` is the report folder's name, never a path of this machine."""
        return {**self.to_dict(), "out": None if self.out is None else self.out.name}

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
    write_json(partial / RESULT_FILE, result.to_file_dict())
    good = None if result.status == "ok" else last_good(out)
    if good is None:
        _replace(out, partial)
        return result
    attempt = out / ATTEMPT_FOLDER
    remove_tree(attempt)
    os.rename(partial, attempt)
    return RenderResult(result.name, out, "stale", result.seconds, result.error, result.failed_cell,
                        good.get("key_figures", {}), attempt=result.status)


#: environment variable that hands the kernel the dataset folder (the notebook records its name only)
DATA_VARIABLE = "KO_REPORT_DATA"
#: the papermill engine that reports each cell as it starts (registered on first use)
ENGINE_NAME = "ketamine-outcomes"


def _register_engine() -> None:
    """Register papermill's nbclient engine with an ``on_cell`` hook under :data:`ENGINE_NAME`."""
    from papermill.engines import NBClientEngine, papermill_engines

    if ENGINE_NAME in papermill_engines._engines:
        return

    class ProgressEngine(NBClientEngine):
        """nbclient, calling ``on_cell(cell, index, notebook)`` as each cell starts, and writing
        the executed notebook once, at the end, whatever happened (papermill's
        ``notebook_complete``, which also marks the cell that was running when a kernel died),
        instead of at the start and before and after every cell: each write copies, validates
        and serialises the whole notebook, its figures included, and 50 of them were about a
        second of every report. Nothing reads the notebook while it runs (the attempt's folder
        is private until it is moved into place); papermill's autosave still writes it during a
        long render, at most every ``autosave_cell_every`` seconds (30) as outputs arrive."""

        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, on_cell=None, **kwargs):
            def unsaved(step):
                def run(*args, **kw):
                    save = nb_man.save
                    nb_man.save = lambda **_: None
                    try:
                        return step(*args, **kw)
                    finally:
                        nb_man.save = save
                return run

            nb_man.cell_complete = unsaved(nb_man.cell_complete)
            start = unsaved(nb_man.cell_start)
            if on_cell is not None:
                def cell_start(cell, cell_index=None, **kw):
                    on_cell(cell, cell_index, nb_man.nb)
                    return start(cell, cell_index, **kw)

                nb_man.cell_start = cell_start
            else:
                nb_man.cell_start = start
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register(ENGINE_NAME, ProgressEngine)


def render_notebook(notebook: Path, out_notebook: Path, parameters: dict[str, Any], *, timeout: float | None = 900,
                    cwd: Path | None = None, ipc_dir: Path | None = None,
                    on_cell: Callable[[Any, int, Any], None] | None = None,
                    env: Mapping[str, str] | None = None,
                    while_kernel_starts: Callable[[], None] | None = None) -> None:
    """Execute a notebook with papermill.

    Raises papermill's PapermillExecutionError on a failing cell and :class:`KernelDied`
    (with how the kernel ended, e.g. ``kernel died: killed by SIGKILL``) when the kernel
    process dies; within a second or two, whatever ``timeout`` (seconds a cell may run).

    Each render gets its own Jupyter runtime, IPython and matplotlib folders inside the output
    folder (no shared-cache clashes between parallel renders) and an IPC kernel whose sockets
    are in ``ipc_dir`` (default: a new ``ko-*`` folder in the temporary directory, removed
    afterwards; one passed in is left to the caller). The kernel gets one BLAS thread
    (:data:`BLAS_THREADS`, where the environment does not set them). ``on_cell(cell, index,
    notebook)`` is called as each cell starts (for progress); ``env`` are further environment
    variables for the kernel. ``while_kernel_starts()`` is called as soon as the kernel process
    is launched, so that its work overlaps the kernel's start-up (``ketamine-outcomes report``
    validates the data there); an exception it raises propagates before any cell has run.
    Whatever happens, the kernel's process group (the kernel and any
    process it started) is stopped before this returns, and the private folders are removed
    (the IPython history in them holds the code run, parameters included).
    """
    import papermill as pm
    from nbclient.exceptions import DeadKernelError

    _register_engine()
    private = out_notebook.parent / ".runtime"
    for sub in ("jupyter", "ipython", "matplotlib"):
        (private / sub).mkdir(parents=True, exist_ok=True)
    font_cache = font_cache_folder()
    copy_font_lists(font_cache, private / "matplotlib")
    own_ipc = ipc_dir is None
    ipc = Path(tempfile.mkdtemp(prefix="ko-")) if own_ipc else Path(ipc_dir)
    manager_class = IPCKernelManager
    if while_kernel_starts is not None:
        manager_class = type("IPCKernelManager", (IPCKernelManager,), {"after_launch": staticmethod(while_kernel_starts)})
    settings = {"JUPYTER_RUNTIME_DIR": str(private / "jupyter"), "IPYTHONDIR": str(private / "ipython"),
                "MPLCONFIGDIR": str(private / "matplotlib"), "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                "KO_IPC_DIR": str(ipc), **{k: v for k, v in BLAS_THREADS.items() if not os.environ.get(k)},
                **(env or {})}
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        pm.execute_notebook(
            str(notebook), str(out_notebook), parameters=parameters, kernel_name="python3", progress_bar=False,
            log_output=False, execution_timeout=timeout, cwd=str(cwd) if cwd else None,
            kernel_manager_class=manager_class, engine_name=ENGINE_NAME, on_cell=on_cell,
            # every output has arrived when the last cell is done: a graceful exit of a kernel
            # holding pandas, scipy and statsmodels only spends a second or more tearing them down
            shutdown_kernel="immediate",
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
        copy_font_lists(private / "matplotlib", font_cache, only_new=True)
        remove_tree(private)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def cell_label(cell: Mapping[str, Any]) -> str:
    """A short name for what a code cell does, for progress lines.

    Examples
    --------
    >>> from analysis.report.render import cell_label
    >>> cell_label({"source": "responders = report.responder_models()\\nresponders", "metadata": {}})
    'responder models'
    >>> cell_label({"source": "x = 1", "metadata": {"tags": ["parameters"]}})
    'parameters'
    """
    tags = cell.get("metadata", {}).get("tags", [])
    for tag in ("injected-parameters", "parameters"):
        if tag in tags:
            return "parameters"
    source = "".join(cell.get("source", ""))
    if "CohortReport(" in source:
        return "loading the cohort"
    found = re.search(r"\breport\.(\w+)\(", source)
    if found:
        return found.group(1).replace("_", " ")
    if tags:
        return str(tags[0])
    lines = [ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return (lines[0][:40] if lines else "cell")


class SectionProgress:
    """One status line on a terminal, rewritten as each cell starts: ``[ 5/18] waterfall  3.1 s``.

    Call :meth:`close` at the end (it ends the line). Used as ``on_cell`` of
    :func:`render_notebook`.
    """

    def __init__(self, stream, name: str = "report"):
        self.stream = stream
        self.name = name
        self.started = time.perf_counter()
        self.width = 0

    def __call__(self, cell: Mapping[str, Any], index: int | None, notebook: Any) -> None:
        code = [c for c in notebook.cells if c.get("cell_type") == "code"]
        if cell.get("cell_type") != "code":
            return
        position = next((i for i, c in enumerate(code) if c is cell), 0) + 1
        line = (f"{self.name}: [{position:>{len(str(len(code)))}}/{len(code)}] {cell_label(cell)}"
                f"  {time.perf_counter() - self.started:.1f} s")
        self.width = max(self.width, len(line))
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()

    def close(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


def terminal_progress(stream=None, name: str = "report") -> SectionProgress | None:
    """A :class:`SectionProgress` on ``stream`` (default stdout) when it is a terminal and the
    environment variable ``CI`` is not set (or is ``false``/``0``); None (quiet) otherwise."""
    stream = sys.stdout if stream is None else stream
    ci = os.environ.get("CI", "").strip().lower()
    if ci not in ("", "0", "false", "no") or not getattr(stream, "isatty", lambda: False)():
        return None
    return SectionProgress(stream, name)


# --- the HTML page --------------------------------------------------------------------------------


def shown_parameters(literals: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters as a reader sees them (footer, ``provenance.json``): the render's own
    plumbing (``output_dir``, ``html_path``) left out and ``data`` by folder name only, so that
    no absolute path of the rendering machine appears (the data are identified by SHA-256).

    Examples
    --------
    >>> from analysis.report.render import shown_parameters
    >>> shown_parameters({"data": "/home/me/clinic/export", "output_dir": "/tmp/x", "name": "a", "html_path": ""})
    {'data': 'export', 'name': 'a'}
    >>> shown_parameters({"data": ""})
    {'data': ''}
    """
    shown = {k: v for k, v in literals.items() if k not in ("output_dir", "html_path")}
    if shown.get("data"):
        shown["data"] = Path(str(shown["data"])).name
    return shown


def to_html(notebook: Path | Mapping[str, Any], provenance: Mapping[str, Any], title: str) -> str:
    """A self-contained HTML page of an executed notebook (a path or the notebook as a dict):
    outputs only, images embedded, every fragment sanitised, scripts forbidden by its
    content-security policy, provenance in the footer (see :mod:`analysis.report.html`)."""
    from . import html as page_html

    nb = json.loads(Path(notebook).read_text(encoding="utf-8")) if isinstance(notebook, (str, Path)) else notebook
    body = page_html.notebook_body(nb.get("cells", []))
    footer = page_html.footer_rows(provenance, shown_parameters(provenance.get("parameters", {})))
    return page_html.page(body, title=title, footer=footer)


def export_html(html_path: str | Path, namespace: Mapping[str, Any]) -> Path:
    """Write the HTML report of the notebook running now (the last cell of ``cohort_report``,
    for plain papermill runs with ``-p html_path PATH --inject-paths``).

    papermill saves the executed notebook as each cell starts, so when the last cell runs the
    notebook at ``PAPERMILL_OUTPUT_PATH`` holds every earlier output; ``namespace`` is the
    notebook's globals (its parameters and the paths papermill injected).
    """
    output = namespace.get("PAPERMILL_OUTPUT_PATH")
    source = namespace.get("PAPERMILL_INPUT_PATH")
    if not output or not source:
        raise ValueError("html_path: the HTML is made from the notebook papermill is writing; run papermill with "
                         "--inject-paths (it passes PAPERMILL_INPUT_PATH and PAPERMILL_OUTPUT_PATH), "
                         f"got html_path={str(html_path)!r} without them")
    if "://" in str(output):
        raise ValueError(f"html_path: the executed notebook must be a local file, got PAPERMILL_OUTPUT_PATH={output!r}")
    params = ReportParameters.from_namespace(namespace)
    nb = json.loads(Path(output).read_text(encoding="utf-8"))
    started = nb.get("metadata", {}).get("papermill", {}).get("start_time")
    seconds = 0.0
    if started:
        from datetime import datetime, timezone

        seconds = (datetime.now(timezone.utc) - datetime.fromisoformat(started)).total_seconds()
    provenance = build_provenance(parameters=shown_parameters(params.literals()), data_folder=params.data_path(),
                                  notebook=source, timings={"total": seconds}, status="ok")
    target = Path(html_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(to_html(nb, provenance, params.title), encoding="utf-8")
    return target


def render_report(params: ReportParameters, out: str | Path, *, notebook: str | Path | None = None,
                  timeout: float | None = 900, ipc_dir: Path | None = None,
                  progress: SectionProgress | None = None,
                  while_kernel_starts: Callable[[], None] | None = None) -> RenderResult:
    """Render the cohort report for ``params`` into ``out``.

    Writes ``<notebook>.ipynb`` (executed), ``report.html``, ``figures/``, ``tables/``,
    ``provenance.json``, ``key_figures.json``, ``cache_key.txt`` and ``result.json``, first
    into ``.partial-<name>-<pid>`` beside ``out``, moved into place by :func:`finish_attempt`
    (a failed attempt never replaces a good report: the result is then ``stale``). A failing
    cell or a dead kernel does not raise: the result says which cell failed (or was running)
    and why, and the executed notebook shows it. Anything else (an interrupt included)
    removes the temporary folder, leaves ``out`` as it was and propagates. ``timeout`` is the
    seconds a cell may run (None: no limit); ``ipc_dir`` the kernel socket folder (default:
    a new one, removed afterwards); ``progress`` shows each cell as it starts (see
    :func:`terminal_progress`); ``while_kernel_starts`` is run as the kernel process starts
    (:func:`render_notebook`): if it raises, the render stops before any cell, ``out`` is left
    as it was and the exception propagates.

    The kernel runs in the report's folder (``output_dir`` is ``"."``) and gets the dataset
    folder as ``data = "$KO_REPORT_DATA"`` with that variable in its environment (empty for
    the bundled sample), so that the executed notebook holds no path of this machine;
    ``provenance.json`` and the footer name the data by folder name and SHA-256.
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
        # the kernel works in the report's folder; the data folder reaches it by the environment
        literals = {**params.literals(), "data": f"${DATA_VARIABLE}" if params.data else "", "output_dir": ".",
                    "html_path": ""}
        executed = partial / nb_path.name
        started, started_at = time.perf_counter(), time.time()
        status, error, failed_cell = "ok", None, None
        try:
            render_notebook(nb_path, executed, literals, timeout=timeout, cwd=partial, ipc_dir=ipc_dir,
                            on_cell=progress, env={DATA_VARIABLE: str(data)} if params.data else None,
                            while_kernel_starts=while_kernel_starts)
        except PapermillExecutionError as exc:
            status, error = "failed", f"{exc.ename}: {exc.evalue}"
            failed_cell = _failed_cell_source(executed)
        except KernelDied as exc:
            status, error = "crashed", str(exc)
            failed_cell = _last_started_cell_source(executed)
        finally:
            if progress is not None:
                progress.close()
        executed_at = time.time()
        nb = _without_machine_paths(executed) if executed.exists() else {"cells": []}
        page_started = time.perf_counter()
        timings = {"total": page_started - started, **render_phases(nb, started_at, executed_at)}
        provenance = build_provenance(parameters=shown_parameters(params.literals()), data_folder=data,
                                      notebook=nb_path, timings=timings, status=status)
        page = to_html(nb, provenance, params.title)
        provenance["timings_seconds"]["page"] = round(time.perf_counter() - page_started, 3)
        (partial / "provenance.json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n",
                                                 encoding="utf-8")
        (partial / "report.html").write_text(page, encoding="utf-8")
        seconds = time.perf_counter() - started
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


def _without_machine_paths(executed: Path) -> dict[str, Any]:
    """The executed notebook, rewritten with papermill's ``input_path`` and ``output_path``
    metadata as file names (papermill records them as the absolute paths it was given)."""
    nb = json.loads(executed.read_text(encoding="utf-8"))
    meta = nb.get("metadata", {}).get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = Path(str(meta[key])).name
    tmp = executed.with_name(f".{executed.name}.tmp")
    tmp.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, executed)
    return nb


def render_phases(nb: Mapping[str, Any], started_at: float, executed_at: float) -> dict[str, float]:
    """Where a render's time went, from papermill's cell timestamps: ``kernel_start`` (from the
    start of the render to the first cell), ``cells`` (first cell start to last cell end) and
    ``kernel_stop`` (from then until the kernel was gone). Empty when no cell ran."""
    from datetime import datetime

    marks = [c.get("metadata", {}).get("papermill", {}) for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    starts = [datetime.fromisoformat(m["start_time"]).timestamp() for m in marks if m.get("start_time")]
    ends = [datetime.fromisoformat(m["end_time"]).timestamp() for m in marks if m.get("end_time")]
    if not starts or not ends:
        return {}
    return {"kernel_start": starts[0] - started_at, "cells": ends[-1] - starts[0], "kernel_stop": executed_at - ends[-1]}


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
