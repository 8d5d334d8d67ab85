"""Behaviour of analysis.survival.cox beyond the R fixtures: input checking, invariances,
edge cases, plots and the docstring examples."""

from __future__ import annotations

import doctest
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

from analysis import ConvergenceWarning
from analysis.problems import DataValidationError
from analysis.survival import cox, nelson_aalen

from survival_helpers import DEPRECATIONS_ARE_ERRORS, load_data  # tests/survival/survival_helpers.py

matplotlib.use("Agg")
pytestmark = DEPRECATIONS_ARE_ERRORS


def lung() -> pd.DataFrame:
    d = load_data("lung", "status", "2").rename(columns=lambda c: c.replace(".", "_"))
    return d


def small(seed: int = 3, n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    g = rng.integers(0, 2, n)
    t = np.ceil(rng.exponential(20 * np.exp(-(0.5 * x - 0.7 * g))))
    c = np.ceil(rng.uniform(5, 60, n))
    return pd.DataFrame({
        "t": np.minimum(t, c), "e": (t <= c).astype(int), "x": x, "g": g,
        "site": rng.choice(["A", "B", "C"], n), "id": rng.integers(0, 30, n),
    })


@pytest.mark.parametrize("module", ["analysis.survival._cox", "analysis.survival.zph", "analysis.survival.recurrent"])
def test_docstring_examples_run(module):
    import importlib

    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------------------------------
# input checking
# ---------------------------------------------------------------------------------------
def test_unknown_formula_column_is_named():
    with pytest.raises(DataValidationError, match="'agee'"):
        cox("agee + sex", lung(), duration="time", event="_event")


def test_missing_values_are_an_error_naming_column_and_rows_unless_dropna():
    d = lung()
    with pytest.raises(DataValidationError) as err:
        cox("age + ph_ecog + wt_loss", d, duration="time", event="_event")
    text = str(err.value)
    assert "ph_ecog" in text and "wt_loss" in text and "dropna=True" in text
    fit = cox("age + ph_ecog + wt_loss", d, duration="time", event="_event", dropna=True)
    expected = int(d[["ph_ecog", "wt_loss"]].isna().any(axis=1).sum())
    assert fit.n_dropped == expected and fit.n_obs == len(d) - expected
    assert fit.dropped_by_column == {"ph_ecog": 1, "wt_loss": 14}


def test_all_problems_reported_at_once():
    d = lung()
    d.loc[3, "_event"] = 7
    d.loc[5, "time"] = -1
    with pytest.raises(DataValidationError) as err:
        cox("age + ph_ecog", d, duration="time", event="_event")
    text = str(err.value)
    assert "event must be 0/1" in text and "duration must be >= 0" in text and "ph_ecog" in text


def test_non_finite_model_column_names_row_and_value():
    d = small()
    d.loc[4, "x"] = 0.0
    with pytest.raises(DataValidationError, match=r"np.log\(x\).*|row 5"):
        cox("np.log(x)", d, duration="t", event="e")


def test_bad_arguments():
    d = small()
    with pytest.raises(ValueError, match="right-hand side"):
        cox("t ~ x", d, duration="t", event="e")
    with pytest.raises(ValueError, match="ties"):
        cox("x", d, duration="t", event="e", ties="exact")
    with pytest.raises(ValueError, match="no events"):
        cox("x", d.assign(e=0), duration="t", event="e")
    with pytest.raises(DataValidationError, match="strata column not found"):
        cox("x", d, duration="t", event="e", strata="nosuch")
    d["start"] = 0.0
    with pytest.raises(ValueError, match="cluster="):
        cox("x", d, duration="t", event="e", entry="start", robust=True)
    with pytest.warns(UserWarning, match="cluster is ignored"):
        fit = cox("x", d, duration="t", event="e", cluster="id", robust=False)
    assert "naive_se" not in fit.summary and fit.n_clusters == 0


# ---------------------------------------------------------------------------------------
# invariances and special cases
# ---------------------------------------------------------------------------------------
def test_row_order_does_not_matter():
    d = small()
    a = cox("x + C(site)", d, duration="t", event="e", strata="g", cluster="id")
    b = cox("x + C(site)", d.sample(frac=1, random_state=1), duration="t", event="e", strata="g", cluster="id")
    pd.testing.assert_frame_equal(a.summary, b.summary, rtol=1e-10)
    pd.testing.assert_frame_equal(a.tests, b.tests, rtol=1e-10)


def test_whole_number_weights_equal_replicated_rows_with_breslow_ties():
    d = small()
    w = (np.arange(len(d)) % 3) + 1
    rep = d.loc[d.index.repeat(w)].reset_index(drop=True)
    a = cox("x + g", d.assign(w=w), duration="t", event="e", weights="w", ties="breslow")
    b = cox("x + g", rep, duration="t", event="e", ties="breslow")
    assert not a.robust  # whole-number weights: model-based variance, as R
    np.testing.assert_allclose(a.summary[["coef", "se"]], b.summary[["coef", "se"]], rtol=1e-9)
    np.testing.assert_allclose(a.loglik, b.loglik, rtol=1e-12)
    # Efron (as R) expands a tied time by the number of event rows, not by their weight:
    # frequency weights then differ from replicated rows unless there are no ties
    e1 = cox("x + g", d.assign(w=w), duration="t", event="e", weights="w", ties="efron")
    e2 = cox("x + g", rep, duration="t", event="e", ties="efron")
    assert not np.allclose(e1.summary["coef"], e2.summary["coef"], rtol=1e-6)
    u = d.assign(w=w, t=d["t"] + np.arange(len(d)) * 1e-3)
    e3 = cox("x + g", u, duration="t", event="e", weights="w", ties="efron")
    e4 = cox("x + g", u.loc[u.index.repeat(w)], duration="t", event="e", ties="breslow")
    np.testing.assert_allclose(e3.summary["coef"], e4.summary["coef"], rtol=1e-9)


def test_efron_equals_breslow_without_ties():
    d = small()
    d["t"] = d["t"] + np.arange(len(d)) * 1e-3  # all distinct
    a = cox("x + g", d, duration="t", event="e", ties="efron")
    b = cox("x + g", d, duration="t", event="e", ties="breslow")
    pd.testing.assert_frame_equal(a.summary, b.summary, rtol=1e-12)


def test_entry_zero_equals_right_censored():
    d = small().assign(zero=0.0)
    a = cox("x + g", d, duration="t", event="e")
    b = cox("x + g", d, duration="t", event="e", entry="zero")
    np.testing.assert_allclose(a.summary[["coef", "se"]], b.summary[["coef", "se"]], rtol=1e-9)


def test_null_model_baseline_is_nelson_aalen():
    d = small()
    fit = cox("1", d, duration="t", event="e", ties="breslow")
    assert fit.summary.empty and fit.tests.empty
    assert fit.loglik["null"] == fit.loglik["model"]
    na = nelson_aalen(d, "t", "e").table
    bh = fit.baseline_hazard()
    np.testing.assert_allclose(bh["cumhaz"], na["cumhaz"], rtol=1e-12)


def test_infinite_coefficient_warns():
    d = small()
    d["perfect"] = (d["e"] == 1) & (d["t"] < 10)
    with pytest.warns(ConvergenceWarning, match="infinite"):
        cox("perfect", d, duration="t", event="e")


def test_collinear_column_is_nan_and_skipped_by_ph_test():
    d = small()
    d["x2"] = 2 * d["x"]
    with pytest.warns(UserWarning, match="singular"):
        fit = cox("x + g + x2", d, duration="t", event="e")
    assert np.isnan(fit.summary.loc["x2", "coef"]) and np.isfinite(fit.summary.loc["x", "coef"])
    assert fit.tests.loc["wald", "df"] == 2
    assert list(fit.ph_test().table.index) == ["x", "g", "GLOBAL"]


def test_nullable_and_categorical_columns():
    d = small()
    d["flag"] = pd.array(d["g"] == 1, dtype="boolean")
    d["site_s"] = pd.array(d["site"], dtype="string")
    d["site_c"] = pd.Categorical(d["site"], categories=["C", "A", "B"])
    with pytest.warns(UserWarning, match="singular"):
        fit = cox("flag + site_s + site_c", d, duration="t", event="e")
    assert list(fit.summary.index)[:3] == ["flag[T.True]", "site_s[T.B]", "site_s[T.C]"]
    assert "site_c[T.A]" in fit.summary.index  # the Categorical's first category is the reference
    assert np.isnan(fit.summary.loc["site_c[T.B]", "coef"])  # collinear with site_s


def test_predict_and_profiles():
    d = small()
    fit = cox("x + C(site)", d, duration="t", event="e", strata="g")
    prof = pd.DataFrame({"x": [0.0, 1.0], "site": ["A", "B"]}, index=["p0", "p1"])
    curves = fit.predict_survival(prof, times=[0, 5, 10, 500])
    assert set(curves["profile"]) == {"p0", "p1"} and set(curves["stratum"]) == {0, 1}
    first = curves[curves["time"] == 0]
    assert (first["survival"] == 1).all() and (first["se"] == 0).all()
    full = fit.predict_survival(prof)
    for (label, stratum), part in full.groupby(["profile", "stratum"]):
        at = curves[(curves["profile"] == label) & (curves["stratum"] == stratum)].set_index("time")
        k = np.searchsorted(part["time"].to_numpy(), 10.0, side="right") - 1
        assert at.loc[10.0, "survival"] == pytest.approx(part["survival"].iloc[k], rel=1e-12)
        assert at.loc[10.0, "se"] == pytest.approx(part["se"].iloc[k], rel=1e-12)
        assert at.loc[500.0, "n_risk"] == 0
        assert at["n_event"].sum() == pytest.approx(part["n_event"].sum())
    own = fit.predict_survival(prof.assign(g=[1, 0]), times=[10])
    assert list(own["stratum"]) == [1, 0]
    with pytest.raises(ValueError, match="strata not in the model"):
        fit.predict_survival(prof.assign(g=[5, 0]))
    with pytest.raises(ValueError, match="site.*missing from the profiles|missing from the profiles.*site"):
        fit.predict_survival({"x": 1.0})
    risk = fit.predict(prof, type="risk")
    lp = fit.predict(prof)
    np.testing.assert_allclose(risk, np.exp(lp))
    at_means = fit.means.to_numpy() @ fit.params.to_numpy()
    np.testing.assert_allclose(lp, fit.predict(prof).to_numpy())
    assert np.isfinite(at_means)


def test_plots_return_axes():
    import matplotlib.pyplot as plt

    d = small()
    fit = cox("x + C(site)", d, duration="t", event="e", cluster="id")
    fig, ax = plt.subplots()
    assert fit.plot(ax=ax) is ax
    zph = fit.ph_test()
    assert zph.plot("x", ax=ax) is ax
    assert zph.plot(ax=ax) is ax
    plt.close(fig)
    with pytest.raises(ValueError, match="term must be one of"):
        zph.plot("nosuch")


def test_repr_and_residuals():
    d = small()
    fit = cox("x + g", d, duration="t", event="e", cluster="id")
    assert "CoxResult" in repr(fit) and "robust_score" in repr(fit)
    dfb = fit.residuals("dfbeta")
    assert dfb.shape == (len(d), 2)
    per_cluster = dfb.groupby(d["id"].to_numpy()).sum()
    np.testing.assert_allclose(per_cluster.T.to_numpy() @ per_cluster.to_numpy(), fit.cov.to_numpy(), rtol=1e-10)
    sch = fit.residuals("schoenfeld")
    assert len(sch) == int(d["e"].sum())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit.concordance  # noqa: B018
