"""Vectorised numerics of the Cox model: risk sets, partial likelihood, Newton-Raphson.

Everything here works on plain numpy arrays; :mod:`analysis.survival.cox` turns tables and
formulas into them. The algorithms are those of R's ``survival`` package (3.5-3), rewritten
without a loop over rows or event times:

* **Risk sets.** The distinct event times of each stratum ("event groups", sorted by
  stratum, then time) are numbered ``0..m-1``. A row is at risk at group ``j`` when
  ``lo_i <= j < hi_i``: ``hi_i`` counts the groups of its stratum with ``t <= stop_i`` and
  ``lo_i`` those with ``t <= entry_i`` (found once with ``searchsorted`` on integer keys).
  A sum over the risk set of every group is then a reverse cumulative sum (per stratum) of
  what leaves at each group minus what has not yet entered: one ``bincount`` and one
  ``cumsum`` per column, whatever the number of strata, rows or ties.
* **Ties.** Efron's approximation expands each event group with ``d`` tied events into
  ``d`` terms in which the tied events count with weight ``1 - k/d`` (``k = 0..d-1``);
  the expanded arrays have one element per event, so their total size is the number of
  events. Breslow's method has one term per group.
* **Information matrix** ``sum_e mw_e (S2_e / D_e - A_e A_e')`` without per-time p x p
  sums: the first part is ``X' diag(r_i c_i) X`` where ``c_i`` is the sum of
  ``mw_e / D_e`` over the terms at which row ``i`` is at risk (a difference of cumulative
  sums over groups, with the Efron down-weighting of the tied events themselves).
* **Newton-Raphson** as R's ``coxfit6`` (right-censored data) and ``agfit4`` (entry
  times): covariates centred and scaled, start at 0, step-halving when the log partial
  likelihood decreases, convergence when ``|1 - loglik_old / loglik_new| <= eps``, the
  generalised Cholesky ``cholesky2`` / ``chsolve2`` / ``chinv2`` with tolerance
  ``toler_chol`` that marks redundant columns (their coefficient is NaN, as R's NA).
* **Score residuals** as R's ``coxscore2``/``agscore2`` (``residuals(fit, "score")``),
  from which the robust (sandwich) variance is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "RiskSets",
    "FitState",
    "cholesky2",
    "chsolve2",
    "chinv2",
    "wald_test",
    "newton_raphson",
    "evaluate",
    "score_residuals",
    "zph_statistics",
    "survfit_curves",
]

# R's coxph.control() defaults
EPS = 1e-9
TOLER_CHOL = np.finfo(float).eps ** 0.75
ITER_MAX = 20
TOLER_INF = EPS**0.5

_EXP_LIMIT = 600.0  # shift the linear predictor when it gets near exp() overflow


# ----------------------------------------------------------------------------------------
# generalised Cholesky of R's survival (cholesky2.c, chsolve2.c, chinv2.c), ported
# ----------------------------------------------------------------------------------------
def cholesky2(matrix: np.ndarray, toler: float = TOLER_CHOL) -> tuple[np.ndarray, int]:
    """LDL' decomposition of a symmetric matrix, columns found redundant set to 0.

    Returns the working matrix (unit lower triangle L below the diagonal, D on it, the
    upper triangle untouched) and the rank (negative when not non-negative definite),
    exactly as ``cholesky2`` in R's survival package.
    """
    m = np.array(matrix, dtype=float, copy=True)
    n = m.shape[0]
    if n == 0:
        return m, 0
    iu = np.triu_indices(n, 1)
    m[iu[1], iu[0]] = m[iu]
    diag = np.diag(m)
    eps = float(np.max(diag[diag > 0], initial=0.0))
    if eps == 0:
        return m, 0
    eps *= toler
    rank = 0
    nonneg = 1
    for i in range(n):
        pivot = m[i, i]
        if not np.isfinite(pivot) or pivot < eps:
            m[i, i] = 0.0
            if pivot < -8 * eps:
                nonneg = -1
        else:
            rank += 1
            col = m[i + 1 :, i].copy()
            temp = col / pivot
            m[i + 1 :, i] = temp
            # m[k, j] -= temp_j * col_k for k >= j > i (the diagonal gets temp_j^2 pivot)
            m[i + 1 :, i + 1 :] -= np.tril(np.outer(col, temp))
    return m, rank * nonneg


def chsolve2(chol: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Solve ``A b = y`` given ``cholesky2(A)``; components of redundant columns are 0."""
    n = chol.shape[0]
    y = np.array(y, dtype=float, copy=True)
    for i in range(n):
        y[i] -= np.dot(y[:i], chol[i, :i])
    for i in range(n - 1, -1, -1):
        if chol[i, i] == 0:
            y[i] = 0.0
        else:
            y[i] = y[i] / chol[i, i] - np.dot(y[i + 1 :], chol[i + 1 :, i])
    return y


