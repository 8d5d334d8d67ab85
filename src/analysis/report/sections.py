"""A report section: generated prose, tables and figures, shown in a notebook and saved to disk."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["Section"]


@dataclass
class Section:
    """What one report section shows.

    ``text`` is Markdown generated from the numbers; ``tables`` and ``figures`` are keyed by
    the file name they are saved under (``tables/<key>.csv``, ``figures/<key>.png|svg``).
    ``values`` keeps the unsuppressed numbers behind the text for tests and the batch index;
    ``result`` is the section's result object (for example
    :class:`analysis.report.analyses.ResponderModels`), handed on to the sections that need
    it (``CohortReport.limitations``). Neither is ever displayed.

    Examples
    --------
    >>> from analysis.report import Section
    >>> Section("Limitations", "- none").save(None)
    []
    """

    title: str
    text: str = ""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, object] = field(default_factory=dict)
    values: dict[str, object] = field(default_factory=dict, repr=False)
    result: object = field(default=None, repr=False)

    def save(self, out: str | Path | None, formats=("png", "svg")) -> list[Path]:
        """Write the tables as CSV and the figures in ``formats`` under ``out``."""
        if not out:
            return []
        from .figures import save_figure

        out = Path(out)
        written = []
        for key, table in self.tables.items():
            path = out / "tables" / f"{key}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            table.to_csv(path, index=False, lineterminator="\n")
            written.append(path)
        for key, fig in self.figures.items():
            written += save_figure(fig, out / "figures" / key, formats=formats, dpi=150)
        return written

    def _ipython_display_(self) -> None:
        from IPython.display import Markdown, display

        display(Markdown(f"## {self.title}\n\n{self.text}"))
        for table in self.tables.values():
            display(table.style.hide(axis="index") if hasattr(table, "style") else table)
        for fig in self.figures.values():
            display(figure_image(fig))


def figure_image(fig, dpi: int = 120):
    """A figure as an embedded PNG image (independent of the notebook's matplotlib backend)."""
    from io import BytesIO

    from IPython.display import Image

    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return Image(data=buffer.getvalue(), format="png")
