"""Restricted mean survival time against R's print(survfit, rmean=) (fixtures from
make_survival_km.R), and its contrasts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.survival import kaplan_meier, rmst

from survival_helpers import DEPRECATIONS_ARE_ERRORS, close, load_data, ref  # tests/survival/survival_helpers.py

pytestmark = DEPRECATIONS_ARE_ERRORS

R_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "r"
RMST_CASES = pd.read_csv(R_DIR / "rmst_cases.csv", dtype=str, keep_default_na=False)


def run_case(cs):
    data = load_data(cs.dataset, cs.status, cs.event_value)
    return rmst(data, cs.time, "_event", float(cs.tau), group=cs.group or None, weights=cs.weights or None,
                conf_level=float(cs.conf_level))


@pytest.mark.filterwarnings("ignore:tau = .* is beyond the last follow-up time")
@pytest.mark.parametrize("cs", [pytest.param(c, id=c.case) for c in RMST_CASES.itertuples(index=False)])
def test_rmst_matches_print_survfit(cs):
    res = run_case(cs)
    r = ref("rmst_table")
    r = r[r["case"] == cs.case].reset_index(drop=True)
    t = res.table
    assert list(t.columns) == ["group", "tau", "rmst", "se", "ci_lower", "ci_upper"]
    assert t["group"].astype(str).tolist() == r["group"].astype(str).tolist()
    close(t["rmst"], r["rmean"], "rmst.rmst", context=cs.case)
    close(t["se"], r["se_rmean"], "rmst.se", context=cs.case)
    z = stats.norm.ppf(1 - (1 - float(cs.conf_level)) / 2)
    np.testing.assert_allclose(t["ci_lower"], t["rmst"] - z * t["se"], rtol=1e-12)

    rc = ref("rmst_contrast")
    rc = rc[rc["case"] == cs.case].reset_index(drop=True)
    if len(t) < 2:
        assert res.contrast.empty
        return
    diff = res.contrast[res.contrast["measure"] == "difference"].reset_index(drop=True)
    ratio = res.contrast[res.contrast["measure"] == "ratio"].reset_index(drop=True)
    assert diff["group"].astype(str).tolist() == rc["group"].astype(str).tolist()
    assert (diff["reference"].astype(str) == str(t["group"].iloc[0])).all()  # each vs the first level
    close(diff["estimate"], rc["difference"], "rmst.contrast difference", context=cs.case)
    close(diff["se"], rc["se_difference"], "rmst.contrast se difference", context=cs.case)
    close(diff["ci_lower"], rc["diff_lower"], "rmst.contrast diff ci", context=cs.case)
    close(diff["ci_upper"], rc["diff_upper"], "rmst.contrast diff ci", context=cs.case)
    close(diff["p_value"], rc["diff_p"], "rmst.contrast diff p", context=cs.case)
    close(ratio["estimate"], rc["ratio"], "rmst.contrast ratio", context=cs.case)
    close(ratio["se"], rc["se_log_ratio"], "rmst.contrast se log ratio", context=cs.case)
    close(ratio["ci_lower"], rc["ratio_lower"], "rmst.contrast ratio ci", context=cs.case)
    close(ratio["ci_upper"], rc["ratio_upper"], "rmst.contrast ratio ci", context=cs.case)
    close(ratio["p_value"], rc["ratio_p"], "rmst.contrast ratio p", context=cs.case)


def test_contrast_on_a_known_case():
    # aml, tau = 40: Nonmaintained vs Maintained (R: rmean 21.93 and 28.90)
    res = rmst(load_data("aml"), "time", "status", 40, group="x")
    t = res.table.set_index("group")
    d = res.contrast[res.contrast["measure"] == "difference"].iloc[0]
    assert d["group"] == "Nonmaintained" and d["reference"] == "Maintained"
    assert d["estimate"] == pytest.approx(t.loc["Nonmaintained", "rmst"] - t.loc["Maintained", "rmst"], rel=1e-12)
    # independent groups: the variance of the difference is the sum of the variances
    assert d["se"] == pytest.approx(np.sqrt(t["se"].pow(2).sum()), rel=1e-12)
    z = stats.norm.ppf(0.975)
    assert d["ci_upper"] - d["ci_lower"] == pytest.approx(2 * z * d["se"], rel=1e-12)
    assert d["p_value"] == pytest.approx(2 * stats.norm.sf(abs(d["estimate"] / d["se"])), rel=1e-12)
    r = res.contrast[res.contrast["measure"] == "ratio"].iloc[0]
    se_log = np.sqrt((t.loc["Maintained", "se"] / t.loc["Maintained", "rmst"]) ** 2
                     + (t.loc["Nonmaintained", "se"] / t.loc["Nonmaintained", "rmst"]) ** 2)
    assert r["se"] == pytest.approx(se_log, rel=1e-12)
    assert np.log(r["ci_upper"]) - np.log(r["estimate"]) == pytest.approx(z * se_log, rel=1e-10)


def test_without_censoring_rmst_is_the_mean_of_truncated_times():
    # no censoring: RMST = mean(min(T, tau)); survfit's variance = population variance / n
    rng = np.random.default_rng(7)
    t = rng.exponential(10.0, 200).round(2)
    df = pd.DataFrame({"t": t, "e": 1})
    res = rmst(df, "t", "e", 12.0)
    x = np.minimum(t, 12.0)
    assert res.table["rmst"].iloc[0] == pytest.approx(x.mean(), rel=1e-12)
    assert res.table["se"].iloc[0] == pytest.approx(np.sqrt(x.var(ddof=0) / x.size), rel=1e-10)
    assert res.contrast.empty


def test_tau_before_first_time_and_beyond_last_time():
    df = pd.DataFrame({"t": [5.0, 8.0, 12.0, 20.0], "e": [1, 1, 0, 0]})
    early = rmst(df, "t", "e", 3.0).table.iloc[0]
    assert early["rmst"] == 3.0 and early["se"] == 0.0
    with pytest.warns(UserWarning, match="beyond the last follow-up time"):
        late = rmst(df, "t", "e", 30.0).table.iloc[0]
    km = kaplan_meier(df, "t", "e").table
    area = 5 * 1 + 3 * km["survival"].iloc[0] + 22 * km["survival"].iloc[1]
    assert late["rmst"] == pytest.approx(area, rel=1e-12)


def test_three_groups_each_against_the_first():
    res = rmst(load_data("veteran"), "time", "status", 200, group="celltype")
    diff = res.contrast[res.contrast["measure"] == "difference"]
    assert diff["group"].tolist() == ["large", "smallcell", "squamous"]
    assert (diff["reference"] == "adeno").all()


def test_input_errors_and_plot():
    import matplotlib.pyplot as plt

    aml = load_data("aml")
    for bad in (0, -1, np.inf, "soon"):
        with pytest.raises(ValueError, match="tau must be"):
            rmst(aml, "time", "status", bad)
    fig, ax = plt.subplots()
    assert rmst(aml, "time", "status", 40, group="x").plot(ax=ax) is ax
    plt.close(fig)
