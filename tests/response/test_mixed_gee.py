"""mixed() against lme4::lmer and gee() against geepack::geeglm (make_response.R)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.response import gee, mixed

from response_helpers import RTOL_OPTIM, close, load_data, py_term, ref, ref_value

MIXED_CASES = {
    "sleep_intercept_reml": ("1", True),
    "sleep_intercept_ml": ("1", False),
    "sleep_slope_reml": ("~Days", True),
    "sleep_slope_ml": ("~Days", False),
}


@pytest.fixture(scope="module")
def mixed_fits():
    ss = load_data("sleepstudy")
    return {case: mixed("Reaction ~ Days", ss, groups="Subject", re_formula=re, reml=reml)
            for case, (re, reml) in MIXED_CASES.items()}


@pytest.mark.parametrize("case", MIXED_CASES)
def test_lmer_fixed_effects_and_vcov(mixed_fits, case):
    fit = mixed_fits[case]
    for quantity, column in (("coef", "coef"), ("se", "se")):
        r = ref("mixed", case, quantity)
        close(fit.summary.loc[[py_term(t) for t in r["term"]], column], r["value"], f"lmer.{column}", context=case,
              rtol=RTOL_OPTIM)


@pytest.mark.parametrize("case", MIXED_CASES)
def test_lmer_variance_components(mixed_fits, case):
    fit = mixed_fits[case]
    vc = fit.variance_components
    names = [("Residual" if g == "Residual" else t) for g, t in zip(vc["group"], vc["term"])]
    ours = pd.DataFrame({"variance": vc["variance"].to_numpy(), "sd": vc["sd"].to_numpy()},
                        index=[n.replace("Intercept", "(Intercept)") for n in names])
    r = ref("mixed", case, "vcov").set_index("term")["value"]
    close(ours.loc[r.index, "variance"], r, "lmer.variance", context=case, rtol=RTOL_OPTIM)
    r = ref("mixed", case, "sdcor").set_index("term")["value"]
    close(ours.loc[r.index, "sd"], r, "lmer.sd_or_corr", context=case, rtol=RTOL_OPTIM)


@pytest.mark.parametrize("case", MIXED_CASES)
def test_lmer_likelihood(mixed_fits, case):
    fit = mixed_fits[case]
    close(fit.loglik, ref_value("mixed", case, "loglik"), "lmer.loglik", context=case, rtol=1e-6)
    if fit.reml:
        close(fit.reml_criterion, ref_value("mixed", case, "REMLcrit"), "lmer.REMLcrit", context=case, rtol=1e-6)
        assert np.isnan(fit.deviance)
    else:
        close(fit.deviance, ref_value("mixed", case, "deviance"), "lmer.deviance", context=case, rtol=1e-6)


def test_lmer_population_predictions(mixed_fits):
    fit = mixed_fits["sleep_slope_reml"]
    p = fit.predict(pd.DataFrame({"Days": [0, 4.5, 9]}))
    close(p["prediction"], ref("mixed", "sleep_slope_reml", "pred")["value"], "lmer.pred", rtol=RTOL_OPTIM)
    assert (p["ci_lower"] < p["prediction"]).all()


def test_mixed_plot(mixed_fits):
    import matplotlib.pyplot as plt

    fit = mixed_fits["sleep_slope_reml"]
    fig, ax = plt.subplots()
    assert fit.plot(ax=ax) is ax
    assert len(ax.lines) == 18 + 1  # one curve per subject and the mean
    plt.close(fig)


# ---------------------------------------------------------------------------------------
# GEE
# ---------------------------------------------------------------------------------------
GEE_CASES = [(ds, cs) for ds in ("ohio", "dietox") for cs in ("exchangeable", "ar1", "independence")]


def _fit_gee(ds, cs):
    if ds == "ohio":
        return gee("resp ~ age + smoke", load_data("ohio"), groups="id", cov_struct=cs, family="binomial")
    return gee("Weight ~ Time + Cu", load_data("dietox"), groups="Pig", cov_struct=cs, time="Time")


@pytest.mark.parametrize("ds, cs", GEE_CASES, ids=[f"{d}-{c}" for d, c in GEE_CASES])
def test_geeglm(ds, cs):
    fit = _fit_gee(ds, cs)
    case = f"{ds}_{cs}"
    r = ref("gee", case, "coef")
    terms = [py_term(t) for t in r["term"]]
    close(fit.params[terms], r["value"], "geeglm.coef", context=case)
    r = ref("gee", case, "se")
    close(fit.summary.loc[terms, "se"], r["value"], "geeglm.san_se", context=case)
    alpha = ref_value("gee", case, "alpha")
    if cs == "independence":
        assert np.isnan(fit.alpha) and np.isnan(alpha)
    else:
        close(fit.alpha, alpha, "geeglm.alpha", context=case)
    close(fit.scale, ref_value("gee", case, "scale"), "geeglm.scale", context=case)


def test_gee_order_of_rows_does_not_matter():
    d = load_data("dietox")
    a = gee("Weight ~ Time + Cu", d, groups="Pig", cov_struct="ar1", time="Time")
    b = gee("Weight ~ Time + Cu", d.sample(frac=1.0, random_state=3), groups="Pig", cov_struct="ar1", time="Time")
    close(b.params, a.params, "geeglm.shuffled", rtol=1e-9)


def test_gee_predict_and_plot():
    import matplotlib.pyplot as plt

    fit = _fit_gee("ohio", "exchangeable")
    p = fit.predict(pd.DataFrame({"age": [-2, 1], "smoke": [0, 1]}))
    assert ((p["prediction"] > 0) & (p["prediction"] < 1)).all()
    fit2 = gee("Weight ~ Time", load_data("dietox"), groups="Pig", time="Time")
    fig, ax = plt.subplots()
    assert fit2.plot(ax=ax) is ax
    plt.close(fig)


def test_gee_bad_choices():
    d = load_data("ohio")
    with pytest.raises(ValueError, match="cov_struct"):
        gee("resp ~ age", d, groups="id", cov_struct="unstructured")
    with pytest.raises(ValueError, match="family"):
        gee("resp ~ age", d, groups="id", family="poisson")
    with pytest.raises(ValueError, match="groups column not found"):
        gee("resp ~ age", d, groups="child")
