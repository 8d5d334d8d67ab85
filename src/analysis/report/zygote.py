"""A kernel zygote: one process that has imported what a report's kernel needs, and forks a
fresh kernel from itself for every report of a batch (and, for a batch, every report's worker).

A report's kernel spends about two seconds of CPU starting Python and importing IPython,
pandas, SciPy, statsmodels, matplotlib and this package before its first cell runs; over a
batch of 200 reports on two cores that is minutes. The zygote pays it once: each kernel is
forked from it, a process of its own (its own session and process group, its own memory
after the fork), so a report that crashes or is killed affects no other, as with kernels
started from scratch.

How a kernel is asked for: the kernel manager of a render (:class:`.render.IPCKernelManager`)
starts, instead of ``python -m ipykernel_launcher -f CONNECTION_FILE``, the stdlib-only
:mod:`._kernel_proxy`, which sends the zygote the connection file, its environment and its
working folder over a Unix socket, together with the read end of a pipe. The zygote forks;
the child starts its own session, takes that environment and folder, and runs the IPython
kernel on the connection file; the proxy forwards the signals it gets to the kernel and
exits as the kernel did. When the proxy is killed outright (a batch stopping a report kills
its kernel's process group, the proxy's), the pipe closes and the kernel kills its own
process group.

A batch's worker (:mod:`.worker`, which runs papermill for one report) is forked the same way
(:func:`worker_command`, the zygote started with :data:`WORKER_PRELOAD` too): a third of a
second of start-up and imports less a report. The request names the function the child runs
(``analysis.report.worker:main``) and the one the zygote calls, should it stop while that
child runs (``analysis.report.worker:abandon``: the batch has died outright, and the zygote,
which follows it, has killed what it forked; the worker's unfinished attempt and job folder
are removed, as a worker started by the batch itself does when its parent dies).

The environment a kernel gets applies to what reads it at start-up (``IPYTHONDIR``, the
IPython history, ``KO_*`` settings, the working folder); what the zygote imported keeps the
settings of the zygote's start: matplotlib's configuration folder and backend and the BLAS
thread count (one: the batch pins it before starting the zygote).

Examples
--------
A batch starts one (``with KernelZygote() as zygote``) and sets :data:`ENV_VAR` to its
socket for the renders; a kernel manager then starts the proxy instead of a kernel:

>>> from analysis.report.zygote import proxy_command
>>> proxy_command("/tmp/ko-z-1/s", "/tmp/ko-2/kernel.json")[-3:]
['.../_kernel_proxy.py', '/tmp/ko-z-1/s', '/tmp/ko-2/kernel.json']
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["BLAS_THREADS", "ENV_VAR", "IDLE_EXIT", "KernelZygote", "PRELOAD", "WORKER_ABANDON", "WORKER_MAIN",
           "WORKER_PRELOAD", "proxy_command", "worker_command"]

#: one BLAS/OpenMP thread in a report's kernel (unless the caller's environment sets a number):
#: renders run side by side, one per core. Here (standard library only) so that whoever starts
#: a zygote, which keeps the thread count it imported with, can pin it without importing the render
BLAS_THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "BLIS_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}

#: the environment variable naming the zygote's socket (a render forks its kernel there when set)
ENV_VAR = "KO_KERNEL_ZYGOTE"
#: what the zygote imports before it forks: the kernel's imports and those of the report's
#: sections (which import the analyses they use on first use: a quarter of a second a kernel).
#: Only the parts of statsmodels the report uses: ``statsmodels.api`` would add 290 modules
#: and most of a second, which a single report waits for. ``ipykernel.debugger`` (debugpy) is
#: what every kernel imports as it starts: 0.08 s of CPU a kernel
PRELOAD = ("numpy", "pandas", "scipy.stats", "matplotlib", "matplotlib.figure", "matplotlib_inline.backend_inline",
           "ipykernel.kernelapp", "ipykernel.debugger", "analysis", "analysis.report", "analysis.report.cohort", "analysis.report.cache",
           "analysis.report.provenance", "analysis.adjuncts", "analysis.effects", "analysis.imputation",
           "analysis.io.vocabulary", "statsmodels.stats.proportion", "statsmodels.base.covtype")

#: what a zygote that also forks a batch's workers imports besides (:func:`worker_command`)
WORKER_PRELOAD = ("analysis.report.worker", "papermill", "papermill.engines", "nbclient")
#: what a forked worker runs, and what the zygote calls for one it stops (``module:function``)
WORKER_MAIN, WORKER_ABANDON = "analysis.report.worker:main", "analysis.report.worker:abandon"

#: seconds a zygote without kernels waits for a request before it exits (who asks after
#: that starts a new one: a Dask worker's zygote outlives no batch by more than this)
IDLE_EXIT = 120.0

_PROXY = Path(__file__).with_name("_kernel_proxy.py")


def proxy_command(socket_path: str, connection_file: str) -> list[str]:
    """The command a kernel manager starts to get a kernel forked by the zygote at ``socket_path``."""
    return [sys.executable, "-I", "-S", str(_PROXY), socket_path, connection_file]


def worker_command(socket_path: str, folder: str) -> list[str]:
    """The command a batch starts to get the worker of the report in ``folder``
    (:mod:`.worker`) forked by the zygote at ``socket_path`` (started with :data:`WORKER_PRELOAD`).

    Examples
    --------
    >>> from analysis.report.zygote import worker_command
    >>> worker_command("/tmp/ko-z-1/s", "/tmp/ko-2")[-5:]
    ['/tmp/ko-z-1/s', '--run', 'analysis.report.worker:main', 'analysis.report.worker:abandon', '/tmp/ko-2']
    """
    return [sys.executable, "-I", "-S", str(_PROXY), socket_path, "--run", WORKER_MAIN, WORKER_ABANDON, folder]


class KernelZygote:
    """Start a zygote process (``with KernelZygote() as z``), stopped when the block ends.

    Parameters
    ----------
    preload : sequence of str
        Modules imported before the first fork (default :data:`PRELOAD`).
    env : dict, optional
        The zygote's environment (default: this process's).
    """

    def __init__(self, preload=PRELOAD, env: dict[str, str] | None = None):
        self.preload = tuple(preload)
        self.env = dict(os.environ if env is None else env)
        self.folder = Path(tempfile.mkdtemp(prefix="ko-z-"))
        self.socket_path = str(self.folder / "s")
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> KernelZygote:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 120, *, wait: bool = True) -> None:
        """Start the zygote and wait until it listens (its imports done); with ``wait=False``
        return at once, and call :meth:`wait_ready` before the first kernel is asked for."""
        command = [sys.executable, "-c", "from analysis.report.zygote import _serve; _serve()",
                   self.socket_path, str(os.getpid()), ",".join(self.preload)]
        from .fonts import copy_font_lists, font_cache_folder

        copy_font_lists(font_cache_folder(), self.folder / "matplotlib")    # no font cache to rebuild
        env = {"PYDEVD_DISABLE_FILE_VALIDATION": "1",    # debugpy (preloaded for ipykernel's debugger) would warn
               **self.env, "MPLCONFIGDIR": str(self.folder / "matplotlib"),   # of frozen modules on stderr
               "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait until the zygote listens; RuntimeError (and the zygote stopped) if it exits first
        or takes longer than ``timeout`` seconds."""
        ready = self.folder / "ready"
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"the kernel zygote exited with {self.process.returncode} before it listened")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the kernel zygote did not listen within {timeout:g} s")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop the zygote (kernels it forked are in sessions of their own and are not touched)."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=30)
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


