"""The one results convention of every model (``docs/api.md``).

Every fitted model answers the same questions with the same names:

* ``summary``: a DataFrame indexed by ``term`` with ``coef, se, statistic, p_value,
  ci_lower, ci_upper`` (in that order, ``df`` after ``se`` where the test uses degrees of
  freedom), plus ``ratio, ratio_lower, ratio_upper`` where the model has a ratio scale
  (hazard, odds or time ratio: exp(coef) and its interval);
* ``params`` (``summary["coef"]``), ``cov`` (the covariance matrix of ``params`` as a
  DataFrame, robust when the model's inference is), ``conf_int()``;
* ``n_obs``, ``n_dropped``, ``conf_level``, ``converged``;
* ``plot(ax=None)``, returning the axes.

:func:`coef_table` builds the summary; :class:`ModelResult` is the base dataclass of the
results; :class:`ConvergenceWarning` is the one warning class for iterations that stop
before converging; :func:`renamed_arguments` and :class:`SummaryFrame` keep the names of the
previous release working for one release, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .checks import critical_value, get_ax

__all__ = [
    "ConvergenceWarning",
    "ModelResult",
    "RATIO_COLUMNS",
    "SUMMARY_COLUMNS",
    "SummaryFrame",
    "coef_table",
    "deprecated_name",
    "renamed_arguments",
    "with_aliases",
    "coefficient_plot",
]

#: the columns every summary has, in this order (``df`` follows ``se`` where there is one)
SUMMARY_COLUMNS = ("coef", "se", "statistic", "p_value", "ci_lower", "ci_upper")
#: the columns of models with a ratio scale
RATIO_COLUMNS = ("ratio", "ratio_lower", "ratio_upper")


class ConvergenceWarning(UserWarning):
    """An iterative fit stopped before it converged, or an estimate may be infinite.

    The one warning class of the package's models (Cox, AFT, Turnbull, the response models,
    the propensity model): ``warnings.simplefilter("error", ConvergenceWarning)`` makes any
    of them an error.
    """


def deprecated_name(old: str, new: str, *, where: str, stacklevel: int = 3) -> None:
    """Warn that ``old`` was renamed ``new`` (kept for one release)."""
    warnings.warn(f"{where}: {old!r} is deprecated and will be removed in the next release; use {new!r}",
                  DeprecationWarning, stacklevel=stacklevel)


def renamed_arguments(**renames: str):
    """Decorator: keyword arguments renamed in this release still work for one release.

    ``@renamed_arguments(groups="cluster")`` lets ``f(groups="id")`` call ``f(cluster="id")``
    with a DeprecationWarning; giving both names is an error.

    Examples
    --------
    >>> @renamed_arguments(maxiter="max_iter")
    ... def fit(*, max_iter=10):
    ...     return max_iter
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     fit(maxiter=3), w[0].category.__name__
    (3, 'DeprecationWarning')
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{func.__name__}() got both {old!r} (deprecated) and {new!r}; give only {new!r}")
                    deprecated_name(old, new, where=f"{func.__name__}()")
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper

    return decorate


#: the code of the wrappers made by :func:`renamed_arguments` (``capture_env`` skips their frames)
RENAMED_ARGUMENTS_CODE = renamed_arguments(old="new")(lambda: None).__code__


class SummaryFrame(pd.DataFrame):
    """A summary DataFrame whose column names of the previous release still work with
    ``summary["old"]`` (and lists of names), with a DeprecationWarning."""

    _metadata = ["_aliases"]

    @property
    def _constructor(self):
        return SummaryFrame

    def _alias(self, key):
        aliases = getattr(self, "_aliases", None) or {}
        if isinstance(key, str) and key in aliases and key not in self.columns:
            deprecated_name(key, aliases[key], where="summary column", stacklevel=4)
            return aliases[key]
        return key

    def __getitem__(self, key):
        if isinstance(key, str):
            return super().__getitem__(self._alias(key))
        if isinstance(key, list):
            new = []
            for k in key:  # a loop, not a comprehension: the warning points at the caller
                new.append(self._alias(k))
            out = super().__getitem__(new)
            back = {n: o for o, n in zip(key, new) if o != n}
            return out.rename(columns=back) if back else out
        return super().__getitem__(key)


def with_aliases(frame: pd.DataFrame, aliases: dict[str, str] | None) -> pd.DataFrame:
    """``frame`` as a :class:`SummaryFrame` that answers to the old column names."""
    if not aliases:
        return frame
    out = SummaryFrame(frame)
    out._aliases = dict(aliases)
    return out


