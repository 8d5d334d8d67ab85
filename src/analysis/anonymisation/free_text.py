"""Free-text columns: refused unless allowed.

Rule: free text (clinical notes, comments, reasons written out) can carry every kind of
identifier, and names in prose are beyond any reliable rule (:mod:`analysis.anonymisation.people`
finds only marked ones). Safe Harbor requires that the identifiers be removed, which for
free text means reading it; so a free-text column is refused until the data owner says it
has been checked, by naming it in ``allow_free_text``. An allowed column is still searched
for everything :func:`analysis.anonymisation.values.find_identifiers` finds.

A text column is free text when

* its name says so: a word of it is note(s), comment(s), remark(s), text (``free_text``),
  description, desc, narrative, memo, summary, annotation(s), details, explanation,
  feedback or specify (REDCap's "other, please specify"); or
* its values read as prose: at least half of its distinct values have five words or more,
  and most values are distinct (categories repeat, prose does not).

Examples
--------
>>> import pandas as pd
>>> from analysis.anonymisation.free_text import free_text_reason
>>> free_text_reason("clinical_notes", pd.Series(["ok"]))
"its name says it holds free text ('clinical_notes')"
>>> free_text_reason("diagnosis", pd.Series(["MDD", "bipolar depression", "MDD"])) is None
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .names import tokens

__all__ = ["FREE_TEXT_WORDS", "free_text_reason"]

#: words of a column name that say it holds free text
FREE_TEXT_WORDS = frozenset("""
    note notes comment comments remark remarks text freetext description descriptions desc narrative
    narratives memo memos summary annotation annotations details explanation feedback specify
""".split())

_MIN_WORDS = 5


def free_text_reason(column: str, values: pd.Series) -> str | None:
    """Why a text column counts as free text (in words for the message), or None if it does not."""
    if FREE_TEXT_WORDS.intersection(tokens(column)):
        return f"its name says it holds free text ({column!r})"
    present = values.dropna().astype(str)
    if len(present) == 0:
        return None
    distinct = pd.unique(present)
    words = np.array([len(v.split()) for v in distinct])
    prose = words >= _MIN_WORDS
    if prose.mean() >= 0.5 and len(distinct) >= 0.5 * len(present):
        return (f"most of its values are prose ({int(prose.sum())} of {len(distinct)} distinct values "
                f"have {_MIN_WORDS} words or more)")
    return None
