"""What the response models share beyond the kernel: the delta method, average marginal
effects and counterfactual risk differences of the categorical-outcome models, and the old
summary column names kept for one release.

The coefficient tables, formulas, argument checks and the results base class are the
kernel's (:mod:`analysis._kernel`); this module holds only what is specific to the
response models.

A categorical-outcome model (logistic, ordinal, multinomial) provides

* ``params`` and ``cov`` (the convention's; ``_theta`` and ``_cov`` are their arrays);
* ``_probs(theta, X)``: an ``(n, K)`` array of predicted probabilities (K = 1 for the
  logistic model: P(outcome = 1));
* ``_dprobs(theta, X, dX)``: the derivative of ``_probs`` along the direction ``dX`` of the
  covariates (analytic, so marginal effects need no nested numerical derivative).

Average marginal effects and risk differences are then functions g(theta); their standard
errors come from the delta method, ``J V J'``, with J the Jacobian of g at the estimate by
central differences (g is analytic in theta, so the differences are accurate to about
1e-9 relative).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .._kernel import ConvergenceWarning, ModelFrame, coef_table, design_for, with_aliases, z_value

__all__ = [
    "CategoricalModelMixin",
    "DELTA_ALIASES",
    "ODDS_RATIO_ALIASES",
    "RRR_ALIASES",
    "STATISTIC_ALIASES",
    "delta_table",
    "numerical_jacobian",
    "warn_not_converged",
]

#: summary column names of the previous release -> the convention's (docs/api.md)
STATISTIC_ALIASES = {"z": "statistic"}
ODDS_RATIO_ALIASES = {**STATISTIC_ALIASES, "odds_ratio": "ratio", "odds_ratio_ci_lower": "ratio_lower",
                      "odds_ratio_ci_upper": "ratio_upper"}
RRR_ALIASES = {**STATISTIC_ALIASES, "rrr": "ratio", "rrr_ci_lower": "ratio_lower", "rrr_ci_upper": "ratio_upper"}
#: marginal effects, risk differences
DELTA_ALIASES = STATISTIC_ALIASES


def warn_not_converged(what: str, detail: str = "", *, stacklevel: int = 3) -> None:
    """Issue the package's :class:`~analysis.ConvergenceWarning` for a fit that stopped
    before converging."""
    tail = f" ({detail})" if detail else ""
    warnings.warn(f"{what}: the fit did not converge{tail}; its estimates and standard errors may be wrong",
                  ConvergenceWarning, stacklevel=stacklevel)


def numerical_jacobian(fun, theta: np.ndarray, *, rel_step: float = 1e-6) -> np.ndarray:
    """Jacobian of a vector function by central differences (rows: outputs)."""
    theta = np.asarray(theta, dtype=float)
    f0 = np.atleast_1d(fun(theta))
    J = np.empty((f0.size, theta.size))
    for j in range(theta.size):
        h = rel_step * max(1.0, abs(theta[j]))
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        J[:, j] = (np.atleast_1d(fun(tp)) - np.atleast_1d(fun(tm))) / (2.0 * h)
    return J


def delta_table(est: np.ndarray, J: np.ndarray, V: np.ndarray, conf_level: float) -> pd.DataFrame:
    """``estimate, se, statistic, p_value, ci_lower, ci_upper`` of g(theta) with Jacobian J
    (Wald, normal)."""
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", J, V, J), 0.0))
    return coef_table(range(len(est)), est, se, conf_level).rename(columns={"coef": "estimate"}).reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# variables of the right-hand side
# ---------------------------------------------------------------------------------------
def variable_kind(series: pd.Series) -> str:
    """"numeric" (marginal effect = derivative) or "discrete" (contrast between levels)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return "discrete"
    if isinstance(series.dtype, pd.CategoricalDtype):
        return "discrete"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "numeric"
    return "discrete"