def chinv2(chol: np.ndarray) -> np.ndarray:
    """Generalised inverse from ``cholesky2``, symmetric, zero rows/columns where redundant."""
    m = np.array(chol, dtype=float, copy=True)
    n = m.shape[0]
    for i in range(n):
        if m[i, i] > 0:
            m[i, i] = 1.0 / m[i, i]
            m[i + 1 :, i] = -m[i + 1 :, i]
            if i > 0:
                m[i + 1 :, :i] += np.outer(m[i + 1 :, i], m[i, :i])
    for i in range(n):
        if m[i, i] == 0:
            m[:i, i] = 0.0
            m[i, i:] = 0.0
        else:
            for j in range(i + 1, n):
                temp = m[j, i] * m[j, j]
                m[i, j] = temp
                m[i, i:j] += temp * m[j, i:j]
    upper = np.triu(m)
    return upper + np.triu(m, 1).T


def wald_test(var: np.ndarray, b: np.ndarray, toler: float = TOLER_CHOL) -> tuple[float, int]:
    """``b' var^- b`` and its degrees of freedom (the rank), as R's ``coxph.wtest``."""
    b = np.asarray(b, dtype=float)
    if b.size == 0:
        return 0.0, 0
    if b.size == 1:
        return float(b[0] ** 2 / var.reshape(-1)[0]), 1
    chol, rank = cholesky2(var, toler)
    sol = chsolve2(chol, b)
    return float(np.dot(b, sol)), int(rank)


