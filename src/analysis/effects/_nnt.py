"""Number needed to treat with its confidence interval (Altman 1998; Altman & Andersen 1999).

The NNT is the reciprocal of the absolute risk difference in the direction of benefit
(ARR): NNT = 1 / ARR. Its interval is the RD's interval inverted and exchanged (Altman 1998,
BMJ 317:1309). When the RD's interval contains 0 the NNT's interval contains infinity and
is reported in two pieces, "NNTB 4.0 to ∞ to NNTH 20.0": the NNT to benefit down to the
lower bound and the NNT to harm beyond the other (the terms NNTB and NNTH of Altman 1998,
used so by Bender 2001, Control Clin Trials 22:102).

On the signed scale 1/ARR (positive: benefit, negative: harm) the interval always runs from
``ci_lower`` = 1/upper(ARR) *upwards* to ``ci_upper`` = 1/lower(ARR); when ``ci_lower >
ci_upper`` it wraps through infinity (the ARR's interval contained 0).

For a time to event, the ARR at a time t is the difference of two Kaplan-Meier (or
cumulative incidence) estimates read at t, with the standard error sqrt(se1² + se2²) of two
independent groups (Altman & Andersen 1999, BMJ 319:1492).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._kernel import check_choice, check_conf_level, z_value
from ._common import as_number

__all__ = ["NNTResult", "nnt", "nnt_at", "nnt_from_counts"]

OUTCOMES = ("adverse", "beneficial")
METHODS = ("newcombe", "wald")
_INF = "∞"


def _recip(x: float) -> float:
    if x == 0:
        return math.inf
    return 1.0 / x


def _fmt(x: float, digits: int) -> str:
    return _INF if math.isinf(x) else f"{x:.{digits}f}"


def altman_interval(lower: float, upper: float, digits: int = 1) -> str:
    """The NNT interval in Altman's (1998) words from the ARR limits ``lower <= upper``.

    Examples
    --------
    >>> altman_interval(0.05, 0.25)
    'NNTB 4.0 to 20.0'
    >>> altman_interval(-0.05, 0.25)
    'NNTB 4.0 to ∞ to NNTH 20.0'
    >>> altman_interval(-0.25, -0.05)
    'NNTH 4.0 to 20.0'
    """
    if lower > 0:  # benefit only: NNTB from 1/upper to 1/lower
        return f"NNTB {_fmt(1 / upper, digits)} to {_fmt(1 / lower, digits)}"
    if upper < 0:  # harm only
        return f"NNTH {_fmt(1 / -lower, digits)} to {_fmt(1 / -upper, digits)}"
    if lower == 0 and upper == 0:
        return _INF
    if lower == 0:
        return f"NNTB {_fmt(1 / upper, digits)} to {_INF}"
    if upper == 0:
        return f"NNTH {_fmt(1 / -lower, digits)} to {_INF}"
    return f"NNTB {_fmt(1 / upper, digits)} to {_INF} to NNTH {_fmt(1 / -lower, digits)}"


@dataclass(frozen=True)
class NNTResult:
    """A number needed to treat with its interval.

    Attributes
    ----------
    estimate : float
        1 / |ARR|: the number of patients to treat for one more to benefit (``kind ==
        "NNTB"``) or to be harmed (``"NNTH"``); ``inf`` when the ARR is 0 (``kind`` None).
        Not rounded (Altman reports it to one decimal; trialists often round it up).
    kind : str or None
        ``"NNTB"`` (ARR > 0), ``"NNTH"`` (ARR < 0) or None (ARR = 0).
    ci_lower, ci_upper : float
        The interval on the signed scale 1/ARR (positive: benefit, negative: harm):
        1/upper(ARR) and 1/lower(ARR). It runs upwards from ``ci_lower`` to ``ci_upper``,
        through infinity when ``ci_lower > ci_upper`` (``includes_infinity``). NaN without
        an interval.
    ci : str
        The interval as Altman (1998) writes it: "NNTB 4.5 to 21.9", "NNTH 3.1 to 8.0",
        "NNTB 4.0 to ∞ to NNTH 20.0".
    risk_difference, rd_se, rd_ci_lower, rd_ci_upper : float
        The ARR (difference in the direction of benefit), its standard error (NaN when
        given, not estimated) and interval.
    conf_level : float or None
    method : str
        How the ARR's interval was made: ``"given"``, ``"wald"``, ``"newcombe"``,
        ``"altman-andersen"`` (from two curves at ``time``).
    time : float or None
        The time the curves were read at (:func:`nnt_at`).
    digits : int
        Decimals of ``ci`` and of ``str()``.
    """

    estimate: float
    kind: str | None
    ci_lower: float
    ci_upper: float
    ci: str
    risk_difference: float
    rd_se: float
    rd_ci_lower: float
    rd_ci_upper: float
    conf_level: float | None
    method: str
    time: float | None = None
    digits: int = 1

    @property
    def signed(self) -> float:
        """1 / ARR: positive for benefit, negative for harm, inf when the ARR is 0."""
        return _recip(self.risk_difference)

    @property
    def includes_infinity(self) -> bool:
        """Whether the interval passes through infinity (the ARR's interval contains 0)."""
        return bool(self.rd_ci_lower <= 0 <= self.rd_ci_upper)

    @property
    def summary(self) -> pd.DataFrame:
        """One row: ``estimate, kind, ci_lower, ci_upper, ci, risk_difference, rd_se,
        rd_ci_lower, rd_ci_upper, conf_level, method, time``."""
        return pd.DataFrame([{
            "estimate": self.estimate, "kind": self.kind, "ci_lower": self.ci_lower, "ci_upper": self.ci_upper,
            "ci": self.ci, "risk_difference": self.risk_difference, "rd_se": self.rd_se,
            "rd_ci_lower": self.rd_ci_lower, "rd_ci_upper": self.rd_ci_upper, "conf_level": self.conf_level,
            "method": self.method, "time": self.time,
        }])

    def __str__(self) -> str:
        head = _INF if self.kind is None else f"{self.kind} {_fmt(self.estimate, self.digits)}"
        if not self.ci:
            return head
        pct = "" if self.conf_level is None else f"{100 * self.conf_level:g}% CI "
        return f"{head} ({pct}{self.ci})"


def _result(rd: float, lo: float, hi: float, *, se: float, conf_level, method: str, time=None,
            digits: int = 1) -> NNTResult:
    kind = None if rd == 0 else ("NNTB" if rd > 0 else "NNTH")
    has_ci = not (math.isnan(lo) or math.isnan(hi))
    return NNTResult(
        estimate=abs(_recip(rd)), kind=kind,
        ci_lower=_recip(hi) if has_ci else math.nan, ci_upper=_recip(lo) if has_ci else math.nan,
        ci=altman_interval(lo, hi, digits) if has_ci else "",
        risk_difference=rd, rd_se=se, rd_ci_lower=lo, rd_ci_upper=hi, conf_level=conf_level, method=method,
        time=time, digits=digits,
    )


def nnt(risk_difference: float, ci_lower: float | None = None, ci_upper: float | None = None, *,
        conf_level: float | None = None, digits: int = 1) -> NNTResult:
    """Number needed to treat from an absolute risk difference and its interval (Altman 1998).

    Parameters
    ----------
    risk_difference : float
        The absolute risk difference in the direction of benefit, between -1 and 1: the
        absolute risk reduction p_control - p_treated for an adverse event (relapse), or
        p_treated - p_control for a good one (response). Positive: the treatment helps.
    ci_lower, ci_upper : float, optional
        Its confidence limits (both or neither), with ``ci_lower <= risk_difference <=
        ci_upper``.
    conf_level : float, optional
        The coverage of that interval, recorded in the result (and written by ``str()``).
    digits : int, default 1
        Decimals of the interval text.

    Returns
    -------
    NNTResult

    Examples
    --------
    Altman's (1998) example, an ARR of 10% with 95% CI -5% to 25%:

    >>> from analysis.effects import nnt
    >>> res = nnt(0.10, -0.05, 0.25, conf_level=0.95)
    >>> print(res)
    NNTB 10.0 (95% CI NNTB 4.0 to ∞ to NNTH 20.0)
    >>> res.ci_lower, res.ci_upper, res.includes_infinity
    (4.0, -20.0, True)
    """
    rd = as_number("risk_difference", risk_difference, low=-1, high=1)
    if (ci_lower is None) != (ci_upper is None):
        raise ValueError("give both ci_lower and ci_upper, or neither")
    if ci_lower is None:
        lo = hi = math.nan
    else:
        lo = as_number("ci_lower", ci_lower, low=-1, high=1)
        hi = as_number("ci_upper", ci_upper, low=-1, high=1)
        if not lo <= rd <= hi:
            raise ValueError(f"expected ci_lower <= risk_difference <= ci_upper, got {lo!r}, {rd!r}, {hi!r}")
    level = None if conf_level is None else check_conf_level(conf_level)
    return _result(rd, lo, hi, se=math.nan, conf_level=level, method="given", digits=_digits(digits))


def _digits(digits) -> int:
    if not isinstance(digits, (int, np.integer)) or isinstance(digits, bool) or digits < 0:
        raise ValueError(f"digits must be a whole number >= 0, got {digits!r}")
    return int(digits)


def _count(name: str, value) -> int:
    x = as_number(name, value, low=0)
    if x != int(x):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(x)


def wilson_interval(events: int, n: int, z: float) -> tuple[float, float]:
    """Wilson's (1927) score interval of a proportion (R's ``prop.test(correct=FALSE)``).

    Examples
    --------
    >>> [round(v, 4) for v in wilson_interval(56, 70, 1.959963984540054)]
    [0.6918, 0.877]
    """
    p = events / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def risk_difference_interval(e1: int, n1: int, e2: int, n2: int, conf_level: float, method: str):
    """p1 - p2, its Wald standard error and interval by ``method`` (``"wald"``, or
    ``"newcombe"``: Newcombe's 1998 hybrid score interval, his method 10)."""
    z = z_value(conf_level)
    p1, p2 = e1 / n1, e2 / n2
    d = p1 - p2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    if method == "wald":
        lo, hi = d - z * se, d + z * se
    else:
        l1, u1 = wilson_interval(e1, n1, z)
        l2, u2 = wilson_interval(e2, n2, z)
        lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
        hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, se, max(-1.0, lo), min(1.0, hi)


def nnt_from_counts(events_treated: int, n_treated: int, events_control: int, n_control: int, *,
                    outcome: str = "adverse", conf_level: float = 0.95, method: str = "newcombe",
                    digits: int = 1) -> NNTResult:
    """Number needed to treat from the counts of a two-arm comparison.

    Parameters
    ----------
    events_treated, n_treated, events_control, n_control : int
        Patients with the outcome and patients in each arm (each n at least 1).
    outcome : {"adverse", "beneficial"}, default "adverse"
        Whether the counted outcome is bad (relapse, death: ARR = p_control - p_treated,
        the classic NNT of Cook & Sackett 1995) or good (response, remission: ARR =
        p_treated - p_control).
    conf_level : float, default 0.95
    method : {"newcombe", "wald"}, default "newcombe"
        The interval of the risk difference: Newcombe's (1998, Stat Med 17:873, method
        10) hybrid score interval from the two Wilson intervals, which Bender (2001)
        recommends for the NNT because the Wald interval is too short in small or extreme
        samples; or the Wald interval ARR ± z·SE that Altman (1998) uses.
    digits : int, default 1
        Decimals of the interval text.

    Returns
    -------
    NNTResult
        With ``rd_se`` the Wald standard error of the ARR.

    Examples
    --------
    Response in 12 of 30 patients against 4 of 30:

    >>> from analysis.effects import nnt_from_counts
    >>> print(nnt_from_counts(12, 30, 4, 30, outcome="beneficial"))
    NNTB 3.7 (95% CI NNTB 2.2 to 23.8)
    """
    check_choice("outcome", outcome, OUTCOMES)
    check_choice("method", method, METHODS)
    level = check_conf_level(conf_level)
    et, nt_, ec, nc = (_count("events_treated", events_treated), _count("n_treated", n_treated),
                       _count("events_control", events_control), _count("n_control", n_control))
    for n_name, n, e_name, e in (("n_treated", nt_, "events_treated", et), ("n_control", nc, "events_control", ec)):
        if n < 1:
            raise ValueError(f"{n_name} must be at least 1, got {n}")
        if e > n:
            raise ValueError(f"{e_name} ({e}) cannot exceed {n_name} ({n})")
    if outcome == "beneficial":
        d, se, lo, hi = risk_difference_interval(et, nt_, ec, nc, level, method)
    else:
        d, se, lo, hi = risk_difference_interval(ec, nc, et, nt_, level, method)
    return _result(d, lo, hi, se=se, conf_level=level, method=method, digits=_digits(digits))


_INCIDENCE_COLUMNS = ("cumulative_incidence", "cuminc", "incidence", "cif")


def nnt_at(result, t: float, *, treated, control, outcome: str = "adverse", conf_level: float = 0.95,
           estimate: str | None = None, scale: str | None = None, cause=None, digits: int = 1) -> NNTResult:
    """Number needed to treat at time ``t`` from two survival or cumulative-incidence curves.

    Altman & Andersen (1999, BMJ 319:1492): the ARR at t is the difference of the two
    groups' estimates at t, its standard error sqrt(se_treated² + se_control²) (independent
    groups), its interval ARR ± z·SE, and NNT(t) = 1 / ARR(t), inverted as in :func:`nnt`.

    Parameters
    ----------
    result
        A curve result with ``at(times)`` returning a table with ``group``, the estimate and
        ``se`` (docs/api.md, "Curves"): :func:`analysis.survival.kaplan_meier` (``survival``),
        :func:`analysis.survival.turnbull` with a bootstrap, or a cumulative-incidence curve
        (a competing-risks result, whose table has ``cause`` and ``estimate`` columns).
    t : float
        The time at which to compare (the curves are step functions: the value in force).
    treated, control
        The two groups' labels in the result's ``group`` column.
    outcome : {"adverse", "beneficial"}, default "adverse"
        Whether the event is bad (relapse: benefit = S_treated - S_control, or CIF_control -
        CIF_treated) or good (time to response: the other way round).
    conf_level : float, default 0.95
        Coverage of the ARR's interval (the curves' own intervals are not used).
    estimate : str, optional
        The estimate's column, when it is neither ``survival`` nor a cumulative-incidence
        name (``cumulative_incidence``, ``cuminc``, ``incidence``, ``cif``).
    scale : {"survival", "incidence"}, optional
        What that column estimates: the probability of being event-free or of the event by
        t. Inferred from the column's name when not given.
    cause : optional
        For a competing-risks result whose table has a ``cause`` column: the cause to use
        (needed when there are several); its ``estimate`` is then read as a cumulative
        incidence.
    digits : int, default 1

    Returns
    -------
    NNTResult
        ``method="altman-andersen"``, ``time=t``.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival import kaplan_meier
    >>> from analysis.effects import nnt_at
    >>> df = pd.DataFrame({"days": [5, 8, 12, 20, 30, 6, 15, 30, 41, 50, 60, 70],
    ...                    "relapsed": [1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0],
    ...                    "arm": ["placebo"] * 5 + ["ketamine"] * 7})
    >>> km = kaplan_meier(df, "days", "relapsed", group="arm")
    >>> res = nnt_at(km, 28, treated="ketamine", control="placebo")
    >>> round(res.risk_difference, 3), res.kind, round(res.estimate, 2)
    (0.657, 'NNTB', 1.52)
    """
    check_choice("outcome", outcome, OUTCOMES)
    level = check_conf_level(conf_level)
    time = as_number("t", t)
    if not hasattr(result, "at"):
        raise TypeError(f"result must be a curve result with an at(times) method, got {type(result).__name__}")
    table = result.at([time])
    if not isinstance(table, pd.DataFrame) or "group" not in table.columns or "se" not in table.columns:
        raise ValueError("result.at() must return a table with 'group' and 'se' columns (docs/api.md, 'Curves')")
    competing = "cause" in table.columns  # a competing-risks result: one cumulative incidence per cause
    if competing:
        causes = list(pd.unique(table["cause"]))
        if cause is None:
            if len(causes) > 1:
                raise ValueError(f"the result has several causes {causes}; pass cause= to choose one")
            cause = causes[0]
        table = table[table["cause"] == cause]
        if table.empty:
            raise ValueError(f"cause {cause!r} is not in the result; causes: {causes}")
    elif cause is not None:
        raise ValueError("cause= applies only to a result with a 'cause' column")
    incidence_names = _INCIDENCE_COLUMNS + (("estimate",) if competing else ())
    if estimate is None:
        found = [c for c in ("survival", *incidence_names) if c in table.columns]
        if not found:
            raise ValueError(f"cannot tell which column holds the estimate among {list(table.columns)}; "
                             "pass estimate= and scale=")
        estimate = found[0]
    elif estimate not in table.columns:
        raise ValueError(f"estimate={estimate!r} is not a column of result.at(); columns: {list(table.columns)}")
    if scale is None:
        scale = "survival" if estimate == "survival" else "incidence" if estimate in incidence_names else None
        if scale is None:
            raise ValueError(f"pass scale='survival' or scale='incidence' for the column {estimate!r}")
    check_choice("scale", scale, ("survival", "incidence"))

    def read(label, name):
        rows = table[table["group"].astype(object) == label]
        if rows.empty:
            groups = ", ".join(repr(g) for g in pd.unique(table["group"]))
            raise ValueError(f"{name}={label!r} is not a group of the result; groups: {groups}")
        value, se = float(rows[estimate].iloc[0]), float(rows["se"].iloc[0])
        if math.isnan(value):
            raise ValueError(f"the {name} curve ({label!r}) is not estimated at t={time:g} (beyond its follow-up)")
        if math.isnan(se):
            raise ValueError(f"the {name} curve ({label!r}) has no standard error at t={time:g}")
        return value, se

    if treated == control:
        raise ValueError("treated and control must be different groups")
    (vt, st), (vc, sc) = read(treated, "treated"), read(control, "control")
    diff = vt - vc if scale == "survival" else vc - vt  # benefit for an adverse event
    if outcome == "beneficial":
        diff = -diff
    se = math.sqrt(st * st + sc * sc)
    z = z_value(level)
    lo, hi = max(-1.0, diff - z * se), min(1.0, diff + z * se)
    return _result(diff, lo, hi, se=se, conf_level=level, method="altman-andersen", time=time,
                   digits=_digits(digits))
