"""Shared machinery for the survival estimators: input checking, grouping, risk sets.

The curves and tests of :mod:`analysis.survival` start from :func:`prepare`, which turns a
plain DataFrame and column names into checked numpy arrays (:class:`SurvivalData`),
reporting every problem at once through :class:`analysis.problems.ValidationReport`, and
from :func:`risk_table`, which sorts the observations of one group once and sums weights
per distinct time with cumulative sums. The regression models (Cox, AFT) take their rows
from the kernel's :func:`~analysis._kernel.formula.model_frame` (the one missing-value
rule) and make the survival checks of :func:`survival_values` on the complete rows.

``check_conf_level``, ``check_choice`` and ``z_value`` are the kernel's
(:mod:`analysis._kernel.checks`), imported here for the modules that still import them
from this one.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._kernel import check_choice, check_conf_level, z_value  # noqa: F401 - re-exported (analysis.response imports them here)
from .._kernel.formula import ModelFrame, missing_value_rule, model_frame
from .._kernel.results import RENAMED_ARGUMENTS_CODE
from ..problems import DataValidationError, ValidationReport

__all__ = [
    "Grouping",
    "RiskTable",
    "RowMap",
    "SurvivalData",
    "SurvivalValues",
    "check_choice",
    "check_conf_level",
    "group_indices",
    "prepare",
    "risk_table",
    "segment_bounds",
    "slim_frame",
    "survival_frame",
    "survival_values",
    "warn_caller",
    "z_value",
]



_INTERNAL = ("analysis.survival.", "analysis._kernel.")


def warn_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` pointing at the code that called the survival package (the first
    frame outside it and outside the kernel's argument-renaming wrappers), however deep
    inside the package the warning is issued."""
    frame = sys._getframe(1)
    level = 2
    try:
        while frame.f_back is not None and (frame.f_code is RENAMED_ARGUMENTS_CODE or str(
                frame.f_globals.get("__name__", "")).startswith(_INTERNAL)):
            frame = frame.f_back
            level += 1
    finally:
        del frame
    warnings.warn(message, category, stacklevel=level)


# ----------------------------------------------------------------------------------------
# grouping
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grouping:
    """Integer codes ``0..k-1`` for each row and the level each code stands for.

    Levels are in R's factor order: the category order of a pandas Categorical (unused
    categories dropped), otherwise the sorted distinct values.
    """

    codes: np.ndarray
    levels: list
    column: str | None

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @classmethod
    def single(cls, n: int, label: Hashable = "all") -> Grouping:
        return cls(np.zeros(n, dtype=np.intp), [label], None)

    @classmethod
    def from_series(cls, values: pd.Series, column: str) -> Grouping:
        if isinstance(values.dtype, pd.CategoricalDtype):
            raw = values.cat.codes.to_numpy()
            used = np.unique(raw[raw >= 0])
            remap = np.full(len(values.cat.categories), -1, dtype=np.intp)
            remap[used] = np.arange(used.size)
            codes = np.where(raw >= 0, remap[raw], -1)  # a missing value (-1) stays -1, not the last category's code
            levels = [values.cat.categories[i] for i in used]
        else:
            try:
                codes, uniques = pd.factorize(values, sort=True)
            except TypeError:  # values that do not sort together (mixed types)
                codes, uniques = pd.factorize(values.astype(str), sort=True)
            levels = list(uniques)
        levels = [v.item() if isinstance(v, np.generic) else v for v in levels]
        return cls(np.asarray(codes, dtype=np.intp), levels, column)

    def take(self, keep: np.ndarray) -> Grouping:
        codes = self.codes[keep]
        used = np.unique(codes)
        if used.size == len(self.levels):
            return Grouping(codes, self.levels, self.column)
        remap = np.full(len(self.levels), -1, dtype=np.intp)
        remap[used] = np.arange(used.size)
        return Grouping(remap[codes], [self.levels[i] for i in used], self.column)


def segment_bounds(sorted_codes: np.ndarray, n_levels: int) -> np.ndarray:
    """Start offsets (length ``n_levels + 1``) of each code in an array sorted by code."""
    return np.searchsorted(sorted_codes, np.arange(n_levels + 1), side="left")


