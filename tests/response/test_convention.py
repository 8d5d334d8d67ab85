"""The results convention (docs/api.md) on every response model: typed results deriving from
the kernel's ModelResult, the summary's columns in order, the same names for the same
things, and the names of the previous release kept for one release with a
DeprecationWarning that returns the same numbers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis._kernel import ModelResult
from analysis.response import gee, logistic, mixed, multinomial, ordinal, trajectory_plot

from response_helpers import STRICT, expand, load_data

pytestmark = STRICT

BASE = ["coef", "se", "statistic", "p_value", "ci_lower", "ci_upper"]
RATIO = ["ratio", "ratio_lower", "ratio_upper"]


def _fits():
    bw = load_data("birthwt")
    hs = expand(load_data("housing"), "Freq")
    ss = load_data("sleepstudy")
    return {
        "logistic": logistic("low ~ age + race + smoke", bw),
        "logistic_hc0": logistic("low ~ age + race + smoke", bw, weights="ipw", weight_type="probability"),
        "ordinal": ordinal("Sat ~ Infl + Cont", hs),
        "multinomial": multinomial("Sat ~ Infl + Cont", hs),
        "mixed": mixed("Reaction ~ Days", ss, cluster="Subject", re_formula="~Days"),
        "gee_gaussian": gee("Weight ~ Time + Cu", load_data("dietox"), cluster="Pig", cov_struct="ar1", time="Time"),
        "gee_binomial": gee("resp ~ age + smoke", load_data("ohio"), cluster="id", family="binomial"),
    }


COLUMNS = {
    "logistic": BASE + RATIO,
    "logistic_hc0": BASE + RATIO + ["naive_se"],
    "ordinal": BASE + RATIO + ["kind"],
    "multinomial": BASE + RATIO,
    "mixed": BASE,
    "gee_gaussian": BASE + ["naive_se"],
    "gee_binomial": BASE + RATIO + ["naive_se"],
}


@pytest.fixture(scope="module")
def fits():
    return _fits()


@pytest.mark.parametrize("name", list(COLUMNS))
def test_result_is_a_typed_model_result(fits, name):
    fit = fits[name]
    assert isinstance(fit, ModelResult) and dataclasses.is_dataclass(fit)
    fields = {f.name: f for f in dataclasses.fields(fit)}
    for attr in ("summary", "cov", "n_obs", "n_dropped", "conf_level", "converged", "formula"):
        assert attr in fields and fields[attr].kw_only, attr
    with pytest.raises(TypeError):
        type(fit)(fit.summary, fit.cov, fit.n_obs)  # keyword-only


@pytest.mark.parametrize("name", list(COLUMNS))
def test_summary_columns_and_names(fits, name):
    fit = fits[name]
    s = fit.summary
    assert list(s.columns) == COLUMNS[name]
    assert s.index.names == (["category", "term"] if name == "multinomial" else ["term"])
    pd.testing.assert_series_equal(fit.params, s["coef"])
    assert list(fit.cov.index) == list(fit.params.index) == list(fit.cov.columns)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov.to_numpy())), s["se"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(s["statistic"], s["coef"] / s["se"], rtol=1e-12)
    assert list(fit.conf_int().columns) == ["ci_lower", "ci_upper"]
    assert isinstance(fit.n_obs, int) and fit.n_obs > 0 and fit.n_dropped == 0
    assert fit.conf_level == 0.95 and fit.converged is True and isinstance(fit.formula, str)
    if "ratio" in s.columns:
        ok = s["ratio"].notna()
        np.testing.assert_allclose(s.loc[ok, "ratio"], np.exp(s.loc[ok, "coef"]), rtol=1e-12)
        np.testing.assert_allclose(s.loc[ok, "ratio_lower"], np.exp(s.loc[ok, "ci_lower"]), rtol=1e-12)
    if name != "ordinal":  # polr has no intercept (thresholds instead)
        assert "Intercept" in s.index.get_level_values("term")


def test_ordinal_thresholds_have_no_ratio(fits):
    s = fits["ordinal"].summary
    thr = s["kind"] == "threshold"
    assert list(s.index[thr]) == ["Low|Medium", "Medium|High"]
    assert s.loc[thr, RATIO].isna().all().all() and s.loc[~thr, RATIO].notna().all().all()


@pytest.mark.parametrize("name", list(COLUMNS))
def test_plot_draws_the_estimates(fits, name):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert fits[name].plot(ax=ax) is ax
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels and "Intercept" not in labels
    assert ax.get_xscale() == ("log" if "ratio" in COLUMNS[name] else "linear")
    plt.close(fig)


def test_same_names_for_the_same_things(fits):
    for name in ("mixed", "gee_gaussian", "gee_binomial"):
        fit = fits[name]
        assert fit.cluster in fit._mf.data.columns and fit.n_clusters == fit._mf.data[fit.cluster].nunique()
    assert fits["logistic"].cov_type == "model" and fits["logistic_hc0"].cov_type == "HC0"
    assert analysis.ConvergenceWarning is analysis._kernel.ConvergenceWarning


# ---------------------------------------------------------------------------------------
# names of the previous release: one release, with a DeprecationWarning, same numbers
# ---------------------------------------------------------------------------------------
OLD_COLUMNS = {
    "logistic": {"z": "statistic", "odds_ratio": "ratio", "odds_ratio_ci_lower": "ratio_lower",
                 "odds_ratio_ci_upper": "ratio_upper"},
    "ordinal": {"z": "statistic", "odds_ratio": "ratio", "odds_ratio_ci_lower": "ratio_lower",
                "odds_ratio_ci_upper": "ratio_upper"},
    "gee_binomial": {"z": "statistic", "odds_ratio": "ratio", "odds_ratio_ci_lower": "ratio_lower",
                     "odds_ratio_ci_upper": "ratio_upper"},
    "multinomial": {"z": "statistic", "rrr": "ratio", "rrr_ci_lower": "ratio_lower", "rrr_ci_upper": "ratio_upper"},
    "mixed": {"z": "statistic"},
    "gee_gaussian": {"z": "statistic"},
}


@pytest.mark.parametrize("name", list(OLD_COLUMNS))
def test_old_summary_columns_warn_and_agree(fits, name):
    s = fits[name].summary
    for old, new in OLD_COLUMNS[name].items():
        with pytest.deprecated_call(match=f"'{old}' is deprecated.*use '{new}'"):
            got = s[old]
        pd.testing.assert_series_equal(got, s[new], check_names=False)
    olds = list(OLD_COLUMNS[name])
    with pytest.deprecated_call():
        got = s[olds]
    assert list(got.columns) == olds
    np.testing.assert_array_equal(got.to_numpy(), s[list(OLD_COLUMNS[name].values())].to_numpy())


def test_old_attribute_names_warn_and_agree(fits):
    with pytest.deprecated_call(match="'vcov' is deprecated.*'cov_type'"):
        assert fits["logistic_hc0"].vcov == "HC0"
    for name in ("mixed", "gee_gaussian"):
        fit = fits[name]
        with pytest.deprecated_call(match="'groups' is deprecated.*'cluster'"):
            assert fit.groups == fit.cluster
        with pytest.deprecated_call(match="'n_groups' is deprecated.*'n_clusters'"):
            assert fit.n_groups == fit.n_clusters


def test_old_argument_names_warn_and_agree(fits):
    ss, dx, bw = load_data("sleepstudy"), load_data("dietox"), load_data("birthwt")
    with pytest.deprecated_call(match="'groups' is deprecated.*'cluster'"):
        m = mixed("Reaction ~ Days", ss, groups="Subject", re_formula="~Days")
    pd.testing.assert_frame_equal(pd.DataFrame(m.summary), pd.DataFrame(fits["mixed"].summary))
    with pytest.deprecated_call(match="'groups' is deprecated.*'cluster'"):
        g = gee("Weight ~ Time + Cu", dx, groups="Pig", cov_struct="ar1", time="Time")
    pd.testing.assert_frame_equal(pd.DataFrame(g.summary), pd.DataFrame(fits["gee_gaussian"].summary))
    with pytest.deprecated_call(match="'vcov' is deprecated.*'cov_type'"):
        lg = logistic("low ~ age + race + smoke", bw, weights="ipw", weight_type="probability", vcov="HC0")
    pd.testing.assert_frame_equal(pd.DataFrame(lg.summary), pd.DataFrame(fits["logistic_hc0"].summary))
    with pytest.raises(TypeError, match="both 'groups'"):
        gee("Weight ~ Time", dx, groups="Pig", cluster="Pig")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    with pytest.deprecated_call(match="'groups' is deprecated"):
        trajectory_plot(ss, time="Days", score="Reaction", groups="Subject", ax=ax)
    plt.close(fig)


def test_effect_tables_say_statistic_and_keep_z(fits):
    me = fits["logistic"].marginal_effects()
    assert list(me.columns) == ["variable", "contrast", "estimate", "se", "statistic", "p_value", "ci_lower", "ci_upper"]
    with pytest.deprecated_call(match="'z' is deprecated.*'statistic'"):
        pd.testing.assert_series_equal(me["z"], me["statistic"], check_names=False)
    rd = fits["multinomial"].risk_difference("Cont")
    assert "statistic" in rd.columns and "z" not in rd.columns
    assert rd.xs("p_exposed", level="quantity")["statistic"].isna().all()


def test_non_convergence_is_the_kernels_warning(monkeypatch):
    """A fit that stops early warns with analysis.ConvergenceWarning and says so in
    ``converged``."""
    import importlib

    from analysis.response._categorical import fit_mnlogit

    mn_module = importlib.import_module("analysis.response._multinomial")

    def not_converged(*args, **kwargs):
        fit = fit_mnlogit(*args, **kwargs)
        fit.converged = False
        return fit

    monkeypatch.setattr(mn_module, "fit_mnlogit", not_converged)
    with pytest.warns(analysis.ConvergenceWarning, match="did not converge"):
        fit = multinomial("Sat ~ Infl", expand(load_data("housing"), "Freq"))
    assert fit.converged is False


def test_user_functions_in_formulas_of_every_model():
    """Names of the caller's namespace resolve, also through the renamed-argument wrappers."""

    def per_ten(x):
        return x / 10.0

    bw, ss, dx = load_data("birthwt"), load_data("sleepstudy"), load_data("dietox")
    a = logistic("low ~ per_ten(age) + smoke", bw)
    b = logistic("low ~ I(age / 10) + smoke", bw)
    np.testing.assert_allclose(a.params.to_numpy(), b.params.to_numpy(), rtol=1e-12)
    m = mixed("Reaction ~ per_ten(Days)", ss, cluster="Subject")
    assert "per_ten(Days)" in m.summary.index
    g = gee("Weight ~ per_ten(Time)", dx, cluster="Pig", time="Time")
    assert "per_ten(Time)" in g.summary.index


def test_multinomial_separation_is_an_error():
    x = np.arange(30.0)
    d = pd.DataFrame({"x": x, "y": np.where(x < 10, "a", np.where(x < 20, "b", "c"))})
    with pytest.raises(ValueError, match="non-finite estimates"):
        multinomial("y ~ x", d)
