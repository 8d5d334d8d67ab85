"""Helpers for the response-model tests: R reference values, datasets, a tolerant compare.

The reference values in ``tests/fixtures/r/resp_*.csv`` were written by
``tests/fixtures/r/make_response.R`` from the datasets in ``tests/fixtures/data/resp_*``;
no test runs R. Each reference file is long: ``case, quantity, term, level, value``.
Set ``KO_RESPONSE_DIFFS=1`` to print the largest relative difference seen per quantity
when the run ends (without ``-n``).

A plain module, not a ``conftest.py`` (see tests/survival/survival_helpers.py for why);
the test files import it by name.
"""

from __future__ import annotations

import atexit
import os
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

#: ``pytestmark`` of every response test file: a name of the previous release used by the
#: package's own code (or by a test that does not ask for it with ``pytest.deprecated_call``)
#: is an error (docs/api.md), and so is a fit that does not converge on the reference data
STRICT = [
    pytest.mark.filterwarnings("error:.*is deprecated and will be removed in the next release:DeprecationWarning"),
    pytest.mark.filterwarnings("error::analysis.ConvergenceWarning"),
]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RTOL_CLOSED = 1e-4  # closed-form or Newton fits (glm, polr/multinom at the optimum, GEE)
RTOL_OPTIM = 1e-3  # optimiser fits (variance components of lmer)

_MAX_DIFF: dict[str, float] = defaultdict(float)

#: factor levels in R's order (R's first level is the reference)
LEVELS = {
    "race": ["white", "black", "other"],
    "Sat": ["Low", "Medium", "High"],
    "Infl": ["Low", "Medium", "High"],
    "Type": ["Tower", "Apartment", "Atrium", "Terrace"],
    "Cont": ["Low", "High"],
    "Cu": ["Cu000", "Cu035", "Cu175"],
    "bwt3": ["low", "mid", "high"],
    "Sex": ["Male", "Female"],
}
ORDERED = {"Sat", "bwt3"}


@lru_cache(maxsize=None)
def _ref(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "r" / f"resp_{name}.csv", keep_default_na=False, na_values=["NA"],
                       dtype={"case": str, "quantity": str, "term": str, "level": str})


def ref(name: str, case: str, quantity: str) -> pd.DataFrame:
    """Rows of one reference quantity: columns term, level, value (in R's order)."""
    r = _ref(name)
    out = r[(r["case"] == case) & (r["quantity"] == quantity)][["term", "level", "value"]].reset_index(drop=True)
    assert len(out), f"no reference rows for {name}/{case}/{quantity}"
    return out


def ref_value(name: str, case: str, quantity: str, term: str = "", level: str = "") -> float:
    r = ref(name, case, quantity)
    hit = r[(r["term"] == term) & (r["level"] == level)]
    assert len(hit) == 1, f"{name}/{case}/{quantity}/{term}/{level}: {len(hit)} rows"
    return float(hit["value"].iloc[0])


@lru_cache(maxsize=None)
def _data(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "data" / f"resp_{name}.csv")


def load_data(name: str) -> pd.DataFrame:
    """A dataset as R held it, factors as Categoricals in R's level order."""
    d = _data(name).copy()
    for col, levels in LEVELS.items():
        if col in d.columns:
            d[col] = pd.Categorical(d[col], categories=levels, ordered=col in ORDERED)
    return d


def expand(d: pd.DataFrame, freq: str) -> pd.DataFrame:
    """One row per unit of a frequency column (R's weights = Freq)."""
    return d.loc[d.index.repeat(d[freq].astype(int))].reset_index(drop=True)


def py_term(r_term: str) -> str:
    """R's coefficient name to patsy's: ``(Intercept)`` -> ``Intercept``,
    ``raceblack`` -> ``race[T.black]``."""
    if r_term == "(Intercept)":
        return "Intercept"
    for col, levels in LEVELS.items():
        for lv in levels[1:]:
            if r_term == f"{col}{lv}":
                return f"{col}[T.{lv}]"
    return r_term


def py_ame_term(r_term: str) -> str:
    """R's AME label (``raceblack``) to ours (``race[black]``); numeric names unchanged."""
    t = py_term(r_term)
    return t.replace("[T.", "[")


def close(actual, expected, what: str, *, context: str = "", rtol: float = RTOL_CLOSED, atol: float = 0.0) -> float:
    """Assert elementwise relative agreement within ``rtol`` (NaN matches NaN); where the
    reference is 0 (or below ``atol`` in size) the absolute difference must be <= ``atol``
    (1e-12 when not given). Records the largest relative difference under ``what``."""
    label = f"{what} [{context}]" if context else what
    a = np.atleast_1d(np.asarray(actual, dtype=float))
    e = np.atleast_1d(np.asarray(expected, dtype=float))
    assert a.shape == e.shape, f"{label}: shape {a.shape} != reference {e.shape}"
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    assert np.array_equal(nan_a, nan_e), f"{label}: NaN at different places"
    a, e = a[~nan_a], e[~nan_e]
    small = np.abs(e) <= max(atol, 0.0)
    lim = atol if atol > 0 else 1e-12
    assert np.all(np.abs(a[small] - e[small]) <= lim), f"{label}: expected ~0, got {a[small]}"
    rel = np.abs(a[~small] - e[~small]) / np.abs(e[~small])
    worst = float(rel.max()) if rel.size else 0.0
    _MAX_DIFF[what] = max(_MAX_DIFF[what], worst)
    if worst > rtol:
        i = int(np.argmax(rel))
        raise AssertionError(f"{label}: relative difference {worst:.3g} > {rtol:g} (ours {a[~small][i]!r}, R {e[~small][i]!r})")
    return worst


def _report() -> None:
    if _MAX_DIFF:
        print("\nlargest relative difference from R, per quantity")
        for what, worst in sorted(_MAX_DIFF.items()):
            print(f"{what:45s} {worst:.2e}")


if os.environ.get("KO_RESPONSE_DIFFS"):
    atexit.register(_report)
