"""Proportional-odds (cumulative logit) model for ordered categories, agreeing with R's
``MASS::polr(method = "logistic", Hess = TRUE)``, with the Brant test of proportional odds.

Parametrisation (polr's): logit P(Y <= k) = zeta_k - eta, eta = x'beta without intercept,
so a positive coefficient moves patients towards higher categories (e.g. from
non-responder towards responder) and exp(beta) is the odds ratio of being above any cut.

See ``docs/response.md`` section 3.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.miscmodels.ordinal_model import OrderedModel
from statsmodels.tools.sm_exceptions import ConvergenceWarning as _StatsmodelsConvergenceWarning

from .._kernel import ModelFrame, ModelResult, capture_env, check_conf_level, coef_table, design_for, model_frame, with_aliases
from ._base import ODDS_RATIO_ALIASES, CategoricalModelMixin, warn_not_converged
from .._kernel import check_choice
from .._kernel.marginal import ADJUSTMENTS, MarginalInputs, contrast_table, lsmeans_table
from ._categorical import fit_mnlogit, ordered_outcome
from ._marginal_methods import ORDINAL_MODES, MarginalMeansMixin, ordinal_category_mean, z_df

__all__ = ["OrdinalResult", "ordinal", "ordered_outcome"]


def _cum_parts(zeta_full: np.ndarray, eta: np.ndarray, codes: np.ndarray):
    """F, f, f' of the upper (a = zeta_k - eta) and lower (b = zeta_{k-1} - eta) cuts."""
    a = zeta_full[codes + 1] - eta
    b = zeta_full[codes] - eta
    Fa, Fb = stats.logistic.cdf(a), stats.logistic.cdf(b)
    fa, fb = Fa * (1 - Fa), Fb * (1 - Fb)
    return a, b, Fa, Fb, fa, fb


def loglik_grad_hess(theta: np.ndarray, X: np.ndarray, codes: np.ndarray, K: int, w: np.ndarray | None = None):
    """Log-likelihood, gradient and Hessian of the cumulative logit model in polr's
    parameters theta = (beta, zeta_1..zeta_{K-1}) (analytic)."""
    p = X.shape[1]
    q = K - 1
    beta, zeta = theta[:p], theta[p:]
    zf = np.concatenate([[-np.inf], zeta, [np.inf]])
    eta = X @ beta
    a, b, Fa, Fb, fa, fb = _cum_parts(zf, eta, codes)
    P = Fa - Fb
    fpa = fa * (1 - 2 * Fa)
    fpb = fb * (1 - 2 * Fb)
    ww = np.ones_like(P) if w is None else w
    ll = float(np.sum(ww * np.log(P)))
    la, lb = fa / P, -fb / P
    laa = fpa / P - (fa / P) ** 2
    lbb = -fpb / P - (fb / P) ** 2
    lab = fa * fb / P**2
    n = X.shape[0]
    A = np.zeros((n, p + q))
    B = np.zeros((n, p + q))
    A[:, :p] = -X
    B[:, :p] = -X
    rows = np.arange(n)
    up = codes < K - 1  # zeta_k is a parameter
    lo = codes > 0  # zeta_{k-1} is a parameter
    A[rows[up], p + codes[up]] = 1.0
    B[rows[lo], p + codes[lo] - 1] = 1.0
    g = A.T @ (ww * la) + B.T @ (ww * lb)
    H = (A.T * (ww * laa)) @ A + (B.T * (ww * lbb)) @ B
    C = (A.T * (ww * lab)) @ B
    H = H + C + C.T
    return ll, g, H


