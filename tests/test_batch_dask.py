"""Batches on a real Dask cluster: a scheduler and two workers started here, on localhost.

The session fixture ``cluster`` starts ``dask scheduler`` and two ``dask worker --nthreads 1``
(each with its nanny) as subprocesses, every one carrying ``KO_DASK_MARK`` in its
environment, as do the renders and kernels they start; teardown stops them and checks that
no marked process is left. Reports render a small notebook written here whose behaviour is
chosen by the report's ``title``: ``ok``; ``fail`` (a cell raises); ``die`` (the kernel
kills itself with SIGKILL); ``hang`` (sleeps ten minutes); ``hang-once:<flag file>`` (hangs
on its first render only: the rerun after a lost worker completes); ``sleep:<seconds>``. A
report that completes writes, as its key figures, its kernel's process id and the
thread-pinning and cache variables of its environment.

Without Dask distributed installed the tests are skipped (run ``make install-dev``), and
fail when ``CI`` is ``true``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from analysis.report import ReportParameters

EXE = Path(sys.executable).with_name("ketamine-outcomes")
DASK = Path(sys.executable).with_name("dask")

BODY = '''\
import json, os, pathlib, signal, sys, time
out = pathlib.Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
(out / "notebook-pid").write_text(str(os.getpid()))
mode, _, arg = title.partition(":")
if mode == "die":
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "fail":
    raise ZeroDivisionError("injected failure")
if mode == "hang":
    time.sleep(600)
if mode == "hang-once":
    flag = pathlib.Path(arg)
    if not flag.exists():
        flag.write_text(str(os.getpid()))
        time.sleep(600)
if mode == "sleep":
    time.sleep(float(arg))
names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "KO_DATASET_CACHE")
(out / "key_figures.json").write_text(json.dumps({"patients": len(name), "pid": os.getpid(),
                                                  **{n: os.environ.get(n) for n in names}}))
'''


def _dask_or_skip() -> None:
    if importlib.util.find_spec("distributed") is None or not DASK.exists():
        reason = ("Dask distributed is not installed in this environment: run make install-dev "
                  "(pip install -e '.[dev]')")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def marked(mark: str) -> list:
    """Live (not zombie) processes whose environment holds KO_DASK_MARK=mark."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get("KO_DASK_MARK") == mark:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue          # gone meanwhile, or another user's process: not one of ours
    return found


def ended(pid: int) -> bool:
    """Whether process ``pid`` is gone (a zombie waiting for whoever inherited it counts as gone)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Cluster:
    """The scheduler and workers of the session, their mark and their temporary folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.mark = uuid.uuid4().hex
        self.tmp = folder / "tmp"             # TMPDIR of the cluster: kernel sockets, shipped renders
        self.tmp.mkdir()
        self.scheduler_file = folder / "scheduler.json"
        self.env = {**os.environ, "KO_DASK_MARK": self.mark, "TMPDIR": str(self.tmp)}
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "CI"):
            self.env.pop(name, None)
        self.procs: list[subprocess.Popen] = []

    def start(self, *args: str, log: str) -> subprocess.Popen:
        handle = open(self.folder / log, "wb")
        proc = subprocess.Popen([str(DASK), *args], env=self.env, stdin=subprocess.DEVNULL, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        self.procs.append(proc)
        return proc

    @property
    def address(self) -> str:
        return json.loads(self.scheduler_file.read_text())["address"]

    def n_workers(self) -> int:
        from distributed import Client

        with Client(self.address, timeout=10, set_as_default=False) as client:
            return len(client.scheduler_info(n_workers=-1)["workers"])

    def renders(self) -> list:
        """Marked render processes and kernels (what the batch's tasks start on the workers)."""
        return [p for p in marked(self.mark) if any(word in " ".join(_cmdline(p))
                                                   for word in ("analysis.report.batch", "ipykernel"))]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _cmdline(proc) -> list[str]:
    try:
        return proc.cmdline()
    except Exception:          # gone meanwhile
        return []


@pytest.fixture(scope="session")
def cluster():
    _dask_or_skip()
    folder = Path(tempfile.mkdtemp(prefix="kd", dir="/tmp"))     # short: kernel socket paths live under it
    cluster = Cluster(folder)
    try:
        cluster.start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
                      str(cluster.scheduler_file), log="scheduler.log")
        wait_for(cluster.scheduler_file.is_file, 60, "the scheduler to start")
        for i in (1, 2):
            cluster.start("worker", "--scheduler-file", str(cluster.scheduler_file), "--nthreads", "1",
                          "--nworkers", "1", "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}",
                          "--local-directory", str(folder / f"w{i}"), log=f"worker{i}.log")
        wait_for(lambda: cluster.n_workers() == 2, 90, "two workers")
        yield cluster
    finally:
        cluster.stop()
        try:
            wait_for(lambda: not marked(cluster.mark), 15, "every process of the cluster to end")
        finally:
            left = marked(cluster.mark)
            for proc in left:
                proc.kill()
            shutil.rmtree(folder, ignore_errors=True)
        assert not left, f"processes left by the cluster: {[(p.pid, _cmdline(p)) for p in left]}"


