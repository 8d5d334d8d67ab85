"""Checking raw tables against data format v1 and converting them to its types.

All problems are collected in one :class:`~analysis.problems.ValidationReport`, each with
its table, file line (or row), column, value and what was expected. Column-level rules
(missing values, ranges, allowed values, unique ids) are pandera schemas built from
:mod:`analysis.schema`; rules that span columns or tables (score range per instrument,
patients known, end after start, duplicate rows) are vectorised pandas checks here.

Before any conversion every text value (identifiers, sites, routes, instruments, drugs,
numbers still written as text, and the column names) is normalised the same way
(:func:`normalise_text`): Unicode NFC, invisible characters removed (format characters
such as zero-width spaces and byte-order marks, NUL and other control characters),
surrounding whitespace removed. Each change is a warning naming its place and showing the
value escaped, so ``P0001`` and ``P0001\\u200b`` (with a zero-width space) are one
patient and the change is visible.

Study days must be plausible: within :data:`MAX_STUDY_DAY` (20 years) of the index date.
Days that look like calendar dates written as numbers (``20230105``; Excel serials such as
``44931`` when every day of the patient is one) are refused as dates, with how to convert
them (:data:`DATE_CONVERSION_HINT`).

Validation uses the dataset's own instrument registry (built-ins plus its
``instruments.toml``), never a process-wide one a load could change.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pdr
import pyarrow as pa
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from . import anonymisation
from .drugs import DIAZEPAM_EQUIVALENT_PER_MG, drug_class_of
from .instruments import InstrumentRegistry, ambiguous_alias_note, default_registry
from .problems import WARNING, ValidationReport
from .reading import RawTable
from .schema import ROUTE_ALIASES, SEX_ALIASES, TABLES, ColumnSpec, TableSpec

__all__ = ["validate_tables", "validate_table_stream", "normalise_text", "MAX_STUDY_DAY", "DATE_CONVERSION_HINT"]

#: the largest plausible distance of a study day from the patient's index date: 20 years
MAX_STUDY_DAY = 7305
#: Excel date serials of 1990-01-01 and 2100-12-31 (days since 1899-12-30)
EXCEL_SERIAL_RANGE = (32874, 73051)
#: how to turn calendar dates into study days (the mapped import of issue 12 does it)
DATE_CONVERSION_HINT = (
    "convert dates to study days relative to each patient's first session, e.g. with "
    "`ketamine-outcomes import mapped ... --mapping MAP.toml`, or yourself: day = date - first session date"
)

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


def validate_tables(
    raw: dict[str, RawTable],
    report: ValidationReport,
    *,
    registry: InstrumentRegistry | None = None,
    allow_free_text: Sequence[str] = (),
    release: bool = False,
) -> dict[str, pd.DataFrame]:
    """Validate and type the tables; problems go to ``report``.

    Parameters
    ----------
    raw : dict of RawTable
    report : ValidationReport
    registry : InstrumentRegistry, optional
        The instruments the assessments are checked against (the dataset's own); default
        the process-wide registry.
    allow_free_text : sequence of str
        Columns whose free text the user explicitly allows, passed to the anonymisation
        guard (:func:`analysis.anonymisation.check_identifying_values`).
    release : bool, default False
        Remove each raw table from ``raw`` once it is converted, so that its columns can be
        freed before the next table is read into types (the loader's way of holding one
        table's raw and typed columns at a time, not every table's).

    Returns the converted tables (those that could be read); the caller decides from
    ``report.ok`` whether they may be used.
    """
    names = [name for name in TABLES if name in raw]
    return validate_table_stream(((name, raw.pop(name) if release else raw[name]) for name in names), report,
                                 registry=registry, allow_free_text=allow_free_text)


def validate_table_stream(
    tables: Iterable[tuple[str, RawTable]],
    report: ValidationReport,
    *,
    registry: InstrumentRegistry | None = None,
    allow_free_text: Sequence[str] = (),
) -> dict[str, pd.DataFrame]:
    """:func:`validate_tables` for raw tables that come one at a time, as ``(name, table)``
    pairs in the order of :data:`~analysis.schema.TABLES`.

    Each table is converted when it comes and then let go, so an iterator that reads each
    file only when asked for it (as :func:`analysis.check_dataset` does) holds one table's
    raw columns at a time, never every table's; the checks across tables run at the end,
    on the typed tables. Problems and tables are those of :func:`validate_tables` on the
    same tables.
    """
    registry = default_registry() if registry is None else registry
    allow = tuple(allow_free_text)
    typed: dict[str, pd.DataFrame] = {}
    ids: dict[str, tuple[np.ndarray, pd.api.extensions.ExtensionArray]] = {}
    for name, table in tables:
        report.set_locator(name, table.file, table.line_numbers, table.is_csv)
        converted = _convert_table(TABLES[name], table, report, registry, allow, ids=ids)
        del table  # the raw columns can go before the next table is read
        if converted is not None:
            typed[name] = converted
        else:
            ids.pop(name, None)
    _check_across_tables(typed, report, registry, ids)
    return typed


def _factorised_ids(frame: pd.DataFrame) -> tuple[np.ndarray, pd.api.extensions.ExtensionArray] | None:
    """``pd.factorize(frame["patient_id"])`` (codes, -1 where missing, as int32 when they
    fit, and the distinct ids), for an id column of pandas ``string``; else None.

    Worked out once per table: the anonymisation guard, the duplicate-row check and the
    checks across tables all match rows by patient, and on a registry of 25 million
    assessments each factorisation is about a second.
    """
    if "patient_id" not in frame.columns or frame["patient_id"].dtype != pd.StringDtype():
        return None
    codes, uniques = pd.factorize(frame["patient_id"], use_na_sentinel=True)
    return (codes.astype(np.int32) if len(uniques) < 2**31 - 1 else codes), uniques


# --- vectorised helpers --------------------------------------------------------------------


def isin(values: pd.Series, allowed) -> np.ndarray:
    """Boolean array: which values are in ``allowed`` (missing values are not).

    pyarrow's hash-based ``is_in`` is an order of magnitude faster than ``Series.isin`` on
    the string columns of a million-row table.
    """
    array = pa.array(values.astype("string"), type=pa.large_string()) if not isinstance(values, pa.Array) else values
    value_set = pa.array(pd.Series(list(allowed) if not isinstance(allowed, pd.Series) else allowed, dtype="string").dropna().unique(),
                         type=pa.large_string())
    return pc.is_in(array, value_set=value_set, skip_nulls=True).to_numpy(zero_copy_only=False) & values.notna().to_numpy()


def _map_distinct(text: pd.Series, func) -> pd.Series:
    """``func(text)`` for an element-wise ``func`` of a ``string`` Series, computed once per
    distinct value and spread back; ``text`` itself when ``func`` changes no value (so a
    clean column of millions of rows is not copied)."""
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    distinct = pd.Series(uniques, dtype="string")
    mapped = func(distinct)
    if mapped.dtype == text.dtype and mapped.equals(distinct):
        return text
    return pd.Series(mapped.array.take(codes, allow_fill=True), index=text.index, name=text.name)


def map_unique(values: pd.Series, func) -> pd.Series:
    """Apply ``func`` (a function of one value) once per distinct value, then spread the results."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([func(u) for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=values.index)


# --- text normalisation -------------------------------------------------------------------

_INVISIBLE, _NFC, _SPACE = 1, 2, 4
_NORMALISED = (
    (_INVISIBLE, "invisible characters removed (zero-width or other format characters, byte-order marks, NUL "
                 "or other control characters); kept without them, please check the export"),
    (_NFC, "text converted to Unicode NFC (composed characters), so that the same text always matches; "
           "kept as converted"),
    (_SPACE, "surrounding whitespace removed (kept without it)"),
)
_KEEP_CONTROL = frozenset("\t\n\r")


def normalise_text(value: str) -> tuple[str, int]:
    """``value`` in the one form every text of a dataset is compared in, and what changed.

    Unicode NFC; format characters (category Cf: zero-width spaces and joiners, byte-order
    marks, soft hyphens, direction marks) and control characters other than tab and line
    breaks (NUL, ...) removed; surrounding whitespace (any Unicode space) removed. The
    second value is a bit set of the changes (0: none).

    Examples
    --------
    >>> from analysis.validation import normalise_text
    >>> normalise_text("P0001\u200b")[0], normalise_text("\ufeffP0001")[0], normalise_text("re\u0301al ")[0]
    ('P0001', 'P0001', 'réal')
    >>> normalise_text("P0001")
    ('P0001', 0)
    """
    if value.isascii() and value.isprintable():
        stripped = value.strip()
        return stripped, (_SPACE if stripped != value else 0)
    flags = 0
    kept = []
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cf" or (category == "Cc" and ch not in _KEEP_CONTROL):
            flags |= _INVISIBLE
        else:
            kept.append(ch)
    text = "".join(kept)
    composed = unicodedata.normalize("NFC", text)
    if composed != text:
        flags |= _NFC
    stripped = composed.strip()
    if stripped != composed:
        flags |= _SPACE
    return stripped, flags


def _needs_normalising(values: pd.Series) -> np.ndarray:
    """Which values may change in :func:`normalise_text`: for a text column one vectorised
    pass (printable ASCII without a space at either end needs nothing)."""
    try:
        array = pa.array(values, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):  # an object column holding other things than text
        return np.array([isinstance(v, str) and normalise_text(v)[1] != 0 for v in values], dtype=bool)
    plain = pc.and_(pc.and_(pc.string_is_ascii(array), pc.ascii_is_printable(array)),
                    pc.invert(pc.or_(pc.starts_with(array, " "), pc.ends_with(array, " "))))
    return ~pc.fill_null(plain, True).to_numpy(zero_copy_only=False)


def _normalise_column(table: str, col: str, values: pd.Series, report: ValidationReport,
                      plain: set[str] | None = None) -> pd.Series:
    """Normalise the text values of a column (each distinct value once), warning at each change.

    A text column whose every value is printable ASCII without a space at either end (so
    nothing changes) is added to ``plain``: later steps need not look at it again for
    surrounding whitespace, tabs or line breaks.
    """
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        return values
    candidates = np.flatnonzero(_needs_normalising(values))
    if candidates.size == 0:
        if plain is not None and isinstance(values.dtype, pd.StringDtype):
            plain.add(col)
        return values
    subset = values.iloc[candidates]
    try:
        codes, uniques = pd.factorize(subset, use_na_sentinel=True)
    except TypeError:  # unhashable cells (from DataFrames): left to the type checks
        return values
    results = [normalise_text(u) if isinstance(u, str) else (u, 0) for u in uniques]
    flags = np.array([f for _, f in results] + [0], dtype=np.int64)[codes]
    if not flags.any():
        return values
    for bit, message in _NORMALISED:
        pos = candidates[np.flatnonzero(flags & bit)]
        report.add_rows(table, col, pos, values.iloc[pos], message, severity=WARNING, code="normalised")
    changed = flags != 0
    # a value of nothing but invisible characters or spaces is missing (and reported as such)
    cleaned = np.array([None if v == "" else v for v, _ in results] + [None], dtype=object)[codes][changed]
    if isinstance(values.dtype, pd.CategoricalDtype):  # text categories (Parquet, another dataset's tables): as text
        out = values.astype("string")
    else:
        out = values.copy() if values.dtype != object else values.astype(object).copy()
    out.iloc[candidates[changed]] = cleaned
    return out


def _normalise_header(table: str, columns: list[str], report: ValidationReport) -> list[str] | None:
    """Normalised column names (warning at each change); None when two become one."""
    out = []
    for col in columns:
        clean, flags = normalise_text(str(col))
        for bit, message in _NORMALISED:
            if flags & bit and bit != _SPACE:
                report.add_table_problem(table, f"column name: {message}", column=clean, value=str(col), line=1,
                                         severity=WARNING, code="normalised")
        out.append(clean)
    doubled = sorted({c for c in out if out.count(c) > 1})
    if doubled:
        report.add_table_problem(table, f"header repeats column name(s) {doubled} (after removing invisible "
                                 "characters and surrounding spaces)", line=1, code="header")
        return None
    return out


# --- one table ---------------------------------------------------------------------------


def _convert_table(spec: TableSpec, raw: RawTable, report: ValidationReport, registry: InstrumentRegistry,
                   allow_free_text: tuple[str, ...] = (), *, ids: dict | None = None) -> pd.DataFrame | None:
    """Convert and check one table; with ``ids``, its factorised patient ids
    (:func:`_factorised_ids`) are put there under the table's name."""
    frame = raw.frame.reset_index(drop=True)
    name = spec.name
    columns = _normalise_header(name, list(frame.columns), report)
    if columns is None:
        return None
    frame.columns = columns
    if len(frame) == 0:
        report.add_table_problem(name, "table is empty: it has a header but no data rows", code="empty")
        return None
    # copy=False: the columns are not stacked into blocks (a copy of every number column);
    # with copy-on-write the frame shares them safely
    plain: set[str] = set()  # text columns of printable ASCII only, without surrounding spaces
    frame = pd.DataFrame({col: _normalise_column(name, col, frame[col], report, plain) for col in frame.columns},
                         index=frame.index, copy=False)
    _add_import_hints(name, frame, report)
    refused = anonymisation.check_column_names(name, list(frame.columns), report)
    frame = frame.drop(columns=refused)
    missing = [c for c in spec.required_columns if c not in frame.columns]
    if name == "sessions" and not ({"dose_mg_per_kg", "dose_mg"} & set(frame.columns)):
        missing.append("dose_mg_per_kg or dose_mg")
    for col in missing:
        report.add_table_problem(
            name, f"required column is missing (columns present: {', '.join(map(str, frame.columns))})",
            column=col, line=1, code="missing_column",
        )
    out = {}
    for col in frame.columns:
        try:
            col_spec = spec.column(col)
        except KeyError:
            col_spec = None
        if col_spec is None:
            out[col] = _convert_extra(name, col, frame[col], report)
        else:
            out[col] = _convert_column(name, col_spec, frame[col], report, registry, plain=col in plain)
    typed = pd.DataFrame(out, index=frame.index, copy=False)
    _run_schema(spec, typed, frame, report)
    _warn_outside(spec, typed, report)
    _check_identifiers(spec, typed, report, plain)
    _check_study_days(spec, typed, report)
    text_cols = [c for c in typed.columns if c not in {"patient_id", "drug", "drug_class", "instrument", "route", "phase", "sex"}
                 and pd.api.types.is_string_dtype(typed[c])]
    factorised = _factorised_ids(typed)
    if factorised is not None and ids is not None:
        ids[name] = factorised
    anonymisation.check_identifying_values(name, typed, text_cols + ["patient_id"] * ("patient_id" in typed), report,
                                           **({"allow_free_text": allow_free_text} if allow_free_text else {}),
                                           factorised={"patient_id": factorised} if factorised is not None else None)
    if name == "patients" and "age" in typed:
        anonymisation.check_top_coded_age(name, typed["age"], report)
    return typed


def _add_import_hints(table: str, frame: pd.DataFrame, report: ValidationReport) -> None:
    """Near misses (an export's key, wide totals, dates in ``day``): the mapping line or import command that fixes them."""
    from .io.hints import near_miss_hints  # lazily: analysis.io builds on this module

    for column, hint in near_miss_hints(table, frame):
        report.add_table_problem(table, f"hint: {hint}", column=column, line=1, severity=WARNING, code="import_hint")


def _convert_column(table: str, spec: ColumnSpec, values: pd.Series, report: ValidationReport,
                    registry: InstrumentRegistry, *, plain: bool = False) -> pd.Series:
    kind = spec.kind
    if kind in ("number", "integer", "day"):
        return _to_number(table, spec, values, report)
    if kind == "boolean":
        return _to_boolean(table, spec.name, values, report)
    text = _to_text(values, plain=plain)
    if kind == "category":
        if spec.name == "instrument":
            return _to_instrument(table, values, text, report, registry)
        aliases = {"route": ROUTE_ALIASES, "sex": SEX_ALIASES}.get(spec.name)
        text = _map_distinct(text, lambda v: v.str.lower().replace(aliases) if aliases else v.str.lower())
    return text


def _to_text(values: pd.Series, *, plain: bool = False) -> pd.Series:
    """Text with surrounding whitespace removed and empty values missing; ``plain``: the
    values are known to be printable ASCII without surrounding spaces."""
    if pd.api.types.is_float_dtype(values):
        # a numeric id column from Parquet: 1.0 -> "1", so CSV and Parquet agree
        as_int = values.dropna()
        if (as_int == np.round(as_int)).all():
            values = values.astype("Int64")
    text = values.astype("string")
    if _is_stripped_text(text, plain=plain):
        return text  # what strip and masking "" would give, without copying the column
    text = text.str.strip()
    return text.mask(text == "", pd.NA)


def _is_stripped_text(text: pd.Series, *, plain: bool = False) -> bool:
    """True when no value of a ``string`` column has surrounding whitespace or is empty:
    printable ASCII without a space at either end (the only printable ASCII whitespace) and
    at least one character. ``plain``: the first is known already."""
    if not plain and _needs_normalising(text).any():
        return False
    array = pa.array(text, type=pa.large_string(), from_pandas=True)
    return not pc.any(pc.equal(pc.binary_length(array), 0)).as_py()


def _to_number(table: str, spec: ColumnSpec, values: pd.Series, report: ValidationReport) -> pd.Series:
    col = spec.name
    if pd.api.types.is_bool_dtype(values):
        report.add_table_problem(table, "expected numbers, found true/false values", column=col, code="type")
        return pd.Series(np.nan, index=values.index)
    if pd.api.types.is_datetime64_any_dtype(values) or _is_date_object(values):
        report.add_table_problem(
            table, f"column holds calendar dates; {anonymisation.HOW_TO_DEIDENTIFY}",
            column=col, value=str(values.dropna().iloc[0]) if values.notna().any() else None, code="calendar_date",
        )
        return pd.Series(np.nan, index=values.index)
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype("float64")
    else:
        text = values.astype("string").str.strip()
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
        bad = numbers.isna().to_numpy() & text.notna().to_numpy() & (text != "").to_numpy()
        if bad.any():
            pos = np.flatnonzero(bad)
            dates = anonymisation.looks_like_calendar_date(text.iloc[pos])
            kind_is_day = spec.kind == "day"
            if dates.any():
                report.add_rows(
                    table, col, pos[dates], text.iloc[pos[dates]],
                    f"calendar date where a study day is expected; {DATE_CONVERSION_HINT}"
                    if kind_is_day else f"calendar date where a number is expected; {anonymisation.HOW_TO_DEIDENTIFY}",
                    code="calendar_date",
                )
            rest = pos[~dates]
            report.add_rows(table, col, rest, text.iloc[rest], f"expected {_expected_number(spec)}", code="type")
    finite = np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan)) | numbers.isna().to_numpy()
    if not finite.all():
        pos = np.flatnonzero(~finite)
        report.add_rows(table, col, pos, numbers.iloc[pos], f"expected a finite number ({_expected_number(spec)})", code="type")
        numbers = numbers.mask(~finite)
    if spec.kind == "integer":
        arr = numbers.to_numpy(dtype=float, na_value=np.nan)
        frac = np.flatnonzero(np.isfinite(arr) & (arr != np.round(arr)))
        report.add_rows(table, col, frac, arr[frac], "expected a whole number", code="type")
    return numbers


