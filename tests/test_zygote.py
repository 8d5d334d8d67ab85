"""Kernels forked from a zygote: the same report as a fresh kernel's, and the same isolation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the zygote forks (Linux batches)")


def kernel_of(zygote) -> int:
    """The one kernel the zygote has forked (its child), waiting for it to appear."""
    children = Path(f"/proc/{zygote.process.pid}/task/{zygote.process.pid}/children")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = children.read_text().split()
        if pids:
            return int(pids[0])
        time.sleep(0.05)
    raise AssertionError("the zygote forked no kernel")


def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def zygote():
    from analysis.report.zygote import KernelZygote

    with KernelZygote(preload=("numpy", "ipykernel.kernelapp")) as z:
        yield z


@pytest.fixture
def proxy(zygote, tmp_path):
    """A kernel asked for as a kernel manager asks: the proxy started in a session of its own."""
    from jupyter_client.connect import write_connection_file

    from analysis.report.zygote import proxy_command

    connection, _ = write_connection_file(str(tmp_path / "kernel.json"), transport="ipc",
                                          ip=str(tmp_path / "k"))
    proc = subprocess.Popen(proxy_command(zygote.socket_path, connection), start_new_session=True, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "KO_TEST": "x"})
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_the_proxy_ends_as_its_kernel_did(zygote, proxy, signum):
    kernel = kernel_of(zygote)
    assert os.getsid(kernel) == kernel                # a session and process group of its own
    os.kill(kernel, signum)
    assert proxy.wait(timeout=10) == -signum          # the kernel manager sees the kernel's end


def test_the_kernel_and_its_group_go_when_the_proxy_is_killed(zygote, proxy):
    kernel = kernel_of(zygote)
    os.killpg(proxy.pid, signal.SIGKILL)              # what a batch does to stop a report's kernel
    assert gone(kernel)
    assert zygote.process.poll() is None              # the zygote serves the next report


def test_the_kernel_runs_code_with_the_environment_and_folder_of_its_proxy(zygote, proxy, tmp_path):
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(tmp_path / "kernel.json"))
    client.load_connection_file()
    client.start_channels()
    outputs: list[dict] = []
    try:
        client.wait_for_ready(timeout=30)
        reply = client.execute_interactive(
            "import gc, os; print(os.environ['KO_TEST'], os.getcwd(), os.getpid(), *gc.get_threshold(), "
            "gc.get_freeze_count() > 0)", timeout=30, output_hook=lambda msg: outputs.append(msg))
    finally:
        client.stop_channels()
    assert reply["content"]["status"] == "ok"
    text = "".join(m["content"].get("text", "") for m in outputs)
    # the zygote's imports frozen out of the collector's way, and the kernel's thresholds raised
    assert text.split() == ["x", str(tmp_path), str(kernel_of(zygote)), "50000", "20", "100", "True"]


def test_the_zygote_stops_with_the_process_that_started_it(tmp_path):
    code = ("from analysis.report.zygote import KernelZygote; import sys, time; z = KernelZygote(preload=()); "
            "z.start(); print(z.process.pid, flush=True); time.sleep(600)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    assert gone(pid)


def _worker_job(tmp_path: Path, name: str, parent_pid=None) -> Path:
    """The folder of a worker's job, as a batch writes it (:func:`analysis.report.batch._start`)."""
    from analysis.report.worker import JOB_FILE

    folder = tmp_path / f"ko-{name}"
    folder.mkdir()
    (folder / JOB_FILE).write_text(json.dumps({"parameters": {"name": name}, "out": str(tmp_path / "out" / name),
                                               "notebook": None, "parent_pid": parent_pid}))
    return folder


