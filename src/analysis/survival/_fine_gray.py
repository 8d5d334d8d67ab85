"""The Fine-Gray subdistribution hazards model and cause-specific Cox models.

:func:`fine_gray` builds the inverse-probability-of-censoring weighted counting-process data
of Fine & Gray (1999) (the construction of R's ``survival::finegray``: a subject who had a
competing event stays in the risk sets of later events of the cause, with weight
G(t-) / G(s-), G the Kaplan-Meier estimate of the censoring distribution, s their event
time) and fits it with the package's :func:`~analysis.survival.cox` (weights, the subject
as cluster, robust variance). With ``cmprsk::crr``'s estimate of G and Breslow's ties this
maximises exactly crr's pseudo-likelihood, so the coefficients are crr's; the variance is
crr's own sandwich (Fine & Gray 1999, section 3, which also counts the estimation of G),
computed here vectorised, or the robust variance of ``coxph`` on the weighted data. See
``docs/competing-risks.md``.

:func:`cause_specific_cox` fits one :func:`~analysis.survival.cox` per cause, the other
causes censored.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from patsy import EvalEnvironment

from .._kernel import (
    ModelResult, capture_env, check_choice, check_conf_level, coef_table, coefficient_plot, design_for, get_ax,
)
from .._kernel.formula import ModelFrame
from ..problems import DataValidationError, ValidationReport
from ._common import slim_frame, survival_frame, survival_values, warn_caller
from ._competing import status_codes
from ._confint import CONF_TYPES
from ._cox import CoxResult, fit_cox
from ._cox_engine import EPS, ITER_MAX, TOLER_CHOL

__all__ = ["CauseSpecificCoxResult", "FineGrayResult", "cause_specific_cox", "fine_gray"]

FG_VARIANCES = ("auto", "crr", "robust")
FG_CENSORING = ("crr", "finegray")
_X = "fg_x"  # model columns of the weighted data passed to cox


# ----------------------------------------------------------------------------------------
# the censoring distribution
# ----------------------------------------------------------------------------------------
@dataclass
class Censoring:
    """Kaplan-Meier estimate of the censoring distribution of one censoring group: its
    distinct censoring times ``c``, G just after each (``after``) and the group's last
    follow-up time ``tmax``, after which G is 0 (as crr's: its approx() of the curve ends
    with 0 just after the group's last time, which matters with censoring groups only)."""

    c: np.ndarray
    after: np.ndarray
    tmax: float
    zero_inclusive: bool = False

    def minus(self, t: np.ndarray) -> np.ndarray:
        """G(t-): the product over censoring times strictly before t (0 after ``tmax``;
        with ``zero_inclusive``, as crr, G(0-) is G(0), after the censorings at time 0)."""
        t = np.asarray(t, dtype=float)
        q = np.searchsorted(self.c, t, side="left")
        if self.zero_inclusive:
            q = np.where(t <= 0, np.searchsorted(self.c, t, side="right"), q)
        return np.where(t > self.tmax, 0.0, np.concatenate([[1.0], self.after])[q])


def censoring_km(time: np.ndarray, mcode: np.ndarray, convention: str) -> Censoring:
    """G of one censoring group. ``"crr"``: as cmprsk's crr, ``survfit(Surv(time,
    censored))``: a subject with an event at a censoring time is still at risk of being
    censored then. ``"finegray"``: as survival's finegray, events at t come before the
    censorings at t (not at risk of them)."""
    cens = mcode == 0
    c, n_c = np.unique(time[cens], return_counts=True)
    ts = np.sort(time)
    at_risk = ts.size - np.searchsorted(ts, c, side="left")
    if convention == "finegray":
        ev_t = np.sort(time[~cens])
        at_risk = at_risk - (np.searchsorted(ev_t, c, side="right") - np.searchsorted(ev_t, c, side="left"))
    after = np.cumprod(1.0 - n_c / at_risk)
    return Censoring(c, after, float(time.max()), zero_inclusive=convention == "crr")


# ----------------------------------------------------------------------------------------
# the weighted counting-process data
# ----------------------------------------------------------------------------------------
@dataclass
class Expanded:
    row: np.ndarray  # subject (position among the rows used) of each row
    start: np.ndarray  # rank-scale times (start, stop]
    stop: np.ndarray
    status: np.ndarray  # 1 for an event of the cause
    weight: np.ndarray  # censoring weight G(t-) / G(s-) (1 for the subject's own row)


def expand(time: np.ndarray, mcode: np.ndarray, cg: np.ndarray, G: list[Censoring]) -> Expanded:
    """Each subject's own row (0, t] and, for a subject with a competing event at s, one row
    per interval between censoring times that holds an event of the cause after s, with
    weight G(t-) / G(s-) (t any event time in the interval). Times are ranks (1 = the
    smallest distinct time): only their order matters to the partial likelihood."""
    n = time.size
    ut = np.unique(time)
    rank = lambda t: np.searchsorted(ut, t, side="left") + 1.0  # noqa: E731
    T = np.unique(time[mcode == 1])
    rows, starts, stops, wts = [np.arange(n)], [np.zeros(n)], [rank(time)], [np.ones(n)]
    status = [(mcode == 1).astype(float)]
    for g, Gg in enumerate(G):
        sub = np.flatnonzero((cg == g) & (mcode == 2))
        Tg = T[T <= Gg.tmax]  # after the group's last time its G is 0 (crr's rule): no rows there
        if sub.size == 0 or Tg.size == 0:
            continue
        q = np.searchsorted(Gg.c, Tg, side="left")  # censoring times before each event time
        uq, first = np.unique(q, return_index=True)
        last_T = Tg[np.concatenate([first[1:], [Tg.size]]) - 1]
        s = time[sub]
        k0 = np.searchsorted(Tg, s, side="right")  # first event time after s
        has = k0 < Tg.size
        sub, s, k0 = sub[has], s[has], k0[has]
        pos0 = np.searchsorted(uq, q[k0])
        nr = uq.size - pos0
        j = np.repeat(np.arange(sub.size), nr)
        r = np.arange(nr.sum()) - np.repeat(np.cumsum(nr) - nr, nr) + pos0[j]
        qq = uq[r]
        cuts = np.concatenate([[-np.inf], Gg.c])
        lo = np.maximum(s[j], cuts[qq])
        after = np.concatenate([[1.0], Gg.after])
        wt = after[qq] / Gg.minus(s)[j]
        keep = wt > 0  # G reaches 0 only at the group's last time
        rows.append(sub[j][keep])
        starts.append(rank(lo)[keep])
        stops.append(rank(last_T[r])[keep])
        wts.append(wt[keep])
        status.append(np.zeros(int(keep.sum())))
    return Expanded(np.concatenate(rows), np.concatenate(starts), np.concatenate(stops), np.concatenate(status),
                    np.concatenate(wts))


# ----------------------------------------------------------------------------------------
# crr's variance
# ----------------------------------------------------------------------------------------
def crr_variance(time: np.ndarray, mcode: np.ndarray, X: np.ndarray, beta: np.ndarray, cg: np.ndarray,
                 G: list[Censoring]) -> tuple[np.ndarray, np.ndarray]:
    """(information, sandwich variance) of the Fine-Gray estimate, as ``cmprsk``'s
    Fortran ``crrvv``: V = I^-1 (sum_i (eta_i + psi_i)(eta_i + psi_i)') I^-1, eta_i the
    subject's score term and psi_i the term from the estimation of the censoring
    distribution (Fine & Gray 1999, eq. 8-9). Vectorised over the distinct event times."""
    info, eta, psi = crr_parts(time, mcode, X, beta, cg, G)
    score = eta + psi
    inv = np.linalg.inv(info)
    return info, inv @ (score.T @ score) @ inv


def crr_parts(time: np.ndarray, mcode: np.ndarray, X: np.ndarray, beta: np.ndarray, cg: np.ndarray,
              G: list[Censoring]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The information, the subjects' score terms eta_i and the censoring terms psi_i of
    :func:`crr_variance`. With Breslow's ties, I^-1 (sum eta_i eta_i') I^-1 is coxph's
    robust variance on the weighted data (the weights taken as known)."""
    n, p = X.shape
    ng = len(G)
    Xc = X - X.mean(axis=0)
    r = np.exp(Xc @ beta)
    T, dk = np.unique(time[mcode == 1], return_counts=True)
    dk = dk.astype(float)
    m = T.size
    order = np.argsort(time, kind="stable")
    ts = time[order]
    Gm = np.empty(n)  # G(t_i-) of each subject's own group
    GT = np.empty((ng, m))  # G_g(T_k-)
    for g, Gg in enumerate(G):
        sel = cg == g
        Gm[sel] = Gg.minus(time[sel])
        GT[g] = Gg.minus(T)
    xx = Xc[:, :, None] * Xc[:, None, :]

    def suffix(v):  # sum over subjects with time >= T_k
        v = v[order]
        cs = np.concatenate([np.cumsum(v[::-1], axis=0)[::-1], np.zeros((1,) + v.shape[1:])])
        return cs[np.searchsorted(ts, T, side="left")]

    def prefix2(v, g, at):  # sum over competing-event subjects of group g with time < at, of v / G(t_j-)
        sel = np.flatnonzero((cg == g) & (mcode == 2))
        o = sel[np.argsort(time[sel], kind="stable")]
        vv = v[o] / Gm[o].reshape((-1,) + (1,) * (v.ndim - 1))
        cs = np.concatenate([np.zeros((1,) + v.shape[1:]), np.cumsum(vv, axis=0)])
        return cs[np.searchsorted(time[o], at, side="left")]

    S0 = suffix(r)
    S1 = suffix(r[:, None] * Xc)
    S2 = suffix(r[:, None, None] * xx)
    for g in range(ng):
        S0 = S0 + GT[g] * prefix2(r, g, T)
        S1 = S1 + GT[g][:, None] * prefix2(r[:, None] * Xc, g, T)
        S2 = S2 + GT[g][:, None, None] * prefix2(r[:, None, None] * xx, g, T)
    xbar = S1 / S0[:, None]
    info = np.einsum("k,kij->ij", dk / S0, S2) - np.einsum("k,ki,kj->ij", dk, xbar, xbar)

    # eta: the score terms
    a0 = dk / S0
    a1 = a0[:, None] * xbar
    P0 = np.concatenate([[0.0], np.cumsum(a0)])
    P1 = np.vstack([np.zeros((1, p)), np.cumsum(a1, axis=0)])
    upto = np.searchsorted(T, time, side="right")  # event times <= t_i
    eta = -r[:, None] * (Xc * P0[upto][:, None] - P1[upto])
    ev = np.flatnonzero(mcode == 1)
    eta[ev] += Xc[ev] - xbar[np.searchsorted(T, time[ev])]
    comp = np.flatnonzero(mcode == 2)
    for g in range(ng):
        sel = comp[cg[comp] == g]
        b0 = a0 * GT[g]
        b1 = a1 * GT[g][:, None]
        Q0 = np.concatenate([np.cumsum(b0[::-1])[::-1], [0.0]])  # sum over T_k > t
        Q1 = np.vstack([np.cumsum(b1[::-1], axis=0)[::-1], np.zeros((1, p))])
        k = upto[sel]
        eta[sel] -= (r[sel] / Gm[sel])[:, None] * (Xc[sel] * Q0[k][:, None] - Q1[k])

    # psi: the estimation of the censoring distribution, at the censoring times u
    u = np.unique(time[mcode == 0])
    psi = np.zeros((n, p))
    if u.size:
        ge = np.searchsorted(T, u, side="left")  # event times >= u start here
        for g in range(ng):
            # q_g(u): how the weights of the group's competing-event subjects move with its
            # censoring distribution; with censoring groups crr (2.2-11) sums over the
            # group's own events of the cause and its own competing-event subjects
            dkg = np.bincount(np.searchsorted(T, time[(mcode == 1) & (cg == g)]), minlength=m).astype(float)
            b0 = dkg / S0 * GT[g]
            b1 = b0[:, None] * xbar
            C = np.concatenate([np.cumsum(b0[::-1])[::-1], [0.0]])[ge]
            D = np.vstack([np.cumsum(b1[::-1], axis=0)[::-1], np.zeros((1, p))])[ge]
            qu = C[:, None] * prefix2(r[:, None] * Xc, g, u) - D * prefix2(r, g, u)[:, None]
            sel = np.flatnonzero(cg == g)
            tg = np.sort(time[sel])
            pi = tg.size - np.searchsorted(tg, u, side="left")  # at risk in the group at u
            cens_g = np.sort(time[sel[mcode[sel] == 0]])
            dc = np.searchsorted(cens_g, u, side="right") - np.searchsorted(cens_g, u, side="left")
            with np.errstate(divide="ignore", invalid="ignore"):
                inc = np.where((dc > 0)[:, None], qu * (dc / (pi.astype(float) ** 2))[:, None], 0.0)
            cum = np.vstack([np.zeros((1, p)), np.cumsum(inc, axis=0)])
            psi[sel] = -cum[np.searchsorted(u, time[sel], side="right")]
            cs = sel[mcode[sel] == 0]
            iu = np.searchsorted(u, time[cs])
            pic = tg.size - np.searchsorted(tg, time[cs], side="left")
            psi[cs] += qu[iu] / pic[:, None]
    return info, eta, psi


# ----------------------------------------------------------------------------------------
# the pseudo-likelihood without the weighted data (Breslow's ties, no weights or clusters)
# ----------------------------------------------------------------------------------------
class _RiskSums:
    """Sums over the Fine-Gray risk set of each event time T_k of the cause, without
    building the weighted data: the subjects still event-free at T_k (weight 1) plus the
    competing-event subjects of each censoring group g before T_k, weighted
    G_g(T_k-) / G_g(s_j-), by cumulative sums over the time order (crr's own scheme). The
    orders are computed once; :meth:`of` takes per-subject values of any trailing shape."""

    def __init__(self, time: np.ndarray, mcode: np.ndarray, cg: np.ndarray, G: list[Censoring]):
        self.T, dk = np.unique(time[mcode == 1], return_counts=True)
        self.dk = dk.astype(float)
        self.order = np.argsort(time, kind="stable")
        self.pos = np.searchsorted(time[self.order], self.T, side="left")
        self.groups = []
        for g, Gg in enumerate(G):
            sel = np.flatnonzero((cg == g) & (mcode == 2))
            o = sel[np.argsort(time[sel], kind="stable")]
            self.groups.append((o, 1.0 / Gg.minus(time[o]), np.searchsorted(time[o], self.T, side="left"),
                                Gg.minus(self.T)))

    def of(self, v: np.ndarray) -> np.ndarray:
        shape = v.shape[1:]
        vs = v[self.order]
        out = np.concatenate([np.cumsum(vs[::-1], axis=0)[::-1], np.zeros((1,) + shape)])[self.pos]
        for o, inv_g, at, GT in self.groups:
            vv = v[o] * inv_g.reshape((-1,) + (1,) * len(shape))
            cs = np.concatenate([np.zeros((1,) + shape), np.cumsum(vv, axis=0)])[at]
            out = out + GT.reshape((-1,) + (1,) * len(shape)) * cs
        return out


def _direct_newton(time, mcode, X, cg, G, *, max_iter: int, tol: float):
    """Newton-Raphson on crr's pseudo-likelihood with Breslow's ties (the one ``cox`` maximises
    on the weighted data), O(n p^2) per iteration. Returns (beta, information, loglik at 0,
    loglik, iterations, converged); convergence as ``cox``'s: a relative change of the log
    likelihood below ``tol``, step halving when it falls."""
    Xc = X - X.mean(axis=0)
    p = X.shape[1]
    sums = _RiskSums(time, mcode, cg, G)
    ev = mcode == 1
    x_ev = Xc[ev].sum(axis=0)
    xx = Xc[:, :, None] * Xc[:, None, :]
    dk = sums.dk

    def evaluate(beta):
        eta = Xc @ beta
        r = np.exp(eta)
        S0 = sums.of(r)
        S1 = sums.of(r[:, None] * Xc)
        S2 = sums.of(r[:, None, None] * xx)
        xbar = S1 / S0[:, None]
        ll = float(eta[ev].sum() - dk @ np.log(S0))
        score = x_ev - dk @ xbar
        info = np.einsum("k,kij->ij", dk / S0, S2) - np.einsum("k,ki,kj->ij", dk, xbar, xbar)
        return ll, score, info

    beta = np.zeros(p)
    ll, score, info = evaluate(beta)
    ll0 = ll
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        step = np.linalg.solve(info, score)
        new = beta + step
        ll_new, score_new, info_new = evaluate(new)
        halvings = 0
        while not ll_new >= ll - 1e-12 * abs(ll) and halvings < 30:  # also when NaN
            step = step / 2
            new = beta + step
            ll_new, score_new, info_new = evaluate(new)
            halvings += 1
        done = abs(1.0 - ll / ll_new) <= tol if ll_new != 0 else abs(ll_new - ll) <= tol
        beta, ll, score, info = new, ll_new, score_new, info_new
        if done:
            converged = True
            break
    return beta, info, ll0, ll, it, converged


def expanded_rows(time: np.ndarray, mcode: np.ndarray, cg: np.ndarray, G: list[Censoring]) -> int:
    """Number of rows :func:`expand` would build (``n_rows``), without building them."""
    total = time.size
    T = np.unique(time[mcode == 1])
    for g, Gg in enumerate(G):
        sub = np.flatnonzero((cg == g) & (mcode == 2))
        Tg = T[T <= Gg.tmax]
        if sub.size == 0 or Tg.size == 0:
            continue
        q = np.searchsorted(Gg.c, Tg, side="left")
        uq = np.unique(q)
        s = time[sub]
        k0 = np.searchsorted(Tg, s, side="right")
        has = k0 < Tg.size
        s, k0 = s[has], k0[has]
        pos0 = np.searchsorted(uq, q[k0])
        after = np.concatenate([[1.0], Gg.after])
        # rows whose weight G would be 0 are left out by expand: count the positive ones
        positive = np.concatenate([np.cumsum((after[uq] > 0)[::-1])[::-1], [0]])
        total += int(positive[pos0].sum())
    return total


# ----------------------------------------------------------------------------------------
# result
# ----------------------------------------------------------------------------------------
@dataclass(kw_only=True, eq=False, repr=False)
class FineGrayResult(ModelResult):
    """A fitted Fine-Gray subdistribution hazards model (the results convention).

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per model column: ``coef`` (log subdistribution hazard ratio), ``se``,
        ``statistic``, ``p_value``, ``ci_lower``, ``ci_upper``, ``ratio`` (the
        subdistribution hazard ratio exp(coef)), ``ratio_lower``, ``ratio_upper``; then
        ``naive_se`` (the inverse information, crr's ``invinf``) and ``robust_se``
        (``coxph``'s robust variance on the weighted data) when ``se`` is crr's.
    cov : pandas.DataFrame
        The variance used by the summary (``variance``).
    crr_cov, robust_cov, naive_cov : pandas.DataFrame or None
        crr's sandwich (None with weights or a cluster), coxph's robust variance on the
        weighted data, and the inverse information.
    loglik : pandas.Series
        The log pseudo-likelihood at 0 (``null``) and at the estimate (``model``): crr's
        ``loglik.null`` and ``loglik`` with Breslow's ties.
    cause, censor, causes
        The cause modelled, the censoring value, and every cause of the data.
    n_obs, n_events, n_competing, n_censored, n_dropped, n_clusters, n_rows
        Subjects used, events of the cause, competing events, censored subjects, rows
        dropped for missing values, clusters of the robust variance and rows of the
        weighted counting-process data.
    variance, censoring, ties, converged, iterations
        Settings and the fit's convergence (Newton-Raphson of :func:`cox`).
    """

    loglik: pd.Series
    naive_cov: pd.DataFrame
    robust_cov: pd.DataFrame
    crr_cov: pd.DataFrame | None = None
    cause: Any = 1
    censor: Any = 0
    causes: list = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    terms: dict[str, list[int]] = field(default_factory=dict)
    n_events: int = 0
    n_competing: int = 0
    n_censored: int = 0
    n_clusters: int = 0
    n_rows: int = 0
    dropped_by_column: dict[str, int] = field(default_factory=dict)
    variance: str = "crr"
    censoring: str = "crr"
    ties: str = "breslow"
    iterations: int = 0
    _frame: ModelFrame | None = None
    _cox: CoxResult | None = None  # cox on the weighted data; built on demand (predictions) by _cox_builder
    _cox_builder: Any = None
    _times: np.ndarray | None = None  # distinct times (the cox fit's ranks index them)
    _event_times: np.ndarray | None = None

    _ratio_label: ClassVar[str] = "subdistribution hazard ratio"

    def predict_cumulative_incidence(self, profiles, *, times: Sequence[float] | None = None,
                                     conf_type: str = "log-log", conf_level: float | None = None) -> pd.DataFrame:
        """Cumulative incidence of the cause for covariate profiles, as ``predict.crr``.

        F(t | z) = 1 - exp(-exp(z'b) Lambda_0(t)), Lambda_0 the Breslow estimate of the
        baseline cumulative subdistribution hazard on the weighted data (crr's ``bfitj``;
        with ``ties="efron"`` its Efron analogue, as ``survfit`` on the coxph fit). ``se``
        is the standard error of the cumulative subdistribution hazard and the limits
        those of ``survfit`` on the coxph fit (robust coefficient variance, the censoring
        weights taken as known).

        Parameters
        ----------
        profiles : DataFrame or dict
            One row per profile with the formula's columns.
        times : sequence of float, optional
            Default: the distinct event times of the cause (predict.crr's ``uftime``).
            Values are read as a step function (0 before the first event time); NaN after
            the last observed time.
        conf_type : {"log-log", "log", "plain", "logit", "arcsin", "none"}, default "log-log"
            Transform of the interval (of the survival-type curve 1 - F, as survfit).
        conf_level : float, optional
            Defaults to the model's.

        Returns
        -------
        pandas.DataFrame
            ``profile, time, cumulative_incidence, se, ci_lower, ci_upper``.

        Examples
        --------
        >>> import pandas as pd
        >>> from analysis.survival import fine_gray
        >>> df = pd.DataFrame({"t": [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
        ...                    "status": [1, 2, 1, 0, 1, 2, 1, 0, 2, 1, 0, 1],
        ...                    "x": [1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0]})
        >>> fg = fine_gray("x", df, duration="t", event="status")
        >>> fg.predict_cumulative_incidence({"x": [0, 1]}, times=[6])[["profile", "cumulative_incidence"]].round(3)
           profile  cumulative_incidence
        0        0                 0.285
        1        1                 0.198
        """
        check_choice("conf_type", conf_type, CONF_TYPES)
        if isinstance(profiles, Mapping):
            if any(pd.api.types.is_list_like(v) for v in profiles.values()):
                profiles = pd.DataFrame(dict(profiles))
            else:
                profiles = pd.DataFrame([dict(profiles)])
        if not isinstance(profiles, pd.DataFrame):
            raise TypeError("profiles must be a DataFrame (one row per covariate profile) or a dict of values")
        if len(profiles) == 0:
            raise ValueError("profiles has no rows")
        X2 = design_for(self._frame, profiles)
        X2.columns = [f"{_X}{i}" for i in range(X2.shape[1])]
        req = self._event_times if times is None else np.sort(np.atleast_1d(np.asarray(times, dtype=float)))
        ranks = np.searchsorted(self._times, req, side="right").astype(float)  # rank of the time in force
        ok = ranks > 0
        if self._cox is None:
            self._cox = self._cox_builder()
        cur = self._cox.predict_survival(X2, times=np.where(ok, ranks, 1.0), conf_type=conf_type,
                                         conf_level=conf_level)
        npf = len(profiles)
        nr = req.size
        beyond = np.tile(req > self._times[-1], npf)
        before = np.tile(~ok, npf)
        out = pd.DataFrame({
            "profile": np.repeat(profiles.index.to_numpy(), nr),
            "time": np.tile(req, npf),
        })

        def fix(v, zero):
            return np.where(beyond, np.nan, np.where(before, zero, v))

        none = conf_type == "none"
        out["cumulative_incidence"] = fix(1.0 - cur["survival"].to_numpy(), 0.0)
        out["se"] = fix(cur["se"].to_numpy(), 0.0)
        out["ci_lower"] = fix(1.0 - cur["ci_upper"].to_numpy(), np.nan if none else 0.0)
        out["ci_upper"] = fix(1.0 - cur["ci_lower"].to_numpy(), np.nan if none else 0.0)
        return out

    def plot(self, ax=None):
        """Subdistribution hazard ratios with their intervals (log axis); returns the axes."""
        ax = get_ax(ax)
        return coefficient_plot(ax, self.summary, xlabel=f"{self._ratio_label} ({self.conf_level:.0%} CI)")

    def __repr__(self) -> str:
        return (f"FineGrayResult(cause={self.cause!r}, n_obs={self.n_obs}, events={self.n_events}, "
                f"competing={self.n_competing}, variance={self.variance!r}, censoring={self.censoring!r}, "
                f"converged={self.converged})\n{pd.DataFrame(self.summary).round(4).to_string()}")


def _relabel_warnings(records, names: dict[str, str]) -> None:
    for rec in records:
        msg = str(rec.message)
        for old in sorted(names, key=len, reverse=True):
            msg = msg.replace(old, names[old])
        warn_caller(msg, rec.category)


def fine_gray(
    formula: str,
    data: pd.DataFrame,
    *,
    duration: str,
    event: str,
    cause=1,
    censor=0,
    cluster: str | None = None,
    weights: str | None = None,
    censoring_group: str | None = None,
    variance: str = "auto",
    censoring: str = "crr",
    ties: str = "breslow",
    conf_level: float = 0.95,
    dropna: bool = False,
    max_iter: int = ITER_MAX,
    tol: float = EPS,
    table: str = "data",
) -> FineGrayResult:
    """Fine-Gray proportional subdistribution hazards regression, as R's ``cmprsk::crr``.

    Models the cumulative incidence of one cause in the presence of the others:
    F_k(t | z) = 1 - exp(-Lambda_0(t) exp(z'b)), exp(b) the subdistribution hazard ratios.
    Agrees with ``crr(duration, event, model.matrix(formula), failcode=cause,
    cencode=censor, cengroup=censoring_group)`` (coefficients, variance, log likelihoods,
    ``predict.crr``) and, with ``censoring="finegray"``, with ``coxph(Surv(fgstart, fgstop,
    fgstatus) ~ formula, weights=fgwt, cluster=id, ties=)`` on ``finegray``'s data
    (coefficients, robust and model-based standard errors, ``survfit`` on new data).

    Parameters
    ----------
    formula : str
        Right-hand side in patsy syntax (``"age + C(route)"``), read by the kernel's
        ``model_frame`` as for :func:`cox`.
    data : pandas.DataFrame
        One row per subject.
    duration, event : str
        Time to the first event or censoring, and what it was: ``censor`` (default 0) for
        censoring, ``cause`` for the cause modelled, any other value a competing cause.
    cause, censor
        The status values of the cause modelled (default 1) and of censoring (default 0).
    cluster : str, optional
        Column grouping correlated subjects: robust variance summed by cluster (coxph's).
    weights : str, optional
        Case weights (> 0), multiplying the censoring weights as in ``finegray``; the
        censoring distribution itself is estimated unweighted, as there.
    censoring_group : str, optional
        Column whose groups get separate censoring distributions (crr's ``cengroup``).
    variance : {"auto", "crr", "robust"}, default "auto"
        "crr": Fine & Gray's sandwich as computed by crr, which counts the estimation of the
        censoring distribution; "robust": coxph's robust (grouped dfbeta) variance on the
        weighted data, which takes the censoring weights as known and is a little smaller
        or larger. "auto": "crr" unless ``weights`` or ``cluster`` is given (crr has
        neither), then "robust".
    censoring : {"crr", "finegray"}, default "crr"
        Which Kaplan-Meier estimate of the censoring distribution gives the weights. They
        differ only where a censoring time equals an event time: crr counts the subjects
        with an event at t as still at risk of censoring at t, finegray counts the events
        first. "finegray" reproduces survival's finegray + coxph.
    ties : {"breslow", "efron"}, default "breslow"
        crr's is Breslow's; "efron" is coxph's default on finegray's data.
    conf_level : float, default 0.95
    dropna : bool, default False
        The missing-value rule (formula, duration, event, weights, cluster and censoring
        group columns).
    max_iter, tol : int, float
        Newton-Raphson of :func:`cox` (at most 20 iterations, relative change of the log
        likelihood at most 1e-9).
    table : str, default "data"

    Returns
    -------
    FineGrayResult

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival import fine_gray
    >>> df = pd.DataFrame({"t": [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
    ...                    "status": [1, 2, 1, 0, 1, 2, 1, 0, 2, 1, 0, 1],
    ...                    "x": [1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0]})
    >>> fg = fine_gray("x", df, duration="t", event="status", cause=1)
    >>> fg.summary[["coef", "se", "ratio", "p_value"]].round(4)
            coef      se   ratio  p_value
    term
    x    -0.4173  0.8305  0.6588   0.6153
    """
    return _fit_fine_gray(formula, data, duration=duration, event=event, cause=cause, censor=censor, cluster=cluster,
                          weights=weights, censoring_group=censoring_group, variance=variance, censoring=censoring,
                          ties=ties, conf_level=conf_level, dropna=dropna, max_iter=max_iter, tol=tol, table=table,
                          env=capture_env(1))


def _fit_fine_gray(formula, data, *, duration, event, cause, censor, cluster, weights, censoring_group, variance,
                   censoring, ties, conf_level, dropna, max_iter, tol, table, env) -> FineGrayResult:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    check_choice("variance", variance, FG_VARIANCES)
    check_choice("censoring", censoring, FG_CENSORING)
    check_choice("ties", ties, ("breslow", "efron"))
    conf_level = check_conf_level(conf_level)
    for name, col in (("cluster", cluster), ("censoring_group", censoring_group)):
        if col is not None and not isinstance(col, str):
            raise TypeError(f"{name} must be a column name, got {type(col).__name__}")
    if variance == "auto":
        variance = "robust" if (weights is not None or cluster is not None) else "crr"
    if variance == "crr" and (weights is not None or cluster is not None):
        what = " and ".join(n for n, v in (("weights", weights), ("cluster", cluster)) if v is not None)
        raise ValueError(f"variance='crr' has no {what} (cmprsk's crr supports neither); use variance='robust' "
                         "(coxph's robust variance on the weighted data)")
    roles = {"duration": duration, "event": event, "weights": weights, "cluster": cluster,
             "censoring group": censoring_group}

    def checks(report, frame, rows):
        return survival_values(report, table, frame, duration=duration, weights=weights)

    mf, vals = survival_frame(formula, data, roles=roles, intercept=False, dropna=dropna, table=table, env=env,
                              checks=checks)
    rows = mf.rows
    n = rows.size
    time = vals.time
    codes, causes = status_codes(mf.data[event], censor, event, table=table)
    if cause not in causes:
        report = ValidationReport(table)
        report.add_table_problem(table, f"cause={cause!r} is not a value of the column (its causes are "
                                 f"{', '.join(map(repr, causes))}; censor={censor!r})", column=str(event))
        raise DataValidationError(report)
    k = causes.index(cause) + 1
    mcode = np.where(codes == 0, 0, np.where(codes == k, 1, 2))
    if not (mcode == 1).any():
        raise ValueError(f"{table}: no event of cause {cause!r} among the {n} row(s) used")
    X = np.ascontiguousarray(mf.X.to_numpy(dtype=np.float64))
    columns = [str(c) for c in mf.X.columns]
    p = X.shape[1]
    if p == 0:
        raise ValueError(f"formula {formula!r} has no covariates; the Fine-Gray model needs at least one "
                         "(for the cumulative incidence alone use cumulative_incidence)")
    raw = data.iloc[rows]
    if censoring_group is not None:
        cg, _ = pd.factorize(raw[censoring_group].to_numpy(), sort=True)
    else:
        cg = np.zeros(n, dtype=np.int64)
    n_cg = int(cg.max()) + 1
    G = [censoring_km(time[cg == g], mcode[cg == g], censoring) for g in range(n_cg)]
    w_user = vals.weights if vals.weights is not None else np.ones(n)
    if cluster is not None:
        cl, cl_levels = pd.factorize(raw[cluster].to_numpy(), sort=True)
    else:
        cl = np.arange(n)
    names = [f"{_X}{i}" for i in range(p)]

    def fit_expanded() -> CoxResult:
        """``cox`` on the weighted counting-process data (finegray + coxph)."""
        ex = expand(time, mcode, cg, G)
        frame = pd.DataFrame(X[ex.row], columns=names)
        frame["fg_start"] = ex.start
        frame["fg_stop"] = ex.stop
        frame["fg_status"] = ex.status
        frame["fg_weight"] = ex.weight * w_user[ex.row]
        frame["fg_cluster"] = cl[ex.row]
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            out = fit_cox(" + ".join(names), frame, duration="fg_stop", event="fg_status", entry="fg_start",
                          strata=None, cluster="fg_cluster", weights="fg_weight", ties=ties, robust=True,
                          conf_level=conf_level, dropna=False, max_iter=max_iter, tol=tol, toler_chol=TOLER_CHOL,
                          table=table, env=EvalEnvironment([{}]))
        _relabel_warnings(rec, dict(zip(names, columns)))
        return out

    # Breslow's ties without weights or clusters (crr's case): Newton on the pseudo-likelihood
    # directly, O(n) per iteration; the weighted data (up to competing x censoring times rows)
    # are built only if predictions ask for them. Anything else, or a fit that does not
    # converge cleanly, goes through cox on the weighted data (and its warnings).
    direct = None
    if ties == "breslow" and weights is None and cluster is None:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            try:
                direct = _direct_newton(time, mcode, X, cg, G, max_iter=max_iter, tol=tol)
            except np.linalg.LinAlgError:
                direct = None
        if direct is not None and not (direct[5] and np.all(np.isfinite(direct[0]))
                                       and np.isfinite(np.linalg.cond(direct[1])) and np.linalg.cond(direct[1]) < 1e12):
            direct = None
    if direct is not None:
        beta, _, ll0, ll, iterations, _ = direct
        info, eta, psi = crr_parts(time, mcode, X, beta, cg, G)
        naive_cov = np.linalg.inv(info)
        robust_cov = naive_cov @ (eta.T @ eta) @ naive_cov
        crr_cov = naive_cov @ ((eta + psi).T @ (eta + psi)) @ naive_cov
        fit = None
        loglik = pd.Series({"null": ll0, "model": ll})
        converged, n_clusters, n_rows = True, n, expanded_rows(time, mcode, cg, G)
    else:
        fit = fit_expanded()
        beta = fit.summary["coef"].to_numpy()
        robust_cov = fit.cov.to_numpy()
        naive_cov = fit.naive_cov.to_numpy()
        crr_cov = None
        if weights is None and cluster is None and np.all(np.isfinite(beta)):
            _, crr_cov = crr_variance(time, mcode, X, beta, cg, G)
        loglik = fit.loglik.copy()
        converged, iterations, n_clusters = bool(fit.converged), int(fit.iterations), int(fit.n_clusters)
        n_rows = int(fit.n_obs)
    used = crr_cov if variance == "crr" else robust_cov
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.diag(used))
        summary = coef_table(columns, beta, se, conf_level, ratio=True)
        summary["naive_se"] = np.sqrt(np.diag(naive_cov))
        if variance == "crr":
            summary["robust_se"] = np.sqrt(np.diag(robust_cov))
    frame_of = lambda v: pd.DataFrame(v, index=columns, columns=columns)  # noqa: E731
    return FineGrayResult(
        summary=summary, cov=frame_of(used), n_obs=int(n), n_dropped=int(mf.n_dropped), conf_level=conf_level,
        converged=converged, formula=formula, loglik=loglik, naive_cov=frame_of(naive_cov),
        robust_cov=frame_of(robust_cov), crr_cov=None if crr_cov is None else frame_of(crr_cov), cause=cause,
        censor=censor, causes=list(causes), columns=columns, terms=dict(mf.terms), n_events=int((mcode == 1).sum()),
        n_competing=int((mcode == 2).sum()), n_censored=int((mcode == 0).sum()), n_clusters=n_clusters,
        n_rows=n_rows, dropped_by_column=dict(mf.dropped_by_column), variance=variance,
        censoring=censoring, ties=ties, iterations=int(iterations), _frame=slim_frame(mf), _cox=fit,
        _cox_builder=fit_expanded,
        _times=np.unique(time), _event_times=np.unique(time[mcode == 1]),
    )


# ----------------------------------------------------------------------------------------
# cause-specific Cox models
# ----------------------------------------------------------------------------------------
class CauseSpecificCoxResult(Mapping):
    """One Cox model per cause (the other causes censored): a mapping cause -> CoxResult.

    Attributes
    ----------
    summary : pandas.DataFrame
        The models' summaries stacked, indexed by (``cause``, ``term``).
    causes : list
        The causes, in order (the keys).
    """

    def __init__(self, fits: dict, causes: list):
        self._fits = fits
        self.causes = causes

    def __getitem__(self, cause) -> CoxResult:
        return self._fits[cause]

    def __iter__(self):
        return iter(self._fits)

    def __len__(self) -> int:
        return len(self._fits)

    @property
    def summary(self) -> pd.DataFrame:
        out = pd.concat({c: pd.DataFrame(f.summary) for c, f in self._fits.items()}, names=["cause"])
        return out

    def plot(self, ax=None):
        """Cause-specific hazard ratios with their intervals, one row per cause and term."""
        ax = get_ax(ax)
        s = self.summary.copy()
        s.index = [f"{c}: {t}" for c, t in s.index]
        return coefficient_plot(ax, s, xlabel="cause-specific hazard ratio")

    def __repr__(self) -> str:
        return f"CauseSpecificCoxResult(causes={self.causes!r})\n{self.summary.round(4).to_string()}"


def cause_specific_cox(
    formula: str,
    data: pd.DataFrame,
    *,
    duration: str,
    event: str,
    causes: Sequence | None = None,
    censor=0,
    table: str = "data",
    **cox_options,
) -> CauseSpecificCoxResult:
    """One :func:`cox` per cause, the other causes counted as censored.

    The cause-specific hazard of cause k is the rate of events of k among those still free
    of any event; each model is R's ``coxph(Surv(duration, event == k) ~ formula)``.

    Parameters
    ----------
    formula, data, duration
        As :func:`cox`.
    event : str
        The status column: ``censor`` (default 0) for censoring, any other value a cause.
    causes : sequence, optional
        The causes to model (default: every cause of the data).
    censor
        The status value meaning censored.
    **cox_options
        Passed to each :func:`cox`: ``entry``, ``strata``, ``cluster``, ``weights``,
        ``ties``, ``robust``, ``conf_level``, ``dropna``, ``max_iter``, ``tol``.

    Returns
    -------
    CauseSpecificCoxResult
        Mapping cause -> :class:`CoxResult`, with a stacked ``summary``.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival import cause_specific_cox
    >>> df = pd.DataFrame({"t": [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
    ...                    "status": [1, 2, 1, 0, 1, 2, 1, 0, 2, 1, 0, 1],
    ...                    "x": [1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0]})
    >>> cs = cause_specific_cox("x", df, duration="t", event="status")
    >>> list(cs), round(float(cs[1].summary.loc["x", "ratio"]), 3)
    ([1, 2], 0.965)
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if event not in data.columns:
        report = ValidationReport(table)
        report.add_table_problem(table, f"event column not found; columns are: {', '.join(map(str, data.columns[:30]))}",
                                 column=str(event))
        raise DataValidationError(report)
    codes, all_causes = status_codes(data[event], censor, event, table=table)
    wanted = list(all_causes) if causes is None else list(causes)
    unknown = [c for c in wanted if c not in all_causes]
    if unknown:
        raise ValueError(f"causes {unknown!r} are not values of column {event!r} (its causes are {all_causes!r})")
    known = {"entry", "strata", "cluster", "weights", "ties", "robust", "conf_level", "dropna", "max_iter", "tol",
             "toler_chol"}
    bad = sorted(set(cox_options) - known)
    if bad:
        raise TypeError(f"cause_specific_cox() got unexpected keyword argument(s) {', '.join(bad)}")
    opts = {"entry": None, "strata": None, "cluster": None, "weights": None, "ties": "efron", "robust": None,
            "conf_level": 0.95, "dropna": False, "max_iter": ITER_MAX, "tol": EPS, "toler_chol": TOLER_CHOL}
    opts.update(cox_options)
    env = capture_env(1)
    fits = {}
    for c in wanted:
        k = all_causes.index(c) + 1
        indicator = np.where(codes < 0, np.nan, (codes == k).astype(float))
        d = data.copy(deep=False)
        d[event] = indicator
        fits[c] = fit_cox(formula, d, duration=duration, event=event, table=table, env=env, **opts)
    return CauseSpecificCoxResult(fits, wanted)
