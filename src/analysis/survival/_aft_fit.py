"""Numerical core of :func:`analysis.survival.aft`: distributions, derivatives, Newton-Raphson.

The model is R's ``survreg`` location-scale model on the log-time scale,

    log T = x'beta + sigma * W,

with W standard extreme-value (Weibull, exponential), logistic (log-logistic) or normal
(log-normal). The parameters iterated are (beta, log sigma); the log-likelihood of one
observation is written with z = (y - eta) / sigma, y = log t, eta = x'beta:

* exact:            log f(z) - log sigma
* right-censored:   log S(z_l)                   (S = 1 - F)
* left-censored:    log F(z_u)
* interval (l, u]:  log(F(z_u) - F(z_l))

(plus the Jacobian -log t of exact times, added by the caller, so that the reported
log-likelihood is on the time scale as R's). First and second derivatives are analytic;
the fitting loop follows ``survival:::survreg.fit`` and the C routine ``survreg6``
(starting values, Newton-Raphson steps, step halving, convergence on the relative change
in the log-likelihood), so that the estimates *and* the iteration counts agree with R.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

__all__ = ["DISTRIBUTIONS", "Distribution", "FitResult", "fit_survreg", "obs_loglik"]

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)

# status codes, as R's Surv(type = "interval")
RIGHT, EXACT, LEFT, INTERVAL = 0, 1, 2, 3


# ----------------------------------------------------------------------------------------
# the three standard distributions of W
# ----------------------------------------------------------------------------------------
class _Std:
    """A standard distribution of the error W: log density and its derivatives, log F, log S."""

    name = ""
    init_divisor = 1.0  # survreg's starting value of sigma^2 is var(y) / this
    init_shift = 0.0    # survreg's starting intercept is mean(y) + this

    def logpdf(self, z):
        raise NotImplementedError

    def dlogpdf(self, z):
        """l'(z) = f'(z) / f(z)."""
        raise NotImplementedError

    def d2logpdf(self, z):
        """l''(z)."""
        raise NotImplementedError

    def logcdf(self, z):
        raise NotImplementedError

    def logsf(self, z):
        raise NotImplementedError

    def ppf(self, p):
        raise NotImplementedError

    def cdf(self, z):
        return np.exp(self.logcdf(z))

    # the pieces the likelihood needs, computed together (subclasses share work)
    def exact_terms(self, z):
        """log f(z), l'(z), l''(z)."""
        return self.logpdf(z), self.dlogpdf(z), self.d2logpdf(z)

    def tail_terms(self, z):
        """log f(z), l'(z)."""
        return self.logpdf(z), self.dlogpdf(z)

    def right_terms(self, z):
        """log S(z), f(z)/S(z) (the hazard of W), l'(z)."""
        ls = self.logsf(z)
        return ls, np.exp(self.logpdf(z) - ls), self.dlogpdf(z)

    def left_terms(self, z):
        """log F(z), f(z)/F(z), l'(z)."""
        lf = self.logcdf(z)
        return lf, np.exp(self.logpdf(z) - lf), self.dlogpdf(z)

    def sf(self, z):
        return np.exp(self.logsf(z))


class _ExtremeValue(_Std):
    """Standard (minimum) extreme value: F(z) = 1 - exp(-e^z)."""

    name = "extreme"
    init_divisor = 1.64
    init_shift = 0.572

    def logpdf(self, z):
        return z - np.exp(z)

    def dlogpdf(self, z):
        return 1.0 - np.exp(z)

    def d2logpdf(self, z):
        return -np.exp(z)

    def logcdf(self, z):
        return np.log(-np.expm1(-np.exp(z)))

    def logsf(self, z):
        return -np.exp(z)

    def ppf(self, p):
        return np.log(-np.log1p(-np.asarray(p, dtype=float)))

    def exact_terms(self, z):
        ez = np.exp(z)
        return z - ez, 1.0 - ez, -ez

    def tail_terms(self, z):
        ez = np.exp(z)
        return z - ez, 1.0 - ez

    def right_terms(self, z):
        ez = np.exp(z)
        return -ez, ez, 1.0 - ez

    def left_terms(self, z):
        ez = np.exp(z)
        lf = np.log(-np.expm1(-ez))
        return lf, np.exp(z - ez - lf), 1.0 - ez


