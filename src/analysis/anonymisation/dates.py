"""Calendar dates in text and in numbers.

Rule: Safe Harbor item (C) removes every element of a date (except the year) directly
related to a person: birth, admission, discharge, death, visit dates. Data format v1 gives
times as study days instead, so any calendar date in a table is an identifier.

Formats found (the common ones of clinical exports and of prose):

* ISO 8601 and its relatives: ``2023-01-05``, ``2023/01/05``, ``2023.01.05``, with a time
  (``T`` or a space), seconds, fractions and a zone: ``2023-01-05T10:15:30.123456+01:00``,
  ``2023-01-05 10:15Z``; compact ``20230105`` and ``20230105T101530Z`` (a real calendar
  date, years 1900-2099);
* day-month-year and month-day-year with ``/``, ``.`` or ``-``: ``05/01/2023``,
  ``5.1.2023``, ``01-05-2023``, and ``05/01/23`` with ``/``;
* month names, English, full or abbreviated, any case: ``5 January 2023``, ``5th Jan 2023``,
  ``05-JAN-2023``, ``05JAN2023`` (SAS ``DATE9``), ``Jan 5, 2023``, ``January 2023``, and
  without a year when the month is written in full with a capital: ``5 January``,
  ``January 5``.

Not taken for dates: years alone (Safe Harbor keeps them), ``2023-01`` (also a range of
years), times of day alone, score ranges (``0-27``), fractions and blood pressures
(``120/80``), and dates written as Excel serial numbers (44931), which
:mod:`analysis.validation` recognises in study-day columns.

Examples
--------
>>> from analysis.anonymisation.dates import find_dates
>>> find_dates("seen 2023-01-05T10:15:30.5+01:00, again on Jan 5, 2023 and 5/1/2023")
['2023-01-05T10:15:30.5+01:00', 'Jan 5, 2023', '5/1/2023']
>>> find_dates("PHQ-9 17 of 27 on day 14, 0.5 mg/kg over 40 min, BP 120/80")
[]
"""

from __future__ import annotations

import datetime as _dt
import re

import numpy as np
import pandas as pd

__all__ = ["find_dates", "looks_like_calendar_date", "is_yyyymmdd"]

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_FULL_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_YEAR = r"(?:19|20)\d{2}"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MON = r"(?:0?[1-9]|1[0-2])"
_ORD = r"(?:st|nd|rd|th)?"
_TIME = (r"(?:(?:T|\s)(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d{1,9})?)?"
         r"(?:\s?(?:Z|UTC|GMT|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?))?)?")

_PATTERNS = [
    # ISO with separators, optional time
    re.compile(rf"(?<![\d./-]){_YEAR}([-/.]){_MON}\1{_DAY}{_TIME}(?![\d])"),
    # compact ISO date and datetime (checked to be a real date below)
    re.compile(r"(?<![\d])(?<!\d[.,])(?P<ymd>(?:19|20)\d{6})(?:T\d{2}(?::?\d{2}){1,2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?"
               r"(?!\d|[.,]\d)"),
    # d/m/y, m/d/y (four-digit year; two-digit year only with "/")
    re.compile(rf"(?<![\d./-])\d{{1,2}}([/.-])\d{{1,2}}\1{_YEAR}{_TIME}(?![\d])"),
    re.compile(r"(?<![\d./-])\d{1,2}/\d{1,2}/\d{2}(?![\d/-]|\.\d)"),
    # 5 January 2023, 5th Jan 2023, 05-JAN-2023, 05JAN2023, 5 Jan 23
    re.compile(rf"(?<![\w]){_DAY}{_ORD}(?:\s+of)?[\s/-]*{_MONTH}\.?[\s/,-]*(?:{_YEAR}|'?\d{{2}})(?![\w])", re.I),
    # Jan 5, 2023; January 5th 2023
    re.compile(rf"(?<![\w]){_MONTH}\.?\s+{_DAY}{_ORD},?\s+{_YEAR}(?![\w])", re.I),
    # January 2023
    re.compile(rf"(?<![\w]){_MONTH}\.?,?\s+{_YEAR}(?![\w])", re.I),
    # 5 January, January 5 (month in full, capitalised)
    re.compile(rf"(?<![\w]){_DAY}{_ORD}\s+(?:of\s+)?{_FULL_MONTH}(?![\w])"),
    re.compile(rf"(?<![\w]){_FULL_MONTH}\s+{_DAY}{_ORD}(?![\w])"),
]


def _real_yyyymmdd(text: str) -> bool:
    try:
        _dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return True


def _valid_dmy(text: str) -> bool:
    """A d/m/y or m/d/y match is a date when one of the two readings is a real day and month."""
    parts = re.split(r"[/.-]", text.split()[0].split("T")[0])
    a, b = int(parts[0]), int(parts[1])
    return (1 <= a <= 31 and 1 <= b <= 12) or (1 <= a <= 12 and 1 <= b <= 31)


def find_spans(text: str) -> list[tuple[int, int]]:
    """Start and end of every date in ``text``, left to right, not overlapping."""
    spans: list[tuple[int, int]] = []
    for i, pattern in enumerate(_PATTERNS):
        for m in pattern.finditer(text):
            if i == 1 and not _real_yyyymmdd(m.group("ymd")):
                continue
            if i in (2, 3) and not _valid_dmy(m.group(0)):
                continue
            s, e = m.span()
            if not any(s < e2 and s2 < e for s2, e2 in spans):
                spans.append((s, e))
    return sorted(spans)


def find_dates(text: str) -> list[str]:
    """The calendar dates written in ``text`` (see the module docstring for the formats)."""
    return [text[s:e] for s, e in find_spans(text)]


def _whole_date(text: str) -> bool:
    stripped = text.strip()
    return any(s == 0 and e == len(stripped) for s, e in find_spans(stripped))


def looks_like_calendar_date(values: pd.Series) -> np.ndarray:
    """Boolean array: which text values are calendar dates (the whole value, in any format above).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.anonymisation import looks_like_calendar_date
    >>> looks_like_calendar_date(pd.Series(["2024-03-01", "three", "Jan 5, 2023", "20230105", None])).tolist()
    [True, False, True, True, False]
    """
    codes, uniques = pd.factorize(values.astype("string"))
    hit_unique = np.array([_whole_date(str(u)) for u in uniques] + [False], dtype=bool)
    return hit_unique[codes]


def is_yyyymmdd(numbers: np.ndarray) -> np.ndarray:
    """Boolean array: which numbers are whole numbers that read as a real date ``yyyymmdd`` (1900-2099).

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.anonymisation.dates import is_yyyymmdd
    >>> is_yyyymmdd(np.array([20230105.0, 20231345.0, 19800105.0, 7.0, np.nan])).tolist()
    [True, False, True, False, False]
    """
    x = np.asarray(numbers, dtype=float)
    ok = np.isfinite(x) & (x >= 19000101) & (x <= 20991231) & (x == np.round(x))
    n = np.where(ok, x, 19000101).astype(np.int64)
    year, month, day = n // 10000, n // 100 % 100, n % 100
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_length = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)] + (leap & (month == 2))
    return ok & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_length)