def variable_levels(series: pd.Series) -> list:
    """Levels in R's order: False < True, Categorical order, otherwise sorted values."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return [v for v in (False, True) if (series == v).any()]
    if isinstance(series.dtype, pd.CategoricalDtype):
        present = set(series.dropna().unique())
        return [c for c in series.cat.categories if c in present]
    vals = pd.unique(series.dropna())
    try:
        return sorted(vals)
    except TypeError:
        return sorted(vals, key=str)


def _set_column(frame: pd.DataFrame, col: str, value) -> pd.DataFrame:
    out = frame.copy()
    s = frame[col]
    if isinstance(s.dtype, pd.CategoricalDtype):
        out[col] = pd.Categorical([value] * len(out), categories=s.cat.categories, ordered=s.cat.ordered)
    elif pd.api.types.is_bool_dtype(s.dtype):
        out[col] = np.full(len(out), bool(value))
    else:
        out[col] = pd.Series([value] * len(out), index=out.index, dtype=s.dtype if pd.api.types.is_numeric_dtype(s.dtype) else object)
    return out


class CategoricalModelMixin:
    """Predictions, average marginal effects and risk differences for the models whose
    outcome is categorical (logistic, ordinal, multinomial)."""

    _mf: ModelFrame
    conf_level: float
    params: pd.Series
    cov: pd.DataFrame
    #: weights of the rows in averages (None: equal)
    _weights: np.ndarray | None = None

    @property
    def _theta(self) -> np.ndarray:
        """The parameter vector (``params`` as an array)."""
        return self.params.to_numpy(dtype=float)

    @property
    def _cov(self) -> np.ndarray:
        """Its covariance (``cov`` as an array)."""
        return self.cov.to_numpy(dtype=float)

    @property
    def _prob_labels(self) -> list:  # pragma: no cover - subclasses define it
        """Labels of the K probability columns."""
        raise NotImplementedError

    # subclasses implement
    def _probs(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _dprobs(self, theta: np.ndarray, X: np.ndarray, dX: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------------------------
    def _avg(self, m: np.ndarray) -> np.ndarray:
        w = self._weights
        if w is None:
            return m.mean(axis=0)
        return (m * w[:, None]).sum(axis=0) / w.sum()

    def _frame_for(self, col: str) -> pd.DataFrame:
        if col not in self._mf.columns:
            raise ValueError(
                f"{col!r} is not a variable of the model; its variables are: {', '.join(self._mf.columns) or '(none)'}"
            )
        return self._mf.data

    def _design(self, frame: pd.DataFrame) -> np.ndarray:
        return design_for(self._mf, frame).to_numpy(dtype=float)

    def _numeric_direction(self, col: str) -> np.ndarray:
        """d X / d col for every row, by central differences of the design (exact for
        columns linear or quadratic in ``col``)."""
        frame = self._mf.data
        x = frame[col].to_numpy(dtype=float)
        sd = float(np.std(x)) if x.size > 1 else 0.0
        h = 1e-5 * (sd if sd > 0 else 1.0)
        up, down = frame.copy(), frame.copy()
        up[col] = x + h
        down[col] = x - h
        return (self._design(up) - self._design(down)) / (2.0 * h)

    def _prob_table(self, est, J, labels_rows: list[tuple], names: list[str]) -> pd.DataFrame:
        tab = delta_table(est, J, self._cov, self.conf_level)
        keys = pd.DataFrame(labels_rows, columns=names)
        return pd.concat([keys, tab], axis=1)

    # ------------------------------------------------------------------------------------
    def marginal_effects(self) -> pd.DataFrame:
        """Average marginal effects on each outcome probability, with delta-method CIs.

        For a numeric variable: the average over the rows of the derivative of the
        predicted probability with respect to the variable (through every term it enters,
        so ``I(age**2)`` and interactions are accounted for). For a boolean or categorical
        variable: the average change in predicted probability when every row is set to the
        level instead of the reference level (first level; False for booleans), i.e. a
        counterfactual risk difference. Rows are averaged with the model's weights, if any.
        Standard errors by the delta method with the model's covariance (robust for
        probability weights).

        Returns
        -------
        pandas.DataFrame
            One row per variable (or level) and outcome category: ``term``, ``variable``,
            ``contrast``, ``category``, ``estimate``, ``se``, ``statistic`` (estimate / se),
            ``p_value``, ``ci_lower``, ``ci_upper``; indexed by ``term`` (and ``category``
            for ordinal and multinomial models). The column ``z`` of the previous release
            still answers ``table["z"]`` for one release, with a DeprecationWarning.
        """
        X = self._mf.X.to_numpy(dtype=float)
        labels: list[tuple] = []
        funcs = []
        for col in self._mf.columns:
            s = self._mf.data[col]
            if variable_kind(s) == "numeric":
                dX = self._numeric_direction(col)
                funcs.append(lambda th, dX=dX: self._avg(self._dprobs(th, X, dX)))
                labels.append((col, col, f"d/d{col}"))
            else:
                levels = variable_levels(s)
                if len(levels) < 2:
                    continue
                X0 = self._design(_set_column(self._mf.data, col, levels[0]))
                for lv in levels[1:]:
                    X1 = self._design(_set_column(self._mf.data, col, lv))
                    funcs.append(lambda th, X1=X1, X0=X0: self._avg(self._probs(th, X1) - self._probs(th, X0)))
                    labels.append((f"{col}[{lv}]", col, f"{lv} vs {levels[0]}"))

        def g(theta):
            return np.concatenate([f(theta) for f in funcs]) if funcs else np.zeros(0)

        est = g(self._theta)
        J = numerical_jacobian(g, self._theta)
        K = len(self._prob_labels)
        rows = [(t, v, c, cat) for (t, v, c) in labels for cat in self._prob_labels]
        out = self._prob_table(est, J, rows, ["term", "variable", "contrast", "category"])
        return self._index(out, K)

    def _index(self, out: pd.DataFrame, K: int) -> pd.DataFrame:
        if K == 1:
            return with_aliases(out.drop(columns="category").set_index("term"), DELTA_ALIASES)
        return with_aliases(out.set_index(["term", "category"]), DELTA_ALIASES)

    def risk_difference(self, variable: str, *, exposed=None, unexposed=None) -> pd.DataFrame:
        """Counterfactual predicted probabilities with and without an exposure, their
        difference and ratio, with delta-method CIs.

        Every row is set to ``exposed`` and the predicted probabilities averaged (p1), then
        to ``unexposed`` (p0): the average treatment effect on the probability scale under
        the model (standardisation, or g-computation). Averaged with the model's weights.

        Parameters
        ----------
        variable : str
            A data column of the model (a boolean, 0/1 or categorical exposure such as
            ``"drug_rapamycin"``).
        exposed, unexposed : optional
            Values to compare; default True/False for a boolean, 1/0 for a numeric column,
            the second and first level for a categorical one (required when it has more
            than two levels).

        Returns
        -------
        pandas.DataFrame
            One row per outcome category and quantity: ``quantity`` in ``p_exposed``,
            ``p_unexposed``, ``difference`` (p1 - p0) and ``ratio`` (p1 / p0, its CI from
            the log scale), with ``estimate``, ``se``, ``statistic``, ``p_value`` (of
            difference 0, or ratio 1; NaN for p1 and p0), ``ci_lower``, ``ci_upper``.
        """
        frame = self._frame_for(variable)
        s = frame[variable]
        if exposed is None or unexposed is None:
            if pd.api.types.is_bool_dtype(s.dtype):
                e, u = True, False
            elif variable_kind(s) == "numeric":
                vals = set(np.unique(s.to_numpy(dtype=float)).tolist())
                if not vals <= {0.0, 1.0}:
                    raise ValueError(
                        f"{variable!r} takes values other than 0 and 1; pass exposed= and unexposed= to say which values to compare"
                    )
                e, u = 1, 0
            else:
                levels = variable_levels(s)
                if len(levels) != 2:
                    raise ValueError(
                        f"{variable!r} has {len(levels)} levels ({', '.join(map(str, levels[:6]))}); "
                        "pass exposed= and unexposed= to say which two to compare"
                    )
                u, e = levels
            exposed = e if exposed is None else exposed
            unexposed = u if unexposed is None else unexposed
        X1 = self._design(_set_column(frame, variable, exposed))
        X0 = self._design(_set_column(frame, variable, unexposed))
        K = len(self._prob_labels)

        def g(theta):
            p1 = self._avg(self._probs(theta, X1))
            p0 = self._avg(self._probs(theta, X0))
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.concatenate([p1, p0, p1 - p0, np.log(p1 / p0)])

        est = g(self._theta)
        J = numerical_jacobian(g, self._theta)
        quantities = ["p_exposed", "p_unexposed", "difference", "log_ratio"]
        rows = [(q, cat) for q in quantities for cat in self._prob_labels]
        tab = self._prob_table(est, J, rows, ["quantity", "category"])
        # p-values of p1 and p0 against 0 mean nothing
        tab.loc[tab["quantity"].isin(["p_exposed", "p_unexposed"]), ["statistic", "p_value"]] = np.nan
        ratio = tab["quantity"] == "log_ratio"
        for c in ("estimate", "ci_lower", "ci_upper"):
            tab.loc[ratio, c] = np.exp(tab.loc[ratio, c])
        tab.loc[ratio, "se"] = tab.loc[ratio, "se"] * tab.loc[ratio, "estimate"]  # delta method for the ratio
        tab.loc[ratio, "quantity"] = "ratio"
        tab.insert(0, "variable", variable)
        tab.insert(1, "exposed", str(exposed))
        tab.insert(2, "unexposed", str(unexposed))
        if K == 1:
            tab = tab.drop(columns="category")
            return with_aliases(tab.set_index("quantity"), DELTA_ALIASES)
        return with_aliases(tab.set_index(["quantity", "category"]), DELTA_ALIASES)

    # ------------------------------------------------------------------------------------
    def _predict_probs(self, profiles: pd.DataFrame) -> pd.DataFrame:
        """Predicted probabilities of every outcome category for each profile, with
        delta-method intervals (computed on the logit of each probability, so the limits
        stay in (0, 1))."""
        X = self._design(profiles)

        def g(theta):
            p = self._probs(theta, X)
            return np.log(p / (1.0 - p)).ravel()  # row-major: profile, category

        est = g(self._theta)
        J = numerical_jacobian(g, self._theta)
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", J, self._cov, J), 0.0))
        z = z_value(self.conf_level)
        expit = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
        n, K = X.shape[0], len(self._prob_labels)
        p = expit(est)
        out = pd.DataFrame(
            {
                "profile": np.repeat(np.arange(n), K),
                "category": np.tile(np.array(self._prob_labels, dtype=object), n),
                "probability": p,
                "se": se * p * (1.0 - p),
                "ci_lower": expit(est - z * se),
                "ci_upper": expit(est + z * se),
            }
        )
        return out



#: what ``plot(kind=...)`` of a longitudinal model (mixed, GEE) draws
LONGITUDINAL_PLOT_KINDS = ("estimates", "trajectories")


def longitudinal_plot(result, ax, kind: str, data, *, ratio_label: str, model_name: str):
    """The plot of a mixed or GEE result: the coefficients with their intervals
    (``kind="estimates"``, the intercept left out) or individual trajectories with the
    model's mean and band (``kind="trajectories"``, needs the model's ``time``)."""
    from .._kernel import check_choice, coefficient_plot, get_ax

    check_choice("kind", kind, LONGITUDINAL_PLOT_KINDS)
    if kind == "estimates":
        tab = result.summary.drop(index="Intercept", errors="ignore")
        return coefficient_plot(get_ax(ax), tab, xlabel=f"{ratio_label} ({result.conf_level:.0%} CI)")
    from .trajectory import trajectory_plot

    if result.time is None:
        raise ValueError(f"plot(kind='trajectories') needs the time variable: fit with {model_name}(..., time='day') "
                         "or use trajectory_plot")
    return trajectory_plot(result._mf.data if data is None else data, time=result.time, score=result.outcome,
                           cluster=result.cluster, model=result, ax=ax)
