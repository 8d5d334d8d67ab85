"""early_response() against pROC (AUC, DeLong variance and interval), wilcox.test (AUC as
Mann-Whitney), a by-hand DeLong computation in R, and prop.test (Wilson intervals)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.response import delong_auc, early_response, wilson_interval

from response_helpers import STRICT, close, load_data, ref, ref_value

pytestmark = STRICT

THRESHOLDS = {"s100b": 0.205, "ndka": 12.0}


@pytest.fixture(scope="module")
def asah():
    return load_data("asah")


@pytest.mark.parametrize("pred", THRESHOLDS)
def test_auc_and_delong_match_proc(asah, pred):
    res = early_response(asah, pred, "poor", threshold=THRESHOLDS[pred])
    case = f"asah_{pred}"
    close(res.auc, ref_value("roc", case, "auc"), "roc.auc", context=case)
    close(res.auc, ref_value("roc", case, "mann_whitney_auc"), "roc.auc_vs_wilcox", context=case)
    close(res.auc_se**2, ref_value("roc", case, "var_delong"), "roc.delong_var", context=case)
    close(res.auc_se**2, ref_value("roc", case, "var_delong_by_hand"), "roc.delong_var_by_hand", context=case)
    close(res.summary.loc["auc", ["ci_lower", "ci_upper"]],
          [ref_value("roc", case, "ci_lower"), ref_value("roc", case, "ci_upper")], "roc.auc_ci", context=case)


@pytest.mark.parametrize("pred", THRESHOLDS)
def test_accuracy_at_threshold_with_wilson_intervals(asah, pred):
    res = early_response(asah, pred, "poor", threshold=THRESHOLDS[pred])
    case = f"asah_{pred}"
    for m in ("sensitivity", "specificity", "ppv", "npv"):
        r = ref("roc", case, m).set_index("term")["value"]
        close(res.summary.loc[m, ["estimate", "ci_lower", "ci_upper"]], r[["estimate", "lower", "upper"]],
              f"roc.{m}", context=case)


def test_roc_curve_shape(asah):
    res = early_response(asah, "s100b", "poor", threshold=0.205)
    roc = res.roc
    assert roc["sensitivity"].iloc[0] == 0 and roc["specificity"].iloc[0] == 1
    assert roc["sensitivity"].iloc[-1] == 1 and roc["specificity"].iloc[-1] == 0
    assert roc["sensitivity"].is_monotonic_increasing and roc["fpr"].is_monotonic_increasing
    # trapezoidal area under the curve is the AUC (ties make diagonal steps)
    area = np.trapezoid(roc["sensitivity"], roc["fpr"])
    assert abs(area - res.auc) < 1e-12


def test_youden_threshold_by_default(asah):
    res = early_response(asah, "s100b", "poor")
    assert res.threshold_rule == "youden"
    s = res.summary
    j = s.loc["sensitivity", "estimate"] + s.loc["specificity", "estimate"] - 1
    best = max(np.mean(asah.s100b[asah.poor == 1] >= t) + np.mean(asah.s100b[asah.poor == 0] < t) - 1
               for t in np.unique(asah.s100b))
    assert abs(j - best) < 1e-12


def test_delong_by_ranks_equals_pairwise():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 6, 40).astype(float)  # many ties
    y = rng.integers(0, 5, 55).astype(float)
    auc, var = delong_auc(x, y)
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    assert abs(auc - psi.mean()) < 1e-14
    assert abs(var - (v10.var(ddof=1) / 40 + v01.var(ddof=1) / 55)) < 1e-14


def test_wilson_edge_cases():
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    assert np.isnan(wilson_interval(0, 0)[0])


def test_missing_and_one_class_errors(asah):
    d = asah.copy()
    d.loc[2, "s100b"] = np.nan
    with pytest.raises(ValueError, match="dropna=True"):
        early_response(d, "s100b", "poor")
    assert early_response(d, "s100b", "poor", dropna=True).n_dropped == 1
    with pytest.raises(ValueError, match="only one value"):
        early_response(asah[asah.poor == 1], "s100b", "poor")
    with pytest.raises(ValueError, match="not found"):
        early_response(asah, "nosuch", "poor")


def test_roc_plot(asah):
    import matplotlib.pyplot as plt

    res = early_response(asah, "s100b", "poor", threshold=0.205)
    fig, ax = plt.subplots()
    assert res.plot(ax=ax) is ax
    assert "AUC 0.731" in ax.get_legend().get_texts()[0].get_text()
    plt.close(fig)
