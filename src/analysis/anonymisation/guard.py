"""The guard's checks on a table: each adds its problems to a validation report.

:mod:`analysis.validation` calls, for every table:

1. :func:`check_column_names` on the header: columns named like an identifier are refused
   and not loaded (:mod:`analysis.anonymisation.names`); so are columns whose *name* is an
   identifier (a wide export with an e-mail address or a date as a column name);
2. :func:`check_identifying_values` on the typed table: every text column is searched for
   identifiers (:mod:`analysis.anonymisation.values`); patient ids and other key columns
   must be pseudonyms; free-text columns are refused unless allowed
   (:mod:`analysis.anonymisation.free_text`); further numeric columns must hold no second
   age over 89, no ``yyyymmdd`` dates and no record or phone numbers;
3. :func:`check_top_coded_age` on ``patients.age``: ages over 89 must be 90 (Safe Harbor (C)).

Every problem names the table, the line (or row), the column and the value, the value
masked where it is an identifier (:func:`analysis.anonymisation.masking.mask`), says which
Safe Harbor item it falls under and how to de-identify it.

Examples
--------
>>> import pandas as pd
>>> from analysis.anonymisation import check_identifying_values
>>> from analysis.problems import ValidationReport
>>> report = ValidationReport("demo")
>>> frame = pd.DataFrame({"patient_id": ["P01", "12345678"], "referral": ["GP", "Dr. Patel"]}, dtype="string")
>>> check_identifying_values("patients", frame, ["referral"], report)
>>> for p in report.problems():
...     print(p.column, repr(p.value), p.message[:40])
referral 'D***l' value is or contains a person's name (sh
patient_id '1***8' patient_id looks like a medical record n
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..problems import ValidationReport
from ..schema import TABLES
from . import dates, names, phones
from .free_text import free_text_reason
from .kinds import HOW_TO_DEIDENTIFY, KINDS, REKEY
from .masking import mask
from .values import PLAIN_ID, Finding, find_identifiers, find_in_id

__all__ = ["check_column_names", "check_identifying_values", "check_top_coded_age"]

#: RE2 pattern (pyarrow) for ids worth a closer look; a pseudonym such as P0001 fails it at once
_ID_SUSPECT = (r"[@\s:/,]|\d\.\d|(?:\d\D{0,3}){7}|[A-Z]{2}\d{6}[A-D]|www\.|"
               r"(?i:\d(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))")


def _safe_harbor(key: str) -> str:
    """``HIPAA Safe Harbor item D`` for the kind's item of 45 CFR 164.514(b)(2)(i)."""
    return f"HIPAA Safe Harbor item {KINDS[key].hipaa[1]}"


def check_column_names(table: str, columns: list[str], report: ValidationReport) -> list[str]:
    """Report identifier-like column names; return those columns (they are not loaded).

    Parameters
    ----------
    table : str
        The table the columns belong to (for the messages).
    columns : list of str
        The column names, as in the file's header.
    report : ValidationReport
        Where the problems go.

    Returns
    -------
    list of str
        The refused columns.

    Examples
    --------
    >>> from analysis.anonymisation import check_column_names
    >>> from analysis.problems import ValidationReport
    >>> report = ValidationReport()
    >>> check_column_names("patients", ["patient_id", "DateOfBirth", "zipcode", "site"], report)
    ['DateOfBirth', 'zipcode']
    >>> print(report.problems()[0].message[:68])
    column name says it holds a date of birth, a direct identifier (HIPA
    """
    refused = []
    for col in columns:
        key = names.identifier_key(str(col))
        if key is not None:
            kind = KINDS[key]
            report.add_table_problem(
                table, f"column name says it holds {kind.label}, a direct identifier ({_safe_harbor(key)}); "
                f"the column is refused and not loaded: {kind.advice}; {HOW_TO_DEIDENTIFY}",
                column=col, line=1, code="identifier_column",
            )
            refused.append(col)
            continue
        found = find_identifiers(str(col))
        if found:
            kind = KINDS[found[0].kind]
            report.add_table_problem(
                table, f"column name is or contains {kind.label} (shown masked), a direct identifier "
                f"({_safe_harbor(kind.key)}); a wide export that names columns after patients, contacts or dates "
                f"must be turned into rows keyed by pseudonyms and study days; the column is refused: {HOW_TO_DEIDENTIFY}",
                column=mask(col), value=mask(found[0].text), line=1, code="identifier_column",
            )
            refused.append(col)
    return refused


