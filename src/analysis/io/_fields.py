"""From source rows to extract tables, as a mapping file says: shared by the mapped and REDCap readers.

A *source frame* is a table as read (text values), with a ``__ref__`` column holding each
row's reference (``visits.csv:12``). :func:`build_extract` picks the rows of each format-v1
table (the readers choose which frames a table's rows come from), copies the mapped columns
under their format-v1 names with a ``source_col_<name>`` column naming the source column for
messages, reshapes wide assessments (one column per instrument's total) and item columns to
one row per assessment, parses dates, and accounts for every row that no table uses.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..anonymisation.names import identifier_key
from ..problems import ERROR, ValidationReport
from ._convert import SOURCE_COLUMN_PREFIX
from ._extract import RowAccount
from .dates import ISO_DATE, parse_dates
from .mapping import Mapping, TableMap

__all__ = ["REF", "build_tables", "identifying_columns", "source_problem"]

REF = "__ref__"
_TABLE_NAMES = ("patients", "sessions", "assessments", "medications")


def source_problem(report: ValidationReport, table: str, frame: pd.DataFrame, rows: np.ndarray, column: str,
                   message: str, *, severity: str = ERROR, code: str = "source") -> None:
    """A problem at source rows (file line or key), naming the source column and value."""
    from ._convert import _place

    rows = np.asarray(rows, dtype=np.int64)
    for pos in rows:
        file, line = _place(frame[REF].iloc[pos])
        value = frame[column].iloc[pos] if column in frame.columns else None
        report.add_table_problem(table, message, column=column, value=None if pd.isna(value) else value, line=line,
                                 file=file, severity=severity, code=code)


def identifying_columns(columns: list[str]) -> list[str]:
    """Source columns whose names say they hold a direct identifier (names, contacts, dates, record numbers)."""
    return [c for c in columns if identifier_key(str(c)) is not None]


def _column(frame: pd.DataFrame, col: str | None, what: str, mapping: Mapping, table: str) -> pd.Series | None:
    if col is None:
        return None
    if col not in frame.columns:
        from .mapping import MappingError

        raise MappingError(f"{mapping.path}: key '{table}.{what}': value {col!r}: no such column in the source "
                           f"(columns: {', '.join(c for c in frame.columns if c != REF)})")
    return frame[col]


def _dates(frame: pd.DataFrame, col: str, mapping: Mapping, table: str, report: ValidationReport) -> pd.Series:
    parsed, bad = parse_dates(frame[col], date_format=mapping.source.date_format)
    expected = f"a date as {mapping.source.date_format!r}" if mapping.source.date_format else ISO_DATE
    source_problem(report, table, frame, bad, col, f"not a date; expected {expected} ([source].date_format "
                   "in the mapping file sets another format)", code="date")
    return parsed


def _select(tm: TableMap, frame: pd.DataFrame, table: str, mapping: Mapping) -> tuple[np.ndarray, list[tuple[np.ndarray, str]]]:
    """Rows of ``frame`` that belong to ``table`` by its ``when`` and ``require``, and why the others do not."""
    keep = np.ones(len(frame), dtype=bool)
    reasons = []
    for col in [*tm.when, *tm.require]:
        _column(frame, col, "when" if col in tm.when else "require", mapping, table)
    for col, allowed in tm.when.items():
        ok = frame[col].astype("string").str.strip().isin(allowed).to_numpy(dtype=bool, na_value=False)
        reasons.append((keep & ~ok, f"not a {table} row: '{col}' is not one of {allowed}"))
        keep &= ok
    for col in tm.require:
        ok = frame[col].notna().to_numpy() & (frame[col].astype("string").str.strip() != "").to_numpy(dtype=bool, na_value=False)
        reasons.append((keep & ~ok, f"not a {table} row: '{col}' is empty"))
        keep &= ok
    return keep, reasons


def _base(tm: TableMap, frame: pd.DataFrame, keep: np.ndarray, mapping: Mapping, table: str) -> pd.DataFrame:
    key_col = mapping.key_of(tm)
    key = _column(frame, key_col, "key", mapping, table)
    out = pd.DataFrame({"source_key": key.astype("string").to_numpy()[keep], "source_ref": frame[REF].to_numpy()[keep]})
    return out


def _copy(out: pd.DataFrame, frame: pd.DataFrame, keep: np.ndarray, pairs: dict[str, str | None], mapping: Mapping,
          table: str) -> None:
    for target, col in pairs.items():
        series = _column(frame, col, target, mapping, table)
        if series is None:
            continue
        values = series.to_numpy()[keep]
        if target in mapping.values:
            values = pd.Series(values, dtype="string").replace(mapping.values[target]).to_numpy()
        out[target] = values
        out[SOURCE_COLUMN_PREFIX + target] = col


def _times(out: pd.DataFrame, frame: pd.DataFrame, keep: np.ndarray, pairs: dict[str, str | None], mapping: Mapping,
           table: str, report: ValidationReport) -> None:
    """Date fields parsed (``*date``), day fields copied as given."""
    for target, col in pairs.items():
        if col is None:
            continue
        _column(frame, col, target, mapping, table)
        if target.endswith("date"):
            out[target] = _dates(frame, col, mapping, table, report).to_numpy()[keep]
        else:
            out[target] = frame[col].to_numpy()[keep]
        out[SOURCE_COLUMN_PREFIX + target.replace("date", "day")] = col


def _sessions(tm, frame, keep, mapping, report) -> pd.DataFrame:
    out = _base(tm, frame, keep, mapping, "sessions")
    _times(out, frame, keep, {"date": tm.date, "day": tm.day}, mapping, "sessions", report)
    _copy(out, frame, keep, {"drug": tm.drug, "route": tm.route, "dose": tm.dose, "dose_unit": tm.dose_unit,
                             **tm.keep}, mapping, "sessions")
    for target, value in (("drug", tm.drug_value), ("route", tm.route_value), ("dose_unit", tm.dose_unit_value)):
        if value is not None and target not in out.columns:
            out[target] = value
    return out


def _patients(tm, frame, keep, mapping, report) -> pd.DataFrame:
    out = _base(tm, frame, keep, mapping, "patients")
    _copy(out, frame, keep, {"site": tm.site, "age": tm.age, "sex": tm.sex, "diagnosis": tm.diagnosis, **tm.keep},
          mapping, "patients")
    if tm.site_value is not None and "site" not in out.columns:
        out["site"] = tm.site_value
    if tm.birth_year is not None:
        out["birth_year"] = pd.to_numeric(_column(frame, tm.birth_year, "birth_year", mapping, "patients"),
                                          errors="coerce").to_numpy()[keep]
    _times(out, frame, keep, {"index_date": tm.index_date}, mapping, "patients", report)
    return out


def _medications(tm, frame, keep, mapping, report) -> pd.DataFrame:
    out = _base(tm, frame, keep, mapping, "medications")
    _times(out, frame, keep, {"start_date": tm.start_date or tm.date, "end_date": tm.end_date,
                              "start_day": tm.start_day or tm.day, "end_day": tm.end_day}, mapping, "medications", report)
    _copy(out, frame, keep, {"drug": tm.drug, **tm.keep}, mapping, "medications")
    if tm.drug_value is not None and "drug" not in out.columns:
        out["drug"] = tm.drug_value
    if tm.end_date is None and tm.end_day is None and tm.start_date is None and tm.start_day is None:
        out["end_day" if tm.day else "end_date"] = out["start_day" if tm.day else "start_date"]  # a single-day record
    return out


def _assessments(tm, frame, keep, mapping, report) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per assessment (long: as given; wide: per instrument with a total or items); rows used."""
    parts = []
    used = np.zeros(len(frame), dtype=bool)
    base = _base(tm, frame, keep, mapping, "assessments")
    _times(base, frame, keep, {"date": tm.date, "day": tm.day}, mapping, "assessments", report)
    _copy(base, frame, keep, dict(tm.keep), mapping, "assessments")
    if tm.score is not None:
        part = base.copy()
        _copy(part, frame, keep, {"instrument": tm.instrument, "score": tm.score}, mapping, "assessments")
        if tm.instrument is None:
            part["instrument"] = tm.instrument_value
        present = part["score"].notna().to_numpy()
        parts.append(part[present])
        used[np.flatnonzero(keep)[present]] = True
    for instrument in dict.fromkeys([*tm.wide, *tm.items]):
        part = base.copy()
        part["instrument"] = instrument
        present = np.zeros(len(part), dtype=bool)
        if instrument in tm.wide:
            _copy(part, frame, keep, {"score": tm.wide[instrument]}, mapping, "assessments")
            present |= part["score"].notna().to_numpy()
        else:
            part["score"] = np.nan
        for i, col in enumerate(tm.items.get(instrument, []), start=1):
            _copy(part, frame, keep, {f"item_{i}": col}, mapping, "assessments")
            present |= part[f"item_{i}"].notna().to_numpy()
        parts.append(part[present])
        used[np.flatnonzero(keep)[present]] = True
    if not parts:
        return base.iloc[0:0], used
    return pd.concat(parts, ignore_index=True), used


