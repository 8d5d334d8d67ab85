"""The figure set of a paper, sized for journals, saved byte-identically, with a manifest.

``notebooks/paper_figures.ipynb`` calls these functions; ``ketamine-outcomes figures``
renders that notebook and writes ``manifest.json`` with the SHA-256 of every figure file.
Two runs on the same inputs give identical bytes: fixed figure sizes and DPI, no dates or
software strings in the files, a fixed SVG id salt, and no randomness.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..survival import kaplan_meier
from . import figures as fg
from .parameters import ParameterError
from .provenance import build_provenance, file_sha256

__all__ = ["FigureParameters", "WIDTHS", "figure_response", "figure_relapse", "figure_durability",
           "figure_trajectories", "save_paper_figure", "render_figures"]

#: journal column widths in inches
WIDTHS = {"single": fg.SINGLE_COLUMN, "double": fg.DOUBLE_COLUMN}


class FigureParameters(BaseModel):
    """Parameters of ``notebooks/paper_figures.ipynb``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    data: str = Field("", description="Dataset folder; empty means the bundled sample.")
    output_dir: str = Field("", description="Where the figure files go; empty: nothing is written.")
    instrument: str = Field("PHQ-9", description="Instrument the outcomes are defined on.")
    min_cell_count: int = Field(11, description="Curves stop where fewer patients are at risk; counts below are suppressed.")
    formats: list[str] = Field(default_factory=lambda: ["pdf", "svg", "png"],
                               description="File formats to write: some of pdf, svg, png, tiff.")
    dpi: int = Field(300, description="Resolution of PNG and TIFF files.")
    widths: list[str] = Field(default_factory=lambda: ["single", "double"],
                              description="Journal column widths to draw every figure at: single (3.5 in), double (7.2 in).")

    @field_validator("formats")
    @classmethod
    def _formats(cls, v: list[str]) -> list[str]:
        bad = [f for f in v if f not in ("pdf", "svg", "png", "tiff")]
        if bad or not v:
            raise ValueError(f"formats must be some of pdf, svg, png, tiff; got {v}")
        return v

    @field_validator("widths")
    @classmethod
    def _widths(cls, v: list[str]) -> list[str]:
        bad = [w for w in v if w not in WIDTHS]
        if bad or not v:
            raise ValueError(f"widths must be some of single, double; got {v}")
        return v

    @field_validator("dpi", "min_cell_count")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"must be at least 1, got {v}")
        return v

    @classmethod
    def checked(cls, values: dict[str, Any]) -> FigureParameters:
        try:
            return cls(**values)
        except ValidationError as exc:
            lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]
            raise ParameterError("figure parameters: " + "; ".join(lines)) from None

    @classmethod
    def from_namespace(cls, namespace: dict[str, Any]) -> FigureParameters:
        return cls.checked({k: namespace[k] for k in cls.model_fields if k in namespace})

    def data_path(self) -> Path:
        """The dataset folder (the bundled sample when ``data`` is empty)."""
        from ..resources import sample_path

        return Path(self.data) if self.data else sample_path()


def _style():
    import matplotlib

    return matplotlib.rc_context({"font.size": 7, "axes.titlesize": 8, "axes.labelsize": 7, "xtick.labelsize": 6,
                                  "ytick.labelsize": 6, "legend.fontsize": 6, "lines.linewidth": 1.0,
                                  "axes.spines.top": False, "axes.spines.right": False})


def figure_response(outcomes, width: str = "double", k: int = 11):
    """Figure 1: waterfall of end-of-induction improvement and the response categories."""
    from matplotlib.figure import Figure

    with _style():
        fig = Figure(figsize=(WIDTHS[width], WIDTHS[width] * 0.42), layout="constrained")
        a, b = fig.subplots(1, 2, width_ratios=[2, 1])
        courses = outcomes.courses[outcomes.courses["category"].notna()]
        d = outcomes.definitions
        fg.waterfall(courses["improvement_pct"], response_pct=d.response_pct, partial_pct=d.partial_response_pct,
                     k=k, ax=a)
        summary = outcomes.response_summary()
        fg.category_bars(summary, k=k, ax=b, hidden=_hidden_categories(outcomes, summary, k))
        a.set_title("a  Improvement at the end of induction", loc="left")
        b.set_title("b  Response and remission", loc="left")
        b.tick_params(axis="x", labelrotation=30)
    return fig


def figure_relapse(outcomes, width: str = "single", k: int = 11):
    """Figure 2: relapse after induction among responders (Kaplan-Meier, at-risk counts)."""
    from matplotlib.figure import Figure

    with _style():
        fig = Figure(figsize=(WIDTHS[width], WIDTHS[width] * 0.85), layout="constrained")
        ax = fig.add_subplot()
        if len(outcomes.relapse) >= k:
            kaplan_meier(outcomes.relapse, "time", "event").plot(ax=ax, min_at_risk=k)
            fg.relabel_groups(ax, "group", {"all": "responders"})
            for t in ax.texts:
                if t.get_text() == "all":
                    t.set_text("responders")
        ax.set_xlabel("days since the end of induction")
        ax.set_ylabel("still responding")
    return fig


