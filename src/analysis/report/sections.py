"""A report section: generated prose, tables and figures, shown in a notebook and saved to disk.

A section is shown as HTML built here, with every value escaped (data values, parameters,
labels: a site named ``<script>`` shows as text), so neither pandas' Styler (which does not
escape) nor a Markdown renderer (which passes HTML through) ever sees report content. Each
figure is drawn once: its PNG bytes are both saved and embedded.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["Section", "text_to_html", "table_to_html", "anchor_of"]


def anchor_of(title: str) -> str:
    """The id of a section's heading (letters, digits and hyphens)."""
    return "sec-" + (re.sub(r"[^a-z0-9]+", "-", str(title).lower()).strip("-") or "section")


def _inline(text: str) -> str:
    """Escaped text with ``**bold**`` and ```code``` marks turned into HTML."""
    out = html.escape(str(text), quote=True)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def text_to_html(text: str) -> str:
    """Generated prose as HTML: paragraphs split by blank lines, ``- `` lines as a list,
    ``**bold**`` and ```code```; everything else escaped.

    Examples
    --------
    >>> from analysis.report.sections import text_to_html
    >>> text_to_html("Site **<b>x</b>** has 12 patients.\\n\\n- one\\n- two")
    '<p>Site <strong>&lt;b&gt;x&lt;/b&gt;</strong> has 12 patients.</p>\\n<ul><li>one</li><li>two</li></ul>'
    """
    blocks = []
    for block in re.split(r"\n\s*\n", str(text).strip()):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if not lines:
            continue
        if all(ln.lstrip().startswith("- ") for ln in lines):
            blocks.append("<ul>" + "".join(f"<li>{_inline(ln.lstrip()[2:])}</li>" for ln in lines) + "</ul>")
        else:
            blocks.append(f"<p>{_inline(' '.join(ln.strip() for ln in lines))}</p>")
    return "\n".join(blocks)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return html.escape(str(value), quote=True)


def table_to_html(table: pd.DataFrame, caption: str = "", notes: list[str] | tuple = ()) -> str:
    """A table as escaped HTML, with its caption and footnotes (no index, no ``nan``).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.report.sections import table_to_html
    >>> print(table_to_html(pd.DataFrame({"site": ["<i>A</i>"], "patients": ["40"]}), "Patients by site"))
    <table class="ko-table"><caption>Patients by site</caption><thead><tr><th>site</th><th>patients</th></tr></thead><tbody><tr><td>&lt;i&gt;A&lt;/i&gt;</td><td>40</td></tr></tbody></table>
    """
    head = "".join(f"<th>{_cell(c)}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
                   for row in table.itertuples(index=False, name=None))
    cap = f"<caption>{_inline(caption)}</caption>" if caption else ""
    out = f'<table class="ko-table">{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    if notes:
        out += '<div class="ko-notes">' + "".join(f"<p><small>{_inline(n)}</small></p>" for n in notes) + "</div>"
    return out


@dataclass
class Section:
    """What one report section shows.

    ``text`` is generated prose (paragraphs, ``- `` lists, ``**bold**``, ```code```);
    ``tables`` and ``figures`` are keyed by the file name they are saved under
    (``tables/<key>.csv``, ``figures/<key>.png|svg``), with optional ``captions`` and ``notes``
    (footnotes) by key (``figure:<key>`` for a figure sharing its key with a table). Tables hold what is shown (counts already suppressed).
    ``values`` keeps the unsuppressed numbers behind the text for tests; ``result`` is the
    section's result object (for example :class:`analysis.report.analyses.ResponderModels`),
    handed on to the sections that need it (``CohortReport.limitations``). Neither is ever
    displayed.

    Examples
    --------
    >>> from analysis.report import Section
    >>> Section("Limitations", "- none").save(None)
    []
    >>> Section("Limitations", "- none").to_html()
    '<section id="sec-limitations"><h2>Limitations</h2>\\n<ul><li>none</li></ul>\\n</section>'
    """

    title: str
    text: str = ""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, object] = field(default_factory=dict)
    values: dict[str, object] = field(default_factory=dict, repr=False)
    result: object = field(default=None, repr=False)
    captions: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    #: heading level (1 for the report's title)
    level: int = 2
    #: tables written to CSV only (for example estimates with every decimal), not shown
    csv_only: tuple[str, ...] = ()
    _png: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def anchor(self) -> str:
        return anchor_of(self.title)

    def png(self, key: str, dpi: int = 150) -> bytes:
        """The figure's PNG bytes, drawn once (saved and embedded alike)."""
        if key not in self._png:
            from io import BytesIO

            buffer = BytesIO()
            # zlib level 1 (lossless like any): a tenth of a second less a report, 13 % larger files
            self.figures[key].savefig(buffer, format="png", dpi=dpi, metadata={"Software": None},
                                      pil_kwargs={"compress_level": 1})
            self._png[key] = buffer.getvalue()
        return self._png[key]

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
            path = out / "figures" / f"{key}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            if "png" in formats:
                path.write_bytes(self.png(key))
                written.append(path)
            others = tuple(f for f in formats if f != "png")
            if others:
                written += save_figure(fig, out / "figures" / key, formats=others, dpi=150)
        return written

    def to_html(self) -> str:
        """The section as escaped HTML: heading, prose, tables with captions and notes, figures."""
        parts = [f'<section id="{self.anchor}"><h{self.level}>{_inline(self.title)}</h{self.level}>']
        if self.text:
            parts.append(text_to_html(self.text))
        for key, table in self.tables.items():
            if key not in self.csv_only:
                parts.append(table_to_html(table, self.captions.get(key, ""), self.notes.get(key, ())))
        for key in self.figures:
            data = base64.b64encode(self.png(key)).decode("ascii")
            caption = self.captions.get(f"figure:{key}", self.captions.get(key, ""))
            cap = f"<figcaption>{_inline(caption)}</figcaption>" if caption else ""
            notes = "".join(f"<p><small>{_inline(n)}</small></p>" for n in self.notes.get(f"figure:{key}", ()))
            parts.append(f'<figure><img alt="{html.escape(caption or key, quote=True)}" '
                         f'src="data:image/png;base64,{data}">{cap}{notes}</figure>')
        parts.append("</section>")
        return "\n".join(parts)

    def to_text(self) -> str:
        """The section as plain text (the notebook's text view): title, prose and tables."""
        parts = [self.title, "", str(self.text)]
        for key, table in self.tables.items():
            if key not in self.csv_only:
                parts += ["", self.captions.get(key, key), table.to_string(index=False)]
        return "\n".join(parts)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self.to_html(), "text/plain": self.to_text()}
