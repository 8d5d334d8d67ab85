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
    "cluster_score_sums",
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
        if self.n_strata == 1:
            self._single_stratum(ut, stop, entry, all_times)
        else:
            self._stratified(ut, src, s, stop, entry, all_times)
        at_risk_somewhere = self.hi > self.lo
        self.all_active = bool(at_risk_somewhere.all())
        self.active = np.flatnonzero(at_risk_somewhere)
        self.exit_index = self.hi if self.all_active else self.hi[self.active]
        self.exit_index = self.exit_index - 1
        self.lo_zero = not bool(self.lo.any())
        if entry is None:  # every row is at risk from its stratum's first group on
            self.late_rows = np.zeros(0, dtype=np.intp)
        else:
            late = self.lo > self.gs[s]
            self.late_rows = np.flatnonzero(late & at_risk_somewhere)
        self.late_index = self.lo[self.late_rows] - 1
        # for each group, the index of the first group of the next stratum
        self.next_start = self.ge[self.group_stratum] if self.m else np.zeros(0, dtype=np.intp)
        self.strata = s
        # deaths per group (count) for the Efron expansion
        self.n_deaths = np.bincount(self.death_group, minlength=self.m)

    def _single_stratum(self, ut: np.ndarray, stop: np.ndarray, entry: np.ndarray | None, all_times: bool) -> None:
        """One stratum: the groups are the distinct times ``ut`` themselves, so a row's
        ``hi`` is the number of them up to its stop time and an event's group is ``hi - 1``
        (its own time is one of them): one binary search per row, no second sort."""
        self.m = int(ut.size)
        self.group_stratum = np.zeros(self.m, dtype=np.intp)
        self.group_time = ut
        self.hi = np.searchsorted(ut, stop, side="right")
        self.gs = np.zeros(1, dtype=np.intp)
        self.ge = np.full(1, self.m, dtype=np.intp)
        self.lo = np.zeros(stop.size, dtype=np.intp) if entry is None else np.searchsorted(ut, entry, side="right")
        if all_times:
            self.row_group = self.hi - 1  # group of each row's own stop time
            self.death_group = self.row_group[self.event_rows]
        else:
            self.death_group = self.hi[self.event_rows] - 1

    def _stratified(self, ut: np.ndarray, src: np.ndarray, s: np.ndarray, stop: np.ndarray,
                    entry: np.ndarray | None, all_times: bool) -> None:
        """Several strata: groups are (stratum, time) pairs, found on integer keys."""
        base = np.int64(ut.size + 1)
        src_s = s if all_times else s[self.event_rows]
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

    # -- sums over risk sets ------------------------------------------------------------
    def _segment_revcumsum(self, a: np.ndarray) -> np.ndarray:
        rc = np.cumsum(a[::-1], axis=0)[::-1]
        if self.n_strata == 1:
            return rc
        ext = np.concatenate([rc, np.zeros((1,) + rc.shape[1:])], axis=0)
        return rc - ext[self.next_start]

    def _leaving(self, v: np.ndarray) -> np.ndarray:
        """Per group, the sum of ``v`` over the rows whose last group at risk it is, minus
        the rows that enter just after it (length m)."""
        if self.all_active:
            a = np.bincount(self.exit_index, v, minlength=self.m)
        else:
            a = np.bincount(self.exit_index, v[self.active], minlength=self.m)
        if self.late_rows.size:
            a = a - np.bincount(self.late_index, v[self.late_rows], minlength=self.m)
        return a

    def at_risk(self, v: np.ndarray) -> np.ndarray:
        """Sum of ``v`` (length n, or n x p) over the risk set of every group."""
        if v.ndim == 1:
            return self._segment_revcumsum(self._leaving(v))
        out = np.empty((self.m, v.shape[1]))
        for k in range(v.shape[1]):
            out[:, k] = self._leaving(np.ascontiguousarray(v[:, k]))
        return self._segment_revcumsum(out)

    def at_risk_weighted(self, r: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``at_risk(r[:, None] * X)`` column by column, without the n x p product."""
        out = np.empty((self.m, X.shape[1]))
        for k in range(X.shape[1]):
            out[:, k] = self._leaving(r * X[:, k])
        return self._segment_revcumsum(out)

    def death_sum(self, v: np.ndarray) -> np.ndarray:
        """Sum of ``v`` over the events of every group (v given for the event rows)."""
        if v.ndim == 1:
            return np.bincount(self.death_group, v, minlength=self.m)
        out = np.empty((self.m, v.shape[1]))
        for k in range(v.shape[1]):
            out[:, k] = np.bincount(self.death_group, v[:, k], minlength=self.m)
        return out

    def death_sum_weighted(self, r_ev: np.ndarray, X_ev: np.ndarray) -> np.ndarray:
        """``death_sum(r_ev[:, None] * X_ev)`` column by column, without the product matrix."""
        out = np.empty((self.m, X_ev.shape[1]))
        for k in range(X_ev.shape[1]):
            out[:, k] = np.bincount(self.death_group, r_ev * X_ev[:, k], minlength=self.m)
        return out

    def range_sum(self, per_group: np.ndarray) -> np.ndarray:
        """For every row, the sum of ``per_group`` over the groups at which it is at risk."""
        c = np.concatenate([np.zeros((1,) + per_group.shape[1:]), np.cumsum(per_group, axis=0)], axis=0)
        if self.lo_zero:  # every row at risk from the first group on: c[lo] is the zero row
            return c[self.hi]
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
        self.X_ev = np.empty((ev.size, self.X.shape[1]), order="F")
        for k in range(self.X.shape[1]):
            self.X_ev[:, k] = self.X[:, k][ev]
        self.unit_weights = bool(np.all(self.w == 1.0))
        self.w_ev = self.w[ev]
        self.death_weight = self.rs.death_sum(self.w_ev)
        self.exp_group, self.exp_f, self.exp_mw = self.rs.expansion(self.efron, self.death_weight)
        self.wx_ev_sum = self.w_ev @ self.X_ev if self.X.shape[1] else np.zeros(0)
        # the terms come sorted by group; with one term per group a group sum is the terms
        # themselves, otherwise a sum over contiguous runs
        counts = np.bincount(self.exp_group, minlength=self.rs.m)
        self.one_term_per_group = bool(counts.size == self.exp_group.size and np.all(counts == 1))
        self.term_starts = np.concatenate(([0], np.cumsum(counts)[:-1])) if counts.size else counts
        self.every_group_has_terms = bool(np.all(counts > 0))
        self._work: np.ndarray | None = None

    def work(self) -> np.ndarray:
        """A reusable n x p scratch array (column-major), allocated once: a fresh 8 n p
        bytes at every Newton step costs page faults comparable to the arithmetic."""
        if self._work is None:
            self._work = np.empty(self.X.shape, order="F")
        return self._work


@dataclass
class FitState:
    """Log partial likelihood, score, information and the risk-set sums at one beta.

    The covariate mean of every partial-likelihood term is ``A_e = R[g_e] + t_e * Delta[g_e]``
    (see :func:`evaluate`); :func:`term_means` builds it when a caller needs it per term.
    """

    loglik: float
    u: np.ndarray
    imat: np.ndarray
    eta: np.ndarray
    shift: float
    ru: np.ndarray  # exp(eta - shift), per row
    D: np.ndarray  # per term: weighted risk-set sum with the Efron down-weighting
    t: np.ndarray  # per term: f_e E0_g / D_e
    R: np.ndarray  # per group, p columns: risk-set mean S1 / S0
    Delta: np.ndarray  # per group, p columns: R - E1 / E0 (risk-set mean minus the tied events' mean)


def _linear_predictor(prob: Problem, beta: np.ndarray) -> tuple[np.ndarray, float]:
    eta = prob.X @ beta if prob.X.shape[1] else np.zeros(prob.rs.n)
    if prob.offset is not None:
        eta = eta + prob.offset
    top = float(eta.max(initial=0.0))
    shift = top - _EXP_LIMIT if top > _EXP_LIMIT else 0.0
    return eta, shift


def _group_sum(prob: Problem, v: np.ndarray) -> np.ndarray:
    """Sum of a per-term vector over the terms of every group."""
    if prob.one_term_per_group:
        return np.asarray(v, dtype=float)
    if prob.every_group_has_terms:
        return np.add.reduceat(v, prob.term_starts)
    return np.bincount(prob.exp_group, v, minlength=prob.rs.m)


def _outer_sum(a: np.ndarray, weight: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum_j weight_j a_j b_j'`` over groups (rows of a and b)."""
    return (a * weight[:, None]).T @ b


def evaluate(prob: Problem, beta: np.ndarray, *, information: bool = True) -> FitState:
    """Log partial likelihood, score vector and information matrix at ``beta``.

    Per event group: ``S0, S1`` the weighted risk-set sums of ``r = w exp(eta)`` and
    ``r x``, ``E0, E1`` those of the group's events. An Efron term of the group (fraction
    ``f``) has ``D = S0 - f E0`` and covariate mean ``A = (S1 - f E1) / D``, which is
    exactly ``R + t Delta`` with ``R = S1 / S0``, ``Delta = R - E1 / E0`` and
    ``t = f E0 / D``. So the score ``sum_e mw_e A_e`` and the information's
    ``sum_e mw_e A_e A_e'`` are sums over groups of ``R``, ``Delta`` and their outer
    products weighted by per-group sums of ``mw``, ``mw t`` and ``mw t^2``: only scalars
    are handled per term (one per event), nothing p-dimensional is gathered over the
    tied events. The decomposition keeps the two means apart instead of expanding
    ``(S1 - f E1)(S1 - f E1)'``, whose parts can cancel when a group's events are most of
    its risk set.
    """
    rs = prob.rs
    ev = rs.event_rows
    X = prob.X
    p = X.shape[1]
    eta, shift = _linear_predictor(prob, beta)
    with np.errstate(over="ignore"):
        ru = np.exp(eta - shift) if shift else np.exp(eta)
    r = ru if prob.unit_weights else prob.w * ru
    S0 = rs.at_risk(r)
    r_ev = r[ev]
    E0 = rs.death_sum(r_ev)
    g, f, mw = prob.exp_group, prob.exp_f, prob.exp_mw
    E0g = E0[g]
    D = S0[g] - f * E0g
    with np.errstate(divide="ignore", invalid="ignore"):
        # D carries a factor exp(-shift); the mean weights mw sum to the event weights
        loglik = float(np.dot(prob.w_ev, eta[ev]) - np.dot(mw, np.log(D)) - shift * prob.w_ev.sum())
        t = f * E0g / D if prob.efron else np.zeros(D.size)
    if p == 0:
        empty = np.zeros((rs.m, 0))
        return FitState(loglik, np.zeros(0), np.zeros((0, 0)), eta, shift, ru, D, t, empty, empty)
    S1 = rs.at_risk_weighted(r, X)
    E1 = rs.death_sum_weighted(r_ev, prob.X_ev)
    with np.errstate(divide="ignore", invalid="ignore"):
        R = S1 / S0[:, None]
        Delta = np.where(E0[:, None] > 0, R - E1 / E0[:, None], 0.0)
    W0 = _group_sum(prob, mw)
    W1 = _group_sum(prob, mw * t)
    u = prob.wx_ev_sum - (W0 @ R + W1 @ Delta)
    imat = np.zeros((p, p))
    if information:
        with np.errstate(divide="ignore", invalid="ignore"):
            h = mw / D
        c = rs.range_sum(_group_sum(prob, h))
        if prob.efron:
            c[ev] -= _group_sum(prob, f * h)[rs.death_group]
        rc = r * c
        W2 = _group_sum(prob, mw * t * t)
        cross = _outer_sum(R, W1, Delta)
        mean_part = _outer_sum(R, W0, R) + cross + cross.T + _outer_sum(Delta, W2, Delta)
        weighted = np.multiply(X, rc[:, None], out=prob.work())
        imat = weighted.T @ X - mean_part
        imat = (imat + imat.T) / 2.0
    return FitState(loglik, u, imat, eta, shift, ru, D, t, R, Delta)


def term_means(prob: Problem, st: FitState) -> np.ndarray:
    """The covariate mean ``A_e`` of every partial-likelihood term (terms x p)."""
    g = prob.exp_group
    return st.R[g] + st.t[:, None] * st.Delta[g]


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
def _mean_of_means(prob: Problem, st: FitState) -> np.ndarray:
    """Average of the covariate means A_e over the terms of each group (m x p)."""
    g = prob.exp_group
    n_terms = np.bincount(g, minlength=prob.rs.m)
    mean_t = _group_sum(prob, st.t) / np.maximum(n_terms, 1)
    return st.R + mean_t[:, None] * st.Delta


def _group_means_sum(prob: Problem, st: FitState, weight: np.ndarray) -> np.ndarray:
    """``sum_e weight_e A_e`` over the terms of every group (m x p), from ``R`` and ``Delta``."""
    return (_group_sum(prob, weight)[:, None] * st.R + _group_sum(prob, weight * st.t)[:, None] * st.Delta)


def score_residuals(prob: Problem, beta: np.ndarray, state: FitState | None = None) -> np.ndarray:
    """Unweighted score residuals, one row per observation (n x p).

    For an event of row i at a group with Efron terms e (hazard jumps h_e = mw_e / D_e,
    means A_e, fractions f_e):
    ``U_i = delta_i (x_i - mean_e A_e) - r_i sum_{groups at risk} sum_e h_e (x_i - A_e)
    + delta_i r_i sum_e f_e h_e (x_i - A_e)``, with ``r_i = exp(eta_i)``. The sums over
    terms are per-group sums of ``R`` and ``Delta`` (see :func:`evaluate`).
    """
    st = state if state is not None else evaluate(prob, beta, information=False)
    resid = np.empty(prob.X.shape, order="F")  # column by column: every pass is over contiguous memory
    for k, col in enumerate(_score_residual_columns(prob, st)):
        resid[:, k] = col
    return resid


def _score_residual_columns(prob: Problem, st: FitState):
    """The columns of :func:`score_residuals`, one at a time (a generator of n-vectors)."""
    rs = prob.rs
    ev = rs.event_rows
    X = prob.X
    f, mw = prob.exp_f, prob.exp_mw
    ru = st.ru
    with np.errstate(divide="ignore", invalid="ignore"):
        h = mw / st.D
    cum_t = rs.range_sum(_group_sum(prob, h))
    MH = _group_means_sum(prob, st, h)
    dg = rs.death_group
    mean_of_means = _mean_of_means(prob, st)[dg]
    ru_ev = ru[ev]
    if prob.efron:
        fh = f * h
        F_ev = _group_sum(prob, fh)[dg]
        MF_ev = _group_means_sum(prob, st, fh)[dg]
    for k in range(X.shape[1]):
        col = X[:, k] * cum_t
        col -= rs.range_sum(np.ascontiguousarray(MH[:, k]))
        col *= -ru
        x_ev = prob.X_ev[:, k]
        event_part = x_ev - mean_of_means[:, k]
        if prob.efron:
            event_part += ru_ev * (x_ev * F_ev - MF_ev[:, k])
        col[ev] += event_part
        yield col


def cluster_score_sums(prob: Problem, state: FitState, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per cluster, the sum of the weighted score residuals ``w_i U_i`` (n_clusters x p).

    The same sums as ``bincount(cluster, w * score_residuals(...)[:, k])``, built column by
    column so that the n x p residual matrix is never held.
    """
    p = prob.X.shape[1]
    out = np.empty((n_clusters, p))
    for k, col in enumerate(_score_residual_columns(prob, state)):
        if not prob.unit_weights:
            col *= prob.w
        out[:, k] = np.bincount(cluster, col, minlength=n_clusters)
    return out


def schoenfeld(prob: Problem, beta: np.ndarray) -> np.ndarray:
    """Schoenfeld residuals of the event rows (in the order of ``rs.event_rows``)."""
    st = evaluate(prob, beta, information=False)
    rs = prob.rs
    return prob.X[rs.event_rows] - _mean_of_means(prob, st)[rs.death_group]


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
    r = prob.w * st.ru
    A = term_means(prob, st)
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
