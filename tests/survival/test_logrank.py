"""Log-rank and G-rho tests against R's survdiff (fixtures from make_survival_km.R)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.problems import DataValidationError
from analysis.survival import logrank

from survival_helpers import DEPRECATIONS_ARE_ERRORS, close, load_data, ref  # tests/survival/survival_helpers.py

pytestmark = DEPRECATIONS_ARE_ERRORS

R_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "r"
LR_CASES = pd.read_csv(R_DIR / "logrank_cases.csv", dtype=str, keep_default_na=False)


def run_case(cs):
    data = load_data(cs.dataset, cs.status, cs.event_value)
    strata = cs.strata or None
    # lung has one missing ph.ecog; R's script drops that row, here dropna=True does
    return logrank(data, cs.time, "_event", cs.group, strata=strata, rho=float(cs.rho), dropna=strata is not None)


@pytest.mark.parametrize("cs", [pytest.param(c, id=c.case) for c in LR_CASES.itertuples(index=False)])
def test_logrank_matches_survdiff(cs):
    res = run_case(cs)
    groups = ref("logrank_groups")
    groups = groups[groups["case"] == cs.case].reset_index(drop=True)
    test = ref("logrank_tests").set_index("case").loc[cs.case]
    t = res.table
    assert list(t.columns) == ["group", "n", "observed", "expected", "(O-E)^2/E", "(O-E)^2/V"]
    assert t["group"].astype(str).tolist() == groups["group"].astype(str).tolist()
    close(t["n"], groups["n"], "logrank.n", context=cs.case)
    close(t["observed"], groups["observed"], "logrank.observed", context=cs.case)
    close(t["expected"], groups["expected"], "logrank.expected", context=cs.case)
    close(t["(O-E)^2/E"], groups["oe2_e"], "logrank.(O-E)^2/E", context=cs.case)
    close(t["(O-E)^2/V"], groups["oe2_v"], "logrank.(O-E)^2/V", context=cs.case)
    close(res.statistic, test["chisq"], "logrank.statistic", context=cs.case)
    close(res.p_value, test["pvalue"], "logrank.p_value", context=cs.case)
    assert res.dof == int(test["df"])
    assert res.n_dropped == int(test["n_dropped"])


def test_rho_one_weights_observed_and_expected_by_pooled_km():
    # survdiff(rho = 1) reports weighted O and E; they no longer sum to the event count
    aml = load_data("aml")
    r0 = logrank(aml, "time", "status", "x")
    r1 = logrank(aml, "time", "status", "x", rho=1)
    assert r0.table["observed"].sum() == aml["status"].sum()
    assert r1.table["observed"].sum() < aml["status"].sum()
    np.testing.assert_allclose(r0.table["observed"].sum(), r0.table["expected"].sum())
    assert r1.rho == 1.0 and r0.summary.loc[0, "dof"] == 1


def test_strata_table_and_missing_strata_need_dropna():
    lung = load_data("lung", "status", "2")
    with pytest.raises(DataValidationError, match=r"1 row\(s\) have a missing strata value"):
        logrank(lung, "time", "_event", "sex", strata="ph.ecog")
    res = logrank(lung, "time", "_event", "sex", strata="ph.ecog", dropna=True)
    assert res.n_dropped == 1
    assert res.strata["n"].sum() == len(lung) - 1


def test_two_sample_statistic_is_signed_z_squared():
    # with two groups the statistic equals (O1 - E1)^2 / V11
    df = pd.DataFrame({"t": [3, 5, 7, 9, 4, 6, 11, 13, 2, 8], "e": [1, 1, 1, 0, 1, 0, 1, 0, 1, 1],
                       "arm": ["a"] * 5 + ["b"] * 5})
    res = logrank(df, "t", "e", "arm")
    o, e = res.table["observed"].iloc[0], res.table["expected"].iloc[0]
    assert res.statistic == pytest.approx((o - e) ** 2 / res.variance.iloc[0, 0], rel=1e-12)


def test_input_errors():
    df = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 0, 1], "g": ["a", "a", "a"]})
    with pytest.raises(ValueError, match="at least two groups"):
        logrank(df, "t", "e", "g")
    with pytest.raises(ValueError, match="rho must be"):
        logrank(df.assign(g=["a", "b", "a"]), "t", "e", "g", rho=-1)
    with pytest.raises(DataValidationError, match="group column not found"):
        logrank(df, "t", "e", "arm")


def test_plot_returns_axes():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert logrank(load_data("aml"), "time", "status", "x").plot(ax=ax) is ax
    assert "chi-square" in ax.get_title()
    plt.close(fig)