class _Logistic(_Std):
    """Standard logistic: F(z) = 1 / (1 + e^-z)."""

    name = "logistic"
    init_divisor = 3.2

    def logpdf(self, z):
        a = np.abs(z)
        return -a - 2.0 * np.log1p(np.exp(-a))

    def dlogpdf(self, z):
        return -np.tanh(z / 2.0)

    def d2logpdf(self, z):
        return -2.0 * np.exp(self.logpdf(z))

    def logcdf(self, z):
        return -np.logaddexp(0.0, -z)

    def logsf(self, z):
        return -np.logaddexp(0.0, z)

    def ppf(self, p):
        p = np.asarray(p, dtype=float)
        return np.log(p / (1.0 - p))

    def right_terms(self, z):
        return -np.logaddexp(0.0, z), special.expit(z), -np.tanh(z / 2.0)

    def left_terms(self, z):
        return -np.logaddexp(0.0, -z), special.expit(-z), -np.tanh(z / 2.0)


class _Normal(_Std):
    """Standard normal."""

    name = "gaussian"

    def logpdf(self, z):
        return -0.5 * z * z - _LOG_SQRT_2PI

    def dlogpdf(self, z):
        return -z

    def d2logpdf(self, z):
        return -np.ones_like(z)

    def logcdf(self, z):
        return special.log_ndtr(z)

    def logsf(self, z):
        return special.log_ndtr(-z)

    def ppf(self, p):
        return stats.norm.ppf(p)


@dataclass(frozen=True)
class Distribution:
    """A survreg distribution: the error law of log T and whether sigma is fixed."""

    name: str
    std: _Std
    fixed_scale: float | None = None
    label: str = ""


DISTRIBUTIONS = {
    "weibull": Distribution("weibull", _ExtremeValue(), None, "Weibull"),
    "exponential": Distribution("exponential", _ExtremeValue(), 1.0, "Exponential"),
    "lognormal": Distribution("lognormal", _Normal(), None, "Log-normal"),
    "loglogistic": Distribution("loglogistic", _Logistic(), None, "Log-logistic"),
}


# ----------------------------------------------------------------------------------------
# per-observation log-likelihood and derivatives in (eta, s = log sigma)
# ----------------------------------------------------------------------------------------
@dataclass
class ObsDerivs:
    """g and its derivatives for every observation: d/d eta (``d1``), d2/d eta2 (``d11``),
    d/ds (``ds``), d2/ds2 (``dss``), d2/(d eta ds) (``d1s``), with s = log sigma."""

    g: np.ndarray
    d1: np.ndarray
    d11: np.ndarray
    ds: np.ndarray
    dss: np.ndarray
    d1s: np.ndarray


