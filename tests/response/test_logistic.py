"""logistic() against R's glm, sandwich::vcovHC and survey::svyglm (make_response.R)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.problems import DataValidationError
from analysis.response import logistic

from response_helpers import STRICT, close, load_data, py_ame_term, py_term, ref, ref_value

pytestmark = STRICT

F_BW = "low ~ age + lwt + race + smoke + ptl + ht + ui"


@pytest.fixture(scope="module")
def bw():
    return load_data("birthwt")


@pytest.fixture(scope="module")
def fit(bw):
    return logistic(F_BW, bw)


def _by_term(r):
    return pd.Series(r["value"].to_numpy(), index=[py_term(t) for t in r["term"]])


@pytest.mark.parametrize("quantity, column", [("coef", "coef"), ("se", "se"), ("z", "statistic"), ("p", "p_value"),
                                              ("ci_lower", "ci_lower"), ("ci_upper", "ci_upper")])
def test_summary_matches_glm(fit, quantity, column):
    r = _by_term(ref("logistic", "birthwt", quantity))
    close(fit.summary.loc[r.index, column], r, f"logistic.{column}")


def test_odds_ratios_are_exp_coef(fit):
    r = _by_term(ref("logistic", "birthwt", "ci_lower"))
    close(fit.summary.loc[r.index, "ratio_lower"], np.exp(r), "logistic.or_ci")
    r = _by_term(ref("logistic", "birthwt", "ci_upper"))
    close(fit.summary.loc[r.index, "ratio_upper"], np.exp(r), "logistic.or_ci")
    close(fit.summary["ratio"], np.exp(fit.summary["coef"]), "logistic.or")


def test_likelihood_matches_glm(fit):
    close(fit.loglik, ref_value("logistic", "birthwt", "loglik"), "logistic.loglik")
    close(fit.deviance, ref_value("logistic", "birthwt", "deviance"), "logistic.deviance")
    close(fit.aic, ref_value("logistic", "birthwt", "aic"), "logistic.aic")
    assert fit.n_obs == 189 and fit.n_events == 59


def test_predict_matches_predict_glm(fit):
    prof = pd.DataFrame({"age": [20, 30], "lwt": [120, 150], "race": pd.Categorical(["black", "white"], categories=["white", "black", "other"]),
                         "smoke": [1, 0], "ptl": [0, 1], "ht": [0, 0], "ui": [1, 0]})
    p = fit.predict(prof)
    close(p["probability"], ref("logistic", "birthwt", "pred_prob")["value"], "logistic.pred")
    close(p["ci_lower"], ref("logistic", "birthwt", "pred_lower")["value"], "logistic.pred_ci")
    close(p["ci_upper"], ref("logistic", "birthwt", "pred_upper")["value"], "logistic.pred_ci")


def test_marginal_effects_match_hand_computation_in_r(fit):
    me = fit.marginal_effects()
    r = ref("logistic", "birthwt", "ame")
    rse = ref("logistic", "birthwt", "ame_se")
    terms = [py_ame_term(t) for t in r["term"]]
    close(me.loc[terms, "estimate"], r["value"], "logistic.ame")
    close(me.loc[terms, "se"], rse["value"], "logistic.ame_se")
    assert me.loc["race[black]", "contrast"] == "black vs white"


def test_risk_difference_matches_r(fit):
    rd = fit.risk_difference("smoke")
    r = ref("logistic", "birthwt", "rd").set_index("term")["value"]
    rse = ref("logistic", "birthwt", "rd_se").set_index("term")["value"]
    close(rd.loc["p_exposed", "estimate"], r["p1"], "logistic.rd_p")
    close(rd.loc["p_unexposed", "estimate"], r["p0"], "logistic.rd_p")
    close(rd.loc["difference", "estimate"], r["diff"], "logistic.rd")
    close(rd.loc[["p_exposed", "p_unexposed", "difference"], "se"], rse[["p1", "p0", "diff"]], "logistic.rd_se")
    close(np.log(rd.loc["ratio", "estimate"]), r["logratio"], "logistic.rd_ratio")
    # ratio CI from the log scale
    close(np.log(rd.loc["ratio", "ci_upper"]), r["logratio"] + 1.959963984540054 * rse["logratio"], "logistic.rd_ratio")


def test_probability_weights_give_hc0_like_sandwich(bw):
    fit = logistic("low ~ smoke + age + race", bw, weights="ipw", weight_type="probability")
    assert fit.cov_type == "HC0"
    r = _by_term(ref("logistic", "birthwt_ipw", "coef"))
    close(fit.params[r.index], r, "logistic.ipw_coef")
    r = _by_term(ref("logistic", "birthwt_ipw", "se_hc0"))
    close(fit.summary.loc[r.index, "se"], r, "logistic.ipw_se_hc0")
    # survey::svyglm reports HC0 * n / (n - 1)
    rs = _by_term(ref("logistic", "birthwt_ipw", "se_survey"))
    n = len(bw)
    close(fit.summary.loc[rs.index, "se"] * np.sqrt(n / (n - 1)), rs, "logistic.ipw_se_survey")
    # the convention: a robust fit keeps the model-based SE beside it
    model_based = logistic("low ~ smoke + age + race", bw, weights="ipw", weight_type="probability", cov_type="model")
    close(fit.summary["naive_se"], model_based.summary["se"], "logistic.ipw_naive_se", rtol=1e-12)
    assert "naive_se" not in model_based.summary.columns


def test_frequency_weights_equal_expanded_rows():
    counts = load_data("birthwt_counts")
    fit = logistic("low ~ smoke + race + ht", counts, weights="n", weight_type="frequency")
    assert fit.cov_type == "model"
    r = _by_term(ref("logistic", "birthwt_counts", "coef"))
    close(fit.params[r.index], r, "logistic.freq_coef")
    r = _by_term(ref("logistic", "birthwt_counts", "se"))
    close(fit.summary.loc[r.index, "se"], r, "logistic.freq_se")
    close(fit.loglik, ref_value("logistic", "birthwt_counts", "loglik"), "logistic.freq_loglik")


def test_outcome_expression_and_boolean(bw):
    d = bw.assign(low_bool=bw["low"] == 1)
    a = logistic("low_bool ~ age + smoke", d)
    b = logistic("I(bwt < 2500) ~ age + smoke", d)
    c = logistic("low ~ age + smoke", d)
    close(a.params, c.params, "logistic.bool")
    close(b.params, c.params, "logistic.expr")


def test_weights_need_a_type(bw):
    with pytest.raises(ValueError, match="weight_type='frequency'"):
        logistic("low ~ smoke", bw, weights="ipw")


def test_non_binary_outcome_is_an_error(bw):
    with pytest.raises(ValueError, match="must be boolean or 0/1"):
        logistic("bwt ~ smoke", bw)


def test_missing_values_named_unless_dropna(bw):
    d = bw.copy()
    d.loc[[3, 7], "age"] = np.nan
    with pytest.raises(DataValidationError, match="age"):
        logistic("low ~ age + smoke", d)
    fit = logistic("low ~ age + smoke", d, dropna=True)
    assert fit.n_dropped == 2 and fit.n_obs == len(d) - 2


def test_missing_column_is_named(bw):
    with pytest.raises(DataValidationError, match="'nosuch', which is not a column"):
        logistic("nosuch ~ smoke", bw)
    with pytest.raises(DataValidationError, match="'nosuch', which is not a column"):
        logistic("low ~ nosuch + smoke", bw)


def test_forest_plot_returns_axes(fit):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert fit.plot(ax=ax) is ax
    assert len(ax.get_yticklabels()) == len(fit.summary) - 1
    plt.close(fig)


@pytest.mark.parametrize("name", ["lambda", "class"])
def test_keyword_column_gives_the_kernels_error(bw, name):
    """A column named like a Python keyword cannot be written bare in a formula: the
    kernel's error names the column and says how to quote it; Q() works."""
    d = bw.rename(columns={"age": name})
    with pytest.raises(DataValidationError) as err:
        logistic(f"low ~ {name} + smoke", d)
    text = str(err.value)
    assert f"column '{name}'" in text and "Python keyword" in text and f'Q("{name}")' in text
    fit = logistic(f'low ~ Q("{name}") + smoke', d)
    close(fit.params.to_numpy(), logistic("low ~ age + smoke", bw).params.to_numpy(), "logistic.keyword_q", rtol=1e-12)
