"""Input checking of interval-censored bounds for the parametric and nonparametric models
(``aft``, ``turnbull``); the formula and the one missing-value rule of ``aft`` are the
kernel's ``model_frame``.

Interval-censored bounds follow R's ``Surv(lower, upper, type = "interval2")``:

===============================  ==================  ===========================================
lower, upper                     status              meaning
===============================  ==================  ===========================================
lower == upper (finite)          exact               the event happened at that time
0 < lower < upper < inf          interval            lower < T <= upper
lower in {0, NaN, -inf},         left-censored       T <= upper (the event had happened by then)
upper finite > 0
lower finite, upper in           right-censored      T > lower (no event up to lower)
{inf, NaN}
lower in {NaN, -inf} and upper   missing             no information: counted and dropped with
in {NaN, inf}                                        ``dropna=True``, an error otherwise
===============================  ==================  ===========================================

A lower bound of 0 is a left-censored row here: for a positive survival time, (0, u]
and T <= u are the same event. (R's ``survreg`` refuses a lower bound of 0 with
log-time distributions, "Invalid survival times for this distribution": pass NA there.)
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd

from ..problems import ValidationReport
from ._aft_fit import EXACT, INTERVAL, LEFT, RIGHT
from ._common import numeric_values

__all__ = [
    "STATUS_NAMES",
    "bound_values",
    "weight_values",
    "check_columns",
    "interval_status",
    "missing_problem",
    "numeric_values",
]

STATUS_NAMES = {RIGHT: "right", EXACT: "exact", LEFT: "left", INTERVAL: "interval"}
_ROWS_SHOWN = 5


def check_columns(report: ValidationReport, table: str, data: pd.DataFrame, roles: dict[str, object]) -> None:
    """Report every role whose column is not in ``data``."""
    for role, col in roles.items():
        if col is None:
            continue
        if not isinstance(col, Hashable) or col not in data.columns:
            report.add_table_problem(
                table, f"{role} column not found; columns are: {', '.join(map(str, data.columns[:30]))}",
                column=str(col),
            )


def weight_values(report: ValidationReport, table: str, frame: pd.DataFrame, weights: str, dropna: bool):
    """Case weights as floats (> 0 required) and the rows where they are missing (reported
    unless ``dropna``)."""
    w = numeric_values(report, table, frame, weights, "weight")
    if w is not None:
        with np.errstate(invalid="ignore"):
            nonpos = np.flatnonzero(w <= 0)
        if nonpos.size:
            report.add_rows(table, weights, nonpos, w[nonpos], "weight must be > 0 (drop the row instead of weighting it 0)")
    miss = frame[weights].isna().to_numpy()
    missing_problem(report, table, weights, "weight", miss, dropna)
    return w, miss


def bound_values(report, table, frame, lower: str, upper: str):
    """The two bound columns as floats (lower may be -inf, upper may be +inf)."""
    lo = numeric_values(report, table, frame, lower, "lower bound", allow_neg_inf=True)
    up = numeric_values(report, table, frame, upper, "upper bound", allow_pos_inf=True)
    return lo, up


def interval_status(report: ValidationReport, table: str, lo: np.ndarray, up: np.ndarray, lower: str, upper: str,
                    *, positive: bool):
    """Classify each row (R's interval2 rules, a lower bound of 0 meaning left-censored).

    Returns ``status`` (-1 for a missing row), ``t1`` and ``t2``: for exact rows t1 is the
    time; right-censored: t1 = lower; left-censored: t1 = upper; interval: (t1, t2] =
    (lower, upper]. ``positive=True`` (log-time models) also requires every time used to be
    > 0. Problems are added to ``report``.
    """
    n = lo.size
    lo_none = np.isnan(lo) | (lo == -np.inf)
    up_none = np.isnan(up) | (up == np.inf)
    missing = lo_none & up_none
    lo_fin = ~lo_none
    up_fin = ~up_none
    with np.errstate(invalid="ignore"):
        neg_lo = np.flatnonzero(lo_fin & (lo < 0))
        if neg_lo.size:
            report.add_rows(table, lower, neg_lo, lo[neg_lo],
                            "lower bound must be >= 0 (0, NaN or -inf mean left-censored)")
        neg_up = np.flatnonzero(up_fin & (up < 0))
        if neg_up.size:
            report.add_rows(table, upper, neg_up, up[neg_up], "upper bound must be >= 0 (inf or NaN mean right-censored)")
        both = lo_fin & up_fin
        crossed = np.flatnonzero(both & (lo > up))
        if crossed.size:
            report.add_rows(table, lower, crossed, lo[crossed],
                            f"lower bound is greater than the upper bound in column '{upper}'")
        exact = both & (lo == up)
        right = lo_fin & up_none
        left = up_fin & (lo_none | (lo == 0)) & ~exact
        interval = both & (lo > 0) & (lo < up)
    status = np.full(n, -1, dtype=np.int64)
    status[right] = RIGHT
    status[exact] = EXACT
    status[left] = LEFT
    status[interval] = INTERVAL
    t1 = np.where(status == LEFT, up, lo)
    t2 = np.where(status == INTERVAL, up, np.nan)
    if positive:
        zero_exact = np.flatnonzero(exact & (lo <= 0))
        if zero_exact.size:
            report.add_rows(table, upper, zero_exact, up[zero_exact],
                            "an exact time (lower == upper) must be > 0 for a log-time distribution")
        zero_right = np.flatnonzero(right & (lo <= 0))
        if zero_right.size:
            report.add_rows(table, lower, zero_right, lo[zero_right],
                            "a right-censored row (upper = inf) needs lower > 0: censored at time 0 carries no "
                            "information and is invalid for a log-time distribution (drop the row)")
        zero_left = np.flatnonzero(left & (up <= 0))
        if zero_left.size:
            report.add_rows(table, upper, zero_left, up[zero_left],
                            "a left-censored row needs an upper bound > 0 for a log-time distribution")
    else:
        zero_left = np.flatnonzero(left & (up <= 0))
        if zero_left.size:
            report.add_rows(table, upper, zero_left, up[zero_left],
                            "a left-censored row needs an upper bound > 0 (T <= 0 is T = 0: give lower = upper = 0)")
    return status, t1, t2, missing


def missing_problem(report: ValidationReport, table: str, column: str, role: str, miss: np.ndarray,
                    dropna: bool, detail: str = "") -> None:
    """Add the "missing values" error for one column unless ``dropna``."""
    k = int(miss.sum())
    if not k or dropna:
        return
    rows = np.flatnonzero(miss)[:_ROWS_SHOWN] + 1
    more = ", ..." if k > _ROWS_SHOWN else ""
    report.add_table_problem(
        table,
        f"{k} row(s) have a missing {role}{detail} (row {', '.join(map(str, rows))}{more}); "
        "pass dropna=True to drop them (the result then records how many rows were dropped)",
        column=str(column),
    )
