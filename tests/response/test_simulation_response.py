"""On simulated cohorts with known truth, the response models recover the direction of the
simulator's stated effects, and early improvement predicts response.

A simulation study of 4000 patients: marked ``slow`` (``pytest -m "not slow"`` leaves it out)."""

from __future__ import annotations

import numpy as np  # noqa: F401 - used inside the formulas (np.maximum)
import pytest

import analysis
from analysis.response import early_improvement, early_response, logistic, ordinal

from response_helpers import STRICT

pytestmark = [pytest.mark.slow, *STRICT]

FORMULA = "{y} ~ prior_treatment_failures + comorbid_ptsd + I(np.maximum(benzo_dze_mg - 8, 0) / 10) + age"
BENZO = "I(np.maximum(benzo_dze_mg - 8, 0) / 10)"


@pytest.fixture(scope="module")
def sim():
    s = analysis.simulate(4000, seed=11)
    ds = s.dataset()
    out = analysis.derive_outcomes(ds)
    courses = out.courses.assign(responder=out.courses["category"].astype(object) == "responder")
    return s, ds, out, courses


def test_truth_states_negative_effects(sim):
    eff = sim[0].truth["effects"]["plateau"]
    assert eff["prior_treatment_failures_per_failure"] < 0
    assert eff["comorbid_ptsd"] < 0
    assert eff["benzodiazepine_per_10mg_dze_above_threshold"] < 0
    assert eff["benzodiazepine_threshold_dze_mg"] == 8


def test_logistic_recovers_directions(sim):
    *_, courses = sim
    fit = logistic(FORMULA.format(y="responder"), courses[courses["category"].notna()], dropna=True)
    s = fit.summary
    assert s.loc["prior_treatment_failures", "ci_upper"] < 0
    assert s.loc["comorbid_ptsd[T.True]", "coef"] < 0
    assert s.loc[BENZO, "ci_upper"] < 0
    # the benzodiazepine risk difference points the same way
    rem = logistic("remission ~ prior_treatment_failures + class_benzodiazepine", courses, dropna=True)
    assert rem.summary.loc["prior_treatment_failures", "coef"] < 0


def test_ordinal_recovers_directions(sim):
    *_, courses = sim
    fit = ordinal(FORMULA.format(y="category"), courses, dropna=True)
    s = fit.summary
    assert s.loc["prior_treatment_failures", "ci_upper"] < 0
    assert s.loc["comorbid_ptsd[T.True]", "coef"] < 0
    assert s.loc[BENZO, "ci_upper"] < 0
    me = fit.marginal_effects()
    assert me.loc[("prior_treatment_failures", "responder"), "estimate"] < 0
    assert me.loc[("prior_treatment_failures", "non-responder"), "estimate"] > 0


def test_early_improvement_predicts_response(sim):
    _, ds, out, _ = sim
    e = early_improvement(ds, outcomes=out)
    res = early_response(e, "early_improvement_pct", "responder", threshold=20, dropna=True)
    assert res.auc > 0.7
    assert res.summary.loc["auc", "ci_lower"] > 0.6
