"""The weighted-combination log-rank test (inverse-normal combination of stratum or stage tests).

SUSTAIN-1 (Daly et al. 2019, JAMA Psychiatry 76:893) analysed time to relapse with a
weighted combination of log-rank statistics from two parts of the study, with weights fixed
in advance. With Z_k the signed log-rank statistic of part (stratum) k,

    Z = (w_1 Z_1 + ... + w_K Z_K) / sqrt(w_1² + ... + w_K²),

standard normal under the null when the parts are independent and the weights do not depend
on the data (the inverse-normal combination of Lehmacher & Wassmer 1999, Biometrics
55:1286). Z_k = (O_k - E_k) / sqrt(V_k) of the treated group, from
:func:`analysis.survival.logrank` within part k (its ``table``'s observed and expected and
its ``variance``); negative when the treated group has fewer events than expected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .._kernel import check_choice
from ..survival import logrank

__all__ = ["WeightedLogrankResult", "weighted_logrank"]

ALTERNATIVES = ("two-sided", "less", "greater")


@dataclass(frozen=True)
class WeightedLogrankResult:
    """A weighted combination of per-stratum log-rank statistics.

    Attributes
    ----------
    statistic : float
        The combined Z (standard normal under the null).
    p_value : float
        For ``alternative``: two-sided, ``"less"`` (treated has fewer events: P(Z <= z)) or
        ``"greater"``.
    alternative : str
    treated : object
        The group whose O - E gives the sign.
    table : pandas.DataFrame
        One row per stratum: ``stratum, n, observed, expected, variance, z, weight``.
    rho : float
        The G-rho weight of the per-stratum tests (0: log-rank).
    n_dropped : int
        Rows dropped for missing values over all strata (``dropna=True``).
    """

    statistic: float
    p_value: float
    alternative: str
    treated: object
    table: pd.DataFrame
    rho: float
    n_dropped: int

    @property
    def summary(self) -> pd.DataFrame:
        """One row: ``statistic, p_value, alternative, treated, n_strata``."""
        return pd.DataFrame([{"statistic": self.statistic, "p_value": self.p_value, "alternative": self.alternative,
                              "treated": self.treated, "n_strata": len(self.table)}])

    def __repr__(self) -> str:
        return (f"WeightedLogrankResult(statistic={self.statistic:.4f}, p_value={self.p_value:.4g}, "
                f"alternative={self.alternative!r}, treated={self.treated!r})\n{self.table.to_string(index=False)}")


def _frames(data, stratum):
    """(label, frame) per stratum, in order."""
    if isinstance(data, pd.DataFrame):
        if stratum is None:
            raise ValueError("give stratum= (the column naming each row's stratum or stage), or pass a list "
                             "or dict of data frames")
        if stratum not in data.columns:
            raise ValueError(f"stratum={stratum!r} is not a column of data")
        col = data[stratum]
        if col.isna().any():
            k = int(col.isna().sum())
            raise ValueError(f"column {stratum!r} (stratum) has {k} missing value(s); every row needs a stratum")
        levels = list(col.cat.categories[col.cat.categories.isin(col.unique())]) if isinstance(
            col.dtype, pd.CategoricalDtype) else sorted(col.unique())
        return [(lv.item() if isinstance(lv, np.generic) else lv, data[col == lv]) for lv in levels]
    if stratum is not None:
        raise ValueError("stratum= names a column of one data frame; with several frames leave it out")
    if isinstance(data, Mapping):
        items = list(data.items())
    elif isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        items = [(i + 1, f) for i, f in enumerate(data)]
    else:
        raise TypeError(f"data must be a DataFrame, a list of DataFrames or a dict of them, got {type(data).__name__}")
    for label, f in items:
        if not isinstance(f, pd.DataFrame):
            raise TypeError(f"stratum {label!r}: expected a DataFrame, got {type(f).__name__}")
    return items


def _weights(weights, labels) -> np.ndarray:
    if isinstance(weights, Mapping):
        missing = [lb for lb in labels if lb not in weights]
        extra = [k for k in weights if k not in labels]
        if missing or extra:
            raise ValueError(f"weights must have one entry per stratum {labels}; missing {missing}, unknown {extra}")
        w = [weights[lb] for lb in labels]
    else:
        w = list(np.atleast_1d(np.asarray(weights, dtype=float)))
        if len(w) != len(labels):
            raise ValueError(f"weights has {len(w)} value(s) for {len(labels)} strata {labels}")
    w = np.asarray(w, dtype=float)
    if not np.isfinite(w).all() or (w < 0).any() or not (w > 0).any():
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {list(w)}")
    return w


def weighted_logrank(data, duration: str, event: str, group: str, *, weights, stratum: str | None = None,
                     treated=None, alternative: str = "two-sided", rho: float = 0.0,
                     dropna: bool = False) -> WeightedLogrankResult:
    """Combine signed log-rank statistics of several strata (or stages) with fixed weights.

    Parameters
    ----------
    data : pandas.DataFrame, or a list or dict of DataFrames
        One frame with a ``stratum`` column, or one frame per stratum (a dict's keys label
        them; a list's are numbered from 1).
    duration, event, group : str
        Columns, as for :func:`analysis.survival.logrank`; ``group`` has the same two levels
        in every stratum.
    weights : sequence or mapping of float
        One weight per stratum (in the order of the strata: sorted values of the column, the
        list's order, the dict's keys; or a dict stratum -> weight), fixed before looking at
        the data. Equal weights give the unweighted sum of Z's over sqrt(K); SUSTAIN-1-style
        designs use the square roots of the planned information fractions.
    stratum : str, optional
        The stratum column of a single frame.
    treated : optional
        The group whose O - E is used; default the second level (the non-reference level,
        as in a Cox model's coefficient).
    alternative : {"two-sided", "less", "greater"}, default "two-sided"
        ``"less"`` tests whether the treated group has fewer events than expected.
    rho : float, default 0.0
        G-rho weight of each stratum's test (0: log-rank).
    dropna : bool, default False
        Passed to each stratum's :func:`analysis.survival.logrank`.

    Returns
    -------
    WeightedLogrankResult

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.effects import weighted_logrank
    >>> df = pd.DataFrame({"days": [5, 9, 14, 20, 30, 7, 18, 25, 40, 60, 4, 10, 16, 22, 8, 28, 35, 50],
    ...                    "relapse": [1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0],
    ...                    "arm": ["placebo"] * 5 + ["esketamine"] * 5 + ["placebo"] * 4 + ["esketamine"] * 4,
    ...                    "part": ["remitters"] * 10 + ["responders"] * 8})
    >>> res = weighted_logrank(df, "days", "relapse", "arm", stratum="part", weights=[0.6 ** 0.5, 0.4 ** 0.5],
    ...                        treated="esketamine")
    >>> round(res.statistic, 3), round(res.p_value, 3)
    (-2.132, 0.033)
    """
    check_choice("alternative", alternative, ALTERNATIVES)
    items = _frames(data, stratum)
    if not items:
        raise ValueError("no strata to combine")
    labels = [lb for lb, _ in items]
    w = _weights(weights, labels)
    all_levels = None
    rows = []
    n_dropped = 0
    for (label, frame), wk in zip(items, w):
        try:
            res = logrank(frame, duration, event, group, rho=rho, dropna=dropna)
        except ValueError as exc:
            raise ValueError(f"stratum {label!r}: {exc}") from exc
        levels = list(res.table["group"])
        if len(levels) != 2:
            raise ValueError(f"stratum {label!r}: the weighted log-rank compares two groups; found {levels}")
        if all_levels is None:
            all_levels = levels
            if treated is None:
                treated = levels[1].item() if isinstance(levels[1], np.generic) else levels[1]
            elif treated not in levels:
                raise ValueError(f"treated={treated!r} is not a level of column {group!r}: {levels}")
        elif set(levels) != set(all_levels):
            raise ValueError(f"stratum {label!r} has groups {levels}, the first stratum {all_levels}")
        i = levels.index(treated)
        o, e = float(res.table["observed"].iloc[i]), float(res.table["expected"].iloc[i])
        v = float(res.variance.iloc[i, i])
        if not v > 0:
            raise ValueError(f"stratum {label!r}: no information (variance of O - E is 0; no events?)")
        rows.append({"stratum": label, "n": int(res.table["n"].sum()), "observed": o, "expected": e,
                     "variance": v, "z": (o - e) / math.sqrt(v), "weight": float(wk)})
        n_dropped += res.n_dropped
    table = pd.DataFrame(rows)
    zc = float((table["weight"] * table["z"]).sum() / math.sqrt((table["weight"] ** 2).sum()))
    p = {"two-sided": 2 * stats.norm.sf(abs(zc)), "less": stats.norm.cdf(zc), "greater": stats.norm.sf(zc)}[alternative]
    return WeightedLogrankResult(statistic=zc, p_value=float(p), alternative=alternative, treated=treated,
                                 table=table, rho=float(rho), n_dropped=int(n_dropped))
