"""The formula layer's plain-column path: a right-hand side of numeric columns named as they are
is built without patsy evaluating every row. It must give what patsy gives, bit for bit: the
design matrix (values, column names and order, index), the design info, the term positions,
predictions for new profiles, and so every model fitted on it."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

import analysis._kernel.formula as formula_module
from analysis._kernel.formula import design_for, model_frame
from analysis.response import logistic
from analysis.survival import cox


def _frame(seed: int, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "y": rng.integers(0, 2, n),
        "time": rng.exponential(30, n).round(1) + 0.5,
        "event": rng.integers(0, 2, n),
        "age": rng.integers(18, 80, n),                       # int64
        "dose": rng.normal(0.5, 0.1, n),                     # float64
        "score": rng.integers(0, 28, n).astype(np.int32),    # another integer width
        "signed": np.where(rng.random(n) < 0.2, -0.0, rng.normal(size=n)),  # negative zeros too
        "site": rng.choice(["a", "b", "c"], n),
        "flag": rng.random(n) < 0.5,
    }, index=pd.RangeIndex(100, 100 + n))


FORMULAS = [
    "y ~ age", "y ~ age + dose", "y ~ dose + age", "y ~ age + dose + score + signed", "y ~ 1",
    "y ~ age - 1", "y ~ 0 + dose + age", "y ~ signed + score",
]


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("seed", [1, 2])
def test_plain_design_is_patsys(formula, seed, monkeypatch):
    df = _frame(seed)
    profiles = _frame(seed + 100, n=7)
    fast = model_frame(formula, df)
    assert fast.plain is not None
    fast_pred = design_for(fast, profiles)
    monkeypatch.setattr(formula_module, "_plain_terms", lambda terms, frame: None)
    slow = model_frame(formula, df)
    slow_pred = design_for(slow, profiles)
    assert slow.plain is None
    pdt.assert_frame_equal(fast.X, slow.X, check_exact=True)
    assert np.array_equal(np.signbit(fast.X.to_numpy()), np.signbit(slow.X.to_numpy()))
    assert fast.design_info.column_names == slow.design_info.column_names
    assert [t.name() for t in fast.design_info.terms] == [t.name() for t in slow.design_info.terms]
    assert fast.terms == slow.terms and fast.columns == slow.columns
    pdt.assert_frame_equal(fast_pred, slow_pred, check_exact=True)


@pytest.mark.parametrize("intercept", [True, False])
def test_plain_design_without_intercept_and_nullable_profiles(intercept, monkeypatch):
    df = _frame(3)
    profiles = _frame(4, n=5).astype({"age": "Int64", "dose": "Float64"})
    fast = model_frame("y ~ age + dose", df, intercept=intercept)
    fast_pred = design_for(fast, profiles)
    monkeypatch.setattr(formula_module, "_plain_terms", lambda terms, frame: None)
    slow = model_frame("y ~ age + dose", df, intercept=intercept)
    pdt.assert_frame_equal(fast.X, slow.X, check_exact=True)
    pdt.assert_frame_equal(fast_pred, design_for(slow, profiles), check_exact=True)
    assert ("Intercept" in fast.X.columns) is intercept


@pytest.mark.parametrize("formula", ["y ~ C(site) + age", "y ~ flag + age", "y ~ np.log(age)", "y ~ age:dose",
                                     "y ~ age * dose", 'y ~ Q("age")', "y ~ I(age ** 2)"])
def test_anything_else_goes_through_patsy(formula):
    assert model_frame(formula, _frame(5)).plain is None


def test_a_formula_seen_before_is_coded_by_its_columns_of_now(monkeypatch):
    """The parse and the plain design information are kept by formula and terms: the same
    formula on a column that is text now (not plain) is coded by patsy as categories, and a
    design kept from before equals one worked out afresh."""
    numeric = _frame(9)
    first = model_frame("y ~ age + dose", numeric)
    text = numeric.assign(age=numeric["age"].map(lambda a: f"band {a // 20}"))
    coded = model_frame("y ~ age + dose", text)
    assert coded.plain is None and any(c.startswith("age[T.") for c in coded.X.columns)
    again = model_frame("y ~ age + dose", _frame(10))
    assert again.design_info is first.design_info                       # kept, not worked out again
    monkeypatch.setattr(formula_module, "_PLAIN_INFO", {})
    fresh = model_frame("y ~ age + dose", _frame(10))
    assert fresh.design_info is not first.design_info
    pdt.assert_frame_equal(again.X, fresh.X, check_exact=True)
    assert again.design_info.column_names == fresh.design_info.column_names


def test_plain_path_after_dropped_rows_keeps_their_index():
    df = _frame(6)
    df.loc[[103, 110], "dose"] = np.nan
    mf = model_frame("y ~ age + dose", df, dropna=True)
    assert mf.plain == ("age", "dose") and mf.n_dropped == 2
    assert 103 not in mf.X.index and mf.X.index.equals(df.index.drop([103, 110]))
    assert np.array_equal(mf.X["dose"].to_numpy(), df["dose"].dropna().to_numpy())


@pytest.mark.parametrize("seed", [7, 8])
def test_models_fit_the_same_on_either_path(seed, monkeypatch):
    df = _frame(seed, n=200)
    fits = {}
    for path in ("plain", "patsy"):
        if path == "patsy":
            monkeypatch.setattr(formula_module, "_plain_terms", lambda terms, frame: None)
        lr = logistic("y ~ age + dose + score", df)
        fits[path] = (lr.summary, lr.risk_difference("age", exposed=60, unexposed=40), lr.marginal_effects(),
                      cox("age + dose", df, duration="time", event="event").summary)
    for a, b in itertools.zip_longest(fits["plain"], fits["patsy"]):
        pdt.assert_frame_equal(a, b, check_exact=True)