def test_a_forked_worker_writes_its_pid_and_ends_as_its_proxy_says(tmp_path):
    """A worker forked by the zygote (a batch's, :func:`worker_command`) is the zygote's child, not
    its proxy's; it writes its pid first (its attempt's folder is named by it) and its proxy
    ends as it did: here with the worker's exit code after a job it cannot read."""
    from analysis.report.worker import PID_FILE
    from analysis.report.zygote import KernelZygote, worker_command

    folder = tmp_path / "ko-broken"
    folder.mkdir()
    (folder / "job.json").write_text("{not json")
    with KernelZygote(preload=("analysis.report.worker",)) as z:
        proxy = subprocess.Popen(worker_command(z.socket_path, str(folder)), stderr=subprocess.PIPE, text=True)
        _, stderr = proxy.communicate(timeout=60)
        pid = int((folder / PID_FILE).read_text())
        assert pid not in (proxy.pid, os.getpid(), z.process.pid)
    assert proxy.returncode == 1
    assert "JSONDecodeError" in stderr                 # the worker's traceback, on the proxy's stderr


def test_the_zygote_removes_the_unfinished_attempts_of_its_workers_when_the_batch_dies(tmp_path):
    """The batch killed outright: its zygote kills the workers it forked and removes their
    attempts and job folders, as a worker started by the batch itself does (.worker)."""
    from analysis.report.worker import JOB_FILE, PID_FILE
    from analysis.report.zygote import worker_command

    code = ("from analysis.report.zygote import KernelZygote; import sys, time; "
            "z = KernelZygote(preload=('analysis.report.worker',)); z.start(); "
            "print(z.process.pid, z.socket_path, flush=True); time.sleep(600)")
    batch = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    zygote_pid, socket_path = batch.stdout.readline().split()
    folder = _worker_job(tmp_path, "slow")
    notebook = tmp_path / "never.ipynb"
    os.mkfifo(notebook)                        # the render blocks reading it, its attempt made
    job = json.loads((folder / JOB_FILE).read_text())
    (folder / JOB_FILE).write_text(json.dumps({**job, "notebook": str(notebook)}))
    proxy = subprocess.Popen(worker_command(socket_path, str(folder)), start_new_session=True,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list((tmp_path / "out").glob(".partial-slow-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        worker = int((folder / PID_FILE).read_text())
        [attempt] = (tmp_path / "out").glob(".partial-slow-*")
        assert attempt.name == f".partial-slow-{worker}"
        batch.kill()
        batch.wait()
        assert gone(worker) and gone(int(zygote_pid))
        assert not attempt.exists() and not folder.exists()
        assert proxy.wait(timeout=10) != 0            # its worker is gone: so is it
    finally:
        proxy.kill()
        proxy.wait()


@pytest.mark.slow
def test_a_forked_kernel_renders_the_report_of_a_fresh_one(tmp_path, monkeypatch):
    from analysis.report import ReportParameters
    from analysis.report.render import render_report
    from analysis.report.zygote import ENV_VAR, KernelZygote

    params = ReportParameters(sites=["site_C"])
    fresh = render_report(params, tmp_path / "fresh")
    with KernelZygote() as z:
        monkeypatch.setenv(ENV_VAR, z.socket_path)
        forked = render_report(params, tmp_path / "forked")
    assert fresh.status == forked.status == "ok", (fresh.error, forked.error)
    for folder in ("tables", "figures"):
        names = sorted(p.name for p in (tmp_path / "fresh" / folder).iterdir())
        assert names and names == sorted(p.name for p in (tmp_path / "forked" / folder).iterdir())
        for name in names:
            assert (tmp_path / "fresh" / folder / name).read_bytes() == (tmp_path / "forked" / folder / name).read_bytes()
    assert (json.loads((tmp_path / "fresh" / "key_figures.json").read_text())
            == json.loads((tmp_path / "forked" / "key_figures.json").read_text()))

    def page(which):     # the render's duration is the one difference
        import re

        return re.sub(r"<strong>rendered in</strong>: [0-9.]+ s", "", (tmp_path / which / "report.html").read_text())

    assert page("fresh") == page("forked")
