"""IPW comparison of one adjunct (``analysis.adjuncts.ipw_comparison``) against R.

Reference values: ``tests/fixtures/r/make_adjuncts_comparison.R`` (glm propensity model,
stabilised and truncated ATE weights, ``lm`` + ``sandwich::vcovHC(type = "HC0")``, weighted
``coxph(robust = TRUE)`` and weighted ``survfit`` medians) on the derived tables of
``data/sample`` (``adjcmp_*.csv``).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analysis.adjuncts import effective_sample_size, ipw_comparison, ipw_weights

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "r"
FORMULA = "age + C(sex) + C(diagnosis) + prior_treatment_failures + comorbid_ptsd + baseline_score + baseline_gad7"


@pytest.fixture(scope="module")
def outcomes():
    return SimpleNamespace(**{n: pd.read_csv(FIX / f"adjcmp_{n}.csv") for n in ("courses", "relapse", "durability")})


@pytest.fixture(scope="module")
def res(outcomes):
    return ipw_comparison(outcomes, "drug_lamotrigine", FORMULA)


@pytest.fixture(scope="module")
def ref():
    return pd.read_csv(FIX / "adjcmp_ipw.csv").set_index("quantity")["value"]


def test_ipw_matches_r(res, ref):
    s = res.summary.set_index("measure")
    ess = res.ess.set_index(["population", "group"])["ess"]
    assert ess[("courses", "exposed")] == pytest.approx(ref["courses_ess_exposed"], rel=1e-6)
    assert ess[("courses", "reference")] == pytest.approx(ref["courses_ess_reference"], rel=1e-6)
    for o in ("response", "remission"):
        assert s.loc[f"{o} risk difference", "estimate"] == pytest.approx(ref[f"{o}_rd"], rel=1e-6, abs=1e-10)
        assert s.loc[f"{o} risk difference", "se"] == pytest.approx(ref[f"{o}_rd_se"], rel=1e-6)
    assert s.loc["relapse hazard ratio", "estimate"] == pytest.approx(ref["relapse_hr"], rel=1e-6)
    assert s.loc["relapse hazard ratio", "se"] == pytest.approx(ref["relapse_hr_robust_se"], rel=1e-6)
    assert s.loc["median days to relapse, exposed", "estimate"] == ref["relapse_median_exposed"]
    assert s.loc["median days to relapse, reference", "estimate"] == ref["relapse_median_reference"]


def test_weights_balance_and_structure(res, outcomes):
    # the weights are the propensity module's (stabilised ATE, truncated at the 1st/99th percentiles)
    w = ipw_weights(res.propensity.scores, res.propensity.treatment, estimand="ATE", stabilized=True, truncate=(1, 99))
    ess = effective_sample_size(w, res.propensity.treatment)
    assert ess["exposed"] == pytest.approx(res.ess.set_index(["population", "group"]).loc[("courses", "exposed"), "ess"])
    b = res.balance.table.set_index("covariate")
    assert set(b.index) == {"age", "sex", "diagnosis", "prior_treatment_failures", "comorbid_ptsd", "baseline_score",
                            "baseline_gad7"}
    # diagnosis (lamotrigine is given in bipolar depression) is badly imbalanced before weighting, not after
    assert b.loc["diagnosis", "smd_unweighted"] > 1.0 > 0.2 > abs(b.loc["diagnosis", "smd_weighted"])
    assert res.relapse_balance is not None and res.km is not None and res.cox is not None
    assert set(res.rates["group"]) == {"exposed", "reference"}
    raw = res.propensity.weights("ATE", stabilized=True, truncate=None)
    cap = np.percentile(raw, 99)
    assert max(res.weights.loc[0, "exposed_max"], res.weights.loc[0, "reference_max"]) == pytest.approx(cap)
    assert any("together with another adjunct left out" in n for n in res.notes)


def test_plot_and_errors(res, outcomes):
    import matplotlib

    matplotlib.use("Agg")
    axes = res.plot()
    assert len(axes) == 4
    with pytest.raises(KeyError, match="not an exposure column"):
        ipw_comparison(outcomes, "aspirin", FORMULA)
    with pytest.raises(ValueError, match="estimand"):
        ipw_comparison(outcomes, "lamotrigine", FORMULA, estimand="ATC")
    with pytest.raises(ValueError, match="exposure"):
        ipw_comparison(outcomes, "lamotrigine", "age + drug_lamotrigine")
    att = ipw_comparison(outcomes, "lamotrigine", ["age", "diagnosis", "prior_treatment_failures"], estimand="ATT",
                         reference="unexposed", truncate=None)
    # ATT: exposed patients keep weight 1
    assert att.weights.loc[0, "exposed_min"] == pytest.approx(1.0) == att.weights.loc[0, "exposed_max"]
    assert np.isfinite(att.summary["estimate"]).all()