# --- the zygote process ---------------------------------------------------------------------


def _serve() -> None:
    """The zygote's main: import, listen, fork a kernel per request, report how each ended.

    Single-threaded (a fork copies only the calling thread): one ``select`` over the
    listening socket and the proxies' connections. A proxy's connection closing means the
    proxy is gone, and the zygote kills that kernel's process group (the kernel's own
    watcher thread does too, unless a native call holds the interpreter)."""
    import gc
    import importlib

    socket_path, parent, preload = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    for name in filter(None, preload.split(",")):
        importlib.import_module(name)
    # what the imports made lives as long as the zygote: out of the collector's way, a child's
    # full collections skip it (a quarter of a second a report) and leave its pages shared
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(64)
    Path(socket_path).with_name("ready").touch()
    try:
        _serve_requests(listener, parent)
    finally:
        import shutil

        shutil.rmtree(Path(socket_path).parent, ignore_errors=True)   # also when the batch was killed


def _serve_requests(listener: socket.socket, parent: int) -> None:
    kernels: dict[int, socket.socket] = {}         # child pid: the connection of its proxy (None once gone)
    runs: dict[int, dict] = {}                     # child pid: its request, for a child that runs a function
    try:
        _serve_loop(listener, parent, kernels, runs)
    finally:
        # the batch is gone (or this zygote is stopping): what it forked goes too, and the
        # abandon hook of each function still running is called (a worker's removes its attempt)
        for pid in list(kernels):
            _kill_group(pid)
        for pid, request in runs.items():
            if pid in kernels and request.get("abandon"):
                try:
                    os.waitpid(pid, 0)             # killed: gone at once, and writes nothing more
                except ChildProcessError:
                    pass
                _entry_point(request["abandon"])(pid, *request["args"])


