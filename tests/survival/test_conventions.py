"""The results convention (docs/api.md) for the survival models and curves, the names of
the previous release (deprecated aliases that still give the same numbers), and the one
formula layer (the kernel's model_frame: keyword columns, unknown names, the caller's
namespace, the one missing-value rule)."""

from __future__ import annotations

import dataclasses
import types
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

import analysis.survival as survival
from analysis import ConvergenceWarning
from analysis._kernel import ModelResult, SUMMARY_COLUMNS, RATIO_COLUMNS
from analysis.problems import DataValidationError
from analysis.survival import (
    AFTConvergenceWarning, CoxConvergenceWarning, aft, andersen_gill, cox, kaplan_meier, nelson_aalen, pwp_gap,
    turnbull, within_patient,
)

from survival_helpers import DEPRECATIONS_ARE_ERRORS, load_data  # tests/survival/survival_helpers.py

matplotlib.use("Agg")
pytestmark = DEPRECATIONS_ARE_ERRORS

CONVENTION = list(SUMMARY_COLUMNS) + list(RATIO_COLUMNS)


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


def durability() -> pd.DataFrame:
    d = load_data("bladder2_gap", "event", "1")
    return d.rename(columns={"id": "patient_id", "enum": "interval"})


def model_results() -> dict:
    d = small()
    dur = durability()
    return {
        "cox": cox("x + C(site)", d, duration="t", event="e"),
        "cox robust": cox("x + g", d, duration="t", event="e", cluster="id"),
        "andersen_gill": andersen_gill("rx + size", dur, time="gap", event="_event", timescale="gap"),
        "pwp_gap": pwp_gap("rx + size", dur, time="gap", event="_event"),
        "within_patient": within_patient("number", dur.assign(number=dur["number"] + dur["interval"]), time="gap",
                                         event="_event"),
        "aft": aft("~ x + C(site)", d, duration="t", event="e"),
        "aft exponential": aft("~ x", d, duration="t", event="e", dist="exponential"),
    }


MODELS = model_results()


# ---------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_model_results_follow_the_convention(name):
    import matplotlib.pyplot as plt

    fit = MODELS[name]
    assert isinstance(fit, ModelResult) and dataclasses.is_dataclass(fit)
    s = fit.summary
    assert s.index.name == "term"
    robust = name.startswith("cox robust") or name in ("andersen_gill", "pwp_gap")
    assert list(s.columns) == CONVENTION + (["naive_se"] if robust else [])
    pd.testing.assert_series_equal(fit.params, s["coef"])
    assert list(fit.cov.index) == list(fit.cov.columns) == list(s.index)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov.to_numpy())), s["se"], rtol=1e-12)
    pd.testing.assert_frame_equal(fit.conf_int(), s[["ci_lower", "ci_upper"]])
    np.testing.assert_allclose(s["statistic"], s["coef"] / s["se"], rtol=1e-12)
    finite = s["ratio"].notna()
    np.testing.assert_allclose(s.loc[finite, "ratio"], np.exp(s.loc[finite, "coef"]), rtol=1e-12)
    np.testing.assert_allclose(s.loc[finite, "ratio_lower"], np.exp(s.loc[finite, "ci_lower"]), rtol=1e-12)
    assert isinstance(fit.n_obs, int) and fit.n_obs > 0 and fit.n_dropped == 0
    assert fit.conf_level == 0.95 and fit.converged is True and isinstance(fit.formula, str)
    fig, ax = plt.subplots()
    assert fit.plot(ax=ax) is ax
    assert ax.get_xscale() == "log"
    plt.close(fig)


def test_robust_cox_se_is_the_one_inference_uses():
    fit = MODELS["cox robust"]
    s = fit.summary
    np.testing.assert_allclose(s["se"], np.sqrt(np.diag(fit.cov)), rtol=1e-12)
    np.testing.assert_allclose(s["naive_se"], np.sqrt(np.diag(fit.naive_cov)), rtol=1e-12)
    assert not np.allclose(s["se"], s["naive_se"])
    np.testing.assert_allclose(s["ci_upper"] - s["coef"], 1.959963984540054 * s["se"], rtol=1e-12)


def test_aft_intercept_and_scale_rows():
    s = MODELS["aft"].summary
    assert s.index[0] == "Intercept" and s.index[-1] == "Log(scale)"
    assert s.loc["Log(scale)", ["ratio", "ratio_lower", "ratio_upper"]].isna().all()
    assert "Log(scale)" not in MODELS["aft exponential"].summary.index
    assert list(MODELS["aft"].coef.index) == list(s.index[:-1])


