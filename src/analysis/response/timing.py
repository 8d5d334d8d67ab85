"""Time to response, and the early-improvement predictor, from a dataset's scores.

Both walk each patient's scores of the outcomes' instrument after the first session, with
the conventions and the code of :func:`analysis.derive_outcomes` (``docs/outcomes.md``):
the same-day rule, the timeline (a score on a session day was taken before that session)
and ``improvement_pct`` come from :mod:`analysis.outcomes`, and every threshold from the
outcomes' typed ``definitions``. See ``docs/response.md`` sections 8 and 9.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._kernel import check_choice
from ..dataset import Dataset
from ..outcomes import Outcomes, derive_outcomes, improvement_pct
from ..outcomes.timeline import build_timeline, instrument_scores
from ..survival import KaplanMeierResult, kaplan_meier

__all__ = ["response_table", "time_to_response", "early_improvement"]

SCALES = ("days", "sessions")
#: the instrument derived on when neither ``instrument=`` nor ``outcomes=`` is given
DEFAULT_INSTRUMENT = "PHQ-9"


def _outcomes_for(dataset: Dataset, outcomes: Outcomes | None, instrument: str | None,
                  where: str) -> tuple[Outcomes, str]:
    """The outcomes to read and their instrument: derived on ``instrument`` when not given;
    when given, their own instrument, which ``instrument`` (if given) must name."""
    if outcomes is None:
        outcomes = derive_outcomes(dataset, DEFAULT_INSTRUMENT if instrument is None else instrument)
    elif not isinstance(outcomes, Outcomes):
        raise TypeError(f"{where}: outcomes must be an analysis.Outcomes (from derive_outcomes), "
                        f"got {type(outcomes).__name__}")
    return outcomes, outcomes.definitions.check_instrument(instrument, where=where, registry=dataset.instrument_registry)


def _scored_assessments(dataset: Dataset, outcomes: Outcomes, instrument: str) -> pd.DataFrame:
    """Scores after the first session with improvement, sessions before, days since the
    first session, and each patient's window end (endpoint day, else end of induction)."""
    scores = instrument_scores(dataset.assessments, instrument, outcomes.definitions.same_day)
    tl = build_timeline(dataset.patients, dataset.sessions, scores)
    before = tl.sessions_before(tl.a_patient, tl.a_day) if len(tl.a_day) else np.zeros(0, dtype=np.int64)
    known = tl.a_patient >= 0  # (a validated dataset has no scores of unknown patients)
    a = pd.DataFrame({"patient_id": tl.patient_ids[tl.a_patient[known]].astype(str), "day": tl.a_day[known],
                      "score": tl.a_score[known], "sessions_before": before[known]})
    c = outcomes.courses[["patient_id", "first_session_day", "end_of_induction_day", "endpoint_day",
                          "baseline_score"]].copy()
    c["patient_id"] = c["patient_id"].astype(str)
    a = a.merge(c, on="patient_id", how="inner")
    upper = a["endpoint_day"].where(a["endpoint_day"].notna(), a["end_of_induction_day"])
    a = a[(a["day"] > a["first_session_day"]) & (a["day"] <= upper)].copy()
    a["improvement_pct"] = improvement_pct(a["baseline_score"].to_numpy(dtype=float), a["score"].to_numpy(dtype=float))
    a["days"] = a["day"] - a["first_session_day"]
    return a.sort_values(["patient_id", "day"], kind="stable").reset_index(drop=True)


