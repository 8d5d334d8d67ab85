"""Finding and reading SDTM domain files (.xpt, .sas7bdat, .csv, .parquet) with row references.

Each domain is read into a frame with upper-case column names, text stripped and empty text
as missing (SAS stores a missing character value as blanks), plus one row reference per
record: the file line for CSV (the header is line 1), ``row=N`` (the 1-based record number) otherwise.
Problems are recorded in a :class:`~analysis.problems.ValidationReport` under the file's name
so that every message names the file, the line or record, the column and the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..problems import ValidationReport
from ..reading import read_table_file, special_file_kind

__all__ = ["DOMAIN_SUFFIXES", "DomainTable", "find_domain_files", "read_domain", "iso_dates"]

#: file endings read, in the order tried
DOMAIN_SUFFIXES = (".xpt", ".sas7bdat", ".csv", ".parquet")


@dataclass
class DomainTable:
    """One SDTM domain as read: ``frame`` (upper-case columns), ``refs`` (row references as text)."""

    domain: str
    file: str
    frame: pd.DataFrame
    refs: np.ndarray
    is_csv: bool
    line_numbers: np.ndarray | None

    def locate(self, report: ValidationReport) -> None:
        """Tell ``report`` how this table's rows map to file lines or records."""
        report.set_locator(self.file, self.file, self.line_numbers if self.is_csv else None, self.is_csv)

    def source_refs(self, positions: np.ndarray | None = None) -> pd.Series:
        """``"<file>:<row>"`` for the rows at ``positions`` (all rows by default)."""
        refs = self.refs if positions is None else self.refs[positions]
        return pd.Series([f"{self.file}:{r}" for r in refs], dtype="string")


def find_domain_files(folder: Path, report: ValidationReport) -> dict[str, Path]:
    """Map domain names (lower case: ``dm``, ``ex``, ``suppdm`` ...) to their files in ``folder``.

    Two files for one domain (``qs.xpt`` and ``qs.csv``) are an error: which one holds the
    data is not for the reader to guess.
    """
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        lower = path.name.lower()
        suffix = next((s for s in DOMAIN_SUFFIXES if lower.endswith(s)), None)
        if suffix is None or path.name.startswith("."):
            continue
        found.setdefault(lower[: -len(suffix)], []).append(path)
    files: dict[str, Path] = {}
    for domain, paths in found.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            report.add_table_problem(domain, f"more than one file for domain {domain.upper()} ({names}); keep one",
                                     file=paths[0].name, code="sdtm_duplicate_domain")
            continue
        files[domain] = paths[0]
    return files


def _require_pyreadstat():
    try:
        import pyreadstat
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading SDTM .xpt or .sas7bdat files needs pyreadstat: "
                          "pip install 'ketamine-outcomes[sdtm]'") from exc
    return pyreadstat


def read_domain(domain: str, path: Path, report: ValidationReport) -> DomainTable | None:
    """Read one domain file; on failure record why (naming the file) and return None."""
    what = special_file_kind(path)
    if what is not None:
        report.add_table_problem(path.name, f"{path.name} is {what}, not a file: a domain must be a regular file",
                                 file=path.name, code="special_file")
        return None
    lower = path.name.lower()
    if lower.endswith((".xpt", ".sas7bdat")):
        pyreadstat = _require_pyreadstat()
        reader = pyreadstat.read_xport if lower.endswith(".xpt") else pyreadstat.read_sas7bdat
        try:
            frame, _meta = reader(str(path))
        except Exception as exc:  # pyreadstat raises its own ReadstatError and others; all mean "unreadable"
            report.add_table_problem(path.name, f"cannot read {path.suffix} file: {exc}", file=path.name,
                                     code="unreadable")
            return None
        table = DomainTable(domain, path.name, _tidy(frame), _record_refs(len(frame)), is_csv=False,
                            line_numbers=None)
    else:
        scratch = ValidationReport(path.name)
        raw = read_table_file(path.name, path, scratch)
        if raw is None:
            report.extend(scratch)
            return None
        frame = raw.frame
        if raw.is_csv:
            lines = raw.line_numbers if raw.line_numbers is not None else np.arange(len(frame)) + 2
            refs = np.asarray(lines)
        else:
            lines = None
            refs = _record_refs(len(frame))
        table = DomainTable(domain, path.name, _tidy(frame), np.asarray(refs).astype(str), is_csv=raw.is_csv,
                            line_numbers=lines)
    table.locate(report)
    return table