def test_results_are_typed_dataclasses_without_free_attributes():
    for fit in MODELS.values():
        names = {f.name for f in dataclasses.fields(fit)}
        assert {"summary", "cov", "n_obs", "n_dropped", "conf_level", "converged", "formula"} <= names
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        MODELS["cox"].nosuch  # noqa: B018


# ---------------------------------------------------------------------------------------
# curves
# ---------------------------------------------------------------------------------------
def curves() -> dict:
    d = small()
    ic = load_data("ic_bcos")
    return {
        "kaplan_meier": kaplan_meier(d, "t", "e", group="g"),
        "nelson_aalen": nelson_aalen(d, "t", "e", group="g"),
        "turnbull": turnbull(ic, "L", "R", group="group", n_boot=20),
    }


@pytest.mark.parametrize("name", ["kaplan_meier", "nelson_aalen", "turnbull"])
def test_curves_have_table_median_at_and_plot(name):
    import matplotlib.pyplot as plt

    curve = curves()[name]
    t = curve.table
    cols = list(t.columns)
    assert cols[:2] == ["group", "time"]
    assert cols.index("se") < cols.index("ci_lower") < cols.index("ci_upper")
    m = curve.median
    assert {"group", "median", "ci_lower", "ci_upper"} <= set(m.columns)
    assert len(m) == t["group"].nunique()
    at = curve.at([5.0, 10.0])
    assert {"group", "time", "se", "ci_lower", "ci_upper"} <= set(at.columns)
    assert len(at) == 2 * t["group"].nunique()
    fig, ax = plt.subplots()
    assert curve.plot(ax=ax) is ax
    plt.close(fig)


def test_turnbull_se_is_the_bootstrap_standard_deviation():
    tb = curves()["turnbull"]
    t = tb.table
    assert (t["se"] >= 0).all() and t["se"].notna().all()
    none = turnbull(load_data("ic_bcos"), "L", "R", n_boot=0)
    assert none.table["se"].isna().all() and none.at([10])["se"].isna().all()


# ---------------------------------------------------------------------------------------
# the names of the previous release: they warn and give the same numbers
# ---------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("default::DeprecationWarning")
def test_old_cox_summary_columns_and_attributes_warn_and_agree():
    fit = MODELS["cox"]
    s = fit.summary
    for old, new in (("hr", "ratio"), ("hr_lower", "ratio_lower"), ("hr_upper", "ratio_upper"), ("z", "statistic")):
        with pytest.deprecated_call(match=f"'{old}'.*'{new}'"):
            got = s[old]
        pd.testing.assert_series_equal(got, s[new])
    with pytest.deprecated_call():
        both = s[["hr", "hr_lower", "p_value"]]
    assert list(both.columns) == ["hr", "hr_lower", "p_value"]
    np.testing.assert_array_equal(both.to_numpy(), s[["ratio", "ratio_lower", "p_value"]].to_numpy())
    for old, new in (("n", "n_obs"), ("vcov", "cov"), ("naive_vcov", "naive_cov"), ("coef", "params")):
        with pytest.deprecated_call(match=f"'{old}'.*'{new}'"):
            got = getattr(fit, old)
        value = getattr(fit, new)
        if isinstance(value, (pd.Series, pd.DataFrame)):
            assert got.equals(value)
        else:
            assert got == value
    with pytest.deprecated_call(match="hazard_ratios"):
        pd.testing.assert_series_equal(fit.hazard_ratios, s["ratio"])


@pytest.mark.filterwarnings("default::DeprecationWarning")
def test_old_robust_se_column_is_the_new_se():
    s = MODELS["cox robust"].summary
    with pytest.deprecated_call(match="'robust_se'.*'se'"):
        pd.testing.assert_series_equal(s["robust_se"], s["se"])
    assert "robust_se" not in MODELS["cox"].summary.columns
    with pytest.raises(KeyError):
        MODELS["cox"].summary["robust_se"]  # there was no robust SE without a robust variance


