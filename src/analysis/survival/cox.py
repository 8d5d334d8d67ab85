"""Cox proportional-hazards regression, agreeing with R's ``survival::coxph``.

Efron and Breslow ties, strata, case weights, delayed entry / counting-process data
``(entry, duration]`` and cluster-robust (grouped dfbeta sandwich) variance, in any
combination; tests, proportional-hazards test (``cox.zph``), predicted survival curves
(``survfit.coxph``) and baseline hazard (``basehaz``). See ``docs/cox.md`` for the
formulas, conventions and their sources; the numerics are in ``_cox_engine.py``.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..problems import DataValidationError, ValidationReport
from ._common import Grouping, check_choice, check_conf_level, prepare, z_value
from ._confint import CONF_TYPES, survival_confint
from ._cox_engine import (
    EPS,
    ITER_MAX,
    TOLER_CHOL,
    TOLER_INF,
    Problem,
    RiskSets,
    newton_raphson,
    schoenfeld,
    score_residuals,
    survfit_curves,
    wald_test,
)
from ._plotting import get_ax

__all__ = ["CoxResult", "CoxConvergenceWarning", "cox"]

TIES = ("efron", "breslow")
_ROWS_SHOWN = 5


class CoxConvergenceWarning(UserWarning):
    """The Newton-Raphson iteration did not converge, or a coefficient may be infinite."""


# ----------------------------------------------------------------------------------------
# formula -> design matrix (patsy)
# ----------------------------------------------------------------------------------------
#: names a formula may use besides the data's columns (patsy adds C, I, Q, center, ...)
_FORMULA_NAMES = {"np": np, "log": np.log, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs}
_PATSY_BUILTINS = {
    "C", "I", "Q", "center", "standardize", "scale", "bs", "cr", "cc", "te", "Treatment", "Sum",
    "Helmert", "Poly", "Diff", "ContrastMatrix", "True", "False", "None",
}


def _parse_formula(formula: str):
    import patsy

    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string such as 'rapamycin + age + C(route)', got {type(formula).__name__}")
    text = formula.strip()
    if "~" in text:
        lhs, _, rhs = text.partition("~")
        if lhs.strip():
            raise ValueError(
                f"formula {formula!r}: give only the right-hand side (the covariates); the survival "
                "outcome is given by duration=, event= (and entry=)"
            )
        text = rhs.strip()
    if not text:
        text = "1"
    try:
        desc = patsy.ModelDesc.from_formula(text)
    except patsy.PatsyError as err:
        raise ValueError(f"formula {formula!r} could not be parsed: {err}") from None
    terms = [t for t in desc.rhs_termlist if t != patsy.INTERCEPT]
    return patsy.ModelDesc([], [patsy.INTERCEPT, *terms]), terms


def _factor_variables(code: str) -> list[str]:
    """Names a patsy factor's code refers to (``Q("a.b")`` counts as ``a.b``)."""
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError:
        return []
    skip: set[int] = set()
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            skip.add(id(node.func))
            if isinstance(node.func, ast.Name) and node.func.id == "Q" and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.append(arg.value)
        elif isinstance(node, ast.Attribute):
            skip.add(id(node.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in skip:
            names.append(node.id)
    return names


def _formula_columns(terms, columns: pd.Index) -> tuple[list[str], list[str]]:
    """(columns used, names that are neither a column nor a known function)."""
    used: list[str] = []
    unknown: list[str] = []
    for term in terms:
        for factor in term.factors:
            for name in _factor_variables(factor.name()):
                if name in columns:
                    if name not in used:
                        used.append(name)
                elif name not in _FORMULA_NAMES and name not in _PATSY_BUILTINS and name not in unknown:
                    unknown.append(name)
    return used, unknown


def _patsy_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns patsy can read: nullable booleans, integers and floats as numpy dtypes."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        dt = s.dtype
        if isinstance(dt, pd.BooleanDtype):
            out[col] = s.to_numpy(dtype=bool)
        elif isinstance(dt, pd.api.extensions.ExtensionDtype) and pd.api.types.is_numeric_dtype(dt):
            out[col] = s.to_numpy(dtype=np.float64, na_value=np.nan)
        elif isinstance(dt, pd.StringDtype):
            out[col] = s.to_numpy(dtype=object)
        else:
            out[col] = s.to_numpy() if not isinstance(dt, pd.CategoricalDtype) else s.array
    return pd.DataFrame(out, index=frame.index)


def _eval_env():
    import patsy

    return patsy.EvalEnvironment([dict(_FORMULA_NAMES)])


class _Design:
    """Design matrix of a formula (no intercept column) and its term structure."""

    def __init__(self, desc, frame: pd.DataFrame):
        import patsy

        try:
            with np.errstate(all="ignore"):  # non-finite results are reported by the caller
                dm = patsy.dmatrix(desc, frame, eval_env=_eval_env(), NA_action=patsy.NAAction(NA_types=[]),
                                   return_type="matrix")
        except patsy.PatsyError as err:
            raise ValueError(f"formula could not be evaluated on the data: {err}") from None
        info = dm.design_info
        self.info = info
        self.columns = list(info.column_names[1:])
        self.X = np.asarray(dm, dtype=np.float64)[:, 1:]
        self.terms: dict[str, list[int]] = {}
        for name, sl in info.term_name_slices.items():
            if name == "Intercept":
                continue
            self.terms[name] = list(range(sl.start - 1, sl.stop - 1))

    def build(self, frame: pd.DataFrame) -> np.ndarray:
        import patsy

        (dm,) = patsy.build_design_matrices([self.info], _patsy_ready(frame), NA_action="raise",
                                            return_type="matrix")
        return np.asarray(dm, dtype=np.float64)[:, 1:]


# ----------------------------------------------------------------------------------------
# result
# ----------------------------------------------------------------------------------------
class CoxResult:
    """A fitted Cox proportional-hazards model.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per model column (patsy's names), as R's ``summary(coxph)``: ``coef``
        (log hazard ratio), ``se`` (model-based), ``robust_se`` (only with a robust
        variance), ``hr`` = exp(coef), ``hr_lower``, ``hr_upper``, ``z``, ``p_value``.
        Intervals, z and p use the robust standard error when there is one, as R does.
        A column found redundant (collinear) has NaN, as R's NA.
    loglik : pandas.Series
        Log partial likelihood at 0 (``null``) and at the estimate (``model``).
    tests : pandas.DataFrame
        ``statistic, df, p_value`` of the ``likelihood_ratio``, ``wald`` and ``score``
        (log-rank) tests that all coefficients are 0, plus ``robust_score`` with a robust
        variance. The Wald test uses the robust variance when there is one (as R).
    vcov, naive_vcov : pandas.DataFrame
        The variance matrix used (robust when ``robust``) and the model-based one.
    means : pandas.Series
        R's ``fit$means``: the weighted column means (right-censored data) or the
        unweighted column means (with ``entry``); the reference of ``baseline_hazard()``.
    n, n_events, n_dropped, n_clusters : int
        Rows used, events among them, rows dropped for missing values (``dropna=True``)
        and clusters of the robust variance (0 without).
    iterations, converged : int, bool
        Newton-Raphson iterations and whether the log likelihood converged.
    ties, robust, conf_level, strata_levels, terms
        Settings used; ``terms`` maps each formula term to its model columns.
    """

    def __init__(self, **kw):
        self.__dict__.update(kw)
        self._concordance: pd.Series | None = None

    # -- basic tables ----------------------------------------------------------------------
    @property
    def coef(self) -> pd.Series:
        """The log hazard ratios."""
        return self.summary["coef"]

    @property
    def hazard_ratios(self) -> pd.Series:
        """exp(coef)."""
        return self.summary["hr"]

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
            return np.zeros(self.n)
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
        needed = [c for c in self._formula_vars if c not in profiles.columns]
        if needed:
            raise ValueError(f"profiles lacks the formula column(s) {needed}; it has {list(profiles.columns)}")
        if self._design is None:
            X2 = np.zeros((len(profiles), 0))
        else:
            try:
                X2 = self._design.build(profiles[self._formula_vars])
            except Exception as err:  # patsy errors for unknown levels or missing values
                raise ValueError(f"profiles could not be turned into model columns: {err}") from None
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
            eta = d["Xc"] @ b if b.size else np.zeros(self.n)
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
        uncertainty of the coefficients through ``vcov`` (robust when ``robust``), as R's
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
        V = np.nan_to_num(self.vcov.to_numpy()) if b.size else np.zeros((0, 0))
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
            U = (self._data["w"][:, None] * U) @ np.nan_to_num(self.naive_vcov.to_numpy())
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
        """Forest plot: hazard ratio and interval per column on a log scale, line at 1.

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = get_ax(ax)
        s = self.summary if columns is None else self.summary.loc[list(columns)]
        s = s[np.isfinite(s["hr"])]
        y = np.arange(len(s))[::-1]
        lo = s["hr"] - s["hr_lower"]
        hi = s["hr_upper"] - s["hr"]
        ax.errorbar(s["hr"], y, xerr=[lo, hi], fmt="s", color="black", ecolor="black", capsize=3, markersize=5)
        ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_yticks(y)
        ax.set_yticklabels(list(s.index))
        kind = "robust " if self.robust else ""
        ax.set_xlabel(f"hazard ratio ({100 * self.conf_level:g}% {kind}interval)")
        ax.set_ylim(-0.7, len(s) - 0.3)
        return ax

    def __repr__(self) -> str:
        tests = self.tests.round(4).to_string() if len(self.tests) else ""
        return (
            f"CoxResult(n={self.n}, events={self.n_events}, ties={self.ties!r}, robust={self.robust}, "
            f"strata={len(self.strata_levels) or None}, clusters={self.n_clusters or None}, "
            f"converged={self.converged})\n{self.summary.round(4).to_string()}\n{tests}"
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


def _missing_problems(report, table, frame, columns, role, dropna) -> np.ndarray:
    miss_any = np.zeros(len(frame), dtype=bool)
    for col in columns:
        miss = frame[col].isna().to_numpy()
        k = int(miss.sum())
        if k:
            miss_any |= miss
            if not dropna:
                rows = np.flatnonzero(miss)[:_ROWS_SHOWN] + 1
                more = ", ..." if k > _ROWS_SHOWN else ""
                report.add_table_problem(
                    table,
                    f"{k} row(s) have a missing {role} value (row {', '.join(map(str, rows))}{more}); "
                    "pass dropna=True to drop them (the result then records how many rows were dropped)",
                    column=str(col),
                )
    return miss_any


# ----------------------------------------------------------------------------------------
# the estimator
# ----------------------------------------------------------------------------------------
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
    eps: float = EPS,
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
        Right-hand side in patsy syntax, e.g. ``"rapamycin + age + C(route)"``;
        interactions (``a:b``, ``a*b``), ``C()``, ``I()``, ``Q("odd name")`` and ``np.``,
        ``log``, ``exp``, ``sqrt`` functions are allowed. No intercept column is made; a
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
        Missing values in any column used are an error saying how many rows and which
        column; ``dropna=True`` drops those rows and counts them in ``n_dropped``.
    max_iter, eps, toler_chol : int, float, float
        R's ``coxph.control(iter.max=20, eps=1e-9, toler.chol=.Machine$double.eps^.75)``.
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
    >>> fit.summary[["coef", "hr", "se", "p_value"]].round(4)
                 coef      hr      se  p_value
    term
    rapamycin -1.6464  0.1927  1.1245   0.1431
    >>> fit.tests.round(3)
                      statistic  df  p_value
    likelihood_ratio      2.747   1    0.097
    wald                  2.144   1    0.143
    score                 2.650   1    0.104
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    check_choice("ties", ties, TIES)
    conf_level = check_conf_level(conf_level)
    strata_cols = _as_list(strata, "strata")
    desc, terms = _parse_formula(formula)
    report = ValidationReport(table)
    used, unknown = _formula_columns(terms, data.columns)
    for name in unknown:
        report.add_table_problem(
            table, f"formula refers to '{name}', which is not a column; columns are: "
            f"{', '.join(map(str, data.columns[:30]))}", column=name)
    for role, cols in (("strata", strata_cols), ("cluster", _as_list(cluster, "cluster"))):
        for col in cols:
            if col not in data.columns:
                report.add_table_problem(
                    table, f"{role} column not found; columns are: {', '.join(map(str, data.columns[:30]))}", column=col)
    if not report.ok:
        raise DataValidationError(report)

    needed = list(dict.fromkeys([c for c in [duration, event, entry, weights, *used, *strata_cols, cluster]
                                 if c is not None and c in data.columns]))
    frame = data[needed].reset_index(drop=True)
    miss = _missing_problems(report, table, frame, used, "covariate", dropna)
    miss |= _missing_problems(report, table, frame, strata_cols, "strata", dropna)
    if cluster is not None:
        miss |= _missing_problems(report, table, frame, [cluster], "cluster", dropna)
    try:
        sd = prepare(frame, duration, event, entry=entry, weights=weights, dropna=dropna, table=table)
    except DataValidationError as err:
        err.report.extend(report)
        raise DataValidationError(err.report) from None
    if not report.ok:
        raise DataValidationError(report)
    pos = sd.index.to_numpy()
    sub = ~miss[pos]
    rows = pos[sub]
    n_input = len(data)
    if rows.size == 0:
        raise ValueError(f"{table}: no rows left to analyse ({n_input} row(s) in, all dropped for missing values)")
    dropped_by_column = dict(sd.dropped_by_column)
    for col in [*used, *strata_cols, *([cluster] if cluster else [])]:
        k = int(frame[col].isna().sum())
        if k:
            dropped_by_column[str(col)] = k
    n_dropped = n_input - rows.size
    stop = sd.time[sub]
    ev = sd.event[sub]
    ent = sd.entry[sub] if sd.entry is not None else None
    w = sd.weights[sub] if sd.weights is not None else np.ones(rows.size)
    integer_weights = sd.weights is None or bool(np.all(w == np.floor(w)))
    if not ev.any():
        raise ValueError(f"{table}: no events among the {rows.size} row(s) used; a Cox model needs at least one event")

    # design
    fsub = frame if rows.size == len(frame) else frame.iloc[rows]
    design = None
    if terms:
        design = _Design(desc, _patsy_ready(fsub[used]))
        X = design.X
        bad = ~np.isfinite(X)
        if bad.any():
            r_idx, c_idx = np.nonzero(bad)
            for j in np.unique(c_idx):
                rr = r_idx[c_idx == j]
                report.add_rows(table, design.columns[j], rows[rr], X[rr, j],
                                "model column is not a finite number (check the formula's transforms)")
            raise DataValidationError(report)
        columns = design.columns
    else:
        X = np.zeros((rows.size, 0))
        columns = []
    p = X.shape[1]

    # strata and clusters
    if strata_cols:
        s_codes, s_levels = _strata_grouping(fsub, strata_cols)
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
        warnings.warn("cluster given with robust=False: the cluster is ignored (as R's coxph)", UserWarning,
                      stacklevel=2)
    if robust:
        if has_cluster:
            cl_codes, cl_levels = pd.factorize(fsub[cluster].to_numpy(), sort=True)
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
    Xs = Xc * scale
    rs = RiskSets(stop, ev, ent, s_codes, max(len(s_levels), 1))
    prob = Problem(Xs, w, rs, ties == "efron")
    nr = newton_raphson(prob, np.zeros(p), counting=ent is not None, max_iter=max_iter, eps=eps,
                        toler_chol=toler_chol)
    beta = nr.beta * scale
    var = nr.var * np.outer(scale, scale)
    singular = np.zeros(p, dtype=bool)
    if p and nr.rank < p:
        singular = np.diag(var) == 0
    u_final = nr.u / scale if p else nr.u
    if p and max_iter > 1:
        if not nr.converged:
            warnings.warn("Ran out of iterations and did not converge (max_iter="
                          f"{max_iter}); the estimates are those of the last good step", CoxConvergenceWarning,
                          stacklevel=2)
        else:
            step = np.abs(u_final @ var)
            if ent is None:
                infs = ~np.isfinite(u_final) | ((step > eps) & (step > TOLER_INF * np.abs(beta)))
            else:
                infs = ~np.isfinite(u_final) | (step > TOLER_INF * (1 + np.abs(beta)))
            if infs.any():
                names = ", ".join(columns[i] for i in np.flatnonzero(infs))
                warnings.warn(f"Loglik converged before column(s) {names}; coefficient may be infinite",
                              CoxConvergenceWarning, stacklevel=2)
    coef = np.where(singular, np.nan, beta)
    if singular.any():
        warnings.warn("X matrix deemed to be singular; column(s) " + ", ".join(
            columns[i] for i in np.flatnonzero(singular)) + " get NaN (collinear with the others)", UserWarning,
            stacklevel=2)

    naive_var = var
    robust_var = None
    rscore = None
    if robust and p:
        U = score_residuals(prob, nr.beta, nr.state) / scale
        dfb = (w[:, None] * U) @ var
        B = np.empty((n_clusters, p))
        for k in range(p):
            B[:, k] = np.bincount(cl_codes, dfb[:, k], minlength=n_clusters)
        robust_var = B.T @ B
        U0 = score_residuals(prob, np.zeros(p), nr.state0) / scale
        B0 = np.empty((n_clusters, p))
        for k in range(p):
            B0[:, k] = np.bincount(cl_codes, w * U0[:, k], minlength=n_clusters)
        rscore, _ = wald_test(B0.T @ B0, B0.sum(axis=0), toler_chol)
    used_var = robust_var if robust_var is not None else naive_var

    # summary
    z = z_value(conf_level)
    se = np.sqrt(np.diag(naive_var)) if p else np.zeros(0)
    se = np.where(singular, np.nan, se)
    tab = {"coef": coef, "se": se}
    if robust_var is not None:
        tab["robust_se"] = np.where(singular, np.nan, np.sqrt(np.diag(robust_var)))
    use_se = tab.get("robust_se", se)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        zz = coef / use_se
        tab.update({
            "hr": np.exp(coef),
            "hr_lower": np.exp(coef - z * use_se),
            "hr_upper": np.exp(coef + z * use_se),
            "z": zz,
            "p_value": stats.chi2.sf(zz**2, 1),
        })
    summary = pd.DataFrame(tab, index=pd.Index(columns, name="term"))
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
        model="cox",
        summary=summary,
        loglik=pd.Series({"null": nr.loglik0, "model": nr.loglik}),
        tests=tests,
        vcov=pd.DataFrame(used_var, index=columns, columns=columns),
        naive_vcov=pd.DataFrame(naive_var, index=columns, columns=columns),
        means=pd.Series(r_means, index=columns, dtype=float),
        columns=columns,
        terms=dict(design.terms) if design is not None else {},
        formula=formula,
        n=int(rows.size),
        n_events=int(ev.sum()),
        n_dropped=int(n_dropped),
        dropped_by_column=dropped_by_column if n_dropped else {},
        n_clusters=int(n_clusters) if robust else 0,
        iterations=int(nr.iterations),
        converged=bool(nr.converged),
        ties=ties,
        robust=robust,
        conf_level=conf_level,
        strata_columns=strata_cols,
        strata_levels=list(s_levels),
        cluster_column=cluster if robust else None,
        weights_column=weights,
        entry_column=entry,
        duration_column=duration,
        event_column=event,
        _design=design,
        _formula_vars=used,
        _problem=prob,
        _beta_work=nr.beta,
        _scale=scale,
        _center=center,
        _curve_cache=None,
        _data={"Xc": Xc, "w": w, "stop": stop, "event": ev, "entry": ent, "strata": s_codes,
               "index": data.index[rows], "cluster": cl_codes},
    )