def response_table(
    dataset: Dataset,
    *,
    instrument: str | None = None,
    outcomes: Outcomes | None = None,
    response_pct: float | None = None,
) -> pd.DataFrame:
    """One row per patient: days and sessions to the first response, or to censoring.

    Parameters
    ----------
    dataset : analysis.Dataset
    instrument : str, optional
        The instrument; default the outcomes' instrument, or "PHQ-9" without ``outcomes``.
        Naming another instrument than the outcomes' is an error.
    outcomes : analysis.outcomes.Outcomes, optional
        ``derive_outcomes(dataset, instrument)`` if already computed (its definitions are
        used: instrument, windows, same-day rule, response threshold).
    response_pct : float, optional
        Improvement that counts as response; default the outcomes' ``response_pct`` (50).

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``event`` (1 = responded, 0 = censored), ``days`` (from the first
        session to the first score with improvement >= ``response_pct``, or to the last
        score), ``sessions`` (sessions received before that score), ``n_scores``, and the
        covariates of ``outcomes.courses``. Scores count from the first one after the first
        session day up to the endpoint (the end-of-induction assessment), or up to the
        end of induction for patients without an endpoint. Patients with no score in that
        window are left out; ``attrs["n_excluded"]`` counts them.

    Examples
    --------
    >>> import analysis
    >>> from analysis.response import response_table
    >>> ds = analysis.load_dataset("data/sample")
    >>> t = response_table(ds, outcomes=analysis.derive_outcomes(ds, "MADRS"))
    >>> int(t["event"].sum()), len(t), t.attrs["instrument"]
    (123, 199, 'MADRS')
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"response_table needs an analysis.Dataset, got {type(dataset).__name__}")
    outcomes, instrument = _outcomes_for(dataset, outcomes, instrument, "response_table()")
    pct = float(outcomes.definitions.response_pct) if response_pct is None else float(response_pct)
    a = _scored_assessments(dataset, outcomes, instrument)
    a["hit"] = a["improvement_pct"] >= pct
    g = a.groupby("patient_id", sort=True)
    last = g.tail(1).set_index("patient_id")
    first_hit = a[a["hit"]].groupby("patient_id", sort=True).head(1).set_index("patient_id")
    out = pd.DataFrame(index=last.index)
    out["event"] = out.index.isin(first_hit.index).astype(int)
    out["days"] = first_hit["days"].reindex(out.index).fillna(last["days"])
    out["sessions"] = first_hit["sessions_before"].reindex(out.index).fillna(last["sessions_before"]).astype(int)
    out["n_scores"] = g.size()
    out = out.reset_index()
    courses = outcomes.courses.copy()
    courses["patient_id"] = courses["patient_id"].astype(str)
    keep = [c for c in courses.columns if c not in ("days", "sessions", "event")]
    out = out.merge(courses[keep], on="patient_id", how="left")
    out.attrs["n_excluded"] = int(len(outcomes.courses) - len(out))
    out.attrs["response_pct"] = pct
    out.attrs["instrument"] = instrument
    return out


def time_to_response(
    data,
    *,
    scale: str = "days",
    group: str | None = None,
    instrument: str | None = None,
    response_pct: float | None = None,
    conf_level: float = 0.95,
    conf_type: str = "log-log",
) -> KaplanMeierResult:
    """Kaplan-Meier estimate of the time to first response during induction.

    Response is the first score with improvement >= ``response_pct`` (50 %); patients who
    never respond are censored at their last score (up to the end-of-induction endpoint).
    ``1 - survival`` is the cumulative proportion responded.

    Parameters
    ----------
    data : analysis.Dataset, or pandas.DataFrame
        A dataset (times computed with :func:`response_table`); a table from
        :func:`response_table` (columns ``days``, ``sessions``, ``event``); or a
        ``courses`` table from :func:`analysis.derive_outcomes` (``sessions`` scale only:
        ``sessions_to_response``, with non-responders censored at
        ``n_induction_sessions``, which is exact for patients with an endpoint, since it
        follows the last induction session, and an upper bound for the others).
    scale : {"days", "sessions"}, default "days"
        Days since the first session, or sessions received before the responding score.
    group : str, optional
        Column whose levels get separate curves (e.g. ``"class_benzodiazepine"``).
    instrument, response_pct
        Passed to :func:`response_table` for a dataset.
    conf_level, conf_type
        Passed to :func:`analysis.survival.kaplan_meier`.

    Returns
    -------
    analysis.survival.KaplanMeierResult
    """
    check_choice("scale", scale, SCALES)
    if isinstance(data, Dataset):
        table = response_table(data, instrument=instrument, response_pct=response_pct)
        duration, event = scale, "event"
    elif isinstance(data, pd.DataFrame):
        if {"days", "sessions", "event"} <= set(data.columns):
            table, duration, event = data, scale, "event"
        elif {"sessions_to_response", "n_induction_sessions"} <= set(data.columns):
            if scale != "sessions":
                raise ValueError("a courses table holds sessions to response only: pass scale='sessions', "
                                 "or the dataset for days")
            table = data.copy()
            responded = table["sessions_to_response"].notna()
            table["_event"] = responded.astype(int)
            table["_sessions"] = table["sessions_to_response"].astype("Float64").fillna(
                table["n_induction_sessions"].astype("Float64")).astype(float)
            duration, event = "_sessions", "_event"
        else:
            raise ValueError("data must be an analysis.Dataset, a response_table() result (days, sessions, event) "
                             "or a courses table (sessions_to_response, n_induction_sessions)")
    else:
        raise TypeError(f"data must be an analysis.Dataset or a pandas DataFrame, got {type(data).__name__}")
    return kaplan_meier(table, duration, event, group=group, conf_level=conf_level, conf_type=conf_type)


def early_improvement(
    dataset: Dataset,
    *,
    after_session: int | None = 2,
    within_days: float | None = None,
    instrument: str | None = None,
    outcomes: Outcomes | None = None,
) -> pd.DataFrame:
    """The early-improvement predictor per patient, with the end-of-induction outcome.

    Parameters
    ----------
    dataset : analysis.Dataset
    after_session : int, default 2
        Improvement at the first score taken after this many sessions (a score on the day
        of session 3 counts: it was taken before that session).
    within_days : float, optional
        Instead of ``after_session``: improvement at the last score within this many days
        after the first session (e.g. 7 for "in the first week"). Give one of the two.
    instrument : str, optional
        The instrument; default the outcomes' instrument, or "PHQ-9" without ``outcomes``.
        Naming another instrument than the outcomes' is an error.
    outcomes : Outcomes, optional
        ``derive_outcomes(dataset, instrument)`` if already computed.

    Returns
    -------
    pandas.DataFrame
        One row per patient with such a score: ``patient_id``, ``early_improvement_pct``,
        ``early_day`` (days since the first session), ``early_sessions_before``, and from
        ``outcomes.courses``: ``improvement_pct``, ``category``, ``responder``
        (category == "responder", missing without an endpoint), ``remission``.
        ``attrs["n_excluded"]`` counts patients without an early score.
    """
    if (after_session is None) == (within_days is None):
        raise ValueError("give exactly one of after_session (e.g. 2) and within_days (e.g. 7)")
    outcomes, instrument = _outcomes_for(dataset, outcomes, instrument, "early_improvement()")
    a = _scored_assessments(dataset, outcomes, instrument)
    if after_session is not None:
        sel = a[a["sessions_before"] >= int(after_session)].groupby("patient_id", sort=True).head(1)
    else:
        sel = a[a["days"] <= float(within_days)].groupby("patient_id", sort=True).tail(1)
    out = sel[["patient_id", "improvement_pct", "days", "sessions_before"]].rename(
        columns={"improvement_pct": "early_improvement_pct", "days": "early_day", "sessions_before": "early_sessions_before"}
    )
    courses = outcomes.courses.copy()
    courses["patient_id"] = courses["patient_id"].astype(str)
    cols = ["patient_id", "improvement_pct", "category", "remission"]
    out = out.merge(courses[cols], on="patient_id", how="left").reset_index(drop=True)
    resp = (out["category"].astype(object) == "responder").astype("boolean")
    out["responder"] = resp.where(out["category"].notna(), pd.NA)
    out.attrs["n_excluded"] = int(len(courses) - len(out))
    return out