# ----------------------------------------------------------------------------------------
# checked input
# ----------------------------------------------------------------------------------------
@dataclass
class SurvivalData:
    """Checked survival data as numpy arrays, one element per row used.

    Attributes
    ----------
    time : ndarray of float
        Duration (exit time), finite and >= 0.
    event : ndarray of bool
        True for an event, False for a censored time.
    entry : ndarray of float or None
        Delayed-entry (left-truncation) time, strictly less than ``time``; None when absent.
    weights : ndarray of float or None
        Case weights, finite and > 0; None when absent (every row weighs 1).
    group, strata : Grouping or None
        Group codes and levels (``group`` is a single level ``"all"`` when not given).
    n_input : int
        Rows in the table passed in.
    n_dropped : int
        Rows dropped for missing values (only with ``dropna=True``; otherwise 0).
    dropped_by_column : dict
        For each column, the rows that had a missing value there (a row can count twice).
    index : pandas.Index
        Index labels of the rows used, to align covariates later.
    """

    time: np.ndarray
    event: np.ndarray
    entry: np.ndarray | None
    weights: np.ndarray | None
    group: Grouping
    strata: Grouping | None
    n_input: int
    n_dropped: int
    dropped_by_column: dict[str, int]
    index: pd.Index
    columns: dict[str, str | None] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.time.size)

    @property
    def w(self) -> np.ndarray:
        """Weights, ones when none were given."""
        return np.ones(self.time.size) if self.weights is None else self.weights

    @property
    def integer_weights(self) -> bool:
        """True when there are no weights or every weight is a whole number."""
        return self.weights is None or bool(np.all(self.weights == np.floor(self.weights)))


def numeric_values(report: ValidationReport, table: str, frame: pd.DataFrame, column: str, what: str,
                   *, allow_neg_inf: bool = False, allow_pos_inf: bool = False) -> np.ndarray | None:
    """Column as float64 (missing values stay NaN); non-numbers and infinities are reported,
    except -inf / +inf where allowed (interval bounds)."""
    s = frame[column]
    if pd.api.types.is_bool_dtype(s.dtype):
        report.add_table_problem(table, f"{what} must be numeric, got a boolean column", column=column)
        return None
    if isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        report.add_table_problem(table, f"{what} must be numeric, got dtype {s.dtype}", column=column)
        return None
    if pd.api.types.is_timedelta64_dtype(s.dtype):
        report.add_table_problem(
            table, f"{what} must be numeric, got timedeltas: convert them to a number of days first", column=column
        )
        return None
    if pd.api.types.is_numeric_dtype(s.dtype):
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        converted = pd.to_numeric(s, errors="coerce")
        bad = np.flatnonzero(converted.isna().to_numpy() & s.notna().to_numpy())
        if bad.size:
            report.add_rows(table, column, bad, s.iloc[bad], f"{what} must be a number")
        values = converted.to_numpy(dtype=np.float64, na_value=np.nan)
    inf = np.flatnonzero(((values == -np.inf) & (not allow_neg_inf)) | ((values == np.inf) & (not allow_pos_inf)))
    if inf.size:
        report.add_rows(table, column, inf, values[inf], f"{what} must be finite")
    return values


_numeric = numeric_values


def _event(report: ValidationReport, table: str, frame: pd.DataFrame, column: str) -> np.ndarray | None:
    s = frame[column]
    expected = "event must be 0/1 or False/True (1 or True = event, 0 or False = censored)"
    present = s.notna().to_numpy()
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(s.dtype):
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        # object column: Python/numpy bools and numbers equal to 0 or 1 (False == 0 and
        # True == 1 hash alike); strings such as "1" are not taken for numbers
        try:
            values = s.map({0: 0.0, 1: 1.0}).to_numpy(dtype=np.float64, na_value=np.nan)
        except TypeError:  # unhashable values
            values = np.full(len(s), np.nan)
    bad = np.flatnonzero(present & ~np.isin(values, (0.0, 1.0)))
    if bad.size:
        shown = pd.unique(s.iloc[bad])[:5]
        hint = ""
        codes = set(pd.to_numeric(pd.Series(shown), errors="coerce").dropna().tolist())
        if 2.0 in codes and codes <= {1.0, 2.0}:
            hint = " (status coded 1/2 as in R's lung data? pass a column equal to status == 2)"
        report.add_rows(table, column, bad, s.iloc[bad], expected + hint)
    return values


