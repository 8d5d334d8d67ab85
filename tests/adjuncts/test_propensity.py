"""Propensity scores, weights, balance and weighted risk differences against R (MASS::birthwt).

Reference values: tests/fixtures/r/make_adjuncts.R (glm, sandwich::vcovHC type HC0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis._kernel import ModelResult
from analysis.adjuncts import (
    PropensityModel, balance, effective_sample_size, ipw_weights, propensity_scores, weighted_risk_difference,
)
from analysis.problems import DataValidationError

FIX = Path(__file__).resolve().parents[1] / "fixtures"
RTOL = 1e-6


@pytest.fixture(scope="module")
def birthwt():
    return pd.read_csv(FIX / "data" / "adj_birthwt.csv")


@pytest.fixture(scope="module")
def ps(birthwt):
    return propensity_scores("smoke ~ age + lwt + C(race, levels=['white', 'black', 'other']) + ptl + ht", birthwt)


@pytest.fixture(scope="module")
def ref():
    return {name: pd.read_csv(FIX / "r" / f"adj_{name}.csv") for name in ("weights", "ps_coef", "ess", "smd", "rd")}


def test_propensity_model_matches_glm(ps, ref):
    # patsy names C(race, ...)[T.black] what R names raceblack, and orders factors first
    rename = {t: ("(Intercept)" if t == "Intercept" else "race" + t.split("[T.")[1].rstrip("]") if "[T." in t else t)
              for t in ps.summary.index}
    ours = ps.summary.rename(index=rename).loc[ref["ps_coef"]["term"]]
    np.testing.assert_allclose(ours["coef"].to_numpy(), ref["ps_coef"]["coef"].to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(ours["se"].to_numpy(), ref["ps_coef"]["se"].to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(ps.scores.to_numpy(), ref["weights"]["score"].to_numpy(), rtol=RTOL)
    # the model's covariance is the one of the summary's SEs
    np.testing.assert_allclose(np.sqrt(np.diag(ps.cov.loc[ps.summary.index, ps.summary.index])), ps.summary["se"],
                               rtol=1e-12)


def test_propensity_model_follows_the_results_convention(ps, birthwt):
    """A typed result deriving from the kernel's ModelResult (docs/api.md): the convention's
    summary columns, params, cov, n_obs, n_dropped, conf_level, converged, plot."""
    assert isinstance(ps, PropensityModel) and isinstance(ps, ModelResult)
    s = ps.summary
    assert list(s.columns) == ["coef", "se", "statistic", "p_value", "ci_lower", "ci_upper", "ratio", "ratio_lower",
                               "ratio_upper"]
    assert s.index.name == "term" and s.index[0] == "Intercept"
    np.testing.assert_allclose(s["statistic"], s["coef"] / s["se"])
    np.testing.assert_allclose(s["ratio"], np.exp(s["coef"]))
    np.testing.assert_allclose(s["ratio_lower"], np.exp(s["coef"] - 1.959963984540054 * s["se"]))
    pd.testing.assert_series_equal(ps.params, s["coef"])
    assert list(ps.cov.index) == list(ps.cov.columns) == list(s.index)
    assert (ps.n_obs, ps.n_dropped, ps.conf_level, ps.converged) == (len(birthwt), 0, 0.95, True)
    assert ps.formula.startswith("smoke ~ age") and ps.exposure == "smoke"
    narrow = propensity_scores("smoke ~ age + lwt", birthwt, conf_level=0.9)
    assert narrow.conf_level == 0.9
    assert (narrow.summary["ci_upper"] - narrow.summary["ci_lower"]).iloc[1] == pytest.approx(
        2 * 1.6448536269514722 * narrow.summary["se"].iloc[1])
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    assert ps.plot(ax) is ax and ax.get_xscale() == "log"                      # odds ratios, log axis
    ax2 = Figure().add_subplot()
    assert ps.plot(ax2, kind="overlap") is ax2 and ax2.get_xlabel() == "propensity score"
    with pytest.raises(ValueError, match="kind"):
        ps.plot(ax2, kind="histogram")


def test_old_summary_names_still_work_with_a_warning(ps):
    for old, new in (("odds_ratio", "ratio"), ("or_lower", "ratio_lower"), ("or_upper", "ratio_upper"),
                     ("z", "statistic")):
        with pytest.warns(DeprecationWarning, match=f"'{new}'"):
            got = ps.summary[old]
        pd.testing.assert_series_equal(got, ps.summary[new], check_names=False)


def test_missing_values_follow_the_one_rule(birthwt):
    """The propensity model reads its formula through the kernel: a missing covariate is an
    error naming the column and rows (it was patsy's message), or with dropna=True the rows
    are dropped and counted, and the scores cover the rows used."""
    data = birthwt.copy()
    data.loc[[3, 7], "lwt"] = np.nan
    with pytest.raises(DataValidationError, match=r"lwt.*2 row\(s\) have a missing value \(row 4, 8\)"):
        propensity_scores("smoke ~ age + lwt", data)
    fit = propensity_scores("smoke ~ age + lwt", data, dropna=True)
    assert (fit.n_obs, fit.n_dropped) == (len(data) - 2, 2)
    assert list(fit.scores.index) == [i for i in data.index if i not in (3, 7)]
    complete = propensity_scores("smoke ~ age + lwt", data.dropna())
    pd.testing.assert_series_equal(fit.scores, complete.scores)
    with pytest.raises(DataValidationError, match="not a column"):
        propensity_scores("smoke ~ age + weight", birthwt)
    # an expression as the exposure, and names of the caller's namespace
    cut = 30
    e = propensity_scores("age > cut ~ lwt", birthwt)
    assert e.treatment.sum() == (birthwt["age"] > 30).sum()


@pytest.mark.parametrize("column, kwargs", [
    ("w_ate", dict(estimand="ATE", stabilized=False)),
    ("w_ate_s", dict(estimand="ATE", stabilized=True)),
    ("w_att", dict(estimand="ATT", stabilized=False)),
    ("w_att_s", dict(estimand="ATT", stabilized=True)),
    ("w_trunc", dict(estimand="ATE", stabilized=True, truncate=(1, 99))),
])
def test_weights_match_r(ps, ref, column, kwargs):
    np.testing.assert_allclose(ps.weights(**kwargs).to_numpy(), ref["weights"][column].to_numpy(), rtol=RTOL)


def test_effective_sample_size(ps, ref):
    ess = effective_sample_size(ps.weights("ATE"), ps.treatment)
    np.testing.assert_allclose(ess[["unexposed", "exposed"]].to_numpy(), ref["ess"]["ess"].to_numpy(), rtol=RTOL)
    assert effective_sample_size(np.ones(10))["all"] == pytest.approx(10)


def test_balance_smd(birthwt, ps, ref):
    table = balance(birthwt, "smoke", ["age", "lwt", "ptl", "ht"], ps.weights("ATE")).table.set_index("covariate")
    expected = ref["smd"].set_index("covariate")
    np.testing.assert_allclose(table.loc[expected.index, "smd_unweighted"], expected["smd_unweighted"], rtol=RTOL)
    np.testing.assert_allclose(table.loc[expected.index, "smd_weighted"], expected["smd_weighted"], rtol=RTOL)


def test_weighted_risk_difference_with_sandwich_se(birthwt, ps, ref):
    effect = weighted_risk_difference(birthwt, "low", "smoke", ps.weights("ATE"))
    r = ref["rd"].iloc[0]
    np.testing.assert_allclose(effect.table["rate"], [r.rate0, r.rate1], rtol=RTOL)
    np.testing.assert_allclose(effect.table["se"], [r.se0, r.se1], rtol=RTOL)
    rd, rr = effect.contrast.iloc[0], effect.contrast.iloc[1]
    np.testing.assert_allclose([rd.estimate, rd.se, rr.estimate, rr.se], [r.rd, r.se_rd, r.rr, r.se_log_rr], rtol=RTOL)
    assert rd.ci_lower < rd.estimate < rd.ci_upper


def test_bad_inputs_are_named(birthwt):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        ipw_weights(pd.Series([0.0, 0.5]), pd.Series([1, 0]))
    with pytest.raises(ValueError, match="estimand"):
        ipw_weights(pd.Series([0.3, 0.5]), pd.Series([1, 0]), estimand="ATC")
    bad = birthwt.assign(smoke=birthwt.smoke.replace({1: 2}))
    with pytest.raises(ValueError, match="smoke: expected 0/1"):
        propensity_scores("smoke ~ age", bad)
    with pytest.raises(ValueError, match="no outcome"):
        propensity_scores("age + lwt", birthwt)


def test_weighting_removes_measured_confounding():
    """Simulated confounding by indication: the crude difference is biased, the weighted one
    recovers the true (null) effect and its interval covers it."""
    rng = np.random.default_rng(12)
    n = 20_000
    x = rng.normal(size=n)
    t = rng.random(n) < 1 / (1 + np.exp(-(-0.5 + 1.2 * x)))
    y = rng.random(n) < 1 / (1 + np.exp(-(0.3 - 1.0 * x)))     # exposure has no effect
    data = pd.DataFrame({"x": x, "t": t.astype(int), "y": y.astype(int)})
    crude = weighted_risk_difference(data, "y", "t").contrast.iloc[0]
    model = propensity_scores("t ~ x", data)
    weighted = weighted_risk_difference(data, "y", "t", model.weights("ATE")).contrast.iloc[0]
    assert crude.ci_upper < -0.1                          # strongly biased
    assert weighted.ci_lower < 0 < weighted.ci_upper      # truth 0 covered
    assert abs(weighted.estimate) < 0.02


def test_non_convergence_is_the_package_warning():
    """A fit that stops before converging says so with analysis.ConvergenceWarning (the one
    class of every model) and converged=False, not statsmodels' own warning class."""
    separated = pd.DataFrame({"t": [0, 0, 0, 1, 1, 1], "x": [1.0, 2, 3, 4, 5, 6]})
    with pytest.warns(analysis.ConvergenceWarning, match="did not converge"):
        fit = propensity_scores("t ~ x", separated, max_iter=5)
    assert fit.converged is False
