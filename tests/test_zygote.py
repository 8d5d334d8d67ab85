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
        reply = client.execute_interactive("import os; print(os.environ['KO_TEST'], os.getcwd(), os.getpid())",
                                           timeout=30, output_hook=lambda msg: outputs.append(msg))
    finally:
        client.stop_channels()
    assert reply["content"]["status"] == "ok"
    text = "".join(m["content"].get("text", "") for m in outputs)
    assert text.split() == ["x", str(tmp_path), str(kernel_of(zygote))]


def test_the_zygote_stops_with_the_process_that_started_it(tmp_path):
    code = ("from analysis.report.zygote import KernelZygote; import sys, time; z = KernelZygote(preload=()); "
            "z.start(); print(z.process.pid, flush=True); time.sleep(600)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    assert gone(pid)


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
