"""Rendering a parameterised notebook with papermill into a report folder.

A report folder holds the executed notebook, a self-contained HTML page (code hidden, images
embedded, no external http(s) resources) with the provenance in its footer, the figures
and tables the notebook wrote, and ``provenance.json``.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager
from traitlets import default

from ..resources import notebook_path
from .parameters import ReportParameters
from .provenance import build_provenance, cache_key

__all__ = ["RenderResult", "render_notebook", "render_report", "notebook_path", "to_html"]


class IPCKernelManager(KernelManager):
    """A kernel that talks over Unix sockets instead of TCP ports, so parallel renders never
    race for the same port. The sockets live in a private short folder per render
    (``KO_IPC_DIR``; Unix socket paths are limited to about 100 characters)."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        folder = os.environ.get("KO_IPC_DIR") or tempfile.mkdtemp(prefix="ko-")
        return os.path.join(folder, "k")


@dataclass
class RenderResult:
    """What happened to one report."""

    name: str
    out: Path
    status: str  # "ok", "failed", "skipped", "timeout"
    seconds: float = 0.0
    error: str | None = None
    failed_cell: str | None = None
    key_figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "out": str(self.out), "status": self.status, "seconds": round(self.seconds, 2),
                "error": self.error, "failed_cell": self.failed_cell, "key_figures": self.key_figures}


def render_notebook(notebook: Path, out_notebook: Path, parameters: dict[str, Any], *, timeout: float | None = 900,
                    cwd: Path | None = None) -> None:
    """Execute a notebook with papermill (raises papermill's PapermillExecutionError on a failing cell).

    Each render gets its own Jupyter runtime, IPython and matplotlib folders inside the output
    folder (no shared-cache clashes between parallel renders) and an IPC kernel (no port races).
    """
    import papermill as pm

    private = out_notebook.parent / ".runtime"
    for sub in ("jupyter", "ipython", "matplotlib"):
        (private / sub).mkdir(parents=True, exist_ok=True)
    ipc_dir = tempfile.mkdtemp(prefix="ko-")
    saved = {k: os.environ.get(k) for k in ("JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "MPLCONFIGDIR", "MPLBACKEND", "KO_IPC_DIR")}
    os.environ.update({"JUPYTER_RUNTIME_DIR": str(private / "jupyter"), "IPYTHONDIR": str(private / "ipython"),
                       "MPLCONFIGDIR": str(private / "matplotlib"), "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                       "KO_IPC_DIR": ipc_dir})
    try:
        pm.execute_notebook(
            str(notebook), str(out_notebook), parameters=parameters, kernel_name="python3", progress_bar=False,
            log_output=False, execution_timeout=timeout, cwd=str(cwd) if cwd else None,
            kernel_manager_class=IPCKernelManager,
        )
    finally:
        shutil.rmtree(ipc_dir, ignore_errors=True)
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
                  timeout: float | None = 900) -> RenderResult:
    """Render the cohort report for ``params`` into ``out``.

    Writes ``<notebook>.ipynb`` (executed), ``report.html``, ``figures/``, ``tables/``,
    ``provenance.json``, ``key_figures.json`` and ``cache_key.txt``. A failing cell does not
    raise: the result says which cell failed and why, and the executed notebook shows it.
    """
    from papermill.exceptions import PapermillExecutionError

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    nb_path = Path(notebook) if notebook else notebook_path("cohort_report")
    data = params.data_path().resolve()
    literals = {**params.literals(), "data": str(data), "output_dir": str(out)}
    executed = out / nb_path.name
    started = time.perf_counter()
    status, error, failed_cell = "ok", None, None
    try:
        render_notebook(nb_path, executed, literals, timeout=timeout)
    except PapermillExecutionError as exc:
        status, error = "failed", f"{exc.ename}: {exc.evalue}"
        failed_cell = _failed_cell_source(executed)
    seconds = time.perf_counter() - started
    provenance = build_provenance(parameters={**params.literals(), "data": str(data)}, data_folder=data,
                                  notebook=nb_path, timings={"total": seconds}, status=status)
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out / "report.html").write_text(to_html(executed, provenance, params.title), encoding="utf-8")
    (out / "cache_key.txt").write_text(cache_key(notebook=nb_path, parameters={**params.literals(), "data": str(data)},
                                                 data_folder=data) + "\n")
    key_file = out / "key_figures.json"
    figures = json.loads(key_file.read_text()) if status == "ok" and key_file.exists() else {}
    return RenderResult(params.name, out, status, seconds, error, failed_cell, figures)


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
