"""The seeded simulator: determinism, validity in format v1, calibration, ground truth, scale.

Calibration figures are computed here from the observed tables only, with the definitions
of docs/simulator.md, so the test does not trust the simulator's own summary.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.simulation import Simulation, SimulationParameters, parameter_table_markdown, simulate
from analysis.simulation.parameters import TABLE_BEGIN, TABLE_END

DOCS = Path(__file__).resolve().parents[1] / "docs"


@lru_cache(maxsize=None)
def _sim(n: int, seed: int) -> Simulation:
    return simulate(n, seed=seed)


def _observed_outcomes(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Response and remission by PHQ-9 from the observed tables (docs/simulator.md, calibration)."""
    ses = tables["sessions"].sort_values(["patient_id", "day"])
    first = ses.groupby("patient_id")["day"].min().rename("first_day")
    ind = ses[ses["phase"] == "induction"]
    rank = ind.groupby("patient_id").cumcount()
    sixth = ind[rank.to_numpy() == 5].set_index("patient_id")["day"]
    last = ind.groupby("patient_id")["day"].max()
    end = sixth.reindex(last.index).fillna(last).rename("end_day")
    phq = tables["assessments"].query("instrument == 'PHQ-9'").join(first, on="patient_id").join(end, on="patient_id")
    base = phq[(phq["day"] <= phq["first_day"]) & (phq["day"] >= phq["first_day"] - 14)]
    base = base.sort_values("day").groupby("patient_id")["score"].last().rename("baseline")
    post = phq[(phq["day"] > phq["end_day"]) & (phq["day"] <= phq["end_day"] + 14)]
    post = post.sort_values("day").groupby("patient_id")["score"].first().rename("endpoint")
    out = pd.concat([base, post], axis=1).dropna()
    out = out[out["baseline"] > 0]
    out["response"] = (out["baseline"] - out["endpoint"]) / out["baseline"] >= 0.5
    out["remission"] = out["endpoint"] <= 4
    return out


# --- determinism ---------------------------------------------------------------------------


def test_same_seed_gives_identical_tables_and_truth():
    a, b = simulate(300, seed=11), simulate(300, seed=11)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name], check_exact=True)
    assert a.truth == b.truth


def test_different_seed_gives_different_data():
    a, b = simulate(300, seed=11), simulate(300, seed=12)
    assert not a.tables["assessments"].equals(b.tables["assessments"])
    assert not a.tables["sessions"].equals(b.tables["sessions"])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_written_files_are_byte_identical_and_load_cleanly(tmp_path, fmt):
    first = simulate(400, seed=5).write(tmp_path / "one", format=fmt)
    second = simulate(400, seed=5).write(tmp_path / "two", format=fmt)
    assert [p.name for p in first] == [f"{t}.{fmt}" for t in ("patients", "sessions", "assessments", "medications")] + ["ground_truth.json"]
    for p, q in zip(first, second):
        assert p.read_bytes() == q.read_bytes(), p.name
    other = simulate(400, seed=6).write(tmp_path / "three", format=fmt)
    assert other[1].read_bytes() != first[1].read_bytes()
    ds = analysis.load_dataset(tmp_path / "one")
    assert ds.report.n_errors == 0
    assert ds.equals(simulate(400, seed=5).dataset())
    truth = json.loads((tmp_path / "one" / "ground_truth.json").read_text())
    assert truth["seed"] == 5 and truth["n_patients"] == 400


def test_csv_spells_booleans_and_whole_numbers_plainly(tmp_path):
    simulate(60, seed=1).write(tmp_path)
    lines = (tmp_path / "sessions.csv").read_text().splitlines()
    assert lines[0] == "patient_id,day,route,dose_mg_per_kg,dose_mg,duration_min,bolus_mg,dissociation,completed,phase"
    assert all(line.split(",")[8] in ("true", "false") for line in lines[1:])
    assert all("." not in line.split(",")[1] for line in lines[1:])  # whole study days


# --- validity -----------------------------------------------------------------------------


def test_tables_validate_without_problems():
    sim = _sim(2000, 0)
    ds = sim.dataset()
    assert ds.report.n_errors == 0
    assert ds.report.n_warnings == 0
    assert len(ds.patients) == 2000


def test_tables_are_sorted_with_fixed_columns():
    t = _sim(2000, 0).tables
    assert list(t["patients"].columns) == ["patient_id", "site", "age", "sex", "weight_kg", "diagnosis",
                                           "prior_treatment_failures", "comorbid_ptsd"]
    assert list(t["assessments"].columns) == ["patient_id", "day", "instrument", "score"]
    assert list(t["medications"].columns) == ["patient_id", "drug", "start_day", "end_day", "drug_class", "dose_mg", "timing"]
    for name in ("sessions", "assessments"):
        frame = t[name]
        order = frame.sort_values(["patient_id", "day"], kind="stable").index
        assert (order == frame.index).all(), name
    assert t["patients"]["patient_id"].is_monotonic_increasing


