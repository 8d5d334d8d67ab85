"""Cumulative incidence under competing risks (Aalen-Johansen) and Gray's test.

Agrees with R's ``cmprsk::cuminc`` (estimate, Gray's 1988 variance, Gray's K-sample test,
stratified, with ``rho``) and with ``survival::survfit`` on multi-state data (the same
Aalen-Johansen estimate, its infinitesimal-jackknife standard error, case weights and
delayed entry). See ``docs/competing-risks.md`` for the definitions, the conventions and
their sources.

Everything is vectorised over times (cumulative sums); the infinitesimal jackknife sums
over the distinct (entry, exit, cause) patterns of the rows, a block of them at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .._kernel import check_choice, check_conf_level, get_ax, z_value
from .._kernel.formula import missing_value_rule
from ..problems import DataValidationError, ValidationReport
from ._common import Grouping, group_indices, require_columns, survival_values, warn_caller
from ._confint import CONF_TYPES, survival_confint
from ._kaplan_meier import _minmin
from ._plotting import step_curve

__all__ = ["CumulativeIncidenceResult", "cumulative_incidence", "status_codes"]

#: ``cmprsk::cuminc``'s variance (Gray 1988) and the infinitesimal jackknife of ``survfit``
CIF_VARIANCES = ("cuminc", "jackknife")
_BLOCK = 2_000_000  # elements per block of the jackknife's pattern x time matrices


# ----------------------------------------------------------------------------------------
# input
# ----------------------------------------------------------------------------------------
def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def status_codes(values: pd.Series, censor, column: str, *, table: str = "data") -> tuple[np.ndarray, list]:
    """Integer codes of a competing-risks status column: 0 for ``censor``, 1..K for the
    causes, and the list of the K causes (R's order: a Categorical's categories, otherwise
    the sorted values). Missing values are the caller's (the one missing-value rule) and get
    code -1.

    A text or categorical status without the ``censor`` value is an error (a label such as
    ``"censored"`` would otherwise be taken for a cause); a numeric status without it warns.

    Examples
    --------
    >>> codes, causes = status_codes(pd.Series([0, 2, 1, 2]), 0, "status")
    >>> codes.tolist(), causes
    ([0, 2, 1, 2], [1, 2])
    >>> codes, causes = status_codes(pd.Series(["ltx", "censored", "death"]), "censored", "event")
    >>> codes.tolist(), causes
    ([2, 0, 1], ['death', 'ltx'])
    """
    s = values
    if pd.api.types.is_bool_dtype(s.dtype):
        s = s.astype("Int64") if s.isna().any() else s.astype(np.int64)
    present = s.notna().to_numpy()
    categorical = isinstance(s.dtype, pd.CategoricalDtype)
    numeric = pd.api.types.is_numeric_dtype(s.dtype) and not categorical
    if numeric:
        arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
        try:
            is_censor = present & (arr == float(censor))
        except (TypeError, ValueError):
            is_censor = np.zeros(len(s), dtype=bool)
        uniq = np.unique(arr[present & ~is_censor])
        causes = [int(u) if float(u).is_integer() else float(u) for u in uniq]
        codes = np.full(len(s), -1, dtype=np.int64)
        codes[present] = np.searchsorted(uniq, arr[present]) + 1
    else:
        arr = s.astype(object).to_numpy()

        def same(v) -> bool:
            try:
                return bool(v == censor)
            except (TypeError, ValueError):
                return False

        is_censor = np.array([p and same(v) for v, p in zip(arr, present)], dtype=bool)
        others = [v for v, p, c in zip(arr, present, is_censor) if p and not c]
        if categorical:
            seen = set(others)
            uniq = [c for c in s.cat.categories if c in seen]
        else:
            try:
                uniq = sorted(set(others))
            except TypeError:
                uniq = sorted(set(others), key=str)
        causes = [_plain(u) for u in uniq]
        lookup = {u: i + 1 for i, u in enumerate(uniq)}
        codes = np.array([lookup.get(v, -1) if p else -1 for v, p in zip(arr, present)], dtype=np.int64)
    codes[is_censor] = 0
    if not is_censor.any() and present.any():
        shown = ", ".join(repr(c) for c in causes[:6])
        if not numeric:
            report = ValidationReport(table)
            report.add_table_problem(
                table, f"no row has the censoring value censor={censor!r} (values: {shown}); pass censor= the "
                "value that means censored, e.g. censor='censored'", column=str(column))
            raise DataValidationError(report)
        warn_caller(f"column {column!r}: no row has the censoring value censor={censor!r}, so every row counts as "
                    f"an event of one of the causes {shown}; if one of them means censored, pass censor=", UserWarning)
    return codes, causes


@dataclass
class CompetingData:
    """Checked competing-risks data as numpy arrays (one element per row used)."""

    time: np.ndarray
    code: np.ndarray  # 0 censored, 1..K the causes
    causes: list
    entry: np.ndarray | None
    weights: np.ndarray | None
    group: Grouping
    strata: Grouping | None
    n_input: int
    n_dropped: int
    dropped_by_column: dict
    rows: np.ndarray

    @property
    def w(self) -> np.ndarray:
        return np.ones(self.time.size) if self.weights is None else self.weights


def prepare_competing(
    data: pd.DataFrame,
    duration: str,
    status: str,
    *,
    censor=0,
    entry: str | None = None,
    weights: str | None = None,
    group: str | None = None,
    strata: str | None = None,
    dropna: bool = False,
    table: str = "data",
) -> CompetingData:
    """Check the columns of a competing-risks analysis, every problem at once.

    As :func:`analysis.survival._common.prepare` (durations and entry times finite and
    >= 0, entry before the duration, weights > 0, the one missing-value rule), with a status
    column of any values: ``censor`` means censored, every other value is a cause.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    roles = {"duration": duration, "status": status, "entry": entry, "weights": weights, "group": group,
             "strata": strata}
    report = require_columns(data, roles, table)
    frame = data.reset_index(drop=True)
    n_input = len(frame)
    vals = survival_values(report, table, frame, duration=duration, entry=entry, weights=weights)
    missing_any, dropped = missing_value_rule(
        report, table, frame, {col: role for role, col in roles.items() if col is not None}, dropna=dropna)
    if not report.ok:
        raise DataValidationError(report)
    keep = ~missing_any
    n_dropped = int(missing_any.sum())
    if not keep.any():
        raise ValueError(f"{table}: no rows left to analyse ({n_input} row(s) in, {n_dropped} dropped for missing values)")
    sub = frame.loc[keep]
    codes, causes = status_codes(sub[status], censor, status, table=table)
    if not causes:
        raise ValueError(f"{table}: column {status!r} has no event of any cause (every row is censored with "
                         f"censor={censor!r})")
    grouping = Grouping.from_series(sub[group], group) if group is not None else Grouping.single(int(keep.sum()))
    strat = Grouping.from_series(sub[strata], strata) if strata is not None else None
    return CompetingData(
        time=vals.time[keep], code=codes, causes=causes,
        entry=vals.entry[keep] if vals.entry is not None else None,
        weights=vals.weights[keep] if vals.weights is not None else None,
        group=grouping, strata=strat, n_input=n_input, n_dropped=n_dropped,
        dropped_by_column=dropped if n_dropped else {}, rows=np.flatnonzero(keep),
    )


