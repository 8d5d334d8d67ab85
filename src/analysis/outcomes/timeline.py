"""Per-patient timelines as sorted arrays: sessions and one instrument's scores.

Everything downstream is vectorised over these arrays: rows are sorted by (patient, day),
patients are integer codes in the order of the patients table, and "how many sessions came
before this assessment" is one stable two-key sort of the sessions and the queried days
together (patient code first, then day). Nothing is combined into one number: a composite
``patient * scale + day`` key would take its scale from the span of all patients' days, so
that one extreme day of one patient would round away the days of everyone else. No
derivation depends on the range of another patient's values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

__all__ = ["Timeline", "build_timeline", "instrument_scores"]


def instrument_scores(assessments: pd.DataFrame, instrument: str, same_day: str) -> pd.DataFrame:
    """One instrument's scores, one row per patient and day (same-day repeats combined).

    The table of ``rows.groupby(["patient_id", "day"], sort=False, observed=True)["score"]``
    combined by ``same_day`` (groups in order of first appearance, rows without a patient or
    a day left out), grouped by one whole number per (patient, day) instead: the patient's
    code times the number of distinct days plus the day's rank, exact for any days (0.0 and
    -0.0 are one day, as in the groupby). Each group keeps its rows in table order, so the
    combined scores are pandas' own.
    """
    rows = assessments.loc[assessments["instrument"] == instrument, ["patient_id", "day", "score"]]
    if not (rows["day"].dtype == np.float64 and rows["score"].dtype == np.float64):  # the format's; else as pandas does
        grouped = rows.groupby(["patient_id", "day"], sort=False, observed=True)["score"]
        return getattr(grouped, same_day)().reset_index()
    ids, day = rows["patient_id"], rows["day"].to_numpy()
    if isinstance(ids.dtype, pd.CategoricalDtype):
        patient, n_ids = ids.cat.codes.to_numpy(dtype=np.int64), len(ids.cat.categories)
    else:
        patient, uniques = pd.factorize(ids, use_na_sentinel=True)
        n_ids = len(uniques)
    keep = (patient >= 0) & ~np.isnan(day)  # groupby's dropna
    if len(day) > 1 and keep.all():
        step = np.diff(patient)
        if (step >= 0).all() and ((step > 0) | (day[1:] >= day[:-1])).all():
            return _sorted_scores(rows, patient, day, same_day)
    # each distinct day (by equality) is labelled as first written in the column, as groupby labels it
    distinct, first_of_day, rank = np.unique(day, return_index=True, return_inverse=True)
    label = day[first_of_day]
    if n_ids * max(len(distinct), 1) >= 2**62:  # keys would not fit: the groupby itself
        grouped = rows.groupby(["patient_id", "day"], sort=False, observed=True)["score"]
        return getattr(grouped, same_day)().reset_index()
    rank = rank.reshape(-1)
    if not keep.all():
        rows, patient, rank = rows[keep], patient[keep], rank[keep]
    group, _ = pd.factorize(patient.astype(np.int64) * np.int64(len(distinct)) + rank, sort=False)
    first = np.unique(group, return_index=True)[1]  # first row of each group, groups numbered in order of appearance
    combined = getattr(pd.Series(rows["score"].to_numpy(), copy=False).groupby(group, sort=True), same_day)()
    return pd.DataFrame({"patient_id": rows["patient_id"].iloc[first].reset_index(drop=True),
                         "day": label[rank[first]],
                         "score": combined.to_numpy()})


def _sorted_scores(rows: pd.DataFrame, patient: np.ndarray, day: np.ndarray, same_day: str) -> pd.DataFrame:
    """:func:`instrument_scores` of rows already in (patient, day) order, none missing: each
    group is a run of equal (patient, day) rows, in order of appearance. A day is labelled
    as groupby labels it, by its first value in the column: only 0.0 and -0.0 are equal
    days written differently, so a zero day is labelled as the column's first zero."""
    change = np.ones(len(day), dtype=bool)
    change[1:] = (patient[1:] != patient[:-1]) | (day[1:] != day[:-1])
    group = np.cumsum(change) - 1
    first = np.flatnonzero(change)
    label = day[first]
    zeros = np.flatnonzero(day == 0)
    if zeros.size:
        label = np.where(label == 0, day[zeros[0]], label)
    combined = getattr(pd.Series(rows["score"].to_numpy(), copy=False).groupby(group, sort=True), same_day)()
    return pd.DataFrame({"patient_id": rows["patient_id"].iloc[first].reset_index(drop=True),
                         "day": label, "score": combined.to_numpy()})


