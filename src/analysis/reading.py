"""Finding and reading the table files of a dataset folder (CSV in UTF-8, or Parquet).

CSV files are read with every column as text, so that no value is silently reinterpreted
(an identifier ``007`` stays ``"007"``, a calendar date is not turned into a timestamp);
:mod:`analysis.validation` then converts columns to their format-v1 types and reports each
value that does not convert, with its file line. Parquet files keep their own types.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .problems import ValidationReport
from .schema import TABLES

__all__ = ["RawTable", "find_table_files", "read_table_file", "NULL_TOKENS", "TABLE_SUFFIXES"]

#: text read as a missing value in CSV files
NULL_TOKENS = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")
#: file endings recognised for a table, CSV first
TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
#: files that may sit beside the tables without being read as one
_COMPANION_FILES = {"readme.md", "readme.txt", "readme", "ground_truth.json", "instruments.toml", "license", "license.txt"}


@dataclass
class RawTable:
    """A table as read from disk, before type conversion.

    ``line_numbers`` maps data row position to the file line where it starts, when that is
    not simply position + 2 (blank lines present); ``None`` otherwise and for Parquet.
    """

    name: str
    frame: pd.DataFrame
    file: str
    is_csv: bool
    line_numbers: np.ndarray | None = None


def find_table_files(folder: Path, report: ValidationReport) -> dict[str, Path]:
    """Map table names to their files in ``folder``, reporting missing, doubled and unknown files."""
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.is_dir() or path.name.startswith("."):
            continue
        lower = path.name.lower()
        stem = next((lower[: -len(s)] for s in TABLE_SUFFIXES if lower.endswith(s)), None)
        if stem in TABLES:
            found.setdefault(stem, []).append(path)
        elif lower not in _COMPANION_FILES:
            report.add_table_problem(
                "(dataset)", f"file is not a table of data format v1 and was not read; tables are "
                f"{', '.join(TABLES)} as .csv or .parquet", file=path.name, severity="warning", code="unknown_file",
            )
    out: dict[str, Path] = {}
    for name, spec in TABLES.items():
        paths = found.get(name, [])
        if len(paths) > 1:
            report.add_table_problem(
                name, f"more than one file for this table ({', '.join(p.name for p in paths)}); keep one",
                file=paths[0].name, code="ambiguous_table",
            )
        elif paths:
            out[name] = paths[0]
        elif spec.required:
            report.add_table_problem(
                name, f"required table is missing: expected {name}.csv or {name}.parquet in {folder}",
                file=f"{name}.csv", code="missing_table",
            )
    return out


def read_table_file(name: str, path: Path, report: ValidationReport) -> RawTable | None:
    """Read one table file; on failure record why (with the line where possible) and return None."""
    lower = path.name.lower()
    if lower.endswith((".parquet", ".pq")):
        return _read_parquet(name, path, report)
    return _read_csv(name, path, report)


def _read_parquet(name: str, path: Path, report: ValidationReport) -> RawTable | None:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        report.add_table_problem(name, f"cannot read Parquet file: {exc}", file=path.name, code="unreadable")
        return None
    frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype()}.get)
    return RawTable(name, frame, path.name, is_csv=False)


def _read_csv(name: str, path: Path, report: ValidationReport) -> RawTable | None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        report.add_table_problem(name, f"cannot read file: {exc.strerror or exc}", file=path.name, code="unreadable")
        return None
    if path.name.lower().endswith(".gz"):
        import gzip

        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            report.add_table_problem(name, f"cannot decompress gzip file: {exc}", file=path.name, code="unreadable")
            return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    bad_line = _first_invalid_utf8_line(data)
    if bad_line is not None:
        line, text = bad_line
        report.add_table_problem(
            name, "text is not valid UTF-8; save the file as UTF-8 (e.g. in Excel: CSV UTF-8)",
            line=line, value=text, file=path.name, code="encoding",
        )
        return None
    if not data.strip():
        report.add_table_problem(name, "file is empty: expected a header line and data rows", file=path.name, code="empty")
        return None
    head_lines = data[:1 << 16].decode("utf-8", errors="replace").splitlines()
    try:
        header = next(csv.reader([head_lines[0] if head_lines else ""]))
    except (csv.Error, StopIteration) as exc:
        report.add_table_problem(name, f"cannot read the header line: {exc}", line=1, file=path.name, code="header")
        return None
    if not [h for h in header if h.strip()]:
        report.add_table_problem(name, "the first line is empty: expected a header line naming the columns",
                                 line=1, file=path.name, code="header")
        return None
    blank_names = [i + 1 for i, h in enumerate(header) if not h.strip()]
    if blank_names:
        report.add_table_problem(
            name, f"header has an empty column name at position(s) {blank_names}", line=1, file=path.name, code="header",
        )
        return None
    doubled = sorted({h for h in header if header.count(h) > 1})
    if doubled:
        report.add_table_problem(
            name, f"header repeats column name(s) {doubled}", line=1, file=path.name, code="header",
        )
        return None
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(use_threads=True),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                null_values=list(NULL_TOKENS),
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            report.add_table_problem(name, "table is empty: it has a header but no data rows", file=path.name, code="empty")
            return None
        line, expected, got = _first_ragged_line(data, len(header))
        if line is not None and got < 0:
            report.add_table_problem(
                name, "line cannot be parsed as CSV (a stray quote or line break inside a field?)",
                line=line, file=path.name, code="parse",
            )
        elif line is not None:
            report.add_table_problem(
                name, f"line has {got} fields, expected {expected} as in the header (check quoting and delimiters)",
                line=line, file=path.name, code="parse",
            )
        else:
            report.add_table_problem(name, f"cannot parse CSV: {exc}", file=path.name, code="parse")
        return None
    frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
    frame.columns = [str(c).strip() for c in frame.columns]
    return RawTable(name, frame, path.name, is_csv=True, line_numbers=_line_numbers(data, len(frame)))


def _first_invalid_utf8_line(data: bytes) -> tuple[int, str] | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        snippet = data[start : end if end >= 0 else len(data)].decode("utf-8", errors="replace")
        return line, snippet
    return None


def _line_numbers(data: bytes, n_rows: int) -> np.ndarray | None:
    """File line of each data row when blank lines shift them; None when row i is line i + 2."""
    if b"\n\n" not in data and b"\n\r\n" not in data:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    starts = np.concatenate(([0], np.flatnonzero(buf == ord("\n")) + 1))
    starts = starts[starts < len(buf)]
    first = buf[starts]
    non_blank = np.flatnonzero((first != ord("\n")) & (first != ord("\r"))) + 1  # 1-based line numbers
    lines = non_blank[1:]  # drop the header line
    return lines[:n_rows] if len(lines) >= n_rows else None


def _first_ragged_line(data: bytes, n_fields: int) -> tuple[int | None, int, int]:
    """Find the first line whose field count differs from the header's, with Python's csv module."""
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    try:
        for row in reader:
            if row and len(row) != n_fields:
                return reader.line_num, n_fields, len(row)
    except csv.Error:
        return reader.line_num + 1, n_fields, -1
    return None, n_fields, 0