def _is_date_object(values: pd.Series) -> bool:
    if values.dtype != object:
        return False
    first = values.dropna()
    return len(first) > 0 and hasattr(first.iloc[0], "year") and hasattr(first.iloc[0], "month")


def _expected_number(spec: ColumnSpec) -> str:
    if spec.kind == "day":
        return "a study day (a number of days, e.g. 0, 7, -3 or 13.5)"
    unit = f" in {spec.unit}" if spec.unit else ""
    return f"a {'whole ' if spec.kind == 'integer' else ''}number{unit}"


def _to_boolean(table: str, col: str, values: pd.Series, report: ValidationReport) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype("boolean")
    lookup = {**{t: True for t in _TRUE}, **{f: False for f in _FALSE}}
    parsed = map_unique(values.astype("string"), lambda v: lookup.get(str(v).strip().lower(), "bad"))
    is_bad = (parsed == "bad").to_numpy()
    result = parsed.mask(is_bad, None).astype("boolean")
    bad = np.flatnonzero(is_bad)
    report.add_rows(table, col, bad, values.iloc[bad], "expected true or false (also accepted: yes/no, 1/0)", code="type")
    return result


def _to_instrument(table: str, raw: pd.Series, text: pd.Series, report: ValidationReport,
                   registry: InstrumentRegistry) -> pd.Series:
    """Instrument names (``text``: stripped) as the registry's canonical names, matched lower
    cased; unknown and ambiguous names reported at their rows.

    Everything is done once per distinct value (a registry's 25 million assessments name a
    handful of instruments), and a column that already holds canonical names is returned
    as it is, not rebuilt.
    """
    codes, uniques = pd.factorize(text, use_na_sentinel=True)  # distinct values as written, in order of appearance
    lowered = pd.Series(uniques, dtype="string").str.lower()
    name_of, lowered_names = pd.factorize(lowered, use_na_sentinel=True)  # distinct lower-cased names, in order
    names = [str(v) for v in lowered_names]
    mapping = registry.canonical_name_map(names)
    canonical = [mapping.get(names[j]) for j in name_of]  # per distinct value as written

    def rows_where(per_value: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.append(per_value, False)[codes])  # a missing value (code -1) never

    unknown = rows_where(np.array([c is None for c in canonical], dtype=bool))
    report.add_rows(
        table, "instrument", unknown, raw.iloc[unknown],
        f"unknown instrument; expected one of {', '.join(registry.names())}, or register it "
        "(analysis.register_instrument or an instruments.toml beside the data)",
        code="unknown_instrument",
    )
    for j, name in enumerate(names):  # aliases naming more than one version of a scale: warned, never silent
        note = ambiguous_alias_note(name, mapping.get(name))
        if note is not None and mapping.get(name) is not None:
            pos = rows_where(name_of == j)
            report.add_rows(table, "instrument", pos, raw.iloc[pos], f"ambiguous instrument name: {note}; write the "
                            "version's own name to silence this", severity=WARNING, code="ambiguous_instrument")
    if all(c is not None and c == str(u) for c, u in zip(canonical, uniques)):
        return text.astype("string")  # every name is canonical already
    return pd.Series(pd.array(canonical, dtype="string").take(codes, allow_fill=True), index=text.index)


