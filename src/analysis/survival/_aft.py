"""Parametric accelerated failure time (AFT) models, agreeing with R's ``survreg``.

``aft("~ rapamycin + C(route)", data, duration="days", event="relapsed")`` fits

    log T = x'beta + sigma * W

with W standard extreme-value (``dist="weibull"``; ``"exponential"`` fixes sigma = 1),
normal (``"lognormal"``) or logistic (``"loglogistic"``), to right-censored data
(``duration``, ``event``) or to interval-censored data (``lower``, ``upper``, R's
``Surv(lower, upper, type = "interval2")``). exp(beta_j) is the *time ratio*
(acceleration factor): the factor by which a unit of covariate j multiplies every quantile
of the time to event. The formula is read by the kernel's ``model_frame`` and the result
follows the package's results convention (``docs/api.md``). Conventions, formulas and
sources: ``docs/aft-turnbull.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from .._kernel import (
    ConvergenceWarning, ModelResult, capture_env, check_choice, check_conf_level, coef_table, design_for, get_ax,
    renamed_arguments, with_aliases, z_value,
)
from .._kernel.formula import ModelFrame
from ..problems import DataValidationError, ValidationReport
from ._aft_data import STATUS_NAMES, bound_values, check_columns, interval_status, missing_problem
from ._aft_fit import DISTRIBUTIONS, EXACT, INTERVAL, LEFT, RIGHT, fit_survreg
from ._common import slim_frame, survival_frame, survival_values, warn_caller
from ._plotting import step_curve

__all__ = ["AFTResult", "AFTConvergenceWarning", "aft"]

DISTS = tuple(DISTRIBUTIONS)
_SCALE = "Log(scale)"
_INTERCEPT = "Intercept"

#: the name of the previous release: now the package's one warning class
AFTConvergenceWarning = ConvergenceWarning

#: summary columns of the previous release -> their names now
SUMMARY_ALIASES = {"z": "statistic", "time_ratio": "ratio", "time_ratio_lower": "ratio_lower",
                   "time_ratio_upper": "ratio_upper"}
#: columns of ``hazard_ratios()`` of the previous release -> their names now (its old
#: ``ci_lower``/``ci_upper`` were the limits of the hazard ratio: now ``ratio_lower``/``ratio_upper``)
HR_ALIASES = {"hr": "ratio", "log_hr": "coef", "z": "statistic"}


# ----------------------------------------------------------------------------------------
# the result
# ----------------------------------------------------------------------------------------
@dataclass(kw_only=True, eq=False, repr=False)
class AFTResult(ModelResult):
    """A fitted accelerated failure time model (the results convention of ``docs/api.md``).

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by term (``"Intercept"``, the covariate columns as patsy names them, and
        ``"Log(scale)"`` unless the scale is fixed): ``coef, se, statistic, p_value,
        ci_lower, ci_upper, ratio, ratio_lower, ratio_upper``. ``ratio`` is the time ratio
        exp(coef) with the interval exp(ci): the factor by which the term multiplies every
        quantile of T. For ``Intercept`` exp(coef) is the time scale of the reference
        profile (for the Weibull, its characteristic life in the time unit of the data);
        for ``Log(scale)`` it is NaN.
    params : pandas.Series
        All estimated parameters (beta and log sigma), ``summary["coef"]``.
    coef : pandas.Series
        The regression coefficients beta only (R's ``coef(fit)``).
    cov : pandas.DataFrame
        Variance matrix of ``params`` (inverse observed information; R's ``vcov(fit)``).
    scale : float
        sigma (R's ``fit$scale``). For the Weibull, the shape is 1 / scale.
    loglik, loglik_null : float
        Log-likelihood of the model and of the model with only the intercept (and scale),
        on the time scale (including the -log t Jacobian of exact times), as R's
        ``fit$loglik[2]`` and ``fit$loglik[1]``.
    iterations : int
        Newton-Raphson iterations of the final fit (R's ``fit$iter``).
    converged : bool
        False when ``max_iter`` was reached first (a ``ConvergenceWarning`` is also issued).
    n_obs, n_dropped : int
        Rows used, and rows dropped for missing values (``dropna=True``; per column in
        ``dropped_by_column``).
    counts : dict
        ``n`` (rows used), ``exact``, ``right``, ``left``, ``interval`` (rows by type of
        observation) and ``n_dropped``.
    dist, formula, conf_level, response : str, str, float, str
        ``response`` is ``"right"`` (duration/event) or ``"interval"`` (lower/upper).

    The names of the previous release (``n``; summary columns ``z``, ``time_ratio``,
    ``time_ratio_lower``, ``time_ratio_upper``; the term ``(Intercept)`` is now
    ``Intercept``) work for one release where they can, with a ``DeprecationWarning``.
    """

    dist: str
    scale: float
    loglik: float
    loglik_null: float
    iterations: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    response: str = "right"
    dropped_by_column: dict[str, int] = field(default_factory=dict)
    _dist: Any = None
    _frame: ModelFrame | None = None
    _X: np.ndarray | None = None
    _t1: np.ndarray | None = None
    _t2: np.ndarray | None = None
    _status: np.ndarray | None = None
    _w: np.ndarray | None = None

    _renamed: ClassVar[dict[str, str]] = {"n": "n_obs", "vcov": "cov"}
    _ratio_label: ClassVar[str] = "time ratio"

    @property
    def _fixed(self) -> bool:
        return self._dist.fixed_scale is not None

    @property
    def coef(self) -> pd.Series:
        """The regression coefficients beta (``params`` without ``Log(scale)``; R's ``coef(fit)``)."""
        p = self.params
        return p[p.index != _SCALE]

    @property
    def shape(self) -> float:
        """Weibull shape 1 / sigma (hazard increasing when > 1). Only for Weibull and exponential."""
        if self.dist not in ("weibull", "exponential"):
            raise ValueError(f"shape is the Weibull shape 1/scale; this model is {self.dist!r}")
        return 1.0 / self.scale

    @property
    def aic(self) -> float:
        """-2 loglik + 2 (number of parameters), as R's ``AIC(fit)``."""
        return -2.0 * self.loglik + 2.0 * len(self.params)

    @property
    def lr_test(self) -> dict:
        """Likelihood-ratio test of all covariates against the intercept-only model
        (R's ``print(fit)`` "Chisq"): ``statistic``, ``df``, ``p_value``."""
        df = int(sum(1 for n in self.coef.index if n != _INTERCEPT))
        stat = 2.0 * (self.loglik - self.loglik_null)
        return {"statistic": stat, "df": df, "p_value": float(stats.chi2.sf(stat, df)) if df else float("nan")}

    # ------------------------------------------------------------------------------------
    def _design(self, profiles) -> tuple[pd.DataFrame, np.ndarray]:
        if isinstance(profiles, dict):
            profiles = pd.DataFrame(profiles)
        if not isinstance(profiles, pd.DataFrame):
            raise TypeError(f"profiles must be a DataFrame (one row per covariate profile), got {type(profiles).__name__}")
        frame = profiles.reset_index(drop=True)
        X = np.ascontiguousarray(design_for(self._frame, frame).to_numpy(dtype=float))
        return frame, X

    def _lp_var(self, X: np.ndarray, qq: float) -> tuple[np.ndarray, np.ndarray]:
        beta = self.coef.to_numpy()
        lp = X @ beta + qq * self.scale
        V = self.cov.to_numpy()
        if self._fixed:
            G = X
        else:
            G = np.column_stack([X, np.full(X.shape[0], qq * self.scale)])
        var = np.einsum("ij,jk,ik->i", G, V, G)
        return lp, np.sqrt(np.maximum(var, 0.0))

    def predict_quantile(self, profiles: pd.DataFrame, q: float | Sequence[float] = 0.5) -> pd.DataFrame:
        """Predicted quantile(s) of the time to event per covariate profile, with intervals.

        As R's ``predict(fit, newdata = profiles, type = "quantile", p = q, se.fit = TRUE)``:
        on the log-time scale the q-quantile is x'beta + w_q sigma (w_q the q-quantile of
        W), with variance g' V g, g = (x, w_q sigma) the gradient in (beta, log sigma)
        (delta method). ``time`` = exp of it; ``se`` = time x ``se_log`` (R's ``se.fit``);
        the interval is exp(log time -+ z se_log), so it stays positive.

        Parameters
        ----------
        profiles : pandas.DataFrame
            One row per profile, with every column the formula uses.
        q : float or sequence of float, default 0.5
            Probabilities in (0, 1): q is the probability that the event has happened by
            the predicted time (0.5: the median).

        Returns
        -------
        pandas.DataFrame
            The profile columns, then ``q, time, se, ci_lower, ci_upper, se_log``; one row
            per profile and q (profiles vary fastest).
        """
        frame, X = self._design(profiles)
        qs = np.atleast_1d(np.asarray(q, dtype=float))
        if np.any(~((qs > 0) & (qs < 1))):
            raise ValueError(f"q must be strictly between 0 and 1, got {q!r}")
        z = z_value(self.conf_level)
        parts = []
        for qv in qs:
            qq = float(self._dist.std.ppf(qv))
            lp, se_log = self._lp_var(X, qq)
            t = np.exp(lp)
            part = frame.copy()
            part["q"] = qv
            part["time"] = t
            part["se"] = t * se_log
            part["ci_lower"] = np.exp(lp - z * se_log)
            part["ci_upper"] = np.exp(lp + z * se_log)
            part["se_log"] = se_log
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    def predict_median(self, profiles: pd.DataFrame) -> pd.DataFrame:
        """Predicted median time to event (durability) per covariate profile, with intervals.

        :meth:`predict_quantile` at q = 0.5, with the column ``median`` for ``time``.

        Examples
        --------
        >>> import pandas as pd
        >>> from analysis.survival import aft
        >>> df = pd.DataFrame({"days": [5, 9, 14, 20, 30, 8, 21, 35, 40, 60],
        ...                    "relapsed": [1, 1, 1, 1, 0, 1, 1, 1, 0, 1],
        ...                    "rapamycin": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]})
        >>> fit = aft("~ rapamycin", df, duration="days", event="relapsed")
        >>> fit.predict_median(pd.DataFrame({"rapamycin": [0, 1]}))[["rapamycin", "median"]].round(1)
           rapamycin  median
        0          0    15.5
        1          1    32.5
        """
        out = self.predict_quantile(profiles, 0.5).drop(columns="q")
        return out.rename(columns={"time": "median"})

    def predict_survival(self, profiles: pd.DataFrame, times: Sequence[float] | float) -> pd.DataFrame:
        """Model survival S(t | x) = P(T > t | x) for each profile at each time.

        Returns a long table: the profile columns, ``profile`` (row number of the profile),
        ``time`` and ``survival``.
        """
        frame, X = self._design(profiles)
        t = np.atleast_1d(np.asarray(times, dtype=float))
        S = self._surv_matrix(X, t)
        out = frame.loc[np.repeat(np.arange(len(frame)), t.size)].reset_index(drop=True)
        out["profile"] = np.repeat(np.arange(len(frame)), t.size)
        out["time"] = np.tile(t, len(frame))
        out["survival"] = S.ravel()
        return out

    def _surv_matrix(self, X: np.ndarray, t: np.ndarray) -> np.ndarray:
        lp = X @ self.coef.to_numpy()
        with np.errstate(divide="ignore"):
            logt = np.log(t)
        z = (logt[None, :] - lp[:, None]) / self.scale
        with np.errstate(over="ignore", invalid="ignore"):
            S = self._dist.std.sf(z)
        return np.where(t[None, :] <= 0, 1.0, S)

    def hazard_ratios(self) -> pd.DataFrame:
        """Hazard ratios of the Weibull (or exponential) model read as proportional hazards.

        A Weibull AFT model is also a proportional-hazards model: HR_j = exp(-beta_j /
        sigma). The standard error of log HR_j comes from the delta method with the
        gradient (-1/sigma, beta_j / sigma) in (beta_j, log sigma); the interval is
        exp(log HR -+ z se). Rows: every coefficient except the intercept.

        Returns
        -------
        pandas.DataFrame
            Indexed by term, the convention's columns: ``coef`` (log HR), ``se``,
            ``statistic``, ``p_value``, ``ci_lower``, ``ci_upper`` (of log HR), ``ratio``
            (the hazard ratio), ``ratio_lower``, ``ratio_upper``. (The previous release's
            ``hr``, ``log_hr`` and ``z`` still answer, with a DeprecationWarning; its
            ``ci_lower``/``ci_upper`` were the limits of the hazard ratio, now
            ``ratio_lower``/``ratio_upper``.)
        """
        if self.dist not in ("weibull", "exponential"):
            raise ValueError(
                f"hazard ratios need proportional hazards, which only the Weibull (and exponential) AFT model has; "
                f"this model is {self.dist!r}: report time ratios (summary['ratio']) instead"
            )
        names = [n for n in self.coef.index if n != _INTERCEPT]
        V = self.cov.to_numpy()
        p = len(self.coef)
        log_hr, se = [], []
        for name in names:
            j = self.coef.index.get_loc(name)
            b = float(self.coef.iloc[j])
            g = np.zeros(V.shape[0])
            g[j] = -1.0 / self.scale
            if not self._fixed:
                g[p] = b / self.scale
            log_hr.append(-b / self.scale)
            se.append(float(np.sqrt(g @ V @ g)))
        table = coef_table(names, np.array(log_hr), np.array(se), self.conf_level, ratio=True)
        return with_aliases(table, HR_ALIASES)

    # ------------------------------------------------------------------------------------
    def plot(self, ax=None, profiles: pd.DataFrame | None = None, *, kind: str | None = None,
             times: Sequence[float] | None = None, nonparametric: bool = True, labels: Sequence[str] | None = None):
        """The time ratios with their intervals (``kind="estimates"``, the default, as every
        model's ``plot``), or the fitted survival curves over the nonparametric estimate of
        the same data (``kind="survival"``, the default when ``profiles``, ``times`` or
        ``labels`` are given).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on (default: the current axes).
        kind : {"estimates", "survival"}, optional
            What to draw (see above).
        profiles : pandas.DataFrame, optional
            Draw S(t | x) for each row. Without profiles, the model's average survival over
            the rows fitted, mean_i S(t | x_i) (weighted), which is what the nonparametric
            curve of the whole sample estimates.
        times : sequence of float, optional
            Times at which to evaluate the curves (default: 200 points up to the largest
            finite time in the data).
        nonparametric : bool, default True
            Draw the Kaplan-Meier curve (right-censored data) or the Turnbull estimate
            (interval-censored data) of all rows fitted, in grey, without intervals.
        labels : sequence of str, optional
            Legend labels for the profiles (default: "col=value, ...").

        Returns
        -------
        matplotlib.axes.Axes
        """
        if kind is None:
            kind = "survival" if (profiles is not None or times is not None or labels is not None) else "estimates"
        check_choice("kind", kind, ("estimates", "survival"))
        if kind == "estimates":
            return super().plot(ax)
        ax = get_ax(ax)
        finite = np.concatenate([self._t1[np.isfinite(self._t1)], self._t2[np.isfinite(self._t2)]])
        tmax = float(finite.max()) if finite.size else 1.0
        grid = np.linspace(0.0, tmax, 200) if times is None else np.sort(np.asarray(times, dtype=float))
        if nonparametric:
            self._draw_nonparametric(ax)
        if profiles is None:
            S = self._surv_matrix(self._X, grid)
            avg = (self._w[:, None] * S).sum(axis=0) / self._w.sum()
            ax.plot(grid, avg, label=f"{self._dist.label} model, average over the sample")
        else:
            frame, X = self._design(profiles)
            S = self._surv_matrix(X, grid)
            needed = self._frame.columns
            for i in range(len(frame)):
                if labels is not None:
                    lab = labels[i]
                else:
                    lab = ", ".join(f"{c}={frame[c].iloc[i]}" for c in needed) or "model"
                ax.plot(grid, S[i], label=lab)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(left=0)
        ax.set_xlabel("time")
        ax.set_ylabel("survival probability")
        ax.legend(loc="best", frameon=False)
        return ax

    def _draw_nonparametric(self, ax) -> None:
        if self.response == "right":
            from ._kaplan_meier import kaplan_meier

            df = pd.DataFrame({"t": self._t1, "e": self._status == EXACT, "w": self._w})
            km = kaplan_meier(df, "t", "e", weights="w", conf_type="none")
            tb = km.table
            step_curve(ax, tb["time"].to_numpy(), tb["survival"].to_numpy(), start=1.0, color="0.5",
                       label="Kaplan-Meier")
        else:
            from ._turnbull import turnbull

            lo = np.where(self._status == LEFT, 0.0, self._t1)
            up = np.where(self._status == RIGHT, np.inf, np.where(self._status == INTERVAL, self._t2, self._t1))
            df = pd.DataFrame({"lo": lo, "up": up, "w": self._w})
            tb = turnbull(df, "lo", "up", weights="w", n_boot=0).table
            step_curve(ax, tb["time"].to_numpy(), tb["survival"].to_numpy(), start=1.0, color="0.5",
                       label="Turnbull")

    def __repr__(self) -> str:
        head = (f"AFTResult({self._dist.label} AFT, formula {self.formula!r}, n_obs={self.n_obs}, "
                f"loglik={self.loglik:.4f}, scale={self.scale:.5g}, iterations={self.iterations}"
                f"{'' if self.converged else ', NOT converged'})")
        return head + "\n" + pd.DataFrame(self.summary)[["coef", "se", "p_value", "ratio"]].to_string()


# ----------------------------------------------------------------------------------------
# the function
# ----------------------------------------------------------------------------------------
@renamed_arguments(maxiter="max_iter", rel_tolerance="tol")
def aft(
    formula: str,
    data: pd.DataFrame,
    *,
    dist: str = "weibull",
    duration: str | None = None,
    event: str | None = None,
    lower: str | None = None,
    upper: str | None = None,
    weights: str | None = None,
    conf_level: float = 0.95,
    dropna: bool = False,
    max_iter: int = 30,
    tol: float = 1e-9,
    table: str = "data",
) -> AFTResult:
    """Parametric accelerated failure time model, as R's ``survreg``.

    log T = x'beta + sigma W, with W standard extreme value (Weibull), normal (log-normal)
    or logistic (log-logistic); maximum likelihood by Newton-Raphson on (beta, log sigma)
    with analytic first and second derivatives, R's starting values, step halving and
    convergence rule (relative change in the log-likelihood <= ``tol``), so that
    coefficients, standard errors, scale, log-likelihoods and iteration counts agree with
    ``survreg(Surv(...) ~ ..., dist = dist, control = survreg.control(maxiter = max_iter,
    rel.tolerance = tol))``.

    Parameters
    ----------
    formula : str
        Right-hand side in patsy syntax, e.g. ``"~ rapamycin + age + C(route)"``, read by
        the kernel's ``model_frame`` (``docs/api.md``): ``C()``, ``I()``, ``Q("odd name")``
        (a column named like a Python keyword: ``Q("lambda")``), ``np.``, ``log``, ``exp``,
        ``sqrt``, ``abs`` and names of the caller's namespace. An intercept is included
        (named ``"Intercept"``, patsy's name; R calls it ``(Intercept)``) unless removed
        with ``- 1``. Strings, booleans and ``C()`` terms are factors with treatment
        contrasts against their first level (sorted values, or the category order of a
        pandas Categorical, like R's factors).
    data : pandas.DataFrame
        One row per observation.
    dist : {"weibull", "lognormal", "loglogistic", "exponential"}, default "weibull"
        Distribution of T (R's ``dist``); ``"exponential"`` is the Weibull with sigma = 1.
    duration, event : str, optional
        Right-censored data: time to event or censoring (> 0) and 1/True for an event,
        0/False for censored.
    lower, upper : str, optional
        Interval-censored data instead, as R's ``Surv(lower, upper, type="interval2")``:
        ``lower == upper`` an exact event time; ``lower < T <= upper`` an interval;
        ``upper`` = inf (or NaN) right-censored at ``lower``; ``lower`` = 0, NaN or -inf
        left-censored at ``upper``; both NaN a missing row. Times must be > 0.
    weights : str, optional
        Column of case weights (> 0).
    conf_level : float, default 0.95
        Level of the Wald intervals in ``summary`` and of the prediction intervals.
    dropna : bool, default False
        Rows with a missing value in a column used (formula, duration, event, weights;
        both bounds missing for interval-censored data) raise an error naming the column,
        how many rows and the first of them; with ``dropna=True`` they are dropped and
        counted in ``n_dropped``.
    max_iter, tol : int, float
        R's ``survreg.control(maxiter = 30, rel.tolerance = 1e-9)`` (``maxiter`` and
        ``rel_tolerance`` are the names of the previous release, deprecated).
    table : str, default "data"
        Name of the table in error messages.

    Returns
    -------
    AFTResult

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival import aft
    >>> df = pd.DataFrame({"days": [5, 9, 14, 20, 30, 8, 21, 35, 40, 60],
    ...                    "relapsed": [1, 1, 1, 1, 0, 1, 1, 1, 0, 1],
    ...                    "rapamycin": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]})
    >>> fit = aft("~ rapamycin", df, duration="days", event="relapsed")
    >>> fit.summary[["coef", "se", "ratio", "ratio_lower", "ratio_upper"]].round(3)
                 coef     se   ratio  ratio_lower  ratio_upper
    term
    Intercept   2.974  0.315  19.571       10.562       36.266
    rapamycin   0.738  0.444   2.092        0.876        4.996
    Log(scale) -0.465  0.294     NaN          NaN          NaN
    >>> round(fit.loglik, 4), fit.iterations   # R: -33.70648, 5
    (-33.7065, 5)
    """
    env = capture_env(1)
    check_choice("dist", dist, DISTS)
    conf_level = check_conf_level(conf_level)
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    right = duration is not None or event is not None
    interval = lower is not None or upper is not None
    if right == interval or (right and (duration is None or event is None)) or (
            interval and (lower is None or upper is None)):
        raise ValueError(
            "give the response either as duration= and event= (right-censored data) or as lower= and upper= "
            "(interval-censored data, R's Surv(lower, upper, type='interval2')), not both and not one of a pair"
        )
    if interval:
        # the bounds are not model_frame roles: a NaN bound means censored, not missing
        report = ValidationReport(table)
        check_columns(report, table, data, {"lower": lower, "upper": upper})
        if not report.ok:
            raise DataValidationError(report)
        roles = {"weights": weights}
    else:
        roles = {"duration": duration, "event": event, "weights": weights}

    def checks(report, frame, rows):
        vals = survival_values(report, table, frame, duration=duration, event=event, weights=weights,
                               positive_duration=f"for a {dist} model (it is modelled on the log scale)")
        if right:
            if vals.time is None or vals.event is None:
                return None
            status = np.where(vals.event == 1.0, EXACT, RIGHT).astype(np.int64)
            return vals.weights, status, vals.time, np.full(status.size, np.nan), np.zeros(status.size, dtype=bool)
        bounds = data[[lower, upper]].iloc[rows].reset_index(drop=True)
        lo, up = bound_values(report, table, bounds, lower, upper)
        if lo is None or up is None:
            return None
        status, t1, t2, miss = interval_status(report, table, lo, up, lower, upper, positive=True)
        missing_problem(report, table, f"{lower}, {upper}", "bound in both columns", miss, dropna,
                        " (lower and upper both NaN: no information)")
        return vals.weights, status, t1, t2, miss

    mf, (w, status, t1, t2, miss) = survival_frame(formula, data, roles=roles, intercept=True, dropna=dropna,
                                                   table=table, env=env, checks=checks)
    X = np.ascontiguousarray(mf.X.to_numpy(dtype=float))
    names = [str(c) for c in mf.X.columns]
    n_dropped = int(mf.n_dropped)
    dropped_by_column = dict(mf.dropped_by_column)
    if miss.any():  # interval-censored rows with no bound (dropna=True): dropped and counted too
        keep = ~miss
        X, status, t1, t2 = X[keep], status[keep], t1[keep], t2[keep]
        w = w[keep] if w is not None else None
        n_dropped += int(miss.sum())
        dropped_by_column[f"{lower}, {upper}"] = int(miss.sum())
        if not keep.any():
            raise ValueError(f"{table}: no rows left to analyse ({len(data)} row(s) in, {n_dropped} dropped for "
                             "missing values)")
    if X.shape[1] == 0:
        raise ValueError(f"formula {formula!r} has no terms: keep the intercept or add a covariate")
    _check_rank(X, names)

    wk = np.ones(status.size) if w is None else w
    y1 = np.log(t1)
    with np.errstate(divide="ignore", invalid="ignore"):
        y2 = np.log(t2)
    dobj = DISTRIBUTIONS[dist]
    fit = fit_survreg(dobj, X, y1, y2, status, wk, max_iter=int(max_iter), tol=float(tol))
    exact = status == EXACT
    logcorrect = -float(np.sum(wk[exact] * y1[exact]))
    if not fit.converged:
        warn_caller(
            f"aft: Newton-Raphson did not converge in max_iter={max_iter} iterations (as R's 'Ran out of iterations "
            "and did not converge'); the estimates are not reliable: check for a covariate that separates events "
            "from censored rows, or raise max_iter",
            ConvergenceWarning,
        )
    counts = {"n": int(status.size)}
    for code, label in STATUS_NAMES.items():
        counts[label] = int(np.sum(status == code))
    counts["n_dropped"] = n_dropped

    fixed = dobj.fixed_scale is not None
    pnames = names + ([] if fixed else [_SCALE])
    coef = np.asarray(fit.coef, dtype=float)
    se = np.sqrt(np.diag(fit.var))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        summary = coef_table(pnames, coef, se, conf_level, ratio=True)
    if not fixed:
        summary.loc[_SCALE, ["ratio", "ratio_lower", "ratio_upper"]] = np.nan
    return AFTResult(
        summary=with_aliases(summary, SUMMARY_ALIASES),
        cov=pd.DataFrame(fit.var, index=pnames, columns=pnames),
        n_obs=int(status.size),
        n_dropped=n_dropped,
        conf_level=conf_level,
        converged=bool(fit.converged),
        formula=formula,
        dist=dobj.name,
        scale=float(dobj.fixed_scale) if fixed else float(np.exp(fit.coef[-1])),
        loglik=float(fit.loglik + logcorrect),
        loglik_null=float(fit.loglik_null + logcorrect),
        iterations=int(fit.iterations),
        counts=counts,
        response="right" if right else "interval",
        dropped_by_column=dropped_by_column,
        _dist=dobj,
        _frame=slim_frame(mf),
        _X=X,
        _t1=t1,
        _t2=t2,
        _status=status,
        _w=wk,
    )


def _check_rank(X: np.ndarray, names: list[str]) -> None:
    from scipy.linalg import qr

    if X.shape[0] < X.shape[1]:
        raise ValueError(f"{X.shape[0]} row(s) for {X.shape[1]} coefficient(s): too few rows to fit the model")
    if X.shape[0] > 4 * X.shape[1] and X.shape[0] > 2000:
        # a p x p matrix with the column geometry of X (R'R = X'X), cheaper than X's QR
        lam, vec = np.linalg.eigh(X.T @ X)
        X = np.sqrt(np.clip(lam, 0.0, None))[:, None] * vec.T
        rel = 1e-7
    else:
        rel = max(X.shape) * np.finfo(float).eps * 10
    _, r, piv = qr(X, mode="economic", pivoting=True)
    d = np.abs(np.diag(r))
    tol = d.max() * rel if d.size else 0.0
    rank = int(np.sum(d > tol))
    if rank < X.shape[1]:
        aliased = [names[j] for j in sorted(piv[rank:])]
        raise ValueError(
            f"the design matrix is singular: column(s) {', '.join(aliased)} are linear combinations of the others "
            "(a factor level with no rows, or duplicated covariates); R's survreg reports NA for them -- remove "
            "or merge them"
        )
