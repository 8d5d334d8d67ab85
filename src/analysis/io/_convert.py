"""One conversion for every source: a :class:`SourceExtract` to a validated format-v1 dataset.

:func:`to_dataset` does, in this order:

1. checks the extract's shape (a reader's mistake is a ``ValueError``, not bad data);
2. the anonymisation guard on the source: further columns named like identifiers are dropped
   and logged by name (never copied); patient keys that look like record numbers, phone
   numbers or names (or come from a column named like one) are re-keyed to pseudonyms
   ``P0001`` ... in order of first appearance;
3. maps drugs, routes and instruments through the vocabulary (:mod:`analysis.io.vocabulary`):
   a rule-mapped value is a warning, an unknown one an error (a warning for medications,
   which keep unknown drug names as written) with a suggested mapping line;
4. keeps the ketamine and esketamine sessions (others are dropped and logged), turns doses
   with their unit into ``dose_mg`` or ``dose_mg_per_kg``, computes totals from items
   (:mod:`analysis.io.totals`);
5. chooses each patient's index (``index="first_session"`` or a patients column), turns dates
   into study days (:mod:`analysis.io.dates`) and drops every date; ages from ``age`` or
   year of birth at the index, top-coded at ``min_age_topcode``;
6. validates the result with the package's validator, and words every problem with the
   source table, row (file line or key) and column it came from;
7. completes the log so that every source row is accounted for, writes the folder (when
   ``out`` is given and there are no errors) with ``import_log.json`` and ``import_log.md``.

Nothing is written when there are errors: :class:`ImportProblemsError` carries the problems
and the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..anonymisation import check_column_names
from ..anonymisation.guard import _ID_SUSPECT
from ..anonymisation.values import find_in_id
from ..dataset import Dataset, _build
from ..instruments import InstrumentRegistry, default_registry
from ..problems import ERROR, WARNING, DataValidationError, Problem, ValidationReport
from ..reading import RawTable
from ..schema import TABLES
from ._extract import RowAccount, SourceExtract
from .dates import describe_index_rule, study_days
from .log import ImportLog, VocabularyNote
from .totals import totals_from_items
from .vocabulary import Vocabulary, default_vocabulary

__all__ = ["to_dataset", "ImportedDataset", "ImportProblemsError", "KETAMINE_DRUGS", "DOSE_UNITS"]

#: the drugs whose sessions format v1 records
KETAMINE_DRUGS = ("ketamine", "esketamine")
#: dose units (lower case, spaces removed) -> (format v1 column, factor to its unit)
DOSE_UNITS = {
    "mg": ("dose_mg", 1.0), "milligram": ("dose_mg", 1.0), "milligrams": ("dose_mg", 1.0),
    "g": ("dose_mg", 1000.0), "mcg": ("dose_mg", 0.001), "µg": ("dose_mg", 0.001), "ug": ("dose_mg", 0.001),
    "mg/kg": ("dose_mg_per_kg", 1.0), "mgperkg": ("dose_mg_per_kg", 1.0), "mg/kgbodyweight": ("dose_mg_per_kg", 1.0),
    "mcg/kg": ("dose_mg_per_kg", 0.001), "µg/kg": ("dose_mg_per_kg", 0.001), "ug/kg": ("dose_mg_per_kg", 0.001),
}
_TABLES = ("patients", "sessions", "assessments", "medications")
_STRUCTURAL = {
    "patients": {"source_key", "site", "age", "sex", "diagnosis", "birth_year", "index_date", "index_day", "source_ref"},
    "sessions": {"source_key", "date", "day", "drug", "route", "dose", "dose_unit", "source_ref"},
    "assessments": {"source_key", "date", "day", "instrument", "score", "source_ref"},
    "medications": {"source_key", "drug", "start_date", "end_date", "start_day", "end_day", "source_ref"},
}
#: optional per-row columns a reader may add: ``source_col_<column>`` names the source column
SOURCE_COLUMN_PREFIX = "source_col_"


@dataclass(frozen=True, eq=False)
class ImportedDataset(Dataset):
    """A :class:`~analysis.Dataset` made by an import, with its :class:`~analysis.io.log.ImportLog`."""

    import_log: ImportLog = field(default_factory=lambda: ImportLog("unknown"), repr=False)


class ImportProblemsError(DataValidationError):
    """The import found errors; ``.report`` lists them with their source places, ``.import_log`` the rest."""

    def __init__(self, report: ValidationReport, import_log: ImportLog):
        self.import_log = import_log
        super().__init__(report)


@dataclass
class _Frame:
    """A table under conversion: the frame and, per row, where it came from."""

    frame: pd.DataFrame
    name: str

    @property
    def refs(self) -> pd.Series:
        return self.frame["source_ref"].astype("string")


def to_dataset(
    extract: SourceExtract,
    *,
    index: str = "first_session",
    vocabulary: Vocabulary | None = None,
    min_age_topcode: int = 90,
    keep_key_map: str | Path | None = None,
    out: str | Path | None = None,
    format: str = "csv",
    registry: InstrumentRegistry | None = None,
    rekey: bool | None = None,
    allow_free_text: tuple[str, ...] = (),
    inputs: tuple[str, ...] = (),
    prior: ValidationReport | None = None,
    max_missing_items: Mapping[str, int] | None = None,
) -> ImportedDataset:
    """Convert an extract to a validated format-v1 dataset (and write it when ``out`` is given).

    Parameters
    ----------
    extract : SourceExtract
        What a reader extracted (:mod:`analysis.io._extract`).
    index : str, default "first_session"
        Study day 0 of each patient: ``"first_session"`` (the first ketamine or esketamine
        session) or a column of ``extract.patients`` holding a date or a day (``index_date``,
        a consent date, ...).
    vocabulary : Vocabulary, optional
        Default the bundled one (:func:`analysis.io.vocabulary.default_vocabulary`).
    min_age_topcode : int, default 90
        Ages above ``min_age_topcode - 1`` are recorded as ``min_age_topcode`` (HIPAA Safe Harbor).
    keep_key_map : path, optional
        Where to write the map from source key to pseudonym (CSV) when keys are re-keyed;
        by default it is not written anywhere.
    out : path, optional
        The dataset folder to write (tables and ``import_log.json``/``.md``).
    format : {"csv", "parquet"}
    registry : InstrumentRegistry, optional
        Instruments to validate against (default the process-wide registry).
    rekey : bool, optional
        Force (True) or forbid (False) re-keying; default: when a key looks identifying.
    allow_free_text : tuple of str
        As for :func:`analysis.load_dataset`.
    inputs : tuple of str
        The source files or URL, for the log.
    prior : ValidationReport, optional
        Problems the reader found while extracting (already placed at their source rows).
    max_missing_items : mapping of str to int, optional
        Items an instrument's total may miss (prorated), beyond :data:`analysis.io.totals.MAX_MISSING_ITEMS`.

    Returns
    -------
    ImportedDataset
        The dataset, with ``import_log``.

    Raises
    ------
    ImportProblemsError
        When the converted data have errors (nothing is written).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.io import SourceExtract, to_dataset
    >>> sessions = pd.DataFrame({"source_key": ["S1", "S1"], "date": pd.to_datetime(["2024-01-08", "2024-01-11"]),
    ...                          "drug": "RxNorm:6130", "route": "SNOMED:47625008", "dose": 0.5, "dose_unit": "mg/kg",
    ...                          "source_ref": ["ex.csv:2", "ex.csv:3"]})
    >>> assessments = pd.DataFrame({"source_key": "S1", "date": pd.to_datetime(["2024-01-07", "2024-01-12"]),
    ...                             "instrument": "LOINC:44261-6", "score": [22.0, 9.0], "source_ref": ["qs.csv:2", "qs.csv:3"]})
    >>> patients = pd.DataFrame({"source_key": ["S1"], "birth_year": [1931], "source_ref": ["dm.csv:2"]})
    >>> ds = to_dataset(SourceExtract("sdtm", patients, sessions, assessments, pd.DataFrame(), []))
    >>> ds.assessments[["patient_id", "day", "instrument", "score"]].values.tolist()
    [['S1', -1.0, 'PHQ-9', 22.0], ['S1', 4.0, 'PHQ-9', 9.0]]
    >>> ds.patients["age"].tolist(), ds.import_log.counts()["ex.csv"]
    ([90.0], {'rows': 2, 'used': 2, 'dropped': 0})
    """
    if format not in ("csv", "parquet"):
        raise ValueError(f"format must be 'csv' or 'parquet', got {format!r}")
    registry = (default_registry() if registry is None else registry).copy()
    vocabulary = vocabulary if vocabulary is not None else default_vocabulary(registry)
    log = ImportLog(extract.source, inputs=list(inputs))
    report = ValidationReport(f"{extract.source} import")
    if prior is not None:
        report.extend(prior)
    log.add_accounts(extract.accounts)
    log.identifiers_dropped = list(dict.fromkeys(extract.identifiers_dropped))
    frames = {name: _Frame(_checked_frame(extract, name), name) for name in _TABLES}

    _guard_further_columns(frames, log)
    key_map = _pseudonyms(frames, log, rekey)
    _map_vocabulary(frames, vocabulary, log, report)
    _keep_ketamine_sessions(frames["sessions"], log)
    _doses(frames["sessions"], report)
    _totals(frames["assessments"], registry, log, report, max_missing_items)
    log.index_rule = describe_index_rule(index)
    index_dates = _study_days(frames, index, log, report)
    _ages(frames["patients"], min_age_topcode, log, index_dates)

    tables, refs, source_cols = _format_v1(frames, key_map)
    _account_used(tables, refs, log)
    dataset = None
    checked = ValidationReport(f"{extract.source} import")
    raw = {name: RawTable(name, t, name, is_csv=False) for name, t in tables.items()}
    try:
        dataset = _build(raw, checked, source=str(out) if out is not None else None, registry=registry,
                         allow_free_text=allow_free_text)
    except DataValidationError:
        dataset = None
    _translate(checked, refs, source_cols, report)
    log.n_errors, log.n_warnings = report.n_errors, report.n_warnings
    log.problems = [str(p) for p in report.problems()]
    if dataset is None or not report.ok:
        raise ImportProblemsError(report, log)
    if keep_key_map is not None and key_map is None:
        log.notes.append("no key map written: the source keys look like pseudonyms and were kept as patient_id.")
    if keep_key_map is not None and key_map is not None:
        path = Path(keep_key_map)
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"source_key": list(key_map), "patient_id": list(key_map.values())}).to_csv(path, index=False)
        log.key_map = str(path)
    result = ImportedDataset(**dataset.tables, report=report, source=dataset.source,
                             instrument_registry=dataset.instrument_registry, import_log=log)
    if out is not None:
        _write(result, Path(out), format, log)
    return result


# --- shape --------------------------------------------------------------------------------


def _checked_frame(extract: SourceExtract, name: str) -> pd.DataFrame:
    frame = getattr(extract, name)
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"SourceExtract.{name} must be a DataFrame, got {type(frame).__name__}")
    frame = frame.reset_index(drop=True).copy()
    if len(frame) == 0 and "source_key" not in frame.columns:
        return pd.DataFrame({"source_key": pd.Series([], dtype="string"), "source_ref": pd.Series([], dtype="string")})
    missing = [c for c in ("source_key", "source_ref") if c not in frame.columns and not (c == "source_ref" and name == "patients")]
    if missing:
        raise ValueError(f"SourceExtract.{name} lacks column(s) {missing} (the reader must fill them)")
    if "source_ref" not in frame.columns:
        frame["source_ref"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    frame["source_key"] = frame["source_key"].astype("string").str.strip()
    return frame


def _split_ref(ref: object) -> tuple[str, str]:
    table, _, row = str(ref).rpartition(":")
    return (table, row) if table else (str(ref), "")


def _account_dropped(frame: _Frame, mask: np.ndarray, reason: str, log: ImportLog) -> None:
    """Account for rows of a table under conversion as dropped, with the reason."""
    by_table: dict[str, list[str]] = {}
    for ref in frame.refs[mask].dropna():
        table, row = _split_ref(ref)
        by_table.setdefault(table, []).append(row)
    log.add_accounts(RowAccount(t, rows, "dropped", None, reason) for t, rows in by_table.items())


def _drop_rows(frame: _Frame, mask: np.ndarray, reason: str, log: ImportLog) -> None:
    """Remove rows from a table under conversion and account for them."""
    if not mask.any():
        return
    _account_dropped(frame, mask, reason, log)
    frame.frame = frame.frame.loc[~mask].reset_index(drop=True)


# --- privacy ------------------------------------------------------------------------------


def _guard_further_columns(frames: dict[str, _Frame], log: ImportLog) -> None:
    """Further columns named like identifiers are dropped and logged by name, never copied."""
    for name, f in frames.items():
        further = [c for c in f.frame.columns if c not in _STRUCTURAL[name] and not str(c).startswith(SOURCE_COLUMN_PREFIX)
                   and not (str(c).startswith("item_") and str(c)[5:].isdigit())]
        refused = check_column_names(name, further, ValidationReport())
        if refused:
            f.frame = f.frame.drop(columns=refused)
            log.identifiers_dropped.extend(c for c in refused if c not in log.identifiers_dropped)


def _pseudonyms(frames: dict[str, _Frame], log: ImportLog, rekey: bool | None) -> dict[str, str] | None:
    """Source key -> pseudonym when keys must be re-keyed, else None."""
    keys = pd.concat([frames["patients"].frame["source_key"], *(f.frame["source_key"] for f in frames.values())],
                     ignore_index=True).dropna()
    keys = pd.unique(keys.astype(str)).tolist()
    if rekey is None:
        # the guard's quick test first (a pseudonym such as P0001 fails it at once), its full one on the rest
        suspect = pc.match_substring_regex(pa.array(keys, type=pa.large_string()), _ID_SUSPECT).to_numpy(zero_copy_only=False)
        identifying = [k for k, s in zip(keys, suspect) if s and find_in_id(k)]
        rekey = bool(identifying)
        if rekey:
            log.rekey_reason = (f"{len(identifying)} of {len(keys)} source keys look like record numbers, phone numbers "
                                "or names")
    elif rekey:
        log.rekey_reason = "the source key column is named like an identifier"
    if not rekey:
        return None
    log.rekeyed = True
    width = max(4, len(str(len(keys))))
    return {k: f"P{i + 1:0{width}d}" for i, k in enumerate(keys)}


# --- values -------------------------------------------------------------------------------


def _map_vocabulary(frames: dict[str, _Frame], vocabulary: Vocabulary, log: ImportLog, report: ValidationReport) -> None:
    for table, column, kind, unknown_is_error in (
        ("sessions", "drug", "drug", True), ("sessions", "route", "route", True),
        ("assessments", "instrument", "instrument", True), ("medications", "drug", "drug", False),
    ):
        f = frames[table]
        if column not in f.frame.columns:
            continue
        raw = f.frame[column].astype("string").str.strip()
        mapped, lookups = vocabulary.map(kind, raw)
        codes = pd.factorize(raw, use_na_sentinel=True)[0]
        for u, found in enumerate(lookups):
            if found.how == "exact":
                continue
            rows = np.flatnonzero(codes == u)
            refs = f.refs.iloc[rows].tolist()
            note = VocabularyNote(kind, found.raw, found.value, found.how, found.rule, int(rows.size), refs[:20],
                                  suggestion=vocabulary.suggestion(kind, found.raw) if found.how == "unknown" else None,
                                  note=found.note)
            log.vocabulary.append(note)
            severity = ERROR if found.how == "unknown" and unknown_is_error else WARNING
            message = note.message() if severity == ERROR or found.how == "rule" else (
                note.message() + "; kept as written (drug class left empty)")
            # one line per distinct value (its first row), all its rows counted: the message lists them
            _add_source_problem(report, table, column, f.frame, rows, raw.iloc[rows], message, severity,
                                f"vocabulary_{found.how}", examples=1)
        if unknown_is_error:
            f.frame[column] = mapped
        else:  # medications keep unknown drug names as written
            f.frame[column] = mapped.fillna(raw.str.lower())


def _keep_ketamine_sessions(f: _Frame, log: ImportLog) -> None:
    if "drug" not in f.frame.columns:
        return
    drug = f.frame["drug"]
    other = drug.notna().to_numpy() & ~drug.isin(KETAMINE_DRUGS).to_numpy(dtype=bool, na_value=False)
    for name in drug[other].unique():
        _drop_rows(f, (f.frame["drug"] == name).to_numpy(dtype=bool, na_value=False),
                   f"The drug ({name}) is not ketamine or esketamine, so the row is not a session.", log)


def _doses(f: _Frame, report: ValidationReport) -> None:
    frame = f.frame
    if "dose" not in frame.columns:
        if not {"dose_mg", "dose_mg_per_kg"} & set(frame.columns):
            frame["dose_mg_per_kg"] = np.nan  # no dose in the source: every session warns "dose not recorded"
        return
    dose = pd.to_numeric(frame["dose"], errors="coerce")
    bad_number = np.flatnonzero(frame["dose"].notna().to_numpy() & dose.isna().to_numpy())
    _add_source_problem(report, "sessions", "dose", frame, bad_number, frame["dose"].iloc[bad_number],
                        "expected a dose (a number)", ERROR, "type")
    unit = frame["dose_unit"].astype("string").str.lower().str.replace(r"\s+", "", regex=True) if "dose_unit" in frame \
        else pd.Series(pd.NA, index=frame.index, dtype="string")
    codes, uniques = pd.factorize(unit, use_na_sentinel=True)  # each distinct unit once
    known = [DOSE_UNITS.get(str(u), (None, np.nan)) for u in uniques] + [(None, np.nan)]
    target = pd.Series(np.array([k[0] for k in known], dtype=object)[codes], index=frame.index)
    factor = pd.Series(np.array([k[1] for k in known], dtype=float)[codes], index=frame.index)
    unknown = np.flatnonzero(dose.notna().to_numpy() & target.isna().to_numpy())
    shown = frame["dose_unit"].iloc[unknown] if "dose_unit" in frame else None
    _add_source_problem(report, "sessions", "dose_unit", frame, unknown, shown,
                        f"unknown or missing dose unit; expected one of {', '.join(sorted(set(DOSE_UNITS)))}", ERROR, "dose_unit")
    for col in ("dose_mg", "dose_mg_per_kg"):
        value = (dose * factor).where(target == col)
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").fillna(value)
        elif value.notna().any() or col == "dose_mg_per_kg":
            frame[col] = value
    f.frame = frame.drop(columns=[c for c in ("dose", "dose_unit") if c in frame.columns])


def _totals(f: _Frame, registry: InstrumentRegistry, log: ImportLog, report: ValidationReport,
            max_missing: Mapping[str, int] | None = None) -> None:
    frame = f.frame
    items = [c for c in frame.columns if str(c).startswith("item_") and str(c)[5:].isdigit()]
    if "score" not in frame.columns:
        frame["score"] = np.nan
    if not items or "instrument" not in frame.columns:
        return
    score = pd.to_numeric(frame["score"], errors="coerce")
    need = score.isna().to_numpy() & frame[items].notna().any(axis=1).to_numpy()
    if not need.any():
        return
    computed, prorated, reasons = totals_from_items(frame.loc[need, "instrument"], frame.loc[need, items], registry,
                                                    max_missing=max_missing)
    score.loc[need] = computed.to_numpy()
    frame["score"] = score
    rows = np.flatnonzero(need)
    pr = rows[prorated.to_numpy(dtype=bool)]
    if pr.size:
        _add_source_problem(report, "assessments", "score", frame, pr, score.iloc[pr],
                            "total prorated from the items answered (some items missing; the instrument's rule in "
                            "docs/import.md allows it)", WARNING, "prorated")
        log.notes.append(f"{pr.size} assessment total(s) prorated from answered items (docs/import.md).")
    f.frame = frame
    why = pd.Series(reasons, dtype=object)
    masks = []
    for reason in why.dropna().unique():  # every mask on the frame as it is now, then all dropped at once
        mask = np.zeros(len(frame), dtype=bool)
        mask[rows[(why == reason).to_numpy()]] = True
        masks.append((mask, reason))
    for mask, reason in masks:
        _account_dropped(f, mask, reason, log)
    if masks:
        f.frame = frame.loc[~np.logical_or.reduce([m for m, _ in masks])].reset_index(drop=True)


# --- times ----------------------------------------------------------------------------------


def _study_days(frames: dict[str, _Frame], index: str, log: ImportLog, report: ValidationReport) -> pd.Series:
    """Per-patient index, then every date and day column becomes a study day; the index dates by source key."""
    patients = frames["patients"].frame
    sessions = frames["sessions"].frame
    if index == "first_session":
        ref_date = sessions.groupby("source_key")["date"].min() if "date" in sessions else pd.Series(dtype="datetime64[ns]")
        ref_day = sessions.groupby("source_key")["day"].min() if "day" in sessions else pd.Series(dtype=float)
    else:
        if index not in patients.columns:
            raise ValueError(f"index {index!r}: expected 'first_session' or a column of the patients extract "
                             f"(columns: {', '.join(map(str, patients.columns))})")
        values = patients.set_index("source_key")[index]
        if pd.api.types.is_datetime64_any_dtype(values):
            ref_date, ref_day = values.dropna(), pd.Series(dtype=float)
        else:
            ref_date, ref_day = pd.Series(dtype="datetime64[ns]"), pd.to_numeric(values, errors="coerce").dropna()
        patients = patients.drop(columns=[index])
    frames["patients"].frame = patients.drop(columns=[c for c in ("index_date", "index_day") if c in patients.columns])
    has_index = set(ref_date.index.astype(str)) | set(ref_day.index.astype(str))
    for name, pairs in (("sessions", [("date", "day")]), ("assessments", [("date", "day")]),
                        ("medications", [("start_date", "start_day"), ("end_date", "end_day")])):
        f = frames[name]
        frame = f.frame
        keys = frame["source_key"]
        no_index = ~keys.isin(has_index).to_numpy(dtype=bool, na_value=True)
        if name != "sessions" and no_index.any():
            _drop_rows(f, no_index, "The patient has no index day (no ketamine or esketamine session, or no "
                       f"{index!r}), so its times cannot be made study days.", log)
            frame = f.frame
            keys = frame["source_key"]
        for date_col, day_col in pairs:
            day = _days(frame, day_col, name, report)
            if date_col in frame.columns:
                dates = pd.to_datetime(frame[date_col])
                from_dates = study_days(dates, keys.map(ref_date))
                mixed = dates.notna().to_numpy() & from_dates.isna().to_numpy()
                _add_source_problem(report, name, date_col, frame, np.flatnonzero(mixed), None,
                                    "a calendar date, but the patient's index is a study day (not a date); give "
                                    "the index as a date, or this time as a day", ERROR, "index_kind")
                day = day.fillna(from_dates)
                frame = frame.drop(columns=[date_col])
            elif day_col in frame.columns:
                day = day - keys.map(ref_day).astype(float).to_numpy() if len(ref_day) else day
            frame[day_col] = day
        f.frame = frame
    return ref_date


def _days(frame: pd.DataFrame, col: str, table: str, report: ValidationReport) -> pd.Series:
    """A day column as numbers; text that is not a number is an error at its source row."""
    if col not in frame.columns:
        return pd.Series(np.nan, index=frame.index)
    values = frame[col]
    day = pd.to_numeric(values, errors="coerce").astype(float)
    bad = np.flatnonzero(values.notna().to_numpy() & day.isna().to_numpy()
                         & (values.astype("string").str.strip() != "").to_numpy(dtype=bool, na_value=False))
    _add_source_problem(report, table, col, frame, bad, values.iloc[bad],
                        "expected a study day (a number of days); if the column holds calendar dates, map it as a "
                        f"date (e.g. `date = \"<column>\"` in the mapping file) so the import converts it", ERROR, "type")
    return day


def _ages(f: _Frame, topcode: int, log: ImportLog, index_dates: pd.Series) -> None:
    """Age at the index (from the year of birth where no age is given), top-coded."""
    frame = f.frame
    if "birth_year" in frame.columns:
        born = pd.to_numeric(frame["birth_year"], errors="coerce")
        index_year = pd.to_datetime(frame["source_key"].map(index_dates)).dt.year.astype(float)
        from_birth = index_year - born
        frame["age"] = pd.to_numeric(frame["age"], errors="coerce").fillna(from_birth) if "age" in frame else from_birth
        log.notes.append("age at the index computed as the year of the index minus the year of birth (where no age "
                         "was given); the year of birth is not kept.")
        frame = frame.drop(columns=["birth_year"])
    if "age" in frame.columns:
        age = pd.to_numeric(frame["age"], errors="coerce")
        over = age > topcode - 1
        if over.any():
            log.notes.append(f"{int(over.sum())} age(s) over {topcode - 1} top-coded to {topcode}.")
        frame["age"] = age.where(~over, float(topcode))
    f.frame = frame


# --- format v1 and its problems -----------------------------------------------------------


def _format_v1(frames: dict[str, _Frame], key_map: dict[str, str] | None):
    tables, refs, source_cols = {}, {}, {}
    for name, f in frames.items():
        frame = f.frame
        if name == "medications" and len(frame) == 0:
            continue
        cols = {c[len(SOURCE_COLUMN_PREFIX):]: frame[c] for c in frame.columns if str(c).startswith(SOURCE_COLUMN_PREFIX)}
        source_cols[name] = pd.DataFrame(cols, index=frame.index).reset_index(drop=True)
        refs[name] = frame["source_ref"].astype("string").reset_index(drop=True)
        keys = frame["source_key"].astype("string")
        patient_id = keys.map(key_map) if key_map is not None else keys
        body = frame.drop(columns=["source_key", "source_ref", *[c for c in frame.columns if str(c).startswith(SOURCE_COLUMN_PREFIX)]])
        order = [c.name for c in TABLES[name].columns if c.name in body.columns and c.name != "patient_id"]
        body = body[order + [c for c in body.columns if c not in order]]
        body.insert(0, "patient_id", patient_id.astype("string"))
        tables[name] = body.reset_index(drop=True)
    return tables, refs, source_cols


def _account_used(tables: dict[str, pd.DataFrame], refs: dict[str, pd.Series], log: ImportLog) -> None:
    for name, ref in refs.items():
        present = ref.dropna()
        if present.empty:
            continue
        # "<table>:<row>" split in one vectorised pass (a million references in a fraction of a second)
        parts = pc.extract_regex(pa.array(present.astype(str), type=pa.large_string()), r"^(?P<t>.*):(?P<r>[^:]*)$")
        tables = pc.struct_field(parts, "t").to_numpy(zero_copy_only=False)
        rows = pc.struct_field(parts, "r").to_numpy(zero_copy_only=False)
        codes, uniques = pd.factorize(pd.Series(tables, dtype=object), use_na_sentinel=True)
        for k, table in enumerate(uniques):
            log.add_accounts([RowAccount(str(table), rows[codes == k].tolist(), "used", name, None)])
        if (codes < 0).any():  # a reference without a table part
            raise ValueError(f"SourceExtract.{name}: source_ref must be '<table>:<row>', got "
                             f"{present.iloc[int(np.flatnonzero(codes < 0)[0])]!r}")


def _place(ref: object) -> tuple[str | None, int | None]:
    """(file, line) of a source reference: a line number as ``line``, a key inside ``file``."""
    if ref is None or ref is pd.NA or (isinstance(ref, float) and np.isnan(ref)):
        return None, None
    table, row = _split_ref(ref)
    if row.isdigit():
        return table, int(row)
    return (f"{table} {row}" if row else table), None


def _add_source_problem(report: ValidationReport, table: str, column: str, frame: pd.DataFrame, rows: np.ndarray,
                        values, message: str, severity: str, code: str, *, examples: int = 20) -> None:
    """Problems placed at their source rows (file line or key) and source column; the first
    ``examples`` rows are shown, the rest counted."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return
    vals = [None] * rows.size if values is None else list(pd.Series(values).tolist())
    src_col = frame.get(SOURCE_COLUMN_PREFIX + column)
    for pos, val in zip(rows[:examples], vals[:examples]):
        file, line = _place(frame["source_ref"].iloc[pos])
        col = str(src_col.iloc[pos]) if src_col is not None and pd.notna(src_col.iloc[pos]) else column
        _record(report, Problem(severity, table, message, column=col, value=val, line=line, file=file, code=code))
    if rows.size > examples:
        kind = report._kind(severity, table, _first_col(frame, column, rows[0]), message, code)
        kind.count += int(rows.size - examples)