def _convert_extra(table: str, col: str, values: pd.Series, report: ValidationReport) -> pd.Series:
    """Further columns: numbers if every value is one, true/false if every value is one, else text.

    The same rule for CSV (all text) and Parquet (typed), so both load to identical tables.
    """
    if pd.api.types.is_bool_dtype(values):
        return values.astype("boolean")
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    if pd.api.types.is_datetime64_any_dtype(values) or _is_date_object(values):
        report.add_table_problem(
            table, f"column holds calendar dates; {anonymisation.HOW_TO_DEIDENTIFY}",
            column=col, value=str(values.dropna().iloc[0]) if values.notna().any() else None, code="calendar_date",
        )
        return values.astype("string")
    text = _to_text(values)
    present = text.dropna()
    if len(present) == 0:
        return pd.Series(np.nan, index=values.index, dtype="float64")
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.notna().all():
        return pd.to_numeric(text, errors="coerce").astype("float64")
    lower = present.str.lower()
    if lower.isin(_TRUE | _FALSE).all() and not lower.isin({"1", "0", "1.0", "0.0"}).all():
        return _to_boolean(table, col, text, report)
    return text


def _run_schema(spec: TableSpec, frame: pd.DataFrame, before: pd.DataFrame, report: ValidationReport) -> None:
    """Column rules through pandera. ``before`` is the table before conversion: a value that
    is missing only after conversion was already reported as a bad value.

    A column whose rules no value can break (one vectorised pass, :func:`_may_break_rules`)
    is left out of the pandera schema, and pandera is not run when no column is left: on a
    clean registry of millions of rows that is most of the time of these checks, and the
    problems pandera reports for the other columns are the same.
    """
    columns = {}
    for col in spec.columns:
        if col.name not in frame.columns:
            continue
        checks = []
        maximum = col.maximum
        if spec.name == "patients" and col.name == "age":
            maximum = None  # ages over 89 are the anonymisation guard's to report
        nullable = col.nullable or col.name not in spec.required_columns
        unique = col.name in spec.unique
        if not _may_break_rules(frame[col.name], col, maximum, nullable, unique):
            continue
        if col.allowed:
            checks.append(pdr.Check.isin(list(col.allowed), error=f"expected one of {', '.join(col.allowed)}"))
        if col.minimum is not None and maximum is not None:
            checks.append(pdr.Check.in_range(col.minimum, maximum, error=f"expected a value from {col.minimum:g} to {maximum:g}"))
        elif col.minimum is not None:
            checks.append(pdr.Check.ge(col.minimum, error=f"expected a value >= {col.minimum:g}"))
        elif maximum is not None:
            checks.append(pdr.Check.le(maximum, error=f"expected a value <= {maximum:g}"))
        columns[col.name] = pdr.Column(checks=checks, nullable=nullable, unique=unique, required=False)
    if not columns:
        return
    schema = pdr.DataFrameSchema(columns, strict=False, name=spec.name)
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna()]
        for (col, check), group in cases.groupby(["column", "check"], sort=False):
            positions = group["index"].astype("int64").to_numpy()
            if check == "not_nullable":
                positions = positions[before[col].isna().to_numpy()[positions]]
                message = f"required value is missing (expected {_expected_for(spec.column(col))})"
                values = None
            elif check == "field_uniqueness":
                message = f"{col} appears more than once; expected each value once"
                values = group["failure_case"]
            else:
                message = str(check)
                values = group["failure_case"]
            report.add_rows(spec.name, col, positions, values, message, code=str(check).split(" ")[0])


