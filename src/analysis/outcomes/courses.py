"""Per-patient course outcomes: baseline, induction, endpoint, category, remission,
early futility and sessions to response (definitions in ``docs/outcomes.md``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .definitions import Definitions
from .timeline import Timeline, first_per_group, last_per_group

__all__ = ["CATEGORIES", "COURSE_STATES", "RELAPSE_CAUSES", "competing_relapse_table", "course_table",
           "course_transition_table", "improvement_pct"]

#: response categories, in order
CATEGORIES = pd.CategoricalDtype(["non-responder", "partial", "responder"], ordered=True)


def improvement_pct(baseline: np.ndarray, score: np.ndarray) -> np.ndarray:
    """100 x (baseline - score) / baseline; NaN where baseline is missing or 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(baseline > 0, 100.0 * (baseline - score) / baseline, np.nan)


def _pick(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """values[index], NaN where index is -1."""
    out = np.full(len(index), np.nan)
    ok = index >= 0
    out[ok] = values[index[ok]]
    return out


def course_table(tl: Timeline, d: Definitions) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per patient (all patients, in table order) with the course outcomes, and the
    improvement of every score in the timeline (aligned with ``tl.a_day``). Remission uses
    the cut-off the definitions apply (``d.remission_max_applied``: bind them to the
    instrument first).

    Rows of patients who cannot be analysed have missing values; the caller records why in
    the attrition table.
    """
    n = tl.n_patients
    remission_max = d.remission_max_applied
    has_sessions = tl.n_sessions > 0
    codes = np.arange(n)
    first_day = np.where(has_sessions, tl.session_day(codes, np.ones(n, dtype=int)), np.nan)

    # induction: the first `induction_sessions` sessions within the window of the first
    window_end = first_day + d.induction_window_days
    in_window = tl.s_day <= window_end[tl.s_patient]
    n_in_window = np.bincount(tl.s_patient[in_window], minlength=n)
    n_induction = np.minimum(n_in_window, d.induction_sessions)
    end_day = tl.session_day(codes, n_induction)

    # baseline: last score in [first - window, first]
    a_first = first_day[tl.a_patient]
    in_base = (tl.a_day >= a_first - d.baseline_window_days) & (tl.a_day <= a_first)
    base_idx = last_per_group(tl.a_patient, in_base, n)
    baseline_day, baseline_score = _pick(tl.a_day, base_idx), _pick(tl.a_score, base_idx)
    a_improvement = improvement_pct(baseline_score[tl.a_patient], tl.a_score)

    # endpoint: first score after the end of induction, within the window
    a_end = end_day[tl.a_patient]
    in_end = (tl.a_day > a_end) & (tl.a_day <= a_end + d.endpoint_window_days)
    end_idx = first_per_group(tl.a_patient, in_end, n)
    endpoint_day, endpoint_score = _pick(tl.a_day, end_idx), _pick(tl.a_score, end_idx)
    improvement = _pick(a_improvement, end_idx)

    category = pd.Categorical.from_codes(
        np.select(
            [np.isnan(improvement), improvement >= d.response_pct, improvement >= d.partial_response_pct],
            [-1, 2, 1], default=0,
        ),
        dtype=CATEGORIES,
    )
    remission = pd.array(
        np.where(np.isnan(endpoint_score), False, endpoint_score <= (remission_max if remission_max is not None else np.nan)),
        dtype="boolean",
    )
    remission[np.isnan(endpoint_score) | (remission_max is None)] = pd.NA

    # early futility: first score after session k and not after session k + 1
    k = d.futility_after_session
    day_k = np.where(n_induction >= k, tl.session_day(codes, np.full(n, k)), np.nan)
    day_next = tl.session_day(codes, np.full(n, k + 1))
    upper = np.where(np.isnan(day_next), day_k + d.endpoint_window_days, day_next)
    in_fut = (tl.a_day > day_k[tl.a_patient]) & (tl.a_day <= upper[tl.a_patient])
    fut_idx = first_per_group(tl.a_patient, in_fut, n)
    fut_improvement = _pick(a_improvement, fut_idx)
    early_futility = pd.array(fut_improvement < d.futility_pct, dtype="boolean")
    early_futility[np.isnan(fut_improvement)] = pd.NA

    # sessions to response: sessions before the first score with improvement >= response_pct,
    # among scores after the first session up to the endpoint (or the endpoint window's end)
    limit = np.where(np.isnan(endpoint_day), end_day + d.endpoint_window_days, endpoint_day)
    candidates = (tl.a_day > a_first) & (tl.a_day <= limit[tl.a_patient]) & (a_improvement >= d.response_pct)
    resp_idx = first_per_group(tl.a_patient, candidates, n)
    before = tl.score_sessions_before
    sessions_to_response = pd.array(np.where(resp_idx >= 0, before[np.maximum(resp_idx, 0)] if len(before) else 0, 0),
                                    dtype="Int64")
    sessions_to_response[resp_idx < 0] = pd.NA

    return pd.DataFrame(
        {
            "patient_id": tl.id_column(),
            "n_sessions": tl.n_sessions,
            "n_induction_sessions": n_induction,
            "completed_induction": n_induction >= d.induction_sessions,
            "first_session_day": first_day,
            "end_of_induction_day": end_day,
            "baseline_day": baseline_day,
            "baseline_score": baseline_score,
            "endpoint_day": endpoint_day,
            "endpoint_score": endpoint_score,
            "improvement_pct": improvement,
            "category": category,
            "remission": remission,
            "early_futility": early_futility,
            "sessions_to_response": sessions_to_response,
        }
    ), a_improvement


# ----------------------------------------------------------------------------------------
# competing risks after response, and the multi-state course (docs/outcomes.md)
# ----------------------------------------------------------------------------------------
#: causes of the competing-risk relapse table, in order (the first means censored)
RELAPSE_CAUSES = pd.CategoricalDtype(["censored", "relapse", "boosted", "stopped", "lost"])
#: states of the multi-state course table (the censoring value of ``to_state`` is "censored")
COURSE_STATES = ("induction", "response", "relapse", "re-response", "non-response", "stopped", "lost")


def _score_index(tl: Timeline, patient: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Position in the timeline's scores of the score of ``patient`` on ``day`` (-1 if none)."""
    return tl.score_index(patient, day)


def _qualifies(tl: Timeline, a_improvement: np.ndarray, loss_pct: np.ndarray, idx: np.ndarray,
               d: Definitions) -> np.ndarray:
    """Whether the scores at ``idx`` qualify towards a relapse: the rule of
    :func:`analysis.outcomes.intervals.interval_table` (a score at or above
    ``relapse_threshold_score`` if set, else an improvement below the patient's loss
    threshold)."""
    ok = idx >= 0
    j = np.maximum(idx, 0)
    if d.relapse_threshold_score is not None:
        q = tl.a_score[j] >= d.relapse_threshold_score
    else:
        q = a_improvement[j] < loss_pct[tl.a_patient[j]]
    return ok & q


def _interval_causes(tl: Timeline, a_improvement: np.ndarray, loss_pct: np.ndarray, intervals: pd.DataFrame,
                     d: Definitions) -> tuple[np.ndarray, np.ndarray]:
    """Cause (codes of :data:`RELAPSE_CAUSES`) and time of every interval of
    ``interval_table``: a confirmed relapse; else a next session ends the follow-up
    (boosted, at that session); else the last score qualifies (stopped for no benefit);
    else fewer scores than a relapse needs (lost to follow-up); else censored."""
    patient = intervals["patient"].to_numpy()
    origin = intervals["origin_day"].to_numpy(dtype=float)
    end = intervals["followup_end_day"].to_numpy(dtype=float)
    time = intervals["time"].to_numpy(dtype=float)
    event = intervals["event"].to_numpy() == 1
    boosted = ~event & np.isfinite(end)
    last = _score_index(tl, patient, origin + time)
    stopped = ~event & ~boosted & _qualifies(tl, a_improvement, loss_pct, last, d)
    lost = ~event & ~boosted & ~stopped & (intervals["n_assessments"].to_numpy() < d.relapse_confirmations)
    code = np.select([event, boosted, stopped, lost], [1, 2, 3, 4], default=0)
    return code, np.where(boosted, end - origin, time)


def competing_relapse_table(relapse: pd.DataFrame, intervals: pd.DataFrame, tl: Timeline, a_improvement: np.ndarray,
                            loss_pct: np.ndarray, session_phase: pd.Series, d: Definitions) -> pd.DataFrame:
    """Relapse after induction with what else ended its follow-up: one row per row of the
    ``relapse`` table (same patients, same order), its columns without ``time, event,
    lower, upper``, then ``time``, ``cause`` (:data:`RELAPSE_CAUSES`) and ``next_phase``
    (the phase of the session that ended a boosted follow-up).

    ``relapse`` is ``derive_outcomes``' first-interval table and ``intervals`` the
    ``interval_table`` rows it was made from; ``session_phase`` is the sessions table's
    ``phase`` (indexed like it) or None.
    """
    first = intervals[intervals["interval"] == 1]
    if len(first) != len(relapse):
        raise ValueError(f"relapse table has {len(relapse)} rows but the first intervals are {len(first)}")
    code, time = _interval_causes(tl, a_improvement, loss_pct, first, d)
    out = relapse.drop(columns=[c for c in ("time", "event", "lower", "upper") if c in relapse])  # shares them
    out["time"] = time
    out["cause"] = pd.Categorical.from_codes(code, dtype=RELAPSE_CAUSES)
    if session_phase is not None:
        # the next session after the origin is the session right after the origin session
        nxt = tl.s_row.argsort()[first["session_row"].to_numpy()] + 1
        rows = tl.s_row[np.minimum(nxt, len(tl.s_row) - 1)]
        phase = session_phase.iloc[rows].to_numpy(dtype=object)  # only the sessions needed, as Python objects
        out["next_phase"] = np.where(code == 2, phase, None)
    return out


def course_transition_table(course: pd.DataFrame, analysed: np.ndarray, intervals: pd.DataFrame, tl: Timeline,
                            a_improvement: np.ndarray, loss_pct: np.ndarray, d: Definitions) -> pd.DataFrame:
    """The multi-state course of every analysed patient, in the transitions layout of
    :func:`analysis.survival.state_occupation` (``from_state``/``to_state``, censored as
    "censored"): ``patient_id, tstart, tstop, from_state, to_state, start_day, stop_day``,
    times in days since the first session.

    Induction ends at the endpoint: in response (a responder), stopped for no benefit (early
    futility and induction not completed), non-response (otherwise, with an endpoint), or
    lost (no endpoint; at the end of the endpoint window). From response: the first
    confirmed relapse of an interval after entering the state; from relapse, re-response at
    the first score with improvement >= ``response_pct`` after a session on or after the
    relapse day; from re-response, relapse again. Follow-up ends at the patient's last score:
    stopped or lost when the last interval ended so (:func:`competing_relapse_table`'s
    causes) and the patient was responding, otherwise censored.
    """
    n = tl.n_patients
    first_day = course["first_session_day"].to_numpy(dtype=float)
    end_day = course["end_of_induction_day"].to_numpy(dtype=float)
    endpoint = course["endpoint_day"].to_numpy(dtype=float)
    category = course["category"]
    responder = (category == "responder").to_numpy() & analysed
    no_endpoint = category.isna().to_numpy() & analysed
    futile = course["early_futility"].fillna(False).to_numpy(dtype=bool) & ~course["completed_induction"].to_numpy()
    stopped = analysed & ~no_endpoint & ~responder & futile
    nonresp = analysed & ~no_endpoint & ~responder & ~stopped
    exit_day = np.where(no_endpoint, end_day + d.endpoint_window_days, endpoint)
    exit_state = np.select([responder, stopped, nonresp, no_endpoint], ["response", "stopped", "non-response", "lost"],
                           default="")
    rows = [pd.DataFrame({"patient": np.flatnonzero(analysed), "start_day": first_day[analysed],
                          "stop_day": exit_day[analysed], "from_state": "induction",
                          "to_state": exit_state[analysed]})]

    # after response: relapse <-> re-response cycles, vectorised over patients
    ipat = intervals["patient"].to_numpy()
    relapse_day = np.where(intervals["event"].to_numpy() == 1,
                           intervals["origin_day"].to_numpy(dtype=float) + intervals["time"].to_numpy(dtype=float),
                           np.nan)
    state = np.where(responder, "response", "").astype(object)
    since = np.where(responder, endpoint, np.nan)
    active = responder.copy()
    while active.any():
        # next confirmed relapse after entering the current (responding) state
        cand = active[ipat] & (relapse_day > since[ipat])
        k = first_per_group(ipat, cand, n)
        relapsed = k >= 0
        rday = np.where(relapsed, relapse_day[np.maximum(k, 0)], np.nan)
        if relapsed.any():
            rows.append(pd.DataFrame({"patient": np.flatnonzero(relapsed), "start_day": since[relapsed],
                                      "stop_day": rday[relapsed], "from_state": state[relapsed],
                                      "to_state": "relapse"}))
        state[relapsed], since[relapsed] = "relapse", rday[relapsed]
        # re-response: a session on or after the relapse day, then a responding score
        s = first_per_group(tl.s_patient, relapsed[tl.s_patient] & (tl.s_day >= rday[tl.s_patient]), n)
        bday = np.where(s >= 0, tl.s_day[np.maximum(s, 0)], np.nan)
        a = first_per_group(tl.a_patient, (s[tl.a_patient] >= 0) & (tl.a_day > bday[tl.a_patient])
                            & (a_improvement >= d.response_pct), n)
        again = a >= 0
        aday = np.where(again, tl.a_day[np.maximum(a, 0)], np.nan)
        if again.any():
            rows.append(pd.DataFrame({"patient": np.flatnonzero(again), "start_day": since[again],
                                      "stop_day": aday[again], "from_state": "relapse", "to_state": "re-response"}))
        state[again], since[again] = "re-response", aday[again]
        active = again

    # end of follow-up at the last score
    followed = responder
    last_score = np.full(n, np.nan)
    has = np.bincount(tl.a_patient, minlength=n) > 0
    ends = np.searchsorted(tl.a_patient, np.arange(n), side="right") - 1
    last_score[has] = tl.a_day[ends[has]]
    last_cause = np.zeros(n, dtype=np.int64)
    if len(ipat):
        code, _ = _interval_causes(tl, a_improvement, loss_pct, intervals, d)
        n_int = np.bincount(ipat, minlength=n)
        last_interval = np.searchsorted(ipat, np.arange(n), side="right") - 1  # rows sorted by patient
        last_cause = np.where(n_int > 0, code[np.maximum(last_interval, 0)], 0)
    responding = np.isin(state, ["response", "re-response"])
    tail = followed & (last_score > since)
    exit_tail = np.where(responding & (last_cause == 3), "stopped",
                         np.where(responding & (last_cause == 4), "lost", "censored"))
    if tail.any():
        rows.append(pd.DataFrame({"patient": np.flatnonzero(tail), "start_day": since[tail],
                                  "stop_day": last_score[tail], "from_state": state[tail],
                                  "to_state": exit_tail[tail]}))
    out = pd.concat(rows, ignore_index=True).sort_values(["patient", "start_day"], kind="stable")
    out.insert(0, "patient_id", tl.id_column(out["patient"].to_numpy()))
    base = first_day[out["patient"].to_numpy()]
    out.insert(1, "tstart", out["start_day"].to_numpy() - base)
    out.insert(2, "tstop", out["stop_day"].to_numpy() - base)
    for col in ("from_state", "to_state"):
        out[col] = pd.Categorical(out[col], categories=list(COURSE_STATES) + (["censored"] if col == "to_state" else []))
    return out.drop(columns="patient").reset_index(drop=True)[
        ["patient_id", "tstart", "tstop", "from_state", "to_state", "start_day", "stop_day"]]
