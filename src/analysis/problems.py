"""Problems found in a dataset, collected all at once and reported with their place.

A problem names the table, the file, the line (CSV) or row (Parquet, in-memory frames),
the column, the offending value and what was expected. Checks add problems for many rows
at once (vectorised); the report keeps the first rows of each kind and counts the rest,
so a file with a million bad rows still gives a short, complete account.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Problem", "ValidationReport", "DataValidationError", "ERROR", "WARNING"]

ERROR = "error"
WARNING = "warning"

#: rows kept per kind of problem; the rest are counted
EXAMPLES_PER_KIND = 20


@dataclass(frozen=True)
class Problem:
    """One problem at one place.

    ``line`` is the 1-based line of a CSV file (the header is line 1); ``row`` is the
    1-based data row, used for Parquet files and in-memory frames, where there are no lines.
    """

    severity: str
    table: str
    message: str
    column: str | None = None
    value: object = None
    line: int | None = None
    row: int | None = None
    file: str | None = None
    code: str = ""

    def place(self) -> str:
        where = self.file or self.table
        if self.line is not None:
            where += f" line {self.line}"
        elif self.row is not None:
            where += f" row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        return where

    def __str__(self) -> str:
        text = f"{self.severity.upper()} {self.place()}"
        if self.value is not None:
            text += f": value {_show(self.value)}"
        return f"{text}: {self.message}"


def _show(value: object) -> str:
    if isinstance(value, float) and np.isnan(value):
        return "(empty)"
    if value is pd.NA or value is None:
        return "(empty)"
    text = show_text(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def show_text(text: str) -> str:
    """``text`` quoted, with every character that cannot be seen written as an escape.

    Like :func:`repr`, and also escaping what ``repr`` prints as is although it is invisible or
    changes the character before it: combining marks (a decomposed ``é`` shows as
    ``e\\u0301``) and spaces other than the plain one (no-break space ``\\xa0``).

    Examples
    --------
    >>> from analysis.problems import show_text
    >>> print(show_text("P0001\u200b"), show_text("re\u0301al"), show_text("site A\xa0"))
    'P0001\u200b' 're\u0301al' 'site A\xa0'
    """
    import unicodedata

    out = []
    for ch in text:
        if ch == " " or (ch.isprintable() and not ch.isspace() and not unicodedata.combining(ch)):
            out.append("\\'" if ch == "'" else ch)
        else:
            code = ord(ch)
            out.append(repr(ch)[1:-1] if code < 0x80 else (f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"))
    return "'" + "".join(out) + "'"


@dataclass
class _Kind:
    """All problems of one kind (same check, table and column)."""

    severity: str
    table: str
    column: str | None
    message: str
    code: str
    examples: list[Problem] = field(default_factory=list)
    count: int = 0


@dataclass
class ValidationReport:
    """Every problem found in a dataset, grouped by kind.

    Attributes
    ----------
    source : str or None
        The folder or description of the data checked.

    Examples
    --------
    >>> from analysis.problems import ValidationReport
    >>> report = ValidationReport("demo")
    >>> report.add_table_problem("sessions", "table is empty: no data rows", file="sessions.csv")
    >>> report.ok, report.n_errors
    (False, 1)
    """

    source: str | None = None
    _kinds: dict[tuple, _Kind] = field(default_factory=dict)
    # table -> (file name, line number array or None, is_csv)
    _locators: dict[str, tuple[str | None, np.ndarray | None, bool]] = field(default_factory=dict)

    # --- recording -------------------------------------------------------------------
    def set_locator(self, table: str, file: str | None, line_numbers: np.ndarray | None, is_csv: bool) -> None:
        """Say how data rows of ``table`` map to file lines (``None``: row i is line i + 2)."""
        self._locators[table] = (file, line_numbers, is_csv)

    def _kind(self, severity: str, table: str, column: str | None, message: str, code: str) -> _Kind:
        key = (severity, table, column, message, code)
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._kinds[key] = _Kind(severity, table, column, message, code)
        return kind

    def add_rows(
        self,
        table: str,
        column: str | None,
        positions: np.ndarray | Sequence[int],
        values: Sequence[object] | np.ndarray | pd.Series | None,
        message: str,
        *,
        severity: str = ERROR,
        code: str = "",
    ) -> None:
        """Record one problem for each of ``positions`` (0-based row positions in the table)."""
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size == 0:
            return
        kind = self._kind(severity, table, column, message, code)
        kind.count += int(positions.size)
        room = EXAMPLES_PER_KIND - len(kind.examples)
        if room <= 0:
            return
        if values is None:
            vals: list[object] = [None] * min(room, positions.size)
        else:
            vals = list(pd.Series(values).iloc[:room]) if not isinstance(values, np.ndarray) else list(values[:room])
        file, line_numbers, is_csv = self._locators.get(table, (None, None, False))
        for pos, val in zip(positions[:room], vals):
            line = row = None
            if is_csv:
                line = int(line_numbers[pos]) if line_numbers is not None else int(pos) + 2
            else:
                row = int(pos) + 1
            kind.examples.append(
                Problem(severity, table, message, column=column, value=val, line=line, row=row, file=file, code=code)
            )

    def add_lines(
        self,
        table: str,
        lines: np.ndarray | Sequence[int],
        message: str,
        *,
        values: Sequence[object] | None = None,
        file: str | None = None,
        severity: str = ERROR,
        code: str = "",
    ) -> None:
        """Record one problem for each of ``lines`` (1-based lines of a file), before its rows
        are known (parse problems): the first :data:`EXAMPLES_PER_KIND` are kept, the rest counted."""
        lines = np.asarray(lines, dtype=np.int64)
        if lines.size == 0:
            return
        kind = self._kind(severity, table, None, message, code)
        kind.count += int(lines.size)
        room = max(EXAMPLES_PER_KIND - len(kind.examples), 0)
        vals = list(values[:room]) if values is not None else [None] * min(room, lines.size)
        for line, val in zip(lines[:room].tolist(), vals):
            kind.examples.append(Problem(severity, table, message, value=val, line=int(line), file=file, code=code))

    def add_table_problem(
        self,
        table: str,
        message: str,
        *,
        column: str | None = None,
        value: object = None,
        line: int | None = None,
        file: str | None = None,
        severity: str = ERROR,
        code: str = "",
    ) -> None:
        """Record a problem about a whole table, file or column rather than rows."""
        kind = self._kind(severity, table, column, message, code)
        kind.count += 1
        if len(kind.examples) < EXAMPLES_PER_KIND:
            if file is None:
                file = self._locators.get(table, (None, None, False))[0]
            kind.examples.append(
                Problem(severity, table, message, column=column, value=value, line=line, file=file, code=code)
            )

    def extend(self, other: ValidationReport) -> None:
        """Add every problem of another report to this one."""
        for key, kind in other._kinds.items():
            mine = self._kinds.setdefault(key, _Kind(kind.severity, kind.table, kind.column, kind.message, kind.code))
            mine.count += kind.count
            room = EXAMPLES_PER_KIND - len(mine.examples)
            mine.examples.extend(kind.examples[: max(room, 0)])

    # --- reading ---------------------------------------------------------------------
    @property
    def n_errors(self) -> int:
        return sum(k.count for k in self._kinds.values() if k.severity == ERROR)

    @property
    def n_warnings(self) -> int:
        return sum(k.count for k in self._kinds.values() if k.severity == WARNING)

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings allowed)."""
        return self.n_errors == 0

    def problems(self, severity: str | None = None) -> list[Problem]:
        """The problems kept as examples (all of them unless a kind had more than
        :data:`EXAMPLES_PER_KIND`), errors first."""
        kinds = sorted(self._kinds.values(), key=lambda k: (k.severity != ERROR,))
        return [p for k in kinds if severity in (None, k.severity) for p in k.examples]

    def to_frame(self) -> pd.DataFrame:
        """One row per kind of problem: severity, table, column, message, count, example place."""
        rows = [
            {
                "severity": k.severity, "table": k.table, "column": k.column, "code": k.code,
                "message": k.message, "count": k.count,
                "first": k.examples[0].place() if k.examples else None,
            }
            for k in self._kinds.values()
        ]
        return pd.DataFrame(rows, columns=["severity", "table", "column", "code", "message", "count", "first"])

    def format(self, limit: int = 100) -> str:
        """The problems as text, at most ``limit`` lines of them, then the count of the rest."""
        shown: list[str] = []
        hidden = 0
        kinds = sorted(self._kinds.values(), key=lambda k: (k.severity != ERROR,))
        for kind in kinds:
            for p in kind.examples:
                if len(shown) < limit:
                    shown.append(str(p))
                else:
                    hidden += 1
            extra = kind.count - len(kind.examples)
            if extra > 0:
                if len(shown) < limit:
                    shown.append(f"  ... and {extra} more like this ({kind.table}, column '{kind.column}': {kind.message})")
                else:
                    hidden += extra
        head = f"{self.source or 'dataset'}: {self.n_errors} error(s), {self.n_warnings} warning(s)"
        if hidden:
            shown.append(f"... and {hidden} more problem(s) not shown")
        return "\n".join([head, *shown])

    def __str__(self) -> str:
        return self.format()


class DataValidationError(ValueError):
    """Raised when data fail validation; ``.report`` holds every problem found."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(report.format(limit=30))
