"""Mixed model for repeated measures (MMRM): a linear model of a score over ordered visits
with a structured within-subject covariance, fitted by REML or ML with subjects' missing
visits kept (likelihood-based, missing at random), as SAS PROC MIXED with a ``REPEATED``
statement, R's ``nlme::gls`` with a correlation and variance structure, or R's ``mmrm``.

Table handling is here; the likelihood is in ``_mmrm_fit``, the covariance structures in
``_mmrm_covariance``, the degrees of freedom in ``_mmrm_df`` and the least-squares means in
``analysis._kernel.marginal``. Conventions and what is checked against what:
``docs/mmrm.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._kernel import (
    ModelFrame, ModelResult, capture_env, check_choice, check_conf_level, coef_table, get_ax, model_frame,
)
from .._kernel.marginal import (
    ADJUSTMENTS, MarginalInputs, contrast_table, grid_factors, lsmeans_table, type3_hypotheses,
)
from ..problems import DataValidationError, ValidationReport
from ._base import warn_not_converged
from ._mmrm_covariance import COVARIANCE_STRUCTURES, structure
from ._mmrm_df import DF_METHODS, DFMethod, f_test, kr_adjusted_cov
from ._mmrm_fit import MMRMData, MMRMEngine

__all__ = ["MMRMResult", "mmrm"]


@dataclass(kw_only=True, eq=False, repr=False)
class MMRMResult(ModelResult):
    """A fitted MMRM (the results convention of ``docs/api.md``).

    Attributes
    ----------
    summary : pandas.DataFrame
        By term: ``coef, se, df, statistic`` (t), ``p_value, ci_lower, ci_upper`` (no
        ``df`` column for ``df="asymptotic"``: z tests). ``se`` is from ``cov``.
    cov : pandas.DataFrame
        Covariance of the coefficients the inference uses: (X' V^-1 X)^-1 at the estimate
        (also for ML: no N / (N - p) rescaling, unlike nlme's ``vcov``), or Kenward-Roger's
        adjusted covariance for ``df="kenward-roger"`` (``cov_unadjusted`` keeps the other).
    covariance, correlation : pandas.DataFrame
        The estimated within-subject covariance and correlation, visit x visit.
    covariance_parameters : pandas.Series
        The structure's parameters (SAS's names and parameterisation, ``docs/mmrm.md``).
    loglik : float
        REML log-likelihood (``reml=True``; nlme's and SAS's constant) or log-likelihood.
    aic, bic : float
        -2 loglik + 2 k and -2 loglik + k log(n_subjects), k the covariance parameters
        (plus the coefficients for ML), as SAS PROC MIXED and R's mmrm.
    df_method : str
    n_obs, n_subjects, n_dropped : int
    visits : list
        The visit levels in order.
    """

    subject: str
    visit: str
    structure: str
    reml: bool
    df_method: str
    visits: list
    covariance: pd.DataFrame
    correlation: pd.DataFrame
    covariance_parameters: pd.Series
    cov_unadjusted: pd.DataFrame
    loglik: float
    aic: float
    bic: float
    n_subjects: int
    outcome: str | None = None
    _mf: ModelFrame = field(repr=False)
    _df: DFMethod = field(repr=False)

    # ------------------------------------------------------------------ marginal means
    def _inputs(self) -> MarginalInputs:
        return MarginalInputs(self._mf, self.params.to_numpy(), self.cov.to_numpy(), self._df.df, self.conf_level)

    def lsmeans(self, spec, by=None, *, weights: str = "equal") -> pd.DataFrame:
        """Least-squares means of the levels of ``spec`` (within each level of ``by``).

        Equal weights over the other factors' levels and numeric covariates at their means
        (emmeans' default), or ``weights="proportional"`` (see
        :mod:`analysis._kernel.marginal`); se from ``cov``, df by the fit's ``df_method``.

        Returns
        -------
        pandas.DataFrame
            Columns named after the factors, then ``estimate, se, df, ci_lower, ci_upper``.
        """
        return lsmeans_table(self._inputs(), spec, by, weights=weights)

    def contrast(self, spec, by=None, *, method: str = "trt.vs.ctrl", reference=None, adjust: str = "none",
                 weights: str = "equal") -> pd.DataFrame:
        """Differences of least-squares means: each level minus the reference level
        (``method="trt.vs.ctrl"``, the first level unless ``reference``) or all pairs
        (``"pairwise"``), within each level of ``by``, with ``adjust`` one of
        ``"none", "holm", "bonferroni", "dunnett"`` applied within each ``by`` group.

        Returns
        -------
        pandas.DataFrame
            The ``by`` columns, ``contrast`` ("TRT - PBO"), ``estimate, se, df, statistic,
            p_value, ci_lower, ci_upper``.
        """
        check_choice("adjust", adjust, ADJUSTMENTS)
        return contrast_table(self._inputs(), spec, by, method=method, reference=reference, adjust=adjust,
                              weights=weights)

    def anova(self) -> pd.DataFrame:
        """Type III F tests of every term (``docs/mmrm.md``): ``num_df, den_df, statistic``
        (F; Kenward-Roger's scaled F for ``df="kenward-roger"``), ``p_value``."""
        from scipy import stats

        rows = []
        beta = self.params.to_numpy()
        for term, L in type3_hypotheses(self._mf).items():
            q, F, ddf = f_test(L, beta, self._df)
            p = stats.f.sf(F, q, ddf) if np.isfinite(ddf) else stats.chi2.sf(q * F, q)
            rows.append((term, q, ddf, F, p))
        return pd.DataFrame(rows, columns=["term", "num_df", "den_df", "statistic", "p_value"]).set_index("term")

    def plot(self, ax=None, *, spec: str | None = None):
        """Least-squares means by visit with their intervals, one line per level of ``spec``
        (default: the first factor of the formula other than the visit); returns the axes."""
        factors, _ = grid_factors(self._mf)
        if self.visit not in factors:
            raise ValueError(f"plot: the visit column {self.visit!r} is not a factor of the formula "
                             f"{self.formula!r} (write e.g. 'arm * C({self.visit})')")
        if spec is None:
            others = [f for f in factors if f != self.visit]
            if not others:
                raise ValueError("plot: the formula has no factor besides the visit; pass spec=")
            spec = others[0]
        tab = self.lsmeans(spec, by=self.visit)
        ax = get_ax(ax)
        x = np.arange(len(factors[self.visit]))
        levels = factors[spec]
        width = 0.08 * (len(levels) - 1)
        for i, level in enumerate(levels):
            t = tab[tab[spec].astype(object) == level]
            xi = x + (i - (len(levels) - 1) / 2) * (width / max(1, len(levels) - 1))
            est = t["estimate"].to_numpy()
            ax.errorbar(xi, est, yerr=[est - t["ci_lower"].to_numpy(), t["ci_upper"].to_numpy() - est], marker="o",
                        capsize=3, label=str(level))
        ax.set_xticks(x)
        ax.set_xticklabels([str(v) for v in factors[self.visit]])
        ax.set_xlabel(self.visit)
        ax.set_ylabel(f"LS mean of {self.outcome} ({self.conf_level:.0%} CI)")
        ax.legend(title=spec, frameon=False)
        return ax

    def __repr__(self) -> str:
        return (f"MMRMResult({self.formula!r}, covariance={self.structure!r}, reml={self.reml}, df={self.df_method!r}, "
                f"n_obs={self.n_obs}, n_subjects={self.n_subjects})\n{pd.DataFrame(self.summary).round(4).to_string()}")


def _visit_levels(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna().unique())
        return [c for c in values.cat.categories if c in present]
    return sorted(values.dropna().unique().tolist())


def _check_rows(mf: ModelFrame, subject: str, visit: str, levels: list, table: str):
    data = mf.data
    pos = pd.Index(levels).get_indexer(data[visit].astype(object))
    codes, subjects = pd.factorize(data[subject])
    dup = pd.Series(list(zip(codes, pos))).duplicated(keep=False).to_numpy()
    if dup.any():
        report = ValidationReport(table)
        report.add_rows(table, visit, mf.rows[dup], data[visit].to_numpy()[dup],
                        f"more than one row for the same {subject!r} and {visit!r}; an MMRM needs at most one "
                        "score per subject and visit")
        raise DataValidationError(report)
    return codes, pos, len(subjects)


def _check_rank(X: np.ndarray, names: list[str], formula: str):
    r = np.linalg.qr(X, mode="r")
    d = np.abs(np.diag(r))
    bad = [n for n, v in zip(names, d) if v <= 1e-9 * max(1.0, d.max())]
    if bad:
        raise ValueError(f"mmrm({formula!r}): the design matrix is rank-deficient; column(s) {bad} are linear "
                         "combinations of the others (an empty arm-by-visit cell?)")


def _empirical_cov(y, X, codes, pos, T):
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    r = y - X @ beta
    wide = np.full((codes.max() + 1, T), np.nan)
    wide[codes, pos] = r
    S = pd.DataFrame(wide).cov(min_periods=2).to_numpy()
    var = np.nanvar(wide, axis=0)
    var = np.where(np.isfinite(var) & (var > 0), var, np.nanmean(var[var > 0]) if np.any(var > 0) else 1.0)
    S = np.where(np.isfinite(S), S, 0.0)
    S[np.diag_indices(T)] = var
    # shrink towards the diagonal until positive definite
    for lam in (0.0, 0.1, 0.3, 0.6, 1.0):
        cand = (1 - lam) * S + lam * np.diag(var)
        if np.all(np.linalg.eigvalsh(cand) > 1e-8 * var.max()):
            return cand
    return np.diag(var)


def mmrm(
    formula: str,
    data: pd.DataFrame,
    *,
    subject: str,
    visit: str,
    covariance: str = "us",
    reml: bool = True,
    df: str = "satterthwaite",
    conf_level: float = 0.95,
    dropna: bool = False,
    max_iter: int = 1000,
    tol: float = 1e-6,
) -> MMRMResult:
    """Mixed model for repeated measures with a structured covariance over visits.

    Parameters
    ----------
    formula : str
        Fixed effects, ``"change ~ arm * C(visit) + baseline"`` (patsy syntax).
    data : pandas.DataFrame
        Long format: one row per subject and visit (missed visits are simply absent rows).
    subject : str
        Column identifying the subject.
    visit : str
        Column of the visit; its levels (a Categorical's category order, otherwise sorted
        values) index the rows and columns of the covariance.
    covariance : str, default "us"
        ``us`` (unstructured), ``cs``, ``csh``, ``ar1``, ``ar1h``, ``toep``, ``toeph``, ``ad``,
        ``adh`` (``docs/mmrm.md``).
    reml : bool, default True
        Restricted maximum likelihood (SAS's and mmrm's default) or maximum likelihood.
    df : str, default "satterthwaite"
        ``satterthwaite``, ``kenward-roger`` (SAS ``DDFM=KR``, observed information; its
        adjusted covariance becomes ``cov``), ``kenward-roger-expected`` (pbkrtest's expected
        information), ``residual`` (N - p) or ``asymptotic`` (z).
    conf_level : float, default 0.95
    dropna : bool, default False
        The package's missing-value rule (a missing value in a model column is an error
        naming it, unless ``dropna=True``, when the row is dropped and counted).
    max_iter : int, default 1000
    tol : float, default 1e-6
        Convergence: the largest absolute gradient entry of the log-likelihood in the
        optimiser's parameters.

    Returns
    -------
    MMRMResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from analysis.response import mmrm
    >>> rng = np.random.default_rng(3)
    >>> n = 60; pid = np.repeat(np.arange(n), 3); visit = np.tile(["w1", "w2", "w4"], n)
    >>> arm = np.where(pid < n // 2, "PBO", "TRT")
    >>> y = rng.normal(0, 1, n)[pid] + (arm == "TRT") * np.tile([0.5, 1.0, 2.0], n) + rng.normal(0, 1, 3 * n)
    >>> d = pd.DataFrame({"pid": pid, "visit": visit, "arm": arm, "y": y})
    >>> fit = mmrm("y ~ arm * visit", d, subject="pid", visit="visit", covariance="cs")
    >>> fit.contrast("arm", by="visit").round(2)[["visit", "contrast", "estimate", "df"]]
      visit   contrast  estimate      df
    0    w1  TRT - PBO      0.05  107.36
    1    w2  TRT - PBO      0.62  107.36
    2    w4  TRT - PBO      2.32  107.36
    """
    conf_level = check_conf_level(conf_level)
    check_choice("covariance", covariance, COVARIANCE_STRUCTURES)
    check_choice("df", df, DF_METHODS)
    if df.startswith("kenward-roger") and not reml:
        raise ValueError(f"mmrm(df={df!r}): Kenward-Roger is defined for REML fits; pass reml=True")
    env = capture_env(1)
    mf = model_frame(formula, data, env=env, dropna=dropna, extra={"subject": subject, "visit": visit})
    levels = _visit_levels(mf.data[visit])
    codes, pos, n_subjects = _check_rows(mf, subject, visit, levels, "data")
    y = mf.y.to_numpy(dtype=float)
    X = mf.X.to_numpy(dtype=float)
    names = list(mf.X.columns)
    _check_rank(X, names, formula)
    T = len(levels)
    cs = structure(covariance, levels)
    engine = MMRMEngine(MMRMData.build(y, X, codes, pos), cs, reml=reml)
    phi0 = cs.start(_empirical_cov(y, X, codes, pos, T))
    phi, converged, _, message = engine.fit(phi0, max_iter=max_iter, tol=tol)
    if not converged:
        warn_not_converged(f"mmrm({formula!r}, covariance={covariance!r})", message)
    theta = cs.theta_of(phi)
    ev = engine.evaluate(theta)
    Phi = ev.Ainv
    p = X.shape[1]
    P = W = None
    cov = Phi
    if df == "satterthwaite":
        P = engine.p_matrices(theta, ev)
        W = np.linalg.inv(-engine.hessian_theta(theta))
    elif df.startswith("kenward-roger"):
        P, Q, R, trVV = engine.kr_matrices(theta, ev)
        if df == "kenward-roger":
            W = np.linalg.inv(-engine.hessian_theta(theta))
        else:
            PhiP = np.einsum("pq,kqr->kpr", Phi, P)
            info = 0.5 * (trVV - 2.0 * np.einsum("pq,klqp->kl", Phi, Q) + np.einsum("kpq,lqp->kl", PhiP, PhiP))
            W = np.linalg.inv(info)
        cov = kr_adjusted_cov(Phi, P, Q, R, W)
    method = DFMethod(name=df, Phi=Phi, cov=cov, P=P, W=W, residual_df=float(mf.n - p))
    se = np.sqrt(np.diag(cov))
    if df == "asymptotic":
        summary = coef_table(names, ev.beta, se, conf_level)
    else:
        summary = coef_table(names, ev.beta, se, conf_level, df=method.df(np.eye(p)))
    Sigma = cs.sigma(theta)
    sd = np.sqrt(np.diag(Sigma))
    labels = pd.Index(levels, name=visit)
    k = cs.n_params + (0 if reml else p)
    return MMRMResult(
        summary=summary, cov=pd.DataFrame(cov, index=names, columns=names), n_obs=mf.n, n_dropped=mf.n_dropped,
        conf_level=conf_level, converged=converged, formula=mf.formula, subject=subject, visit=visit,
        structure=covariance, reml=reml, df_method=df, visits=list(levels),
        covariance=pd.DataFrame(Sigma, index=labels, columns=labels.copy()),
        correlation=pd.DataFrame(Sigma / np.outer(sd, sd), index=labels, columns=labels.copy()),
        covariance_parameters=pd.Series(theta, index=pd.Index(cs.param_names, name="parameter"), name="estimate"),
        cov_unadjusted=pd.DataFrame(Phi, index=names, columns=names),
        loglik=ev.loglik, aic=-2.0 * ev.loglik + 2.0 * k, bic=-2.0 * ev.loglik + np.log(n_subjects) * k,
        n_subjects=n_subjects, outcome=mf.lhs, _mf=mf, _df=method,
    )