# ----------------------------------------------------------------------------------------
# the Aalen-Johansen estimate of one group
# ----------------------------------------------------------------------------------------
@dataclass
class GroupCurves:
    """Aalen-Johansen curves of one group, at its distinct times (all: ``time``) and at its
    event times of any cause (``etime``, the table's rows)."""

    time: np.ndarray  # distinct exit times (events and censorings)
    at_risk: np.ndarray  # (weighted) number at risk at each distinct time
    events: np.ndarray  # (m, K) events of each cause at each distinct time
    censored: np.ndarray
    surv_minus: np.ndarray  # all-cause Kaplan-Meier just before each distinct time
    cif: np.ndarray  # (m, K) cumulative incidence at each distinct time
    var: np.ndarray  # (m, K) its variance
    n: int
    weighted: bool

    @property
    def is_event(self) -> np.ndarray:
        return self.events.sum(axis=1) > 0


def _risk_counts(time, code, K, w, entry):
    """Distinct exit times and the weighted counts at each (at risk, events per cause,
    censored); at risk at t: ``entry < t <= time``."""
    ut, inv = np.unique(time, return_inverse=True)
    m = ut.size
    events = np.zeros((m, K))
    for k in range(K):
        sel = code == k + 1
        events[:, k] = np.bincount(inv[sel], weights=w[sel], minlength=m)
    censored = np.bincount(inv[code == 0], weights=w[code == 0], minlength=m)
    exits = np.bincount(inv, weights=w, minlength=m)
    at_risk = np.cumsum(exits[::-1])[::-1]
    if entry is not None:
        order = np.argsort(entry, kind="stable")
        late = np.concatenate([np.cumsum(w[order][::-1])[::-1], [0.0]])
        at_risk = at_risk - late[np.searchsorted(entry[order], ut, side="left")]
    return ut, inv, at_risk, events, censored


