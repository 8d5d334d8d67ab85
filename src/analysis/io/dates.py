"""Calendar dates and datetimes to study days against a per-patient index.

A study day is a difference of calendar dates (format v1): the index day is 0, the day
before -1, the day after 1. Datetimes count by their calendar date, so a questionnaire
filled in at 09:00 and an infusion at 10:00 on the same day share the day (and format v1
reads the questionnaire as taken before the session, as clinics do). The time of day is
not kept; the log says so.

Dates are read as ISO 8601 (``2023-01-05``, ``2023-01-05 10:30``, ``2023-01-05T10:30:00``),
as REDCap's raw export and most databases write them, unless a ``date_format`` (a
``strftime`` pattern such as ``%d/%m/%Y``) is given: ``01/05/2023`` is refused by default
rather than guessed as 1 May or 5 January.

Examples
--------
>>> import pandas as pd
>>> from analysis.io.dates import parse_dates, study_days
>>> dates, bad = parse_dates(pd.Series(["2023-01-05", "2023-01-04 23:59", "05/01/2023"]))
>>> bad.tolist()
[2]
>>> study_days(dates, pd.Series(pd.to_datetime(["2023-01-05"] * 3))).tolist()
[0.0, -1.0, nan]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ISO_DATE", "parse_dates", "study_days", "INDEX_RULES", "describe_index_rule"]

#: what the default parser reads
ISO_DATE = "an ISO 8601 date such as 2023-01-05 (or a datetime such as 2023-01-05 10:30)"
_ISO = r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"

#: the index rules the conversion knows, besides a patients column
INDEX_RULES = {"first_session": "the patient's first ketamine or esketamine session"}


def parse_dates(values: pd.Series, *, date_format: str | None = None) -> tuple[pd.Series, np.ndarray]:
    """Parse dates (text or datetime); the parsed calendar dates and the positions that failed.

    Missing values stay missing and are not failures. Time of day and time zones are dropped
    (the calendar date as written is kept).
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        out = values.dt.tz_localize(None) if getattr(values.dt, "tz", None) is not None else values
        return out.dt.normalize().astype("datetime64[ns]"), np.array([], dtype=np.int64)
    text = values.astype("string").str.strip()
    text = text.mask(text == "", pd.NA)
    present = text.notna().to_numpy()
    if date_format is None:
        ok = text.str.match(_ISO).fillna(False).to_numpy(dtype=bool)
        # keep the calendar date as written: drop the time and any zone before parsing
        parsed = pd.to_datetime(text.where(ok).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    else:
        parsed = pd.to_datetime(text, format=date_format, errors="coerce")
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
    bad = np.flatnonzero(present & parsed.isna().to_numpy())
    return parsed.dt.normalize().astype("datetime64[ns]"), bad


def study_days(dates: pd.Series, index_dates: pd.Series) -> pd.Series:
    """Days from each row's index date to its date (index day 0, the day before -1)."""
    delta = pd.to_datetime(dates).to_numpy(dtype="datetime64[D]") - pd.to_datetime(index_dates).to_numpy(dtype="datetime64[D]")
    days = delta.astype("timedelta64[D]").astype("float64")
    days[np.isnat(delta)] = np.nan
    return pd.Series(days, index=dates.index)


def describe_index_rule(index: str) -> str:
    """The index rule in words, for the log.

    Examples
    --------
    >>> from analysis.io.dates import describe_index_rule
    >>> describe_index_rule("consent_date")
    "study day 0 is each patient's 'consent_date' (from the patients table); days count calendar dates"
    """
    what = INDEX_RULES.get(index, f"each patient's {index!r} (from the patients table)")
    if index in INDEX_RULES:
        what = f"the day of {what}"
    return f"study day 0 is {what}; days count calendar dates"
