r"""Finding and reading the table files of a dataset folder (CSV in UTF-8, or Parquet).

CSV files are read with every column as text, so that no value is silently reinterpreted
(an identifier ``007`` stays ``"007"``, a calendar date is not turned into a timestamp);
:mod:`analysis.validation` then converts columns to their format-v1 types and reports each
value that does not convert, with its file line. Parquet files keep their own types.

Line numbers are the file's physical lines (what an editor shows): a record that starts on
line N is reported as line N, also after quoted values holding line breaks, blank lines and
any mix of ``\n``, ``\r\n`` and ``\r`` line ends. Before pyarrow parses a CSV file, one
vectorised pass finds where its records start (:func:`scan_records`), with the quoting rules
pyarrow and Python's :mod:`csv` share: a quote opens a quoted value only at the start of a
field, ``""`` inside one is a quote, and line breaks inside one belong to the value. That
pass also finds a quote that is never closed (a stray quote would otherwise swallow the rest
of the file into one value) and every record with the wrong number of fields, each at its
line. Only regular files are read: a folder, named pipe, socket or device named like a table
is refused with a message saying what it is, so no read can block.
"""

from __future__ import annotations

import csv
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .problems import ValidationReport
from .schema import TABLES

__all__ = ["RawTable", "RecordLayout", "find_table_files", "read_table_file", "scan_records", "special_file_kind",
           "NULL_TOKENS", "TABLE_SUFFIXES"]

#: text read as a missing value in CSV files
NULL_TOKENS = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")
#: file endings recognised for a table, CSV first
TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
#: files that may sit beside the tables without being read as one
_COMPANION_FILES = {"readme.md", "readme.txt", "readme", "ground_truth.json", "instruments.toml", "license", "license.txt",
                    "import_log.json", "import_log.md"}  # the log an import writes beside the tables


@dataclass
class RawTable:
    """A table as read from disk, before type conversion.

    ``line_numbers`` maps data row position to the physical file line where its record
    starts, when that is not simply position + 2 (blank lines, quoted line breaks); ``None``
    otherwise and for Parquet.
    """

    name: str
    frame: pd.DataFrame
    file: str
    is_csv: bool
    line_numbers: np.ndarray | None = None


def find_table_files(folder: Path, report: ValidationReport) -> dict[str, Path]:
    """Map table names to their files in ``folder``, reporting missing, doubled and unknown files.

    An entry named like a table is taken as that table whatever it is (a folder or named pipe
    called ``sessions.csv`` is then refused by :func:`read_table_file` as what it is, not
    reported as a missing table); other sub-folders are ignored.
    """
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        lower = path.name.lower()
        stem = next((lower[: -len(s)] for s in TABLE_SUFFIXES if lower.endswith(s)), None)
        if stem in TABLES:
            found.setdefault(stem, []).append(path)
        elif path.is_dir():
            continue
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