def test_cohort_looks_like_a_ketamine_clinic():
    t = _sim(2000, 0).tables
    pts, ses, meds = t["patients"], t["sessions"], t["medications"]
    assert pts["age"].between(18, 90).all() and not ((pts["age"] > 89) & (pts["age"] != 90)).any()
    assert set(pts["site"]) == {"site_A", "site_B", "site_C"}
    assert set(pts["diagnosis"]) == {"MDD", "bipolar depression"}
    assert pts["prior_treatment_failures"].between(0, 8).all()
    routes = ses.drop_duplicates("patient_id")["route"].value_counts(normalize=True)
    assert 0.72 < routes["iv"] < 0.88
    nasal = ses[ses["route"] == "intranasal"]
    assert set(nasal["dose_mg"]) <= {56.0, 84.0} and nasal["dose_mg_per_kg"].isna().all()
    iv = ses[ses["route"] == "iv"]
    assert iv["dose_mg_per_kg"].between(0.4, 1.0).all() and iv["dose_mg_per_kg"].median() == 0.5
    assert iv["duration_min"].dropna().between(5, 60).all()
    induction = ses[ses["phase"] == "induction"]
    counts = induction.groupby("patient_id").size()
    assert counts.max() == 6 and 0.8 < (counts == 6).mean() < 0.98
    gaps = induction.groupby("patient_id")["day"].diff().dropna()
    assert gaps.between(2, 4).all()
    assert set(ses["phase"]) == {"induction", "maintenance", "booster"}
    assert 0.005 < (~ses["completed"]).mean() < 0.05
    assert ses["dissociation"].dropna().between(0, 92).all()
    users = meds.groupby("drug_class")["patient_id"].nunique() / len(pts)
    assert 0.18 < users["benzodiazepine"] < 0.28
    assert 0.02 < users["mtor_inhibitor"] < 0.2
    assert set(meds.loc[meds["drug_class"] == "benzodiazepine", "drug"]) == {"lorazepam", "clonazepam", "alprazolam", "diazepam"}
    lamo = meds.loc[meds["drug"] == "lamotrigine", "patient_id"]
    bipolar = pts.set_index("patient_id").loc[lamo, "diagnosis"] == "bipolar depression"
    assert bipolar.mean() > 0.5


def test_rapamycin_periods_match_the_latent_exposure():
    sim = _sim(2000, 0)
    rapa = sim.tables["medications"].query("drug == 'rapamycin'")
    assert (rapa["timing"] == "pre-session").all() and (rapa["dose_mg"] == 6).all()
    ses = sim.tables["sessions"].merge(rapa[["patient_id", "start_day", "end_day"]], on="patient_id", how="left")
    exposed = (ses["day"] >= ses["start_day"]) & ((ses["day"] <= ses["end_day"]) | ses["end_day"].isna())
    assert (exposed.to_numpy() == sim.latent["sessions"]["rapamycin"].to_numpy()).all()
    first_exposed = ses[exposed].groupby("patient_id")["day"].min()
    assert (first_exposed - 1 == rapa.set_index("patient_id")["start_day"].reindex(first_exposed.index)).all()
    assert (ses.loc[exposed, "phase"] != "induction").all()


def test_an_assessment_on_a_session_day_reflects_only_earlier_sessions():
    sim = _sim(2000, 0)
    a = sim.latent["assessments"]
    first = sim.tables["sessions"].groupby("patient_id")["day"].min()
    before = a["day"].to_numpy() <= first.reindex(a["patient_id"]).to_numpy()
    assert (a.loc[before, "improvement"] == 0).all()
    # on the second session day the improvement is that after exactly one session
    ses = sim.latent["sessions"]
    second = ses[ses["session_number"] == 2][["patient_id", "day"]]
    level1 = ses[ses["session_number"] == 1].set_index("patient_id")["level"]
    at = a.merge(second, on=["patient_id", "day"])
    assert np.allclose(at["improvement"], level1.reindex(at["patient_id"]).to_numpy())


# --- calibration --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_calibration_lands_in_the_documented_ranges(seed):
    sim = _sim(2000, seed)
    out = _observed_outcomes(sim.tables)
    assert len(out) > 0.95 * 2000
    assert 0.50 <= out["response"].mean() <= 0.70
    assert 0.25 <= out["remission"].mean() <= 0.40
    realised = sim.truth["realised"]
    assert 14 <= realised["median_days_to_relapse_after_induction"] <= 21
    assert realised["response_rate"] == pytest.approx(out["response"].mean(), abs=1e-6)
    assert realised["remission_rate"] == pytest.approx(out["remission"].mean(), abs=1e-6)


