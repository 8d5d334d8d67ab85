"""Cox models for recurrent relapse intervals (the ``durability`` table).

Each infusion from the end of induction on opens a relapse interval; a patient has
several, and their lengths are correlated (a patient whose benefit fades fast does so
after every infusion). Three standard ways to model them, each a :func:`cox` call with
the right time scale, strata and clusters (see ``docs/cox.md`` for when to use which):

* :func:`andersen_gill` -- one common baseline hazard for every interval, counting
  process on the calendar scale (time since the patient's first interval, the end of
  induction) or on the gap scale (time since the infusion); cluster-robust by patient.
* :func:`pwp_gap` -- Prentice-Williams-Peterson gap-time model: time since the infusion,
  a separate baseline hazard for the 1st, 2nd, ... interval (strata by interval number),
  cluster-robust by patient.
* :func:`within_patient` -- gap time, stratified by patient: each patient is compared
  only with themself, which removes every patient-level confounder (measured or not) of
  an exposure that changes within patients (an adjunct started mid-course).

Each takes the durability table directly (``patient_id, interval, origin_day, time,
event`` plus covariates) and returns a :class:`~analysis.survival.CoxResult`. The column
grouping a patient's intervals is ``cluster=`` (``"patient_id"`` by default; ``id=`` is the
name of the previous release, deprecated).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._kernel import capture_env, renamed_arguments
from ..problems import DataValidationError, ValidationReport
from ._cox import EPS, ITER_MAX, TOLER_CHOL, CoxResult, fit_cox

__all__ = ["andersen_gill", "pwp_gap", "within_patient"]

TIMESCALES = ("calendar", "gap")


def _check_columns(data: pd.DataFrame, table: str, **columns: str | None) -> None:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"durability must be a pandas DataFrame, got {type(data).__name__}")
    report = ValidationReport(table)
    for role, col in columns.items():
        if col is not None and col not in data.columns:
            report.add_table_problem(
                table, f"{role} column not found; columns are: {', '.join(map(str, data.columns[:40]))}", column=col
            )
    if not report.ok:
        raise DataValidationError(report)


def _fit(formula, data, **kw) -> CoxResult:
    return fit_cox(formula, data, entry=kw.pop("entry", None), max_iter=ITER_MAX, tol=EPS, toler_chol=TOLER_CHOL,
                   **kw)


def _strata_list(strata: str | Sequence[str] | None) -> list[str]:
    if strata is None:
        return []
    return [strata] if isinstance(strata, str) else list(strata)


@renamed_arguments(id="cluster")
def andersen_gill(
    formula: str,
    durability: pd.DataFrame,
    *,
    cluster: str = "patient_id",
    timescale: str = "calendar",
    time: str = "time",
    event: str = "event",
    origin: str = "origin_day",
    strata: str | Sequence[str] | None = None,
    weights: str | None = None,
    ties: str = "efron",
    robust: bool = True,
    conf_level: float = 0.95,
    dropna: bool = False,
) -> CoxResult:
    """Andersen-Gill model for recurrent relapse intervals, cluster-robust by patient.

    All intervals share one baseline hazard and every interval of a patient counts; the
    robust (sandwich) variance grouped by patient accounts for the correlation of a
    patient's intervals (Lin & Wei 1989; Therneau & Grambsch 2000, ch. 8).

    Parameters
    ----------
    formula : str
        Covariates in patsy syntax, e.g. ``"drug_rapamycin + dose_mg_per_kg + C(route)"``.
    durability : pandas.DataFrame
        One row per interval: ``cluster`` (the patient), ``origin`` (study day of the
        infusion), ``time`` (days to relapse or censoring) and ``event`` columns, plus
        covariates.
    cluster : str, default "patient_id"
        Patient column: the cluster of the robust variance (``id=`` in the previous
        release, deprecated).
    timescale : {"calendar", "gap"}, default "calendar"
        ``"calendar"``: the counting process of Andersen & Gill (1982) in time since the
        patient's first interval (the end of induction): the interval is at risk over
        ``(origin - first_origin, origin - first_origin + time]``, and the baseline hazard
        is a function of time in the course. ``"gap"``: time since the infusion,
        ``(0, time]``, one baseline for all intervals (a "marginal" gap-time model).
        Intervals of a patient must not overlap on the calendar scale (they do not in
        the derived durability table, whose follow-up ends at the next infusion).
    time, event, origin : str
        Column names in the durability table.
    strata : str or list of str, optional
        Further strata (e.g. ``"site"``).
    weights : str, optional
        Case weights.
    ties : {"efron", "breslow"}, default "efron"
    robust : bool, default True
        Cluster-robust variance by ``cluster``; ``False`` gives the model-based variance that
        treats intervals as independent (too narrow when patients differ).
    conf_level : float, default 0.95
    dropna : bool, default False
        Drop (and count) rows with missing values instead of raising.

    Returns
    -------
    CoxResult
        With ``model = "andersen-gill (calendar)"`` or ``"andersen-gill (gap)"``.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival.recurrent import andersen_gill
    >>> dur = pd.DataFrame({
    ...     "patient_id": ["a", "a", "a", "b", "b", "c", "c", "d", "d", "d"],
    ...     "origin_day": [10, 30, 50, 12, 40, 11, 25, 13, 20, 48],
    ...     "time": [14, 20, 9, 28, 17, 14, 30, 7, 28, 12],
    ...     "event": [1, 0, 1, 0, 1, 1, 0, 1, 0, 1],
    ...     "rapamycin": [0, 1, 1, 0, 1, 0, 0, 0, 1, 1]})
    >>> fit = andersen_gill("rapamycin", dur, timescale="gap")
    >>> fit.n_clusters
    4
    >>> fit.summary[["coef", "se", "naive_se"]].round(3)
                coef     se  naive_se
    term
    rapamycin -0.057  0.505     0.821
    """
    if timescale not in TIMESCALES:
        raise ValueError(f"timescale must be one of {', '.join(map(repr, TIMESCALES))}; got {timescale!r}")
    table = "durability"
    env = capture_env(1)
    _check_columns(durability, table, cluster=cluster, time=time, event=event,
                   origin=origin if timescale == "calendar" else None)
    if timescale == "gap":
        res = _fit(formula, durability, duration=time, event=event, strata=strata, cluster=cluster if robust else None,
                   weights=weights, ties=ties, robust=robust, conf_level=conf_level, dropna=dropna, table=table, env=env)
        res.model = "andersen-gill (gap)"
        return res
    frame = durability.copy(deep=False)
    start_col = f"{origin} - first {origin}"  # days since the patient's first interval
    stop_col = f"{origin} - first {origin} + {time}"
    org = pd.to_numeric(frame[origin], errors="coerce")
    first = org.groupby(frame[cluster], sort=False, dropna=False).transform("min")
    frame[start_col] = org - first
    frame[stop_col] = frame[start_col] + pd.to_numeric(frame[time], errors="coerce")
    _check_overlap(frame, cluster, start_col, stop_col, origin, time, table)
    res = _fit(formula, frame, duration=stop_col, event=event, entry=start_col, strata=strata,
               cluster=cluster if robust else None, weights=weights, ties=ties, robust=robust, conf_level=conf_level,
               dropna=dropna, table=table, env=env)
    res.model = "andersen-gill (calendar)"
    return res


def _check_overlap(frame, cluster, start, stop, origin, time, table) -> None:
    """Raise when two intervals of a patient overlap on the calendar scale."""
    ok = frame[[start, stop]].notna().all(axis=1).to_numpy() & frame[cluster].notna().to_numpy()
    sub = frame.loc[ok, [cluster, start, stop]]
    if len(sub) < 2:
        return
    codes = pd.factorize(sub[cluster])[0]
    st = sub[start].to_numpy(float)
    sp = sub[stop].to_numpy(float)
    order = np.lexsort((st, codes))
    same = codes[order][1:] == codes[order][:-1]
    bad = same & (sp[order][:-1] > st[order][1:])
    if bad.any():
        report = ValidationReport(table)
        pos = np.flatnonzero(ok)[order[1:][bad]]
        report.add_rows(
            table, origin, pos, frame[cluster].to_numpy()[pos],
            f"interval starts before the patient's previous interval ends ({origin} + {time} of the previous "
            "interval is after this one's origin); intervals of one patient must not overlap on the calendar "
            "scale (use timescale='gap')",
        )
        raise DataValidationError(report)


@renamed_arguments(id="cluster")
def pwp_gap(
    formula: str,
    durability: pd.DataFrame,
    *,
    cluster: str = "patient_id",
    interval: str = "interval",
    max_stratum: int | None = None,
    time: str = "time",
    event: str = "event",
    strata: str | Sequence[str] | None = None,
    weights: str | None = None,
    ties: str = "efron",
    robust: bool = True,
    conf_level: float = 0.95,
    dropna: bool = False,
) -> CoxResult:
    """Prentice-Williams-Peterson gap-time model, cluster-robust by patient.

    Time since the infusion, with a separate baseline hazard for each interval number
    (the 1st interval after induction differs from the 5th maintenance interval), as
    R's ``coxph(Surv(gap, event) ~ x + strata(interval), cluster = id)`` (Prentice,
    Williams & Peterson 1981).

    Parameters
    ----------
    formula : str
        Covariates in patsy syntax.
    durability : pandas.DataFrame
        One row per interval with ``cluster``, ``interval``, ``time`` and ``event``.
    cluster : str, default "patient_id"
        Patient column: the cluster of the robust variance (``id=`` in the previous
        release, deprecated).
    interval : str, default "interval"
        Interval number (1, 2, ...): the strata.
    max_stratum : int, optional
        Pool intervals numbered ``max_stratum`` and above into one stratum (late
        intervals are few; a stratum with one patient adds little). Default: no pooling.
    time, event : str
        Column names.
    strata : str or list of str, optional
        Further strata, crossed with the interval number.
    weights, ties, robust, conf_level, dropna
        As :func:`~analysis.survival.cox`.

    Returns
    -------
    CoxResult
        With ``model = "pwp-gap"``; its strata are the interval numbers.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival.recurrent import pwp_gap
    >>> dur = pd.DataFrame({
    ...     "patient_id": ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"],
    ...     "interval": [1, 2, 1, 2, 1, 2, 1, 2, 1, 2],
    ...     "time": [14, 20, 28, 17, 14, 30, 7, 28, 12, 21],
    ...     "event": [1, 0, 0, 1, 1, 0, 1, 0, 1, 1],
    ...     "rapamycin": [0, 1, 0, 1, 0, 0, 0, 1, 1, 1]})
    >>> fit = pwp_gap("rapamycin", dur)
    >>> fit.strata_levels, round(float(fit.summary.loc["rapamycin", "coef"]), 3)
    ([1, 2], 1.541)
    """
    table = "durability"
    env = capture_env(1)
    _check_columns(durability, table, cluster=cluster, interval=interval, time=time, event=event)
    frame = durability
    strat = [interval, *_strata_list(strata)]
    if max_stratum is not None:
        if int(max_stratum) < 1:
            raise ValueError(f"max_stratum must be a positive interval number, got {max_stratum!r}")
        k = int(max_stratum)
        frame = durability.copy(deep=False)
        num = pd.to_numeric(frame[interval], errors="coerce")
        lab = num.where(num < k, k)
        col = f"{interval}_pooled"
        frame[col] = lab
        strat = [col, *_strata_list(strata)]
    res = _fit(formula, frame, duration=time, event=event, strata=strat, cluster=cluster if robust else None,
               weights=weights, ties=ties, robust=robust, conf_level=conf_level, dropna=dropna, table=table, env=env)
    res.model = "pwp-gap"
    return res


@renamed_arguments(id="cluster")
def within_patient(
    formula: str,
    durability: pd.DataFrame,
    *,
    cluster: str = "patient_id",
    time: str = "time",
    event: str = "event",
    weights: str | None = None,
    ties: str = "efron",
    robust: bool = False,
    conf_level: float = 0.95,
    dropna: bool = False,
) -> CoxResult:
    """Gap-time Cox model stratified by patient: each patient is their own control.

    Every patient has their own baseline hazard, so anything constant within a patient
    (frailty, severity, diagnosis, the reasons a clinician chose an adjunct) cancels; the
    hazard ratio of an exposure that changes within patients -- rapamycin added
    mid-course -- compares a patient's exposed and unexposed intervals. Only patients
    with both exposed and unexposed intervals, and at least one relapse, inform it, so
    its interval is wider. Patient-level covariates cannot be in the formula (they are
    absorbed by the strata and get NaN). Under a shared frailty the patient strata absorb
    the frailty, so the model-based variance is valid (``robust=False``, the default);
    ``robust=True`` clusters by patient.

    Parameters
    ----------
    formula : str
        Covariates in patsy syntax (exposures that change within patients).
    durability : pandas.DataFrame
        One row per interval with ``cluster``, ``time`` and ``event``.
    cluster : str, default "patient_id"
        Patient column: the strata (and the cluster with ``robust=True``); ``id=`` in the
        previous release, deprecated.
    time, event, weights, ties, robust, conf_level, dropna
        As :func:`andersen_gill`.

    Returns
    -------
    CoxResult
        With ``model = "within-patient (strata by patient, gap time)"``.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival.recurrent import within_patient
    >>> dur = pd.DataFrame({
    ...     "patient_id": ["a"] * 4 + ["b"] * 4 + ["c"] * 4,
    ...     "time": [10, 8, 25, 30, 5, 6, 12, 9, 14, 9, 21, 18],
    ...     "event": [1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1],
    ...     "rapamycin": [0, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0]})
    >>> fit = within_patient("rapamycin", dur)
    >>> round(float(fit.summary.loc["rapamycin", "ratio"]), 3)
    0.141
    """
    table = "durability"
    env = capture_env(1)
    _check_columns(durability, table, cluster=cluster, time=time, event=event)
    res = _fit(formula, durability, duration=time, event=event, strata=cluster, cluster=cluster if robust else None,
               weights=weights, ties=ties, robust=robust, conf_level=conf_level, dropna=dropna, table=table, env=env)
    res.model = "within-patient (strata by patient, gap time)"
    return res
