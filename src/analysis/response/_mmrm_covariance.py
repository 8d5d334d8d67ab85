"""Within-subject covariance structures of the MMRM over ``T`` ordered visits.

Each structure is a map from its covariance parameters ``theta`` to the ``T x T`` matrix
Sigma(theta), in the parameterisation SAS PROC MIXED reports (and R's ``mmrm`` names):

======  ===================================================================  ==============
name    Sigma[i, j]                                                          theta
======  ===================================================================  ==============
us      free symmetric positive definite                                     sigma_ij, i >= j, row-wise
cs      s1 + s2 [i = j]  (compound symmetry)                                  s1 (covariance), s2 (residual)
csh     sqrt(v_i v_j) (rho + (1 - rho) [i = j])                               v_1..v_T, rho
ar1     v rho^|i - j|                                                        v, rho
ar1h    sqrt(v_i v_j) rho^|i - j|                                            v_1..v_T, rho
toep    c_|i - j|  (Toeplitz)                                                c_0..c_{T-1}
toeph   sqrt(v_i v_j) r_|i - j|, r_0 = 1                                     v_1..v_T, r_1..r_{T-1}
ad      v prod_{k=i}^{j-1} rho_k  (ante-dependence, homogeneous)             v, rho_1..rho_{T-1}
adh     sqrt(v_i v_j) prod_{k=i}^{j-1} rho_k  (SAS ANTE(1))                  v_1..v_T, rho_1..rho_{T-1}
======  ===================================================================  ==============

Visits are positions 0..T-1 of the ordered visit factor (so ``ar1`` and the Toeplitz
structures assume equally spaced visits, as SAS's and mmrm's do).

The optimiser works on unconstrained parameters ``phi`` (log variances, Cholesky factors,
tanh or partial-autocorrelation transforms of correlations) that always give a positive
definite Sigma; ``theta_of(phi)`` maps them to ``theta``. Derivatives of Sigma with respect to
``theta`` (first and second, for Satterthwaite and Kenward-Roger degrees of freedom) and of
``theta`` with respect to ``phi`` are taken by complex-step differentiation: every map here
is written with complex-safe numpy operations, so first derivatives are exact to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["COVARIANCE_STRUCTURES", "CovarianceStructure", "structure"]

_STEP = 1e-30  # complex step: no subtractive cancellation, so tiny is exact
_STEP2 = 1e-5  # real step of the second derivative (central difference of complex-step first derivatives)


def _sqrt_outer(v):
    s = np.sqrt(v)
    return s[:, None] * s[None, :]


def _lag(T: int) -> np.ndarray:
    idx = np.arange(T)
    return np.abs(idx[:, None] - idx[None, :])


def _corr_map(z, lower: float):
    """An unconstrained z to a correlation in (lower, 1)."""
    return lower + (1.0 - lower) / (1.0 + np.exp(-z))


def _corr_unmap(r: float, lower: float) -> float:
    u = (r - lower) / (1.0 - lower)
    u = min(max(u, 1e-6), 1 - 1e-6)
    return float(np.log(u / (1.0 - u)))


def _pacf_to_acf(pacf):
    """Autocorrelations r_1..r_p of a stationary process from its partial autocorrelations
    (Durbin-Levinson); any pacf in (-1, 1)^p gives a positive definite Toeplitz matrix."""
    p = len(pacf)
    phi = np.zeros((p, p), dtype=pacf.dtype)
    r = np.zeros(p + 1, dtype=pacf.dtype)
    r[0] = 1.0
    for k in range(p):
        phi[k, k] = pacf[k]
        for j in range(k):
            phi[k, j] = phi[k - 1, j] - pacf[k] * phi[k - 1, k - 1 - j]
        # r_{k+1} = sum_j phi[k, j] r_{k-j}
        r[k + 1] = sum(phi[k, j] * r[k - j] for j in range(k + 1))
    return r[1:]


def _acf_to_pacf(r: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_pacf_to_acf` (Durbin-Levinson), clipped inside (-1, 1)."""
    p = len(r)
    full = np.concatenate([[1.0], r])
    pacf = np.zeros(p)
    phi_prev = np.zeros(0)
    for k in range(p):
        num = full[k + 1] - (phi_prev @ full[k:0:-1] if k else 0.0)
        den = 1.0 - (phi_prev @ full[1:k + 1] if k else 0.0)
        a = float(np.clip(num / den, -0.95, 0.95)) if den > 0 else 0.0
        pacf[k] = a
        phi_prev = np.concatenate([phi_prev - a * phi_prev[::-1], [a]])
    return pacf


