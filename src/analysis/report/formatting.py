"""Numbers as a clinical reader expects them: digits per kind of value, intervals, p-values.

One function per kind of value, used by every table and sentence of the report, so that a
hazard ratio reads the same everywhere (``0.84 (0.52 to 1.37)``), a p-value is ``0.48`` or
``< 0.001``, a median of days is a whole number, and a value that could not be estimated
is an empty cell, never ``nan``.

Examples
--------
>>> from analysis.report.formatting import interval, p_value, ratio, days
>>> interval(0.8412, 0.5204, 1.3671)
'0.84 (0.52 to 1.37)'
>>> p_value(0.4812), p_value(0.0004), p_value(0.0123), p_value(float("nan"))
('0.48', '< 0.001', '0.012', '')
>>> ratio(12.345), days(37.6), days(float("nan"))
('12.3', '38', '')
"""

from __future__ import annotations

import math

__all__ = ["is_missing", "ratio", "difference", "interval", "p_value", "days", "mean", "percent", "NOT_ESTIMABLE"]

#: what a cell shows for an estimate that could not be computed (with a footnote saying why)
NOT_ESTIMABLE = "not estimable"


def is_missing(x) -> bool:
    """True for None, NaN and infinities: values a table shows as empty."""
    try:
        return x is None or not math.isfinite(float(x))
    except (TypeError, ValueError):
        return True


def ratio(x) -> str:
    """A hazard or odds ratio: two decimals below 10, three significant digits above."""
    if is_missing(x):
        return ""
    x = float(x)
    return f"{x:.2f}" if x < 10 else f"{x:.3g}" if x < 1000 else f"{x:.0f}"


def difference(x, digits: int = 2) -> str:
    """A difference (risk difference, mean difference) with a sign, ``digits`` decimals."""
    if is_missing(x):
        return ""
    x = round(float(x), digits) + 0.0     # no "-0.00"
    return f"{x:.{digits}f}"


def interval(estimate, lower, upper, kind: str = "ratio") -> str:
    """``estimate (lower to upper)``; ``kind`` ``"ratio"`` or ``"difference"``; empty when the
    estimate is missing, the estimate alone when its bounds are."""
    fmt = ratio if kind == "ratio" else difference
    if is_missing(estimate):
        return ""
    if is_missing(lower) or is_missing(upper):
        return fmt(estimate)
    return f"{fmt(estimate)} ({fmt(lower)} to {fmt(upper)})"


def p_value(p) -> str:
    """A p-value: ``< 0.001``, else two significant digits (three decimals at most)."""
    if is_missing(p):
        return ""
    p = float(p)
    if p < 0.001:
        return "< 0.001"
    if p >= 0.1:
        return f"{p:.2f}"
    return f"{p:.2g}" if p >= 0.01 else f"{p:.3f}"


def days(x) -> str:
    """A number of days (a median, a time): a whole number."""
    if is_missing(x):
        return ""
    return f"{float(x):.0f}"


def mean(x, digits: int = 1) -> str:
    """A mean score or a percentage improvement: one decimal."""
    if is_missing(x):
        return ""
    return f"{float(x):.{digits}f}"


def percent(x, digits: int = 1) -> str:
    """A proportion (0 to 1) as a percentage."""
    if is_missing(x):
        return ""
    return f"{100 * float(x):.{digits}f}%"