def _may_break_rules(values: pd.Series, col: ColumnSpec, maximum: float | None, nullable: bool, unique: bool) -> bool:
    """False only when no value of the column can fail its schema rules (missing values where
    not allowed, repeats where unique, values outside ``allowed`` or the range; pandera
    checks skip missing values, as here); True when one may, or when unsure."""
    present = values.notna().to_numpy(dtype=bool)
    if not nullable and not present.all():
        return True
    if unique and not values.dropna().is_unique:
        return True
    if col.allowed and not isin(values, col.allowed)[present].all():
        return True
    if col.minimum is not None or maximum is not None:
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            return True
        x = values.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            outside = (x < col.minimum) if col.minimum is not None else np.zeros(len(x), dtype=bool)
            if maximum is not None:
                outside |= x > maximum
        if outside.any():
            return True
    return False


def _expected_for(col: ColumnSpec) -> str:
    if col.kind in ("number", "integer", "day"):
        return _expected_number(col)
    if col.allowed:
        return f"one of {', '.join(col.allowed)}"
    return "a value"


def _warn_outside(spec: TableSpec, frame: pd.DataFrame, report: ValidationReport) -> None:
    for col in spec.columns:
        if col.name not in frame.columns or (col.warn_below is None and col.warn_above is None):
            continue
        values = frame[col.name].to_numpy(dtype=float, na_value=np.nan)
        low = col.warn_below if col.warn_below is not None else -np.inf
        high = col.warn_above if col.warn_above is not None else np.inf
        lower_ok = col.minimum if col.minimum is not None else -np.inf
        odd = np.flatnonzero((values >= lower_ok) & ((values < low) | (values > high)))
        unit = f" {col.unit}" if col.unit else ""
        report.add_rows(
            spec.name, col.name, odd, values[odd],
            f"implausible value; usually between {low:g} and {high:g}{unit} (kept; please check)",
            severity=WARNING, code="implausible",
        )