def brant_test(X: np.ndarray, codes: np.ndarray, K: int, names: list[str]) -> pd.DataFrame:
    """Brant's (1990) Wald test of equal slopes across the K-1 binary logits Y > k.

    Fits the K-1 binary logistic regressions of ``Y > k`` on X (with an intercept), builds
    the covariance of all their slopes from Brant's formula
    Cov(b_k, b_l) = I_k^-1 X'W_kl X I_l^-1, W_kl = diag(pi_l - pi_k pi_l) (k <= l, pi_k =
    P(Y > k)), and tests b_1 = ... = b_{K-1}: jointly (omnibus, df = p (K-2)) and for each
    column of X (df = K-2).
    """
    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM

    n, p = X.shape
    J = K - 1
    Xi = np.column_stack([np.ones(n), X])
    betas, pis = [], []
    for k in range(J):
        yk = (codes > k).astype(float)
        fit = GLM(yk, Xi, family=families.Binomial()).fit(method="IRLS", tol=1e-12, maxiter=200)
        betas.append(np.asarray(fit.params))
        pis.append(np.asarray(fit.fittedvalues))
    d = p + 1
    V = np.zeros((J * d, J * d))
    for k in range(J):
        wk = pis[k] * (1 - pis[k])
        Ik = np.linalg.inv(Xi.T @ (Xi * wk[:, None]))
        for l in range(k, J):
            wl = pis[l] * (1 - pis[l])
            Il = np.linalg.inv(Xi.T @ (Xi * wl[:, None]))
            wkl = pis[l] - pis[k] * pis[l]
            Vkl = Ik @ (Xi.T @ (Xi * wkl[:, None])) @ Il
            V[k * d:(k + 1) * d, l * d:(l + 1) * d] = Vkl
            V[l * d:(l + 1) * d, k * d:(k + 1) * d] = Vkl.T
    keep = np.concatenate([k * d + 1 + np.arange(p) for k in range(J)])
    bs = np.concatenate([b[1:] for b in betas])
    Vs = V[np.ix_(keep, keep)]
    D = np.zeros(((J - 1) * p, J * p))
    for k in range(J - 1):
        D[k * p:(k + 1) * p, :p] = np.eye(p)
        D[k * p:(k + 1) * p, (k + 1) * p:(k + 2) * p] = -np.eye(p)
    Db = D @ bs
    omni = float(Db @ np.linalg.solve(D @ Vs @ D.T, Db))
    rows = [("omnibus", omni, p * (J - 1))]
    for j in range(p):
        idx = j + p * np.arange(J)
        Dj = np.zeros((J - 1, J))
        Dj[:, 0] = 1.0
        Dj[np.arange(J - 1), np.arange(1, J)] = -1.0
        bj = bs[idx]
        dj = Dj @ bj
        chi = float(dj @ np.linalg.solve(Dj @ Vs[np.ix_(idx, idx)] @ Dj.T, dj))
        rows.append((names[j], chi, J - 1))
    out = pd.DataFrame(rows, columns=["term", "chi2", "df"]).set_index("term")
    out["p_value"] = stats.chi2.sf(out["chi2"], out["df"])
    return out