@pytest.mark.filterwarnings("default::DeprecationWarning")
def test_old_aft_names_warn_and_agree():
    fit = MODELS["aft"]
    s = fit.summary
    for old, new in (("time_ratio", "ratio"), ("time_ratio_lower", "ratio_lower"),
                     ("time_ratio_upper", "ratio_upper"), ("z", "statistic")):
        with pytest.deprecated_call(match=f"'{old}'"):
            pd.testing.assert_series_equal(s[old], s[new])
    with pytest.deprecated_call(match="'n'.*'n_obs'"):
        assert fit.n == fit.n_obs
    hr = fit.hazard_ratios()
    with pytest.deprecated_call(match="'hr'"):
        pd.testing.assert_series_equal(hr["hr"], hr["ratio"])
    with pytest.deprecated_call(match="'log_hr'"):
        pd.testing.assert_series_equal(hr["log_hr"], hr["coef"])


@pytest.mark.filterwarnings("default::DeprecationWarning")
def test_old_keyword_arguments_warn_and_give_the_same_fit():
    d = small()
    dur = durability()
    new = cox("x + g", d, duration="t", event="e", tol=1e-7)
    with pytest.deprecated_call(match="'eps'.*'tol'"):
        old = cox("x + g", d, duration="t", event="e", eps=1e-7)
    pd.testing.assert_frame_equal(old.summary, new.summary)
    with pytest.raises(TypeError, match="both"):
        cox("x", d, duration="t", event="e", eps=1e-7, tol=1e-7)

    new = aft("~ x", d, duration="t", event="e", max_iter=40, tol=1e-10)
    with pytest.deprecated_call(match="maxiter|rel_tolerance"):
        old = aft("~ x", d, duration="t", event="e", maxiter=40, rel_tolerance=1e-10)
    pd.testing.assert_frame_equal(old.summary, new.summary)
    assert old.iterations == new.iterations

    dur["number2"] = dur["number"] + dur["interval"]  # varies within patients
    for helper, f, kw in ((andersen_gill, "rx + size", {"timescale": "gap"}), (pwp_gap, "rx + size", {}),
                          (within_patient, "number2", {})):
        new = helper(f, dur, cluster="patient_id", time="gap", event="_event", **kw)
        with pytest.deprecated_call(match="'id'.*'cluster'"):
            old = helper(f, dur, id="patient_id", time="gap", event="_event", **kw)
        pd.testing.assert_frame_equal(old.summary, new.summary)

    ic = load_data("ic_bcos")
    new = turnbull(ic, "L", "R", n_boot=0, max_iter=50_000)
    with pytest.deprecated_call(match="'maxiter'.*'max_iter'"):
        old = turnbull(ic, "L", "R", n_boot=0, maxiter=50_000)
    pd.testing.assert_frame_equal(old.table, new.table)


def test_one_convergence_warning_class():
    assert CoxConvergenceWarning is ConvergenceWarning and AFTConvergenceWarning is ConvergenceWarning
    ic = load_data("ic_bcos")
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        tb = turnbull(ic, "L", "R", n_boot=0, max_iter=3)
    assert not all(tb.converged.values())
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        aft("~ x + C(site)", small(), duration="t", event="e", max_iter=1)
    with pytest.warns(ConvergenceWarning, match="Ran out of iterations"):
        cox("x + g", small(), duration="t", event="e", max_iter=2, tol=1e-15)


def test_warnings_point_at_the_callers_line():
    d = small()
    d["perfect"] = (d["e"] == 1) & (d["t"] < 10)
    with pytest.warns(ConvergenceWarning) as rec:
        cox("perfect", d, duration="t", event="e")
    assert rec[0].filename == __file__
    with pytest.warns(ConvergenceWarning) as rec:
        aft("~ x", d, duration="t", event="e", max_iter=1)
    assert rec[0].filename == __file__
    dur = durability()
    with pytest.warns(UserWarning, match="singular") as rec:
        within_patient("rx + number2", dur.assign(number2=dur["number"] + dur["interval"]), time="gap",
                       event="_event")
    assert {r.filename for r in rec} == {__file__}


def test_functions_are_not_shadowed_by_modules():
    for name in ("cox", "aft", "turnbull", "kaplan_meier", "nelson_aalen", "logrank", "rmst", "andersen_gill",
                 "pwp_gap", "within_patient"):
        assert callable(getattr(survival, name)) and not isinstance(getattr(survival, name), types.ModuleType)
    public_modules = [n for n, v in vars(survival).items() if isinstance(v, types.ModuleType) and not n.startswith("_")]
    assert sorted(public_modules) == ["recurrent", "zph"]


def test_common_reexports_are_the_kernels_checks():
    from analysis import _kernel
    from analysis.survival import _common

    for name in ("check_choice", "check_conf_level", "z_value"):
        assert getattr(_common, name) is getattr(_kernel, name)