def _cuminc_variance(at_risk: np.ndarray, events: np.ndarray, surv_minus: np.ndarray, surv: np.ndarray,
                     cif: np.ndarray) -> np.ndarray:
    """Gray's (1988) variance of the cumulative incidence, exactly as ``cmprsk``'s Fortran
    ``cinc`` (unweighted counts), at every distinct time; constant between the event times
    of the cause."""
    m, K = events.shape
    rs = at_risk
    nd = events.sum(axis=1)
    fk, fkn = surv_minus, surv
    out = np.zeros((m, K))
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(K):
            nd1 = events[:, k]
            nd2 = nd - nd1
            F = cif[:, k]
            inc1 = np.zeros(m)
            inc2 = np.zeros(m)
            inc3 = np.zeros(m)
            # the other causes' events
            use2 = (nd2 > 0) & (fkn > 0)
            t5 = np.where(nd2 > 1, 1.0 - (nd2 - 1.0) / (rs - 1.0), 1.0)
            t6 = fk * fk * t5 * nd2 / (rs * rs)
            t3 = 1.0 / fkn
            t4 = F / fkn
            inc1 += np.where(use2, t4 * t4 * t6, 0.0)
            inc2 += np.where(use2, t3 * t4 * t6, 0.0)
            inc3 += np.where(use2, t3 * t3 * t6, 0.0)
            # the cause's own events
            use1 = nd1 > 0
            t5 = np.where(nd1 > 1, 1.0 - (nd1 - 1.0) / (rs - 1.0), 1.0)
            t6 = fk * fk * t5 * nd1 / (rs * rs)
            t3 = np.where(fkn > 0, 1.0 / fkn, 0.0)
            t4 = 1.0 + t3 * F
            inc1 += np.where(use1, t4 * t4 * t6, 0.0)
            inc2 += np.where(use1, t3 * t4 * t6, 0.0)
            inc3 += np.where(use1, t3 * t3 * t6, 0.0)
            v1, v2, v3 = np.cumsum(inc1), np.cumsum(inc2), np.cumsum(inc3)
            v = v1 + F * F * v3 - 2.0 * F * v2
            # recorded at the cause's own event times, carried forward between them
            last = np.maximum.accumulate(np.where(use1, np.arange(m), -1))
            out[:, k] = np.where(last >= 0, v[np.maximum(last, 0)], 0.0)
    return out