def _check_identifiers(spec: TableSpec, frame: pd.DataFrame, report: ValidationReport,
                       plain: set[str] = frozenset()) -> None:
    """An identifier is one line of text: a tab or line break in one is an error (a stray
    quote in a CSV file pulls the next line into the value). Columns in ``plain`` (printable
    ASCII only) hold none."""
    for col in spec.columns:
        if col.kind != "id" or col.name not in frame.columns or col.name in plain:
            continue
        values = frame[col.name].astype("string")
        # printable ASCII holds no tab or line break: the pattern runs on the other values only
        maybe = np.flatnonzero(_needs_normalising(values))
        pos = maybe[values.iloc[maybe].str.contains(r"[\t\n\r]", regex=True).fillna(False).to_numpy(dtype=bool)]
        report.add_rows(spec.name, col.name, pos, values.iloc[pos],
                        "identifier holds a tab or line break; expected one line of text (is a quote missing "
                        "or doubled in the file?)", code="control_character")


def _yyyymmdd(values: np.ndarray) -> np.ndarray:
    """Which numbers are whole and read as a valid calendar date yyyymmdd in 1900-2100."""
    whole = np.isfinite(values) & (values >= 19000101) & (values <= 21001231)
    whole[whole] = values[whole] == np.round(values[whole])
    out = np.zeros(len(values), dtype=bool)
    if whole.any():
        as_int = values[whole].astype(np.int64)
        parsed = pd.to_datetime(pd.Series(as_int.astype(str)), format="%Y%m%d", errors="coerce")
        out[whole] = parsed.notna().to_numpy()
    return out


