"""Input checks, formulas and the trajectory plot: clear errors, nothing dropped silently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.problems import DataValidationError
from analysis.response import logistic, mixed, multinomial, ordinal, trajectory_plot

from response_helpers import STRICT, close, load_data

pytestmark = STRICT


@pytest.fixture(scope="module")
def courses():
    rng = np.random.default_rng(4)
    n = 300
    fail = rng.integers(0, 7, n)
    benzo = rng.random(n) < 0.3
    eta = 0.8 - 0.3 * fail - 0.6 * benzo
    u = rng.logistic(size=n) + eta
    cat = np.where(u > 0.5, "responder", np.where(u > -0.5, "partial", "non-responder"))
    return pd.DataFrame({
        "category": pd.Categorical(cat, categories=["non-responder", "partial", "responder"], ordered=True),
        "prior_treatment_failures": pd.array(fail, dtype="Int64"),  # nullable dtypes, as derive_outcomes gives
        "class_benzodiazepine": pd.array(benzo, dtype="boolean"),
        "site": pd.array(rng.choice(["site_A", "site_B", "site_C"], n), dtype="string"),
        "remission": pd.array(u > 1.5, dtype="boolean"),
    })


def test_nullable_dtypes_are_read(courses):
    fit = logistic("remission ~ prior_treatment_failures + class_benzodiazepine + site", courses)
    assert list(fit.summary.index) == ["Intercept", "class_benzodiazepine[T.True]", "site[T.site_B]", "site[T.site_C]",
                                       "prior_treatment_failures"]
    plain = courses.astype({"prior_treatment_failures": float, "class_benzodiazepine": bool, "site": object, "remission": bool})
    close(logistic("remission ~ prior_treatment_failures + class_benzodiazepine + site", plain).params,
          fit.params, "api.nullable", rtol=1e-12)


def test_missing_nullable_values_are_counted(courses):
    d = courses.copy()
    d.loc[[1, 5, 9], "class_benzodiazepine"] = pd.NA
    d.loc[[5], "category"] = np.nan
    with pytest.raises(DataValidationError) as err:
        ordinal("category ~ class_benzodiazepine", d)
    text = str(err.value)
    assert "class_benzodiazepine" in text and "category" in text and "dropna=True" in text
    fit = ordinal("category ~ class_benzodiazepine", d, dropna=True)
    assert fit.n_dropped == 3 and fit.n_obs == len(d) - 3


def test_reference_level_can_be_chosen(courses):
    fit = logistic("remission ~ C(site, Treatment('site_B'))", courses)
    assert "C(site, Treatment('site_B'))[T.site_A]" in fit.summary.index


def test_multinomial_reference_and_string_outcome(courses):
    d = courses.assign(category=courses["category"].astype(str))
    fit = multinomial("category ~ prior_treatment_failures", d)
    assert fit.levels == ["non-responder", "partial", "responder"]  # sorted strings


def test_ordinal_marginal_effects_by_derivative_equal_finite_difference(courses):
    d = courses.astype({"prior_treatment_failures": float})
    fit = ordinal("category ~ prior_treatment_failures + I(prior_treatment_failures ** 2)", d)
    me = fit.marginal_effects()
    h = 1e-4
    up = d.assign(prior_treatment_failures=d["prior_treatment_failures"] + h)
    dn = d.assign(prior_treatment_failures=d["prior_treatment_failures"] - h)
    fd = (fit._probs(fit._theta, fit._design(up)) - fit._probs(fit._theta, fit._design(dn))).mean(axis=0) / (2 * h)
    close(me.xs("prior_treatment_failures", level="term")["estimate"], fd, "api.ame_fd", rtol=1e-6)


def test_bad_formula_and_outcome(courses):
    with pytest.raises(ValueError, match="formula"):
        logistic("remission", courses)
    with pytest.raises(ValueError, match="at least 3"):
        ordinal("remission ~ site", courses.assign(remission=courses["remission"].astype(int)))
    with pytest.raises(ValueError, match="levels"):
        fit = logistic("remission ~ site", courses)
        fit.risk_difference("site")
    with pytest.raises(ValueError, match="not a variable"):
        logistic("remission ~ site", courses).risk_difference("age")


def test_predict_needs_the_model_columns(courses):
    fit = logistic("remission ~ prior_treatment_failures + site", courses)
    with pytest.raises(DataValidationError, match="site"):
        fit.predict(pd.DataFrame({"prior_treatment_failures": [1, 2]}))
    p = fit.predict(pd.DataFrame({"prior_treatment_failures": [1, 2], "site": ["site_A", "site_C"]}))
    assert p["probability"].between(0, 1).all()


def test_trajectory_plot_without_and_with_model():
    import matplotlib.pyplot as plt

    ss = load_data("sleepstudy")
    fig, ax = plt.subplots(1, 2)
    out = trajectory_plot(ss, time="Days", score="Reaction", cluster="Subject", ax=ax[0])
    assert out is ax[0] and len(ax[0].lines) == 18
    fit = mixed("Reaction ~ Days", ss, cluster="Subject")
    trajectory_plot(ss, time="Days", score="Reaction", cluster="Subject", model=fit, ax=ax[1], max_curves=5)
    assert len(ax[1].lines) == 5 + 1 and len(ax[1].collections) == 1  # curves, mean, band
    plt.close(fig)
    with pytest.raises(ValueError, match="not found"):
        trajectory_plot(ss, time="day", score="Reaction", cluster="Subject")


def test_mixed_names_an_unknown_random_effect_variable():
    ss = load_data("sleepstudy")
    with pytest.raises(DataValidationError, match="random-effect variable column not found.*|dayz"):
        mixed("Reaction ~ Days", ss, cluster="Subject", re_formula="~dayz")
    d = ss.copy()
    d.loc[[0, 3], "Days"] = np.nan
    with pytest.raises(DataValidationError, match="Days"):
        mixed("Reaction ~ 1", d, cluster="Subject", re_formula="~Days")
    fit = mixed("Reaction ~ 1", d, cluster="Subject", re_formula="~Days", dropna=True)
    assert fit.n_dropped == 2 and fit.n_obs == len(d) - 2
