"""Batches that survive faults: a dead kernel, a dead worker, SIGTERM and SIGINT to the batch,
failed reruns and bad cohort names.

Most tests render a small notebook written here (``fault_notebook``) through the same render
path as the cohort report; what it does is chosen by the report's ``title``:

- ``ok``: writes ``key_figures.json`` (fails with ZeroDivisionError when ``KO_FAULT_FAIL`` is set);
- ``die``: the kernel kills itself with SIGKILL (as the out-of-memory killer would);
- ``hang``: when ``KO_FAULT_HANG`` is set, starts a child process (in the kernel's process
  group) and sleeps; otherwise as ``ok``.

Every process a batch started carries ``KO_FAULT_MARK`` in its environment (the test sets it
for the batch; workers, kernels and the kernels' children inherit it), so "no process left" is
checked by looking for that mark, whoever the process's parent is now. Each test has its own
temporary directory (``TMPDIR``), so "no kernel socket folder left" holds under pytest-xdist.
The slow tests run the batch command as a subprocess and signal it.
"""

from __future__ import annotations

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
from analysis.report.batch import load_spec, plan_batch

EXE = Path(sys.executable).with_name("ketamine-outcomes")

BODY = '''\
import json, os, pathlib, signal, subprocess, sys, time
out = pathlib.Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
(out / "notebook-pid").write_text(str(os.getpid()))
if title == "die":
    os.kill(os.getpid(), signal.SIGKILL)
if title == "hang" and os.environ.get("KO_FAULT_HANG"):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    (out / "child-pid").write_text(str(child.pid))
    time.sleep(600)
if os.environ.get("KO_FAULT_FAIL"):
    raise ZeroDivisionError("injected failure")
(out / "key_figures.json").write_text(json.dumps({"patients": len(name)}))
print("done", name)
'''


