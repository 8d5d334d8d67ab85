"""ordinal() against MASS::polr and multinomial() against nnet::multinom (make_response.R):
coefficients, thresholds, standard errors, log-likelihoods, predictions, average marginal
effects, and the Brant test against a by-hand computation in R."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.response import multinomial, ordinal

from response_helpers import STRICT, RTOL_OPTIM, close, expand, load_data, py_ame_term, py_term, ref, ref_value

pytestmark = STRICT

CASES = {
    "housing": ("Sat ~ Infl + Type + Cont", lambda: expand(load_data("housing"), "Freq")),
    "birthwt3": ("bwt3 ~ age + lwt + race + smoke", lambda: load_data("birthwt3")),
}


@pytest.fixture(scope="module")
def fits():
    out = {}
    for case, (formula, make) in CASES.items():
        data = make()
        out[case] = (ordinal(formula, data), multinomial(formula, data))
    return out


def _series(r):
    r = r[r["level"] == ""]  # polr rows (multinom rows carry the category in "level")
    return pd.Series(r["value"].to_numpy(), index=[py_term(t) for t in r["term"]])


def _ame_rows(case, quantity, model):
    """The AME rows of polr (first half of the file's rows) or multinom (second half)."""
    r = ref("categorical", case, quantity)
    n = len(r) // 2
    return r.iloc[:n] if model == "polr" else r.iloc[n:]


# ---------------------------------------------------------------------------------------
# proportional odds: polr
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_polr_coefficients_and_thresholds(fits, case):
    po = fits[case][0]
    coef = _series(ref("categorical", case, "coef"))
    close(po.params[coef.index], coef, "polr.coef", context=case)
    zeta = _series(ref("categorical", case, "zeta"))
    assert po.threshold_names == list(zeta.index)
    close(po.params[zeta.index], zeta, "polr.zeta", context=case)
    assert (po.summary.loc[zeta.index, "kind"] == "threshold").all()


@pytest.mark.parametrize("case", CASES)
def test_polr_standard_errors(fits, case):
    """Against the exact observed information (numDeriv's Richardson Hessian in R) to
    1e-4, and against polr's own vcov() to 1e-3: polr inverts optim's finite-difference
    Hessian (step 1e-3 on every parameter), which is off by up to 5e-4 relative when a
    predictor has a large scale (lwt in pounds)."""
    po = fits[case][0]
    se = _series(ref("categorical", case, "se_exact"))
    close(po.summary.loc[se.index, "se"], se, "polr.se (exact Hessian)", context=case)
    se = _series(ref("categorical", case, "se"))
    close(po.summary.loc[se.index, "se"], se, "polr.se (polr vcov)", context=case, rtol=RTOL_OPTIM)


@pytest.mark.parametrize("case", CASES)
def test_polr_with_default_optimiser_settings(fits, case):
    """R's polr with its default BFGS tolerance agrees to 1e-4 (coefficients) and 1e-3
    (standard errors, from optim's numerical Hessian)."""
    po = fits[case][0]
    coef = _series(ref("categorical", case, "coef_default_optim"))
    close(po.params[coef.index], coef, "polr.coef (polr defaults)", context=case, rtol=1e-4)
    se = _series(ref("categorical", case, "se_default_optim"))
    close(po.summary.loc[se.index, "se"], se, "polr.se (polr defaults)", context=case, rtol=RTOL_OPTIM)


@pytest.mark.parametrize("case", CASES)
def test_polr_loglik(fits, case):
    close(fits[case][0].loglik, ref_value("categorical", case, "loglik"), "polr.loglik", context=case)


def test_polr_predicted_probabilities(fits):
    po = fits["housing"][0]
    prof = pd.DataFrame({"Infl": ["Low", "High"], "Type": ["Tower", "Terrace"], "Cont": ["Low", "High"]})
    pred = po.predict(prof)
    r = ref("categorical", "housing", "pred_prob")  # level = profile (1, 2), term = category
    close(pred["probability"], r["value"], "polr.pred")
    assert pred["category"].tolist() == r["term"].tolist()
    assert (pred["ci_lower"] < pred["probability"]).all() and (pred["probability"] < pred["ci_upper"]).all()
    np.testing.assert_allclose(pred.groupby(pred.index // 3)["probability"].sum(), 1.0)


@pytest.mark.parametrize("case", CASES)
def test_polr_marginal_effects(fits, case):
    po = fits[case][0]
    me = po.marginal_effects()
    r, rse = _ame_rows(case, "ame", "polr"), _ame_rows(case, "ame_se", "polr")
    split = r["term"].str.rsplit(":", n=1, expand=True)
    idx = list(zip([py_ame_term(t) for t in split[0]], split[1]))
    close(me.loc[idx, "estimate"], r["value"], "polr.ame", context=case, atol=1e-12)
    close(me.loc[idx, "se"], rse["value"], "polr.ame_se", context=case)
    # effects on the categories of one variable sum to 0
    sums = me.groupby(level="term")["estimate"].sum()
    np.testing.assert_allclose(sums, 0.0, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_brant_test_matches_hand_computation(fits, case):
    po = fits[case][0]
    br = po.brant()
    r = ref("categorical", case, "brant_chi2")
    idx = ["omnibus" if t == "omnibus" else py_term(t) for t in r["term"]]
    close(br.loc[idx, "chi2"], r["value"], "polr.brant_chi2", context=case)
    K = len(po.levels)
    assert br.loc["omnibus", "df"] == (K - 2) * len(po.coef_names)
    assert (br.drop(index="omnibus")["df"] == K - 2).all()


def test_compare_multinomial(fits):
    po, mn = fits["housing"]
    cmp = po.compare_multinomial()
    close(cmp.loc["multinomial", "loglik"], ref_value("categorical", "housing", "loglik_multinom"), "polr.vs_multinom")
    close(mn.loglik, ref_value("categorical", "housing", "multinom_loglik"), "multinom.loglik")
    assert cmp.loc["multinomial", "df"] == len(mn.params) - len(po.params)


def test_ordinal_needs_an_order():
    d = load_data("birthwt3")
    d["bwt3"] = d["bwt3"].astype(str)
    with pytest.raises(ValueError, match="ordered Categorical"):
        ordinal("bwt3 ~ age", d)


def test_positive_coefficient_means_higher_category(fits):
    """polr's sign: logit P(Y <= k) = zeta_k - eta, so a positive coefficient raises
    P(highest category)."""
    po = fits["housing"][0]
    me = po.marginal_effects()
    assert po.params["Infl[T.High]"] > 0 and me.loc[("Infl[High]", "High"), "estimate"] > 0


# ---------------------------------------------------------------------------------------
# multinomial: nnet::multinom
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_multinom_coefficients_and_se(fits, case):
    mn = fits[case][1]
    for quantity, column in (("coef", "coef"), ("se", "se")):
        r = ref("categorical", case, quantity)
        r = r[r["level"] != ""]
        idx = list(zip(r["level"], [py_term(t) for t in r["term"]]))
        close(mn.summary.loc[idx, column], r["value"], f"multinom.{column}", context=case)


@pytest.mark.parametrize("case", CASES)
def test_multinom_marginal_effects(fits, case):
    mn = fits[case][1]
    me = mn.marginal_effects()
    r, rse = _ame_rows(case, "ame", "multinom"), _ame_rows(case, "ame_se", "multinom")
    split = r["term"].str.rsplit(":", n=1, expand=True)
    idx = list(zip([py_ame_term(t) for t in split[0]], split[1]))
    close(me.loc[idx, "estimate"], r["value"], "multinom.ame", context=case, atol=1e-12)
    close(me.loc[idx, "se"], rse["value"], "multinom.ame_se", context=case)


def test_multinom_reference_is_first_level(fits):
    mn = fits["housing"][1]
    assert mn.levels[0] == "Low"
    assert list(dict.fromkeys(mn.summary.index.get_level_values("category"))) == ["Medium", "High"]


def test_multinom_risk_difference_sums_to_zero(fits):
    mn = fits["birthwt3"][1]
    rd = mn.risk_difference("smoke")
    diff = rd.xs("difference", level="quantity")["estimate"]
    assert abs(diff.sum()) < 1e-12
    po = fits["birthwt3"][0]
    rdp = po.risk_difference("smoke").xs("difference", level="quantity")
    assert rdp.loc["low", "estimate"] > 0  # smoking moves birth weight down


def test_plots_return_axes(fits):
    import matplotlib.pyplot as plt

    po, mn = fits["housing"]
    fig, ax = plt.subplots(1, 2)
    assert po.plot(ax=ax[0]) is ax[0]
    assert mn.plot(ax=ax[1]) is ax[1]
    plt.close(fig)
