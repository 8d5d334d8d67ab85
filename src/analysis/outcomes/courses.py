"""Per-patient course outcomes: baseline, induction, endpoint, category, remission,
early futility and sessions to response (definitions in ``docs/outcomes.md``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .definitions import Definitions
from .timeline import Timeline, first_per_group, last_per_group

__all__ = ["CATEGORIES", "course_table", "improvement_pct"]

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
    before = tl.sessions_before(tl.a_patient, tl.a_day) if len(tl.a_day) else np.zeros(0, dtype=np.int64)
    sessions_to_response = pd.array(np.where(resp_idx >= 0, before[np.maximum(resp_idx, 0)] if len(before) else 0, 0),
                                    dtype="Int64")
    sessions_to_response[resp_idx < 0] = pd.NA

    return pd.DataFrame(
        {
            "patient_id": tl.patient_ids,
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