class RowMap:
    """A report for a subset of a table's rows: position i of the subset is reported as row
    ``rows[i]`` of the table (so that checks made on the complete rows of a model frame
    name the rows of the table the user passed)."""

    def __init__(self, report: ValidationReport, rows: np.ndarray):
        self.report = report
        self.rows = np.asarray(rows, dtype=np.int64)

    def add_rows(self, table, column, positions, values, message, **kw) -> None:
        pos = np.asarray(positions, dtype=np.int64)
        self.report.add_rows(table, column, self.rows[pos], values, message, **kw)

    def add_table_problem(self, table, message, **kw) -> None:
        self.report.add_table_problem(table, message, **kw)

    @property
    def ok(self) -> bool:
        return self.report.ok


@dataclass
class SurvivalValues:
    """The survival columns as float arrays (None when not given or not numeric); ``event``
    is 1.0 / 0.0 (NaN where missing or not a valid code)."""

    time: np.ndarray | None
    event: np.ndarray | None
    entry: np.ndarray | None
    weights: np.ndarray | None


def survival_values(
    report: ValidationReport | RowMap,
    table: str,
    frame: pd.DataFrame,
    *,
    duration: str | None = None,
    event: str | None = None,
    entry: str | None = None,
    weights: str | None = None,
    positive_duration: str | None = None,
) -> SurvivalValues:
    """The survival-specific checks of the values present (missing values are the caller's
    rule): durations and entry times finite numbers >= 0 (> 0 with ``positive_duration``,
    the reason given in the message), entry strictly before the duration, events 0/1 or
    False/True, weights finite and > 0. Problems are added to ``report`` (row positions of
    ``frame``, or of the table through a :class:`RowMap`).

    Examples
    --------
    >>> from analysis.problems import ValidationReport
    >>> rep = ValidationReport("data")
    >>> v = survival_values(rep, "data", pd.DataFrame({"t": [3.0, -1.0], "e": [1, 2]}), duration="t", event="e")
    >>> rep.n_errors, v.time.tolist()
    (2, [3.0, -1.0])
    """
    time = _numeric(report, table, frame, duration, "duration") if duration is not None else None
    ev = _event(report, table, frame, event) if event is not None else None
    ent = _numeric(report, table, frame, entry, "entry time") if entry is not None else None
    wts = _numeric(report, table, frame, weights, "weight") if weights is not None else None
    if time is not None:
        with np.errstate(invalid="ignore"):
            neg = np.flatnonzero(time <= 0) if positive_duration else np.flatnonzero(time < 0)
        if neg.size:
            msg = f"duration must be > 0 {positive_duration}" if positive_duration else "duration must be >= 0"
            report.add_rows(table, duration, neg, time[neg], msg)
    if ent is not None:
        neg = np.flatnonzero(ent < 0)
        if neg.size:
            report.add_rows(table, entry, neg, ent[neg], "entry time must be >= 0")
        if time is not None:
            late = np.flatnonzero(ent >= time)
            if late.size:
                report.add_rows(
                    table, entry, late, ent[late],
                    f"entry time must be strictly before the duration in column '{duration}'",
                )
    if wts is not None:
        with np.errstate(invalid="ignore"):
            nonpos = np.flatnonzero(wts <= 0)
        if nonpos.size:
            report.add_rows(table, weights, nonpos, wts[nonpos], "weight must be > 0 (drop the row instead of weighting it 0)")
    return SurvivalValues(time, ev, ent, wts)


