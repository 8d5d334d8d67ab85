"""The suicidal-thoughts item at baseline and endpoint (PHQ-9 item 9, MADRS item 10, ...).

McInnes et al. (2022) report, besides response and remission, how many patients endorse PHQ-9
item 9 ("thoughts that you would be better off dead, or of hurting yourself": any answer
above 0) before and after induction, and how many endorse it newly. Item scores are optional
columns ``item_1`` ... ``item_n`` of the assessments table in data format v1
(docs/data-format.md); :func:`suicide_item_scores` reads the instrument's suicide item at
each patient's baseline and endpoint days, and :func:`suicide_item` counts on any table of
baseline and endpoint item values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..instruments import Instrument, get_instrument
from ._common import paired_vectors

__all__ = ["SuicideItemResult", "suicide_item", "suicide_item_scores"]


@dataclass(frozen=True)
class SuicideItemResult:
    """Endorsement of the suicide item (score > 0) at baseline and endpoint.

    Attributes
    ----------
    table : pandas.DataFrame
        ``outcome, n, denominator, percent`` for the rows ``baseline`` (item > 0 at
        baseline, of all patients), ``endpoint`` (> 0 at endpoint, of all), ``new onset``
        (> 0 at endpoint among those at 0 at baseline), ``resolved`` (0 at endpoint among
        those > 0 at baseline) and ``worsened`` (a higher item score at endpoint, of all).
    n : int
        Patients with both values.
    n_dropped : int
        Patients dropped for a missing value (``dropna=True``).
    """

    table: pd.DataFrame
    n: int
    n_dropped: int

    @property
    def summary(self) -> pd.DataFrame:
        """The table with the outcome as index."""
        return self.table.set_index("outcome")


def suicide_item(data: pd.DataFrame | None = None, *, baseline="baseline_item", endpoint="endpoint_item",
                 item_max: float | None = None, dropna: bool = False) -> SuicideItemResult:
    """Share of patients endorsing the suicide item at baseline and endpoint, and new onset.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        One row per patient (e.g. from :func:`suicide_item_scores`); without it
        ``baseline`` and ``endpoint`` are the values themselves.
    baseline, endpoint : str or array-like, default "baseline_item", "endpoint_item"
        Columns of ``data`` with the item score (0 = "not at all"), or the values.
    item_max : float, optional
        The item's largest score (3 for PHQ-9); values outside 0 to ``item_max`` are an
        error. Without it only negative values are refused.
    dropna : bool, default False
        A missing value is an error unless ``dropna=True``, which drops the patient and
        counts it.

    Returns
    -------
    SuicideItemResult

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.effects import suicide_item
    >>> items = pd.DataFrame({"baseline_item": [2, 1, 0, 0, 3, 0, 1, 0],
    ...                       "endpoint_item": [0, 0, 0, 1, 1, 0, 1, 0]})
    >>> suicide_item(items, item_max=3).table
         outcome  n  denominator  percent
    0   baseline  4            8     50.0
    1   endpoint  3            8     37.5
    2  new onset  1            4     25.0
    3   resolved  2            4     50.0
    4   worsened  1            8     12.5
    """
    if data is not None:
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data must be a DataFrame, got {type(data).__name__}")
        for name, col in (("baseline", baseline), ("endpoint", endpoint)):
            if not isinstance(col, str) or col not in data.columns:
                raise ValueError(f"{name}={col!r} is not a column of data")
        b_v, e_v = data[baseline], data[endpoint]
        labels = (f"column {baseline!r} (baseline)", f"column {endpoint!r} (endpoint)")
    else:
        b_v, e_v = baseline, endpoint
        labels = ("baseline", "endpoint")
    b, e, dropped = paired_vectors(labels[0], b_v, labels[1], e_v, dropna=dropna, min_n=1)
    for label, arr in zip(labels, (b, e)):
        bad = (arr < 0) | (arr > item_max if item_max is not None else np.zeros(arr.size, dtype=bool))
        if bad.any():
            expected = f"0 to {item_max:g}" if item_max is not None else ">= 0"
            raise ValueError(f"{label} has {int(bad.sum())} value(s) outside {expected} (first {arr[bad][0]:g})")
    n = b.size
    at_b, at_e = b > 0, e > 0
    rows = [
        ("baseline", int(at_b.sum()), n),
        ("endpoint", int(at_e.sum()), n),
        ("new onset", int((~at_b & at_e).sum()), int((~at_b).sum())),
        ("resolved", int((at_b & ~at_e).sum()), int(at_b.sum())),
        ("worsened", int((e > b).sum()), n),
    ]
    table = pd.DataFrame(rows, columns=["outcome", "n", "denominator"])
    table["percent"] = [100.0 * k / d if d else np.nan for _, k, d in rows]
    return SuicideItemResult(table=table, n=int(n), n_dropped=int(dropped))


def suicide_item_scores(assessments, courses, instrument: str | Instrument | None = None) -> pd.DataFrame:
    """Each patient's suicide-item score at the baseline and endpoint assessments.

    Parameters
    ----------
    assessments : pandas.DataFrame or analysis.Dataset
        The assessments table (``patient_id, day, instrument, score`` and the optional item
        columns ``item_1`` ...), or a dataset (its ``assessments``).
    courses : pandas.DataFrame or analysis.outcomes.Outcomes
        One row per patient with ``patient_id, baseline_day, endpoint_day``
        (``Outcomes.courses``).
    instrument : str or Instrument, optional
        Default: the courses' single ``instrument`` value. Its ``suicide_item`` names the
        column (``item_9`` for PHQ-9, ``item_10`` for MADRS).

    Returns
    -------
    pandas.DataFrame
        ``patient_id, baseline_item, endpoint_item`` (NaN where the assessment or its item
        value is missing, e.g. no endpoint), one row per course.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.effects import suicide_item_scores
    >>> assessments = pd.DataFrame({"patient_id": ["P1", "P1", "P2", "P2"], "day": [0, 14, 0, 14],
    ...                             "instrument": "PHQ-9", "score": [21, 8, 17, 12], "item_9": [2, 0, 0, 1]})
    >>> courses = pd.DataFrame({"patient_id": ["P1", "P2"], "baseline_day": [0, 0], "endpoint_day": [14, 14]})
    >>> suicide_item_scores(assessments, courses, "PHQ-9")
      patient_id  baseline_item  endpoint_item
    0         P1            2.0            0.0
    1         P2            0.0            1.0
    """
    if hasattr(assessments, "assessments") and not isinstance(assessments, pd.DataFrame):
        assessments = assessments.assessments
    if hasattr(courses, "courses") and not isinstance(courses, pd.DataFrame):
        courses = courses.courses
    for name, frame, cols in (("assessments", assessments, ("patient_id", "day", "instrument")),
                              ("courses", courses, ("patient_id", "baseline_day", "endpoint_day"))):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{name} must be a DataFrame, got {type(frame).__name__}")
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks the column(s) {missing}")
    if isinstance(instrument, Instrument):
        inst = instrument
    else:
        if instrument is None:
            names = pd.unique(courses["instrument"].dropna()) if "instrument" in courses.columns else []
            if len(names) != 1:
                raise ValueError("give instrument= (the courses have no single 'instrument' value)")
            instrument = names[0]
        inst = get_instrument(instrument)
    if inst.suicide_item is None:
        raise ValueError(f"{inst.name} has no suicide item")
    col = f"item_{inst.suicide_item}"
    if col not in assessments.columns:
        raise ValueError(f"the assessments have no column {col!r} ({inst.name} item {inst.suicide_item}, suicidal "
                         "thoughts); item scores are optional in data format v1 (docs/data-format.md)")
    canon = {}
    for raw in pd.unique(assessments["instrument"].dropna()):
        try:
            canon[raw] = get_instrument(raw).name
        except KeyError:
            canon[raw] = None
    a = assessments[assessments["instrument"].map(canon) == inst.name][["patient_id", "day", col]]
    dup = a.duplicated(["patient_id", "day"], keep=False)
    if dup.any():
        clash = a[dup].groupby(["patient_id", "day"])[col].nunique(dropna=False)
        clash = clash[clash > 1]
        if len(clash):
            (pid, day) = clash.index[0]
            raise ValueError(f"{len(clash)} patient-day(s) have {inst.name} assessments with different {col} values "
                             f"(first: patient {pid!r}, day {day:g}); keep one assessment per day")
        a = a.drop_duplicates(["patient_id", "day"])
    out = courses[["patient_id"]].copy()
    for which in ("baseline", "endpoint"):
        key = courses[["patient_id", f"{which}_day"]].rename(columns={f"{which}_day": "day"})
        merged = key.merge(a, on=["patient_id", "day"], how="left", validate="many_to_one")
        out[f"{which}_item"] = pd.to_numeric(merged[col], errors="coerce").to_numpy(dtype=float)
    return out.reset_index(drop=True)