@pytest.mark.slow
def test_within_patient_contrast_recovers_the_rapamycin_hazard_ratio():
    """Stratified by patient, the latent intervals give HR ~0.5; crude, confounding biases it up."""
    from statsmodels.duration.hazard_regression import PHReg

    sim = simulate(4000, seed=21)
    iv = sim.latent["sessions"]
    iv = iv[np.isfinite(iv["durability"])]
    time = np.minimum(iv["durability"], iv["interval_end_day"] - iv["day"]).to_numpy()
    exog = iv[["rapamycin"]].to_numpy(dtype=float)
    status = iv["interval_event"].to_numpy(dtype=int)
    strata = pd.factorize(iv["patient_id"])[0]
    within = float(np.exp(PHReg(time, exog, status=status, strata=strata).fit().params[0]))
    crude = float(np.exp(PHReg(time, exog, status=status).fit().params[0]))
    assert 0.38 < within < 0.65
    assert crude > within + 0.15


# --- truth and parameters ---------------------------------------------------------------------


def test_truth_has_the_documented_keys_and_is_json():
    truth = _sim(2000, 0).truth
    assert json.loads(json.dumps(truth, allow_nan=False)) == truth
    assert {"simulator_version", "format_version", "seed", "n_patients", "n_sites", "parameters", "effects",
            "realised", "definitions"} <= set(truth)
    assert set(truth["parameters"]) == {f for f in SimulationParameters.__dataclass_fields__}
    for name in ("plateau", "induction_speed", "dose", "dissociation", "durability"):
        assert "scale" in truth["effects"][name], name
    hr = truth["effects"]["durability"]["hazard_ratios"]
    assert hr["rapamycin"] == 0.5 and hr["lamotrigine"] == 1.0
    assert truth["effects"]["dose"]["effect"] == 0.0 and truth["effects"]["dissociation"]["effect"] == 0.0
    assert truth["effects"]["plateau"]["lamotrigine"] == 0.0
    assert set(truth["effects"]["plateau"]["site"]) == {"site_A", "site_B", "site_C"}
    realised = truth["realised"]
    for key in ("n_patients", "n_sessions", "n_assessments", "response_rate", "remission_rate",
                "median_days_to_relapse_after_induction", "latent_response_rate", "sustained_response_28d",
                "sustained_response_56d", "fraction_benzodiazepine", "fraction_lamotrigine", "fraction_rapamycin",
                "fraction_maintenance", "n_durability_intervals", "n_durability_events"):
        assert key in realised, key
    assert realised["n_sessions"] == len(_sim(2000, 0).tables["sessions"])


def test_parameters_can_be_overridden_and_unknown_ones_are_refused():
    sim = simulate(200, seed=3, hr_rapamycin=0.7, plateau_intercept=2.0)
    assert sim.truth["effects"]["durability"]["hazard_ratios"]["rapamycin"] == 0.7
    assert sim.truth["parameters"]["plateau_intercept"] == 2.0
    assert sim.truth["realised"]["latent_response_rate"] > simulate(200, seed=3).truth["realised"]["latent_response_rate"]
    with pytest.raises(TypeError, match="hr_rapamycine"):
        simulate(100, hr_rapamycine=0.5)
    with pytest.raises(TypeError, match="not_a_parameter"):
        simulate(100, seed=1, not_a_parameter=1)
    with pytest.raises(ValueError, match="route_probabilities"):
        simulate(100, route_probabilities={"iv": 0.5})


def test_small_and_odd_cohorts_still_validate():
    for sim in (simulate(1, seed=0), simulate(5, n_sites=8), simulate(80, frailty_distribution="lognormal"),
                simulate(80, max_post_induction_sessions=0, madrs_sites=0)):
        assert sim.dataset().report.n_errors == 0


def test_top_level_export():
    assert analysis.simulate is simulate and "simulate" in analysis.__all__ and "Simulation" in analysis.__all__


def test_docs_parameter_table_is_generated_from_the_code():
    text = (DOCS / "simulator.md").read_text(encoding="utf-8")
    block = text[text.index(TABLE_BEGIN) + len(TABLE_BEGIN): text.index(TABLE_END)]
    assert block.strip() == parameter_table_markdown().strip(), (
        "docs/simulator.md is out of date: run python -c \"from analysis.simulation.parameters import "
        "update_parameter_table; update_parameter_table('docs/simulator.md')\""
    )


# --- scale --------------------------------------------------------------------------------


@pytest.mark.slow
def test_scale_smoke_20000_patients():
    sim = simulate(20000, seed=4)
    assert len(sim.tables["patients"]) == 20000
    assert 8 < len(sim.tables["sessions"]) / 20000 < 12
    assert 18 < len(sim.tables["assessments"]) / 20000 < 30
