"""Helpers for the survival tests: R reference fixtures, the datasets, a tolerant compare.

The reference values in ``tests/fixtures/r/`` were written by
``tests/fixtures/r/make_survival_km.R`` from the datasets in ``tests/fixtures/data/``;
no test runs R. Set ``KO_SURVIVAL_DIFFS=1`` to print the largest relative difference
seen per quantity when the run ends (without ``-n``).

This is a plain module, not a ``conftest.py``: the top-level tests import the root
``tests/conftest.py`` as the module ``conftest``, and a second conftest without a package
would take that name from them. The test files import it by name (pytest puts their
folder on ``sys.path``).
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

#: ``pytestmark`` of every survival test file: a deprecated name of the previous release
#: used by the package's own code (or by a test that does not ask for it with
#: ``pytest.deprecated_call``/``pytest.warns``) is an error (docs/api.md)
DEPRECATIONS_ARE_ERRORS = pytest.mark.filterwarnings(
    "error:.*is deprecated and will be removed in the next release:DeprecationWarning")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RTOL = 1e-4
ATOL_ZERO = 1e-12  # only where the reference value is exactly 0

_MAX_DIFF: dict[str, float] = defaultdict(float)


@lru_cache(maxsize=None)
def _read_ref(name: str) -> pd.DataFrame:
    # case specifications are text (empty cells mean "not used"); results are numbers
    if name.endswith("_cases"):
        return pd.read_csv(FIXTURES / "r" / f"{name}.csv", dtype=str, keep_default_na=False)
    return pd.read_csv(FIXTURES / "r" / f"{name}.csv", keep_default_na=False, na_values=[""])


@lru_cache(maxsize=None)
def _read_data(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "data" / f"{name}.csv")


def _close(actual, expected, what: str, *, context: str = "", rtol: float = RTOL) -> float:
    """Assert elementwise agreement within ``rtol`` (NaN matches NaN, inf matches inf).

    Where the reference is exactly 0, an absolute tolerance of 1e-12 is used instead.
    Returns (and records under ``what``) the largest relative difference; ``context``
    (the case) goes into the failure message.
    """
    label = f"{what} [{context}]" if context else what
    a = np.atleast_1d(np.asarray(actual, dtype=float))
    e = np.atleast_1d(np.asarray(expected, dtype=float))
    assert a.shape == e.shape, f"{label}: shape {a.shape} != reference {e.shape}"
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    assert np.array_equal(nan_a, nan_e), (
        f"{label}: NaN at different places; ours NaN at {np.flatnonzero(nan_a & ~nan_e)[:10]}, "
        f"R's NaN at {np.flatnonzero(nan_e & ~nan_a)[:10]} (values {a[nan_e & ~nan_a][:5]})"
    )
    inf_a, inf_e = np.isinf(a), np.isinf(e)
    assert np.array_equal(inf_a, inf_e) and np.array_equal(a[inf_a], e[inf_e]), f"{label}: infinities differ"
    ok = ~(nan_a | inf_a)
    a, e = a[ok], e[ok]
    zero = e == 0
    assert np.all(np.abs(a[zero]) <= ATOL_ZERO), f"{label}: expected 0, got {a[zero][np.abs(a[zero]) > ATOL_ZERO][:5]}"
    rel = np.abs(a[~zero] - e[~zero]) / np.abs(e[~zero])
    worst = float(rel.max()) if rel.size else 0.0
    _MAX_DIFF[what] = max(_MAX_DIFF[what], worst)
    if worst > rtol:
        i = int(np.argmax(rel))
        raise AssertionError(f"{label}: relative difference {worst:.3g} > {rtol:g} (ours {a[~zero][i]!r}, R {e[~zero][i]!r})")
    return worst


def ref(name: str) -> pd.DataFrame:
    """A reference table written by the R script (``km_tables``, ``logrank_cases``, ...)."""
    return _read_ref(name)


def load_data(name: str, status: str | None = None, event_value: str | None = None) -> pd.DataFrame:
    """A dataset as R held it; with ``status`` and ``event_value``, plus an ``_event``
    column equal to 1 where ``status == event_value`` and 0 elsewhere."""
    data = _read_data(name).copy()
    if status is not None:
        data["_event"] = (data[status].astype(float) == float(event_value)).astype(int)
    return data


close = _close


def _report() -> None:
    if _MAX_DIFF:
        print("\nlargest relative difference from R, per quantity")
        for what, worst in sorted(_MAX_DIFF.items()):
            print(f"{what:40s} {worst:.2e}")


if os.environ.get("KO_SURVIVAL_DIFFS"):
    atexit.register(_report)