@dataclass
class Timeline:
    """Sorted arrays for the vectorised derivations.

    Sessions: ``s_patient`` (code), ``s_day``, ``s_number`` (1-based within patient),
    ``s_row`` (row in the dataset's sessions table). Scores: ``a_patient``, ``a_day``,
    ``a_score``. Per patient (indexed by code): ``first_session`` (row in session arrays of
    the first session, -1 if none), ``n_sessions``.
    """

    patient_ids: np.ndarray
    s_patient: np.ndarray
    s_day: np.ndarray
    s_number: np.ndarray
    s_row: np.ndarray
    a_patient: np.ndarray
    a_day: np.ndarray
    a_score: np.ndarray
    first_session: np.ndarray
    n_sessions: np.ndarray
    #: the ids as pandas ``str`` (what a column made from ``patient_ids`` infers), or None
    patient_text: object = None

    @property
    def n_patients(self) -> int:
        return len(self.patient_ids)

    def id_column(self, codes: np.ndarray | None = None):
        """The ids of the patients at ``codes`` (every patient when None), for a derived
        table's ``patient_id``: the column ``patient_ids[codes]`` makes (``str`` values,
        ``object`` when empty), taken from the ids' Arrow text when there is one instead of
        from Python strings."""
        n = self.n_patients if codes is None else len(codes)
        if self.patient_text is None or n == 0:
            return self.patient_ids if codes is None else self.patient_ids[codes]
        return self.patient_text if codes is None else self.patient_text.take(np.asarray(codes))

    def sessions_before(self, patient: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Number of the patient's sessions strictly before ``day`` (same-day assessments
        come before that day's session).

        Exact for any days, with no composite key of patient and day: every day is replaced
        by its rank among the distinct session days (a query day by the number of distinct
        session days below it), so that a session's day is before a query's day exactly when
        its rank is below the query's rank. (patient code, rank) pairs are whole numbers and
        the sessions' pairs are sorted, so a query's count is where its pair falls among the
        sessions' pairs (one binary search) less the sessions of earlier patients. Missing
        days sort last, as in a sort: a missing query day counts every session with a day.
        """
        patient = np.asarray(patient, dtype=np.int64)
        day = np.asarray(day, dtype=np.float64)
        if len(day) == 0:
            return np.zeros(0, dtype=np.int64)
        distinct = np.unique(self.s_day)  # sorted, missing last (one NaN)
        span = np.int64(len(distinct) + 1)
        s_key = self.s_patient.astype(np.int64) * span + np.searchsorted(distinct, self.s_day, side="left")
        q_key = patient * span + np.searchsorted(distinct, day, side="left")
        return np.searchsorted(s_key, q_key, side="left") - np.searchsorted(self.s_patient, patient, side="left")

    @cached_property
    def score_sessions_before(self) -> np.ndarray:
        """:meth:`sessions_before` of every score of the timeline (``a_patient``, ``a_day``),
        worked out once for the derivations that all need it."""
        return self.sessions_before(self.a_patient, self.a_day)

    @cached_property
    def _score_keys(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The distinct score days and each score's (patient code, day rank) as one whole
        number, sorted as the scores are; None when that cannot stand for the scores' own
        pairs (a missing day, or a patient and day twice)."""
        if len(self.a_day) == 0 or np.isnan(self.a_day).any():
            return None
        distinct = np.unique(self.a_day)
        keys = self.a_patient.astype(np.int64) * np.int64(len(distinct)) + np.searchsorted(distinct, self.a_day)
        if len(keys) > 1 and not (np.diff(keys) > 0).all():
            return None
        return distinct, keys

    def score_index(self, patient: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Position in the scores (``a_patient``, ``a_day``) of the score of each ``patient``
        on ``day``, -1 where there is none: exact day equality (0.0 and -0.0 are one day),
        by a binary search among whole-number keys of the scores' days ranked (no
        composite of patient and day)."""
        patient = np.asarray(patient, dtype=np.int64)
        day = np.asarray(day, dtype=np.float64)
        prepared = self._score_keys
        if prepared is None or len(day) == 0:
            scores = pd.MultiIndex.from_arrays([self.a_patient, self.a_day])
            return scores.get_indexer(pd.MultiIndex.from_arrays([patient, day]))
        distinct, keys = prepared
        rank = np.minimum(np.searchsorted(distinct, day), len(distinct) - 1)
        query = patient * np.int64(len(distinct)) + rank
        at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        return np.where((distinct[rank] == day) & (keys[at] == query), at, -1)

    def session_day(self, patient: np.ndarray, number: np.ndarray) -> np.ndarray:
        """Day of the patient's ``number``-th session (1-based); NaN where there is none."""
        number = np.asarray(number)
        ok = (number >= 1) & (number <= self.n_sessions[patient])
        idx = np.where(ok, self.first_session[patient] + number - 1, 0)
        return np.where(ok, self.s_day[idx] if len(self.s_day) else np.nan, np.nan)


def _positions(index: pd.Index, ids: pd.Series) -> np.ndarray:
    """``index.get_indexer(ids)``; for ids coded as categories that are ``index`` itself (a
    partition's patients, ``outcomes.partitioned``), their codes."""
    if (isinstance(ids.dtype, pd.CategoricalDtype) and not index.hasnans
            and ids.cat.categories.equals(index) and ids.cat.categories.dtype == index.dtype):
        return ids.cat.codes.to_numpy(dtype=np.intp)
    return index.get_indexer(ids)


def _sort_order(patient: np.ndarray, day: np.ndarray) -> np.ndarray:
    """``np.lexsort((day, patient))``: stable, so day ties keep table order; rows already in
    that order (a registry written patient by patient, day by day) are not sorted again."""
    if len(day) > 1 and not np.isnan(day).any():
        step = np.diff(patient)
        if (step >= 0).all() and ((step > 0) | (day[1:] >= day[:-1])).all():
            return np.arange(len(day))
    return np.lexsort((day, patient))


def build_timeline(patients: pd.DataFrame, sessions: pd.DataFrame, scores: pd.DataFrame) -> Timeline:
    """Sort sessions and scores by (patient, day) and index patients by their table order."""
    ids = patients["patient_id"].to_numpy(dtype=object)
    index = pd.Index(patients["patient_id"])
    s_patient = _positions(index, sessions["patient_id"])
    s_day = sessions["day"].to_numpy(dtype=float)
    order = _sort_order(s_patient, s_day)
    s_patient, s_day = s_patient[order], s_day[order]
    a_patient = _positions(index, scores["patient_id"])
    a_day = scores["day"].to_numpy(dtype=float)
    a_score = scores["score"].to_numpy(dtype=float)
    a_order = _sort_order(a_patient, a_day)
    a_patient, a_day, a_score = a_patient[a_order], a_day[a_order], a_score[a_order]

    n_patients = len(ids)
    n_sessions = np.bincount(s_patient, minlength=n_patients)
    starts = np.searchsorted(s_patient, np.arange(n_patients), side="left")
    first_session = np.where(n_sessions > 0, starts, -1)
    s_number = np.arange(len(s_patient)) - starts[s_patient] + 1 if len(s_patient) else np.zeros(0, dtype=np.int64)

    given = patients["patient_id"]
    text = given.astype("str").array if isinstance(given.dtype, pd.StringDtype) and not given.hasnans else None
    return Timeline(
        patient_ids=ids, s_patient=s_patient, s_day=s_day, s_number=s_number, s_row=order,
        a_patient=a_patient, a_day=a_day, a_score=a_score,
        first_session=first_session, n_sessions=n_sessions, patient_text=text,
    )


def first_per_group(groups: np.ndarray, mask: np.ndarray, n_groups: int) -> np.ndarray:
    """Index of the first row with ``mask`` in each group (rows sorted by group); -1 if none."""
    rows = np.flatnonzero(mask)
    out = np.full(n_groups, -1, dtype=np.int64)
    g = groups[rows]
    first = np.unique(g, return_index=True)[1]
    out[g[first]] = rows[first]
    return out


def last_per_group(groups: np.ndarray, mask: np.ndarray, n_groups: int) -> np.ndarray:
    """Index of the last row with ``mask`` in each group (rows sorted by group); -1 if none."""
    rows = np.flatnonzero(mask)[::-1]
    out = np.full(n_groups, -1, dtype=np.int64)
    g = groups[rows]
    last = np.unique(g, return_index=True)[1]
    out[g[last]] = rows[last]
    return out
