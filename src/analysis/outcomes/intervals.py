"""Relapse intervals: one per session from the end of induction on, for followed patients.

An interval opens at its session (the origin) and its follow-up covers the scores after
the origin day up to and including the next session's day (a same-day score precedes
that session). A relapse is ``relapse_confirmations`` consecutive qualifying scores within
the follow-up; the relapse day is the first of them. Without one, the interval is censored
at its last score. Interval-censoring bounds for a relapse: lower = the score before the
relapse day (necessarily non-qualifying) or the origin, upper = the relapse day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .definitions import Definitions
from .timeline import Timeline, first_per_group

__all__ = ["interval_table"]


def interval_table(
    tl: Timeline,
    a_improvement: np.ndarray,
    followed: np.ndarray,
    loss_pct: np.ndarray,
    end_sessions: np.ndarray,
    d: Definitions,
) -> tuple[pd.DataFrame, int]:
    """Intervals of the followed patients.

    Parameters
    ----------
    tl : Timeline
    a_improvement : array
        Improvement of every score of the timeline.
    followed : bool array, per patient
        Patients whose intervals are derived (responders; partial responders if asked).
    loss_pct : float array, per patient
        Improvement below which a score qualifies (loss of response or of benefit).
    end_sessions : int array, per patient
        Number of the end-of-induction session (the first origin).
    d : Definitions

    Returns
    -------
    intervals : DataFrame
        patient code, session row (in the sessions table), interval number, origin_day,
        followup_end_day, time, event, lower, upper, n_assessments.
    n_without_followup : int
        Origins of followed patients with no score in their follow-up (not in the table).
    """
    # origin sessions: from the end-of-induction session on, for followed patients
    is_origin = followed[tl.s_patient] & (tl.s_number >= end_sessions[tl.s_patient])
    origin_rows = np.flatnonzero(is_origin)
    same_next = np.zeros(len(tl.s_patient), dtype=bool)
    same_next[:-1] = tl.s_patient[1:] == tl.s_patient[:-1]
    next_day = np.full(len(tl.s_day), np.inf)
    next_day[:-1] = np.where(same_next[:-1], tl.s_day[1:], np.inf)

    # each score belongs to the interval of the last session strictly before it
    count_before = tl.score_sessions_before
    session_idx = np.searchsorted(tl.s_patient, tl.a_patient, side="left") + count_before - 1
    in_interval = (count_before >= 1) & followed[tl.a_patient]
    candidates = np.flatnonzero(in_interval)
    in_interval[candidates[~is_origin[session_idx[candidates]]]] = False
    rows = np.flatnonzero(in_interval)
    iid = session_idx[rows]  # interval id = global session index of its origin (sorted with rows)
    day = tl.a_day[rows]
    if d.relapse_threshold_score is not None:
        qualifies = tl.a_score[rows] >= d.relapse_threshold_score
    else:
        qualifies = a_improvement[rows] < loss_pct[tl.a_patient[rows]]

    confirmed = qualifies.copy()
    for m in range(1, d.relapse_confirmations):
        ahead = np.zeros(len(rows), dtype=bool)
        ahead[:-m] = qualifies[m:] & (iid[m:] == iid[:-m])
        confirmed &= ahead

    # summarise per interval (rows are sorted by interval id)
    if len(iid) and (iid[1:] >= iid[:-1]).all():  # as they are: runs of equal ids (np.unique without its sort)
        start = np.ones(len(iid), dtype=bool)
        start[1:] = iid[1:] != iid[:-1]
        first_row = np.flatnonzero(start)
        ids = iid[first_row]
        n_scores = np.diff(np.append(first_row, len(iid)))
        local = np.cumsum(start) - 1
    else:
        ids, first_row, n_scores = np.unique(iid, return_index=True, return_counts=True)
        local = np.searchsorted(ids, iid)
    relapse_row = first_per_group(local, confirmed, len(ids))
    last_row = first_row + n_scores - 1
    origin_day = tl.s_day[ids]
    event = relapse_row >= 0
    end_row = np.where(event, relapse_row, last_row)
    time = day[end_row] - origin_day
    prev_row = end_row - 1
    has_prev = event & (prev_row >= first_row)
    lower = np.where(event, np.where(has_prev, day[np.maximum(prev_row, 0)] - origin_day, 0.0), time)
    upper = np.where(event, time, np.inf)

    number = tl.s_number[ids] - end_sessions[tl.s_patient[ids]] + 1
    table = pd.DataFrame(
        {
            "patient": tl.s_patient[ids],
            "session_row": tl.s_row[ids],
            "interval": number.astype(np.int64),
            "origin_day": origin_day,
            "followup_end_day": next_day[ids],
            "time": time,
            "event": event.astype(np.int64),
            "lower": lower,
            "upper": upper,
            "n_assessments": n_scores,
        }
    )
    return table, int(len(origin_rows) - len(ids))
