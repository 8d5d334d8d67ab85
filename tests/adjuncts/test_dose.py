"""Benzodiazepine dose-response (``analysis.adjuncts.benzodiazepine_dose``).

Reference values: ``tests/fixtures/r/make_adjuncts_comparison.R`` (glm by band, per 10 mg
and per 10 mg above 8 mg; polr with the exact Hessian) on ``data/sample``'s derived tables.
The simulation check uses the simulator's stated truth: no effect up to 8 mg
diazepam-equivalent, a dose-dependent blunting above it.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.adjuncts import benzodiazepine_dose, dose_bands

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "r"
COVARIATES = ["age", "sex", "diagnosis", "prior_treatment_failures", "comorbid_ptsd", "baseline_score", "baseline_gad7",
              "site"]


def test_dose_bands_by_hand():
    got = dose_bands(pd.Series([0.0, 0.5, 8.0, 8.01, 20.0, 20.5, 60.0]))
    assert got.astype(str).tolist() == ["none", "(0, 8] mg", "(0, 8] mg", "(8, 20] mg", "(8, 20] mg", "> 20 mg",
                                        "> 20 mg"]
    assert list(got.cat.categories) == ["none", "(0, 8] mg", "(8, 20] mg", "> 20 mg"]
    assert dose_bands(pd.Series([3.0, 12.0]), bands=(0, 10, math.inf)).astype(str).tolist() == ["(0, 10] mg", "> 10 mg"]
    assert pd.isna(dose_bands(pd.Series([np.nan])).iloc[0])
    with pytest.raises(ValueError, match="start at 0"):
        dose_bands(pd.Series([1.0]), bands=(1, 8))
    with pytest.raises(ValueError, match="end the bands with inf"):
        dose_bands(pd.Series([30.0]), bands=(0, 8, 20))


def test_dose_models_match_r():
    out = SimpleNamespace(**{n: pd.read_csv(FIX / f"adjcmp_{n}.csv") for n in ("courses", "relapse", "durability")})
    res = benzodiazepine_dose(out, covariates=COVARIATES, measures=("response", "category"))
    ref = pd.read_csv(FIX / "adjcmp_dose.csv")
    names = {"per10": "per 10 mg", "excess": "per 10 mg above 8 mg"}
    t = res.table.set_index(["measure", "model", "term"])
    for _, r in ref.iterrows():
        term = names.get(r["term"], r["term"])
        row = t.loc[(r["measure"], r["model"], term)]
        assert row["ratio"] == pytest.approx(r["odds_ratio"], rel=1e-6), (r["model"], term)
        assert row["ratio_lower"] == pytest.approx(r["lower"], rel=1e-6), (r["model"], term)
        assert row["ratio_upper"] == pytest.approx(r["upper"], rel=1e-6), (r["model"], term)
        assert row["p_value"] == pytest.approx(r["p"], rel=1e-5), (r["model"], term)
        # the convention's columns: coef-scale interval, its exp is the ratio's
        assert row["ci_lower"] == pytest.approx(math.log(r["lower"]), rel=1e-6, abs=1e-9)
        assert row["statistic"] == pytest.approx(row["coef"] / row["se"])
    # crude rates per band add up to the patients with an endpoint
    assert res.rates["n"].sum() == out.courses["category"].notna().sum()
    lo, hi = res.rates["response_lower"], res.rates["response_upper"]
    assert ((lo <= res.rates["response_pct"]) & (res.rates["response_pct"] <= hi)).all()


def test_dose_table_follows_the_results_convention():
    """The table is a stack of model summaries: the convention's columns in order, and the
    names of the previous release answering with a DeprecationWarning."""
    out = SimpleNamespace(**{n: pd.read_csv(FIX / f"adjcmp_{n}.csv") for n in ("courses", "relapse", "durability")})
    res = benzodiazepine_dose(out, covariates=COVARIATES, measures=("response",))
    assert list(res.table.columns) == ["measure", "model", "term", "coef", "se", "statistic", "p_value", "ci_lower",
                                       "ci_upper", "ratio", "ratio_lower", "ratio_upper", "n_obs"]
    np.testing.assert_allclose(res.table["ratio_lower"], np.exp(res.table["ci_lower"]))
    with pytest.warns(DeprecationWarning, match="'ratio'"):
        old = res.table["odds_ratio"]
    pd.testing.assert_series_equal(old, res.table["ratio"], check_names=False)
    with pytest.warns(DeprecationWarning, match="'n_obs'"):
        assert (res.table["n"] == res.table["n_obs"]).all()


@pytest.mark.slow
def test_dose_response_in_simulation():
    """Simulator truth: plateau log-odds -0.5 per 10 mg DZE above 8 mg, none below; use is
    confounded by anxiety (GAD-7), so the adjusted model needs the dataset."""
    sim = analysis.simulate(4000, seed=3)
    ds = sim.dataset()
    assert sim.truth["effects"]["plateau"]["benzodiazepine_per_10mg_dze_above_threshold"] == -0.5
    out = analysis.derive_outcomes(ds)
    res = benzodiazepine_dose(out, dataset=ds, measures=("response",))
    t = res.table.set_index(["model", "term"])["ratio"]
    low = res.table.set_index(["model", "term"]).loc[("bands", "(0, 8] mg")]
    assert low["ratio_lower"] <= 1.0 <= low["ratio_upper"]            # no effect up to the threshold
    assert t[("bands", "> 20 mg")] < t[("bands", "(8, 20] mg")] < 0.8  # dose-dependent above it
    assert t[("per 10 mg above 8 mg", "per 10 mg above 8 mg")] < 0.75
    import matplotlib

    matplotlib.use("Agg")
    assert len(res.plot()) == 2
