"""Near-miss hints for ``validate``: data that are almost format v1, and how to import them.

When a table holds what an export holds rather than what format v1 asks for, the validator's
errors say what is wrong; these hints say what fixes it, as the mapping line or the import
command (``docs/import.md``):

* a key column such as ``record_id``, ``subject_id``, ``USUBJID`` or ``person_id`` where
  ``patient_id`` is expected (with ``redcap_event_name`` beside it: the REDCap import);
* a wide column of an instrument's totals (``phq9_total``, ``GAD7 score``) instead of rows of
  ``instrument`` and ``score``;
* calendar dates in ``day`` (or a date column such as ``visit_date`` instead of ``day``).

Only the header and the first values of ``day`` are read, so the hints cost nothing on a
large table.

Examples
--------
>>> import pandas as pd
>>> from analysis.io.hints import near_miss_hints
>>> frame = pd.DataFrame({"record_id": ["1"], "visit_date": ["2024-03-01"], "phq9_total": ["12"]})
>>> for column, hint in near_miss_hints("assessments", frame):
...     print(column, "|", hint[:72])
record_id | 'record_id' looks like the patient key: rename it to patient_id, or impo
phq9_total | 'phq9_total' looks like a wide column of PHQ-9 totals; format v1 has one
visit_date | 'visit_date' holds calendar dates; format v1 has study days in 'day': im
"""

from __future__ import annotations

import re

import pandas as pd

from ..anonymisation import looks_like_calendar_date
from ..anonymisation.names import identifier_key

__all__ = ["near_miss_hints", "KEY_COLUMNS"]

#: column names (lower case) that hold the patient key in common exports
KEY_COLUMNS = ("record_id", "subject_id", "subjid", "usubjid", "person_id", "patient", "patientid", "pid",
               "study_id", "participant_id", "mrn", "patient_key")
_MAPPED = "ketamine-outcomes import mapped FILE... --mapping MAP.toml"
_REDCAP = "ketamine-outcomes import redcap RECORDS.csv --dictionary DICTIONARY.csv --mapping MAP.toml"


def _wide_instrument(column: str) -> str | None:
    """The instrument a column of totals is named after (``phq9_total`` -> PHQ-9), or None."""
    if not re.search(r"(total|score|sum)$", column.strip().lower()):
        return None
    from .vocabulary import default_vocabulary

    found = default_vocabulary().lookup("instrument", re.sub(r"[_.]+", " ", column))
    return found.value


def near_miss_hints(table: str, frame: pd.DataFrame) -> list[tuple[str | None, str]]:
    """(column, hint) for each near miss of ``frame`` as format v1's ``table``."""
    hints: list[tuple[str | None, str]] = []
    columns = [str(c) for c in frame.columns]
    lower = {c.lower(): c for c in columns}
    command = _REDCAP if "redcap_event_name" in lower or "redcap_repeat_instrument" in lower else _MAPPED
    if "patient_id" not in columns:
        for key in KEY_COLUMNS:
            if key in lower:
                col = lower[key]
                hints.append((col, f"{col!r} looks like the patient key: rename it to patient_id, or import the export "
                                   f"with `{command}` and, in the mapping file, `[source] key = \"{col}\"`"))
                break
    for col in columns:
        instrument = _wide_instrument(col)
        if instrument is not None:
            hints.append((col, f"{col!r} looks like a wide column of {instrument} totals; format v1 has one row per "
                               f"assessment (instrument, score): import with `{command}` and, in the mapping file, "
                               f"`[assessments] wide = {{ \"{instrument}\" = \"{col}\" }}`"))
    for col in columns:
        if col in ("day", "start_day", "end_day"):
            values = frame[col].head(2000).dropna().head(200).astype("string")  # the first values tell
            if len(values) and looks_like_calendar_date(values).mean() >= 0.5:
                target = col.replace("day", "date")
                hints.append((col, f"{col!r} holds calendar dates, not study days: import with `{command}` and, in the "
                                   f"mapping file, `[{table}] {target} = \"{col}\"` (days are counted from each "
                                   "patient's first session)"))
        elif identifier_key(col) == "date" and "day" not in columns:
            hints.append((col, f"{col!r} holds calendar dates; format v1 has study days in 'day': import with "
                               f"`{command}` and, in the mapping file, `[{table}] date = \"{col}\"`"))
    return hints