@pytest.fixture
def on_cluster(cluster):
    """The cluster with two workers ready; afterwards no render, kernel or kernel socket
    folder of the test may be left on it."""
    wait_for(lambda: cluster.n_workers() == 2, 60, "two workers")
    yield cluster
    wait_for(lambda: not cluster.renders(), 10, "the renders and kernels to end")
    left = sorted(p.name for p in cluster.tmp.iterdir() if p.name != "dask-scratch-space")   # the scheduler's
    assert not left, f"left in the cluster's temporary folder: {left}"


@pytest.fixture
def dask_notebook(tmp_path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    defaults = "\n".join(f"{k} = {v!r}" for k, v in ReportParameters().literals().items())
    nb.cells = [nbformat.v4.new_code_cell(defaults, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(BODY)]
    path = tmp_path / "dask_fault.ipynb"
    nbformat.write(nb, str(path))
    return path


def dask_worker_of(process):
    """The Dask worker process running the task of a render or kernel process: its first
    ancestor that is not the worker's kernel zygote (which forks both, :mod:`analysis.report.zygote`)."""
    parent = process.parent()
    while parent is not None and "analysis.report.zygote" in " ".join(parent.cmdline()):
        parent = parent.parent()
    return parent


def write_spec(path: Path, cohorts: list[tuple[str, str]]) -> Path:
    """A spec of these cohorts (name, what the fault notebook does), each on 12 simulated patients
    of its own: a batch withholds cohorts that share patients (analysis.report.differencing)."""
    import analysis

    lines = []
    for name, title in cohorts:
        data = path.parent / f"data-{name}"
        if not data.exists():
            analysis.simulate(n_patients=12, seed=sum(map(ord, name))).write(data)
        lines += ["[[cohort]]", f'name = "{name}"', f'title = "{title}"', f'data = "{data}"', ""]
    path.write_text("\n".join(lines))
    return path


def index_of(out: Path) -> dict[str, dict]:
    return {r["name"]: r for r in json.loads((out / "index.json").read_text())}


def batch_files(out: Path) -> list[str]:
    """What the output folder holds besides the report folders and the index: nothing."""
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


# --- without Dask ---------------------------------------------------------------------------------


def test_without_distributed_scheduler_is_a_clear_error_naming_the_extra(tmp_path, monkeypatch, capsys):
    from analysis.cli import main
    from analysis.report.batch import run_batch
    from analysis.report.distributed import DistributedUnavailable

    monkeypatch.setitem(sys.modules, "distributed", None)        # import distributed raises ImportError
    spec = write_spec(tmp_path / "spec.toml", [("a", "ok")])
    with pytest.raises(DistributedUnavailable, match=r"pip install 'ketamine-outcomes\[distributed\]'"):
        run_batch(spec, tmp_path / "out", scheduler="tcp://127.0.0.1:8786")
    assert not (tmp_path / "out").exists()                      # refused before anything was written
    assert main(["batch", str(spec), "--out", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "'distributed' extra" in err


def test_output_mode_options_need_a_scheduler(tmp_path, capsys):
    from analysis.cli import main

    spec = write_spec(tmp_path / "spec.toml", [("a", "ok")])
    assert main(["batch", str(spec), "--out", str(tmp_path / "out"), "--ship-output"]) == 2
    assert "--shared-output and --ship-output need --scheduler" in capsys.readouterr().err


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch, capsys):
    _dask_or_skip()
    import socket

    from analysis.cli import main
    from analysis.report import distributed

    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", 2)
    with socket.socket() as s:                                  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = write_spec(tmp_path / "spec.toml", [("a", "ok")])
    out = tmp_path / "out"
    assert main(["batch", str(spec), "--out", str(out), "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert f"no Dask scheduler answered at tcp://127.0.0.1:{port}" in err and "Traceback" not in err
    assert batch_files(out) == []                                # no marker or cache left behind


# --- on the cluster ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("output", ["shared", "ship"])
def test_a_batch_on_the_cluster_reports_every_status_in_the_index(tmp_path, on_cluster, dask_notebook, output):
    from analysis.report.batch import run_batch

    spec = tmp_path / "spec.toml"
    write_spec(spec, [("first", "ok"), ("broken", "fail"), ("dies", "die"), ("second", "ok")])
    spec.write_text(spec.read_text() + '[[cohort]]\nname = "bad/name"\n')
    out = tmp_path / "out"
    results = run_batch(spec, out, scheduler=on_cluster.address, output=output, notebook=dask_notebook,
                        timeout=120, progress=False)
    assert [(r.name, r.status) for r in results] == [
        ("first", "ok"), ("broken", "failed"), ("dies", "crashed"), ("second", "ok"), ("bad/name", "invalid")]
    index = index_of(out)
    assert index["broken"]["error"] == "ZeroDivisionError: injected failure"
    assert index["dies"]["error"].startswith("kernel died: killed by SIGKILL")
    for name in ("first", "second"):
        figures = index[name]["key_figures"]
        assert figures["patients"] == len(name)
        # BLAS and OpenMP pinned in the kernel; the dataset cache handed over (shared: in the output folder)
        assert (figures["OMP_NUM_THREADS"], figures["OPENBLAS_NUM_THREADS"], figures["MKL_NUM_THREADS"]) == ("1",) * 3
        if output == "shared":
            assert Path(figures["KO_DATASET_CACHE"]).parent == out
        else:
            assert Path(figures["KO_DATASET_CACHE"]).name.startswith("ko-cache-")
        folder = out / name
        assert {"report.html", "provenance.json", "result.json", "dask_fault.ipynb", "cache_key.txt"} <= {
            p.name for p in folder.iterdir()}
        assert json.loads((folder / "result.json").read_text())["out"] == folder.name  # no machine path
    assert (out / "dies" / "result.json").is_file()              # the crashed attempt is in place, as locally
    assert "first" in (out / "index.html").read_text()
    assert batch_files(out) == []                                 # no marker, cache or partial folder left

    # unchanged and good: skipped; the failures run again
    again = run_batch(spec, out, scheduler=on_cluster.address, output=output, notebook=dask_notebook,
                      timeout=120, progress=False)
    assert [r.status for r in again] == ["skipped", "failed", "crashed", "skipped", "invalid"]


@pytest.mark.slow
def test_a_shipped_failed_rerun_keeps_the_last_good_report_marked_stale(tmp_path, on_cluster, dask_notebook):
    from analysis.report.batch import run_batch

    out = tmp_path / "out"
    good = run_batch(write_spec(tmp_path / "good.toml", [("site", "ok")]), out, scheduler=on_cluster.address,
                     output="ship", notebook=dask_notebook, progress=False)
    assert [r.status for r in good] == ["ok"]
    kept = {f: (out / "site" / f).read_bytes() for f in ("report.html", "key_figures.json", "result.json")}
    rerun = run_batch(write_spec(tmp_path / "bad.toml", [("site", "fail")]), out, scheduler=on_cluster.address,
                      output="ship", notebook=dask_notebook, progress=False)
    assert [(r.status, r.attempt, r.error) for r in rerun] == [("stale", "failed", "ZeroDivisionError: injected failure")]
    assert rerun[0].key_figures["patients"] == 4                  # the last good report's
    assert {f: (out / "site" / f).read_bytes() for f in kept} == kept
    assert "injected failure" in (out / "site" / "failed-attempt" / "dask_fault.ipynb").read_text()
    assert batch_files(out) == []


@pytest.mark.slow
def test_a_report_over_its_time_limit_is_stopped_on_its_worker(tmp_path, on_cluster, dask_notebook):
    from analysis.report.batch import run_batch

    out = tmp_path / "out"
    started = time.monotonic()
    results = run_batch(write_spec(tmp_path / "spec.toml", [("slow", "hang"), ("quick", "ok")]), out,
                        scheduler=on_cluster.address, notebook=dask_notebook, timeout=20, progress=False)
    assert time.monotonic() - started < 90
    assert [(r.name, r.status) for r in results] == [("slow", "timeout"), ("quick", "ok")]
    assert results[0].error == "stopped after 20 s (--timeout)"
    wait_for(lambda: ended(int((out / "slow" / "notebook-pid").read_text())), 10, "the kernel to end")


@pytest.mark.slow
def test_a_worker_killed_mid_batch_has_its_report_rerun_on_another_worker(tmp_path, on_cluster, dask_notebook):
    import psutil

    from analysis.report.batch import run_batch

    flag = tmp_path / "victim.first"
    spec = write_spec(tmp_path / "spec.toml", [("victim", f"hang-once:{flag}"), ("other", "sleep:1"),
                                                ("third", "ok")])
    out = tmp_path / "out"
    outcome: dict = {}

    def batch() -> None:
        try:
            outcome["results"] = run_batch(spec, out, scheduler=on_cluster.address, output="shared",
                                           notebook=dask_notebook, timeout=300, progress=False)
        except BaseException as exc:       # reported by the assertions below
            outcome["error"] = exc

    import threading

    runner = threading.Thread(target=batch)
    runner.start()
    try:
        wait_for(flag.is_file, 90, "the victim's first kernel")
        first_kernel = psutil.Process(int(flag.read_text()))
        dask_worker = dask_worker_of(first_kernel)              # the Dask worker running its task
        assert dask_worker.pid not in {p.pid for p in on_cluster.procs}     # the worker, not its nanny
        below = dask_worker.children(recursive=True)            # the render, its kernel, the zygote, the proxies
        assert first_kernel.pid in {p.pid for p in below} and len(below) >= 4
        dask_worker.kill()
        # the render and its kernel follow their worker within a second or two
        wait_for(lambda: all(ended(p.pid) for p in below), 10, "the first render, its kernel and zygote to end")
    finally:
        runner.join(timeout=240)
    assert "error" not in outcome, outcome.get("error")
    results = {r.name: r for r in outcome["results"]}
    assert {n: r.status for n, r in results.items()} == {"victim": "ok", "other": "ok", "third": "ok"}
    assert results["victim"].key_figures["pid"] != first_kernel.pid        # rendered again, by another kernel
    assert batch_files(out) == []                                          # the lost attempt's folder is gone


@pytest.mark.slow
def test_a_report_that_loses_its_worker_twice_is_crashed_without_a_third_render(tmp_path, on_cluster,
                                                                                  dask_notebook):
    import threading

    import psutil

    from analysis.report.batch import run_batch

    spec = write_spec(tmp_path / "spec.toml", [("victim", "hang")])
    out = tmp_path / "out"
    outcome: dict = {}

    def batch() -> None:
        try:
            outcome["results"] = run_batch(spec, out, scheduler=on_cluster.address, output="shared",
                                           notebook=dask_notebook, timeout=300, progress=False)
        except BaseException as exc:       # reported by the assertions below
            outcome["error"] = exc

    runner = threading.Thread(target=batch)
    runner.start()
    killed: list[int] = []
    try:
        for _ in range(2):
            pid_file = wait_for(lambda: next((p for p in out.glob(".partial-victim-*/notebook-pid")
                                              if int(p.parent.name.rsplit("-", 1)[1]) not in killed), None),
                                120, "the victim's kernel")
            render = psutil.Process(int(pid_file.parent.name.rsplit("-", 1)[1]))
            killed.append(render.pid)
            dask_worker_of(render).kill()
    finally:
        runner.join(timeout=240)
    assert "error" not in outcome, outcome.get("error")
    [result] = outcome["results"]
    assert result.status == "crashed"
    assert result.error.startswith("lost its Dask worker 2 times (tcp://") and result.error.endswith("not tried again")
    assert batch_files(out) == []


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_cancels_the_tasks_and_leaves_nothing_running(tmp_path, on_cluster, dask_notebook, signum, code):
    spec = write_spec(tmp_path / "spec.toml", [(f"hang_{i}", "hang") for i in range(1, 5)])
    out = tmp_path / "out"
    args = ["--scheduler", on_cluster.address, "--notebook", str(dask_notebook), "--timeout", "300"]
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    proc = subprocess.Popen([str(EXE), "batch", str(spec), "--out", str(out), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: len(list(out.glob(".partial-hang_*/notebook-pid"))) == 2, 120, "two hanging kernels")
        running = {p.parent.name.split("-")[1]: int(p.read_text()) for p in out.glob(".partial-hang_*/notebook-pid")}
        proc.send_signal(signum)
        sent = time.monotonic()
        _, stderr = proc.communicate(timeout=60)
        seconds = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == code, stderr
    assert seconds < 15, f"{seconds:.1f} s from the signal to the batch's exit"
    assert "Traceback" not in stderr and f"interrupted by {signal.Signals(signum).name}" in stderr
    wait_for(lambda: all(ended(kernel) for kernel in running.values()), 10, "the kernels to end")
    index = index_of(out)
    assert {r["status"] for r in index.values()} == {"interrupted"}
    name = signal.Signals(signum).name
    for report, record in index.items():
        if report in running:            # stopped on its worker
            assert record["error"].startswith(f"stopped by {name} after"), record
        else:                            # queued, never started
            assert record["error"] == f"not started: the batch was stopped by {name}", record
        assert not (out / report).exists()
    assert batch_files(out) == []
    assert on_cluster.n_workers() == 2                                     # the cluster itself is untouched


@pytest.mark.slow
def test_a_worker_that_does_not_see_the_output_folder_ships_or_says_so(tmp_path, on_cluster, dask_notebook):
    """``auto`` ships from a worker that does not see the marker; ``shared`` fails with a message."""
    from distributed import Client, Variable

    from analysis.report.batch import run_isolated
    from analysis.report.distributed import ReportTask, _attempts_name, _stop_kernel_zygote, _unpack, render_task

    token = uuid.uuid4().hex[:12]
    out = tmp_path / "out"
    out.mkdir()
    common = dict(parameters={"name": "site", "title": "ok"}, out=str(out / "site"), marker=str(out / ".ko-batch-x"),
                  cache_root=str(out / ".cache-x"), timeout=120, token=token, notebook_name="dask_fault.ipynb",
                  notebook=dask_notebook.read_bytes())
    with Client(on_cluster.address, timeout=10, set_as_default=False) as client:
        Variable(_attempts_name(token, "site"), client=client).set([])
        try:
            auto = client.submit(render_task, ReportTask(name="site", output="auto", **common), run_isolated,
                                 pure=False).result(timeout=120)
            Variable(_attempts_name(token, "site"), client=client).set([])
            shared = client.submit(render_task, ReportTask(name="site", output="shared", **common), run_isolated,
                                   pure=False).result(timeout=120)
        finally:
            Variable(_attempts_name(token, "site"), client=client).delete()
            client.run(_stop_kernel_zygote, token)          # what run_on_dask does when a batch ends
    assert auto["shared"] is False and auto["result"]["status"] == "ok" and auto["attempt"] == 1
    _unpack(auto["archive"], tmp_path / "shipped")
    assert {"report.html", "result.json", "key_figures.json"} <= {p.name for p in (tmp_path / "shipped").iterdir()}
    assert shared["result"]["status"] == "failed"
    assert "does not see the output folder" in shared["result"]["error"] and "--ship-output" in shared["result"]["error"]
    assert list(out.iterdir()) == []                              # nothing was written where it is not seen


@pytest.mark.slow
def test_a_session_starts_each_workers_zygote_before_any_report_and_stops_it_when_closed(tmp_path, on_cluster):
    """The batch connects before it checks its spec; the workers' zygotes do their imports
    meanwhile, without a task, and are gone (with their folders) once the session closes."""
    from analysis.report.distributed import DaskSession

    out = tmp_path / "out"
    out.mkdir()

    def zygote_of(token):
        from analysis.report.distributed import _ZYGOTES

        zygote = _ZYGOTES.get(token)
        return None if zygote is None else (zygote.process.pid, str(zygote.folder))

    with DaskSession(on_cluster.address, out) as session:
        assert (out / f".ko-batch-{session.token}").is_file()
        started = wait_for(lambda: (lambda found: found if all(found.values()) else None)(
            session.client.run(zygote_of, session.token)), 30, "each worker's zygote")
        assert len(started) == 2 and len({pid for pid, _ in started.values()}) == 2
        wait_for(lambda: all((Path(folder) / "ready").exists() for _, folder in started.values()), 60,
                 "the zygotes to finish their imports")
    assert not (out / f".ko-batch-{session.token}").exists()
    wait_for(lambda: all(ended(pid) for pid, _ in started.values()), 10, "the zygotes to stop")
    assert not any(Path(folder).exists() for _, folder in started.values())


@pytest.mark.slow
def test_the_cohort_report_renders_on_the_cluster(tmp_path, on_cluster, tiny_data):
    from analysis.report.batch import run_batch

    spec = tmp_path / "spec.toml"
    spec.write_text(f'[defaults]\ndata = "{tiny_data}"\n\n[[cohort]]\nname = "site_A"\nsites = ["site_A"]\n\n'
                    '[[cohort]]\nname = "site_B"\nsites = ["site_B"]\n')
    out = tmp_path / "out"
    results = run_batch(spec, out, scheduler=on_cluster.address, output="ship", timeout=600, progress=False)
    assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]
    a, b = (int(str(r.key_figures["patients"]).replace(",", "")) for r in results)   # shown as text
    assert a > 0 and b > 0 and a + b <= 80
    assert batch_files(out) == []


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    import analysis

    folder = tmp_path_factory.mktemp("tiny") / "data"
    analysis.simulate(n_patients=80, seed=1, n_sites=2).write(folder)
    return folder