def _entry_point(name: str):
    """The function ``module:function`` names (the module imported)."""
    import importlib

    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


def _serve_loop(listener: socket.socket, parent: int, kernels: dict[int, socket.socket | None],
                runs: dict[int, dict]) -> None:
    last_busy = time.monotonic()
    while os.getppid() == parent:                  # the batch is gone: so is the zygote
        if kernels:
            last_busy = time.monotonic()
        elif time.monotonic() - last_busy > IDLE_EXIT:
            return                                 # a batch whose end nobody announced (its client died)
        proxies = {c: pid for pid, c in kernels.items() if c is not None}
        readable, _, _ = select.select([listener, *proxies], [], [], 0.2)
        for ready in readable:
            if ready is listener:
                connection, _ = listener.accept()
                forked = _fork_kernel(connection, listener)
                if forked is not None:
                    pid, request = forked
                    kernels[pid] = connection
                    if "run" in request:
                        runs[pid] = request
            elif not ready.recv(1):                # the proxy is gone: its kernel goes too
                pid = proxies[ready]
                _kill_group(pid)
                ready.close()
                kernels[pid] = None
        while kernels:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            _kill_group(pid)       # what the kernel started goes with it (as the batch stops a kernel's group)
            runs.pop(pid, None)
            connection = kernels.pop(pid, None)
            if connection is not None:
                ended = ({"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status)
                         else {"code": os.WEXITSTATUS(status)})
                try:
                    connection.sendall(json.dumps(ended).encode() + b"\n")
                except OSError:
                    pass                           # its proxy is gone already
                connection.close()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _fork_kernel(connection: socket.socket, listener: socket.socket) -> tuple[int, dict] | None:
    """Fork a kernel or a worker for the request on ``connection``; its pid and the request, or
    None (the proxy is told why)."""
    message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 4)
    try:
        request = json.loads(message.decode().splitlines()[0])
        if len(fds) != 4:
            raise ValueError("the request carries not the pipe and the standard streams of its proxy")
    except (ValueError, IndexError) as exc:
        connection.sendall(json.dumps({"error": f"bad request: {exc}"}).encode() + b"\n")
        connection.close()
        for fd in fds:
            os.close(fd)
        return None
    pid = os.fork()
    if pid == 0:                                    # the kernel, or the worker
        try:
            listener.close()
            connection.close()
            _become(request, fds)
            if "run" in request:
                _run(request)
            else:
                _run_kernel(request)
        finally:
            os._exit(1)
    for fd in fds:
        os.close(fd)
    connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    return pid, request


def _become(request: dict, fds: list[int]) -> None:
    """The forked child's own session, the proxy's standard streams, environment and folder,
    and a watcher that stops its process group once the proxy is gone."""
    proxy_alive, *streams = fds
    os.setsid()
    for fd, target in zip(streams, (0, 1, 2)):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=_die_with_proxy, args=(proxy_alive,), daemon=True).start()


#: the garbage collector's thresholds in a forked kernel: a report's cells allocate millions of
#: short-lived containers, and with Python's (700, 10, 10) they ran 170 collections, 0.13 s of a
#: sample report's 4-5 s of CPU; with these, one (0.03 s). Cyclic garbage still goes within
#: 50,000 allocations
KERNEL_GC_THRESHOLDS = (50_000, 20, 100)


def _run_kernel(request: dict) -> None:
    import gc

    from ipykernel.kernelapp import IPKernelApp

    gc.set_threshold(*KERNEL_GC_THRESHOLDS)

    # what ipykernel reads from the environment when it is imported, taken from the request's
    parent = int(request["env"].get("JPY_PARENT_PID") or 0)
    IPKernelApp.launch_instance(argv=["-f", request["connection_file"]], parent_handle=parent)
    os._exit(0)


def _run(request: dict) -> None:
    """Run the request's function on its arguments (a batch worker: ``worker.main(folder)``), as
    ``python -P`` would (without the zygote's folder on the module path); exit 0 when it
    returns, 1 (its traceback on the proxy's stderr) when it raises."""
    import traceback

    if sys.path and sys.path[0] == "":
        sys.path.pop(0)
    try:
        _entry_point(request["run"])(*request["args"])
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _die_with_proxy(fd: int) -> None:
    """Kill this kernel's process group once its proxy is gone (the pipe's write end closed)."""
    while True:
        try:
            if not os.read(fd, 1):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    os.killpg(os.getpid(), signal.SIGKILL)
