"""The anonymisation guard: refuse data that carry direct identifiers.

Data for this package are pseudonymised exports (DESIGN.md section 3): pseudonymous ids,
study days instead of calendar dates, ages over 89 top-coded to 90. The guard refuses:

* columns whose names say they hold a direct identifier (name, e-mail, phone, address,
  MRN, SSN or national id, date of birth) or a calendar date;
* values that look like e-mail addresses, phone numbers or calendar dates in text columns;
* ages over 89 that are not top-coded.

It is a guard, not a proof of anonymity: it catches the common mistakes in exports.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .problems import ValidationReport

__all__ = ["HOW_TO_DEIDENTIFY", "check_column_names", "check_identifying_values", "looks_like_calendar_date"]

HOW_TO_DEIDENTIFY = (
    "remove direct identifiers before loading: drop names, contact details and record numbers, "
    "replace ids with pseudonyms, give times as study days since a per-patient index date, "
    "and top-code ages over 89 to 90"
)

# name pattern -> what it is; matched against the column name split into words
_IDENTIFIER_NAMES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), what)
    for p, what in (
        (r"^(first|last|given|family|middle|full|patient|sur|maiden)?_?name$|^surname$|^forename$|^initials$", "a person's name"),
        (r"(^|_)e_?mail(_|$)|^email_?address$", "an e-mail address"),
        (r"(^|_)(phone|telephone|mobile|cell|fax)(_|$)|^tel$", "a phone number"),
        (r"(^|_)(address|street|postcode|postal_code|zip|zip_code|city|town)(_|$)", "an address"),
        (r"(^|_)(mrn|medical_record|medical_record_number|record_number|hospital_number|chart_number)(_|$)",
         "a medical record number"),
        (r"(^|_)(ssn|social_security|social_security_number|nhs_number|nhs_no|national_id|national_insurance|"
         r"passport|insurance_number|health_card)(_|$)", "a national identifier"),
        (r"(^|_)(dob|date_of_birth|birth_date|birthdate|birthday|birth_dt)(_|$)", "a date of birth"),
        (r"(^|_)(date|datetime|timestamp|dt)$|^date_|_date_", "a calendar date"),
        (r"(^|_)(ip_address|ip)$", "an IP address"),
    )
)

_EMAIL = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"
_PHONE = r"\+?\(?\d{2,4}\)?[\s.\-]\d{3,4}[\s.\-]\d{3,4}"
_DATE = (
    r"(19|20)\d{2}[-/.](0?[1-9]|1[0-2])[-/.](0?[1-9]|[12]\d|3[01])([ T]\d{1,2}:\d{2}(:\d{2})?)?"
    r"|(0?[1-9]|[12]\d|3[01])[-/.](0?[1-9]|1[0-2])[-/.](19|20)\d{2}"
    r"|(0?[1-9]|1[0-2])[-/.](0?[1-9]|[12]\d|3[01])[-/.](19|20)\d{2}"
    r"|\d{1,2}[ \-](jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*[ \-,]+(19|20)\d{2}"
)
_WHOLE = {name: re.compile(rf"^\s*(?:{p})\s*$", re.IGNORECASE) for name, p in
          (("email", _EMAIL), ("phone", _PHONE), ("date", _DATE))}


def _words(column: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", column.strip().lower()).strip("_")


def identifier_kind(column: str) -> str | None:
    """What direct identifier a column name suggests, or None.

    Examples
    --------
    >>> from analysis.anonymisation import identifier_kind
    >>> identifier_kind("Date of Birth"), identifier_kind("prior_treatment_failures")
    ('a date of birth', None)
    """
    words = _words(column)
    for pattern, what in _IDENTIFIER_NAMES:
        if pattern.search(words):
            return what
    return None


def check_column_names(table: str, columns: list[str], report: ValidationReport) -> list[str]:
    """Report identifier-like column names; return those columns (they are not loaded)."""
    refused = []
    for col in columns:
        what = identifier_kind(col)
        if what is not None:
            report.add_table_problem(
                table, f"column looks like it holds {what}, a direct identifier; refused: {HOW_TO_DEIDENTIFY}",
                column=col, line=1, code="identifier_column",
            )
            refused.append(col)
    return refused


def looks_like_calendar_date(values: pd.Series) -> np.ndarray:
    """Boolean array: which text values look like calendar dates (2024-03-01, 01/03/2024, 1 Mar 2024)."""
    codes, uniques = pd.factorize(values.astype("string"))
    hit_unique = np.array([bool(_WHOLE["date"].match(str(u))) for u in uniques] + [False])
    return hit_unique[codes]


def check_identifying_values(table: str, frame: pd.DataFrame, text_columns: list[str], report: ValidationReport) -> None:
    """Report text values that look like e-mail addresses, phone numbers or calendar dates."""
    for col in text_columns:
        values = frame[col]
        if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
            continue
        # test each distinct value once: ids and codes repeat across a million rows
        codes, uniques = pd.factorize(values.astype("string"))
        for kind, what in (("email", "an e-mail address"), ("phone", "a phone number"), ("date", "a calendar date")):
            pattern = _WHOLE[kind]
            hit_unique = np.array([bool(pattern.match(str(u))) for u in uniques] + [False])
            hit = hit_unique[codes]
            if hit.any():
                pos = np.flatnonzero(hit)
                report.add_rows(
                    table, col, pos, values.iloc[pos],
                    f"value looks like {what}, which identifies a person; refused: {HOW_TO_DEIDENTIFY}",
                    code="identifier_value",
                )


def check_top_coded_age(table: str, age: pd.Series, report: ValidationReport) -> None:
    """Ages over 89 must be recorded as 90 (HIPAA Safe Harbor top-coding)."""
    values = age.to_numpy(dtype=float, na_value=np.nan)
    bad = np.flatnonzero((values > 89) & (values != 90))
    report.add_rows(
        table, "age", bad, values[bad],
        "age over 89 is identifying; top-code every age over 89 to 90",
        code="age_not_top_coded",
    )