@pytest.fixture
def fault_notebook(tmp_path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    defaults = "\n".join(f"{k} = {v!r}" for k, v in ReportParameters().literals().items())
    nb.cells = [nbformat.v4.new_code_cell(defaults, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(BODY)]
    path = tmp_path / "fault.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def private_tmp(monkeypatch) -> Path:
    """A temporary directory of this test's own (short: kernel sockets live in it), for this
    process (``tempfile``) and the batches it starts (``TMPDIR``); no ``ko-*`` may be left in it."""
    folder = Path(tempfile.mkdtemp(prefix="kf", dir="/tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    yield folder
    left = sorted(p.name for p in folder.glob("ko-*"))
    shutil.rmtree(folder)
    assert not left, f"kernel socket folders left in {folder}: {left}"


def leftovers(out: Path) -> list[str]:
    """Temporary folders a batch may leave in its output folder."""
    return sorted(p.name for pattern in (".partial-*", ".replaced-*") for p in out.glob(pattern))


def marked_processes(mark: str) -> list[int]:
    """Live (not zombie) processes whose environment holds KO_FAULT_MARK=mark."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with the dev environment
        psutil = None
    found = []
    if psutil is not None:
        for proc in psutil.process_iter():
            try:
                if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get("KO_FAULT_MARK") == mark:
                    found.append(proc.pid)
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue      # gone meanwhile, or another user's process: not one of ours
        return found
    needle = f"KO_FAULT_MARK={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z" and needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def partial_file(out: Path, name: str, file: str) -> Path | None:
    hits = list(out.glob(f".partial-{name}-*/{file}"))
    return hits[0] if hits else None


class Batch:
    """The batch command as a subprocess, in a session of its own, its processes marked."""

    def __init__(self, spec: Path, out: Path, *args: str, env: dict[str, str] | None = None):
        self.mark = uuid.uuid4().hex
        self.out = out
        full_env = {**os.environ, "KO_FAULT_MARK": self.mark, **(env or {})}
        self.proc = subprocess.Popen([str(EXE), "batch", str(spec), "--out", str(out), *args], env=full_env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)

    def wait(self, timeout: float) -> tuple[int, str, str]:
        stdout, stderr = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, stdout, stderr

    def index(self) -> dict[str, dict]:
        return {r["name"]: r for r in json.loads((self.out / "index.json").read_text())}

    def kill_all(self) -> None:
        """Safety net after a failing test: nothing the batch started survives the test."""
        for pid in [self.proc.pid, *marked_processes(self.mark)]:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
        self.proc.wait(timeout=10)


@pytest.fixture
def batches():
    started: list[Batch] = []

    def start(*args, **kwargs) -> Batch:
        batch = Batch(*args, **kwargs)
        started.append(batch)
        return batch

    yield start
    for batch in started:
        if batch.proc.poll() is None or marked_processes(batch.mark):
            batch.kill_all()


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


# --- crash detection (fast lane) -------------------------------------------------------------


def test_a_kernel_killed_by_sigkill_is_a_crash_reported_within_seconds(tmp_path, fault_notebook, private_tmp):
    from analysis.report.render import render_report

    out = tmp_path / "out" / "die"
    started = time.monotonic()
    result = render_report(ReportParameters(name="die", title="die"), out, notebook=fault_notebook)
    seconds = time.monotonic() - started
    assert result.status == "crashed", result
    assert result.error.startswith("kernel died: killed by SIGKILL"), result.error
    assert seconds < 10, f"the crash took {seconds:.1f} s to notice"
    # no earlier report: the attempt is in place, saying what happened
    assert json.loads((out / "result.json").read_text())["status"] == "crashed"
    assert json.loads((out / "provenance.json").read_text())["status"] == "crashed"
    assert not leftovers(out.parent)
    kernel = int((out / "notebook-pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(kernel, 0)


# --- cohort names -----------------------------------------------------------------------------


@pytest.mark.parametrize("name, expected", [
    ("a\x00b", "row 1, column name: must not contain control characters (NUL, tab, newline, ...), got 'a\\x00b'"),
    ("tab\there", "row 1, column name: must not contain control characters"),
    ("x" * 300, "row 1, column name: must be at most 100 characters, got 300 characters ('xxxxxxxx"),
    ("a/b", "row 1, column name: must not contain a path separator (/ or \\), got 'a/b'"),
    ("a\\b", "row 1, column name: must not contain a path separator"),
    ("..", "row 1, column name: must not start with '.' or contain '..', got '..'"),
    ("a..b", "row 1, column name: must not start with '.' or contain '..', got 'a..b'"),
    ("up/../x", "row 1, column name: must not contain a path separator"),
    (".hidden", "row 1, column name: must not start with '.' or contain '..', got '.hidden'"),
    ("index.html", "row 1, column name: 'index.html' is the batch index's file name"),
])
def test_bad_cohort_names_are_spec_errors(tmp_path, name, expected):
    jobs = plan_batch([{"name": name}, {"name": "fine"}], tmp_path)
    assert jobs[0].params is None and expected in jobs[0].error, jobs[0].error
    assert jobs[1].error is None
    assert "\x00" not in jobs[0].name and len(jobs[0].name) <= 60       # shown in the index as text


def test_names_that_differ_only_in_case_collide(tmp_path):
    jobs = plan_batch([{"name": "Site_A", "sites": ["site_A"]}, {"name": "site_B", "sites": ["site_B"]},
                       {"name": "site_a", "sites": ["site_C"]}], tmp_path)
    assert [j.error is None for j in jobs] == [True, True, False]
    assert ("row 3, column name: 'site_a' names the same folder as row 1 ('Site_A') on case-insensitive "
            "file systems; names must differ in more than case") in jobs[2].error


def test_a_batch_with_bad_names_runs_the_good_cohorts(tmp_path, fault_notebook, private_tmp, capsys):
    from analysis.cli import main

    spec = tmp_path / "spec.yaml"
    spec.write_text('cohorts:\n  - name: "nul\\0byte"\n  - name: "' + "n" * 300 + '"\n  - name: good\n')
    assert [r["name"] for r in load_spec(spec)] == ["nul\x00byte", "n" * 300, "good"]
    out = tmp_path / "out"
    code = main(["batch", str(spec), "--out", str(out), "--workers", "1", "--notebook", str(fault_notebook)])
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "row 1, column name" in err and "row 2, column name" in err
    index = json.loads((out / "index.json").read_text())
    assert [r["status"] for r in index] == ["invalid", "invalid", "ok"]
    assert (out / "good" / "report.html").exists() and "good" in (out / "index.html").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["good", "index.html", "index.json"]


# --- kernels and workers killed from outside -----------------------------------------------------


@pytest.mark.slow
def test_a_kernel_killed_during_a_batch_is_a_crash_and_its_process_group_is_stopped(
        tmp_path, fault_notebook, private_tmp, batches):
    spec = write_spec(tmp_path / "spec.toml", [("fine", "ok"), ("victim", "hang")])
    out = tmp_path / "out"
    batch = batches(spec, out, "--workers", "2", "--timeout", "300", "--notebook", str(fault_notebook),
                    env={"KO_FAULT_HANG": "1"})
    child = wait_for(lambda: partial_file(out, "victim", "child-pid"), 60, "the victim's kernel to start its child")
    kernel = int(child.with_name("notebook-pid").read_text())
    os.kill(kernel, signal.SIGKILL)
    killed = time.monotonic()
    code, _, stderr = batch.wait(timeout=60)
    noticed = time.monotonic() - killed
    assert code == 1, stderr
    index = batch.index()
    assert index["fine"]["status"] == "ok"
    assert index["victim"]["status"] == "crashed"
    assert index["victim"]["error"].startswith("kernel died: killed by SIGKILL")
    assert noticed < 15, f"the batch took {noticed:.1f} s after the kernel died"
    assert not marked_processes(batch.mark)           # the kernel's child went with its group
    assert not leftovers(out)


@pytest.mark.slow
def test_a_killed_worker_is_a_crash_and_its_kernel_is_stopped(tmp_path, fault_notebook, private_tmp, batches):
    spec = write_spec(tmp_path / "spec.toml", [("victim", "hang"), ("after", "ok")])
    out = tmp_path / "out"
    batch = batches(spec, out, "--workers", "1", "--timeout", "300", "--notebook", str(fault_notebook),
                    env={"KO_FAULT_HANG": "1"})
    child = wait_for(lambda: partial_file(out, "victim", "child-pid"), 60, "the victim's kernel to start its child")
    worker = int(child.parent.name.rsplit("-", 1)[1])          # .partial-<name>-<worker pid>
    kernel = int(child.with_name("notebook-pid").read_text())
    os.kill(worker, signal.SIGKILL)
    code, _, stderr = batch.wait(timeout=60)
    assert code == 1, stderr
    index = batch.index()
    assert index["victim"]["status"] == "crashed"
    assert index["victim"]["error"] == "worker died: killed by SIGKILL (out of memory, or kill -9)"
    assert index["after"]["status"] == "ok"                    # the next cohort still ran
    with pytest.raises(ProcessLookupError):
        os.kill(kernel, 0)
    assert not marked_processes(batch.mark)
    assert not leftovers(out)


# --- signals to the batch -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_every_child_marks_the_unfinished_and_a_rerun_resumes(
        tmp_path, fault_notebook, private_tmp, batches, signum, code):
    cohorts = [("quick", "ok"), ("hang_1", "hang"), ("hang_2", "hang"), ("later", "ok")]
    spec = write_spec(tmp_path / "spec.toml", cohorts)
    out = tmp_path / "out"
    args = ["--workers", "2", "--timeout", "300", "--notebook", str(fault_notebook)]
    batch = batches(spec, out, *args, env={"KO_FAULT_HANG": "1"})
    wait_for(lambda: partial_file(out, "hang_1", "child-pid") and partial_file(out, "hang_2", "child-pid"), 60,
             "both hanging kernels")
    assert (out / "quick" / "report.html").exists()
    batch.proc.send_signal(signum)
    sent = time.monotonic()
    returncode, stdout, stderr = batch.wait(timeout=30)
    wait_for(lambda: not marked_processes(batch.mark), 10, "every process of the batch to end")
    gone = time.monotonic() - sent
    assert returncode == code, stderr
    assert gone < 5, f"{gone:.1f} s from the signal to the last child gone"
    assert "Traceback" not in stderr and f"interrupted by {signal.Signals(signum).name}" in stderr
    index = batch.index()
    assert {n: r["status"] for n, r in index.items()} == {
        "quick": "ok", "hang_1": "interrupted", "hang_2": "interrupted", "later": "interrupted"}
    assert index["hang_1"]["error"].startswith(f"stopped by {signal.Signals(signum).name}")
    assert index["later"]["error"] == f"not started: the batch was stopped by {signal.Signals(signum).name}"
    assert "interrupted" in (out / "index.html").read_text()
    assert not leftovers(out) and not (out / "hang_1").exists()
    # the rerun resumes: the finished report is skipped, the interrupted ones run
    rerun = batches(spec, out, *args)
    assert rerun.wait(timeout=120)[0] == 0
    assert {n: r["status"] for n, r in rerun.index().items()} == {
        "quick": "skipped", "hang_1": "ok", "hang_2": "ok", "later": "ok"}
    assert not marked_processes(rerun.mark) and not leftovers(out)


# --- failed reruns keep the last good report ----------------------------------------------------


@pytest.mark.slow
def test_a_failed_rerun_keeps_the_last_good_report_marked_stale(tmp_path, fault_notebook, private_tmp, batches):
    spec = write_spec(tmp_path / "spec.toml", [("cohort", "hang"), ("fresh", "hang")])
    out = tmp_path / "out"
    args = ["--workers", "2", "--notebook", str(fault_notebook)]
    good = batches(write_spec(tmp_path / "one.toml", [("cohort", "hang")]), out, *args)
    assert good.wait(timeout=120)[0] == 0
    kept = {f: (out / "cohort" / f).read_bytes() for f in ("report.html", "provenance.json", "key_figures.json",
                                                              "fault.ipynb", "result.json")}

    # a rerun that times out: the good report stays, marked stale; a cohort never rendered is "timeout"
    slow = batches(spec, out, *args, "--force", "--timeout", "4", env={"KO_FAULT_HANG": "1"})
    code, _, stderr = slow.wait(timeout=120)
    assert code == 1, stderr
    index = slow.index()
    assert index["cohort"]["status"] == "stale" and index["cohort"]["attempt"] == "timeout"
    assert index["cohort"]["error"].startswith("stopped after 4 s")
    assert index["cohort"]["key_figures"] == {"patients": 6}             # the last good report's
    assert {f: (out / "cohort" / f).read_bytes() for f in kept} == kept  # untouched, nothing half-written beside
    assert index["fresh"]["status"] == "timeout"
    assert not (out / "fresh" / "report.html").exists()
    assert json.loads((out / "fresh" / "result.json").read_text())["status"] == "timeout"
    assert not marked_processes(slow.mark) and not leftovers(out)

    # a rerun whose notebook fails: stale with the failure; the failed attempt is kept for reading
    failing = batches(spec, out, *args, "--force", env={"KO_FAULT_FAIL": "1"})
    assert failing.wait(timeout=120)[0] == 1
    index = failing.index()
    assert index["cohort"]["status"] == "stale" and index["cohort"]["attempt"] == "failed"
    assert index["cohort"]["error"] == "ZeroDivisionError: injected failure"
    assert "injected failure" in (out / "cohort" / "failed-attempt" / "fault.ipynb").read_text()
    assert {f: (out / "cohort" / f).read_bytes() for f in kept} == kept
    assert index["fresh"]["status"] == "failed"                       # nothing good to keep: the attempt is shown
    page = (out / "index.html").read_text()
    assert "stale" in page and "cohort/failed-attempt/fault.ipynb" in page

    # unchanged and good: skipped (the stale failure does not force a rerun); forced and good: replaced
    again = batches(spec, out, *args)
    assert again.wait(timeout=120)[0] == 0
    assert {n: r["status"] for n, r in again.index().items()} == {"cohort": "skipped", "fresh": "ok"}
    forced = batches(spec, out, *args, "--force")
    assert forced.wait(timeout=120)[0] == 0
    assert not (out / "cohort" / "failed-attempt").exists() and not leftovers(out)


# --- the real cohort report -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    import analysis

    folder = tmp_path_factory.mktemp("tiny") / "data"
    analysis.simulate(n_patients=120, seed=1, n_sites=3).write(folder)      # 53, 37 and 30 patients
    return folder


@pytest.mark.slow
def test_the_cohort_report_batch_stopped_by_sigterm_resumes(tmp_path, tiny_data, private_tmp, batches):
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[defaults]\ndata = "{tiny_data}"\n\n[[cohort]]\nname = "site_A"\nsites = ["site_A"]\n\n'
                    '[[cohort]]\nname = "site_B"\nsites = ["site_B"]\n'
                    'definitions = { relapse_confirmations = 1 }\n\n'
                    '[[cohort]]\nname = "site_C"\nsites = ["site_C"]\n')
    out = tmp_path / "out"
    batch = batches(spec, out, "--workers", "2")
    # both kernels running (each has written its process id beside its sockets): stop the batch mid-render
    wait_for(lambda: len(list(private_tmp.glob("ko-*/kernel.pid"))) == 2, 120, "two kernels")
    time.sleep(2)                                   # well into the notebooks
    batch.proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    code, _, stderr = batch.wait(timeout=30)
    wait_for(lambda: not marked_processes(batch.mark), 10, "every process of the batch to end")
    assert code == 143, stderr
    assert time.monotonic() - sent < 5
    assert set(r["status"] for r in batch.index().values()) == {"interrupted"}
    assert not leftovers(out)
    rerun = batches(spec, out, "--workers", "2")
    code, stdout, stderr = rerun.wait(timeout=300)
    assert code == 0, stderr
    index = rerun.index()
    assert {n: r["status"] for n, r in index.items()} == {"site_A": "ok", "site_B": "ok", "site_C": "ok"}
    assert all(r["key_figures"]["patients"] for r in index.values())
    for name in index:
        assert (out / name / "report.html").exists() and (out / name / "provenance.json").exists()
    assert not marked_processes(rerun.mark) and not leftovers(out)


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_a_single_report_stops_its_kernel_and_leaves_the_folder_as_it_was(
        tmp_path, tiny_data, private_tmp, signum, code):
    mark = uuid.uuid4().hex
    proc = subprocess.Popen([str(EXE), "report", "--data", str(tiny_data), "--out", str(tmp_path / "r")],
                            env={**os.environ, "KO_FAULT_MARK": mark}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: list(private_tmp.glob("ko-*/kernel.pid")), 60, "the kernel")
        time.sleep(1)
        proc.send_signal(signum)
        sent = time.monotonic()
        _, stderr = proc.communicate(timeout=30)
        wait_for(lambda: not marked_processes(mark), 10, "the kernel to end")
        assert time.monotonic() - sent < 5
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and f"interrupted by {signal.Signals(signum).name}" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []              # no report, no temporary folder