def obs_loglik(std: _Std, y1, y2, status, eta, sigma, *, derivs: bool = True) -> ObsDerivs | np.ndarray:
    """Log-likelihood contribution (and derivatives) of each observation on the log scale.

    ``y1`` holds log t (exact), the log censoring time (right), the log upper bound (left)
    or the log lower bound (interval); ``y2`` the log upper bound of interval rows.
    ``sigma`` is a scalar. Without the Jacobian of the log transform.

    With A = F(z_u) - F(z_l) the probability of a censored row (z_l = -inf for left-,
    z_u = +inf for right-censored rows), a = f(z)/A and b = f'(z)/A at each finite end:
    dg/d eta = -(a_u - a_l)/sigma, dg/ds = -(z_u a_u - z_l a_l),
    d2g/d eta2 = (b_u - b_l)/sigma^2 - (dg/d eta)^2,
    d2g/ds2 = (z_u a_u + z_u^2 b_u) - (z_l a_l + z_l^2 b_l) - (dg/ds)^2,
    d2g/(d eta ds) = ((a_u - a_l) + (z_u b_u - z_l b_l))/sigma - (dg/d eta)(dg/ds).
    """
    n = y1.size
    g = np.empty(n)
    if derivs:
        d1, d11, ds, dss, d1s = (np.empty(n) for _ in range(5))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        z1 = (y1 - eta) / sigma
        log_sigma = np.log(sigma)
        for code in (EXACT, RIGHT, LEFT, INTERVAL):
            idx = np.flatnonzero(status == code)
            if idx.size == 0:
                continue
            z = z1[idx]
            if code == EXACT:
                lp, l1, l2 = std.exact_terms(z)
                g[idx] = lp - log_sigma
                if derivs:
                    d1[idx] = -l1 / sigma
                    d11[idx] = l2 / sigma**2
                    ds[idx] = -z * l1 - 1.0
                    dss[idx] = l2 * z * z + l1 * z
                    d1s[idx] = (l2 * z + l1) / sigma
                continue
            if code == RIGHT:
                log_a, a_l, l1_l = std.right_terms(z)
                g[idx] = log_a
                if not derivs:
                    continue
                b_l = a_l * l1_l
                zl, a_u, b_u, zu = z, 0.0, 0.0, 0.0
            elif code == LEFT:
                log_a, a_u, l1_u = std.left_terms(z)
                g[idx] = log_a
                if not derivs:
                    continue
                b_u = a_u * l1_u
                zu, a_l, b_l, zl = z, 0.0, 0.0, 0.0
            else:
                zl, zu = z, (y2[idx] - eta[idx]) / sigma
                log_a = _log_prob_between(std, zl, zu)
                g[idx] = log_a
                if not derivs:
                    continue
                lpl, l1l = std.tail_terms(zl)
                lpu, l1u = std.tail_terms(zu)
                a_l, a_u = np.exp(lpl - log_a), np.exp(lpu - log_a)
                b_l, b_u = a_l * l1l, a_u * l1u
            g1 = -(a_u - a_l) / sigma
            gs = -(zu * a_u - zl * a_l)
            d1[idx] = g1
            ds[idx] = gs
            d11[idx] = (b_u - b_l) / sigma**2 - g1 * g1
            dss[idx] = (zu * a_u + zu * zu * b_u) - (zl * a_l + zl * zl * b_l) - gs * gs
            d1s[idx] = ((a_u - a_l) + (zu * b_u - zl * b_l)) / sigma - g1 * gs
    if not derivs:
        return g
    return ObsDerivs(g, d1, d11, ds, dss, d1s)


def _log_prob_between(std: _Std, zl: np.ndarray, zu: np.ndarray) -> np.ndarray:
    """log(F(zu) - F(zl)) for zl < zu, computed in the tail where it does not cancel
    (survregc1 uses S(zl) - S(zu) when zl > 0, F(zu) - F(zl) otherwise)."""
    r = np.empty(zl.size)
    upper_tail = zl > 0
    a, b = zl[upper_tail], zu[upper_tail]
    sa, sb = std.logsf(a), std.logsf(b)
    r[upper_tail] = sa + np.log1p(-np.exp(sb - sa))
    a, b = zl[~upper_tail], zu[~upper_tail]
    ca, cb = std.logcdf(a), std.logcdf(b)
    r[~upper_tail] = cb + np.log1p(-np.exp(ca - cb))
    return r