@dataclass(frozen=True)
class CovarianceStructure:
    """One covariance structure on ``n_visits`` visits (see the module docstring).

    Attributes
    ----------
    name : str
        ``us``, ``cs``, ``csh``, ``ar1``, ``ar1h``, ``toep``, ``toeph``, ``ad`` or ``adh``.
    n_visits : int
    param_names : tuple of str
        Names of ``theta`` (SAS's, with visit labels).
    """

    name: str
    n_visits: int
    param_names: tuple[str, ...]
    _sigma: Callable = None  # theta -> Sigma
    _theta_of: Callable = None  # phi -> theta
    _phi_start: Callable = None  # empirical covariance -> phi

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    def sigma(self, theta) -> np.ndarray:
        """Sigma(theta), ``T x T``."""
        return self._sigma(np.asarray(theta))

    def theta_of(self, phi) -> np.ndarray:
        """The covariance parameters of the unconstrained ``phi``."""
        return self._theta_of(np.asarray(phi))

    def start(self, empirical: np.ndarray) -> np.ndarray:
        """Starting ``phi`` from an empirical visit covariance matrix."""
        return np.asarray(self._phi_start(np.asarray(empirical, dtype=float)), dtype=float)

    def dtheta_dphi(self, phi) -> np.ndarray:
        """Jacobian d theta / d phi (``k x k``), by complex step."""
        phi = np.asarray(phi, dtype=float)
        J = np.empty((self.n_params, phi.size))
        for j in range(phi.size):
            z = phi.astype(complex)
            z[j] += 1j * _STEP
            J[:, j] = np.imag(self.theta_of(z)) / _STEP
        return J

    def dsigma(self, theta) -> np.ndarray:
        """d Sigma / d theta_k, an array ``k x T x T`` (complex step: exact to rounding)."""
        theta = np.asarray(theta, dtype=float)
        out = np.empty((theta.size, self.n_visits, self.n_visits))
        for k in range(theta.size):
            z = theta.astype(complex)
            z[k] += 1j * _STEP
            out[k] = np.imag(self._sigma(z)) / _STEP
        return out

    def d2sigma(self, theta) -> np.ndarray:
        """d2 Sigma / d theta_k d theta_l, ``k x k x T x T`` (zero for the linear structures
        us, cs and toep; otherwise central differences of :meth:`dsigma`)."""
        theta = np.asarray(theta, dtype=float)
        k = theta.size
        out = np.zeros((k, k, self.n_visits, self.n_visits))
        if self.name in ("us", "cs", "toep"):
            return out
        for l in range(k):
            h = _STEP2 * max(1.0, abs(theta[l]))
            tp, tm = theta.copy(), theta.copy()
            tp[l] += h
            tm[l] -= h
            out[:, l] = (self.dsigma(tp) - self.dsigma(tm)) / (2.0 * h)
        return 0.5 * (out + out.transpose(1, 0, 2, 3))


def _vech_names(labels) -> tuple[str, ...]:
    return tuple(f"UN({labels[i]},{labels[j]})" for i in range(len(labels)) for j in range(i + 1))


def _make_us(T: int, labels) -> CovarianceStructure:
    rows, cols = np.tril_indices(T)
    order = np.lexsort((cols, rows))  # row-wise: (0,0), (1,0), (1,1), (2,0), ...
    rows, cols = rows[order], cols[order]

    def sigma(theta):
        S = np.zeros((T, T), dtype=theta.dtype)
        S[rows, cols] = theta
        S[cols, rows] = theta
        return S

    def theta_of(phi):
        L = np.zeros((T, T), dtype=phi.dtype)
        L[rows, cols] = phi
        d = np.arange(T)
        L[d, d] = np.exp(L[d, d])
        S = L @ L.T
        return S[rows, cols]

    def start(emp):
        S = emp + 1e-6 * np.mean(np.diag(emp)) * np.eye(T)
        try:
            L = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            L = np.diag(np.sqrt(np.diag(emp)))
        d = np.arange(T)
        L[d, d] = np.log(L[d, d])
        return L[rows, cols]

    return CovarianceStructure("us", T, _vech_names(labels), sigma, theta_of, start)


def _mean_corr(emp: np.ndarray, lag: int | None = None) -> float:
    T = emp.shape[0]
    sd = np.sqrt(np.diag(emp))
    R = emp / np.outer(sd, sd)
    L = _lag(T)
    vals = R[L == lag] if lag is not None else R[L > 0]
    return float(np.clip(np.mean(vals), -0.3, 0.9)) if vals.size else 0.0