def _report_findings(table: str, column: str, codes: np.ndarray, n_distinct: int,
                     found: dict[int, list[Finding]], report: ValidationReport, message_for) -> None:
    """One problem per row and kind: the rows whose distinct value holds that kind
    (``found``: the findings by distinct value, for the values that have any)."""
    by_kind: dict[str, np.ndarray] = {}
    for u, findings in found.items():
        for f in findings:
            shown = by_kind.setdefault(f.kind, np.full(n_distinct + 1, None, dtype=object))
            if shown[u] is None:
                shown[u] = mask(f.text)
    for key, shown in by_kind.items():
        hit = np.array([s is not None for s in shown], dtype=bool)[codes]
        pos = np.flatnonzero(hit)
        report.add_rows(table, column, pos, shown[codes[pos]], message_for(key), code="identifier_value")


def _text_message(key: str) -> str:
    kind = KINDS[key]
    return (f"value is or contains {kind.label} (shown masked), a direct identifier ({_safe_harbor(key)}); "
            f"{kind.advice} (docs/anonymisation.md)")


def _id_message(column: str):
    def message(key: str) -> str:
        kind = KINDS[key]
        what = "a medical record number (8 or more digits)" if key == "mrn" else kind.label
        return (f"{column} looks like {what} (shown masked), not a pseudonym ({_safe_harbor(key)}); {REKEY}")
    return message


def _check_text_column(table: str, col: str, values: pd.Series, report: ValidationReport, allowed: set[str],
                       factorised: tuple | None = None) -> None:
    codes, uniques = factorised if factorised is not None else pd.factorize(values.astype("string"))
    uniques = pd.Series(uniques, dtype="string")
    if len(uniques) == 0:
        return
    is_key = col == "patient_id" or names.is_id_column(col)
    if is_key:
        array = pa.array(uniques, type=pa.large_string())
        # find_in_id's own first test, for every distinct id at once: plain ids (P0000001)
        # hold nothing, and a registry's million of them would each cost a Python call
        plain = pc.match_substring_regex(array, f"^(?:{PLAIN_ID.pattern})$")
        suspect = pc.and_(pc.match_substring_regex(array, _ID_SUSPECT), pc.invert(plain))
        suspect = suspect.to_numpy(zero_copy_only=False)
        found = {int(u): f for u in np.flatnonzero(suspect) if (f := find_in_id(str(uniques.iat[u])))}
        _report_findings(table, col, codes, len(uniques), found, report, _id_message(col))
        return
    reason = free_text_reason(col, values)
    if reason is not None and col not in allowed:
        report.add_table_problem(
            table, f"column holds free text: {reason}; free text can carry names and other identifiers that no "
            "check finds reliably, so it is refused: drop the column or code it into categories; once it has been "
            f"checked by hand, allow it with allow_free_text=[{col!r}] (it is still searched for e-mail addresses, "
            "phone numbers, dates, record numbers, IP addresses and URLs)",
            column=col, line=1, code="free_text",
        )
    coding = names.is_coding_column(col)
    found = {}
    for u, value in enumerate(uniques.tolist()):
        f = find_identifiers(str(value))
        if coding:
            f = [x for x in f if x.kind != "mrn"]
        if f:
            found[u] = f
    _report_findings(table, col, codes, len(uniques), found, report, _text_message)


def _check_numeric_column(table: str, col: str, values: pd.Series, report: ValidationReport) -> None:
    x = values.to_numpy(dtype=float, na_value=np.nan)
    present = np.isfinite(x)
    if not present.any():
        return
    if names.is_age_column(col):
        bad = np.flatnonzero(present & (x > 89) & (x != 90))
        report.add_rows(table, col, bad, x[bad],
                        "age over 89 is identifying (HIPAA Safe Harbor item C); top-code every age "
                        "over 89 to 90", code="age_not_top_coded")
        return
    whole = present & (x == np.round(x))
    is_date = dates.is_yyyymmdd(x)
    if is_date.sum() >= 0.8 * present.sum():
        pos = np.flatnonzero(is_date)
        report.add_rows(table, col, pos, [mask(str(int(v))) for v in x[pos[:20]]],
                        f"value is a calendar date written as yyyymmdd (shown masked), a direct identifier "
                        f"({_safe_harbor('date')}); {KINDS['date'].advice} (docs/anonymisation.md)",
                        code="calendar_date")
        return
    if names.is_coding_column(col):
        return
    long = whole & (np.abs(x) >= 1e7) & (np.abs(x) < 1e15)
    key_like = names.is_id_column(col)
    if long.any() and (key_like or long.sum() >= 0.8 * present.sum()):
        pos = np.flatnonzero(long)
        shown = [mask(str(int(v))) for v in x[pos[:20]]]
        sample = str(int(x[pos[0]]))
        # a phone number stored as a number has lost its leading 0 (07700 900123 -> 7700900123)
        phone = phones.is_phone_number(sample) or (len(sample) >= 9 and phones.is_phone_number("0" + sample))
        what = KINDS["phone"].label if phone else f"{KINDS['mrn'].label} or other record number (8 or more digits)"
        advice = REKEY if key_like else KINDS["mrn"].advice
        report.add_rows(table, col, pos, shown,
                        f"value looks like {what} (shown masked), a direct identifier "
                        f"({_safe_harbor('phone' if phone else 'mrn')}); {advice}", code="identifier_value")


