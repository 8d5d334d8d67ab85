"""Cox proportional-hazards regression, agreeing with R's ``survival::coxph``.

Efron and Breslow ties, strata, case weights, delayed entry / counting-process data
``(entry, duration]`` and cluster-robust (grouped dfbeta sandwich) variance, in any
combination; tests, proportional-hazards test (``cox.zph``), predicted survival curves
(``survfit.coxph``) and baseline hazard (``basehaz``). See ``docs/cox.md`` for the
formulas, conventions and their sources; the numerics are in ``_cox_engine.py``. The
formula is read by the kernel's ``model_frame`` and the result follows the package's
results convention (``docs/api.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from .._kernel import (
    ConvergenceWarning, ModelResult, capture_env, check_choice, check_conf_level, coef_table, coefficient_plot,
    deprecated_name, design_for, get_ax, renamed_arguments, with_aliases, z_value,
)
from .._kernel.formula import ModelFrame
from ._common import Grouping, slim_frame, survival_frame, survival_values, warn_caller
from ._confint import CONF_TYPES, survival_confint
from ._cox_engine import (
    EPS,
    ITER_MAX,
    TOLER_CHOL,
    TOLER_INF,
    RiskSets,
    Problem,
    cluster_score_sums,
    newton_raphson,
    schoenfeld,
    score_residuals,
    survfit_curves,
    wald_test,
)

__all__ = ["CoxResult", "CoxConvergenceWarning", "cox"]

TIES = ("efron", "breslow")

#: the name of the previous release: now the package's one warning class
CoxConvergenceWarning = ConvergenceWarning

#: summary columns of the previous release -> their names now
SUMMARY_ALIASES = {"hr": "ratio", "hr_lower": "ratio_lower", "hr_upper": "ratio_upper", "z": "statistic"}
#: with a robust variance the old ``robust_se`` is the new ``se`` (the old ``se`` is ``naive_se``)
ROBUST_SUMMARY_ALIASES = {**SUMMARY_ALIASES, "robust_se": "se"}

# ----------------------------------------------------------------------------------------
# result
# ----------------------------------------------------------------------------------------
@dataclass(kw_only=True, eq=False, repr=False)
class CoxResult(ModelResult):
    """A fitted Cox proportional-hazards model (the results convention of ``docs/api.md``).

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per model column (patsy's names), as R's ``summary(coxph)``: ``coef`` (log
        hazard ratio), ``se``, ``statistic`` (coef / se, a z statistic), ``p_value``,
        ``ci_lower``, ``ci_upper`` (of coef), ``ratio`` = exp(coef) (the hazard ratio),
        ``ratio_lower``, ``ratio_upper``; with a robust variance also ``naive_se`` (the
        model-based standard error). ``se`` is the standard error the statistic and the
        intervals use: the robust one when there is one (as R's ``summary(coxph)``), the
        model-based one otherwise. A column found redundant (collinear) has NaN, as R's NA.
    params : pandas.Series
        ``summary["coef"]``.
    cov, naive_cov : pandas.DataFrame
        The variance matrix used (robust when ``robust``) and the model-based one.
    loglik : pandas.Series
        Log partial likelihood at 0 (``null``) and at the estimate (``model``).
    tests : pandas.DataFrame
        ``statistic, df, p_value`` of the ``likelihood_ratio``, ``wald`` and ``score``
        (log-rank) tests that all coefficients are 0, plus ``robust_score`` with a robust
        variance. The Wald test uses the robust variance when there is one (as R).
    means : pandas.Series
        R's ``fit$means``: the weighted column means (right-censored data) or the
        unweighted column means (with ``entry``); the reference of ``baseline_hazard()``.
    n_obs, n_events, n_dropped, n_clusters : int
        Rows used, events among them, rows dropped for missing values (``dropna=True``;
        per column in ``dropped_by_column``) and clusters of the robust variance (0
        without).
    iterations, converged : int, bool
        Newton-Raphson iterations and whether the log likelihood converged.
    conf_level, formula, model : float, str, str
        ``model`` is ``"cox"`` or the recurrent-interval helper that fitted it.
    ties, robust, strata_levels, terms, columns
        Settings used; ``terms`` maps each formula term to the positions of its model
        columns, ``columns`` lists the model columns.

    The names of the previous release (attributes in ``_renamed`` and ``hazard_ratios``;
    summary columns in ``SUMMARY_ALIASES`` and, for a robust fit, ``ROBUST_SUMMARY_ALIASES``)
    still work for one release, with a ``DeprecationWarning``; see ``docs/cox.md``.
    """

    loglik: pd.Series
    tests: pd.DataFrame
    naive_cov: pd.DataFrame
    means: pd.Series
    columns: list[str] = field(default_factory=list)
    terms: dict[str, list[int]] = field(default_factory=dict)
    model: str = "cox"
    n_events: int = 0
    dropped_by_column: dict[str, int] = field(default_factory=dict)
    n_clusters: int = 0
    iterations: int = 0
    ties: str = "efron"
    robust: bool = False
    strata_columns: list[str] = field(default_factory=list)
    strata_levels: list = field(default_factory=list)
    cluster_column: str | None = None
    weights_column: str | None = None
    entry_column: str | None = None
    duration_column: str | None = None
    event_column: str | None = None
    # what predictions, residuals and the proportional-hazards test need
    _frame: ModelFrame | None = None
    _problem: Any = None
    _beta_work: np.ndarray | None = None
    _scale: np.ndarray | None = None
    _center: np.ndarray | None = None
    _data: dict = field(default_factory=dict)
    _curve_cache: Any = None
    _concordance: pd.Series | None = None

    _renamed: ClassVar[dict[str, str]] = {"n": "n_obs", "vcov": "cov", "naive_vcov": "naive_cov", "coef": "params"}
    _ratio_label: ClassVar[str] = "hazard ratio"

    # -- basic tables ----------------------------------------------------------------------
    @property
    def hazard_ratios(self) -> pd.Series:
        """Deprecated: ``summary["ratio"]``."""
        deprecated_name("hazard_ratios", 'summary["ratio"]', where="CoxResult")
        return self.summary["ratio"]

    @property
    def concordance(self) -> pd.Series:
        """Harrell's concordance as R's ``fit$concordance``: the weighted counts of
        ``concordant``, ``discordant``, ``tied_x``, ``tied_y``, ``tied_xy`` pairs and
        ``concordance = (concordant + tied_x / 2) / (concordant + discordant + tied_x)``
        (computed on first use; R's standard error is not computed)."""
        if self._concordance is None:
            from ._cox_concordance import concordance_counts

            d = self._data
            lp = self._linear_predictor_rows()
            self._concordance = pd.Series(concordance_counts(d["stop"], d["event"], d["entry"], d["strata"], d["w"], lp))
        return self._concordance

    # -- internals ---------------------------------------------------------------------
    def _beta_filled(self) -> np.ndarray:
        return np.nan_to_num(self.summary["coef"].to_numpy(), nan=0.0)

    def _linear_predictor_rows(self) -> np.ndarray:
        """R's ``fit$linear.predictors``: X beta - sum(means * beta)."""
        b = self._beta_filled()
        if b.size == 0:
            return np.zeros(self.n_obs)
        return self._data["Xc"] @ b + float(np.dot(self._center - self.means.to_numpy(), b))

    # -- prediction ----------------------------------------------------------------------
    def _profile_design(self, profiles) -> tuple[np.ndarray, pd.Index, pd.DataFrame]:
        if isinstance(profiles, Mapping):
            if any(pd.api.types.is_list_like(v) for v in profiles.values()):
                profiles = pd.DataFrame(dict(profiles))
            else:
                profiles = pd.DataFrame([dict(profiles)])
        if not isinstance(profiles, pd.DataFrame):
            raise TypeError("profiles must be a DataFrame (one row per covariate profile) or a dict of values")
        if len(profiles) == 0:
            raise ValueError("profiles has no rows")
        X2 = np.ascontiguousarray(design_for(self._frame, profiles).to_numpy(dtype=float))
        return X2, profiles.index, profiles

    def predict(self, data: pd.DataFrame, *, type: str = "lp") -> pd.Series:
        """Linear predictor (``type="lp"``) or relative risk exp(lp) (``"risk"``) for new rows.

        As R's ``predict(fit, newdata, type=)``: centred at ``means`` (lp = 0 for a row
        equal to the means).
        """
        check_choice("type", type, ("lp", "risk"))
        X2, index, _ = self._profile_design(data)
        lp = (X2 - self.means.to_numpy()) @ self._beta_filled() if X2.shape[1] else np.zeros(len(index))
        return pd.Series(lp if type == "lp" else np.exp(lp), index=index, name=type)

    def _curves(self):
        if self._curve_cache is None:
            d = self._data
            b = self._beta_filled()
            eta = d["Xc"] @ b if b.size else np.zeros(self.n_obs)
            self._curve_cache = survfit_curves(d["Xc"], d["w"], eta, d["stop"], d["event"], d["entry"], d["strata"],
                                               max(len(self.strata_levels), 1), self.ties == "efron")
        return self._curve_cache

    def predict_survival(
        self,
        profiles,
        *,
        times: Sequence[float] | None = None,
        conf_type: str = "log-log",
        conf_level: float | None = None,
    ) -> pd.DataFrame:
        """Survival curves for covariate profiles, as R's ``survfit(fit, newdata=profiles)``.

        The baseline cumulative hazard is the Breslow estimator with ``ties="breslow"`` and
        its Efron analogue with ``ties="efron"`` (R's default ``ctype``); S(t) = exp(-H(t))
        (``stype=2``). ``se`` is the standard error of H(t) (= of log S(t)), including the
        uncertainty of the coefficients through ``cov`` (robust when ``robust``), as R's
        ``std.err``.

        Parameters
        ----------
        profiles : DataFrame or dict
            One row per profile with the formula's columns. When it also has the strata
            column(s), each profile gets the curve of its own stratum; otherwise one curve
            per stratum.
        times : sequence of float, optional
            Times at which to read the curves (step function; 1 before the first event).
            Default: every distinct time of the stratum, as R.
        conf_type : {"log-log", "log", "plain", "logit", "arcsin", "none"}, default "log-log"
            Transform of the pointwise interval (the package's default, as ``kaplan_meier``);
            R's ``survfit.coxph`` defaults to ``"log"``.
        conf_level : float, optional
            Defaults to the model's ``conf_level``.

        Returns
        -------
        pandas.DataFrame
            ``profile, stratum, time, n_risk, n_event, n_censor, cumhaz, survival, se,
            ci_lower, ci_upper`` (``stratum`` only with strata).

        Examples
        --------
        >>> import pandas as pd
        >>> from analysis.survival import cox
        >>> df = pd.DataFrame({"days": [5, 8, 12, 20, 6, 15, 30, 41, 9, 25],
        ...                    "relapsed": [1, 1, 1, 0, 1, 0, 1, 0, 1, 1],
        ...                    "rapamycin": [0, 0, 0, 0, 1, 1, 1, 1, 0, 1]})
        >>> fit = cox("rapamycin", df, duration="days", event="relapsed")
        >>> curves = fit.predict_survival({"rapamycin": [0, 1]}, times=[14])
        >>> curves[["profile", "time", "survival"]].round(3)
           profile  time  survival
        0        0  14.0     0.300
        1        1  14.0     0.793
        """
        check_choice("conf_type", conf_type, CONF_TYPES)
        level = self.conf_level if conf_level is None else check_conf_level(conf_level)
        X2, index, prof = self._profile_design(profiles)
        cv = self._curves()
        b = self._beta_filled()
        V = np.nan_to_num(self.cov.to_numpy()) if b.size else np.zeros((0, 0))
        x2c = X2 - self._center if b.size else X2
        lp2 = x2c @ b if b.size else np.zeros(len(index))
        risk2 = np.exp(lp2)
        n_str = max(len(self.strata_levels), 1)
        own = None
        if self.strata_columns and all(c in prof.columns for c in self.strata_columns):
            own = self._stratum_codes_for(prof)
        z = z_value(level)
        gs = np.searchsorted(cv.stratum, np.arange(n_str), side="left")
        ge = np.searchsorted(cv.stratum, np.arange(n_str), side="right")
        before = gs[cv.stratum]  # first group of each group's stratum

        def seg_cumsum(a: np.ndarray) -> np.ndarray:
            c = np.cumsum(a)
            return c - np.concatenate([[0.0], c])[before]

        cum_ev, cum_ce = seg_cumsum(cv.n_event), seg_cumsum(cv.n_censor)
        req = None if times is None else np.sort(np.atleast_1d(np.asarray(times, dtype=float)))
        if req is not None:
            allt = np.unique(np.concatenate([cv.time, req]))
            base = np.int64(allt.size + 1)
            key_g = cv.stratum.astype(np.int64) * base + np.searchsorted(allt, cv.time)
        parts = []
        for i, label in enumerate(index):
            S = np.array([own[i]]) if own is not None else np.arange(n_str)
            if req is None:
                sel = np.flatnonzero(cv.stratum == S[0]) if S.size == 1 else np.arange(cv.time.size)
                ok = np.ones(sel.size, dtype=bool)
                frame = {"profile": label, "stratum": cv.stratum[sel], "time": cv.time[sel],
                         "n_risk": cv.n_risk[sel], "n_event": cv.n_event[sel], "n_censor": cv.n_censor[sel]}
            else:
                qs = np.repeat(S, req.size)
                key_q = qs.astype(np.int64) * base + np.searchsorted(allt, np.tile(req, S.size))
                k = np.searchsorted(key_g, key_q, side="right") - 1
                ok = k >= gs[qs]
                sel = np.where(ok, k, 0)
                nxt = np.searchsorted(key_g, key_q, side="left")
                n_risk = np.where(nxt < ge[qs], cv.n_risk[np.minimum(nxt, cv.time.size - 1)], 0.0)
                ev_to = np.where(ok, cum_ev[sel], 0.0).reshape(S.size, req.size)
                ce_to = np.where(ok, cum_ce[sel], 0.0).reshape(S.size, req.size)
                frame = {"profile": label, "stratum": qs, "time": np.tile(req, S.size), "n_risk": n_risk,
                         "n_event": np.diff(ev_to, axis=1, prepend=0.0).reshape(-1),
                         "n_censor": np.diff(ce_to, axis=1, prepend=0.0).reshape(-1)}
            H = cv.cumhaz[sel]
            if b.size:
                dt = H[:, None] * x2c[i][None, :] - cv.xbar[sel]
                var = (cv.cumvar[sel] + np.einsum("ij,jk,ik->i", dt, V, dt)) * risk2[i] ** 2
            else:
                var = cv.cumvar[sel]
            frame["cumhaz"] = np.where(ok, H * risk2[i], 0.0)
            frame["se"] = np.where(ok, np.sqrt(var), 0.0)
            parts.append(pd.DataFrame(frame))
        out = pd.concat(parts, ignore_index=True)
        if self.strata_columns:
            levels = np.empty(len(self.strata_levels), dtype=object)
            levels[:] = self.strata_levels
            out["stratum"] = levels[out["stratum"].to_numpy()]
        out["survival"] = np.exp(-out["cumhaz"])
        lo, hi = survival_confint(out["survival"].to_numpy(), out["se"].to_numpy(), conf_type, z)
        out["ci_lower"], out["ci_upper"] = lo, hi
        cols = ["profile"] + (["stratum"] if self.strata_columns else []) + [
            "time", "n_risk", "n_event", "n_censor", "cumhaz", "survival", "se", "ci_lower", "ci_upper"]
        return out[cols]

    def _stratum_codes_for(self, prof: pd.DataFrame) -> np.ndarray:
        labels = _strata_labels(prof, self.strata_columns)
        lookup = {lv: i for i, lv in enumerate(self.strata_levels)}
        missing = [lv for lv in labels if lv not in lookup]
        if missing:
            raise ValueError(f"profiles have strata not in the model: {missing[:5]}; the strata are {self.strata_levels}")
        return np.array([lookup[lv] for lv in labels])

    def baseline_hazard(self, *, centered: bool = True) -> pd.DataFrame:
        """Cumulative baseline hazard, as R's ``basehaz(fit, centered=)``.

        ``centered=True`` (R's default): the cumulative hazard of a subject whose
        covariates equal ``means``; ``centered=False``: of a subject with all model
        columns 0. One row per distinct time (per stratum): ``[stratum,] time, cumhaz``.
        """
        cv = self._curves()
        b = self._beta_filled()
        ref = self.means.to_numpy() if centered else np.zeros(b.size)
        risk = np.exp((ref - self._center) @ b) if b.size else 1.0
        out = pd.DataFrame({"time": cv.time, "cumhaz": cv.cumhaz * risk})
        if self.strata_columns:
            out.insert(0, "stratum", [self.strata_levels[s] for s in cv.stratum])
        return out

    # -- residuals -------------------------------------------------------------------------
    def residuals(self, type: str = "dfbeta") -> pd.DataFrame:
        """Residuals as R's ``residuals(fit, type=)`` (one row per row used).

        ``"score"``: score residuals (unweighted, as R); ``"dfbeta"``: approximate change
        in the coefficients when the row is left out, ``w_i U_i V`` (weighted, as R's
        default for dfbeta); ``"schoenfeld"``: one row per event (index: the event rows).
        """
        check_choice("type", type, ("score", "dfbeta", "schoenfeld"))
        scale = self._scale
        if type == "schoenfeld":
            res = schoenfeld(self._problem, self._beta_work) / scale
            return pd.DataFrame(res, index=self._data["index"][self._problem.rs.event_rows], columns=self.columns)
        U = score_residuals(self._problem, self._beta_work) / scale
        if type == "dfbeta":
            U = (self._data["w"][:, None] * U) @ np.nan_to_num(self.naive_cov.to_numpy())
        return pd.DataFrame(U, index=self._data["index"], columns=self.columns)

    # -- proportional hazards ----------------------------------------------------------------
    def ph_test(self, *, transform="km", terms: bool = True):
        """Test of proportional hazards, as R's ``cox.zph(fit, transform=, terms=)``.

        A score test for adding ``x * g(t)`` for each term (``terms=True``: all columns of
        a term together) or each column (``terms=False``), and a ``GLOBAL`` test of all.
        ``transform``: ``"km"`` (default: g(t) = 1 - KM(t-), the left-continuous
        Kaplan-Meier of the pooled data), ``"rank"``, ``"identity"``, ``"log"`` or a
        function of time. Returns a :class:`~analysis.survival.zph.PHTestResult`.
        """
        from .zph import ph_test

        return ph_test(self, transform=transform, terms=terms)

    # -- plot ----------------------------------------------------------------------------
    def plot(self, ax=None, *, columns: Sequence[str] | None = None):
        """Forest plot: hazard ratio and interval per model column on a log scale, line at 1.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on (default: the current axes).
        columns : sequence of str, optional
            The model columns to draw (default: all with a finite estimate).

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = get_ax(ax)
        s = self.summary if columns is None else self.summary.loc[list(columns)]
        kind = "robust " if self.robust else ""
        return coefficient_plot(ax, s, xlabel=f"{self._ratio_label} ({100 * self.conf_level:g}% {kind}interval)")

    def __repr__(self) -> str:
        tests = self.tests.round(4).to_string() if len(self.tests) else ""
        return (
            f"CoxResult(n_obs={self.n_obs}, events={self.n_events}, ties={self.ties!r}, robust={self.robust}, "
            f"strata={len(self.strata_levels) or None}, clusters={self.n_clusters or None}, "
            f"converged={self.converged})\n{pd.DataFrame(self.summary).round(4).to_string()}\n{tests}"
        )


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
def _as_list(value, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        out = list(value)
        if not all(isinstance(v, str) for v in out):
            raise TypeError(f"{name} must be a column name or a list of column names")
        return out
    raise TypeError(f"{name} must be a column name or a list of column names, got {type(value).__name__}")


def _strata_labels(frame: pd.DataFrame, columns: list[str]) -> list:
    if len(columns) == 1:
        vals = frame[columns[0]]
        return [v.item() if isinstance(v, np.generic) else v for v in vals]
    parts = [frame[c].astype(str).to_numpy() for c in columns]
    return [", ".join(f"{c}={v}" for c, v in zip(columns, row)) for row in zip(*parts)]


def _strata_grouping(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, list]:
    if len(columns) == 1:
        g = Grouping.from_series(frame[columns[0]], columns[0])
        return g.codes, g.levels
    codes = [Grouping.from_series(frame[c], c) for c in columns]
    combined = np.zeros(len(frame), dtype=np.int64)
    for g in codes:
        combined = combined * g.n_levels + g.codes
    uniq, inv = np.unique(combined, return_inverse=True)
    levels = []
    for u in uniq:
        rem = int(u)
        vals = []
        for g in reversed(codes):
            vals.append(g.levels[rem % g.n_levels])
            rem //= g.n_levels
        vals.reverse()
        levels.append(", ".join(f"{c}={v}" for c, v in zip(columns, vals)))
    return inv.reshape(-1).astype(np.intp), levels


# ----------------------------------------------------------------------------------------
# the estimator
# ----------------------------------------------------------------------------------------
@renamed_arguments(eps="tol")
def cox(
    formula: str,
    data: pd.DataFrame,
    *,
    duration: str,
    event: str,
    entry: str | None = None,
    strata: str | Sequence[str] | None = None,
    cluster: str | None = None,
    weights: str | None = None,
    ties: str = "efron",
    robust: bool | None = None,
    conf_level: float = 0.95,
    dropna: bool = False,
    max_iter: int = ITER_MAX,
    tol: float = EPS,
    toler_chol: float = TOLER_CHOL,
    table: str = "data",
) -> CoxResult:
    """Fit a Cox proportional-hazards model, as R's ``coxph``.

    Agrees with ``coxph(Surv([entry,] duration, event) ~ formula + strata(strata),
    data, weights=, cluster=, ties=, robust=)`` (survival 3.5-3) in any combination of
    ties, strata, weights, entry times and clusters: coefficients, model-based and robust
    standard errors, log likelihoods, the likelihood-ratio, Wald, score and robust score
    tests, ``cox.zph``, ``survfit`` curves and ``basehaz``.

    Parameters
    ----------
    formula : str
        Right-hand side in patsy syntax, e.g. ``"rapamycin + age + C(route)"`` or
        ``"~ rapamycin"``, read by the kernel's ``model_frame`` (``docs/api.md``):
        interactions (``a:b``, ``a*b``), ``C()``, ``I()``, ``Q("odd name")`` (a column
        named like a Python keyword: ``Q("lambda")``), ``np.``, ``log``, ``exp``, ``sqrt``,
        ``abs`` and names of the caller's namespace. No intercept column is made; a
        categorical gets treatment coding against its first level (sorted values, or the
        Categorical order), and the model columns keep patsy's names
        (``C(route)[T.iv]``, ``drug_rapamycin[T.True]``). ``"1"`` fits no covariates.
    data : pandas.DataFrame
        One row per subject, or per interval with ``entry``.
    duration, event : str
        Exit time (>= 0) and event (1/True = event, 0/False = censored) columns.
    entry : str, optional
        Entry time: a row is at risk at t when ``entry < t <= duration`` (counting-process
        data, delayed entry, time-varying covariates, recurrent events).
    strata : str or list of str, optional
        Column(s) whose combinations get separate baseline hazards (R's ``strata()``).
    cluster : str, optional
        Column grouping correlated rows (e.g. intervals of one patient): the variance is
        the grouped-dfbeta sandwich (R's ``cluster()``).
    weights : str, optional
        Case weights (> 0).
    ties : {"efron", "breslow"}, default "efron"
        Handling of tied event times; Efron's is R's default and closer to the exact
        partial likelihood when ties are many (whole-day times).
    robust : bool, optional
        Robust (sandwich) variance. Default as R: on when ``cluster`` is given or any
        weight is not a whole number (each row its own cluster when there is no
        ``cluster``). ``robust=False`` with a cluster ignores it, with a warning (as R).
    conf_level : float, default 0.95
        Coverage of the hazard-ratio intervals.
    dropna : bool, default False
        Missing values in any column used (formula, duration, event, entry, weights,
        strata, cluster) are an error saying which column, how many rows and the first of
        them; ``dropna=True`` drops those rows and counts them in ``n_dropped``.
    max_iter, tol, toler_chol : int, float, float
        R's ``coxph.control(iter.max=20, eps=1e-9, toler.chol=.Machine$double.eps^.75)``:
        at most ``max_iter`` Newton-Raphson iterations, converged when the relative change
        of the log likelihood is at most ``tol`` (``eps`` is the name of the previous
        release, deprecated).
    table : str, default "data"
        Name of the table in error messages.

    Returns
    -------
    CoxResult

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival import cox
    >>> df = pd.DataFrame({"days": [5, 8, 12, 20, 6, 15, 30, 41, 9, 25],
    ...                    "relapsed": [1, 1, 1, 0, 1, 0, 1, 0, 1, 1],
    ...                    "rapamycin": [0, 0, 0, 0, 1, 1, 1, 1, 0, 1]})
    >>> fit = cox("rapamycin", df, duration="days", event="relapsed")
    >>> fit.summary[["coef", "se", "ratio", "ratio_lower", "ratio_upper", "p_value"]].round(4)
                 coef      se   ratio  ratio_lower  ratio_upper  p_value
    term
    rapamycin -1.6464  1.1245  0.1927       0.0213       1.7463   0.1431
    >>> fit.tests.round(3)
                      statistic  df  p_value
    likelihood_ratio      2.747   1    0.097
    wald                  2.144   1    0.143
    score                 2.650   1    0.104
    """
    return fit_cox(formula, data, duration=duration, event=event, entry=entry, strata=strata, cluster=cluster,
                   weights=weights, ties=ties, robust=robust, conf_level=conf_level, dropna=dropna, max_iter=max_iter,
                   tol=tol, toler_chol=toler_chol, table=table, env=capture_env(1))


def fit_cox(
    formula: str,
    data: pd.DataFrame,
    *,
    duration: str,
    event: str,
    entry: str | None,
    strata: str | Sequence[str] | None,
    cluster: str | None,
    weights: str | None,
    ties: str,
    robust: bool | None,
    conf_level: float,
    dropna: bool,
    max_iter: int,
    tol: float,
    toler_chol: float,
    table: str,
    env,
) -> CoxResult:
    """:func:`cox` with the namespace for the formula's names given (``env``); the
    recurrent-interval helpers call it with their caller's."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    check_choice("ties", ties, TIES)
    conf_level = check_conf_level(conf_level)
    strata_cols = _as_list(strata, "strata")
    if cluster is not None and not isinstance(cluster, str):
        raise TypeError(f"cluster must be a column name, got {type(cluster).__name__}")
    roles = {"duration": duration, "event": event, "entry": entry, "weights": weights, "strata": strata_cols or None,
             "cluster": cluster}

    def checks(report, frame, rows):
        return survival_values(report, table, frame, duration=duration, event=event, entry=entry, weights=weights)

    mf, vals = survival_frame(formula, data, roles=roles, intercept=False, dropna=dropna, table=table, env=env,
                              checks=checks)
    rows = mf.rows
    stop = vals.time
    ev = vals.event == 1.0
    ent = vals.entry
    w = vals.weights if vals.weights is not None else np.ones(rows.size)
    integer_weights = vals.weights is None or bool(np.all(w == np.floor(w)))
    if not ev.any():
        raise ValueError(f"{table}: no events among the {rows.size} row(s) used; a Cox model needs at least one event")

    # design (the kernel's model frame, no intercept column)
    X = np.ascontiguousarray(mf.X.to_numpy(dtype=np.float64))  # row-major, as patsy gives it (same sums to the bit)
    columns = [str(c) for c in mf.X.columns]
    p = X.shape[1]

    # strata and clusters, from the table's own values (dtypes as given)
    raw = data.iloc[rows] if (strata_cols or cluster is not None) else None
    if strata_cols:
        s_codes, s_levels = _strata_grouping(raw, strata_cols)
    else:
        s_codes, s_levels = None, []
    has_cluster = cluster is not None
    if robust is True and not has_cluster and ent is not None:
        raise ValueError(
            "robust=True with entry times needs cluster= (the column identifying the subject whose rows "
            "belong together), as R's coxph; without it each row would count as independent"
        )
    if robust is None:
        robust = has_cluster or not integer_weights
    robust = bool(robust)
    if has_cluster and not robust:
        warn_caller("cluster given with robust=False: the cluster is ignored (as R's coxph)", UserWarning)
    if robust:
        if has_cluster:
            cl_codes, cl_levels = pd.factorize(raw[cluster].to_numpy(), sort=True)
            n_clusters = len(cl_levels)
        else:
            cl_codes = np.arange(rows.size)
            n_clusters = rows.size
    else:
        cl_codes, n_clusters = None, 0
    # working design: centred by the weighted mean, scaled as R's coxfit6/agfit4
    center = (w @ X) / w.sum() if p else np.zeros(0)
    Xc = X - center
    if p:
        mad = (w @ np.abs(Xc)) / w.sum()
        scale = np.where(mad > 0, 1.0 / np.where(mad > 0, mad, 1.0), 1.0)
    else:
        scale = np.zeros(0)
    Xs = np.empty(Xc.shape, order="F")  # the engine works column by column
    np.multiply(Xc, scale, out=Xs)
    rs = RiskSets(stop, ev, ent, s_codes, max(len(s_levels), 1))
    prob = Problem(Xs, w, rs, ties == "efron")
    nr = newton_raphson(prob, np.zeros(p), counting=ent is not None, max_iter=max_iter, eps=tol,
                        toler_chol=toler_chol)
    beta = nr.beta * scale
    var = nr.var * np.outer(scale, scale)
    singular = np.zeros(p, dtype=bool)
    if p and nr.rank < p:
        singular = np.diag(var) == 0
    u_final = nr.u / scale if p else nr.u
    if p and max_iter > 1:
        if not nr.converged:
            warn_caller("Ran out of iterations and did not converge (max_iter="
                        f"{max_iter}); the estimates are those of the last good step", ConvergenceWarning)
        else:
            step = np.abs(u_final @ var)
            if ent is None:
                infs = ~np.isfinite(u_final) | ((step > tol) & (step > TOLER_INF * np.abs(beta)))
            else:
                infs = ~np.isfinite(u_final) | (step > TOLER_INF * (1 + np.abs(beta)))
            if infs.any():
                names = ", ".join(columns[i] for i in np.flatnonzero(infs))
                warn_caller(f"Loglik converged before column(s) {names}; coefficient may be infinite",
                            ConvergenceWarning)
    coef = np.where(singular, np.nan, beta)
    if singular.any():
        warn_caller("X matrix deemed to be singular; column(s) " + ", ".join(
            columns[i] for i in np.flatnonzero(singular)) + " get NaN (collinear with the others)", UserWarning)

    naive_var = var
    robust_var = None
    rscore = None
    if robust and p:
        # grouped dfbeta: per cluster, sum of w U (on the original scale) times var; the
        # cluster sums are taken first, so no n x p matrix of residuals is built
        B = (cluster_score_sums(prob, nr.state, cl_codes, n_clusters) / scale) @ var
        robust_var = B.T @ B
        B0 = cluster_score_sums(prob, nr.state0, cl_codes, n_clusters) / scale
        rscore, _ = wald_test(B0.T @ B0, B0.sum(axis=0), toler_chol)
    used_var = robust_var if robust_var is not None else naive_var

    # summary (the convention's columns; naive_se after them with a robust variance)
    se_naive = np.where(singular, np.nan, np.sqrt(np.diag(naive_var))) if p else np.zeros(0)
    if robust_var is not None:
        se_used = np.where(singular, np.nan, np.sqrt(np.diag(robust_var)))
    else:
        se_used = se_naive
    with np.errstate(invalid="ignore", over="ignore"):
        summary = coef_table(columns, coef, se_used, conf_level, ratio=True)
    if robust_var is not None:
        summary["naive_se"] = se_naive
    summary = with_aliases(summary, ROBUST_SUMMARY_ALIASES if robust_var is not None else SUMMARY_ALIASES)
    ok = ~singular
    df_model = int(ok.sum())
    rows_t = {}
    if p:
        lr = 2.0 * (nr.loglik - nr.loglik0)
        rows_t["likelihood_ratio"] = (lr, df_model)
        wt, _ = wald_test(used_var[np.ix_(ok, ok)], beta[ok], toler_chol)
        rows_t["wald"] = (wt, df_model)
        rows_t["score"] = (nr.score_test, df_model)
        if rscore is not None:
            rows_t["robust_score"] = (rscore, df_model)
    tests = pd.DataFrame(
        [(k, s, d, float(stats.chi2.sf(s, d))) for k, (s, d) in rows_t.items()],
        columns=["test", "statistic", "df", "p_value"],
    ).set_index("test")
    tests.index.name = None
    # R's fit$means: columns whose values are all -1, 0 or 1 (indicators) are not centred
    # (coxph's nocenter); the others at their weighted mean (coxfit6) or, with entry
    # times, their unweighted mean (agreg.fit)
    r_means = (w @ X) / w.sum() if ent is None else X.mean(axis=0)
    if p:
        nocenter = np.all(np.isin(X, (-1.0, 0.0, 1.0)), axis=0)
        r_means = np.where(nocenter, 0.0, r_means)
    else:
        r_means = np.zeros(0)
    return CoxResult(
        summary=summary,
        cov=pd.DataFrame(used_var, index=columns, columns=columns),
        n_obs=int(rows.size),
        n_dropped=int(mf.n_dropped),
        conf_level=conf_level,
        converged=bool(nr.converged),
        formula=formula,
        model="cox",
        loglik=pd.Series({"null": nr.loglik0, "model": nr.loglik}),
        tests=tests,
        naive_cov=pd.DataFrame(naive_var, index=columns, columns=columns),
        means=pd.Series(r_means, index=columns, dtype=float),
        columns=columns,
        terms=dict(mf.terms),
        n_events=int(ev.sum()),
        dropped_by_column=dict(mf.dropped_by_column),
        n_clusters=int(n_clusters) if robust else 0,
        iterations=int(nr.iterations),
        ties=ties,
        robust=robust,
        strata_columns=strata_cols,
        strata_levels=list(s_levels),
        cluster_column=cluster if robust else None,
        weights_column=weights,
        entry_column=entry,
        duration_column=duration,
        event_column=event,
        _frame=slim_frame(mf),
        _problem=prob,
        _beta_work=nr.beta,
        _scale=scale,
        _center=center,
        _data={"Xc": Xc, "w": w, "stop": stop, "event": ev, "entry": ent, "strata": s_codes,
               "index": mf.data.index, "cluster": cl_codes},
    )
