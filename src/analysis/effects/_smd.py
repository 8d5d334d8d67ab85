"""Standardised mean differences: Cohen's d and Hedges' g, for change from baseline (paired)
and for two independent groups, with noncentral-t or normal-approximation intervals.

Definitions (Lakens 2013, Front Psychol 4:863; Cumming 2012):

* independent groups: d = (mean_x - mean_y) / s_pooled, s_pooled² = ((n_x-1) s_x² + (n_y-1)
  s_y²) / (n_x + n_y - 2), df = n_x + n_y - 2;
* paired (x = endpoint, y = baseline, D = x - y), df = n - 1:

  - ``"av"`` d_av = mean(D) / ((s_x + s_y) / 2), the average SD (Lakens eq. 10; Cumming 2012),
  - ``"z"``  d_z  = mean(D) / s_D (Lakens eq. 6),
  - ``"rm"`` d_rm = mean(D) / s_D · sqrt(2 (1 - r)), r the x-y correlation (Lakens eq. 9);

* Hedges' g = J(df) · d with the exact correction J(df) = Γ(df/2) / (sqrt(df/2) Γ((df-1)/2))
  (Hedges 1981), as R's ``effectsize::hedges_g`` and ``metafor::escalc``.

Intervals (``ci_method``):

* ``"noncentral"`` (default): the limits of the noncentrality parameter of the t statistic
  (t = d / sqrt(1/n_x + 1/n_y), or the paired t = mean(D) / (s_D / sqrt(n))) found by
  inverting the noncentral t distribution (Steiger & Fouladi 1997; Cumming & Finch 2001),
  rescaled to the effect size. Exact for d (two groups) and d_z; for d_av and d_rm the ratio
  of the standardisers s_D / s is treated as known (Algina & Keselman 2003, who did this for
  the standardiser sqrt((s_x² + s_y²) / 2)), an approximation (Cousineau & Goulet-Pelletier
  2021). For g the limits of d are multiplied by J, as ``effectsize``.
* ``"normal"``: estimate ± z·SE with Hedges & Olkin's (1985) large-sample variance, evaluated
  at the estimate reported (d or g): 1/n_x + 1/n_y + es² / (2 (n_x + n_y)) for two groups
  (``metafor::escalc(measure="SMD")``), c² (1/n + (es/c)² / (2n)) for a paired d with
  d = c·d_z (c = 1 for d_z: ``metafor::escalc(measure="SMCC")``).

``se`` is always the normal-approximation standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from .._kernel import check_choice, check_conf_level, z_value
from ._common import as_vector, column_or_values, paired_vectors

__all__ = ["EffectSizeResult", "cohens_d", "hedges_g", "hedges_j", "noncentral_t_limits"]

PAIRED_KINDS = ("av", "z", "rm")
INDEPENDENT_KINDS = ("pooled",)
CI_METHODS = ("noncentral", "normal")


def hedges_j(df: float) -> float:
    """Hedges' (1981) exact small-sample correction J(df) = Γ(df/2) / (sqrt(df/2) Γ((df-1)/2)).

    Examples
    --------
    >>> round(hedges_j(10), 6)
    0.922746
    """
    if df <= 1:
        raise ValueError(f"Hedges' correction needs more than 1 degree of freedom, got {df}")
    return float(math.exp(special.gammaln(df / 2) - 0.5 * math.log(df / 2) - special.gammaln((df - 1) / 2)))


def noncentral_t_limits(t: float, df: float, conf_level: float) -> tuple[float, float]:
    """Confidence limits of the noncentrality parameter of an observed t (two-sided).

    The lower limit solves P(T <= t; ncp) = 1 - alpha/2, the upper P(T <= t; ncp) = alpha/2
    (Steiger & Fouladi 1997), with T noncentral t on ``df`` degrees of freedom.

    Examples
    --------
    >>> [round(v, 4) for v in noncentral_t_limits(2.0, 20, 0.95)]
    [-0.0771, 4.0318]
    """
    alpha = 1 - check_conf_level(conf_level)

    def solve(p: float) -> float:
        f = lambda ncp: stats.nct.cdf(t, df, ncp) - p  # noqa: E731 - decreasing in ncp
        step = 2.0 + abs(t) / math.sqrt(df)
        lo, hi = t - step, t + step
        while f(lo) < 0:
            lo -= step
            step *= 2
        step = 2.0 + abs(t) / math.sqrt(df)
        while f(hi) > 0:
            hi += step
            step *= 2
        return float(optimize.brentq(f, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500))

    return solve(1 - alpha / 2), solve(alpha / 2)


@dataclass(frozen=True)
class EffectSizeResult:
    """A standardised mean difference with its interval.

    Attributes
    ----------
    estimate : float
        d, or g = J·d.
    se : float
        Hedges & Olkin's normal-approximation standard error at the estimate.
    ci_lower, ci_upper : float
    conf_level : float
    measure : str
        ``"cohens_d"`` or ``"hedges_g"``.
    design : str
        ``"paired"`` or ``"independent"``.
    kind : str
        The standardiser: ``"pooled"`` (independent), ``"av"``, ``"z"``, ``"rm"`` (paired).
    ci_method : str
        ``"noncentral"`` or ``"normal"``.
    n_x, n_y : int
        Values used in each argument (the number of pairs, twice, when paired).
    df : int
        Degrees of freedom of the t statistic and of J.
    correction : float
        J(df) for g, 1.0 for d.
    mean_difference : float
        mean(x) - mean(y) (= mean(x - y) when paired).
    standardizer : float
        The SD the difference was divided by (before J).
    correlation : float
        The x-y correlation of a paired design (NaN for independent groups).
    n_dropped : int
        Values (independent) or pairs (paired) dropped for missing values (``dropna=True``).
    """

    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    conf_level: float
    measure: str
    design: str
    kind: str
    ci_method: str
    n_x: int
    n_y: int
    df: int
    correction: float
    mean_difference: float
    standardizer: float
    correlation: float
    n_dropped: int

    @property
    def summary(self) -> pd.DataFrame:
        """One row: ``estimate, se, ci_lower, ci_upper, conf_level, measure, design, kind,
        ci_method, n_x, n_y, df``."""
        return pd.DataFrame([{
            "estimate": self.estimate, "se": self.se, "ci_lower": self.ci_lower, "ci_upper": self.ci_upper,
            "conf_level": self.conf_level, "measure": self.measure, "design": self.design, "kind": self.kind,
            "ci_method": self.ci_method, "n_x": self.n_x, "n_y": self.n_y, "df": self.df,
        }])

    def __str__(self) -> str:
        name = {"cohens_d": "d", "hedges_g": "g"}[self.measure]
        sub = "" if self.kind == "pooled" else f"_{self.kind}"
        return (f"{name}{sub} = {self.estimate:.2f} ({100 * self.conf_level:g}% CI {self.ci_lower:.2f} to "
                f"{self.ci_upper:.2f})")


def _smd(x, y, *, data, paired: bool, kind: str | None, conf_level: float, ci_method: str, dropna: bool,
         hedges: bool) -> EffectSizeResult:
    level = check_conf_level(conf_level)
    check_choice("ci_method", ci_method, CI_METHODS)
    if not isinstance(paired, (bool, np.bool_)):
        raise TypeError(f"paired must be True or False, got {paired!r}")
    xv, x_label = column_or_values("x", x, data)
    yv, y_label = column_or_values("y", y, data)
    z = z_value(level)
    if paired:
        kind = "av" if kind is None else kind
        check_choice("kind", kind, PAIRED_KINDS)
        ax, ay, dropped = paired_vectors(x_label, xv, y_label, yv, dropna=dropna)
        n = ax.size
        df = n - 1
        diff = ax - ay
        m = float(diff.mean())
        s_d = float(diff.std(ddof=1))
        sx, sy = float(ax.std(ddof=1)), float(ay.std(ddof=1))
        r = float(np.corrcoef(ax, ay)[0, 1]) if sx > 0 and sy > 0 else math.nan
        if s_d == 0:
            raise ValueError(f"the differences {x_label} - {y_label} have zero standard deviation: "
                             "a standardised change is undefined")
        if kind == "z":
            standardizer = s_d
        elif kind == "av":
            standardizer = (sx + sy) / 2
        else:
            if math.isnan(r):
                raise ValueError(f"d_rm needs the correlation of {x_label} and {y_label}, "
                                 "undefined when either has zero standard deviation")
            standardizer = s_d / math.sqrt(2 * (1 - r))
        if standardizer == 0:
            raise ValueError(f"{x_label} and {y_label} have zero standard deviation: d_{kind} is undefined")
        c = s_d / standardizer  # d_kind = c * d_z
        t_stat, scale_ncp = m / (s_d / math.sqrt(n)), c / math.sqrt(n)
        n_x = n_y = n
        design = "paired"

        def normal_se(es: float) -> float:
            return c * math.sqrt(1 / n + (es / c) ** 2 / (2 * n))
    else:
        kind = "pooled" if kind is None else kind
        check_choice("kind", kind, INDEPENDENT_KINDS)
        ax, dx = as_vector(x_label, xv, dropna=dropna)
        ay, dy = as_vector(y_label, yv, dropna=dropna)
        dropped = dx + dy
        n_x, n_y = ax.size, ay.size
        df = n_x + n_y - 2
        m = float(ax.mean() - ay.mean())
        standardizer = math.sqrt(((n_x - 1) * ax.var(ddof=1) + (n_y - 1) * ay.var(ddof=1)) / df)
        r = math.nan
        if standardizer == 0:
            raise ValueError(f"{x_label} and {y_label} have zero standard deviation: d is undefined")
        h = math.sqrt(1 / n_x + 1 / n_y)
        t_stat, scale_ncp = m / standardizer / h, h
        design = "independent"

        def normal_se(es: float) -> float:
            return math.sqrt(1 / n_x + 1 / n_y + es * es / (2 * (n_x + n_y)))

    d = m / standardizer
    j = hedges_j(df) if hedges else 1.0
    es = j * d
    se = normal_se(es)
    if ci_method == "noncentral":
        lo_ncp, hi_ncp = noncentral_t_limits(t_stat, df, level)
        lo, hi = j * lo_ncp * scale_ncp, j * hi_ncp * scale_ncp
    else:
        lo, hi = es - z * se, es + z * se
    return EffectSizeResult(
        estimate=es, se=se, ci_lower=lo, ci_upper=hi, conf_level=level,
        measure="hedges_g" if hedges else "cohens_d", design=design, kind=kind, ci_method=ci_method,
        n_x=int(n_x), n_y=int(n_y), df=int(df), correction=j, mean_difference=m, standardizer=standardizer,
        correlation=r, n_dropped=int(dropped),
    )


def cohens_d(x, y, *, data: pd.DataFrame | None = None, paired: bool = False, kind: str | None = None,
             conf_level: float = 0.95, ci_method: str = "noncentral", dropna: bool = False) -> EffectSizeResult:
    """Cohen's d of x against y, for two independent groups or paired values (change from baseline).

    Parameters
    ----------
    x, y : array-like, or column names of ``data``
        Independent: the two groups (d > 0 when x has the larger mean). Paired: the same
        patients twice, x the endpoint and y the baseline, so d is standardised change
        (negative when symptom scores fall).
    data : pandas.DataFrame, optional
        Read x and y as its columns.
    paired : bool, default False
    kind : str, optional
        The standardiser. Paired: ``"av"`` (default), ``"z"`` or ``"rm"``; independent:
        ``"pooled"`` (the default and only one). d_av is the default for change from
        baseline because it divides by the spread of scores, not of changes, so it is
        comparable with a between-group d and is not inflated by the pre-post correlation
        (Lakens 2013; Cumming 2012); d_z (the standardised response mean) is what power
        analyses of a paired t test use.
    conf_level : float, default 0.95
    ci_method : {"noncentral", "normal"}, default "noncentral"
        See the module notes (docs/effects.md).
    dropna : bool, default False
        Missing values are an error naming the argument unless ``dropna=True``, which drops
        them (whole pairs when paired) and counts them in ``n_dropped``.

    Returns
    -------
    EffectSizeResult

    Examples
    --------
    >>> from analysis.effects import cohens_d
    >>> baseline = [20, 18, 22, 25, 19, 21, 17, 23]
    >>> endpoint = [12, 15, 10, 20, 9, 14, 16, 11]
    >>> print(cohens_d(endpoint, baseline, paired=True))
    d_av = -2.30 (95% CI -3.76 to -0.80)
    >>> print(cohens_d(endpoint, baseline, paired=True, kind="z"))
    d_z = -1.78 (95% CI -2.91 to -0.62)
    """
    return _smd(x, y, data=data, paired=paired, kind=kind, conf_level=conf_level, ci_method=ci_method,
                dropna=dropna, hedges=False)


def hedges_g(x, y, *, data: pd.DataFrame | None = None, paired: bool = False, kind: str | None = None,
             conf_level: float = 0.95, ci_method: str = "noncentral", dropna: bool = False) -> EffectSizeResult:
    """Hedges' g: Cohen's d times the exact small-sample correction J(df) (Hedges 1981).

    The arguments are those of :func:`cohens_d`; df is n_x + n_y - 2 for independent groups
    and n - 1 for n pairs. With ``ci_method="noncentral"`` the limits are d's limits times J
    (as R's ``effectsize::hedges_g``).

    Examples
    --------
    >>> from analysis.effects import hedges_g
    >>> ketamine = [8, 12, 5, 10, 7, 9, 11, 6]
    >>> midazolam = [4, 6, 3, 8, 2, 5, 7, 4]
    >>> res = hedges_g(ketamine, midazolam)
    >>> round(res.estimate, 3), round(res.correction, 4), res.df
    (1.523, 0.9453, 14)
    """
    return _smd(x, y, data=data, paired=paired, kind=kind, conf_level=conf_level, ci_method=ci_method,
                dropna=dropna, hedges=True)
