"""Does early improvement predict response? Sensitivity, specificity, predictive values
with Wilson intervals, and the ROC curve with its AUC and DeLong interval (as R's pROC).

See ``docs/response.md`` section 9.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._kernel import check_conf_level, get_ax, z_value

__all__ = ["EarlyResponseResult", "early_response", "wilson_interval", "delong_auc"]


def wilson_interval(k: float, n: float, conf_level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n, as R's
    ``prop.test(k, n, correct = FALSE)$conf.int`` (NaN when n = 0)."""
    if n == 0:
        return float("nan"), float("nan")
    z = z_value(conf_level)
    p = k / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact limits at the edges
    hi = 1.0 if k == n else min(1.0, centre + half)
    return float(lo), float(hi)


def delong_auc(cases: np.ndarray, controls: np.ndarray) -> tuple[float, float]:
    """AUC (= Mann-Whitney U / (n1 n0), ties count one half) and its DeLong variance.

    Placement values V10_i = mean_j psi(x_i, y_j), V01_j = mean_i psi(x_i, y_j), psi = 1
    if x > y, 1/2 if equal; var = var(V10)/n1 + var(V01)/n0 (DeLong, DeLong &
    Clarke-Pearson 1988), as ``pROC::var(roc, method = "delong")``. Computed by ranks in
    O(n log n).
    """
    x = np.asarray(cases, dtype=float)
    y = np.asarray(controls, dtype=float)
    n1, n0 = x.size, y.size
    ys = np.sort(y)
    xs = np.sort(x)
    # V10_i: (#controls below x_i + 0.5 #equal) / n0
    below = np.searchsorted(ys, x, side="left")
    equal = np.searchsorted(ys, x, side="right") - below
    v10 = (below + 0.5 * equal) / n0
    above = n1 - np.searchsorted(xs, y, side="right")
    eq = np.searchsorted(xs, y, side="right") - np.searchsorted(xs, y, side="left")
    v01 = (above + 0.5 * eq) / n1
    auc = float(v10.mean())
    var = float(np.var(v10, ddof=1) / n1 + np.var(v01, ddof=1) / n0) if n1 > 1 and n0 > 1 else float("nan")
    return auc, var