def _first_col(frame: pd.DataFrame, column: str, pos: int) -> str:
    src_col = frame.get(SOURCE_COLUMN_PREFIX + column)
    return str(src_col.iloc[pos]) if src_col is not None and pd.notna(src_col.iloc[pos]) else column


def _record(report: ValidationReport, problem: Problem) -> None:
    kind = report._kind(problem.severity, problem.table, problem.column, problem.message, problem.code)
    kind.count += 1
    if len(kind.examples) < 20:
        kind.examples.append(problem)


def _translate(checked: ValidationReport, refs: dict[str, pd.Series], source_cols: dict[str, pd.DataFrame],
               report: ValidationReport) -> None:
    """The validator's problems on the converted tables, placed at their source rows and columns."""
    for kind in checked._kinds.values():
        for p in kind.examples:
            if p.row is not None and p.table in refs and p.row - 1 < len(refs[p.table]):
                file, line = _place(refs[p.table].iloc[p.row - 1])
                cols = source_cols.get(p.table)
                column = p.column
                if cols is not None and p.column in cols.columns and pd.notna(cols[p.column].iloc[p.row - 1]):
                    column = f"{cols[p.column].iloc[p.row - 1]}"
                message = p.message if column == p.column else f"{p.message} (format v1 {p.table}.{p.column})"
                _record(report, Problem(p.severity, p.table, message, column=column, value=p.value, line=line,
                                        file=file, code=p.code))
            else:  # about a whole column or table: named by its source column and file where they are one
                cols = source_cols.get(p.table)
                ref = refs.get(p.table)
                column, file = p.column, f"(converted {p.table})"
                if cols is not None and p.column in cols.columns and cols[p.column].nunique() == 1:
                    column = f"{cols[p.column].dropna().iloc[0]}"
                if ref is not None and ref.notna().any():
                    tables = ref.dropna().astype(str).str.rpartition(":")[0].unique()
                    file = str(tables[0]) if len(tables) == 1 else file
                message = p.message if column == p.column else f"{p.message} (format v1 {p.table}.{p.column})"
                _record(report, Problem(p.severity, p.table, message, column=column, value=p.value, file=file,
                                        code=p.code))
        extra = kind.count - len(kind.examples)
        if extra > 0:
            report._kind(kind.severity, kind.table, kind.column, kind.message, kind.code).count += extra


# --- writing ------------------------------------------------------------------------------


def _write(dataset: ImportedDataset, out: Path, format: str, log: ImportLog) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, table in dataset.tables.items():
        if name == "medications" and len(table) == 0:
            continue
        frame = table.drop(columns=[c for c in ("dose_dze_mg",) if c in table.columns]) if name == "medications" else table
        if format == "csv":
            frame.to_csv(out / f"{name}.csv", index=False)
        else:
            frame.to_parquet(out / f"{name}.parquet", index=False)
        log.outputs[name] = len(frame)
    log.write(out)