def _record_refs(n: int) -> np.ndarray:
    """``row=1`` ... for files without lines (a bare number would read as a CSV line)."""
    return np.array([f"row={i}" for i in range(1, n + 1)], dtype=object)


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Upper-case column names; text stripped, blank text missing."""
    out = frame.copy()
    out.columns = [str(c).strip().upper() for c in out.columns]
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]):
            text = out[col].astype("string").str.strip()
            out[col] = text.mask(text == "")
    return out.reset_index(drop=True)


def numbers(table: DomainTable, column: str, report: ValidationReport, expected: str) -> pd.Series:
    """Column as float; a value that is not a number is an error naming its row (missing stays NaN)."""
    if column not in table.frame:
        return pd.Series(np.nan, index=table.frame.index, dtype=float)
    values = table.frame[column]
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    parsed = pd.to_numeric(values, errors="coerce").astype(float)
    bad = np.flatnonzero(parsed.isna().to_numpy() & values.notna().to_numpy())
    report.add_rows(table.file, column, bad, values.iloc[bad], f"expected {expected}", code="sdtm_not_a_number")
    return parsed


def iso_dates(table: DomainTable, column: str, report: ValidationReport) -> pd.Series:
    """An ISO 8601 ``--DTC`` column as dates (datetime64, time of day dropped: SDTM study days
    count calendar days); missing stays NaT, a partial or malformed date is an error."""
    if column not in table.frame:
        return pd.Series(pd.NaT, index=table.frame.index, dtype="datetime64[ns]")
    text = table.frame[column].astype("string")
    day_part = text.str.slice(0, 10)
    parsed = pd.to_datetime(day_part.where(day_part.str.fullmatch(r"\d{4}-\d{2}-\d{2}")), format="%Y-%m-%d",
                            errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy() & text.notna().to_numpy())
    report.add_rows(table.file, column, bad, text.iloc[bad],
                    "expected a complete ISO 8601 date (yyyy-mm-dd, optionally with a time); a partial date "
                    "cannot be placed on a study day", code="sdtm_bad_date")
    return parsed.astype("datetime64[ns]")


def study_days(table: DomainTable, dy_column: str, dtc_column: str, reference: pd.Series,
               report: ValidationReport) -> pd.Series:
    """Study days in format v1's convention from an SDTM ``--DY`` (preferred) or ``--DTC``.

    SDTM counts the reference start (``RFSTDTC``) as day 1 and the day before as day -1;
    there is no day 0. Format v1 counts a difference of dates: the reference day is 0 and the
    day before is -1. So ``--DY`` >= 1 becomes ``--DY - 1`` and ``--DY`` <= -1 stays; a
    ``--DY`` of 0 is an error. Without ``--DY`` the date minus ``reference`` (the subject's
    ``RFSTDTC`` date, per row) is the day directly.
    """
    dy = numbers(table, dy_column, report, "a study day (a whole number, never 0)")
    zero = np.flatnonzero(dy.to_numpy() == 0)
    report.add_rows(table.file, dy_column, zero, dy.iloc[zero],
                    "SDTM study days have no day 0 (day 1 is the reference start, day -1 the day before)",
                    code="sdtm_day_zero")
    day = dy.where(dy < 0, dy - 1).mask(dy == 0)
    if dtc_column in table.frame:
        dates = iso_dates(table, dtc_column, report)
        from_dates = (dates - reference.to_numpy()).dt.days.astype(float)
        day = day.fillna(from_dates)
        needs_reference = np.flatnonzero(dy.isna().to_numpy() & dates.notna().to_numpy() & reference.isna().to_numpy())
        report.add_rows(table.file, dtc_column, needs_reference, table.frame[dtc_column].iloc[needs_reference],
                        f"{dy_column} is missing and the subject has no RFSTDTC in dm to count the date from; "
                        f"add {dy_column} or RFSTDTC", code="sdtm_no_reference")
    return day