@dataclass(kw_only=True, eq=False, repr=False)
class OrdinalResult(MarginalMeansMixin, CategoricalModelMixin, ModelResult):
    """A fitted proportional-odds model (the results convention of ``docs/api.md``).

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by term: the coefficients, then the thresholds named ``"low|high"`` as in
        polr. ``coef``, ``se``, ``statistic`` (Wald z), ``p_value``, ``ci_lower``,
        ``ci_upper``, ``ratio`` (odds ratio of a higher category, exp(coef)),
        ``ratio_lower``, ``ratio_upper`` (NaN for thresholds), and ``kind``
        ("coefficient" or "threshold"). Standard errors are from the inverse of the
        analytic observed information in (beta, zeta), which is what
        ``vcov(polr(..., Hess = TRUE))`` approximates.
    levels : list
        The outcome categories, lowest first.
    coef_names, threshold_names : list of str
    params, cov : pandas.Series, pandas.DataFrame
    loglik, aic : float
    n_obs, n_dropped, conf_level, converged, formula
        As every model result.

    Notes
    -----
    ``lsmeans`` and ``contrast`` follow emmeans (``docs/response.md``): ``mode="prob"``
    (default) for the probability of each outcome category averaged over the reference
    grid, ``mode="latent"`` for the linear predictor minus the mean threshold; z-based.

    The summary columns of the previous release (``z``, ``odds_ratio``,
    ``odds_ratio_ci_lower``, ``odds_ratio_ci_upper``) still answer for one release, with a
    DeprecationWarning.
    """

    levels: list
    coef_names: list
    threshold_names: list
    loglik: float
    aic: float
    _mf: ModelFrame = field(repr=False)
    _codes: np.ndarray = field(repr=False)
    _brant: pd.DataFrame | None = field(default=None, repr=False)

    _renamed = {"n": "n_obs"}
    _ratio_label = "odds ratio of a higher category"

    @property
    def _prob_labels(self) -> list:
        return list(self.levels)

    @property
    def _K(self) -> int:
        return len(self.levels)

    @property
    def _X(self) -> np.ndarray:
        return self._mf.X.drop(columns="Intercept").to_numpy(dtype=float)

    # design without intercept (polr's eta has none)
    def _design(self, frame):
        return design_for(self._mf, frame).drop(columns="Intercept").to_numpy(dtype=float)

    def _fix(self, X):
        # accept designs with or without the intercept column
        if X.shape[1] == len(self.coef_names) + 1:
            return X[:, 1:]
        return X

    def _probs(self, theta, X):
        X = self._fix(X)
        p = X.shape[1]
        beta, zeta = theta[:p], theta[p:]
        eta = X @ beta
        cum = stats.logistic.cdf(zeta[None, :] - eta[:, None])
        cum = np.column_stack([np.zeros(len(eta)), cum, np.ones(len(eta))])
        return np.diff(cum, axis=1)

    def _dprobs(self, theta, X, dX):
        X = self._fix(X)
        dX = self._fix(dX)
        p = X.shape[1]
        beta, zeta = theta[:p], theta[p:]
        eta = X @ beta
        F = stats.logistic.cdf(zeta[None, :] - eta[:, None])
        f = F * (1 - F)
        f = np.column_stack([np.zeros(len(eta)), f, np.zeros(len(eta))])
        dP_deta = f[:, :-1] - f[:, 1:]
        return dP_deta * (dX @ beta)[:, None]

    # ------------------------------------------------------------------ marginal means
    def _marginal_blocks(self, mode: str) -> list[tuple[dict, MarginalInputs]]:
        theta, V = self._theta, self._cov
        p = len(self.coef_names)
        columns = list(self._mf.X.columns)
        intercept = columns.index("Intercept")
        if mode == "latent":
            # the coefficients of the model frame's columns: x'beta - mean(zeta) (emmeans' latent mode)
            A = np.zeros((len(columns), theta.size))
            A[intercept, p:] = -1.0 / (theta.size - p)
            others = [i for i in range(len(columns)) if i != intercept]
            A[others, np.arange(p)] = 1.0
            return [({}, MarginalInputs(self._mf, A @ theta, A @ V @ A.T, z_df, self.conf_level))]
        return [({"category": level},
                 MarginalInputs(self._mf, theta, V, z_df, self.conf_level,
                                grid_mean=ordinal_category_mean(k, theta, p, intercept)))
                for k, level in enumerate(self.levels)]

    def _marginal_extra_levels(self) -> dict:
        return {"category": list(self.levels)}

    def lsmeans(self, spec, by=None, *, weights: str = "equal", mode: str = "prob") -> pd.DataFrame:
        """Least-squares means of the levels of ``spec`` (within each level of ``by``), as
        emmeans for polr.

        Parameters
        ----------
        spec, by, weights
            As for every model (``docs/api.md``): equal weights over the other factors'
            levels, numeric covariates at their means; or ``weights="proportional"``.
        mode : {"prob", "latent"}, default "prob"
            ``"prob"``: for every outcome category, its probability averaged over the
            reference grid on the probability scale (emmeans' ``mode = "prob"``), se by the
            delta method, interval estimate +/- z se. ``"latent"``: x'beta minus the mean
            of the thresholds, averaged (emmeans' ``mode = "latent"``).

        Returns
        -------
        pandas.DataFrame
            The factor columns, ``category`` (mode "prob"; outer: one block per category),
            ``estimate, se, df`` (``inf``), ``ci_lower, ci_upper``.

        Examples
        --------
        >>> import pandas as pd
        >>> from analysis.response import ordinal
        >>> cat = pd.Categorical(["non-responder", "partial", "responder", "responder", "partial",
        ...                       "non-responder", "responder", "partial", "responder", "non-responder"],
        ...                      categories=["non-responder", "partial", "responder"], ordered=True)
        >>> arm = ["placebo", "ketamine", "ketamine", "placebo", "ketamine", "placebo", "ketamine", "placebo",
        ...        "placebo", "ketamine"]
        >>> df = pd.DataFrame({"category": cat, "arm": arm, "failures": [4, 2, 0, 1, 3, 5, 1, 2, 3, 2]})
        >>> po = ordinal("category ~ arm + failures", df)
        >>> po.lsmeans("arm").round(3)[["arm", "category", "estimate", "se"]]
                arm       category  estimate     se
        0  ketamine  non-responder     0.294  0.228
        1   placebo  non-responder     0.100  0.137
        2  ketamine        partial     0.517  0.225
        3   placebo        partial     0.435  0.245
        4  ketamine      responder     0.189  0.192
        5   placebo      responder     0.464  0.300
        >>> po.contrast("arm", mode="latent").round(3)[["contrast", "estimate", "se"]]  # the log odds ratio
                     contrast  estimate     se
        0  placebo - ketamine     1.316  1.661
        """
        check_choice("mode", mode, ORDINAL_MODES)
        return self._marginal(lsmeans_table, mode, weights, spec, by)

    def contrast(self, spec, by=None, *, method: str = "trt.vs.ctrl", reference=None, adjust: str = "none",
                 weights: str = "equal", mode: str = "prob") -> pd.DataFrame:
        """Differences of least-squares means (see :meth:`lsmeans`): of category
        probabilities within each ``category`` (mode "prob"), or of the latent means (log
        odds ratios of a higher category). ``method``, ``reference`` and ``adjust`` as for
        every model; the adjustment applies within each ``by`` group and category.

        Returns
        -------
        pandas.DataFrame
            The ``by`` columns, ``category`` (mode "prob"), ``contrast``, ``estimate, se, df,
            statistic, p_value, ci_lower, ci_upper``.
        """
        check_choice("mode", mode, ORDINAL_MODES)
        check_choice("adjust", adjust, ADJUSTMENTS)
        return self._marginal(contrast_table, mode, weights, spec, by, method=method, reference=reference,
                              adjust=adjust)

    def predict(self, profiles: pd.DataFrame) -> pd.DataFrame:
        """Predicted probability of each category for each covariate profile.

        Returns
        -------
        pandas.DataFrame
            One row per profile and category (long format): the profile's columns,
            ``category``, ``probability``, ``se`` (delta method), ``ci_lower``,
            ``ci_upper`` (Wald on the logit of the probability, transformed back).
            ``probability`` equals R's ``predict(polr, type = "probs")``.
        """
        out = self._predict_probs(profiles)
        prof = profiles.reset_index(drop=True).iloc[out["profile"].to_numpy()].reset_index(drop=True)
        return pd.concat([prof, out.drop(columns="profile")], axis=1)

    def brant(self) -> pd.DataFrame:
        """Brant's test of the proportional-odds assumption, omnibus and per term.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``omnibus`` and each coefficient: ``chi2``, ``df``, ``p_value``.
            A small p-value says the term's effect differs between cut-points.
        """
        if self._brant is None:
            self._brant = brant_test(self._X, self._codes, self._K, self.coef_names)
        return self._brant

    proportional_odds_test = brant

    def compare_multinomial(self) -> pd.DataFrame:
        """Fit the multinomial (baseline-category) model with the same formula and data
        and compare log-likelihoods and AIC.

        The two models are not nested in general (with numeric predictors the multinomial
        model does not contain the proportional-odds one), so this is a descriptive check
        (lower AIC fits better for its number of parameters); the likelihood-ratio
        statistic is reported with a chi-squared p-value that is exact only for designs of
        categorical predictors with all their interactions. Use :meth:`brant` for the test.
        """
        mn = fit_mnlogit(self._mf.X.to_numpy(dtype=float), self._codes, self.formula)
        if not mn.converged:
            warn_not_converged(f"the multinomial model of {self.formula!r}")
        n_mn = len(mn.theta)
        aic_mn = -2.0 * mn.loglik + 2.0 * n_mn
        lr = 2.0 * (mn.loglik - self.loglik)
        df = n_mn - len(self.params)
        return pd.DataFrame(
            {
                "loglik": [self.loglik, mn.loglik],
                "n_params": [len(self.params), n_mn],
                "aic": [self.aic, aic_mn],
                "lr_statistic": [np.nan, lr],
                "df": [np.nan, df],
                "p_value_approx": [np.nan, float(stats.chi2.sf(lr, df))],
            },
            index=pd.Index(["proportional_odds", "multinomial"], name="model"),
        )

    def plot(self, ax=None):
        """Forest plot of the odds ratios of a higher category with their intervals (log
        scale); the thresholds are left out.

        Returns
        -------
        matplotlib.axes.Axes
        """
        return super().plot(ax)

    def __repr__(self) -> str:
        return (f"OrdinalResult({self.formula!r}, n_obs={self.n_obs}, levels={self.levels})\n"
                f"{pd.DataFrame(self.summary).drop(columns='kind').round(4).to_string()}")


