"""Parametric accelerated failure time (AFT) models, agreeing with R's ``survreg``.

``aft("~ rapamycin + C(route)", data, duration="days", event="relapsed")`` fits

    log T = x'beta + sigma * W

with W standard extreme-value (``dist="weibull"``; ``"exponential"`` fixes sigma = 1),
normal (``"lognormal"``) or logistic (``"loglogistic"``), to right-censored data
(``duration``, ``event``) or to interval-censored data (``lower``, ``upper``, R's
``Surv(lower, upper, type = "interval2")``). exp(beta_j) is the *time ratio*
(acceleration factor): the factor by which a unit of covariate j multiplies every quantile
of the time to event. Conventions, formulas and sources: ``docs/aft-turnbull.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..problems import DataValidationError, ValidationReport
from ._aft_data import (
    STATUS_NAMES,
    bound_values,
    check_columns,
    formula_variables,
    interval_status,
    missing_problem,
    numeric_values,
    weight_values,
)
from ._aft_fit import DISTRIBUTIONS, EXACT, INTERVAL, LEFT, RIGHT, fit_survreg
from ._common import _event, check_choice, check_conf_level, z_value
from ._plotting import get_ax, step_curve

__all__ = ["AFTResult", "AFTConvergenceWarning", "aft"]

DISTS = tuple(DISTRIBUTIONS)
_SCALE = "Log(scale)"
_INTERCEPT = "(Intercept)"


class AFTConvergenceWarning(UserWarning):
    """The Newton-Raphson iterations stopped at ``maxiter`` before converging."""


# ----------------------------------------------------------------------------------------
# the formula
# ----------------------------------------------------------------------------------------
def _rhs(formula: str) -> str:
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string such as '~ age + C(route)', got {type(formula).__name__}")
    text = formula.strip()
    if "~" in text:
        lhs, rhs = text.split("~", 1)
        if lhs.strip():
            raise ValueError(
                f"formula {formula!r}: give only the right-hand side (e.g. '~ age + C(route)'); the response "
                "is given by duration=/event= (right-censored) or lower=/upper= (interval-censored)"
            )
        text = rhs.strip()
    return text or "1"


def _patsy():
    import patsy

    return patsy


def _factor_codes(rhs: str) -> list[str]:
    patsy = _patsy()
    try:
        desc = patsy.ModelDesc.from_formula(rhs)
    except patsy.PatsyError as err:
        raise ValueError(f"formula '~ {rhs}' cannot be parsed: {err}") from None
    codes = []
    for term in desc.rhs_termlist:
        for factor in term.factors:
            code = getattr(factor, "code", None)
            if code is not None:
                codes.append(code)
    return codes


def _r_name(name: str) -> str:
    return _INTERCEPT if name == "Intercept" else name


# ----------------------------------------------------------------------------------------
# the result
# ----------------------------------------------------------------------------------------
class AFTResult:
    """A fitted accelerated failure time model.

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by term (``"(Intercept)"``, the covariate columns as patsy names them, and
        ``"Log(scale)"`` unless the scale is fixed): ``coef, se, z, p_value, ci_lower,
        ci_upper, time_ratio, time_ratio_lower, time_ratio_upper``. The time ratio is
        exp(coef) with the interval exp(ci): the factor by which the term multiplies every
        quantile of T. For ``(Intercept)`` exp(coef) is the time scale of the reference
        profile (for the Weibull, its characteristic life in the time unit of the data);
        for ``Log(scale)`` it is left empty.
    params : pandas.Series
        All estimated parameters (beta and log sigma), as ``summary["coef"]``.
    coef : pandas.Series
        The regression coefficients beta (R's ``coef(fit)``).
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
        False when ``maxiter`` was reached first (a warning is also issued).
    counts : dict
        ``n`` (rows used), ``exact``, ``right``, ``left``, ``interval`` (rows by type of
        observation) and ``n_dropped`` (rows dropped for missing values with ``dropna``).
    dist, formula, conf_level, response : str, str, float, str
        ``response`` is ``"right"`` (duration/event) or ``"interval"`` (lower/upper).
    """

    def __init__(self, *, dist, formula, rhs, design_info, names, fit, conf_level, counts, n_dropped,
                 response, columns, X, t1, t2, status, weights, logcorrect):
        self.dist = dist.name
        self._dist = dist
        self.formula = formula
        self._rhs = rhs
        self._design_info = design_info
        self.conf_level = conf_level
        self.response = response
        self._columns = columns
        self._X, self._t1, self._t2, self._status, self._w = X, t1, t2, status, weights
        self.iterations = int(fit.iterations)
        self.converged = bool(fit.converged)
        self.loglik = float(fit.loglik + logcorrect)
        self.loglik_null = float(fit.loglik_null + logcorrect)
        fixed = dist.fixed_scale is not None
        self._fixed = fixed
        pnames = list(names) + ([] if fixed else [_SCALE])
        self.params = pd.Series(fit.coef, index=pnames, name="coef")
        self.cov = pd.DataFrame(fit.var, index=pnames, columns=pnames)
        self.coef = self.params.iloc[: len(names)].copy()
        self.scale = float(dist.fixed_scale) if fixed else float(np.exp(fit.coef[-1]))
        self.counts = dict(counts)
        self.counts["n_dropped"] = int(n_dropped)
        self.n_dropped = int(n_dropped)
        self.summary = self._make_summary()

    # ------------------------------------------------------------------------------------
    def _make_summary(self) -> pd.DataFrame:
        z = z_value(self.conf_level)
        coef = self.params.to_numpy()
        se = np.sqrt(np.diag(self.cov.to_numpy()))
        with np.errstate(divide="ignore", invalid="ignore"):
            zz = coef / se
        lo, hi = coef - z * se, coef + z * se
        is_scale = np.array([n == _SCALE for n in self.params.index])
        tr = np.where(is_scale, np.nan, np.exp(coef))
        return pd.DataFrame(
            {
                "coef": coef,
                "se": se,
                "z": zz,
                "p_value": 2.0 * stats.norm.sf(np.abs(zz)),
                "ci_lower": lo,
                "ci_upper": hi,
                "time_ratio": tr,
                "time_ratio_lower": np.where(is_scale, np.nan, np.exp(lo)),
                "time_ratio_upper": np.where(is_scale, np.nan, np.exp(hi)),
            },
            index=pd.Index(self.params.index, name="term"),
        )

    @property
    def shape(self) -> float:
        """Weibull shape 1 / sigma (hazard increasing when > 1). Only for Weibull and exponential."""
        if self.dist not in ("weibull", "exponential"):
            raise ValueError(f"shape is the Weibull shape 1/scale; this model is {self.dist!r}")
        return 1.0 / self.scale

    @property
    def n(self) -> int:
        return int(self.counts["n"])

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
        patsy = _patsy()
        if isinstance(profiles, dict):
            profiles = pd.DataFrame(profiles)
        if not isinstance(profiles, pd.DataFrame):
            raise TypeError(f"profiles must be a DataFrame (one row per covariate profile), got {type(profiles).__name__}")
        needed = formula_variables(_factor_codes(self._rhs), pd.Index(self._columns))
        missing = [c for c in needed if c not in profiles.columns]
        if missing:
            raise ValueError(f"profiles lacks column(s) used by the formula: {', '.join(map(str, missing))}")
        frame = profiles.reset_index(drop=True)
        na = frame[needed].isna().any(axis=1).to_numpy() if needed else np.zeros(len(frame), dtype=bool)
        if na.any():
            raise ValueError(f"profiles: row(s) {', '.join(map(str, np.flatnonzero(na)[:5] + 1))} have a missing "
                             "value in a column used by the formula")
        try:
            (X,) = patsy.build_design_matrices([self._design_info], frame, NA_action="raise")
        except patsy.PatsyError as err:
            raise ValueError(f"profiles cannot be used with formula '~ {self._rhs}': {err}") from None
        return frame, np.asarray(X, dtype=float)

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
            Indexed by term: ``hr, log_hr, se, z, p_value, ci_lower, ci_upper``.
        """
        if self.dist not in ("weibull", "exponential"):
            raise ValueError(
                f"hazard ratios need proportional hazards, which only the Weibull (and exponential) AFT model has; "
                f"this model is {self.dist!r}: report time ratios (summary['time_ratio']) instead"
            )
        names = [n for n in self.coef.index if n != _INTERCEPT]
        V = self.cov.to_numpy()
        z = z_value(self.conf_level)
        rows = []
        p = len(self.coef)
        for name in names:
            j = self.coef.index.get_loc(name)
            b = float(self.coef.iloc[j])
            g = np.zeros(V.shape[0])
            g[j] = -1.0 / self.scale
            if not self._fixed:
                g[p] = b / self.scale
            log_hr = -b / self.scale
            se = float(np.sqrt(g @ V @ g))
            rows.append({"term": name, "hr": np.exp(log_hr), "log_hr": log_hr, "se": se, "z": log_hr / se,
                         "p_value": 2.0 * stats.norm.sf(abs(log_hr / se)),
                         "ci_lower": np.exp(log_hr - z * se), "ci_upper": np.exp(log_hr + z * se)})
        cols = ["hr", "log_hr", "se", "z", "p_value", "ci_lower", "ci_upper"]
        if not rows:
            return pd.DataFrame(columns=cols, index=pd.Index([], name="term"))
        return pd.DataFrame(rows).set_index("term")[cols]

    # ------------------------------------------------------------------------------------
    def plot(self, ax=None, profiles: pd.DataFrame | None = None, *, times: Sequence[float] | None = None,
             nonparametric: bool = True, labels: Sequence[str] | None = None):
        """Fitted survival curves over the nonparametric estimate of the same data.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on (default: the current axes).
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
            needed = formula_variables(_factor_codes(self._rhs), pd.Index(self._columns))
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
            from .kaplan_meier import kaplan_meier

            df = pd.DataFrame({"t": self._t1, "e": self._status == EXACT, "w": self._w})
            km = kaplan_meier(df, "t", "e", weights="w", conf_type="none")
            tb = km.table
            step_curve(ax, tb["time"].to_numpy(), tb["survival"].to_numpy(), start=1.0, color="0.5",
                       label="Kaplan-Meier")
        else:
            from .turnbull import turnbull

            lo = np.where(self._status == LEFT, 0.0, self._t1)
            up = np.where(self._status == RIGHT, np.inf, np.where(self._status == INTERVAL, self._t2, self._t1))
            df = pd.DataFrame({"lo": lo, "up": up, "w": self._w})
            tb = turnbull(df, "lo", "up", weights="w", n_boot=0).table
            step_curve(ax, tb["time"].to_numpy(), tb["survival"].to_numpy(), start=1.0, color="0.5",
                       label="Turnbull")

    def __repr__(self) -> str:
        head = (f"AFTResult({self._dist.label} AFT, formula '~ {self._rhs}', n={self.n}, "
                f"loglik={self.loglik:.4f}, scale={self.scale:.5g}, iterations={self.iterations}"
                f"{'' if self.converged else ', NOT converged'})")
        return head + "\n" + self.summary[["coef", "se", "p_value", "time_ratio"]].to_string()


# ----------------------------------------------------------------------------------------
# the function
# ----------------------------------------------------------------------------------------
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
    maxiter: int = 30,
    rel_tolerance: float = 1e-9,
) -> AFTResult:
    """Parametric accelerated failure time model, as R's ``survreg``.

    log T = x'beta + sigma W, with W standard extreme value (Weibull), normal (log-normal)
    or logistic (log-logistic); maximum likelihood by Newton-Raphson on (beta, log sigma)
    with analytic first and second derivatives, R's starting values, step halving and
    convergence rule (relative change in the log-likelihood <= ``rel_tolerance``), so that
    coefficients, standard errors, scale, log-likelihoods and iteration counts agree with
    ``survreg(Surv(...) ~ ..., dist = dist, control = survreg.control(maxiter,
    rel.tolerance))``.

    Parameters
    ----------
    formula : str
        Right-hand side in patsy syntax, e.g. ``"~ rapamycin + age + C(route)"``; an
        intercept is included (named ``"(Intercept)"``, as in R) unless removed with
        ``- 1``. Strings, booleans and ``C()`` terms are factors with treatment contrasts
        against their first level (sorted values, or the category order of a pandas
        Categorical, like R's factors).
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
        Rows with a missing value in a column used raise an error saying how many and
        where; with ``dropna=True`` they are dropped and counted in ``n_dropped``.
    maxiter, rel_tolerance : int, float
        R's ``survreg.control(maxiter = 30, rel.tolerance = 1e-9)``.

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
    >>> fit.summary[["coef", "se", "time_ratio"]].round(3)
                  coef     se  time_ratio
    term
    (Intercept)  2.974  0.315      19.571
    rapamycin    0.738  0.444       2.092
    Log(scale)  -0.465  0.294         NaN
    >>> round(fit.loglik, 4), fit.iterations   # R: -33.70648, 5
    (-33.7065, 5)
    """
    patsy = _patsy()
    eval_env = patsy.EvalEnvironment.capture(1)
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
    rhs = _rhs(formula)
    codes = _factor_codes(rhs)
    table = "data"
    report = ValidationReport(table)
    roles = ({"duration": duration, "event": event} if right else {"lower": lower, "upper": upper})
    roles["weights"] = weights
    check_columns(report, table, data, roles)
    if not report.ok:
        raise DataValidationError(report)
    frame = data.reset_index(drop=True)
    n_input = len(frame)
    covariates = formula_variables(codes, frame.columns)

    miss_any = np.zeros(n_input, dtype=bool)
    if right:
        t = numeric_values(report, table, frame, duration, "duration")
        ev = _event(report, table, frame, event)
        if t is not None:
            with np.errstate(invalid="ignore"):
                nonpos = np.flatnonzero(t <= 0)
            if nonpos.size:
                report.add_rows(table, duration, nonpos, t[nonpos],
                                f"duration must be > 0 for a {dist} model (it is modelled on the log scale)")
        for col, role in ((duration, "duration"), (event, "event")):
            miss = frame[col].isna().to_numpy()
            missing_problem(report, table, col, role, miss, dropna)
            miss_any |= miss
        status = t1 = t2 = None
        if t is not None and ev is not None:
            status = np.where(ev == 1.0, EXACT, RIGHT).astype(np.int64)
            t1 = t
            t2 = np.full(n_input, np.nan)
    else:
        lo, up = bound_values(report, table, frame, lower, upper)
        status = t1 = t2 = None
        if lo is not None and up is not None:
            status, t1, t2, miss = interval_status(report, table, lo, up, lower, upper, positive=True)
            missing_problem(report, table, f"{lower}, {upper}", "bound in both columns", miss, dropna,
                            " (lower and upper both NaN: no information)")
            miss_any |= miss
    w = None
    if weights is not None:
        w, miss = weight_values(report, table, frame, weights, dropna)
        miss_any |= miss
    for col in covariates:
        miss = frame[col].isna().to_numpy()
        missing_problem(report, table, col, "covariate value", miss, dropna)
        miss_any |= miss
    if not report.ok:
        raise DataValidationError(report)

    keep = ~miss_any
    n_dropped = int(miss_any.sum())
    if not keep.any():
        raise ValueError(f"{table}: no rows left to analyse ({n_input} row(s) in, {n_dropped} dropped for missing values)")
    sub = frame.loc[keep, covariates].reset_index(drop=True)
    for col in covariates:
        sub[col] = _as_categorical(sub[col])
    try:
        Xdf = patsy.dmatrix(rhs, sub, NA_action="raise", return_type="dataframe", eval_env=eval_env)
    except patsy.PatsyError as err:
        raise ValueError(
            f"formula '~ {rhs}' cannot be evaluated on the data ({err}); columns are: "
            f"{', '.join(map(str, frame.columns[:30]))}"
        ) from None
    X = Xdf.to_numpy(dtype=float)
    names = [_r_name(c) for c in Xdf.columns]
    if X.shape[1] == 0:
        raise ValueError(f"formula '~ {rhs}' has no terms: keep the intercept or add a covariate")
    bad = ~np.isfinite(X)
    if bad.any():
        cols = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
        raise ValueError(f"formula term(s) {', '.join(cols)} evaluate to infinite or missing values "
                         f"in {int(bad.any(axis=1).sum())} row(s)")
    _check_rank(X, names)

    status = status[keep]
    t1, t2 = t1[keep], t2[keep]
    wk = np.ones(status.size) if w is None else w[keep]
    y1 = np.log(t1)
    with np.errstate(divide="ignore", invalid="ignore"):
        y2 = np.log(t2)
    dobj = DISTRIBUTIONS[dist]
    fit = fit_survreg(dobj, X, y1, y2, status, wk, maxiter=int(maxiter), rel_tolerance=float(rel_tolerance))
    exact = status == EXACT
    logcorrect = -float(np.sum(wk[exact] * y1[exact]))
    if not fit.converged:
        warnings.warn(
            f"aft: Newton-Raphson did not converge in maxiter={maxiter} iterations (as R's 'Ran out of iterations "
            "and did not converge'); the estimates are not reliable: check for a covariate that separates events "
            "from censored rows, or raise maxiter",
            AFTConvergenceWarning,
            stacklevel=2,
        )
    counts = {"n": int(status.size)}
    for code, label in STATUS_NAMES.items():
        counts[label] = int(np.sum(status == code))
    return AFTResult(
        dist=dobj, formula=formula, rhs=rhs, design_info=Xdf.design_info, names=names, fit=fit,
        conf_level=conf_level, counts=counts, n_dropped=n_dropped, response="right" if right else "interval",
        columns=list(frame.columns), X=X, t1=t1, t2=t2, status=status, weights=wk, logcorrect=logcorrect,
    )


def _as_categorical(s: pd.Series) -> pd.Series:
    """Strings and booleans as a pandas Categorical with sorted levels (what patsy would
    use, R's factor order), so that patsy codes them without a Python loop per row; unused
    categories of a Categorical are dropped (as R drops levels with no rows)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.cat.remove_unused_categories()
    if pd.api.types.is_bool_dtype(s.dtype):
        return pd.Series(pd.Categorical(s, categories=[v for v in (False, True) if (s == v).any()]), name=s.name)
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        values = s.dropna()
        if len(values) and all(isinstance(v, str) for v in values.unique()):
            return pd.Series(pd.Categorical(s, categories=sorted(values.unique())), name=s.name)
    return s


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