# ---------------------------------------------------------------------------------------
# one formula layer
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["cox", "aft"])
def test_keyword_column_needs_quoting_and_works_quoted(model):
    d = small().rename(columns={"x": "lambda"})
    fit = cox if model == "cox" else aft
    with pytest.raises(DataValidationError) as err:
        fit("lambda + g", d, duration="t", event="e")
    text = str(err.value)
    assert "'lambda'" in text and "Python keyword" in text and 'Q("lambda")' in text
    quoted = fit('Q("lambda") + g', d, duration="t", event="e")
    plain = fit("x + g", small(), duration="t", event="e")
    np.testing.assert_allclose(quoted.params.to_numpy(), plain.params.to_numpy(), rtol=1e-12)
    assert 'Q("lambda")' in quoted.summary.index


@pytest.mark.parametrize("model", ["cox", "aft"])
def test_unknown_names_are_errors_naming_them(model):
    fit = cox if model == "cox" else aft
    with pytest.raises(DataValidationError, match="'agee', which is not a column"):
        fit("agee + x", small(), duration="t", event="e")


def test_formula_may_use_functions_of_the_callers_namespace():
    def doubled(v):
        return 2 * np.asarray(v)

    d = small()
    a = cox("doubled(x) + g", d, duration="t", event="e")
    b = cox("x + g", d.assign(x=2 * d["x"]), duration="t", event="e")
    np.testing.assert_allclose(a.params.to_numpy(), b.params.to_numpy(), rtol=1e-12)
    dur = durability()
    w = within_patient("doubled(number)", dur.assign(number=dur["number"] + dur["interval"]), time="gap",
                       event="_event")
    assert "doubled(number)" in w.summary.index
    c = aft("~ doubled(x)", d, duration="t", event="e")
    assert "doubled(x)" in c.summary.index


@pytest.mark.parametrize("role", ["weights", "strata", "cluster", "entry"])
def test_one_missing_value_rule_for_every_column_used(role):
    d = small().assign(w=1.0, s=0, start=0.0)
    col = {"weights": "w", "strata": "s", "cluster": "id", "entry": "start"}[role]
    d[col] = d[col].astype(float)
    d.loc[[4, 9], col] = np.nan
    kw = {"weights": "w", "strata": "s", "cluster": "id", "entry": "start"}
    kw = {role: kw[role]}
    with pytest.raises(DataValidationError) as err:
        cox("x", d, duration="t", event="e", **kw)
    text = str(err.value)
    assert f"'{col}'" in text and "2 row(s) have a missing value (row 5, 10)" in text and "dropna=True" in text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fit = cox("x", d, duration="t", event="e", dropna=True, **kw)
    assert fit.n_dropped == 2 and fit.n_obs == len(d) - 2 and fit.dropped_by_column == {col: 2}


def test_survival_checks_name_the_rows_of_the_table_after_dropped_rows():
    d = small()
    d.loc[[0, 1, 2], "x"] = np.nan
    d.loc[10, "t"] = -3.0
    d.loc[12, "e"] = 5
    with pytest.raises(DataValidationError) as err:
        cox("x", d, duration="t", event="e", dropna=True)
    text = str(err.value)
    assert "row 11" in text and "duration must be >= 0" in text
    assert "row 13" in text and "event must be 0/1" in text
    d.loc[[0, 1, 2], "x"] = 0.0
    d.loc[5, "x"] = np.nan
    with pytest.raises(DataValidationError) as err:  # every problem at once, the missing value too
        cox("x", d, duration="t", event="e")
    text = str(err.value)
    assert "row 11" in text and "row 13" in text and "1 row(s) have a missing value (row 6)" in text


def test_aft_interval_bounds_keep_their_own_missing_rule():
    ic = load_data("ic_bcos").assign(x=lambda f: np.arange(len(f)) % 2)
    ic.loc[3, ["L", "R"]] = np.nan
    with pytest.raises(DataValidationError, match="both NaN"):
        aft("~ x", ic, lower="L", upper="R")
    ic.loc[7, "x"] = np.nan
    fit = aft("~ x", ic, lower="L", upper="R", dropna=True)
    assert fit.n_dropped == 2 and fit.n_obs == len(ic) - 2
    assert fit.dropped_by_column == {"x": 1, "L, R": 1} and fit.counts["n_dropped"] == 2