# ----------------------------------------------------------------------------------------
# the Newton-Raphson loop of survreg6
# ----------------------------------------------------------------------------------------
@dataclass
class _Model:
    std: _Std
    X: np.ndarray
    y1: np.ndarray
    y2: np.ndarray
    status: np.ndarray
    w: np.ndarray
    fixed_log_scale: float | None

    @property
    def npar(self) -> int:
        return self.X.shape[1] + (0 if self.fixed_log_scale is not None else 1)

    def split(self, theta):
        p = self.X.shape[1]
        s = self.fixed_log_scale if self.fixed_log_scale is not None else theta[p]
        return theta[:p], s

    def loglik(self, theta) -> float:
        beta, s = self.split(theta)
        with np.errstate(over="ignore", invalid="ignore"):
            g = obs_loglik(self.std, self.y1, self.y2, self.status, self.X @ beta, np.exp(s), derivs=False)
            ll = float(np.dot(self.w, g))
        return ll if np.isfinite(ll) else -np.inf

    def full(self, theta):
        """Log-likelihood, score, information (minus the Hessian) and J'J."""
        with np.errstate(over="ignore", invalid="ignore"):  # far-off trial steps: -inf, then step halving
            return self._full(theta)

    def _full(self, theta):
        beta, s = self.split(theta)
        X, w = self.X, self.w
        d = obs_loglik(self.std, self.y1, self.y2, self.status, X @ beta, np.exp(s))
        ll = float(np.dot(w, d.g))
        if not np.isfinite(ll):
            ll = -np.inf
        u_beta = X.T @ (w * d.d1)
        i_bb = -(X.T * (w * d.d11)) @ X
        j_bb = (X.T * (w * d.d1 * d.d1)) @ X
        if self.fixed_log_scale is not None:
            return ll, u_beta, i_bb, j_bb
        u = np.concatenate([u_beta, [np.dot(w, d.ds)]])
        i_bs = -(X.T @ (w * d.d1s))
        j_bs = X.T @ (w * d.ds * d.d1)
        p = X.shape[1]
        imat = np.empty((p + 1, p + 1))
        imat[:p, :p] = i_bb
        imat[:p, p] = imat[p, :p] = i_bs
        imat[p, p] = -np.dot(w, d.dss)
        jj = np.empty((p + 1, p + 1))
        jj[:p, :p] = j_bb
        jj[:p, p] = jj[p, :p] = j_bs
        jj[p, p] = np.dot(w, d.ds * d.ds)
        return ll, u, imat, jj


def _newton_step(imat, jj, u):
    """imat^-1 u, or (J'J)^-1 u when the information is not positive definite (as survreg6)."""
    try:
        c = np.linalg.cholesky(imat)
    except np.linalg.LinAlgError:
        c = np.linalg.cholesky(jj + 1e-12 * np.eye(jj.shape[0]) * max(1.0, np.abs(jj).max()))
    return np.linalg.solve(c.T, np.linalg.solve(c, u))


@dataclass
class _Loop:
    theta: np.ndarray
    loglik: float
    info: np.ndarray
    iterations: int
    converged: bool


def _survreg6(model: _Model, init: np.ndarray, maxiter: int, eps: float) -> _Loop:
    """Newton-Raphson with step halving, exactly as survival's C routine survreg6."""
    nvar = model.X.shape[1]
    free_scale = model.fixed_log_scale is None
    beta = np.array(init, dtype=float)
    loglik, u, imat, jj = model.full(beta)
    newbeta = beta + _newton_step(imat, jj, u)
    if maxiter == 0:
        return _Loop(beta, loglik, imat, 0, False)
    halving = 0
    newlk, u, imat, jj = model.full(newbeta)
    for it in range(1, maxiter + 1):
        if np.isfinite(newlk) and abs(1.0 - loglik / newlk) <= eps and halving == 0:
            return _Loop(newbeta, newlk, imat, it, True)
        if not np.isfinite(newlk) or newlk < loglik:
            j = 0
            while j < 5 and not newlk >= loglik:
                halving += 1
                newbeta = (newbeta + beta) / 2.0
                if halving == 1 and free_scale and beta[nvar] - newbeta[nvar] > 1.1:
                    newbeta[nvar] = beta[nvar] - 1.1
                newlk = model.loglik(newbeta)
                j += 1
        else:
            halving = 0
            loglik = newlk
            step = _newton_step(imat, jj, u)
            beta = newbeta
            newbeta = newbeta + step
        newlk, u, imat, jj = model.full(newbeta)
    return _Loop(newbeta, newlk, imat, maxiter, False)


def _init_values(std: _Std, y1, y2, status, w):
    """survreg's starting location and log-scale from the (midpoint) log times."""
    yy = np.where(status != INTERVAL, y1, (y1 + y2) / 2.0)
    mean = float(np.sum(w * yy) / np.sum(w))
    var = float(np.sum(w * (yy - mean) ** 2) / np.sum(w))
    return yy, mean + std.init_shift, var / std.init_divisor


