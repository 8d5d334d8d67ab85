"""Least-squares (estimated marginal) means and their contrasts, for any model of the package.

A model hands over what it knows (:class:`MarginalInputs`): its :class:`~.formula.ModelFrame`
(the formula's coding, the rows fitted), its coefficients, the covariance its inference
uses and a function giving the degrees of freedom of each row of a matrix L of linear
combinations (``inf`` for z tests). The rest is the same for every model, and follows R's
``emmeans`` (Lenth):

* the **reference grid** is every combination of the levels of the model's factors (in the
  data's category order), with each numeric variable at its mean over the rows fitted
  (emmeans' default ``cov.reduce = mean``, applied to the variable, not to a transform of it);
* a **least-squares mean** of the levels of ``spec`` (within each level of ``by``) averages
  the grid's predictions over the other factors with **equal weights** (emmeans' default),
  or, with ``weights="proportional"``, with weights proportional to how often each
  combination of those factors occurs in the rows fitted (emmeans' ``weights =
  "proportional"``);
* every result is a linear combination L beta; its standard error is sqrt(L V L'), its df
  the model's, and, when the model has a link (``inverse_link``), the mean is back-transformed
  and its standard error follows by the delta method (emmeans' ``type = "response"``); a
  model whose means are averages of nonlinear predictions at the grid points (the ordinal
  model's category probabilities, emmeans' ``mode = "prob"``) passes ``grid_mean`` instead;
* **contrasts** are differences of least-squares means, labelled ``"TRT - PBO"``: each level
  minus the reference (``method="trt.vs.ctrl"``, the first level unless ``reference`` is
  given) or every pair (``"pairwise"``, earlier level minus later); a multiplicity
  adjustment applies within each ``by`` group: ``holm`` and ``bonferroni`` (p-values as R's
  ``p.adjust``; intervals Bonferroni for both, as emmeans) or ``dunnett`` (the
  single-step max-|t| adjustment through the multivariate t distribution of the family,
  exact rather than emmeans' default ``dunnettx`` approximation; emmeans' ``adjust = "mvt"``
  truncates each df to an integer, this uses each contrast's own df).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .checks import check_choice, critical_value
from .formula import ModelFrame, _factor_names, design_for

__all__ = [
    "ADJUSTMENTS",
    "MarginalInputs",
    "WEIGHTS",
    "adjust_p_values",
    "contrast_table",
    "grid_factors",
    "lsmeans_table",
    "mean_combinations",
    "mean_weights",
    "reference_grid",
    "type3_hypotheses",
]

#: the adjust= choices
ADJUSTMENTS = ("none", "holm", "bonferroni", "dunnett")
#: the weights= choices
WEIGHTS = ("equal", "proportional")
_MVT_SEED = 20260101  # Genz's multivariate normal integration is randomised; fixed for reproducibility


@dataclass(frozen=True)
class MarginalInputs:
    """What a fitted model hands to the least-squares-means machinery.

    Attributes
    ----------
    mf : ModelFrame
        The model frame of the fit (design information, rows fitted).
    coef : numpy.ndarray
        Coefficients, in the order of ``mf.X``'s columns.
    cov : numpy.ndarray
        Their covariance matrix (the one the model's inference uses).
    df : callable
        ``df(L)`` for an ``m x p`` matrix gives m degrees of freedom (``inf``: normal).
    conf_level : float
    inverse_link : callable, optional
        ``inverse_link(eta)`` returns (mean, d mean / d eta); means are then reported on the
        response scale (delta-method standard errors). None for linear models.
    grid_mean : callable, optional
        For models whose means are averages of nonlinear predictions at the grid points
        (emmeans' ``regrid`` before averaging, as the ordinal model's ``mode = "prob"``):
        ``grid_mean(W, X)``, with W (m x g) the averaging weights over the reference grid
        and X its design (g x p), returns (m means, their m x len(coef) Jacobian in
        ``coef``). Intervals are then estimate +/- q se, as emmeans'. Excludes
        ``inverse_link``.
    row_weights : numpy.ndarray, optional
        The case weights of the rows fitted: ``weights="proportional"`` then weights each
        combination of factor levels by the sum of its rows' weights (emmeans' ``.wgt.``),
        not by its number of rows.
    """

    mf: ModelFrame
    coef: np.ndarray
    cov: np.ndarray
    df: Callable[[np.ndarray], np.ndarray]
    conf_level: float = 0.95
    inverse_link: Callable | None = None
    grid_mean: Callable | None = None
    row_weights: np.ndarray | None = None


def grid_factors(mf: ModelFrame) -> tuple[dict[str, list], list[str]]:
    """(factor column -> levels in the model's order, numeric columns) of a model frame.

    A column is a factor when the formula codes it as categorical (a string, boolean or
    Categorical column, or ``C(x)``).

    Examples
    --------
    >>> from analysis._kernel import model_frame
    >>> df = pd.DataFrame({"y": [1.0, 2, 3, 4], "arm": ["b", "a", "b", "a"], "age": [30, 40, 50, 60]})
    >>> grid_factors(model_frame("y ~ arm + age", df))
    ({'arm': ['a', 'b']}, ['age'])
    """
    factors: dict[str, list] = {}
    numeric: list[str] = []
    for factor, info in mf.design_info.factor_infos.items():
        cols = [c for c in _factor_names(factor.code) if c in mf.columns]
        if info.type == "categorical":
            if len(cols) != 1:
                raise ValueError(f"formula term {factor.code!r}: a factor for least-squares means must be one "
                                 f"column; found {cols or 'none'}")
            col = cols[0]
            levels = list(info.categories)
            if col in factors and factors[col] != levels:
                raise ValueError(f"column {col!r} is coded as a factor twice with different levels")
            factors[col] = levels
        else:
            numeric.extend(c for c in cols if c not in numeric)
    both = [c for c in numeric if c in factors]
    if both:
        raise ValueError(f"column(s) {both} are used both as a factor and as a number in the formula; "
                         "least-squares means need each column in one role")
    return factors, numeric


def reference_grid(mf: ModelFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The reference grid (every factor combination, numeric variables at their means) and
    its design matrix.

    Examples
    --------
    >>> from analysis._kernel import model_frame
    >>> df = pd.DataFrame({"y": [1.0, 2, 3, 4], "arm": ["b", "a", "b", "a"], "age": [30, 40, 50, 60]})
    >>> grid, X = reference_grid(model_frame("y ~ arm + age", df))
    >>> grid.to_dict("list"), X.tolist()
    ({'arm': ['a', 'b'], 'age': [45.0, 45.0]}, [[1.0, 0.0, 45.0], [1.0, 1.0, 45.0]])
    """
    factors, numeric = grid_factors(mf)
    names = list(factors)
    combos = list(itertools.product(*factors.values())) if names else [()]
    grid = pd.DataFrame(combos, columns=names) if names else pd.DataFrame(index=[0])
    for col in names:
        src = mf.data[col]
        if isinstance(src.dtype, pd.CategoricalDtype):
            grid[col] = pd.Categorical(grid[col], categories=src.cat.categories, ordered=src.cat.ordered)
    for col in numeric:
        grid[col] = float(np.mean(np.asarray(mf.data[col], dtype=float)))
    X = design_for(mf, grid).to_numpy(dtype=float)
    return grid, X


def _as_list(x) -> list[str]:
    if x is None:
        return []
    return [x] if isinstance(x, str) else list(x)


def mean_combinations(mf: ModelFrame, spec, by=None, *, weights: str = "equal") -> tuple[pd.DataFrame, np.ndarray]:
    """(rows: the levels of ``by`` and ``spec``, L: one linear combination of the
    coefficients per row) of the least-squares means of ``spec`` within ``by``.

    Rows are ordered by ``by`` (outer) then ``spec``, each in its levels' order, as emmeans
    prints them; the columns are ``spec`` then ``by``.
    """
    rows, W, X = mean_weights(mf, spec, by, weights=weights)
    return rows, W @ X


def mean_weights(mf: ModelFrame, spec, by=None, *, weights: str = "equal",
                 row_weights: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(rows, W, X): the rows of :func:`mean_combinations`, the weights W (one row per
    mean, summing to 1, over the points of the reference grid) and the grid's design X, so
    that the linear combinations are W @ X. With ``row_weights`` (case weights of the rows
    fitted), proportional weights are sums of them instead of counts of rows."""
    check_choice("weights", weights, WEIGHTS)
    spec_l, by_l = _as_list(spec), _as_list(by)
    factors, _ = grid_factors(mf)
    for name in spec_l + by_l:
        if name not in factors:
            raise ValueError(f"{name!r} is not a factor of the model {mf.formula!r}; its factors are "
                             f"{list(factors) or 'none'}")
    if not spec_l:
        raise ValueError("spec must name at least one factor")
    overlap = set(spec_l) & set(by_l)
    if overlap:
        raise ValueError(f"{sorted(overlap)} given both in spec and in by")
    grid, X = reference_grid(mf)
    others = [f for f in factors if f not in spec_l and f not in by_l]
    if weights == "proportional" and others:
        rw = pd.Series(np.ones(len(mf.data)) if row_weights is None else np.asarray(row_weights, dtype=float),
                       index=mf.data.index)
        counts = rw.groupby([mf.data[c].astype(object) for c in others], observed=True).sum()
        key = list(zip(*[grid[c].astype(object) for c in others])) if len(others) > 1 else list(grid[others[0]].astype(object))
        w_all = np.array([counts.get(k, 0) for k in key], dtype=float)
    else:
        w_all = np.ones(len(grid))
    out_rows, Ws = [], []
    for by_key in itertools.product(*[factors[b] for b in by_l]) if by_l else [()]:
        for spec_key in itertools.product(*[factors[s] for s in spec_l]):
            sel = np.ones(len(grid), dtype=bool)
            for name, value in zip(spec_l + by_l, spec_key + by_key):
                sel &= (grid[name].astype(object) == value).to_numpy()
            w = w_all * sel
            if w.sum() <= 0:
                raise ValueError(f"no rows fitted for the combination {dict(zip(spec_l + by_l, spec_key + by_key))} "
                                 "of the other factors' levels: proportional weights are undefined")
            Ws.append(w / w.sum())
            out_rows.append(dict(zip(spec_l + by_l, spec_key + by_key)))
    rows = pd.DataFrame(out_rows, columns=spec_l + by_l)
    for name in spec_l + by_l:
        rows[name] = pd.Categorical(rows[name], categories=factors[name], ordered=True)
    return rows, np.vstack(Ws), X


def _estimates(inputs: MarginalInputs, L: np.ndarray, *, link: bool):
    eta = L @ inputs.coef
    se = np.sqrt(np.maximum(np.einsum("ip,pq,iq->i", L, inputs.cov, L), 0.0))
    df = np.asarray(inputs.df(L), dtype=float)
    if link and inputs.inverse_link is not None:
        mu, dmu = inputs.inverse_link(eta)
        return np.asarray(mu, float), np.abs(np.asarray(dmu, float)) * se, df
    return eta, se, df


def lsmeans_table(inputs: MarginalInputs, spec, by=None, *, weights: str = "equal") -> pd.DataFrame:
    """Least-squares means: the factor columns, ``estimate, se, df, ci_lower, ci_upper``.

    Examples
    --------
    >>> from analysis._kernel import model_frame
    >>> df = pd.DataFrame({"y": [1.0, 2, 3, 5, 4, 6], "arm": list("ababab"), "sex": list("ffmmmf")})
    >>> mf = model_frame("y ~ arm + sex", df)
    >>> X = mf.X.to_numpy(); beta = np.linalg.lstsq(X, mf.y.to_numpy(), rcond=None)[0]
    >>> res = np.sum((mf.y.to_numpy() - X @ beta) ** 2) / 3
    >>> inp = MarginalInputs(mf, beta, res * np.linalg.inv(X.T @ X), lambda L: np.full(len(L), 3.0))
    >>> lsmeans_table(inp, "arm").round(4)
      arm  estimate     se   df  ci_lower  ci_upper
    0   a     2.375  1.045  3.0   -0.9506    5.7006
    1   b     4.625  1.045  3.0    1.2994    7.9506
    """
    rows, W, X = mean_weights(inputs.mf, spec, by, weights=weights, row_weights=inputs.row_weights)
    L = W @ X
    if inputs.grid_mean is not None:
        est, J = inputs.grid_mean(W, X)
        se = np.sqrt(np.maximum(np.einsum("ip,pq,iq->i", J, inputs.cov, J), 0.0))
        df = np.asarray(inputs.df(L), dtype=float)
    else:
        est, se, df = _estimates(inputs, L, link=True)
    q = _quantile(inputs.conf_level, df)
    out = rows.copy()
    out["estimate"], out["se"], out["df"] = est, se, df
    if inputs.inverse_link is not None and inputs.grid_mean is None:
        # the interval is back-transformed from the link scale (emmeans' type = "response")
        eta, se_eta, _ = _estimates(inputs, L, link=False)
        lo, hi = inputs.inverse_link(eta - q * se_eta)[0], inputs.inverse_link(eta + q * se_eta)[0]
        out["ci_lower"], out["ci_upper"] = np.minimum(lo, hi), np.maximum(lo, hi)
    else:
        out["ci_lower"], out["ci_upper"] = est - q * se, est + q * se
    return out


def _quantile(conf_level: float, df: np.ndarray) -> np.ndarray:
    df = np.asarray(df, dtype=float)
    finite = np.isfinite(df)
    return np.where(finite, critical_value(conf_level, np.where(finite, df, 1.0)), critical_value(conf_level))


def _label(row: dict, names: Sequence[str]) -> str:
    return " ".join(str(row[n]) for n in names)


def adjust_p_values(t: np.ndarray, df: np.ndarray, corr: np.ndarray, adjust: str) -> np.ndarray:
    """Two-sided p-values of one family of t statistics, adjusted by ``adjust``.

    ``holm`` and ``bonferroni`` as R's ``p.adjust``; ``dunnett`` is 1 - P(max_j |T_j| <
    |t_i|) for T multivariate t with correlation ``corr`` and the i-th statistic's df
    (normal for an infinite df).

    Examples
    --------
    >>> adjust_p_values(np.array([2.5, 1.0]), np.array([np.inf, np.inf]), np.eye(2), "holm").round(4).tolist()
    [0.0248, 0.3173]
    """
    check_choice("adjust", adjust, ADJUSTMENTS)
    t = np.asarray(t, dtype=float)
    df = np.asarray(df, dtype=float)
    finite = np.isfinite(df)
    p = np.where(finite, 2.0 * stats.t.sf(np.abs(t), np.where(finite, df, 1.0)), 2.0 * stats.norm.sf(np.abs(t)))
    m = t.size
    if adjust == "none" or m <= 1:
        return p
    if adjust == "bonferroni":
        return np.minimum(1.0, m * p)
    if adjust == "holm":
        order = np.argsort(p)
        adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
        out = np.empty(m)
        out[order] = np.minimum(1.0, adj)
        return out
    out = np.empty(m)
    for i in range(m):
        out[i] = min(1.0, max(0.0, 1.0 - _box_probability(abs(t[i]), corr, df[i])))
    return out


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(96)


def _box_probability(c: float, corr: np.ndarray, df: float) -> float:
    """P(max_j |T_j| < c) for T multivariate t (``df``; normal if infinite) with correlation
    ``corr``: a one-dimensional Gauss-Legendre integral over the quantiles of the scale
    S = sqrt(chi2_df / df) of multivariate normal box probabilities (Genz's algorithm)."""
    m = corr.shape[0]

    def box(a):
        if m == 1:
            return float(2.0 * stats.norm.cdf(a) - 1.0)
        return float(stats.multivariate_normal.cdf(np.full(m, a), mean=np.zeros(m), cov=corr, allow_singular=True,
                                                   maxpts=100_000 * m, abseps=1e-9, releps=1e-9,
                                                   lower_limit=np.full(m, -a), rng=_MVT_SEED))

    if not np.isfinite(df):
        return box(c)
    u = 0.5 * (_GL_NODES + 1.0)
    s = stats.chi.ppf(u, df) / np.sqrt(df)
    return float(0.5 * np.sum(_GL_WEIGHTS * np.array([box(c * si) for si in s])))


def _dunnett_quantile(conf_level: float, df: float, corr: np.ndarray) -> float:
    """The two-sided critical value c with P(max |T_j| < c) = conf_level."""
    from scipy.optimize import brentq

    m = corr.shape[0]
    dfx = df if np.isfinite(df) else None
    lo = float(critical_value(conf_level, dfx))
    hi = float(critical_value(1.0 - (1.0 - conf_level) / m, dfx))
    if hi - lo < 1e-12:
        return lo
    return brentq(lambda c: _box_probability(c, corr, df) - conf_level, lo - 1e-9, hi + 1e-6, xtol=1e-8)


def contrast_table(inputs: MarginalInputs, spec, by=None, *, method: str = "trt.vs.ctrl", reference=None,
                   adjust: str = "none", weights: str = "equal") -> pd.DataFrame:
    """Differences of least-squares means of ``spec`` within each level of ``by``.

    Columns: the ``by`` factors, ``contrast`` (``"TRT - PBO"``), ``estimate, se, df,
    statistic, p_value, ci_lower, ci_upper``. On a link scale (``inverse_link``) the
    differences are of the back-transformed means (delta method).

    Examples
    --------
    >>> from analysis._kernel import model_frame
    >>> df = pd.DataFrame({"y": [1.0, 2, 3, 5, 4, 6], "arm": list("ababab")})
    >>> mf = model_frame("y ~ arm", df)
    >>> X = mf.X.to_numpy(); beta = np.linalg.lstsq(X, mf.y.to_numpy(), rcond=None)[0]
    >>> inp = MarginalInputs(mf, beta, 1.5 * np.linalg.inv(X.T @ X), lambda L: np.full(len(L), 4.0))
    >>> contrast_table(inp, "arm").round(4).to_dict("records")
    [{'contrast': 'b - a', 'estimate': 1.6667, 'se': 1.0, 'df': 4.0, 'statistic': 1.6667, 'p_value': 0.1709, 'ci_lower': -1.1098, 'ci_upper': 4.4431}]
    """
    check_choice("method", method, ("trt.vs.ctrl", "pairwise"))
    check_choice("adjust", adjust, ADJUSTMENTS)
    spec_l, by_l = _as_list(spec), _as_list(by)
    rows, Wg, Xg = mean_weights(inputs.mf, spec_l, by_l, weights=weights, row_weights=inputs.row_weights)
    L = Wg @ Xg
    n_spec = int(np.prod([rows[s].cat.categories.size for s in spec_l]))
    records, Ls, Wpairs, groups = [], [], [], []
    for g in range(len(rows) // n_spec):
        block = rows.iloc[g * n_spec:(g + 1) * n_spec].to_dict("records")
        Lb = L[g * n_spec:(g + 1) * n_spec]
        Wb = Wg[g * n_spec:(g + 1) * n_spec]
        labels = [_label(r, spec_l) for r in block]
        if method == "trt.vs.ctrl":
            ref_i = 0
            if reference is not None:
                if str(reference) not in labels:
                    raise ValueError(f"reference {reference!r} is not a level of {spec_l}; levels are {labels}")
                ref_i = labels.index(str(reference))
            pairs = [(i, ref_i) for i in range(n_spec) if i != ref_i]
        else:
            pairs = [(i, j) for i in range(n_spec) for j in range(i + 1, n_spec)]
        for i, j in pairs:
            rec = {b: block[i][b] for b in by_l}
            rec["contrast"] = f"{labels[i]} - {labels[j]}"
            records.append(rec)
            Ls.append((Lb[i], Lb[j]))
            Wpairs.append((Wb[i], Wb[j]))
            groups.append(g)
    if not records:
        raise ValueError(f"{spec_l} has a single level: nothing to contrast")
    Li = np.vstack([a for a, _ in Ls])
    Lj = np.vstack([b for _, b in Ls])
    D = Li - Lj
    if inputs.grid_mean is not None:
        mu_i, J_i = inputs.grid_mean(np.vstack([a for a, _ in Wpairs]), Xg)
        mu_j, J_j = inputs.grid_mean(np.vstack([b for _, b in Wpairs]), Xg)
        est = np.asarray(mu_i) - np.asarray(mu_j)
        J = np.asarray(J_i) - np.asarray(J_j)
    elif inputs.inverse_link is not None:
        # difference of back-transformed means: gradient dmu_i L_i - dmu_j L_j
        mu_i, d_i = inputs.inverse_link(Li @ inputs.coef)
        mu_j, d_j = inputs.inverse_link(Lj @ inputs.coef)
        est = np.asarray(mu_i) - np.asarray(mu_j)
        J = np.asarray(d_i)[:, None] * Li - np.asarray(d_j)[:, None] * Lj
    else:
        est = D @ inputs.coef
        J = D
    Vc = J @ inputs.cov @ J.T
    se = np.sqrt(np.maximum(np.diag(Vc), 0.0))
    df = np.asarray(inputs.df(D), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = est / se
    groups = np.asarray(groups)
    p = np.empty(len(est))
    q = np.empty(len(est))
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        sd = se[idx]
        corr = Vc[np.ix_(idx, idx)] / np.outer(sd, sd)
        p[idx] = adjust_p_values(t[idx], df[idx], corr, adjust)
        m = idx.size
        if adjust in ("holm", "bonferroni") and m > 1:
            q[idx] = _quantile(1.0 - (1.0 - inputs.conf_level) / m, df[idx])
        elif adjust == "dunnett" and m > 1:
            quant = {d: _dunnett_quantile(inputs.conf_level, d, corr) for d in np.unique(df[idx])}
            q[idx] = [quant[d] for d in df[idx]]
        else:
            q[idx] = _quantile(inputs.conf_level, df[idx])
    out = pd.DataFrame(records, columns=by_l + ["contrast"])
    for b in by_l:
        out[b] = pd.Categorical(out[b], categories=rows[b].cat.categories, ordered=True)
    out["estimate"], out["se"], out["df"], out["statistic"], out["p_value"] = est, se, df, t, p
    out["ci_lower"], out["ci_upper"] = est - q * se, est + q * se
    return out


def type3_hypotheses(mf: ModelFrame) -> dict[str, np.ndarray]:
    """Per formula term, the rows L of its type III hypothesis L beta = 0.

    A term of factors only is tested on the reference grid, as SAS's type III and
    emmeans' ``joint_tests``: its main-effect or interaction contrasts of the cell means
    (sum-to-zero contrasts of each factor of the term, equal weights over the other
    factors, numeric variables at their means). A term with a numeric variable is tested on
    its own coefficients (the type III test when the variable is in no higher-order
    interaction with a factor; otherwise the slope at the reference levels).

    Examples
    --------
    >>> from analysis._kernel import model_frame
    >>> df = pd.DataFrame({"y": [1.0, 2, 3, 4, 5, 7], "arm": list("ababab"), "age": [3, 4, 5, 6, 7, 9]})
    >>> {k: v.tolist() for k, v in type3_hypotheses(model_frame("y ~ arm + age", df)).items()}
    {'arm': [[0.0, -0.5, 0.0]], 'age': [[0.0, 0.0, 1.0]]}
    """
    factors, _ = grid_factors(mf)
    grid, X = reference_grid(mf)
    out: dict[str, np.ndarray] = {}
    for term in mf.design_info.terms:
        name = term.name()
        if name == "Intercept" or name not in mf.terms:
            continue
        cols = [c for f in term.factors for c in _factor_names(f.code) if c in mf.columns]
        if all(c in factors for c in cols) and cols:
            w = np.ones(len(grid))
            for f in factors:
                v = grid[f].astype(object).to_numpy()
                lev = factors[f]
                k = len(lev)
                pos = np.array([lev.index(x) for x in v])
                if f in cols:
                    # sum-to-zero contrasts: level j (j < k-1) against the mean of all levels
                    C = np.eye(k)[:-1] - 1.0 / k
                    w = _kron_weights(w, C[:, pos].T)
                else:
                    w = w / k  # equal weights over the levels of a factor not in the term
            W = w.reshape(len(grid), -1)
            out[name] = W.T @ X
        else:
            idx = mf.terms[name]
            Lt = np.zeros((len(idx), X.shape[1]))
            Lt[np.arange(len(idx)), idx] = 1.0
            out[name] = Lt
    return out


def _kron_weights(w: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Row-wise Kronecker product of grid weights (n x a) with contrast codes (n x b)."""
    w2 = w.reshape(w.shape[0], -1)
    return (w2[:, :, None] * C[:, None, :]).reshape(w.shape[0], -1)