def _jackknife_variance(time, code, K, w, entry, ut, inv, at_risk, events, surv_minus) -> np.ndarray:
    """Infinitesimal-jackknife variance of the Aalen-Johansen cumulative incidence, as R's
    ``survfit`` for multi-state data: var F_k(t) = sum_i (w_i U_ik(t))^2, U_ik the derivative
    of F_k(t) with respect to the weight of row i.

    U_ik(t) = sum_{s <= t} [S(s-) h_k(s) L_i(s-) + S(s-) (dN_ik(s) - Y_i(s) h_k(s)) / Y(s)],
    L_i(s-) = -sum_{u < s} (dN_i(u) - Y_i(u) h(u)) / (Y(u) - d(u)) the derivative of log S(s-).
    """
    m = ut.size
    ev = events.sum(axis=1)
    is_ev = ev > 0
    E = np.flatnonzero(is_ev)  # event times: U changes only there
    M = E.size
    Y = at_risk[E]
    d = ev[E]
    hk = events[E] / Y[:, None]  # (M, K)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_left = np.where(Y > d, 1.0 / (Y - d), 0.0)  # once S = 0 nothing later counts
    B = d / Y * inv_left
    Sm = surv_minus[E]
    a = Sm[:, None] * hk  # (M, K)
    c = (Sm / Y)[:, None]  # (M, 1)
    # distinct (entry, exit, cause) patterns and their sum of squared weights
    pos_exit = np.searchsorted(ut[E], time, side="right")  # event times <= exit
    own = np.where(code > 0, np.searchsorted(ut[E], time, side="left"), -1)  # index of own event time
    if entry is None:
        pos_entry = np.zeros(time.size, dtype=np.int64)
    else:
        pos_entry = np.searchsorted(ut[E], entry, side="right")  # event times <= entry: not at risk
    keys = np.stack([pos_entry, pos_exit, code], axis=1)
    uk, kinv = np.unique(keys, axis=0, return_inverse=True)
    kinv = kinv.reshape(-1)
    w2 = np.bincount(kinv, weights=w * w, minlength=uk.shape[0])
    own_u = np.full(uk.shape[0], -1, dtype=np.int64)
    own_u[kinv] = own
    P = uk.shape[0]
    var = np.zeros((M, K))
    cols = np.arange(M)
    step = max(1, _BLOCK // max(M, 1))
    for start in range(0, P, step):
        sl = slice(start, min(P, start + step))
        pe, px, cc, ow, ww = uk[sl, 0], uk[sl, 1], uk[sl, 2], own_u[sl], w2[sl]
        Yi = (cols[None, :] >= pe[:, None]) & (cols[None, :] < px[:, None])
        dNi = (cols[None, :] == ow[:, None]) & (cc[:, None] > 0)
        # L_i(s-): exclusive cumulative sum
        inc = Yi * B[None, :] - dNi * inv_left[None, :]
        L = np.cumsum(inc, axis=1) - inc
        for k in range(K):
            dNik = dNi & (cc[:, None] == k + 1)
            U = np.cumsum(a[None, :, k] * L + c[None, :, 0] * (dNik - Yi * hk[None, :, k]), axis=1)
            var[:, k] += ww @ (U * U)
    out = np.zeros((m, K))
    last = np.maximum.accumulate(np.where(is_ev, np.arange(m), -1))
    idx = np.cumsum(is_ev) - 1
    out[last >= 0] = var[idx[last >= 0]]
    return out


def aalen_johansen(time, code, K, w, entry, *, variance: str, weighted: bool) -> GroupCurves:
    """The Aalen-Johansen cumulative incidence of the K causes in one group and its
    variance (``"cuminc"``: Gray's; ``"jackknife"``: survfit's)."""
    ut, inv, at_risk, events, censored = _risk_counts(time, code, K, w, entry)
    d = events.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(d > 0, d / at_risk, 0.0)
        surv = np.cumprod(1.0 - h)
        surv[surv < 0] = 0.0
        surv_minus = np.concatenate([[1.0], surv[:-1]])
        jumps = np.where(events > 0, surv_minus[:, None] * events / at_risk[:, None], 0.0)
    cif = np.cumsum(jumps, axis=0)
    if variance == "cuminc":
        var = _cuminc_variance(at_risk, events, surv_minus, surv, cif)
    else:
        var = _jackknife_variance(time, code, K, w, entry, ut, inv, at_risk, events, surv_minus)
    return GroupCurves(ut, at_risk, events, censored, surv_minus, cif, var, int(time.size), weighted)


# ----------------------------------------------------------------------------------------
# Gray's test
# ----------------------------------------------------------------------------------------
def _gray_stratum(time: np.ndarray, m: np.ndarray, g: np.ndarray, ng: int, rho: float):
    """Score and variance of Gray's (1988) test in one stratum, as ``cmprsk``'s ``crst``
    (``m``: 0 censored, 1 the cause tested, 2 another cause; ``g``: group codes 0..ng-1)."""
    ng1 = ng - 1
    ut, inv = np.unique(time, return_inverse=True)
    nt = ut.size
    cnt = np.zeros((3, nt, ng))
    for k in range(3):
        sel = m == k
        np.add.at(cnt[k], (inv[sel], g[sel]), 1.0)
    exits = cnt.sum(axis=0)
    rs_all = np.cumsum(exits[::-1], axis=0)[::-1]  # at risk (time >= t) per group
    d1_all, d2_all = cnt[1], cnt[2]
    ev = (d1_all.sum(axis=1) + d2_all.sum(axis=1)) > 0
    rs, d1, d2 = rs_all[ev], d1_all[ev], d2_all[ev]
    s = np.zeros(ng1)
    V = np.zeros((ng1, ng1))
    if rs.shape[0] == 0:
        return s, V
    nd1 = d1.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = rs > 0
        td = d1 + d2
        fac = np.where(pos, (rs - td) / np.where(pos, rs, 1.0), 1.0)
        skm = np.cumprod(fac, axis=0)
        skmm = np.vstack([np.ones((1, ng)), skm[:-1]])
        jump = np.where(pos, skmm * d1 / np.where(pos, rs, 1.0), 0.0)
        f1 = np.cumsum(jump, axis=0)
        f1m = np.vstack([np.zeros((1, ng)), f1[:-1]])
        t1 = np.where(pos, rs / skmm, 0.0)
        tr = t1.sum(axis=1)
        tq = np.where(pos, rs * (1.0 - f1m) / skmm, 0.0).sum(axis=1)
        f = np.cumsum(nd1 / tr)
        fm = np.concatenate([[0.0], f[:-1]])
        fb = (1.0 - fm) ** rho
        a = fb[:, None, None] * (t1[:, :, None] * np.eye(ng)[None] - t1[:, :, None] * t1[:, None, :] / tr[:, None, None])
        c = np.cumsum(a * (nd1 / (tr * (1.0 - fm)))[:, None, None], axis=0)
        s = np.where(pos[:, :ng1], fb[:, None] * (d1[:, :ng1] - nd1[:, None] * rs[:, :ng1] * (1.0 - f1m[:, :ng1])
                                                   / (skmm[:, :ng1] * tq[:, None])), 0.0).sum(axis=0)
        # the cause's own events
        use1 = (nd1[:, None] > 0) & pos
        t4 = np.where(skm > 0, 1.0 - (1.0 - f[:, None]) / np.where(skm > 0, skm, 1.0), 1.0)
        t5 = np.where(nd1[:, None] > 1, 1.0 - (nd1[:, None] - 1.0) / (tr[:, None] * skmm - 1.0), 1.0)
        t3 = np.where(use1, t5 * skmm * nd1[:, None] / (tr[:, None] * np.where(pos, rs, 1.0)), 0.0)
        v3 = (t4 * t4 * t3).sum(axis=0)
        T1 = a[:, :ng1, :] - t4[:, None, :] * c[:, :ng1, :]
        v2 = np.einsum("jik,jk->ik", T1, t4 * t3)
        V += np.einsum("jik,jlk,jk->il", T1, T1, t3)
        # the other causes' events
        use2 = (skm > 0) & (d2 > 0)
        sk = np.where(use2, skm, 1.0)
        t4 = np.where(use2, (1.0 - f[:, None]) / sk, 0.0)
        t5 = np.where(d2 > 1, 1.0 - (d2 - 1.0) / np.where(use2, rs - 1.0, 1.0), 1.0)
        t3 = np.where(use2, t5 * skmm * skmm * d2 / np.where(pos, rs * rs, 1.0), 0.0)
        v3 = v3 + (t4 * t4 * t3).sum(axis=0)
        T2 = t4[:, None, :] * c[:, :ng1, :]
        v2 = v2 - np.einsum("jik,jk->ik", T2, t4 * t3)
        V += np.einsum("jik,jlk,jk->il", T2, T2, t3)
    cf = c[-1, :ng1, :]
    V += (cf * v3[None, :]) @ cf.T + cf @ v2.T + v2 @ cf.T
    return s, V


def gray_test(time, code, K, group: Grouping, strata: Grouping | None, rho: float, causes: list) -> pd.DataFrame:
    """Gray's K-sample test for each cause, summed over strata, as ``cmprsk::cuminc``'s
    ``Tests``: ``statistic, df, p_value`` indexed by cause."""
    ng = group.n_levels
    s_codes = strata.codes if strata is not None else np.zeros(time.size, dtype=np.intp)
    n_str = strata.n_levels if strata is not None else 1
    rows = []
    for k in range(K):
        m = np.where(code == 0, 0, np.where(code == k + 1, 1, 2))
        s = np.zeros(ng - 1)
        V = np.zeros((ng - 1, ng - 1))
        for idx in group_indices(s_codes, n_str):
            si, vi = _gray_stratum(time[idx], m[idx], group.codes[idx], ng, rho)
            s += si
            V += vi
        if np.linalg.matrix_rank(V) == ng - 1:
            stat = float(s @ np.linalg.solve(V, s))
        else:
            stat = float("nan")
        rows.append((causes[k], stat, ng - 1, float(stats.chi2.sf(stat, ng - 1)) if np.isfinite(stat) else np.nan))
    out = pd.DataFrame(rows, columns=["cause", "statistic", "df", "p_value"]).set_index("cause")
    return out


# ----------------------------------------------------------------------------------------
# result
# ----------------------------------------------------------------------------------------
def cif_confint(F: np.ndarray, se: np.ndarray, conf_type: str, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise limits for a cumulative incidence ``F`` with standard error ``se``: R's
    ``survfit_confint(F, se, logse=FALSE, conf.type)`` (the transform applied to F itself,
    as survfit does for the probabilities of a multi-state curve), except that before the
    cause's first event (F = 0, se = 0) the limits are 0 rather than undefined."""
    F = np.asarray(F, dtype=float)
    se = np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        se_log = np.where(se == 0, 0.0, se / F)
    lo, hi = survival_confint(F, se_log, conf_type, z)
    if conf_type != "none":
        zero = (F == 0) & (se == 0)
        lo = np.where(zero, 0.0, lo)
        hi = np.where(zero, 0.0, hi)
    return lo, hi


class CumulativeIncidenceResult:
    """Aalen-Johansen cumulative incidence of each cause, one curve per group and cause.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per group, cause and event time of the group (an event of any cause):
        ``group, cause, time, at_risk, events, estimate, se, ci_lower, ci_upper``.
        ``estimate`` is the cumulative incidence F_k(t) (the probability of having had an
        event of cause k by t), ``se`` its standard error (``variance``), ``events`` the
        events of the cause at the time, ``at_risk`` the number at risk (weighted sums when
        weighted).
    median : pandas.DataFrame
        ``group, cause, n, events, median, ci_lower, ci_upper``: the first time F_k reaches
        0.5 (NaN if never) and the same for the upper and lower limit curves.
    test : pandas.DataFrame or None
        Gray's test that the cause's cumulative incidence is the same in every group
        (stratified with ``strata``): ``statistic, df, p_value`` indexed by cause; None with
        a single group.
    causes, levels : list
        The causes (status values other than ``censor``) and the groups, in order.
    conf_type, conf_level, variance, n_dropped
        The settings used; rows dropped for missing values (``dropna=True``).
    """

    def __init__(self, curves: list[GroupCurves], *, levels: list, causes: list, conf_type: str,
                 conf_level: float, variance: str, n_dropped: int, group_column: str | None,
                 test: pd.DataFrame | None, weighted: bool, rho: float, strata_column: str | None):
        self._curves = curves
        self.levels = levels
        self.causes = causes
        self.conf_type = conf_type
        self.conf_level = conf_level
        self.variance = variance
        self.n_dropped = n_dropped
        self.group_column = group_column
        self.strata_column = strata_column
        self.rho = rho
        self.test = test
        self.weighted = weighted
        z = z_value(conf_level)
        self._se = [np.sqrt(np.maximum(c.var, 0.0)) for c in curves]
        self._ci = [cif_confint(c.cif, se, conf_type, z) for c, se in zip(curves, self._se)]
        self.table = self._make_table()
        self._median: pd.DataFrame | None = None

    def _frame(self, parts: list[dict]) -> pd.DataFrame:
        """One DataFrame from per-(group, cause) column arrays (labels repeated)."""
        cols = {}
        for name in ("group", "cause"):
            labels = np.empty(len(parts), dtype=object)
            labels[:] = [p[name] for p in parts]
            cols[name] = np.repeat(labels, [p["time"].size for p in parts])
        for name in ("time", "at_risk", "events", "estimate", "se", "ci_lower", "ci_upper"):
            cols[name] = np.concatenate([p[name] for p in parts])
        out = pd.DataFrame(cols)
        for name in ("group", "cause"):
            out[name] = pd.Series(cols[name].tolist(), dtype=pd.Series(cols[name].tolist()).dtype)
        if not self.weighted:
            for col in ("at_risk", "events"):
                out[col] = out[col].astype(np.int64)
        return out

    def _make_table(self) -> pd.DataFrame:
        parts = []
        for level, cv, se, (lo, hi) in zip(self.levels, self._curves, self._se, self._ci):
            e = cv.is_event
            for k, cause in enumerate(self.causes):
                parts.append({
                    "group": level, "cause": cause, "time": cv.time[e], "at_risk": cv.at_risk[e],
                    "events": cv.events[e, k], "estimate": cv.cif[e, k], "se": se[e, k], "ci_lower": lo[e, k],
                    "ci_upper": hi[e, k],
                })
        return self._frame(parts)

    @property
    def median(self) -> pd.DataFrame:
        """The time each cumulative incidence reaches 0.5, per group and cause.

        The rule of the curves (``docs/api.md``) with F in place of 1 - S: the first event
        time with F(t) >= 0.5; if F is exactly 0.5 (within sqrt(machine epsilon)) over an
        interval, the midpoint of that interval. The limits are the same rule applied to
        the upper limit curve (``ci_lower``) and to the lower limit curve (``ci_upper``).
        NaN when the curve never reaches 0.5, which is common: a cause's incidence tends to
        a value below 1 when other causes compete.
        """
        if self._median is None:
            rows = []
            none = self.conf_type == "none"
            for level, cv, (lo, hi) in zip(self.levels, self._curves, self._ci):
                e = cv.is_event
                t = cv.time[e]
                for k, cause in enumerate(self.causes):
                    ev = cv.events[:, k].sum()
                    rows.append({
                        "group": level, "cause": cause, "n": cv.n, "events": float(ev) if self.weighted else int(ev),
                        "median": _minmin(1.0 - cv.cif[e, k], t),
                        "ci_lower": float("nan") if none else _minmin(1.0 - hi[e, k], t),
                        "ci_upper": float("nan") if none else _minmin(1.0 - lo[e, k], t),
                    })
            self._median = pd.DataFrame(rows)
        return self._median

    def at(self, times: Sequence[float] | float, *, extend: bool = False) -> pd.DataFrame:
        """The cumulative incidences at given times (step functions: the value in force),
        as ``cmprsk::timepoints`` and R's ``summary(survfit, times=)``.

        Parameters
        ----------
        times : float or sequence of float
            Sorted ascending in the output.
        extend : bool, default False
            Beyond a group's last observed time the curve is unknown: NaN unless
            ``extend=True``, which carries the last value forward.

        Returns
        -------
        pandas.DataFrame
            ``group, cause, time, at_risk, events, estimate, se, ci_lower, ci_upper``:
            ``at_risk`` at the time, ``events`` of the cause since the previous time asked
            for (since 0 for the first). Before a cause's first event the estimate, se and
            limits are 0.

        Examples
        --------
        >>> import pandas as pd
        >>> from analysis.survival import cumulative_incidence
        >>> df = pd.DataFrame({"t": [1, 2, 2, 3, 4, 5], "status": [1, 2, 0, 1, 0, 2]})
        >>> cumulative_incidence(df, "t", "status").at([2, 4])[["cause", "time", "estimate"]].round(4)
           cause  time  estimate
        0      1   2.0    0.1667
        1      1   4.0    0.3889
        2      2   2.0    0.1667
        3      2   4.0    0.1667
        """
        req = np.sort(np.atleast_1d(np.asarray(times, dtype=float)))
        parts = []
        for level, cv, se, (lo, hi) in zip(self.levels, self._curves, self._se, self._ci):
            i1 = np.searchsorted(cv.time, req, side="right") - 1
            i2 = np.searchsorted(cv.time, req, side="left")
            at_risk = np.concatenate([cv.at_risk, [0.0]])[i2]
            before = i1 < 0
            j = np.maximum(i1, 0)
            beyond = (req > cv.time[-1]) & (not extend)
            for k, cause in enumerate(self.causes):
                cum_ev = np.where(before, 0.0, np.cumsum(cv.events[:, k])[j])

                def val(a, zero=0.0):
                    return np.where(beyond, np.nan, np.where(before, zero, a[j, k]))

                none = self.conf_type == "none"
                parts.append({
                    "group": level, "cause": cause, "time": req, "at_risk": at_risk,
                    "events": np.diff(np.concatenate([[0.0], cum_ev])), "estimate": val(cv.cif), "se": val(se),
                    "ci_lower": val(lo, np.nan if none else 0.0), "ci_upper": val(hi, np.nan if none else 0.0),
                })
        return self._frame(parts)

    def plot(self, ax=None, *, causes: Sequence | None = None, ci: bool = True):
        """Step curves of the cumulative incidences (one line per group and cause; causes
        told apart by line style, groups by colour) with their pointwise bands.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on (default: the current axes).
        causes : sequence, optional
            The causes to draw (default all).
        ci : bool, default True
            Shade the pointwise confidence bands.

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = get_ax(ax)
        wanted = list(self.causes) if causes is None else list(causes)
        unknown = [c for c in wanted if c not in self.causes]
        if unknown:
            raise ValueError(f"causes {unknown!r} are not among the causes {self.causes!r}")
        styles = ["-", "--", ":", "-."]
        colors = [f"C{i}" for i in range(10)]
        for gi, (level, cv, (lo, hi)) in enumerate(zip(self.levels, self._curves, self._ci)):
            e = cv.is_event
            for k, cause in enumerate(self.causes):
                if cause not in wanted:
                    continue
                parts = [] if self.group_column is None else [f"{self.group_column}={level}"]
                parts.append(f"cause {cause}")
                show = ci and self.conf_type != "none"
                line = step_curve(ax, cv.time[e], cv.cif[e, k], start=0.0, lower=lo[e, k] if show else None,
                                  upper=hi[e, k] if show else None, label=", ".join(parts),
                                  color=colors[gi % len(colors)])
                line.set_linestyle(styles[wanted.index(cause) % len(styles)])
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(left=0)
        ax.set_xlabel("time")
        ax.set_ylabel("cumulative incidence")
        ax.legend(loc="best", frameon=False)
        return ax

    def __repr__(self) -> str:
        return (f"CumulativeIncidenceResult({len(self.levels)} group(s), causes={self.causes!r}, "
                f"variance={self.variance!r}, conf_type={self.conf_type!r}, conf_level={self.conf_level})\n"
                f"{self.median.to_string(index=False)}")


def cumulative_incidence(
    data: pd.DataFrame,
    duration: str,
    status: str,
    *,
    group: str | None = None,
    strata: str | None = None,
    censor=0,
    conf_type: str = "log-log",
    conf_level: float = 0.95,
    variance: str = "cuminc",
    rho: float = 0.0,
    weights: str | None = None,
    entry: str | None = None,
    dropna: bool = False,
    table: str = "data",
) -> CumulativeIncidenceResult:
    """Cumulative incidence of competing causes (Aalen-Johansen), with Gray's test.

    Agrees with R's ``cmprsk::cuminc(duration, status, group, strata, rho, cencode=censor)``
    (estimates, variances and the ``Tests``) and, with ``variance="jackknife"``, with
    ``survfit(Surv(duration, factor(status)) ~ group, weights=, id=)`` (the same
    estimates, its ``std.err`` and, for the same ``conf.type``, its limits).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject (per interval with ``entry``).
    duration : str
        Time to the first event of any cause, or to censoring (>= 0).
    status : str
        What ended the follow-up: ``censor`` (default 0) for censoring, any other value is
        a cause (1, 2, ... or labels such as ``"relapse"``). Causes are ordered as R orders
        them (a Categorical's categories, otherwise sorted values).
    group : str, optional
        Column whose levels get separate curves and are compared by Gray's test.
    strata : str, optional
        Column stratifying Gray's test (the curves do not depend on it), as cuminc's.
    censor : default 0
        The status value meaning censored.
    conf_type : {"log-log", "log", "plain", "logit", "arcsin", "none"}, default "log-log"
        Transform of the pointwise interval, applied to F itself as R's survfit does for
        state probabilities: "log-log" is exp(-exp(log(-log F) -+ z se / (F log F))) and
        keeps the limits inside (0, 1). cmprsk computes no intervals; R's survfit defaults
        to "log".
    conf_level : float, default 0.95
    variance : {"cuminc", "jackknife"}, default "cuminc"
        "cuminc": Gray's (1988) estimator as computed by cmprsk's cuminc, the field's
        reference. "jackknife": the infinitesimal jackknife of R's survfit for multi-state
        data (asymptotically the same; needed with ``weights`` or ``entry``).
    rho : float, default 0
        Power of the weight (1 - F(t-))^rho of Gray's test (cuminc's ``rho``).
    weights, entry : str, optional
        Case weights (> 0) and delayed-entry times (at risk at t when ``entry < t <=
        duration``); only with ``variance="jackknife"`` (cuminc has neither). Gray's test is
        not computed with them.
    dropna : bool, default False
        The missing-value rule: missing values are an error naming the column and rows,
        unless ``dropna=True`` (rows dropped and counted in ``n_dropped``).
    table : str, default "data"
        Name of the table in error messages.

    Returns
    -------
    CumulativeIncidenceResult

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival import cumulative_incidence
    >>> df = pd.DataFrame({"days": [3, 5, 5, 8, 12, 14, 20, 21, 4, 6, 9, 15, 18, 25, 30, 31],
    ...                    "status": [1, 2, 1, 0, 1, 2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 0],
    ...                    "arm": [0] * 8 + [1] * 8})
    >>> ci = cumulative_incidence(df, "days", "status", group="arm")
    >>> ci.at([14])[["group", "cause", "estimate", "se"]].round(4)
       group  cause  estimate      se
    0      0      1    0.4062  0.2034
    1      0      2    0.2812  0.1962
    2      1      1    0.1250  0.1263
    3      1      2    0.1250  0.1250
    >>> ci.test.round(3)
           statistic  df  p_value
    cause
    1          1.117   1    0.291
    2          0.001   1    0.972
    """
    check_choice("conf_type", conf_type, CONF_TYPES)
    check_choice("variance", variance, CIF_VARIANCES)
    conf_level = check_conf_level(conf_level)
    rho = float(rho)
    if variance == "cuminc" and (weights is not None or entry is not None):
        what = " and ".join(n for n, v in (("weights", weights), ("entry", entry)) if v is not None)
        raise ValueError(f"{what} need variance='jackknife' (R's survfit); cmprsk's cuminc variance has no {what}")
    cd = prepare_competing(data, duration, status, censor=censor, entry=entry, weights=weights, group=group,
                           strata=strata, dropna=dropna, table=table)
    K = len(cd.causes)
    curves = []
    w = cd.w
    for idx in group_indices(cd.group.codes, cd.group.n_levels):
        curves.append(aalen_johansen(cd.time[idx], cd.code[idx], K, w[idx],
                                     None if cd.entry is None else cd.entry[idx], variance=variance,
                                     weighted=weights is not None))
    test = None
    if cd.group.n_levels > 1:
        if weights is None and entry is None:
            test = gray_test(cd.time, cd.code, K, cd.group, cd.strata, rho, cd.causes)
        else:
            warn_caller("Gray's test is not computed with weights or entry times (cmprsk has neither); "
                        "ci.test is None", UserWarning)
    return CumulativeIncidenceResult(
        curves, levels=cd.group.levels, causes=cd.causes, conf_type=conf_type, conf_level=conf_level,
        variance=variance, n_dropped=cd.n_dropped, group_column=group, test=test, weighted=weights is not None,
        rho=rho, strata_column=strata,
    )