def _wls_start(std, X, yy, y1, y2, status, w, log_scale):
    """One weighted least-squares step from eta = yy at the given scale (survreg.fit)."""
    d = obs_loglik(std, y1, y2, status, yy, np.exp(log_scale))
    wt = -d.d11 * w
    lhs = (X.T * wt) @ X
    rhs = X.T @ (wt * yy + w * d.d1)
    return np.linalg.solve(lhs, rhs)


@dataclass
class FitResult:
    """Estimates on the original covariate scale; ``loglik`` without the log-time Jacobian."""

    coef: np.ndarray          # beta (and log sigma last unless the scale is fixed)
    var: np.ndarray           # inverse information at the estimate
    loglik: float
    loglik_null: float        # intercept(-and-scale)-only model, as survreg's loglik[1]
    iterations: int
    converged: bool
    iterations_null: int
    converged_null: bool


def fit_survreg(dist: Distribution, X: np.ndarray, y1, y2, status, w, *, max_iter: int = 30,
                tol: float = 1e-9) -> FitResult:
    """Fit as ``survival:::survreg.fit`` with ``init = NULL`` (its default starting values),
    ``survreg.control(maxiter = max_iter, rel.tolerance = tol)``.

    ``X`` includes the intercept column (if any) first. Non-0/1 columns are centred and
    scaled for the iterations when the first column is the intercept, as survreg does,
    and the estimates and variance are transformed back.
    """
    std = dist.std
    n, nvar = X.shape
    fixed = None if dist.fixed_scale is None else float(np.log(dist.fixed_scale))
    has_intercept = nvar > 0 and bool(np.all(X[:, 0] == 1.0))
    rescaled = False
    center = np.zeros(nvar)
    stdev = np.ones(nvar)
    Xf = X
    if has_intercept and nvar > 1:
        binary = np.all((X == 0.0) | (X == 1.0), axis=0)
        if not binary.all():
            rescaled = True
            center = np.where(binary, 0.0, X.mean(axis=0))
            stdev = np.where(binary, 1.0, X.std(axis=0, ddof=1))
            Xf = (X - center) / stdev
    meanonly = nvar == 1 and has_intercept

    yy, m0, v0 = _init_values(std, y1, y2, status, w)
    vars0 = fixed if fixed is not None else float(np.log(4.0 * v0) / 2.0)
    ones = np.ones((n, 1))
    if not meanonly:
        # fit0: intercept and scale only (its log-likelihood is survreg's loglik[1])
        d = obs_loglik(std, y1, y2, status, yy, np.exp(vars0))
        wt = -d.d11 * w
        b0 = float(np.sum(w * d.d1 + wt * yy) / np.sum(wt))
        init0 = np.array([b0] if fixed is not None else [b0, vars0])
        m_null = _Model(std, ones, y1, y2, status, w, fixed)
        fit0 = _survreg6(m_null, init0, 20, tol)
        log_scale = fixed if fixed is not None else float(fit0.theta[1])
    else:
        log_scale = vars0
    beta0 = _wls_start(std, Xf, yy, y1, y2, status, w, log_scale)
    init = beta0 if fixed is not None else np.concatenate([beta0, [log_scale]])
    model = _Model(std, Xf, y1, y2, status, w, fixed)
    loop = _survreg6(model, init, max_iter, tol)
    theta = loop.theta
    try:
        var = np.linalg.inv(loop.info)
    except np.linalg.LinAlgError:
        var = np.full(loop.info.shape, np.nan)
    if rescaled:
        npar = theta.size
        T = np.eye(npar)
        T[:nvar, :nvar] = np.diag(1.0 / stdev)
        T[0, 1:nvar] = -center[1:nvar] / stdev[1:nvar]
        theta = T @ theta
        var = T @ var @ T.T
    if meanonly:
        ll0, it0, conv0 = loop.loglik, loop.iterations, loop.converged
    else:
        ll0, it0, conv0 = fit0.loglik, fit0.iterations, fit0.converged
    return FitResult(theta, var, loop.loglik, ll0, loop.iterations, loop.converged, it0, conv0)