def _make(name: str, T: int, labels) -> CovarianceStructure:
    lag = _lag(T)
    vis = [f"Var({lab})" for lab in labels]
    if name == "us":
        return _make_us(T, labels)
    if name == "cs":
        lower = -1.0 / (T - 1) if T > 1 else -0.99

        def sigma(t):
            return t[0] * np.ones((T, T), dtype=t.dtype) + t[1] * np.eye(T)

        def theta_of(phi):
            tau = np.exp(phi[0])
            r = _corr_map(phi[1], lower)
            return np.stack([tau * r, tau * (1.0 - r)])

        def start(emp):
            return [np.log(np.mean(np.diag(emp))), _corr_unmap(_mean_corr(emp), lower)]

        return CovarianceStructure(name, T, ("CS", "Residual"), sigma, theta_of, start)
    if name == "csh":
        lower = -1.0 / (T - 1) if T > 1 else -0.99

        def sigma(t):
            R = t[T] * np.ones((T, T), dtype=t.dtype) + (1.0 - t[T]) * np.eye(T)
            return _sqrt_outer(t[:T]) * R

        def theta_of(phi):
            return np.concatenate([np.exp(phi[:T]), [_corr_map(phi[T], lower)]])

        def start(emp):
            return np.concatenate([np.log(np.diag(emp)), [_corr_unmap(_mean_corr(emp), lower)]])

        return CovarianceStructure(name, T, (*vis, "CSH"), sigma, theta_of, start)
    if name in ("ar1", "ar1h"):
        het = name == "ar1h"
        nv = T if het else 1

        def sigma(t):
            v = t[:nv] if het else np.repeat(t[:1], T)
            return _sqrt_outer(v) * t[nv] ** lag

        def theta_of(phi):
            return np.concatenate([np.exp(phi[:nv]), [np.tanh(phi[nv])]])

        def start(emp):
            v = np.diag(emp) if het else [np.mean(np.diag(emp))]
            return np.concatenate([np.log(v), [np.arctanh(np.clip(_mean_corr(emp, 1), -0.9, 0.9))]])

        names = (*vis, "ARH(1)") if het else ("Variance", "AR(1)")
        return CovarianceStructure(name, T, names, sigma, theta_of, start)
    if name == "toep":
        def sigma(t):
            return t[lag]

        def theta_of(phi):
            v = np.exp(phi[0])
            r = _pacf_to_acf(np.tanh(phi[1:]))
            return np.concatenate([[v], v * r])

        def start(emp):
            T_ = emp.shape[0]
            c = np.array([np.mean(emp[lag == h]) for h in range(T_)])
            return np.concatenate([[np.log(c[0])], np.arctanh(_acf_to_pacf(c[1:] / c[0]))])

        return CovarianceStructure(name, T, ("Variance", *[f"TOEP({h + 1})" for h in range(1, T)]), sigma, theta_of,
                                   start)
    if name == "toeph":
        def sigma(t):
            r = np.concatenate([np.ones(1, dtype=t.dtype), t[T:]])
            return _sqrt_outer(t[:T]) * r[lag]

        def theta_of(phi):
            return np.concatenate([np.exp(phi[:T]), _pacf_to_acf(np.tanh(phi[T:]))])

        def start(emp):
            sd = np.sqrt(np.diag(emp))
            R = emp / np.outer(sd, sd)
            r = np.array([np.mean(R[lag == h]) for h in range(1, T)])
            return np.concatenate([np.log(np.diag(emp)), np.arctanh(_acf_to_pacf(r))])

        return CovarianceStructure(name, T, (*vis, *[f"TOEPH({h})" for h in range(1, T)]), sigma, theta_of, start)
    if name in ("ad", "adh"):
        het = name == "adh"
        nv = T if het else 1

        def sigma(t):
            v = t[:nv] if het else np.repeat(t[:1], T)
            rho = t[nv:]
            # log-free cumulative products, complex-safe: C[i, j] = prod_{k=min}^{max-1} rho_k
            C = np.ones((T, T), dtype=t.dtype)
            for i in range(T):
                acc = np.ones((), dtype=t.dtype)
                for j in range(i + 1, T):
                    acc = acc * rho[j - 1]
                    C[i, j] = acc
                    C[j, i] = acc
            return _sqrt_outer(v) * C

        def theta_of(phi):
            return np.concatenate([np.exp(phi[:nv]), np.tanh(phi[nv:])])

        def start(emp):
            sd = np.sqrt(np.diag(emp))
            R = emp / np.outer(sd, sd)
            rho = np.clip([R[k, k + 1] for k in range(T - 1)], -0.9, 0.9)
            v = np.diag(emp) if het else [np.mean(np.diag(emp))]
            return np.concatenate([np.log(v), np.arctanh(rho)])

        rn = tuple(f"{'ANTE' if het else 'AD'}({labels[k]},{labels[k + 1]})" for k in range(T - 1))
        return CovarianceStructure(name, T, ((*vis,) if het else ("Variance",)) + rn, sigma, theta_of, start)
    raise ValueError(name)


#: the structures :func:`structure` builds
COVARIANCE_STRUCTURES = ("us", "cs", "csh", "ar1", "ar1h", "toep", "toeph", "ad", "adh")


def structure(name: str, visit_labels) -> CovarianceStructure:
    """The covariance structure ``name`` over the given ordered visit labels.

    Examples
    --------
    >>> s = structure("ar1", ["w1", "w2", "w3"])
    >>> s.param_names
    ('Variance', 'AR(1)')
    >>> s.sigma([2.0, 0.5]).round(12).tolist()
    [[2.0, 1.0, 0.5], [1.0, 2.0, 1.0], [0.5, 1.0, 2.0]]
    """
    if name not in COVARIANCE_STRUCTURES:
        allowed = ", ".join(repr(c) for c in COVARIANCE_STRUCTURES)
        raise ValueError(f"covariance must be one of {allowed}; got {name!r}")
    labels = [str(v) for v in visit_labels]
    T = len(labels)
    if T < 2 and name != "us":
        raise ValueError(f"covariance {name!r} needs at least 2 visits; the data have {T}")
    return _make(name, T, labels)