def _check_study_days(spec: TableSpec, frame: pd.DataFrame, report: ValidationReport) -> None:
    """Study days within 20 years of the index date, and no calendar dates written as numbers.

    A day beyond :data:`MAX_STUDY_DAY` is refused. Where it reads as a date the message says
    so: a whole number yyyymmdd that is a valid date in 1900-2100 (``20230105``), or, when
    every day of the patient in this table lies in the Excel serial range of 1990-2100
    (32874 to 73051), an Excel date serial. A single large day beside ordinary ones is
    implausible rather than a date (the other days show the column holds study days).
    """
    day_cols = [c.name for c in spec.columns if c.kind == "day" and c.name in frame.columns]
    if not day_cols:
        return
    with np.errstate(invalid="ignore"):  # one pass per column first: on a clean table nothing more is done
        if not any((np.abs(frame[c].to_numpy(dtype=float, na_value=np.nan)) > MAX_STUDY_DAY).any() for c in day_cols):
            return
    days = np.column_stack([frame[c].to_numpy(dtype=float, na_value=np.nan) for c in day_cols])
    present = ~np.isnan(days)
    beyond = present & (np.abs(days) > MAX_STUDY_DAY)
    if not beyond.any():
        return
    lo, hi = EXCEL_SERIAL_RANGE
    in_serial = present & (days >= lo) & (days <= hi)
    if "patient_id" in frame.columns:
        patient = pd.factorize(frame["patient_id"], use_na_sentinel=False)[0]
        # a patient is "all serials" when every present day of theirs lies in the serial range
        ordinary = pd.Series((present & ~in_serial).any(axis=1)).groupby(patient).transform("any").to_numpy()
        excel_patient = ~ordinary
    else:
        excel_patient = np.zeros(len(frame), dtype=bool)
    for j, col in enumerate(day_cols):
        values = days[:, j]
        date = beyond[:, j] & _yyyymmdd(values)
        excel = beyond[:, j] & ~date & in_serial[:, j] & excel_patient
        other = beyond[:, j] & ~date & ~excel
        for mask, message, code in (
            (date, f"looks like a calendar date written as a number (yyyymmdd, e.g. 20230105 for 5 January 2023), "
                   f"not a study day; {DATE_CONVERSION_HINT}", "calendar_date"),
            (excel, f"looks like an Excel date serial (days since 1899-12-30: every day of this patient here lies "
                    f"between {lo} and {hi}, i.e. in 1990-2100), not a study day; {DATE_CONVERSION_HINT}",
             "calendar_date"),
            (other, f"implausible study day: more than 20 years ({MAX_STUDY_DAY} days) from the index date; expected "
                    f"days since the patient's index date (if the column holds dates, {DATE_CONVERSION_HINT})",
             "implausible_day"),
        ):
            pos = np.flatnonzero(mask)
            report.add_rows(spec.name, col, pos, values[pos], message, code=code)


# --- across tables -----------------------------------------------------------------------


