"""The process that renders one report of a batch (started by the local pool and by Dask tasks).

It imports only what a render needs (the Jupyter machinery, the parameters, provenance),
not the batch's planning (pandas, the dataset cache): it starts in well under a second.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from .parameters import ReportParameters
from .render import KERNEL_PID_FILE, kill_process_group, partial_folder, render_report, write_json

__all__ = ["JOB_FILE", "OUTCOME_FILE", "PID_FILE", "abandon", "main"]

#: what a worker is given, in its kernel socket folder
JOB_FILE = "job.json"
#: what a worker reports back, beside it
OUTCOME_FILE = "outcome.json"
#: the worker's process id, written first (a worker forked by a zygote is not the batch's child,
#: and its attempt's folder, ``.partial-<name>-<pid>``, is named by it)
PID_FILE = "worker.pid"


def main(folder: str | None = None) -> None:
    """A worker process: renders the one report described in ``<folder>/job.json`` (``folder``,
    the kernel socket folder, is the argument, or the command's only argument) and writes how it ended to
    ``<folder>/outcome.json``. It does not outlive the process that started it (``parent_pid``
    in the job; a worker forked by a zygote has none, and goes with the proxy that stands for
    it, :mod:`.zygote`): a batch or Dask worker killed outright takes its renders with it."""
    folder = Path(folder or sys.argv[1])
    (folder / PID_FILE).write_text(f"{os.getpid()}\n")
    job = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
    if job.get("parent_pid"):
        partial = partial_folder(Path(job["out"]).resolve())
        threading.Thread(target=_die_with_parent, args=(job["parent_pid"], folder, partial), daemon=True).start()
    try:
        params = ReportParameters.checked(job["parameters"])
        result = render_report(params, job["out"], notebook=job["notebook"], timeout=None, ipc_dir=folder)
    except Exception as exc:
        write_json(folder / OUTCOME_FILE, {"exception": f"{type(exc).__name__}: {exc}"})
        raise
    write_json(folder / OUTCOME_FILE, result.to_dict())


def abandon(pid: int, folder: str) -> None:
    """What the zygote that forked worker ``pid`` for the job in ``folder`` calls once it has
    killed it, the batch gone (:mod:`.zygote`): remove its unfinished attempt and the job's
    folder, as :func:`_die_with_parent` does for a worker the batch started itself."""
    sockets = Path(folder)
    try:
        out = Path(json.loads((sockets / JOB_FILE).read_text(encoding="utf-8"))["out"]).resolve()
    except (OSError, ValueError, KeyError):
        out = None                                   # no job to read: only its folder to remove
    if out is not None:
        shutil.rmtree(partial_folder(out, pid), ignore_errors=True)   # best effort; a next batch sweeps the rest
    shutil.rmtree(sockets, ignore_errors=True)


def _die_with_parent(parent: int, sockets: Path, partial: Path) -> None:
    """Once the parent is gone (this process was re-parented), stop the kernel's group, remove
    the unfinished attempt and the socket folder, and exit (the report is rerun elsewhere or
    marked by whoever notices the loss)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    pid_file = sockets / KERNEL_PID_FILE
    if pid_file.is_file():
        kill_process_group(int(pid_file.read_text()))
    for folder in (partial, sockets):
        shutil.rmtree(folder, ignore_errors=True)   # best effort on the way out; a next batch sweeps the rest
    os._exit(70)
