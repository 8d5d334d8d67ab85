"""Argument checks shared by the clinical-significance figures: numbers, proportions,
numeric vectors with the package's missing-value rule (an error naming the argument, how
many values and the first of them, unless ``dropna=True``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["as_number", "as_vector", "column_or_values", "paired_vectors"]

_SHOWN = 5


def as_number(name: str, value, *, low: float | None = None, high: float | None = None,
              low_open: bool = False, high_open: bool = False, allow_inf: bool = False) -> float:
    """``value`` as a float, or a ValueError naming ``name`` and the range expected.

    Examples
    --------
    >>> as_number("conf_level", 0.9, low=0, high=1, low_open=True, high_open=True)
    0.9
    """
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(x) or (math.isinf(x) and not allow_inf):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    bad_low = low is not None and (x <= low if low_open else x < low)
    bad_high = high is not None and (x >= high if high_open else x > high)
    if bad_low or bad_high:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{name} must be {' and '.join(s for s in (lo, hi) if s)}, got {value!r}")
    return x


def column_or_values(name: str, value, data: pd.DataFrame | None):
    """The values of argument ``name``: ``data[value]`` when ``data`` is given (``value`` a
    column name), else ``value`` itself; returns (values, label for messages)."""
    if data is None:
        return value, name
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if not isinstance(value, str):
        raise TypeError(f"with data=, {name} must be a column name, got {type(value).__name__}")
    if value not in data.columns:
        raise ValueError(f"{name}={value!r} is not a column of data; columns: {', '.join(map(str, data.columns))}")
    return data[value], f"column {value!r} ({name})"


def _numeric(label: str, values) -> np.ndarray:
    if isinstance(values, (str, bytes)) or np.ndim(values) == 0:
        raise TypeError(f"{label} must be a sequence of numbers, got {type(values).__name__}")
    try:
        arr = pd.to_numeric(pd.Series(np.asarray(values, dtype=object).ravel()), errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{label} must hold numbers only") from None
    if np.isinf(arr).any():
        first = int(np.flatnonzero(np.isinf(arr))[0]) + 1
        raise ValueError(f"{label} holds an infinite value (value {first}); expected finite numbers")
    return arr


def _missing_message(label: str, miss: np.ndarray) -> str:
    k = int(miss.sum())
    shown = ", ".join(str(i + 1) for i in np.flatnonzero(miss)[:_SHOWN]) + (", ..." if k > _SHOWN else "")
    return (f"{label} has {k} missing value(s) (value {shown}); pass dropna=True to drop them "
            "(the result then records how many were dropped)")


def as_vector(label: str, values, *, dropna: bool, min_n: int = 2) -> tuple[np.ndarray, int]:
    """Finite numbers of ``values`` and how many missing ones were dropped.

    Examples
    --------
    >>> as_vector("x", [1, 2, None], dropna=True)
    (array([1., 2.]), 1)
    """
    arr = _numeric(label, values)
    miss = np.isnan(arr)
    if miss.any() and not dropna:
        raise ValueError(_missing_message(label, miss))
    out = arr[~miss]
    if out.size < min_n:
        raise ValueError(f"{label} needs at least {min_n} values, got {out.size}")
    return out, int(miss.sum())


def paired_vectors(label_x: str, x, label_y: str, y, *, dropna: bool, min_n: int = 2, return_mask: bool = False):
    """Two numeric vectors of the same length with the pairs that miss either value dropped
    (``dropna=True``) or an error naming the argument; returns (x, y, n_dropped), and the
    mask of the pairs kept with ``return_mask=True``."""
    ax, ay = _numeric(label_x, x), _numeric(label_y, y)
    if ax.size != ay.size:
        raise ValueError(f"paired values need {label_x} and {label_y} of the same length, got {ax.size} and {ay.size}")
    if not dropna:
        problems = [_missing_message(label, np.isnan(arr)) for label, arr in ((label_x, ax), (label_y, ay))
                    if np.isnan(arr).any()]
        if problems:
            raise ValueError("; ".join(problems))
    keep = ~(np.isnan(ax) | np.isnan(ay))
    if keep.sum() < min_n:
        raise ValueError(f"{label_x} and {label_y} need at least {min_n} complete pairs, got {int(keep.sum())}")
    if return_mask:
        return ax[keep], ay[keep], int((~keep).sum()), keep
    return ax[keep], ay[keep], int((~keep).sum())