def _check_across_tables(tables: dict[str, pd.DataFrame], report: ValidationReport, registry: InstrumentRegistry,
                         factorised: dict | None = None) -> None:
    """The checks that span rows or tables; ``factorised`` holds the tables' factorised
    patient ids (:func:`_factorised_ids`) where known: rows are then matched by their
    distinct ids (a million) instead of their ids (tens of millions)."""
    factorised = factorised or {}
    for name, frame in tables.items():
        _check_duplicate_rows(name, frame, report, factorised.get(name))
    patients = tables.get("patients")
    if patients is not None and "patient_id" in patients:
        known = patients["patient_id"]
        for name in ("sessions", "assessments", "medications"):
            frame = tables.get(name)
            if frame is None or "patient_id" not in frame:
                continue
            ids = frame["patient_id"]
            if name in factorised:
                codes, uniques = factorised[name]
                listed = np.append(_isin_distinct(uniques, known), False)[codes]
                bad = np.flatnonzero((codes >= 0) & ~listed)
            else:
                bad = np.flatnonzero(ids.notna().to_numpy() & ~isin(ids, known))
            report.add_rows(name, "patient_id", bad, ids.iloc[bad], "patient is not in the patients table", code="unknown_patient")
        sessions = tables.get("sessions")
        if sessions is not None and "patient_id" in sessions:
            # the distinct ids of the sessions are the same set as their ids
            if "sessions" in factorised:
                has = _isin_distinct(known, factorised["sessions"][1])
            else:
                has = isin(known, sessions["patient_id"])
            without = np.flatnonzero(~has & known.notna().to_numpy())
            report.add_rows(
                "patients", "patient_id", without, patients["patient_id"].iloc[without],
                "patient has no sessions (kept; outcome derivations will count it in the attrition table)",
                severity=WARNING, code="no_sessions",
            )
    if "assessments" in tables:
        _check_scores(tables["assessments"], report, registry)
    if "sessions" in tables:
        _check_doses(tables["sessions"], report)
    if "medications" in tables:
        _check_medications(tables["medications"], report)


def _isin_distinct(values, allowed) -> np.ndarray:
    """:func:`isin` of distinct ids (``values`` or ``allowed`` from ``pd.factorize``); when
    both hold the same ids in the same order (a registry's tables list their patients in the
    patients table's order) every present value is in, found by one comparison instead of a
    hash lookup."""
    values = pd.Series(values, dtype="string").reset_index(drop=True)
    allowed = pd.Series(allowed, dtype="string").reset_index(drop=True)
    if len(values) == len(allowed) and values.equals(allowed):
        return values.notna().to_numpy()
    return isin(values, allowed)


def _row_keys(frame: pd.DataFrame, ids: tuple[np.ndarray, object] | None = None) -> np.ndarray | None:
    """A 64-bit key per row, equal for rows that are equal (``DataFrame.duplicated``'s
    equality: missing equals missing), mostly different otherwise; None when no column can
    be used.

    The key is made from the numbers and flags (the bits of their float value, -0.0 as 0.0
    and every missing value as one NaN, SplitMix64-mixed) and, in its high bits, the row's
    patient (``patient_id`` factorised, Arrow's dictionary encoding; ``ids`` when already
    done): a table whose rows are grouped by patient then has keys that are sorted but
    within each patient, which a stable sort (timsort) puts in order several times faster
    than a sort of keys in random order. Other text columns are left out, which only lets
    more rows share a key.
    """
    key = None
    codes = None
    scratch = None  # one buffer for the mixing's shifted words, reused for every column
    for col in frame.columns:
        values = frame[col]
        if isinstance(values.dtype, pd.StringDtype):
            if col != "patient_id":
                continue
            if ids is None:
                ids = pd.factorize(values, use_na_sentinel=True)
            codes = ids[0]
            continue
        elif pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            x = values.to_numpy(dtype=float, na_value=np.nan) + 0.0
            x[np.isnan(x)] = np.nan
            part = x.view(np.uint64)
        else:
            continue
        if key is None:
            key, scratch = part, np.empty_like(part)  # part is a fresh array (+ 0.0 above): mixed in place
        else:
            key ^= part
        _mix64_in_place(key, scratch)
    del scratch
    if codes is None:
        return key
    patient = codes.astype(np.int64).view(np.uint64)
    patient += np.uint64(1)  # missing (-1) as 0; in place, as below: a registry's keys are 200 MB each
    bits = int(len(ids[1]) + 1).bit_length()  # the patient takes the top `bits` bits
    if key is None:
        return patient
    if bits >= 64:  # more patients than a key can hold apart from the numbers: mix them in instead
        key ^= patient
        return _mix64(key)
    patient <<= np.uint64(64 - bits)
    key >>= np.uint64(bits)
    key |= patient
    return key


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (a bijection of 64-bit words): every bit of the result depends
    on every bit of ``z`` (the bits of a float holding a small whole number are mostly zeros)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def _mix64_in_place(z: np.ndarray, scratch: np.ndarray) -> None:
    """:func:`_mix64` of ``z`` into ``z`` itself, with ``scratch`` (same shape) for the
    shifted words: the same words, without a fresh array per step (on 25 million rows each
    is 200 MB to allocate and fault in)."""
    z += np.uint64(0x9E3779B97F4A7C15)
    for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB), (31, None)):
        np.right_shift(z, np.uint64(shift), out=scratch)
        z ^= scratch
        if factor is not None:
            z *= np.uint64(factor)