def special_file_kind(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file ("a folder", "a named pipe (FIFO)", ...);
    ``None`` for a regular file (links are followed). Reading a named pipe or a device could
    block for ever, so only regular files are read."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # the read reports why it cannot be opened
    return None if stat.S_ISREG(mode) else _kind_of_mode(mode)


def _kind_of_mode(mode: int) -> str:
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return "a special file"


def _special_file_problem(name: str, path: Path, what: str, report: ValidationReport) -> None:
    hint = "; write the table as one Parquet file" if what == "a folder" and path.suffix.lower() in (".parquet", ".pq") else ""
    report.add_table_problem(
        name, f"{path.name} is {what}, not a file: a table must be a regular CSV or Parquet file{hint}",
        file=path.name, code="special_file",
    )


class _NotRegular(OSError):
    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def _read_regular_file(path: Path) -> bytes:
    """The bytes of a regular file; ``_NotRegular`` for anything else, without blocking
    (a named pipe is opened non-blocking and refused before any read)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _NotRegular(_kind_of_mode(mode))
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)


def read_table_file(name: str, path: Path, report: ValidationReport) -> RawTable | None:
    """Read one table file; on failure record why (with the line where possible) and return None."""
    what = special_file_kind(path)
    if what is not None:
        _special_file_problem(name, path, what, report)
        return None
    lower = path.name.lower()
    if lower.endswith((".parquet", ".pq")):
        return _read_parquet(name, path, report)
    return _read_csv(name, path, report)


def _read_parquet(name: str, path: Path, report: ValidationReport) -> RawTable | None:
    try:
        table = pq.read_table(pa.BufferReader(_read_regular_file(path)))
    except _NotRegular as exc:
        _special_file_problem(name, path, exc.what, report)
        return None
    except (OSError, pa.ArrowException) as exc:
        report.add_table_problem(name, f"cannot read Parquet file: {exc}", file=path.name, code="unreadable")
        return None
    # one block per column, each Arrow column released as it is converted: the table and the
    # frame are not both held whole (text columns stay Arrow-backed, without a copy)
    frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype()}.get,
                            split_blocks=True, self_destruct=True)
    del table
    return RawTable(name, frame, path.name, is_csv=False)


# --- where the records of a CSV file start ------------------------------------------------


@dataclass
class RecordLayout:
    r"""Where the records of a CSV text start and end, found in one vectorised pass.

    Attributes
    ----------
    starts, ends : int arrays
        Byte offset of each record's first byte and one past its last (line end excluded);
        records that are blank lines are included (``blank``).
    lines : int array
        Physical line (1-based) on which each record starts.
    last_lines : int array
        Physical line on which each record ends (more than ``lines`` when a quoted value
        holds line breaks).
    blank : bool array
        Records that are empty lines (skipped by the reader).
    line_breaks : int array
        Byte offset of every physical line end (``\n``, ``\r\n`` counted once, lone ``\r``).
    quoted_line_break : bool
        Some quoted value holds a line break.
    unclosed_quote : int or None
        Byte offset of a quote that opens a value and is never closed.
    """

    starts: np.ndarray
    ends: np.ndarray
    lines: np.ndarray
    last_lines: np.ndarray
    blank: np.ndarray
    line_breaks: np.ndarray
    quoted_line_break: bool
    unclosed_quote: int | None
    _toggles: np.ndarray

    def line_of(self, offset: int | np.ndarray) -> np.ndarray | int:
        """Physical line (1-based) of a byte offset."""
        return np.searchsorted(self.line_breaks, offset, side="left") + 1

    def outside_quotes(self, offsets: np.ndarray) -> np.ndarray:
        """Which byte offsets lie outside quoted values."""
        return (np.searchsorted(self._toggles, offsets, side="left") % 2) == 0


def _quote_toggles(buf: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """Offsets of the quotes that open or close a quoted value (``""`` inside one toggles twice,
    which leaves the state as it was, so every quote of a well-formed file toggles).

    Fast path: when every quote that parity says opens a value stands at the start of a field
    (or is the second quote of a ``""``), parity is exactly the parser's state. Otherwise
    (a quote inside an unquoted value, such as ``5'10"``) the state machine runs over the
    quotes alone.
    """
    if quotes.size == 0:
        return quotes
    opening = quotes[0::2]
    prev = buf[np.maximum(opening - 1, 0)]
    at_field_start = (opening == 0) | (prev == 44) | (prev == 10) | (prev == 13) | (prev == 34)
    if at_field_start.all():
        return quotes
    toggles = []
    quoted = skip = False
    n = len(buf)
    for q in quotes.tolist():
        if skip:
            skip = False
        elif not quoted:
            if q == 0 or buf[q - 1] in (44, 10, 13):
                quoted = True
                toggles.append(q)
        elif q + 1 < n and buf[q + 1] == 34:
            skip = True  # "" inside a quoted value
        else:
            quoted = False
            toggles.append(q)
    return np.asarray(toggles, dtype=np.int64)


def scan_records(data: bytes) -> RecordLayout:
    r"""Find the records of a CSV text (UTF-8 bytes) and the physical line each starts on.

    Examples
    --------
    >>> from analysis.reading import scan_records
    >>> layout = scan_records(b'id,note\nP1,"two\nlines"\n\nP2,ok\n')
    >>> layout.lines.tolist(), layout.blank.tolist(), layout.quoted_line_break
    ([1, 2, 4, 5], [False, False, True, False], True)
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    n = len(buf)
    newlines = np.flatnonzero(buf == 10)
    returns = np.flatnonzero(buf == 13)
    if returns.size:
        lone = returns[(returns + 1 >= n) | (buf[np.minimum(returns + 1, n - 1)] != 10)]
        line_breaks = np.union1d(newlines, lone)
    else:
        line_breaks = newlines
    toggles = _quote_toggles(buf, np.flatnonzero(buf == 34))
    if toggles.size:
        inside = (np.searchsorted(toggles, line_breaks, side="left") % 2) == 1
        terminators = line_breaks[~inside]
        quoted_line_break = bool(inside.any())
    else:
        terminators = line_breaks
        quoted_line_break = False
    unclosed = int(toggles[-1]) if toggles.size % 2 else None
    starts = np.concatenate(([0], terminators + 1))
    ends = np.concatenate((terminators, [n]))
    keep = starts < n
    starts, ends = starts[keep], ends[keep]
    # a record ending in \r\n ends before the \r
    crlf = (ends > starts) & (ends < n)
    crlf[crlf] = (buf[ends[crlf]] == 10) & (buf[ends[crlf] - 1] == 13)
    ends = ends - crlf
    if quoted_line_break:
        lines = np.searchsorted(line_breaks, starts, side="left") + 1
        last_lines = np.searchsorted(line_breaks, np.maximum(ends - 1, starts), side="left") + 1
    else:  # every line break ends a record: record k starts on line k + 1
        lines = last_lines = np.arange(1, len(starts) + 1)
    return RecordLayout(starts=starts, ends=ends, lines=lines, last_lines=last_lines, blank=ends == starts,
                        line_breaks=line_breaks, quoted_line_break=quoted_line_break, unclosed_quote=unclosed,
                        _toggles=toggles)


def _field_counts(data: bytes, layout: RecordLayout) -> np.ndarray:
    """Number of fields of each record (commas outside quoted values, plus one)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    commas = np.flatnonzero(buf == 44)
    commas = commas[layout.outside_quotes(commas)]
    record = np.searchsorted(layout.starts, commas, side="right") - 1
    return np.bincount(record, minlength=len(layout.starts)) + 1


def _read_csv(name: str, path: Path, report: ValidationReport) -> RawTable | None:
    try:
        data = _read_regular_file(path)
    except _NotRegular as exc:
        _special_file_problem(name, path, exc.what, report)
        return None
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
    layout = scan_records(data)
    if layout.unclosed_quote is not None:
        line = int(layout.line_of(layout.unclosed_quote))
        report.add_table_problem(
            name, "a quoted value opens on this line and is never closed (a stray quote?): everything after it "
            "would be read as one value; remove the quote or close it", line=line, file=path.name, code="parse",
        )
        return None
    records = np.flatnonzero(~layout.blank)
    if records.size == 0:
        report.add_table_problem(name, "file is empty: expected a header line and data rows", file=path.name, code="empty")
        return None
    first = records[0]
    head_line = int(layout.lines[first])
    if head_line != 1:
        report.add_table_problem(name, "the first line is empty: expected a header line naming the columns",
                                 line=1, file=path.name, code="header")
        return None
    head_text = data[layout.starts[first]: layout.ends[first]].decode("utf-8")
    try:
        header = next(csv.reader([head_text]))
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
    rows = records[1:]
    multi = rows[layout.last_lines[rows] > layout.lines[rows]]
    report.add_lines(
        name, layout.lines[multi],
        "a quoted value holds a line break, so this record runs over several lines (kept; if that is not "
        "intended, look for a stray quote on this line)", file=path.name, severity="warning", code="line_break_in_value",
    )
    longest = int((layout.ends - layout.starts).max())
    block = int(min(max(1 << 20, 2 * longest + 4096), (1 << 31) - 1))
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(use_threads=True, block_size=block),
            parse_options=pacsv.ParseOptions(newlines_in_values=layout.quoted_line_break),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                null_values=list(NULL_TOKENS),
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            report.add_table_problem(name, "table is empty: it has a header but no data rows", file=path.name, code="empty")
        elif not _report_ragged(name, path.name, data, layout, rows, len(header), report):
            report.add_table_problem(name, f"cannot parse CSV: {exc}", file=path.name, code="parse")
        return None
    frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
    frame.columns = [str(c).strip() for c in frame.columns]
    lines = layout.lines[rows]
    if len(lines) != len(frame):  # the scan and the parser disagree: never place problems on wrong lines
        report.add_table_problem(
            name, f"cannot tell which line each row is on ({len(frame)} rows read, {len(lines)} records found); "
            "check the file's quoting", file=path.name, code="parse")
        return None
    line_numbers = None if np.array_equal(lines, np.arange(2, len(lines) + 2)) else lines
    return RawTable(name, frame, path.name, is_csv=True, line_numbers=line_numbers)


def _report_ragged(name: str, file: str, data: bytes, layout: RecordLayout, rows: np.ndarray, n_fields: int,
                   report: ValidationReport) -> bool:
    """Report every record whose number of fields is not the header's, at its line; True if any."""
    counts = _field_counts(data, layout)[rows]
    ragged = counts != n_fields
    for got in np.unique(counts[ragged]).tolist():
        report.add_lines(
            name, layout.lines[rows[counts == got]],
            f"line has {got} field{'s' if got != 1 else ''}, expected {n_fields} as in the header "
            "(check quoting and delimiters)", file=file, code="parse",
        )
    return bool(ragged.any())


def _first_invalid_utf8_line(data: bytes) -> tuple[int, str] | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = data[: exc.start]
        line = head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1
        start = max(head.rfind(b"\n"), head.rfind(b"\r")) + 1
        end = len(data)
        for stop in (b"\n", b"\r"):
            found = data.find(stop, exc.start)
            if found >= 0:
                end = min(end, found)
        snippet = data[start:end].decode("utf-8", errors="replace")
        return line, snippet
    return None