def figure_durability(outcomes, width: str = "single", k: int = 11, exposure: str = "drug_rapamycin"):
    """Figure 3: how long each maintenance infusion held, by exposure to an adjunct (or overall)."""
    from matplotlib.figure import Figure

    with _style():
        fig = Figure(figsize=(WIDTHS[width], WIDTHS[width] * 0.85), layout="constrained")
        ax = fig.add_subplot()
        durability = outcomes.durability
        group = exposure if exposure in durability and durability[exposure].nunique() > 1 else None
        if len(durability) >= k:
            km = kaplan_meier(durability, "time", "event", group=group)
            km.plot(ax=ax, min_at_risk=k)
            if group is not None:
                from .labels import exposure_label

                name = exposure_label(group).lower()
                fg.relabel_groups(ax, group, {"False": f"without {name}", "True": f"with {name}",
                                              "0": f"without {name}", "1": f"with {name}"})
        ax.set_xlabel("days since the infusion")
        ax.set_ylabel("benefit still holding")
    return fig


def figure_trajectories(dataset, outcomes, width: str = "single", k: int = 11):
    """Figure 4: mean score by week since the first session, by response category."""
    from matplotlib.figure import Figure

    instrument = outcomes.instrument
    scores = dataset.assessments[dataset.assessments["instrument"] == instrument]
    courses = outcomes.courses.set_index("patient_id")
    scores = scores[scores["patient_id"].isin(courses.index)].copy()
    scores["week"] = np.floor((scores["day"] - scores["patient_id"].map(courses["first_session_day"])) / 7)
    scores = scores[(scores["week"] >= -2) & (scores["week"] <= 12)]
    scores["category"] = scores["patient_id"].map(courses["category"].astype(str))
    with _style():
        fig = Figure(figsize=(WIDTHS[width], WIDTHS[width] * 0.75), layout="constrained")
        ax = fig.add_subplot()
        for category in ("responder", "partial", "non-responder"):
            group = scores[scores["category"] == category]
            if len(group):
                fg.plot_trajectory(fg.trajectory_summary(group, k=k), label=category, ax=ax, ylabel=f"{instrument} (mean, 95% CI)")
        ax.legend(frameon=False)
        ax.set_xlabel("weeks since the first session")
    return fig


def _hidden_categories(outcomes, summary, k: int) -> list[bool]:
    """The response categories and remission a report on the same outcomes hides
    (:class:`analysis.report.privacy.Disclosure`), so a paper figure never shows more."""
    from .privacy import Disclosure

    courses = outcomes.courses[outcomes.courses["category"].notna()]
    cats = courses["category"].astype(str).value_counts()
    disclosure = Disclosure(k, analysed=len(courses), followed=len(outcomes.relapse),
                            categories={c: int(cats.get(c, 0)) for c in ("non-responder", "partial", "responder")},
                            remitters=int(courses["remission"].fillna(False).sum()))
    return [not disclosure.remission_shown if o == "remission" else disclosure.category_hidden.get(o, True)
            for o in summary["outcome"]]


def save_paper_figure(fig, out: str | Path, name: str, formats=("pdf", "svg", "png"), dpi: int = 300) -> list[Path]:
    """Save one figure in every format, byte-identically (see :func:`analysis.report.figures.save_figure`)."""
    if not out:
        return []
    return fg.save_figure(fig, Path(out) / name, formats=formats, dpi=dpi)


def render_figures(*, data: str | Path | None = None, out: str | Path = "reports/figures",
                   parameters: dict[str, str] | None = None):
    """Render ``notebooks/paper_figures.ipynb`` into ``out`` and write ``manifest.json``.

    The manifest holds the SHA-256 of every figure file; two runs on the same inputs give the
    same manifest. Returns a :class:`analysis.report.render.RenderResult`.
    """
    from papermill.exceptions import PapermillExecutionError

    from .render import KernelDied, RenderResult, notebook_path, render_notebook

    values: dict[str, Any] = {}
    for name, text in (parameters or {}).items():
        values[name] = _parse(name, text)
    if data is not None:
        values["data"] = str(data)
    params = FigureParameters.checked(values)
    out = Path(out).resolve()
    figures_dir = out / "figures"
    if figures_dir.exists():
        for old in figures_dir.iterdir():
            old.unlink()
    figures_dir.mkdir(parents=True, exist_ok=True)
    nb = notebook_path("paper_figures")
    literals = {**params.model_dump(), "data": str(params.data_path().resolve()), "output_dir": str(figures_dir)}
    started = time.perf_counter()
    try:
        render_notebook(nb, out / nb.name, literals, timeout=900)
    except PapermillExecutionError as exc:
        return RenderResult("figures", out, "failed", time.perf_counter() - started, f"{exc.ename}: {exc.evalue}")
    except KernelDied as exc:
        return RenderResult("figures", out, "crashed", time.perf_counter() - started, str(exc))
    files = sorted(p for p in figures_dir.iterdir() if p.is_file())
    manifest = {p.name: file_sha256(p) for p in files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    provenance = build_provenance(parameters=literals | {"output_dir": "figures"}, data_folder=params.data_path(),
                                  notebook=nb, timings={"total": time.perf_counter() - started})
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    return RenderResult("figures", out, "ok", time.perf_counter() - started)


def _parse(name: str, text: str) -> Any:
    field = FigureParameters.model_fields.get(name)
    if field is None:
        return text
    if field.annotation is int:
        try:
            return int(text)
        except ValueError:
            raise ParameterError(f"figure parameters: {name}: expected a whole number, got {text!r}") from None
    if str(field.annotation).startswith("list"):
        return [t.strip() for t in text.split(",") if t.strip()]
    return text
