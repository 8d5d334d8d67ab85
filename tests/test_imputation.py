"""Multiple imputation: ``pool`` against R's ``mice::pool`` and ``impute`` by simulation.

The pooling references (``tests/fixtures/r/make_imputation.R``) come from mice 3.15 on
completed datasets that mice itself made and that the fixture carries, so the Python side
fits exactly the same data: the only differences left are the model fits' convergence.
Pooling is then exact arithmetic (rtol 1e-8 on the estimate, within and total variance;
1e-5 on the between-imputation quantities, where differences of 1e-10 between the fits'
estimates are divided by a spread of 1e-4).

The simulation (``KO_SIM_REPS // 4`` replicates, default 50) draws a cohort whose
end-of-induction response is missing at random given baseline severity (sicker patients
drop out more often): the complete-case response rate is biased high, multiple imputation
recovers the true rate, and its interval covers it at about 95 %.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.imputation import Imputed, PooledResult, barnard_rubin_df, complete_data_df, impute, pool
from analysis.response import logistic
from analysis.survival import cox

FIXTURES = Path(__file__).parent / "fixtures"
R = FIXTURES / "r"
DATA = FIXTURES / "data"
R_COLUMNS = {"estimate": "coef", "ubar": "ubar", "b": "b", "t": "t", "df": "df", "riv": "riv",
             "lambda": "lambda", "fmi": "fmi", "std.error": "se", "statistic": "statistic",
             "p.value": "p_value", "conf.low": "ci_lower", "conf.high": "ci_upper"}
EXACT = ("coef", "ubar", "t", "se", "statistic", "ci_lower", "ci_upper")
BETWEEN = ("b", "df", "riv", "lambda", "fmi", "p_value")


def _completed(name: str) -> list[pd.DataFrame]:
    long = pd.read_csv(DATA / name)
    return [d.drop(columns=".imp").reset_index(drop=True) for _, d in long.groupby(".imp", sort=True)]


def _glm_fits():
    return [logistic("hyp ~ bmi + chl", d) for d in _completed("imp_nhanes2_completed.csv")]


def _cox_fits():
    return [cox("age + sex + ph_karno + wt_loss", d.rename(columns=lambda c: c.replace(".", "_")),
                duration="time", event="status", ties="efron", tol=1e-12)
            for d in _completed("imp_lung_completed.csv")]


def _compare(pooled: PooledResult, reference: str, terms: dict[str, str]):
    ref = pd.read_csv(R / reference).set_index("term").rename(index=terms)
    ours = pooled.summary.loc[ref.index]
    for r_name, name in R_COLUMNS.items():
        rtol = 1e-8 if name in EXACT else 1e-5
        np.testing.assert_allclose(ours[name].to_numpy(), ref[r_name].to_numpy(), rtol=rtol, err_msg=name)
    assert pooled.dfcom == pytest.approx(float(ref["dfcom"].iloc[0]))


def test_pool_logistic_matches_mice():
    pooled = pool(_glm_fits())
    _compare(pooled, "imp_pool_glm.csv", {"(Intercept)": "Intercept"})
    assert pooled.m == 5 and pooled.dfcom == 22.0  # n - p = 25 - 3, as glm's df.residual
    assert list(pooled.summary.columns[:10]) == ["coef", "se", "df", "statistic", "p_value", "ci_lower", "ci_upper",
                                                 "ratio", "ratio_lower", "ratio_upper"]
    # ratios are exp of the pooled log odds ratio and its limits, not averages of ratios
    np.testing.assert_allclose(pooled.summary["ratio_lower"], np.exp(pooled.summary["ci_lower"]))


def test_pool_large_sample_df_matches_mice():
    _compare(pool(_glm_fits(), dfcom=float("inf")), "imp_pool_glm_dfcom.csv", {"(Intercept)": "Intercept"})


def test_pool_cox_matches_mice():
    fits = _cox_fits()
    pooled = pool(fits)
    _compare(pooled, "imp_pool_cox.csv", {"ph.karno": "ph_karno", "wt.loss": "wt_loss"})
    assert pooled.dfcom == fits[0].n_events - 4  # mice: events - p for coxph
    assert pooled.model == "CoxResult"


def test_total_covariance_is_within_plus_inflated_between():
    fits = _glm_fits()
    pooled = pool(fits)
    q = np.vstack([f.params.to_numpy() for f in fits])
    between = np.cov(q, rowvar=False)
    np.testing.assert_allclose(pooled.cov.to_numpy(), pooled.within.to_numpy() + 1.2 * between, rtol=1e-12)
    assert (pooled.summary["df"] <= pooled.dfcom).all()


def test_identical_fits_pool_to_the_fit_with_lambda_floor():
    fit = _glm_fits()[0]
    pooled = pool([fit, fit, fit])
    np.testing.assert_allclose(pooled.summary["coef"], fit.summary["coef"])
    np.testing.assert_allclose(pooled.summary["se"], fit.summary["se"])
    # b = 0: lambda is floored at 1e-4 as mice's barnard.rubin does, so df stays finite
    expected = barnard_rubin_df(3, 0.0, 1.0, 22.0)
    np.testing.assert_allclose(pooled.summary["df"], expected)
    assert expected < 22.0


def test_barnard_rubin_df_formula():
    m, b, t, dfcom = 10, 0.3, 1.5, 40.0
    lam = (1 + 1 / m) * b / t
    old = (m - 1) / lam**2
    obs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
    assert barnard_rubin_df(m, b, t, dfcom) == pytest.approx(old * obs / (old + obs), rel=1e-14)
    assert barnard_rubin_df(m, b, t, float("inf")) == pytest.approx(old, rel=1e-14)


def test_pool_refuses_mismatched_fits():
    fits = _glm_fits()
    with pytest.raises(ValueError, match="at least 2"):
        pool(fits[:1])
    other = logistic("hyp ~ bmi", _completed("imp_nhanes2_completed.csv")[1])
    with pytest.raises(ValueError, match="same formula"):
        pool([fits[0], other])
    with pytest.raises(TypeError, match="one model"):
        pool([fits[0], _cox_fits()[0]])
    with pytest.raises(TypeError, match="not a model result"):
        pool([fits[0], "fit"])


def test_complete_data_df_rules():
    fits = _glm_fits()
    assert complete_data_df(fits[0]) == 22.0
    assert complete_data_df(_cox_fits()[0]) == _cox_fits()[0].n_events - 4


# ------------------------------------------------------------------------------------- impute
def _incomplete(seed: int = 0, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    baseline = rng.normal(20, 4, n)
    week4 = baseline - 8 + rng.normal(0, 3, n)
    group = rng.choice(["a", "b", "c"], n)
    response = (rng.uniform(size=n) < 1 / (1 + np.exp(0.2 * (baseline - 20)))).astype(float)
    d = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "baseline": baseline,
                      "week4": week4, "group": group, "response": response,
                      "sessions": rng.integers(4, 9, n).astype(float)})
    d.loc[rng.uniform(size=n) < 0.25, "week4"] = np.nan
    d.loc[rng.uniform(size=n) < 0.2, "response"] = np.nan
    d.loc[rng.uniform(size=n) < 0.1, "sessions"] = np.nan
    return d


def test_impute_keeps_observed_values_and_fills_every_gap():
    d = _incomplete()
    imp = impute(d, m=4, seed=3, exclude=["patient_id"])
    assert isinstance(imp, Imputed) and imp.m == 4
    assert imp.methods == {"week4": "pmm", "response": "logreg", "sessions": "pmm"}
    assert imp.n_missing.to_dict() == {c: int(d[c].isna().sum()) for c in ("week4", "response", "sessions")}
    for completed in imp.datasets:
        assert completed.notna().all().all()
        pd.testing.assert_frame_equal(completed[d.notna().all(axis=1)], d[d.notna().all(axis=1)], check_dtype=False)
        for c in ("week4", "sessions"):  # predictive mean matching imputes observed values only
            assert set(completed.loc[d[c].isna(), c]) <= set(d[c].dropna())
        assert set(completed["response"].unique()) <= {0.0, 1.0}
    # the imputations differ from each other (proper imputation), and the chains are recorded
    assert not imp.datasets[0]["week4"].equals(imp.datasets[1]["week4"])
    assert imp.chain_mean.shape == (4 * imp.max_iter, 3)


def test_impute_is_reproducible_by_seed():
    d = _incomplete()
    a = impute(d, m=2, seed=11, exclude=["patient_id"])
    b = impute(d, m=2, seed=11, exclude=["patient_id"])
    c = impute(d, m=2, seed=12, exclude=["patient_id"])
    for x, y in zip(a.datasets, b.datasets):
        pd.testing.assert_frame_equal(x, y)
    assert not a.datasets[0].equals(c.datasets[0])


def test_impute_norm_and_two_level_categories():
    d = _incomplete().assign(sex=lambda x: np.where(np.arange(len(x)) % 2, "female", "male"))
    d.loc[::7, "sex"] = None
    imp = impute(d, m=2, method={"week4": "norm"}, seed=1, exclude=["patient_id"])
    assert imp.methods["week4"] == "norm" and imp.methods["sex"] == "logreg"
    filled = imp.datasets[0]
    assert set(filled["sex"]) == {"female", "male"}
    # norm draws are not restricted to observed values
    assert not set(filled.loc[d["week4"].isna(), "week4"]) <= set(d["week4"].dropna())


def test_impute_errors_name_the_column():
    d = _incomplete()
    with pytest.raises(ValueError, match="'group'.*neither numeric nor two-valued"):
        impute(d.assign(group=d["group"].where(d.index % 5 > 0)), exclude=["patient_id"])
    with pytest.raises(ValueError, match="excluded column 'week4'"):
        impute(d, exclude=["patient_id", "week4"])
    with pytest.raises(ValueError, match="'week4' is missing in every row"):
        impute(d.assign(week4=np.nan), exclude=["patient_id"])
    with pytest.raises(ValueError, match="method of 'week4'"):
        impute(d, method="mean", exclude=["patient_id"])
    with pytest.raises(ValueError, match="needs 0/1 values"):
        impute(d, method={"sessions": "logreg"}, exclude=["patient_id"])


def _mar_cohort(rng: np.random.Generator, n: int = 400):
    """Response depends on baseline severity; sicker patients miss the end-of-induction score."""
    baseline = rng.normal(18, 4, n)
    early = baseline - 4 + rng.normal(0, 3, n)  # an earlier, always observed score
    p = 1 / (1 + np.exp(-(0.4 - 0.25 * (early - 14))))
    response = (rng.uniform(size=n) < p).astype(float)
    missing = rng.uniform(size=n) < 1 / (1 + np.exp(-(-1.2 + 0.35 * (early - 14))))
    response[missing] = np.nan
    return pd.DataFrame({"baseline": baseline, "early": early, "response": response})


def _true_rate(n: int = 2_000_000) -> float:
    rng = np.random.default_rng(12345)
    early = rng.normal(18, 4, n) - 4 + rng.normal(0, 3, n)
    return float(np.mean(1 / (1 + np.exp(-(0.4 - 0.25 * (early - 14))))))


@pytest.mark.simulation
def test_imputation_recovers_a_response_rate_missing_at_random():
    reps = max(int(os.environ.get("KO_SIM_REPS", "200")) // 4, 20)
    truth = _true_rate()
    rng = np.random.default_rng(20261201)
    covered, estimates, complete_case = 0, [], []
    for _ in range(reps):
        d = _mar_cohort(rng)
        pooled = pool(impute(d, m=10, seed=int(rng.integers(1 << 31)), max_iter=5)
                      .fit(lambda data: logistic("response ~ 1", data)))
        row = pooled.summary.loc["Intercept"]
        expit = stats.logistic.cdf
        estimates.append(expit(row["coef"]))
        covered += expit(row["ci_lower"]) <= truth <= expit(row["ci_upper"])
        complete_case.append(d["response"].mean())
    bias_mi = np.mean(estimates) - truth
    bias_cc = np.mean(complete_case) - truth
    se_mc = np.std(estimates, ddof=1) / np.sqrt(reps)
    assert abs(bias_mi) < 3 * se_mc + 0.005, (bias_mi, se_mc)
    assert bias_cc > 0.03  # complete cases: the sicker, less often responding patients are missing
    # coverage near 95 % (binomial 99.9 % band around 0.95 for this many replicates)
    lo = stats.binom.ppf(0.0005, reps, 0.95) / reps
    assert covered / reps >= lo - 0.02, covered / reps


def test_imputed_response_rate_on_the_sample():
    import analysis
    from analysis.imputation import imputed_response_rate

    out = analysis.derive_outcomes(analysis.load_dataset(analysis.sample_path()))
    rate = imputed_response_rate(out, m=10, seed=4)
    courses = out.courses[out.courses["baseline_score"].notna()]
    observed = courses["category"].notna()
    # the complete-case rate is the report's: responders among patients with an endpoint
    assert rate.complete_case == pytest.approx((courses["category"] == "responder").sum() / observed.sum(), rel=1e-12)
    assert rate.n == len(courses) and rate.n_imputed == int((~observed).sum()) and rate.m == 10
    assert rate.ci_lower < rate.estimate < rate.ci_upper
    # few imputed (6 of 500): the pooled rate stays close to the complete-case one
    assert abs(rate.estimate - rate.complete_case) < 0.01 and 0 <= rate.fmi < 0.05

    # with endpoints removed for a third of the patients, more information is missing
    thinned = courses.copy()
    thinned.loc[thinned.index[::3], "endpoint_score"] = np.nan
    out_thin = type("O", (), {"courses": thinned, "definitions": out.definitions})()
    wider = imputed_response_rate(out_thin, m=10, seed=4)
    assert wider.n_imputed == int(thinned["endpoint_score"].isna().sum())
    assert wider.fmi > rate.fmi and (wider.ci_upper - wider.ci_lower) > (rate.ci_upper - rate.ci_lower)