def survival_frame(
    formula: str,
    data: pd.DataFrame,
    *,
    roles: dict[str, str | list[str] | None],
    intercept: bool,
    dropna: bool,
    table: str,
    env,
    checks: Callable[[ValidationReport | RowMap, pd.DataFrame, np.ndarray], object],
) -> tuple[ModelFrame, object]:
    """The model frame of a survival regression and its survival checks, every problem at once.

    ``model_frame`` (one-sided formula, ``roles`` as its ``extra`` columns) applies the one
    missing-value rule to every column used; ``checks(report, frame, rows)`` then makes the
    survival-specific checks (:func:`survival_values`, interval bounds) on the complete
    rows (``frame``: the model frame's columns of those rows; ``rows``: their positions in
    ``data``), reporting row numbers of the table. When ``model_frame`` itself finds problems (and
    ``dropna`` is False, so every row would be used), the survival checks run on every row
    too and their problems are reported with the others. Returns the frame and what
    ``checks`` returned.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    try:
        mf = model_frame(formula, data, two_sided=False, intercept=intercept, extra=roles, dropna=dropna, table=table,
                         env=env)
    except DataValidationError as err:
        cols = [c for v in roles.values() if v is not None for c in ([v] if isinstance(v, str) else v)]
        if not dropna and all(isinstance(c, Hashable) and c in data.columns for c in cols):
            checks(err.report, data.reset_index(drop=True), np.arange(len(data)))
        raise DataValidationError(err.report) from None
    report = ValidationReport(table)
    out = checks(RowMap(report, mf.rows), mf.data.reset_index(drop=True), mf.rows)
    if not report.ok:
        raise DataValidationError(report)
    return mf, out


def slim_frame(mf: ModelFrame) -> ModelFrame:
    """The model frame without its rows: what ``design_for`` needs to code new covariate
    profiles (columns, design info), kept by a result without a second copy of the data."""
    return dataclasses.replace(mf, y=None, X=mf.X.iloc[:0], data=mf.data.iloc[:0], rows=mf.rows[:0])


def require_columns(data: pd.DataFrame, roles: dict, table: str) -> ValidationReport:
    """A new report for ``table``, after checking that every column named in ``roles``
    (role -> column, None for an unused role) is in ``data``; all missing ones are listed in
    one :class:`DataValidationError`."""
    report = ValidationReport(table)
    for role, col in roles.items():
        if col is None:
            continue
        if not isinstance(col, Hashable) or col not in data.columns:
            report.add_table_problem(
                table, f"{role} column not found; columns are: {', '.join(map(str, data.columns[:30]))}", column=str(col))
    if not report.ok:
        raise DataValidationError(report)
    return report


def prepare(
    data: pd.DataFrame,
    duration: str,
    event: str,
    *,
    entry: str | None = None,
    weights: str | None = None,
    group: str | None = None,
    strata: str | None = None,
    dropna: bool = False,
    table: str = "data",
) -> SurvivalData:
    """Check the survival columns of ``data`` and return them as :class:`SurvivalData`.

    Every problem is collected and reported at once in a
    :class:`~analysis.problems.DataValidationError` (a ``ValueError``) naming the table,
    the row, the column, the value and what was expected:

    * a column that does not exist;
    * a duration or entry time that is not a finite number, or is negative;
    * an event that is not 0/1 or False/True;
    * a weight that is not a finite number > 0;
    * an entry time not strictly before the duration;
    * missing values in any of the columns used. Nothing is dropped silently: with
      ``dropna=False`` (the default) they are an error that says how many rows and which
      column; with ``dropna=True`` those rows are dropped and counted in ``n_dropped``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation (per subject, or per interval with ``entry``).
    duration, event : str
        Columns holding the exit time and the event indicator.
    entry, weights, group, strata : str, optional
        Columns holding the delayed-entry time, case weights, the grouping and the strata.
    dropna : bool, default False
        Drop rows with a missing value in any column used, and count them.
    table : str, default "data"
        Name of the table in error messages.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival._common import prepare
    >>> d = prepare(pd.DataFrame({"t": [3.0, 5.0], "e": [1, 0]}), "t", "e")
    >>> d.time, d.event
    (array([3., 5.]), array([ True, False]))
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    roles = {"duration": duration, "event": event, "entry": entry, "weights": weights, "group": group, "strata": strata}
    report = require_columns(data, roles, table)
    frame = data.reset_index(drop=True)
    n_input = len(frame)

    vals = survival_values(report, table, frame, duration=duration, event=event, entry=entry, weights=weights)
    time, ev, ent, wts = vals.time, vals.event, vals.entry, vals.weights

    # missing values: the package's one rule
    missing_any, dropped_by_column = missing_value_rule(
        report, table, frame, {col: role for role, col in roles.items() if col is not None}, dropna=dropna)
    if not report.ok:
        raise DataValidationError(report)

    keep = ~missing_any
    n_dropped = int(missing_any.sum())
    if not keep.any():
        raise ValueError(f"{table}: no rows left to analyse ({n_input} row(s) in, {n_dropped} dropped for missing values)")

    grouping = Grouping.from_series(frame[group], group) if group is not None else Grouping.single(n_input)
    strat = Grouping.from_series(frame[strata], strata) if strata is not None else None
    if n_dropped:
        grouping = grouping.take(keep)
        strat = strat.take(keep) if strat is not None else None
    return SurvivalData(
        time=time[keep],
        event=ev[keep] == 1.0,
        entry=ent[keep] if ent is not None else None,
        weights=wts[keep] if wts is not None else None,
        group=grouping,
        strata=strat,
        n_input=n_input,
        n_dropped=n_dropped,
        dropped_by_column=dropped_by_column if n_dropped else {},
        index=data.index[keep],
        columns={k: v for k, v in roles.items()},
    )