def check_identifying_values(table: str, frame: pd.DataFrame, text_columns: list[str], report: ValidationReport,
                             *, allow_free_text: Collection[str] = (),
                             factorised: Mapping[str, tuple] | None = None) -> None:
    """Report identifiers in the values of a typed table.

    Parameters
    ----------
    table : str
        The table's name (``patients``, ``sessions``, ...).
    frame : DataFrame
        The table after conversion to the types of data format v1.
    text_columns : list of str
        Text columns to search; every other text column of ``frame`` is searched too (drug
        names, categories), so the list only fixes the order.
    report : ValidationReport
        Where the problems go.
    allow_free_text : collection of str, default ()
        Free-text columns the data owner has checked by hand: they are not refused as free
        text, but still searched for e-mail addresses, phone numbers, dates, record numbers,
        IP addresses, URLs and marked names.
    factorised : mapping of str to (codes, uniques), optional
        Columns already factorised as ``pd.factorize(frame[col].astype("string"))`` gives
        them (the loader's patient ids, used by several checks): not factorised again.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.anonymisation import check_identifying_values
    >>> from analysis.problems import ValidationReport
    >>> frame = pd.DataFrame({"patient_id": ["P01", "P02"],
    ...                       "notes": ["tolerated well", "call Jane Doe on 07700 900123"]})
    >>> report = ValidationReport()
    >>> check_identifying_values("patients", frame.astype("string"), ["notes"], report)
    >>> sorted({p.code for p in report.problems()})
    ['free_text', 'identifier_value']
    >>> report = ValidationReport()
    >>> check_identifying_values("patients", frame.astype("string"), ["notes"], report, allow_free_text=["notes"])
    >>> [(p.row, p.value) for p in report.problems()]
    [(2, 'J***e'), (2, '0***3')]
    """
    allowed = {str(c) for c in allow_free_text}
    schema_columns = {c.name for c in TABLES[table].columns} if table in TABLES else set()
    ordered = list(dict.fromkeys([*text_columns, *frame.columns]))
    for col in ordered:
        if col not in frame.columns:
            continue
        values = frame[col]
        if pd.api.types.is_bool_dtype(values):
            continue
        if pd.api.types.is_string_dtype(values) or values.dtype == object:
            _check_text_column(table, str(col), values, report, allowed, (factorised or {}).get(col))
        elif pd.api.types.is_numeric_dtype(values) and col not in schema_columns:
            _check_numeric_column(table, str(col), values, report)


def check_top_coded_age(table: str, age: pd.Series, report: ValidationReport) -> None:
    """Ages over 89 must be recorded as 90 (HIPAA Safe Harbor (C): ages over 89 are aggregated into 90 or older).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.anonymisation import check_top_coded_age
    >>> from analysis.problems import ValidationReport
    >>> report = ValidationReport()
    >>> check_top_coded_age("patients", pd.Series([47, 90, 93], name="age"), report)
    >>> [(p.row, float(p.value)) for p in report.problems()]
    [(3, 93.0)]
    """
    column = age.name if isinstance(age.name, str) else "age"
    values = age.to_numpy(dtype=float, na_value=np.nan)
    bad = np.flatnonzero((values > 89) & (values != 90))
    report.add_rows(
        table, column, bad, values[bad],
        "age over 89 is identifying; top-code every age over 89 to 90",
        code="age_not_top_coded",
    )
