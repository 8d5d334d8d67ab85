"""The kernel a render starts: progress per cell, one BLAS thread, a quiet shutdown."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import nbformat
import pytest

from analysis.report.render import SectionProgress, cell_label, render_notebook, terminal_progress


def small_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Small"),
        nbformat.v4.new_code_cell("name = 'x'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("class Report:\n    def waterfall(self):\n        return 1\n\nreport = Report()"),
        nbformat.v4.new_code_cell("report.waterfall()"),
        nbformat.v4.new_code_cell("import os, json\n"
                                  "print(json.dumps({k: os.environ.get(k) for k in "
                                  "('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')}))"),
    ]
    nbformat.write(nb, str(path))
    return path


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_render_shows_each_cell_pins_blas_and_shuts_down_quietly(tmp_path, capfd, monkeypatch):
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    screen = FakeTerminal()
    progress = SectionProgress(screen, "small")
    executed = tmp_path / "out" / "small.ipynb"
    executed.parent.mkdir()
    render_notebook(small_notebook(tmp_path / "small.ipynb"), executed, {"name": "y"}, on_cell=progress)
    progress.close()
    lines = [part.strip() for part in screen.getvalue().split("\r") if part.strip()]
    # papermill's injected parameters cell comes after the parameters cell: 5 code cells
    assert [line.split("] ")[1].rsplit("  ", 1)[0] for line in lines] == [
        "parameters", "parameters", "class Report:", "waterfall", "import os, json"]
    assert lines[0].startswith("small: [1/5]") and lines[-1].startswith("small: [5/5]")
    assert screen.getvalue().endswith("\r"), "the status line is cleared at the end"
    outputs = json.loads(executed.read_text())["cells"][-1]["outputs"]
    assert json.loads("".join(outputs[0]["text"])) == {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                                              "MKL_NUM_THREADS": "1"}
    captured = capfd.readouterr()
    assert "KeyboardInterrupt" not in captured.err and "KeyboardInterrupt" not in captured.out


def test_a_thread_count_the_caller_chose_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    executed = tmp_path / "out" / "small.ipynb"
    executed.parent.mkdir()
    render_notebook(small_notebook(tmp_path / "small.ipynb"), executed, {})
    outputs = json.loads(executed.read_text())["cells"][-1]["outputs"]
    assert json.loads("".join(outputs[0]["text"]))["OPENBLAS_NUM_THREADS"] == "2"


@pytest.mark.parametrize("ci, tty, shown", [("", True, True), ("true", True, False), ("false", True, True),
                                            ("", False, False), ("1", True, False)])
def test_progress_only_on_a_terminal_outside_ci(ci, tty, shown, monkeypatch):
    monkeypatch.setenv("CI", ci)
    stream = FakeTerminal() if tty else io.StringIO()
    assert (terminal_progress(stream) is not None) == shown


def test_cell_labels_name_the_report_section():
    assert cell_label({"source": "from analysis.report import CohortReport\nreport = CohortReport(params)"}) == \
        "loading the cohort"
    assert cell_label({"source": "report.limitations(responder_models=r)", "metadata": {}}) == "limitations"
    assert cell_label({"source": "# a comment\n\nsummary = 1", "metadata": {}}) == "summary = 1"
    assert cell_label({"source": "if html_path:\n    export()", "metadata": {"tags": ["export"]}}) == "export"


def test_shutting_down_sends_the_kernel_no_interrupt():
    """jupyter_client sends SIGINT before every shutdown request, and an idle kernel then may log
    "KeyboardInterrupt caught in kernel" (it depends on timing); the render's manager does not."""
    import asyncio

    from analysis.report.render import IPCKernelManager

    manager = IPCKernelManager()
    sent = []

    async def record(signum):
        sent.append(signum)

    manager._async_signal_kernel = record
    manager.shutting_down = True
    asyncio.run(manager._async_interrupt_kernel())
    assert sent == []


def test_the_kernel_starts_with_the_users_font_list_and_keeps_a_new_one(tmp_path, monkeypatch):
    """No kernel scans the installed fonts again when the user's matplotlib cache has them."""
    cache = tmp_path / "cache" / "matplotlib"
    monkeypatch.delenv("MPLCONFIGDIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import os\nprint(sorted(os.listdir(os.environ['MPLCONFIGDIR'])))\n"
                                          "import matplotlib.font_manager")]
    nbformat.write(nb, str(tmp_path / "fonts.ipynb"))
    executed = tmp_path / "out" / "fonts.ipynb"
    executed.parent.mkdir()
    render_notebook(tmp_path / "fonts.ipynb", executed, {})
    first = "".join(json.loads(executed.read_text())["cells"][0]["outputs"][0]["text"])
    kept = sorted(p.name for p in cache.glob("fontlist-v*.json"))
    assert "fontlist" not in first and len(kept) == 1, "the first kernel built the list, and it was kept"
    render_notebook(tmp_path / "fonts.ipynb", executed, {})
    second = "".join(json.loads(executed.read_text())["cells"][0]["outputs"][0]["text"])
    assert kept[0] in second, "the next kernel started with it"
    assert not (executed.parent / ".runtime").exists(), "the private folders are removed"


@pytest.mark.slow
def test_the_report_command_off_a_terminal_prints_one_line_and_no_kernel_noise(tmp_path):
    """Off a terminal (as in CI and logs): no progress, no kernel log lines, one line of result."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    exe = Path(sys.executable).with_name("ketamine-outcomes")
    run = subprocess.run([str(exe), "report", "--data", str(root / "tests" / "fixtures" / "data" / "cohort12"),
                          "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "CI": ""})
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("\n") == 1 and run.stdout.startswith("report cohort12: ") and "\r" not in run.stdout
    assert "KeyboardInterrupt" not in run.stderr and "[IPKernelApp]" not in run.stderr, run.stderr[-2000:]
