"""Small argument checks and drawing helpers shared by every model and curve.

One place for the checks every public function makes (a confidence level strictly between 0
and 1, one of a set of choices) and for the axes a ``plot(ax=None)`` draws on, so that the
messages read the same wherever they come from.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["check_choice", "check_conf_level", "critical_value", "get_ax", "is_sorted_text_categories", "new_figure",
           "z_value"]

#: figure widths in inches: one and two columns of a journal page
SINGLE_COLUMN = 3.5
DOUBLE_COLUMN = 7.2


def check_conf_level(conf_level: float) -> float:
    """Return ``conf_level`` as a float, or raise if it is not strictly between 0 and 1.

    Examples
    --------
    >>> check_conf_level(0.9)
    0.9
    """
    try:
        level = float(conf_level)
    except (TypeError, ValueError):
        raise ValueError(f"conf_level must be a number between 0 and 1, got {conf_level!r}") from None
    if not 0.0 < level < 1.0:
        raise ValueError(f"conf_level must be strictly between 0 and 1, got {conf_level!r}")
    return level


def z_value(conf_level: float) -> float:
    """The two-sided normal quantile for ``conf_level``.

    Examples
    --------
    >>> round(z_value(0.95), 6)
    1.959964
    """
    from scipy import stats  # on first use: ``import analysis`` does not load scipy.stats (0.5 s or more)

    return float(stats.norm.ppf(1.0 - (1.0 - check_conf_level(conf_level)) / 2.0))


def critical_value(conf_level: float, df=None):
    """The two-sided quantile for ``conf_level``: normal without ``df`` (or with an infinite
    one), Student's t with ``df`` degrees of freedom (a number or an array) otherwise.

    Examples
    --------
    >>> round(float(critical_value(0.95, 10)), 4)
    2.2281
    """
    from scipy import stats

    q = 1.0 - (1.0 - check_conf_level(conf_level)) / 2.0
    if df is None:
        return float(stats.norm.ppf(q))
    return stats.t.ppf(q, df)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Raise a ValueError naming the argument and the allowed values when ``value`` is not one.

    Examples
    --------
    >>> check_choice("ties", "efron", ("efron", "breslow"))
    'efron'
    """
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def get_ax(ax=None):
    """The axes to draw on: ``ax`` if given, else the current axes of pyplot (imported
    lazily, so that fitting a model never imports matplotlib)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.gca()


def new_figure(width: float = DOUBLE_COLUMN * 0.75, height: float = 3.2, **subplot_kw):
    """A figure (not registered with pyplot, so nothing is shown twice) and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot(**subplot_kw)


def is_sorted_text_categories(dtype) -> bool:
    """Whether ``dtype`` is an unordered categorical whose categories are text in sorted
    order: what a loaded dataset's category columns are (``analysis.dataset.category_dtype``),
    whose category order is the text's own order, so that it carries nothing the text does
    not (the model code reads them as text).

    Examples
    --------
    >>> is_sorted_text_categories(pd.CategoricalDtype(["im", "iv", "oral"]))
    True
    >>> is_sorted_text_categories(pd.CategoricalDtype(["iv", "im"])), is_sorted_text_categories(
    ...     pd.CategoricalDtype(["a", "b"], ordered=True))
    (False, False)
    """
    if not isinstance(dtype, pd.CategoricalDtype) or dtype.ordered:
        return False
    categories = dtype.categories
    if pd.api.types.infer_dtype(categories, skipna=False) != "string":
        return False
    values = list(categories)
    return values == sorted(values)