# ----------------------------------------------------------------------------------------
# risk sets
# ----------------------------------------------------------------------------------------
class RiskSets:
    """Risk-set structure of one data set: event groups and each row's range of them.

    Parameters
    ----------
    stop, event : arrays of length n
        Exit times and event indicators (bool).
    entry : array or None
        Entry times (a row is at risk at t when ``entry < t <= stop``); None for 0.
    strata : int array or None
        Stratum codes ``0..k-1``.
    times : array or None
        When given, the groups are *all* distinct stop times of each stratum rather than
        the event times only (used for predicted survival curves).
    """

    def __init__(
        self,
        stop: np.ndarray,
        event: np.ndarray,
        entry: np.ndarray | None,
        strata: np.ndarray | None,
        n_strata: int,
        *,
        all_times: bool = False,
    ) -> None:
        n = stop.size
        s = np.zeros(n, dtype=np.int64) if strata is None else strata.astype(np.int64)
        self.n = n
        self.n_strata = max(int(n_strata), 1)
        self.event_rows = np.flatnonzero(event)
        self.entry = entry
        src = stop if all_times else stop[self.event_rows]
        ut = np.unique(src)
        base = np.int64(ut.size + 1)
        if all_times:
            src_s = s
        else:
            src_s = s[self.event_rows]
        q = np.searchsorted(ut, src)
        keys = src_s * base + q + 1
        gkeys, inverse = np.unique(keys, return_inverse=True)
        self.m = int(gkeys.size)
        self.group_stratum = (gkeys // base).astype(np.intp)
        self.group_time = ut[(gkeys % base) - 1] if self.m else np.zeros(0)
        key_stop = s * base + np.searchsorted(ut, stop, side="right")
        self.hi = np.searchsorted(gkeys, key_stop, side="right")
        self.gs = np.searchsorted(self.group_stratum, np.arange(self.n_strata), side="left")
        self.ge = np.searchsorted(self.group_stratum, np.arange(self.n_strata), side="right")
        if entry is None:
            self.lo = self.gs[s]
        else:
            key_entry = s * base + np.searchsorted(ut, entry, side="right")
            self.lo = np.searchsorted(gkeys, key_entry, side="right")
        if all_times:
            self.row_group = inverse.reshape(-1)  # group of each row's own stop time
            self.death_group = self.row_group[self.event_rows]
        else:
            self.death_group = inverse.reshape(-1)
        self.active = np.flatnonzero(self.hi > self.lo)
        self.exit_index = self.hi[self.active] - 1
        late = self.lo > self.gs[s]
        self.late_rows = np.flatnonzero(late & (self.hi > self.lo))
        self.late_index = self.lo[self.late_rows] - 1
        # for each group, the index of the first group of the next stratum
        self.next_start = self.ge[self.group_stratum] if self.m else np.zeros(0, dtype=np.intp)
        self.strata = s
        # deaths per group (count) for the Efron expansion
        self.n_deaths = np.bincount(self.death_group, minlength=self.m)

    # -- sums over risk sets ------------------------------------------------------------
    def _segment_revcumsum(self, a: np.ndarray) -> np.ndarray:
        rc = np.cumsum(a[::-1], axis=0)[::-1]
        ext = np.concatenate([rc, np.zeros((1,) + rc.shape[1:])], axis=0)
        return rc - ext[self.next_start]

    def at_risk(self, v: np.ndarray) -> np.ndarray:
        """Sum of ``v`` (length n, or n x p) over the risk set of every group."""
        if v.ndim == 1:
            a = np.bincount(self.exit_index, v[self.active], minlength=self.m)
            if self.late_rows.size:
                a = a - np.bincount(self.late_index, v[self.late_rows], minlength=self.m)
            return self._segment_revcumsum(a)
        out = np.empty((self.m, v.shape[1]))
        for k in range(v.shape[1]):
            out[:, k] = self.at_risk(np.ascontiguousarray(v[:, k]))
        return out

    def at_risk_weighted(self, r: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``at_risk(r[:, None] * X)`` column by column, without the n x p product."""
        out = np.empty((self.m, X.shape[1]))
        for k in range(X.shape[1]):
            out[:, k] = self.at_risk(r * X[:, k])
        return out

    def death_sum(self, v: np.ndarray) -> np.ndarray:
        """Sum of ``v`` over the events of every group (v given for the event rows)."""
        if v.ndim == 1:
            return np.bincount(self.death_group, v, minlength=self.m)
        out = np.empty((self.m, v.shape[1]))
        for k in range(v.shape[1]):
            out[:, k] = np.bincount(self.death_group, v[:, k], minlength=self.m)
        return out

    def range_sum(self, per_group: np.ndarray) -> np.ndarray:
        """For every row, the sum of ``per_group`` over the groups at which it is at risk."""
        c = np.concatenate([np.zeros((1,) + per_group.shape[1:]), np.cumsum(per_group, axis=0)], axis=0)
        return c[self.hi] - c[self.lo]

    def expansion(self, efron: bool, death_weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Terms of the partial likelihood: group, down-weighting fraction f, mean weight.

        ``death_weight`` is the sum of case weights of the events of each group.
        """
        d = self.n_deaths
        if not efron or self.m == 0 or int(d.max(initial=0)) <= 1:
            return np.arange(self.m), np.zeros(self.m), death_weight
        total = int(d.sum())
        group = np.repeat(np.arange(self.m), d)
        first = np.cumsum(d) - d
        k = np.arange(total) - first[group]
        f = k / d[group]
        mw = (death_weight / d)[group]
        return group, f, mw


# ----------------------------------------------------------------------------------------
# partial likelihood, score and information
# ----------------------------------------------------------------------------------------
@dataclass
class Problem:
    """One Cox problem: design (centred and scaled), weights, risk sets, ties."""

    X: np.ndarray  # n x p, centred (and scaled by ``scale``)
    w: np.ndarray
    rs: RiskSets
    efron: bool
    offset: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.X = np.asfortranarray(self.X, dtype=np.float64)  # contiguous columns
        ev = self.rs.event_rows
        self.X_ev = np.asfortranarray(self.X[ev])
        self.w_ev = self.w[ev]
        self.death_weight = self.rs.death_sum(self.w_ev)
        self.exp_group, self.exp_f, self.exp_mw = self.rs.expansion(self.efron, self.death_weight)
        self.wx_ev_sum = self.w_ev @ self.X_ev if self.X.shape[1] else np.zeros(0)


@dataclass
class FitState:
    """Log partial likelihood, score, information and the risk-set sums at one beta."""

    loglik: float
    u: np.ndarray
    imat: np.ndarray
    eta: np.ndarray
    shift: float
    D: np.ndarray  # per term
    A: np.ndarray  # per term, p columns


def _linear_predictor(prob: Problem, beta: np.ndarray) -> tuple[np.ndarray, float]:
    eta = prob.X @ beta if prob.X.shape[1] else np.zeros(prob.rs.n)
    if prob.offset is not None:
        eta = eta + prob.offset
    top = float(eta.max(initial=0.0))
    shift = top - _EXP_LIMIT if top > _EXP_LIMIT else 0.0
    return eta, shift


def evaluate(prob: Problem, beta: np.ndarray, *, information: bool = True) -> FitState:
    """Log partial likelihood, score vector and information matrix at ``beta``."""
    rs = prob.rs
    ev = rs.event_rows
    X = prob.X
    p = X.shape[1]
    eta, shift = _linear_predictor(prob, beta)
    with np.errstate(over="ignore"):
        ru = np.exp(eta - shift)
    r = prob.w * ru
    S0 = rs.at_risk(r)
    E0 = rs.death_sum(r[ev])
    g, f, mw = prob.exp_group, prob.exp_f, prob.exp_mw
    D = S0[g] - f * E0[g]
    with np.errstate(divide="ignore", invalid="ignore"):
        # D carries a factor exp(-shift); the mean weights mw sum to the event weights
        loglik = float(np.dot(prob.w_ev, eta[ev]) - np.dot(mw, np.log(D)) - shift * prob.w_ev.sum())
    if p == 0:
        return FitState(loglik, np.zeros(0), np.zeros((0, 0)), eta, shift, D, np.zeros((D.size, 0)))
    S1 = rs.at_risk_weighted(r, X)
    E1 = rs.death_sum(r[ev][:, None] * prob.X_ev)
    with np.errstate(divide="ignore", invalid="ignore"):
        A = (S1[g] - f[:, None] * E1[g]) / D[:, None]
    u = prob.wx_ev_sum - mw @ A
    imat = np.zeros((p, p))
    if information:
        h = mw / D
        G = np.bincount(g, h, minlength=rs.m)
        c = rs.range_sum(G)
        if prob.efron:
            F = np.bincount(g, f * h, minlength=rs.m)
            c[ev] -= F[rs.death_group]
        rc = r * c
        imat = (X * rc[:, None]).T @ X - (A * mw[:, None]).T @ A
        imat = (imat + imat.T) / 2.0
    return FitState(loglik, u, imat, eta, shift, D, A)


# ----------------------------------------------------------------------------------------
# Newton-Raphson as coxfit6 / agfit4
# ----------------------------------------------------------------------------------------
@dataclass
class NewtonResult:
    beta: np.ndarray  # on the working (scaled) scale
    var: np.ndarray  # inverse information, working scale
    loglik0: float
    loglik: float
    score_test: float
    iterations: int
    converged: bool
    halving: bool
    rank: int
    u: np.ndarray
    state: FitState  # at ``beta``
    state0: FitState | None = None  # at the initial values


def newton_raphson(
    prob: Problem,
    init: np.ndarray,
    *,
    counting: bool,
    max_iter: int = ITER_MAX,
    eps: float = EPS,
    toler_chol: float = TOLER_CHOL,
) -> NewtonResult:
    """Maximise the partial likelihood exactly as R's coxfit6 (``counting=False``) or
    agfit4 (``counting=True``) does: same start, steps, halving and stopping rule."""
    beta = np.array(init, dtype=float)
    st = evaluate(prob, beta)
    st0 = st
    loglik0 = st.loglik
    chol, rank = cholesky2(st.imat, toler_chol)
    a = chsolve2(chol, st.u)
    score_test = float(np.dot(st.u, a))
    if max_iter == 0 or not np.isfinite(loglik0):
        return NewtonResult(beta, chinv2(chol), loglik0, loglik0, score_test, 0, max_iter == 0, False,
                            rank, st.u, st, st0)
    best = loglik0
    halving = 0
    ever_halved = False
    if not counting:
        # coxfit6
        newbeta = beta + a
        for it in range(1, max_iter + 1):
            st = evaluate(prob, newbeta)
            chol, flag = cholesky2(st.imat, toler_chol)
            notfinite = (not np.all(np.isfinite(st.u))) or (not np.all(np.isfinite(st.imat))) or not np.isfinite(st.loglik)
            if not notfinite and abs(1 - best / st.loglik) <= eps:
                return NewtonResult(newbeta, chinv2(chol), loglik0, st.loglik, score_test, it, True,
                                    ever_halved or halving > 0, flag, st.u, st, st0)
            if notfinite or st.loglik < best:
                halving += 1
                ever_halved = True
                newbeta = (newbeta + halving * beta) / (halving + 1.0)
            else:
                halving = 0
                best = st.loglik
                step = chsolve2(chol, st.u)
                beta = newbeta
                newbeta = newbeta + step
        st = evaluate(prob, beta)
        chol, flag = cholesky2(st.imat, toler_chol)
        return NewtonResult(beta, chinv2(chol), loglik0, st.loglik, score_test, max_iter, False,
                            ever_halved, flag, st.u, st, st0)
    # agfit4
    oldbeta = beta.copy()
    beta = beta + a
    it = 0
    converged = False
    for it in range(1, max_iter + 1):
        st = evaluate(prob, beta)
        bad = int(np.sum(~np.isfinite(np.diag(st.imat))))
        chol, rank2 = cholesky2(st.imat, toler_chol)
        fail = bad + (0 if np.isfinite(st.loglik) else 1) + abs(rank - rank2)
        if fail == 0 and halving == 0 and abs(1 - best / st.loglik) <= eps:
            converged = True
            break
        if it == max_iter:
            if max_iter > 1 and (st.loglik - best) / abs(best) < -eps:
                beta = oldbeta
                st = evaluate(prob, beta)
                chol, rank2 = cholesky2(st.imat, toler_chol)
            break
        if fail > 0 or st.loglik < best:
            halving += 1
            ever_halved = True
            beta = (oldbeta * halving + beta) / (halving + 1.0)
        else:
            halving = 0
            best = st.loglik
            step = chsolve2(chol, st.u)
            oldbeta = beta
            beta = beta + step
    return NewtonResult(beta, chinv2(chol), loglik0, st.loglik, score_test, it, converged, ever_halved,
                        rank, st.u, st, st0)


# ----------------------------------------------------------------------------------------
# score residuals (R's coxscore2 / agscore2)
# ----------------------------------------------------------------------------------------
def _mean_of_means(prob: Problem, A: np.ndarray) -> np.ndarray:
    """Average of the covariate means A_e over the terms of each group (m x p)."""
    m = prob.rs.m
    g = prob.exp_group
    n_terms = np.bincount(g, minlength=m)
    out = np.empty((m, A.shape[1]))
    for k in range(A.shape[1]):
        out[:, k] = np.bincount(g, A[:, k], minlength=m)
    return out / np.maximum(n_terms, 1)[:, None]


def score_residuals(prob: Problem, beta: np.ndarray, state: FitState | None = None) -> np.ndarray:
    """Unweighted score residuals, one row per observation (n x p).

    For an event of row i at a group with Efron terms e (hazard jumps h_e = mw_e / D_e,
    means A_e, fractions f_e):
    ``U_i = delta_i (x_i - mean_e A_e) - r_i sum_{groups at risk} sum_e h_e (x_i - A_e)
    + delta_i r_i sum_e f_e h_e (x_i - A_e)``, with ``r_i = exp(eta_i)``.
    """
    st = state if state is not None else evaluate(prob, beta, information=False)
    rs = prob.rs
    ev = rs.event_rows
    X = prob.X
    p = X.shape[1]
    g, f, mw = prob.exp_group, prob.exp_f, prob.exp_mw
    with np.errstate(over="ignore"):
        ru = np.exp(st.eta - st.shift)
    h = mw / st.D
    A = st.A
    T1 = np.bincount(g, h, minlength=rs.m)
    MH1 = np.empty((rs.m, p))
    for k in range(p):
        MH1[:, k] = np.bincount(g, A[:, k] * h, minlength=rs.m)
    cum_t = rs.range_sum(T1)
    cum_mh = rs.range_sum(MH1)
    resid = -ru[:, None] * (X * cum_t[:, None] - cum_mh)
    dg = rs.death_group
    mh3 = _mean_of_means(prob, A)
    resid[ev] += prob.X_ev - mh3[dg]
    if prob.efron:
        F = np.bincount(g, f * h, minlength=rs.m)
        MF = np.empty((rs.m, p))
        for k in range(p):
            MF[:, k] = np.bincount(g, f * A[:, k] * h, minlength=rs.m)
        resid[ev] += ru[ev, None] * (prob.X_ev * F[dg][:, None] - MF[dg])
    return resid


def schoenfeld(prob: Problem, beta: np.ndarray) -> np.ndarray:
    """Schoenfeld residuals of the event rows (in the order of ``rs.event_rows``)."""
    st = evaluate(prob, beta, information=False)
    rs = prob.rs
    return prob.X[rs.event_rows] - _mean_of_means(prob, st.A)[rs.death_group]


# ----------------------------------------------------------------------------------------
# proportional-hazards score test (R's zph1 / zph2)
# ----------------------------------------------------------------------------------------
def zph_statistics(prob: Problem, beta: np.ndarray, gtime_group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Score vector (2p) and information (2p x 2p) for adding ``x * g(t)`` at ``beta``.

    ``gtime_group`` is g(t) (already centred) at each event group. The first p score
    components are those of the fitted model; the last p those of the time interactions.
    """
    st = evaluate(prob, beta, information=False)
    rs = prob.rs
    ev = rs.event_rows
    X = prob.X
    p = X.shape[1]
    g, f, mw = prob.exp_group, prob.exp_f, prob.exp_mw
    with np.errstate(over="ignore"):
        r = prob.w * np.exp(st.eta - st.shift)
    A = st.A
    gt_e = gtime_group[g]
    gt_d = gtime_group[rs.death_group]
    u = np.zeros(2 * p)
    u[:p] = prob.wx_ev_sum - mw @ A
    u[p:] = (prob.w_ev * gt_d) @ prob.X_ev - (mw * gt_e) @ A
    h = mw / st.D
    imat = np.zeros((2 * p, 2 * p))
    blocks = []
    for power in (0, 1, 2):
        tw = gt_e**power
        G = np.bincount(g, h * tw, minlength=rs.m)
        c = rs.range_sum(G)
        if prob.efron:
            F = np.bincount(g, f * h * tw, minlength=rs.m)
            c[ev] -= F[rs.death_group]
        part = (X * (r * c)[:, None]).T @ X - (A * (mw * tw)[:, None]).T @ A
        blocks.append((part + part.T) / 2.0)
    imat[:p, :p] = blocks[0]
    imat[:p, p:] = blocks[1]
    imat[p:, :p] = blocks[1]
    imat[p:, p:] = blocks[2]
    return u, imat


# ----------------------------------------------------------------------------------------
# predicted curves (R's agsurv / coxsurv.fit)
# ----------------------------------------------------------------------------------------
@dataclass
class Curves:
    """Per distinct time of each stratum (sorted by stratum, time)."""

    stratum: np.ndarray
    time: np.ndarray
    n_risk: np.ndarray  # weighted count at risk
    n_event: np.ndarray  # weighted events
    n_censor: np.ndarray
    cumhaz: np.ndarray  # at the linear predictor 0 of the working design
    cumvar: np.ndarray  # cumulative sum of the hazard variance term
    xbar: np.ndarray  # cumulative sum of the mean-covariate term, m x p


def survfit_curves(
    X: np.ndarray,
    w: np.ndarray,
    eta: np.ndarray,
    stop: np.ndarray,
    event: np.ndarray,
    entry: np.ndarray | None,
    strata: np.ndarray | None,
    n_strata: int,
    efron: bool,
) -> Curves:
    """Baseline cumulative hazard and variance pieces, as R's ``agsurv`` per stratum.

    ``eta`` is the linear predictor ``X beta`` on the same centring as ``X``; the curves
    are those of a subject with linear predictor 0 (scale by ``exp(eta_new)``).
    """
    rs = RiskSets(stop, event, entry, strata, n_strata, all_times=True)
    p = X.shape[1]
    ev = rs.event_rows
    with np.errstate(over="ignore"):
        risk = np.exp(eta)
    wr = w * risk
    nrisk = rs.at_risk(wr)
    irisk = rs.at_risk(w)
    nevent = rs.death_sum(w[ev])
    ncens = np.bincount(rs.row_group, w, minlength=rs.m) - nevent
    nd = rs.n_deaths
    xsum = rs.at_risk(wr[:, None] * X) if p else np.zeros((rs.m, 0))
    has = nd > 0
    haz = np.zeros(rs.m)
    varhaz = np.zeros(rs.m)
    xbar = np.zeros((rs.m, p))
    if efron and int(nd.max(initial=0)) > 1:
        erisk = rs.death_sum(wr[ev])
        xsum2 = rs.death_sum(wr[ev, None] * X[ev]) if p else np.zeros((rs.m, 0))
        total = int(nd.sum())
        grp = np.repeat(np.arange(rs.m), nd)
        k = np.arange(total) - (np.cumsum(nd) - nd)[grp]
        frac = k / nd[grp]
        inv = 1.0 / (nrisk[grp] - frac * erisk[grp])
        dd = nd[grp]
        haz = nevent * np.bincount(grp, inv / dd, minlength=rs.m)
        varhaz = nevent * np.bincount(grp, inv * inv / dd, minlength=rs.m)
        for j in range(p):
            xbar[:, j] = nevent * np.bincount(grp, (xsum[grp, j] - frac * xsum2[grp, j]) * inv * inv / dd,
                                              minlength=rs.m)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            haz = np.where(has, nevent / nrisk, 0.0)
            varhaz = np.where(has, nevent / nrisk**2, 0.0)
            if p:
                xbar = np.where(has[:, None], xsum / nrisk[:, None] * haz[:, None], 0.0)

    def seg_cumsum(a: np.ndarray) -> np.ndarray:
        c = np.cumsum(a, axis=0)
        before = np.concatenate([np.zeros((1,) + a.shape[1:]), c], axis=0)[rs.gs[rs.group_stratum]]
        return c - before

    return Curves(
        stratum=rs.group_stratum,
        time=rs.group_time,
        n_risk=irisk,
        n_event=nevent,
        n_censor=ncens,
        cumhaz=seg_cumsum(haz),
        cumvar=seg_cumsum(varhaz),
        xbar=seg_cumsum(xbar) if p else np.zeros((rs.m, 0)),
    )
