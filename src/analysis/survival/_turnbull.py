"""Turnbull's nonparametric maximum likelihood estimate for interval-censored times.

``turnbull(relapse, "lower", "upper", group="rapamycin")`` estimates the survival curve
S(t) = P(T > t) when each time is known only to lie in an interval (lower, upper]
(R's ``Surv(lower, upper, type = "interval2")`` conventions, see ``_aft_data``), which is
what periodic questionnaires give: a relapse is seen at the first qualifying assessment,
so it happened after the previous one.

The estimate puts probability mass on Turnbull's innermost intervals (Turnbull 1976),
placed at their midpoints as R's ``survfit`` does, and agrees with R's
``survfit(Surv(lower, upper, type = "interval2") ~ group)`` once both are iterated to
convergence. Conventions, formulas and sources: ``docs/aft-turnbull.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from .._kernel import ConvergenceWarning, check_conf_level, get_ax, renamed_arguments
from ..problems import DataValidationError, ValidationReport
from ._aft_data import bound_values, check_columns, interval_status, missing_problem, weight_values
from ._aft_fit import EXACT, INTERVAL, LEFT, RIGHT
from ._common import Grouping, warn_caller
from ._plotting import step_curve

__all__ = ["TurnbullResult", "turnbull"]

#: default seed of the bootstrap, so that intervals are the same on every run
DEFAULT_SEED = 20240601


# ----------------------------------------------------------------------------------------
# support: Turnbull intervals as R's survfitTurnbull builds them
# ----------------------------------------------------------------------------------------
@dataclass
class Support:
    """Candidate support of one group, sorted: ``time`` is where the mass is drawn (the
    exact time, or the midpoint of the innermost interval), ``left``/``right`` the interval
    (left == right for an exact time). ``tail`` is True when the last point is +inf, the
    mass beyond the largest right-censoring time."""

    time: np.ndarray
    left: np.ndarray
    right: np.ndarray
    tail: bool


def build_support(status: np.ndarray, t1: np.ndarray, t2: np.ndarray) -> Support:
    """Innermost intervals from the sorted endpoints (R's ``survfitTurnbull``).

    Endpoints are sorted by time with, at equal times, exact times first, then right
    endpoints, then left endpoints (intervals are open on the left, closed on the right).
    A left endpoint (or exact time) followed directly by a right endpoint bounds an
    innermost interval; its mass is drawn at the midpoint. Exact times are support points
    themselves. A left-censored row counts as the interval (0, upper].
    """
    ex = status == EXACT
    rc = status == RIGHT
    lc = status == LEFT
    ic = status == INTERVAL
    times = np.concatenate([t1[ex], t1[rc], np.zeros(int(lc.sum())), t1[ic], t1[lc], t2[ic]])
    codes = np.concatenate([
        np.zeros(int(ex.sum())), np.full(int(rc.sum()) + int(lc.sum()) + int(ic.sum()), 2.0),
        np.ones(int(lc.sum()) + int(ic.sum())),
    ])
    order = np.lexsort((codes, times))
    times, codes = times[order], codes[order]
    pair = (codes[:-1] != 1) & (codes[1:] == 1)
    left = np.concatenate([t1[ex], times[:-1][pair]])
    right = np.concatenate([t1[ex], times[1:][pair]])
    mid = np.concatenate([t1[ex], 0.5 * (times[:-1][pair] + times[1:][pair])])
    if mid.size:
        uniq, first = np.unique(mid, return_index=True)
        # a midpoint equal to an exact time happens only for the pair (t, t): same interval
        left, right, mid = left[first], right[first], uniq
    tail = bool(rc.any() and (mid.size == 0 or t1[rc].max() >= mid.max()))
    if tail:
        left = np.concatenate([left, [t1[rc].max()]])
        right = np.concatenate([right, [np.inf]])
        mid = np.concatenate([mid, [np.inf]])
    return Support(mid, left, right, tail)


def membership(sup: Support, status: np.ndarray, t1: np.ndarray, t2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the support points it allows as a half-open index range [a, b)."""
    s = sup.time
    m = s.size
    a = np.empty(status.size, dtype=np.int64)
    b = np.empty(status.size, dtype=np.int64)
    ex, rc, lc, ic = (status == EXACT), (status == RIGHT), (status == LEFT), (status == INTERVAL)
    a[ex] = np.searchsorted(s, t1[ex], side="left")
    b[ex] = a[ex] + 1
    a[rc] = np.searchsorted(s, t1[rc], side="right")
    b[rc] = m
    a[lc] = np.searchsorted(s, 0.0, side="right")
    b[lc] = np.searchsorted(s, t1[lc], side="right")
    a[ic] = np.searchsorted(s, t1[ic], side="right")
    b[ic] = np.searchsorted(s, t2[ic], side="right")
    if np.any(b <= a):  # cannot happen with the support above; guard against silent nonsense
        raise RuntimeError("turnbull: an observation has no support point (please report this data)")
    return a, b


# ----------------------------------------------------------------------------------------
# the self-consistency (EM) algorithm, vectorised over observations and replicates
# ----------------------------------------------------------------------------------------
@dataclass
class EMResult:
    p: np.ndarray           # (B, m) masses
    loglik: np.ndarray      # (B,)
    iterations: int
    converged: np.ndarray   # (B,) bool
    max_change: np.ndarray  # (B,) last max |change in S|
    kkt_gap: np.ndarray     # (B,) max_j d_j / W - 1 (0 at the NPMLE; EM-style gradient check)


def npmle(a: np.ndarray, b: np.ndarray, W: np.ndarray, m: int, *, tol: float = 1e-10,
          max_iter: int = 100_000) -> EMResult:
    """Self-consistency (EM) iterations of Turnbull (1976), accelerated by SQUAREM.

    Each observation i allows the support points a_i <= j < b_i. With masses p, the
    probability of observation i is q_i = P_{b_i} - P_{a_i} (P the cumulative sums), and
    the EM update is p_j <- p_j d_j / W with d_j = sum_{i: a_i <= j < b_i} w_i / q_i
    (a cumulative sum of a difference array: O(n + m) per iteration, no loop over rows).
    ``W`` is (B, n): B weightings of the same observations (B = 1 for the estimate, the
    bootstrap's resampling counts otherwise), iterated together as a matrix.

    Steps are accelerated with SQUAREM (Varadhan and Roland 2008, scheme S3: two EM steps,
    an extrapolation along them, one stabilising EM step, falling back to the plain double
    EM step when the extrapolation leaves the simplex or lowers the likelihood).
    Convergence: the largest change of S(t) over a cycle below ``tol``; replicates that
    have converged stop iterating. ``iterations`` counts EM steps.
    """
    W = np.atleast_2d(np.asarray(W, dtype=float))
    B, n = W.shape
    rows = np.arange(n)
    M = sparse.csr_matrix(
        (np.concatenate([np.ones(n), -np.ones(n)]), (np.concatenate([rows, rows]), np.concatenate([a, b]))),
        shape=(n, m + 1),
    )
    MT = M.T.tocsr()
    Wsum = W.sum(axis=1)
    pos = W > 0

    def q_of(p):
        P = np.zeros((p.shape[0], m + 1))
        np.cumsum(p, axis=1, out=P[:, 1:])
        return P[:, b] - P[:, a]

    def loglik(p, sel):
        q = q_of(p)
        ok = pos[sel]
        return np.sum(np.where(ok, W[sel] * np.log(np.where(ok, q, 1.0)), 0.0), axis=1)

    def em(p, sel):
        q = q_of(p)
        V = np.where(pos[sel], W[sel] / q, 0.0)
        D = np.cumsum((MT @ V.T).T, axis=1)[:, :m]
        return p * D / Wsum[sel, None], D

    # start: uniform on the points that some weighted observation allows
    cover = np.cumsum((MT @ pos.T.astype(float)).T, axis=1)[:, :m] > 0
    p = cover / cover.sum(axis=1, keepdims=True)
    change = np.full(B, np.inf)
    steps = 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ll = loglik(p, np.arange(B))
        active = np.arange(B)
        while active.size and steps < max_iter:
            pa = p[active]
            p1, _ = em(pa, active)
            p2, _ = em(p1, active)
            r = p1 - pa
            v = p2 - p1 - r
            rn = np.sqrt(np.sum(r * r, axis=1))
            vn = np.sqrt(np.sum(v * v, axis=1))
            alpha = np.minimum(np.where(vn > 0, -rn / vn, -1.0), -1.0)
            pn = pa - 2.0 * alpha[:, None] * r + (alpha**2)[:, None] * v
            bad = np.any((pn < 0) | ((pn <= 0) & (p2 > 0)), axis=1) | ~np.all(np.isfinite(pn), axis=1)
            pn[bad] = p2[bad]
            pn /= pn.sum(axis=1, keepdims=True)
            pn, _ = em(pn, active)
            ll_n = loglik(pn, active)
            worse = ~(ll_n >= loglik(p2, active) - 1e-12 * np.abs(ll_n))
            if worse.any():
                sel = active[worse]
                pn[worse], _ = em(p2[worse], sel)
                ll_n[worse] = loglik(pn[worse], sel)
            steps += 3
            change[active] = np.max(np.abs(np.cumsum(pn - pa, axis=1)), axis=1)
            p[active] = pn
            ll[active] = ll_n
            active = active[change[active] >= tol]
        _, D = em(p, np.arange(B))
        gap = np.max(np.where(cover, D, -np.inf), axis=1) / Wsum - 1.0
    return EMResult(p, ll, steps, change < tol, change, gap)


# ----------------------------------------------------------------------------------------
# the result
# ----------------------------------------------------------------------------------------
@dataclass
class _Group:
    level: object
    n: int
    weight: float
    sup: Support
    p: np.ndarray                 # masses
    boot: np.ndarray | None       # (n_boot, m) bootstrap masses on the same support
    last_time: float              # largest finite bound in the group's data
    em: EMResult

    @property
    def surv(self) -> np.ndarray:
        return np.clip(1.0 - np.cumsum(self.p), 0.0, 1.0)

    def boot_surv(self) -> np.ndarray | None:
        return None if self.boot is None else np.clip(1.0 - np.cumsum(self.boot, axis=1), 0.0, 1.0)


class TurnbullResult:
    """Turnbull (NPMLE) survival curves for interval-censored times, one per group.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per candidate Turnbull interval (finite ones) per group: ``group, time,
        left, right, mass, survival, se, ci_lower, ci_upper``. The probability ``mass`` of the
        interval (``left``, ``right``] (a single time when left == right) is drawn at
        ``time``, its midpoint, as R's survfit draws it; ``survival`` is S just after
        ``time``. Inside an interval with positive mass S(t) is not identified by the data
        (only its values at the interval's ends are). ``se`` is the bootstrap standard
        deviation of S and the intervals are bootstrap percentile intervals
        (``ci_method``); both NaN with ``n_boot=0``.
    median : pandas.DataFrame
        ``group, n, median, left, right, ci_lower, ci_upper``: the first ``time`` at which
        S <= 0.5, the Turnbull interval it stands for, and a bootstrap percentile interval.
    tail_mass : dict
        Probability beyond the largest right-censoring time, per group (0 when the curve
        reaches 0).
    ci_method, conf_level, n_boot, seed
        "bootstrap percentile" (rows resampled with replacement within each group).
    converged, iterations, loglik : dict
        Per group: EM convergence, iterations and the log-likelihood at the estimate.
    n_dropped : int
        Rows dropped for missing bounds/weights/groups (``dropna=True``).
    """

    def __init__(self, groups: list[_Group], *, group_column, conf_level, n_boot, seed, n_dropped, tol):
        self._groups = groups
        self.levels = [g.level for g in groups]
        self.group_column = group_column
        self.conf_level = conf_level
        self.n_boot = n_boot
        self.seed = seed
        self.tol = tol
        self.n_dropped = n_dropped
        self.ci_method = "bootstrap percentile" if n_boot > 0 else "none"
        self.converged = {g.level: bool(g.em.converged[0]) for g in groups}
        self.iterations = {g.level: int(g.em.iterations) for g in groups}
        self.loglik = {g.level: float(g.em.loglik[0]) for g in groups}
        self.tail_mass = {g.level: float(g.p[-1]) if g.sup.tail else 0.0 for g in groups}
        self.table = self._make_table()
        self._median: pd.DataFrame | None = None

    def _limits(self, boot_s: np.ndarray | None, m: int) -> tuple[np.ndarray, np.ndarray]:
        if boot_s is None:
            return np.full(m, np.nan), np.full(m, np.nan)
        alpha = 1.0 - self.conf_level
        lo, hi = np.quantile(boot_s, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
        return lo, hi

    @staticmethod
    def _se(boot_s: np.ndarray | None, m: int) -> np.ndarray:
        if boot_s is None or boot_s.shape[0] < 2:
            return np.full(m, np.nan)
        return np.std(boot_s, axis=0, ddof=1)

    def _make_table(self) -> pd.DataFrame:
        parts = []
        for g in self._groups:
            fin = np.isfinite(g.sup.time)
            bs = g.boot_surv()
            lo, hi = self._limits(bs, g.sup.time.size)
            parts.append(pd.DataFrame({
                "group": [g.level] * int(fin.sum()),
                "time": g.sup.time[fin],
                "left": g.sup.left[fin],
                "right": g.sup.right[fin],
                "mass": g.p[fin],
                "survival": g.surv[fin],
                "se": self._se(bs, g.sup.time.size)[fin],
                "ci_lower": lo[fin],
                "ci_upper": hi[fin],
            }))
        return pd.concat(parts, ignore_index=True)

    def at(self, times: Sequence[float] | float) -> pd.DataFrame:
        """Survival at given times, as R's ``summary(fit, times=)`` reads the curve.

        S(t) = 1 - (mass at support times <= t); a mass is counted at its interval's
        midpoint, as R draws it. ``identified`` is False where t lies strictly inside a
        Turnbull interval that carries mass (> 1e-8): there the data do not determine S(t)
        and the value depends on that convention. Past the group's largest finite bound,
        S is NaN unless it has already reached 0.

        Returns
        -------
        pandas.DataFrame
            ``group, time, survival, se, ci_lower, ci_upper, identified`` (``se`` the
            bootstrap standard deviation of S(t)).
        """
        req = np.sort(np.atleast_1d(np.asarray(times, dtype=float)))
        parts = []
        for g in self._groups:
            s = g.sup.time
            k = np.searchsorted(s, req, side="right")  # number of support points <= t
            S = np.concatenate([[1.0], g.surv])[k]
            bs = g.boot_surv()
            if bs is None:
                lo = hi = se = np.full(req.size, np.nan)
            else:
                bsk = np.concatenate([np.ones((bs.shape[0], 1)), bs], axis=1)[:, k]
                lo, hi = self._limits(bsk, req.size)
                se = self._se(bsk, req.size)
            heavy = g.p > 1e-8
            lft, rgt = g.sup.left[heavy], g.sup.right[heavy]  # disjoint, sorted by left end
            j = np.searchsorted(lft, req, side="left") - 1     # last interval with left < t
            inside = (j >= 0) & (req < rgt[np.maximum(j, 0)]) if lft.size else np.zeros(req.size, dtype=bool)
            beyond = (req > g.last_time) & (S > 0)
            parts.append(pd.DataFrame({
                "group": [g.level] * req.size,
                "time": req,
                "survival": np.where(beyond, np.nan, S),
                "se": np.where(beyond, np.nan, se),
                "ci_lower": np.where(beyond, np.nan, lo),
                "ci_upper": np.where(beyond, np.nan, hi),
                "identified": ~inside & ~beyond,
            }))
        return pd.concat(parts, ignore_index=True)

    @property
    def median(self) -> pd.DataFrame:
        """Median per group: the first support time with S <= 0.5 and its Turnbull interval."""
        if self._median is None:
            rows = []
            for g in self._groups:
                fin = np.isfinite(g.sup.time)
                s_fin = g.surv[fin]
                hit = np.flatnonzero(s_fin <= 0.5)
                if hit.size:
                    j = hit[0]
                    med, lft, rgt = g.sup.time[fin][j], g.sup.left[fin][j], g.sup.right[fin][j]
                else:
                    med = lft = rgt = np.nan
                lo = hi = np.nan
                bs = g.boot_surv()
                if bs is not None:
                    below = bs[:, fin] <= 0.5
                    first = np.where(below.any(axis=1), np.argmax(below, axis=1), -1)
                    meds = np.where(first >= 0, g.sup.time[fin][np.maximum(first, 0)], np.inf)
                    alpha = 1.0 - self.conf_level
                    lo, hi = np.quantile(meds, [alpha / 2.0, 1.0 - alpha / 2.0], method="inverted_cdf")
                    lo = float(lo) if np.isfinite(lo) else np.nan
                    hi = float(hi) if np.isfinite(hi) else np.nan
                rows.append({"group": g.level, "n": g.n, "median": med, "left": lft, "right": rgt,
                             "ci_lower": lo, "ci_upper": hi})
            self._median = pd.DataFrame(rows)
        return self._median

    def plot(self, ax=None, *, ci: bool = True, intervals: bool = False):
        """Step curves (mass drawn at the midpoints, as R) with bootstrap bands.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
        ci : bool, default True
            Shade the bootstrap percentile band (when ``n_boot > 0``).
        intervals : bool, default False
            Mark each Turnbull interval carrying mass (> 1e-8) with a horizontal bar
            under the curve: where S(t) is not identified.

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = get_ax(ax)
        for g in self._groups:
            fin = np.isfinite(g.sup.time)
            lo, hi = self._limits(g.boot_surv(), g.sup.time.size)
            show = ci and g.boot is not None
            label = None if self.group_column is None else f"{self.group_column}={g.level}"
            line = step_curve(ax, g.sup.time[fin], g.surv[fin], start=1.0,
                              lower=lo[fin] if show else None, upper=hi[fin] if show else None, label=label)
            if intervals:
                heavy = fin & (g.p > 1e-8) & (g.sup.right > g.sup.left)
                before = np.concatenate([[1.0], g.surv[:-1]])
                ax.hlines(before[heavy], g.sup.left[heavy], g.sup.right[heavy], colors=line.get_color(),
                          linewidth=4, alpha=0.35)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(left=0)
        ax.set_xlabel("time")
        ax.set_ylabel("survival probability")
        if self.group_column is not None:
            ax.legend(loc="best", frameon=False)
        return ax

    def __repr__(self) -> str:
        return (f"TurnbullResult({len(self._groups)} group(s), ci_method={self.ci_method!r}, "
                f"n_boot={self.n_boot}, conf_level={self.conf_level})\n"
                + self.median.to_string(index=False))


# ----------------------------------------------------------------------------------------
# the function
# ----------------------------------------------------------------------------------------
@renamed_arguments(maxiter="max_iter")
def turnbull(
    data: pd.DataFrame,
    lower: str,
    upper: str,
    *,
    group: str | None = None,
    weights: str | None = None,
    conf_level: float = 0.95,
    n_boot: int = 500,
    seed: int | None = DEFAULT_SEED,
    tol: float = 1e-10,
    max_iter: int = 100_000,
    dropna: bool = False,
) -> TurnbullResult:
    """Turnbull's NPMLE of the survival curve of interval-censored times.

    Agrees with R's ``survfit(Surv(lower, upper, type = "interval2") ~ group)`` (survival
    3.x), whose iterations stop at a change of 5e-5 and so leave up to about 2e-3 of error
    in S; here they continue until S changes by less than ``tol``, and the estimate agrees
    with R's run to convergence and with the ``npsurv`` package's constrained Newton method.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation.
    lower, upper : str
        Bounds, as ``Surv(lower, upper, type = "interval2")``: ``lower == upper`` an exact
        time; ``lower < T <= upper``; ``upper`` inf or NaN: right-censored at ``lower``;
        ``lower`` 0, NaN or -inf: left-censored (T <= ``upper``); both NaN: a missing row.
        Times >= 0.
    group : str, optional
        Column whose levels get separate curves (R's factor order).
    weights : str, optional
        Case weights (> 0).
    conf_level : float, default 0.95
        Level of the bootstrap percentile intervals.
    n_boot : int, default 500
        Bootstrap replicates (rows resampled with replacement within each group, the
        NPMLE refitted on the same candidate support); 0 for no intervals.
    seed : int or None, default 20240601
        Seed of the bootstrap (``numpy.random.default_rng``), fixed by default so that the
        intervals are the same on every run.
    tol, max_iter : float, int
        Convergence: the largest change of S(t) over an accelerated EM cycle below ``tol``,
        within ``max_iter`` EM steps (``maxiter`` is the name of the previous release,
        deprecated); a group that does not converge gets a ``ConvergenceWarning``.
    dropna : bool, default False
        Rows with missing bounds (both NaN), weight or group raise an error unless
        ``dropna=True``, which drops them and counts them in ``n_dropped``.

    Returns
    -------
    TurnbullResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from analysis.survival import turnbull
    >>> df = pd.DataFrame({"lower": [0, 7, 7, 14, 14, 21, 28],
    ...                    "upper": [7, 14, 21, 21, np.inf, 28, np.inf]})
    >>> tb = turnbull(df, "lower", "upper", n_boot=0)
    >>> tb.table[["time", "left", "right", "mass", "survival"]].round(4)
       time  left  right    mass  survival
    0   3.5   0.0    7.0  0.1429    0.8571
    1  10.5   7.0   14.0  0.2013    0.6558
    2  17.5  14.0   21.0  0.2905    0.3653
    3  24.5  21.0   28.0  0.1826    0.1826
    >>> round(tb.tail_mass["all"], 4)   # beyond day 28, the largest censoring time
    0.1826
    """
    conf_level = check_conf_level(conf_level)
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    n_boot = int(n_boot)
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    table = "data"
    report = ValidationReport(table)
    check_columns(report, table, data, {"lower": lower, "upper": upper, "weights": weights, "group": group})
    if not report.ok:
        raise DataValidationError(report)
    frame = data.reset_index(drop=True)
    n_input = len(frame)
    lo, up = bound_values(report, table, frame, lower, upper)
    miss_any = np.zeros(n_input, dtype=bool)
    status = t1 = t2 = None
    if lo is not None and up is not None:
        status, t1, t2, miss = interval_status(report, table, lo, up, lower, upper, positive=False)
        missing_problem(report, table, f"{lower}, {upper}", "bound in both columns", miss, dropna,
                        " (lower and upper both NaN: no information)")
        miss_any |= miss
    w = None
    if weights is not None:
        w, miss = weight_values(report, table, frame, weights, dropna)
        miss_any |= miss
    if group is not None:
        miss = frame[group].isna().to_numpy()
        missing_problem(report, table, group, "group", miss, dropna)
        miss_any |= miss
    if not report.ok:
        raise DataValidationError(report)
    keep = ~miss_any
    n_dropped = int(miss_any.sum())
    if not keep.any():
        raise ValueError(f"{table}: no rows left to analyse ({n_input} row(s) in, {n_dropped} dropped for missing values)")
    grouping = Grouping.from_series(frame[group], group) if group is not None else Grouping.single(n_input)
    if n_dropped:
        grouping = grouping.take(keep)
    status, t1, t2 = status[keep], t1[keep], t2[keep]
    wk = np.ones(status.size) if w is None else w[keep]
    rng = np.random.default_rng(seed)
    groups = []
    for code, level in enumerate(grouping.levels):
        idx = np.flatnonzero(grouping.codes == code)
        groups.append(_fit_group(level, status[idx], t1[idx], t2[idx], wk[idx], n_boot, rng, tol, max_iter))
    late = [str(g.level) for g in groups if not g.em.converged[0]]
    if late:
        warn_caller(
            f"turnbull: the EM iterations did not reach tol={tol} within max_iter={max_iter} for group(s) "
            f"{', '.join(late)}; raise max_iter",
            ConvergenceWarning,
        )
    return TurnbullResult(groups, group_column=group, conf_level=conf_level, n_boot=n_boot, seed=seed,
                          n_dropped=n_dropped, tol=tol)


def _fit_group(level, status, t1, t2, w, n_boot, rng, tol, max_iter) -> _Group:
    sup = build_support(status, t1, t2)
    a, b = membership(sup, status, t1, t2)
    m = sup.time.size
    # identical observations (same allowed range) are merged, weights summed
    key = a * (m + 1) + b
    uniq, inv = np.unique(key, return_inverse=True)
    ua, ub = uniq // (m + 1), uniq % (m + 1)
    wu = np.bincount(inv, weights=w, minlength=uniq.size)
    est = npmle(ua, ub, wu[None, :], m, tol=tol, max_iter=max_iter)
    boot = None
    if n_boot > 0:
        n = status.size
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)  # (n_boot, n)
        onehot = sparse.csr_matrix((w, (np.arange(n), inv)), shape=(n, uniq.size))
        Wb = np.asarray((onehot.T @ counts.T).T)
        boot = npmle(ua, ub, Wb, m, tol=max(tol, 1e-8), max_iter=max_iter).p
    finite = np.concatenate([t1[np.isfinite(t1)], t2[np.isfinite(t2)]])
    last = float(finite.max()) if finite.size else 0.0
    return _Group(level, int(status.size), float(w.sum()), sup, est.p[0], boot, last, est)