def _duplicated_rows(frame: pd.DataFrame, ids: tuple[np.ndarray, object] | None = None) -> np.ndarray:
    """Positions of the rows that repeat an earlier row exactly (``frame.duplicated(keep="first")``).

    Rows are first grouped by a 64-bit row key (:func:`_row_keys`): equal rows have equal
    keys, so every duplicate and the row it repeats are among the rows whose key occurs more
    than once (found by sorting the keys), and the exact comparison runs on those rows only
    (on a registry of millions of rows, hardly any).
    """
    keys = _row_keys(frame, ids) if len(frame) else None
    if keys is None:
        return np.flatnonzero(frame.duplicated(keep="first").to_numpy())
    ordered = np.sort(keys, kind="stable")  # timsort: fast on keys sorted by patient (_row_keys)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    del ordered
    if repeated.size == 0:
        return np.zeros(0, dtype=np.int64)
    repeated = np.unique(repeated)
    # rows whose key may be a repeated one, by a table of the keys' low 24 bits (one look-up
    # per row, no search), then the exact test on those
    seen = np.zeros(1 << 24, dtype=bool)
    seen[(repeated & np.uint64(0xFFFFFF)).astype(np.intp)] = True
    maybe = np.flatnonzero(seen[(keys & np.uint64(0xFFFFFF)).astype(np.intp)])
    at = np.minimum(np.searchsorted(repeated, keys[maybe]), repeated.size - 1)
    candidates = maybe[repeated[at] == keys[maybe]]
    return candidates[frame.iloc[candidates].duplicated(keep="first").to_numpy()]


def _check_duplicate_rows(name: str, frame: pd.DataFrame, report: ValidationReport,
                          ids: tuple[np.ndarray, object] | None = None) -> None:
    dup = _duplicated_rows(frame, ids)
    if dup.size:
        first = frame.iloc[dup]
        shown = first.get("patient_id", pd.Series([None] * len(dup)))
        report.add_rows(name, None, dup, shown, "row is an exact duplicate of an earlier row", code="duplicate_row")


def _check_scores(frame: pd.DataFrame, report: ValidationReport, registry: InstrumentRegistry) -> None:
    if not {"instrument", "score"} <= set(frame.columns):
        return
    instrument = frame["instrument"]
    score = frame["score"].to_numpy(dtype=float, na_value=np.nan)
    item_cols = [c for c in frame.columns if c.startswith("item_") and c[5:].isdigit()]
    codes, uniques = pd.factorize(instrument, use_na_sentinel=True)  # distinct names in order of appearance
    for k, name in enumerate(uniques):
        inst = registry.get(str(name))
        rows = codes == k
        bad = np.flatnonzero(rows & ((score < inst.min_score) | (score > inst.max_score)))
        report.add_rows(
            "assessments", "score", bad, score[bad],
            f"{inst.name} total score outside its range; expected {inst.min_score:g} to {inst.max_score:g}",
            code="score_range",
        )
        for col in item_cols:
            values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            number = int(col[5:])
            present = rows & ~np.isnan(values)
            if inst.n_items is not None and number > inst.n_items:
                beyond = np.flatnonzero(present)
                report.add_rows(
                    "assessments", col, beyond, values[beyond],
                    f"{inst.name} has {inst.n_items} items; this item does not exist", code="item_range",
                )
            elif inst.item_max is not None:
                bad = np.flatnonzero(present & ((values < 0) | (values > inst.item_max)))
                report.add_rows(
                    "assessments", col, bad, values[bad],
                    f"{inst.name} item score outside its range; expected 0 to {inst.item_max}", code="item_range",
                )


def _check_doses(frame: pd.DataFrame, report: ValidationReport) -> None:
    dose_cols = [c for c in ("dose_mg_per_kg", "dose_mg") if c in frame.columns]
    if not dose_cols:
        return
    none = np.ones(len(frame), dtype=bool)
    for col in dose_cols:
        none &= frame[col].isna().to_numpy()
    pos = np.flatnonzero(none)
    report.add_rows(
        "sessions", " / ".join(dose_cols), pos, None, "dose not recorded (kept; dose analyses will exclude this session)",
        severity=WARNING, code="dose_missing",
    )
    if "dose_mg" in frame.columns and "route" in frame.columns:
        nasal = (frame["route"] == "intranasal").to_numpy(dtype=bool, na_value=False)
        dose = frame["dose_mg"].to_numpy(dtype=float, na_value=np.nan)
        odd = np.flatnonzero(nasal & (dose > 112))
        report.add_rows(
            "sessions", "dose_mg", odd, dose[odd],
            "implausible intranasal dose; esketamine is given as 28, 56 or 84 mg (kept; please check)",
            severity=WARNING, code="implausible",
        )


def _check_medications(frame: pd.DataFrame, report: ValidationReport) -> None:
    if {"start_day", "end_day"} <= set(frame.columns):
        start = frame["start_day"].to_numpy(dtype=float, na_value=np.nan)
        end = frame["end_day"].to_numpy(dtype=float, na_value=np.nan)
        bad = np.flatnonzero(end < start)
        report.add_rows(
            "medications", "end_day", bad, end[bad],
            "end_day is before start_day; expected end_day >= start_day (empty if ongoing)", code="end_before_start",
        )


def fill_medication_classes(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill empty ``drug_class`` from the built-in map and add ``dose_dze_mg`` for benzodiazepines."""
    frame = frame.copy()
    known = drug_class_of(frame["drug"])
    if "drug_class" in frame.columns:
        given = frame["drug_class"].astype("string").str.strip().str.lower()
        frame["drug_class"] = given.fillna(known.astype("string"))
    else:
        frame["drug_class"] = known.astype("string")
    if "dose_mg" in frame.columns:
        factor = frame["drug"].astype("string").str.strip().str.lower().map(DIAZEPAM_EQUIVALENT_PER_MG).astype(float)
        frame["dose_dze_mg"] = frame["dose_mg"].astype(float) * factor
    else:
        frame["dose_dze_mg"] = np.nan
    return frame
