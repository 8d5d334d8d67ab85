"""mixed() against lme4::lmer and gee() against geepack::geeglm (make_response.R), including
geeglm's AR(1) with unevenly spaced waves and missed visits (nlme's Orthodont)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.response import GeepackAR1, gee, mixed, wave_index

from response_helpers import RTOL_OPTIM, STRICT, close, load_data, py_term, ref, ref_value

pytestmark = STRICT

MIXED_CASES = {
    "sleep_intercept_reml": ("1", True),
    "sleep_intercept_ml": ("1", False),
    "sleep_slope_reml": ("~Days", True),
    "sleep_slope_ml": ("~Days", False),
}


@pytest.fixture(scope="module")
def mixed_fits():
    ss = load_data("sleepstudy")
    return {case: mixed("Reaction ~ Days", ss, cluster="Subject", re_formula=re, reml=reml)
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
    fig, ax = plt.subplots(1, 2)
    assert fit.plot(ax=ax[0], kind="trajectories") is ax[0]
    assert len(ax[0].lines) == 18 + 1  # one curve per subject and the mean
    assert fit.plot(ax=ax[1]) is ax[1]  # the convention's default: the estimates, intercept left out
    assert [t.get_text() for t in ax[1].get_yticklabels()] == ["Days"]
    plt.close(fig)
    with pytest.raises(ValueError, match="kind"):
        fit.plot(kind="spaghetti")


# ---------------------------------------------------------------------------------------
# GEE
# ---------------------------------------------------------------------------------------
GEE_CASES = [(ds, cs) for ds in ("ohio", "dietox") for cs in ("exchangeable", "ar1", "independence")]


def _fit_gee(ds, cs):
    if ds == "ohio":
        return gee("resp ~ age + smoke", load_data("ohio"), cluster="id", cov_struct=cs, family="binomial")
    return gee("Weight ~ Time + Cu", load_data("dietox"), cluster="Pig", cov_struct=cs, time="Time")


def _check_geeglm(fit, case, cs):
    r = ref("gee", case, "coef")
    terms = [py_term(t) for t in r["term"]]
    close(fit.params[terms], r["value"], "geeglm.coef", context=case)
    close(fit.summary.loc[terms, "se"], ref("gee", case, "se")["value"], "geeglm.san_se", context=case)
    close(fit.summary.loc[terms, "naive_se"], ref("gee", case, "se_naive")["value"], "geeglm.naive_se", context=case)
    alpha = ref_value("gee", case, "alpha")
    if cs == "independence":
        assert np.isnan(fit.alpha) and np.isnan(alpha)
    else:
        close(fit.alpha, alpha, "geeglm.alpha", context=case)
    close(fit.scale, ref_value("gee", case, "scale"), "geeglm.scale", context=case)


@pytest.mark.parametrize("ds, cs", GEE_CASES, ids=[f"{d}-{c}" for d, c in GEE_CASES])
def test_geeglm(ds, cs):
    _check_geeglm(_fit_gee(ds, cs), f"{ds}_{cs}", cs)


# ---------------------------------------------------------------------------------------
# AR(1): geeglm(waves = time) uses only the order of the times
# ---------------------------------------------------------------------------------------
def _orthodont(missed: bool = False) -> pd.DataFrame:
    """nlme's Orthodont: distance at ages 8, 10, 12, 14 (``day`` = 0, 7, 14, 21: weekly
    visits; ``visit`` = 0..3); ``missed`` marks the age-10 rows of six children."""
    d = load_data("orthodont")
    d["visit"] = (d["age"] - 8) // 2
    return d[~d["missed"]].reset_index(drop=True) if missed else d


AR1_CASES = [
    # (R case, missed visits, time column); geeglm's waves are the order of the times, so
    # ages 8/10/12/14, days 0/7/14/21 and visits 0..3 all give the same fit
    ("orthodont_ar1", False, "age"),  # two years apart: alpha was 0 before (no lag-1 pair)
    ("orthodont_days_ar1", False, "day"),  # every 7 days: alpha was 0 before
    ("orthodont_ar1", False, "visit"),
    ("orthodont_missed_ar1", True, "age"),
    ("orthodont_missed_days_ar1", True, "day"),
    # one unit apart with missed visits: alpha from time lags, but the working correlation
    # was built from positions before
    ("orthodont_missed_ar1", True, "visit"),
    ("orthodont_missed_nowaves_ar1", True, None),  # no time: the position within the child
]


@pytest.mark.parametrize("case, missed, time", AR1_CASES, ids=[f"{c}-{t}" for c, _, t in AR1_CASES])
def test_geeglm_ar1_on_uneven_waves_and_missed_visits(case, missed, time):
    d = _orthodont(missed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning, no fall-back to independence
        fit = gee("distance ~ age + Sex", d, cluster="Subject", cov_struct="ar1", time=time)
    assert fit.converged and fit.n_obs == len(d) and fit.n_clusters == 27
    _check_geeglm(fit, case, "ar1")


def test_geeglm_exchangeable_on_orthodont():
    fit = gee("distance ~ age + Sex", _orthodont(), cluster="Subject", cov_struct="exchangeable", time="age")
    _check_geeglm(fit, "orthodont_exchangeable", "exchangeable")


def test_geeglm_binomial_ar1_with_missed_visits():
    oh = load_data("ohio")
    ohm = oh[~((oh["id"] % 5 == 0) & (oh["age"] == 0))]  # as make_response.R
    fit = gee("resp ~ age + smoke", ohm, cluster="id", cov_struct="ar1", family="binomial", time="age")
    _check_geeglm(fit, "ohio_missed_ar1", "ar1")


def test_waves_are_numbered_among_the_rows_used():
    """With dropna=True the waves come from the rows kept (geeglm after na.omit)."""
    d = _orthodont()
    d.loc[d["missed"], "distance"] = np.nan
    fit = gee("distance ~ age + Sex", d, cluster="Subject", cov_struct="ar1", time="day", dropna=True)
    assert fit.n_dropped == int(d["missed"].sum())
    _check_geeglm(fit, "orthodont_missed_ar1", "ar1")


def test_ar1_rows_in_any_order():
    d = _orthodont(missed=True)
    a = gee("distance ~ age + Sex", d, cluster="Subject", cov_struct="ar1", time="day")
    b = gee("distance ~ age + Sex", d.sample(frac=1.0, random_state=5), cluster="Subject", cov_struct="ar1", time="day")
    close(b.params, a.params, "geeglm.ar1_shuffled", rtol=1e-9)
    close(b.alpha, a.alpha, "geeglm.ar1_shuffled", rtol=1e-9)


def test_ar1_needs_one_row_per_patient_and_time():
    d = _orthodont()
    d = pd.concat([d, d.iloc[[5]]], ignore_index=True)
    with pytest.raises(ValueError, match="same cluster and 'age'.*M02"):
        gee("distance ~ age + Sex", d, cluster="Subject", cov_struct="ar1", time="age")


def test_wave_index_is_the_order_of_the_times():
    assert wave_index([8, 10, 12, 14, 8, 12]).tolist() == [1, 2, 3, 4, 1, 3]
    assert wave_index([0.0, 7.0, 21.0, 7.0]).tolist() == [1, 2, 3, 2]


def test_ar1_solve_equals_the_inverse_of_the_working_correlation():
    """The tridiagonal solve at missed waves equals the dense inverse of alpha^|w_j - w_k|."""
    fit = gee("distance ~ age + Sex", _orthodont(missed=True), cluster="Subject", cov_struct="ar1", time="age")
    cstr = fit._fit.model.cov_struct
    assert isinstance(cstr, GeepackAR1)
    rng = np.random.default_rng(0)
    for i in range(cstr.model.num_group):
        w = cstr.model.time_li[i][:, 0]
        R, _ = cstr.covariance_matrix(None, i)
        np.testing.assert_allclose(R, fit.alpha ** np.abs(w[:, None] - w[None, :]), rtol=1e-14)
        sd = rng.uniform(0.5, 2.0, w.size)
        x = rng.normal(size=(w.size, 3))
        (got,) = cstr.covariance_matrix_solve(None, i, sd, [x])
        np.testing.assert_allclose(got, np.linalg.solve(R * np.outer(sd, sd), x), rtol=1e-10, atol=1e-12)


def test_gee_order_of_rows_does_not_matter():
    d = load_data("dietox")
    a = gee("Weight ~ Time + Cu", d, cluster="Pig", cov_struct="ar1", time="Time")
    b = gee("Weight ~ Time + Cu", d.sample(frac=1.0, random_state=3), cluster="Pig", cov_struct="ar1", time="Time")
    close(b.params, a.params, "geeglm.shuffled", rtol=1e-9)


def test_gee_predict_and_plot():
    import matplotlib.pyplot as plt

    fit = _fit_gee("ohio", "exchangeable")
    p = fit.predict(pd.DataFrame({"age": [-2, 1], "smoke": [0, 1]}))
    assert ((p["prediction"] > 0) & (p["prediction"] < 1)).all()
    fit2 = gee("Weight ~ Time", load_data("dietox"), cluster="Pig", time="Time")
    fig, ax = plt.subplots(1, 2)
    assert fit2.plot(ax=ax[0], kind="trajectories") is ax[0]
    assert fit.plot(ax=ax[1]) is ax[1]  # odds ratios, log axis
    assert ax[1].get_xscale() == "log" and len(ax[1].get_yticklabels()) == 2
    plt.close(fig)


def test_gee_bad_choices():
    d = load_data("ohio")
    with pytest.raises(ValueError, match="cov_struct"):
        gee("resp ~ age", d, cluster="id", cov_struct="unstructured")
    with pytest.raises(ValueError, match="family"):
        gee("resp ~ age", d, cluster="id", family="poisson")
    with pytest.raises(ValueError, match="cluster column not found"):
        gee("resp ~ age", d, cluster="child")