def coef_table(names, coef, se, conf_level: float, *, df=None, ratio: bool = False) -> pd.DataFrame:
    """The summary of the convention: ``coef, se, [df,] statistic, p_value, ci_lower,
    ci_upper`` and, with ``ratio=True``, ``ratio, ratio_lower, ratio_upper`` = exp(...).

    The statistic is coef / se; with ``df`` (a number or one per term; ``inf`` means none)
    the p-value and interval are Student's t, otherwise normal (Wald).

    Examples
    --------
    >>> tab = coef_table(["age"], [0.5], [0.25], 0.95, ratio=True)
    >>> list(tab.columns)
    ['coef', 'se', 'statistic', 'p_value', 'ci_lower', 'ci_upper', 'ratio', 'ratio_lower', 'ratio_upper']
    >>> tab.loc["age", ["statistic", "p_value", "ratio", "ratio_lower"]].round(4).tolist()
    [2.0, 0.0455, 1.6487, 1.0101]
    """
    from scipy import stats  # on first use (see checks.z_value)

    coef = np.asarray(coef, dtype=float)
    se = np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = coef / se
    cols: dict[str, Any] = {"coef": coef, "se": se}
    if df is None:
        p = 2.0 * stats.norm.sf(np.abs(w))
        q = critical_value(conf_level)
    else:
        dfa = np.broadcast_to(np.asarray(df, dtype=float), coef.shape).copy()
        finite = np.isfinite(dfa)
        p = np.where(finite, 2.0 * stats.t.sf(np.abs(w), np.where(finite, dfa, 1.0)), 2.0 * stats.norm.sf(np.abs(w)))
        q = np.where(finite, critical_value(conf_level, np.where(finite, dfa, 1.0)), critical_value(conf_level))
        cols["df"] = dfa
    lower, upper = coef - q * se, coef + q * se
    cols.update({"statistic": w, "p_value": p, "ci_lower": lower, "ci_upper": upper})
    if ratio:   # built with the rest: a column added to a frame costs about 0.2 ms, and models make many tables
        with np.errstate(over="ignore"):
            cols.update({"ratio": np.exp(coef), "ratio_lower": np.exp(lower), "ratio_upper": np.exp(upper)})
    return pd.DataFrame(cols, index=pd.Index(list(names), name="term"))


def coefficient_plot(ax, summary: pd.DataFrame, *, xlabel: str | None = None):
    """Estimates with their intervals, one row per term: ratios on a log axis with a line at
    1 where the summary has them, coefficients with a line at 0 otherwise."""
    table = summary.dropna(subset=["coef"])
    use_ratio = "ratio" in table.columns and table["ratio"].notna().any()
    if use_ratio:
        table = table[table["ratio"].notna()]
        est, lo, hi, ref = table["ratio"], table["ratio_lower"], table["ratio_upper"], 1.0
    else:
        est, lo, hi, ref = table["coef"], table["ci_lower"], table["ci_upper"], 0.0
    pos = np.arange(len(table))[::-1]
    ax.errorbar(est, pos, xerr=[est - lo, hi - est], fmt="o", color="black", capsize=3)
    ax.axvline(ref, color="grey", linestyle="--", linewidth=1)
    if use_ratio:
        ax.set_xscale("log")
    ax.set_yticks(pos)
    ax.set_yticklabels([str(t) for t in table.index])
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    return ax


@dataclass(kw_only=True, eq=False, repr=False)
class ModelResult:
    """Base of every fitted model's result (the convention of ``docs/api.md``).

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by ``term``: ``coef, se, [df,] statistic, p_value, ci_lower, ci_upper`` and,
        on a ratio scale, ``ratio, ratio_lower, ratio_upper``.
    cov : pandas.DataFrame
        Covariance matrix of ``params`` (the one the summary's inference uses).
    n_obs, n_dropped : int
        Rows used, and rows dropped for missing values (``dropna=True``).
    conf_level : float
        Coverage of the intervals.
    converged : bool
        Whether the fit converged (a :class:`ConvergenceWarning` is issued when not).
    formula : str or None
        The formula fitted.
    """

    summary: pd.DataFrame
    cov: pd.DataFrame
    n_obs: int
    n_dropped: int = 0
    conf_level: float = 0.95
    converged: bool = True
    formula: str | None = None

    #: old attribute name -> new one, kept for one release (subclasses extend it)
    _renamed: ClassVar[dict[str, str]] = {}
    #: label of the ratio scale in plots ("hazard ratio", "odds ratio", "time ratio")
    _ratio_label: ClassVar[str | None] = None

    @property
    def params(self) -> pd.Series:
        """The estimates (``summary["coef"]``)."""
        return self.summary["coef"]

    def conf_int(self) -> pd.DataFrame:
        """``ci_lower`` and ``ci_upper`` of every term at ``conf_level``."""
        return self.summary[["ci_lower", "ci_upper"]]

    def plot(self, ax=None):
        """Estimates with their intervals (ratios on a log axis where the model has them);
        returns the axes."""
        ax = get_ax(ax)
        label = f"{self._ratio_label} ({self.conf_level:.0%} CI)" if self._ratio_label else f"estimate ({self.conf_level:.0%} CI)"
        return coefficient_plot(ax, self.summary, xlabel=label)

    def __getattr__(self, name: str):
        # only reached when normal lookup fails: the names of the previous release
        if name.startswith("__"):
            raise AttributeError(name)
        renamed = type(self)._renamed
        if name in renamed:
            deprecated_name(name, renamed[name], where=type(self).__name__)
            return getattr(self, renamed[name])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