class EarlyResponseResult:
    """Accuracy of an early predictor of response.

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by ``sensitivity``, ``specificity``, ``ppv``, ``npv``, ``auc``:
        ``estimate``, ``ci_lower``, ``ci_upper``, ``count`` and ``n`` (e.g. true positives
        of all responders); Wilson intervals for the proportions, DeLong for the AUC.
    threshold : float
        Predictor value at or above which a patient is called an early improver.
    threshold_rule : str
        "given" or "youden" (the cut maximising sensitivity + specificity - 1 on these data,
        which is optimistic for the same data).
    roc : pandas.DataFrame
        ``threshold``, ``sensitivity``, ``specificity``, ``fpr`` from the highest threshold
        (nobody positive) down to everybody positive.
    auc, auc_se : float
    table : pandas.DataFrame
        The 2 x 2 table (predicted by observed).
    n_obs, n_dropped : int
    """

    def __init__(self, predictor, outcome, x, y, threshold, rule, conf_level, n_dropped):
        self.predictor = predictor
        self.outcome = outcome
        self.threshold = float(threshold)
        self.threshold_rule = rule
        self.conf_level = conf_level
        self.n_obs = int(x.size)
        self.n_dropped = n_dropped
        cases, controls = x[y], x[~y]
        self.auc, var = delong_auc(cases, controls)
        self.auc_se = float(np.sqrt(var))
        z = z_value(conf_level)
        auc_ci = (max(0.0, self.auc - z * self.auc_se), min(1.0, self.auc + z * self.auc_se))
        pos = x >= self.threshold
        tp, fn = int(np.sum(pos & y)), int(np.sum(~pos & y))
        tn, fp = int(np.sum(~pos & ~y)), int(np.sum(pos & ~y))
        rows = []
        for name, k, n in (("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp), ("ppv", tp, tp + fp), ("npv", tn, tn + fn)):
            lo, hi = wilson_interval(k, n, conf_level)
            rows.append((name, k / n if n else float("nan"), lo, hi, k, n))
        rows.append(("auc", self.auc, auc_ci[0], auc_ci[1], np.nan, np.nan))
        self.summary = pd.DataFrame(rows, columns=["measure", "estimate", "ci_lower", "ci_upper", "count", "n"]).set_index("measure")
        self.table = pd.DataFrame(
            [[tp, fp], [fn, tn]],
            index=pd.Index([f"{predictor} >= {self.threshold:g}", f"{predictor} < {self.threshold:g}"], name="predicted"),
            columns=pd.Index([f"{outcome}", f"not {outcome}"], name="observed"),
        )
        thr = np.unique(x)[::-1]
        sens = np.array([np.mean(cases >= t) for t in thr]) if cases.size else np.full(thr.size, np.nan)
        spec = np.array([np.mean(controls < t) for t in thr]) if controls.size else np.full(thr.size, np.nan)
        self.roc = pd.DataFrame(
            {"threshold": np.concatenate([[np.inf], thr]), "sensitivity": np.concatenate([[0.0], sens]),
             "specificity": np.concatenate([[1.0], spec])}
        )
        self.roc["fpr"] = 1.0 - self.roc["specificity"]

    def plot(self, ax=None):
        """ROC curve (sensitivity against 1 - specificity), the chance diagonal, and the
        chosen threshold; the legend gives the AUC with its DeLong interval.

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = get_ax(ax)
        s = self.summary.loc["auc"]
        ax.step(self.roc["fpr"], self.roc["sensitivity"], where="post", color="black",
                label=f"AUC {s['estimate']:.3f} ({s['ci_lower']:.3f}-{s['ci_upper']:.3f})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        se, sp = self.summary.loc["sensitivity", "estimate"], self.summary.loc["specificity", "estimate"]
        ax.plot([1 - sp], [se], "o", color="tab:red", label=f"{self.predictor} >= {self.threshold:g}")
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.legend(loc="lower right", frameon=False)
        return ax

    def __repr__(self) -> str:
        return (f"EarlyResponseResult({self.predictor!r} -> {self.outcome!r}, threshold={self.threshold:g} "
                f"({self.threshold_rule}), n={self.n_obs})\n{self.summary.round(4).to_string()}")


def _binary(s: pd.Series, name: str) -> np.ndarray:
    from ._logistic import binary_outcome

    if isinstance(s.dtype, pd.BooleanDtype):
        s = s.astype(bool)
    return binary_outcome(s, name).astype(bool)


def early_response(
    data: pd.DataFrame,
    predictor: str,
    outcome: str,
    *,
    threshold: float | None = None,
    conf_level: float = 0.95,
    dropna: bool = False,
) -> EarlyResponseResult:
    """How well an early measurement predicts the end-of-induction outcome.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per patient, e.g. from :func:`analysis.response.early_improvement`.
    predictor : str
        Numeric column; higher values predict the outcome (e.g.
        ``early_improvement_pct``).
    outcome : str
        Boolean or 0/1 column (e.g. ``responder``).
    threshold : float, optional
        A patient is an early improver when ``predictor >= threshold``. Default: the
        threshold maximising Youden's J on these data (reported in ``threshold_rule``;
        optimistic on the data that chose it). A common pre-specified choice is an early
        improvement of 20 % (Szegedi et al. 2009).
    conf_level : float, default 0.95
    dropna : bool, default False
        Rows missing the predictor or the outcome raise an error unless ``dropna=True``
        (then they are dropped and counted in ``n_dropped``).

    Returns
    -------
    EarlyResponseResult

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.response import early_response
    >>> df = pd.DataFrame({"early": [5, 30, 45, 10, 60, 25, 0, 35],
    ...                    "responder": [0, 1, 1, 0, 1, 1, 0, 0]})
    >>> res = early_response(df, "early", "responder", threshold=20)
    >>> res.summary.loc[["sensitivity", "specificity", "auc"], "estimate"].round(3).tolist()
    [1.0, 0.75, 0.875]
    """
    conf_level = check_conf_level(conf_level)
    for col in (predictor, outcome):
        if col not in data.columns:
            raise ValueError(f"column {col!r} not found; columns are: {', '.join(map(str, data.columns[:30]))}")
    miss = data[predictor].isna().to_numpy() | data[outcome].isna().to_numpy()
    if miss.any() and not dropna:
        parts = [f"{int(data[c].isna().sum())} in {c!r}" for c in (predictor, outcome) if data[c].isna().any()]
        raise ValueError(f"missing values ({', '.join(parts)}); pass dropna=True to drop those rows (they are then counted in n_dropped)")
    d = data.loc[~miss]
    x = pd.to_numeric(d[predictor], errors="raise").to_numpy(dtype=float)
    y = _binary(d[outcome], outcome)
    if y.all() or not y.any():
        raise ValueError(f"{outcome!r} has only one value among the {y.size} rows: need both outcomes for accuracy")
    rule = "given"
    if threshold is None:
        thr = np.unique(x)
        j = [np.mean(x[y] >= t) + np.mean(x[~y] < t) - 1.0 for t in thr]
        threshold = float(thr[int(np.argmax(j))])
        rule = "youden"
    return EarlyResponseResult(predictor, outcome, x, y, threshold, rule, conf_level, int(miss.sum()))