# ----------------------------------------------------------------------------------------
# risk sets of one group
# ----------------------------------------------------------------------------------------
@dataclass
class RiskTable:
    """Weighted counts at each distinct exit time of one group (sorted ascending).

    ``at_risk`` is the weight of observations with ``entry < t <= time`` (``time >= t``
    without entry), ``events`` the weight of events at ``t``, ``censored`` of censorings.
    ``row_of`` maps each observation (in the order given) to its time's row.
    """

    time: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    censored: np.ndarray
    row_of: np.ndarray


def risk_table(
    time: np.ndarray, event: np.ndarray, weights: np.ndarray | None = None, entry: np.ndarray | None = None
) -> RiskTable:
    """Sort once and sum per distinct time; vectorised (cumulative sums, no row loop).

    Ties: at a time with both events and censorings, the censored observations are still
    at risk (counted in ``at_risk``), as in R's survfit and survdiff.

    Examples
    --------
    >>> import numpy as np
    >>> rt = risk_table(np.array([2.0, 2.0, 5.0, 3.0]), np.array([True, False, True, True]))
    >>> rt.time, rt.at_risk, rt.events, rt.censored
    (array([2., 3., 5.]), array([4., 2., 1.]), array([1., 1., 1.]), array([1., 0., 0.]))
    """
    n = time.size
    order = np.argsort(time, kind="stable")
    t = time[order]
    w = np.ones(n) if weights is None else weights[order]
    e = event[order]
    new = np.empty(n, dtype=bool)
    if n:
        new[0] = True
        new[1:] = t[1:] != t[:-1]
    starts = np.flatnonzero(new)
    utime = t[starts]
    w_all = np.add.reduceat(w, starts) if n else np.zeros(0)
    w_ev = np.add.reduceat(np.where(e, w, 0.0), starts) if n else np.zeros(0)
    w_cens = np.add.reduceat(np.where(e, 0.0, w), starts) if n else np.zeros(0)
    # exits at or after t: reverse cumulative sum (exact at the last time)
    at_risk = np.cumsum(w_all[::-1])[::-1]
    if entry is not None:
        # minus those entering at or after t (entry >= t means not yet at risk at t)
        e_order = np.argsort(entry, kind="stable")
        e_sorted = entry[e_order]
        w_e = np.ones(n) if weights is None else weights[e_order]
        late_w = np.concatenate([np.cumsum(w_e[::-1])[::-1], [0.0]])
        first_late = np.searchsorted(e_sorted, utime, side="left")
        at_risk = at_risk - late_w[first_late]
    row_sorted = np.cumsum(new) - 1
    row_of = np.empty(n, dtype=np.intp)
    row_of[order] = row_sorted
    return RiskTable(utime, at_risk, w_ev, w_cens, row_of)


def group_indices(codes: np.ndarray, n_levels: int) -> list[np.ndarray]:
    """Row positions of each code (one stable sort, then split)."""
    order = np.argsort(codes, kind="stable")
    bounds = segment_bounds(codes[order], n_levels)
    return [order[bounds[i] : bounds[i + 1]] for i in range(n_levels)]