_BUILDERS: dict[str, Callable] = {"patients": _patients, "sessions": _sessions, "medications": _medications}


def build_tables(sources: dict[tuple[str, int], list[tuple[str, pd.DataFrame]]], mapping: Mapping,
                 report: ValidationReport,
                 preselect: dict[tuple[str, int], tuple[np.ndarray, list[tuple[np.ndarray, str]]]] | None = None,
                 ) -> tuple[dict[str, pd.DataFrame], list[RowAccount]]:
    """Extract tables from the source frames each format-v1 table reads.

    ``sources`` maps (table name, section number in :meth:`Mapping.sections`) to its (source
    table name, frame) pairs; ``preselect`` may give, per section, the rows a reader already
    chose and why the others are not that section's (REDCap's forms and events), before
    ``when`` and ``require`` apply. Returns the four tables (patients made from the keys seen
    when the mapping has none) and the accounts of the rows no table uses, each with the
    reasons the sections gave (rows are told apart by their reference, so a reader may pass
    a reshaped frame of the same source).
    """
    tables: dict[str, list[pd.DataFrame]] = {name: [] for name in _TABLE_NAMES}
    # per source table: every row reference seen, in order, with the reasons it was not used
    seen: dict[str, dict[str, list[str]]] = {}
    used: dict[str, set[str]] = {}
    for section, (name, tm) in enumerate(mapping.sections()):
        for source_name, frame in sources.get((name, section), []):
            keep, reasons = _select(tm, frame, name, mapping)
            if preselect is not None and (name, section) in preselect:
                chosen, why = preselect[(name, section)]
                reasons = list(why) + [(m & chosen, r) for m, r in reasons]
                keep = keep & chosen
            if name == "assessments":
                part, rows_used = _assessments(tm, frame, keep, mapping, report)
                if (keep & ~rows_used).any():
                    reasons.append((keep & ~rows_used, f"not an assessments row: every score and item column is empty"))
            else:
                part = _BUILDERS[name](tm, frame, keep, mapping, report)
                rows_used = keep
            tables[name].append(part)
            refs = frame[REF].astype(str).to_numpy()
            rows = seen.setdefault(source_name, {})
            for ref in refs:
                rows.setdefault(ref, [])
            used.setdefault(source_name, set()).update(refs[rows_used])
            for mask, reason in reasons:
                for ref in refs[mask & ~rows_used]:
                    if reason not in rows[ref]:
                        rows[ref].append(reason)
    out = {name: (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()) for name, parts in tables.items()}
    if mapping.patients is None:
        keys = pd.concat([t["source_key"] for t in out.values() if "source_key" in t], ignore_index=True).dropna()
        out["patients"] = pd.DataFrame({"source_key": keys.unique()}).assign(source_ref=pd.NA)
        if mapping.source.index != "first_session":
            from .mapping import MappingError

            raise MappingError(f"{mapping.path}: key 'source.index': value {mapping.source.index!r}: an index other "
                               "than first_session needs a [patients] table with index_date")
    accounts = []
    for source_name, rows in seen.items():
        by_reason: dict[str, list[str]] = {}
        for ref, reasons in rows.items():
            if ref not in used[source_name]:
                text = "; ".join(reasons) or "no section of the mapping uses this row"
                by_reason.setdefault(text + ".", []).append(ref.rpartition(":")[2])
        accounts += [RowAccount(source_name, refs, "dropped", None, reason) for reason, refs in by_reason.items()]
    return out, accounts