def _newton(theta: np.ndarray, X: np.ndarray, codes: np.ndarray, K: int):
    """Newton's method with step halving in polr's parameters (beta, zeta), on the analytic
    gradient and Hessian, keeping the thresholds increasing; stops when the largest score
    is below 1e-8. Returns theta, loglik, gradient, Hessian and whether it converged."""
    p = X.shape[1]
    ll, g, H = loglik_grad_hess(theta, X, codes, K)
    for _ in range(100):
        if not np.all(np.isfinite(g)):
            return theta, ll, g, H, False
        if np.max(np.abs(g)) < 1e-8:
            return theta, ll, g, H, True
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            return theta, ll, g, H, False
        t = 1.0
        while t > 1e-10:
            cand = theta - t * step
            if np.all(np.diff(cand[p:]) > 0):
                ll_c, g_c, H_c = loglik_grad_hess(cand, X, codes, K)
                if np.isfinite(ll_c) and ll_c >= ll - 1e-12:
                    theta, ll, g, H = cand, ll_c, g_c, H_c
                    break
            t /= 2.0
        else:
            return theta, ll, g, H, False
    return theta, ll, g, H, bool(np.max(np.abs(g)) < 1e-8)


def ordinal(formula: str, data: pd.DataFrame, *, conf_level: float = 0.95, dropna: bool = False) -> OrdinalResult:
    """Proportional-odds logistic regression, as R's ``MASS::polr(method = "logistic")``.

    logit P(Y <= k) = zeta_k - x'beta, k = 1..K-1: one set of coefficients for all cuts
    (the proportional-odds assumption, testable with :meth:`OrdinalResult.brant`).

    Parameters
    ----------
    formula : str
        ``"category ~ predictors"``. The outcome is an ordered pandas Categorical (its
        category order, lowest first: ``courses.category`` is non-responder < partial <
        responder) or numbers (sorted). An intercept in the formula is absorbed into the
        thresholds, as in polr.
    data : pandas.DataFrame
    conf_level : float, default 0.95
    dropna : bool, default False
        As in :func:`analysis.response.logistic`.

    Returns
    -------
    OrdinalResult

    Notes
    -----
    The fit is Newton's method on the analytic gradient and Hessian in polr's parameters
    (beta, zeta), started from the marginal cumulative logits, until the largest score is
    below 1e-8 (the log likelihood is concave, Pratt 1981); if that fails, statsmodels'
    ``OrderedModel(distr="logit")`` (BFGS) gives the start and Newton polishes it. The
    covariance is the inverse of the analytic observed information. R's polr optimises over (beta, zeta_1, log increments) with BFGS and
    differentiates its gradient numerically (``optim(hessian = TRUE)``), then maps the
    inverse to zeta by the delta method; at the maximum both are the same matrix, up to
    polr's numerical differences (about 1e-7 relative on housing).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.response import ordinal
    >>> cat = pd.Categorical(["non-responder", "partial", "responder", "responder", "partial",
    ...                       "non-responder", "responder", "partial", "responder", "non-responder"],
    ...                      categories=["non-responder", "partial", "responder"], ordered=True)
    >>> df = pd.DataFrame({"category": cat, "failures": [4, 2, 0, 1, 3, 5, 1, 2, 3, 2]})
    >>> fit = ordinal("category ~ failures", df)
    >>> fit.summary["coef"].round(3).tolist()
    [-1.546, -4.891, -2.768]
    """
    conf_level = check_conf_level(conf_level)
    mf = model_frame(formula, data, env=capture_env(1), dropna=dropna)
    codes, levels = ordered_outcome(mf.y, mf.lhs)
    K = len(levels)
    if K < 3:
        raise ValueError(f"the outcome {mf.lhs!r} has {K} level(s) ({levels}); an ordinal model needs at least 3 (use logistic for 2)")
    if "Intercept" not in mf.X.columns:
        raise ValueError(f"{formula!r}: keep the intercept in the formula (it is absorbed into the thresholds, as in polr)")
    X = mf.X.drop(columns="Intercept").to_numpy(dtype=float)
    if X.shape[1] and np.linalg.matrix_rank(np.column_stack([np.ones(len(X)), X])) < X.shape[1] + 1:
        raise ValueError(f"the design matrix of {formula!r} is rank deficient: a predictor is constant or a combination of others")
    p = X.shape[1]
    # Newton from the marginal cumulative logits: the log likelihood is concave in (beta, zeta)
    # (Pratt 1981), so this reaches the maximum in a few steps even on 100,000 rows
    cum = np.cumsum(np.bincount(codes, minlength=K))[:-1] / len(codes)
    theta, ll, g, H, converged = _newton(np.concatenate([np.zeros(p), np.log(cum / (1 - cum))]), X, codes, K)
    if not converged:
        # fall back to statsmodels' OrderedModel (BFGS; thresholds as c1 and log increments), then polish
        om = OrderedModel(codes, X if p else np.zeros((len(codes), 0)), distr="logit")
        with warnings.catch_warnings():
            # BFGS rarely meets gtol=1e-10; the Newton steps below finish the job
            warnings.simplefilter("ignore", category=_StatsmodelsConvergenceWarning)
            res = om.fit(method="bfgs", disp=False, maxiter=2000, gtol=1e-10)
        sp = np.asarray(res.params, dtype=float)
        zeta = np.cumsum(np.concatenate([[sp[p]], np.exp(sp[p + 1:])]))
        theta, ll, g, H, converged = _newton(np.concatenate([sp[:p], zeta]), X, codes, K)
    if not converged and np.max(np.abs(g)) < 1e-6:
        converged = True
    if not converged:
        warn_not_converged(f"ordinal({formula!r})", f"largest score {np.max(np.abs(g)):.2g}")
    cov = np.linalg.inv(-H)
    coef_names = [c for c in mf.X.columns if c != "Intercept"]
    threshold_names = [f"{levels[k]}|{levels[k + 1]}" for k in range(K - 1)]
    names = coef_names + threshold_names
    tab = coef_table(names, theta, np.sqrt(np.diag(cov)), conf_level, ratio=True)
    thr = tab.index.isin(threshold_names)
    tab.loc[thr, ["ratio", "ratio_lower", "ratio_upper"]] = np.nan
    tab["kind"] = np.where(thr, "threshold", "coefficient")
    return OrdinalResult(
        summary=with_aliases(tab, ODDS_RATIO_ALIASES), cov=pd.DataFrame(cov, index=names, columns=names),
        n_obs=mf.n, n_dropped=mf.n_dropped, conf_level=conf_level, converged=converged, formula=mf.formula,
        levels=list(levels), coef_names=coef_names, threshold_names=threshold_names, loglik=float(ll),
        aic=-2.0 * float(ll) + 2.0 * len(names), _mf=mf, _codes=codes,
    )
