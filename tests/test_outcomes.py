"""Outcome derivations on hand-built patients, one rule or edge case at a time.

Every expected number here is worked out by hand from the definitions in docs/outcomes.md.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis import derive_outcomes

INDUCTION = [0, 2, 4, 7, 9, 11]


def make(patients: dict[str, dict]) -> analysis.Dataset:
    """Build a dataset from {patient_id: {sessions: [days], phq: [(day, score)], other: [(instr, day, score)],
    meds: [(drug, start, end, dose)], ...patient columns}}."""
    p_rows, s_rows, a_rows, m_rows = [], [], [], []
    for pid, spec in patients.items():
        p_rows.append({"patient_id": pid, "site": spec.get("site", "site_A")})
        for i, day in enumerate(spec.get("sessions", [])):
            s_rows.append({"patient_id": pid, "day": day, "route": "iv", "dose_mg_per_kg": 0.5 + 0.01 * i,
                           "dissociation": 10 + i})
        for day, score in spec.get("phq", []):
            a_rows.append({"patient_id": pid, "day": day, "instrument": "PHQ-9", "score": score})
        for instrument, day, score in spec.get("other", []):
            a_rows.append({"patient_id": pid, "day": day, "instrument": instrument, "score": score})
        for drug, start, end, dose in spec.get("meds", []):
            m_rows.append({"patient_id": pid, "drug": drug, "start_day": start, "end_day": end, "dose_mg": dose})
    meds = pd.DataFrame(m_rows, columns=["patient_id", "drug", "start_day", "end_day", "dose_mg"]) if m_rows else None
    return analysis.Dataset.from_frames(pd.DataFrame(p_rows), pd.DataFrame(s_rows), pd.DataFrame(a_rows), meds)


STANDARD = {
    "sessions": INDUCTION + [30, 50],
    "phq": [(-3, 20), (0, 18), (4, 12), (7, 10), (9, 8), (11, 8), (13, 6), (20, 7), (25, 10), (28, 11),
            (30, 12), (37, 5), (44, 6), (57, 10), (64, 6)],
    "meds": [("lorazepam", 5, 9, 2.0), ("rapamycin", 30, None, 6.0)],
}


def course_of(out, pid):
    return out.courses.set_index("patient_id").loc[pid]


# --- courses ----------------------------------------------------------------------------


def test_standard_course():
    out = derive_outcomes(make({"A": STANDARD}))
    c = course_of(out, "A")
    assert (c.n_sessions, c.n_induction_sessions, c.completed_induction) == (8, 6, True)
    assert (c.baseline_day, c.baseline_score) == (0, 18)       # last score in [-14, 0]
    assert c.end_of_induction_day == 11
    assert (c.endpoint_day, c.endpoint_score) == (13, 6)       # the day-11 score preceded the session
    assert c.improvement_pct == pytest.approx(100 * 12 / 18)
    assert c.category == "responder" and c.remission == False  # noqa: E712
    assert c.sessions_to_response == 4                         # first score <= 9 is day 9, after 4 sessions
    assert c.early_futility == False                           # noqa: E712  day-11 score: 55.6% improved


def test_category_thresholds_are_inclusive():
    pts = {
        "R": {"sessions": INDUCTION, "phq": [(0, 20), (12, 10)]},    # exactly 50% -> responder
        "P": {"sessions": INDUCTION, "phq": [(0, 20), (12, 15)]},    # exactly 25% -> partial
        "N": {"sessions": INDUCTION, "phq": [(0, 20), (12, 16)]},    # 20% -> non-responder
        "W": {"sessions": INDUCTION, "phq": [(0, 20), (12, 24)]},    # worse -> non-responder
    }
    out = derive_outcomes(make(pts))
    got = out.courses.set_index("patient_id")["category"]
    assert got.to_dict() == {"R": "responder", "P": "partial", "N": "non-responder", "W": "non-responder"}
    assert out.courses["category"].cat.ordered
    assert list(out.courses["category"].cat.categories) == ["non-responder", "partial", "responder"]


def test_remission_at_or_below_the_cut_off():
    pts = {"A": {"sessions": INDUCTION, "phq": [(0, 20), (12, 4)]}, "B": {"sessions": INDUCTION, "phq": [(0, 20), (12, 5)]}}
    out = derive_outcomes(make(pts))
    assert out.courses.set_index("patient_id")["remission"].to_dict() == {"A": True, "B": False}
    looser = derive_outcomes(make(pts), remission_max=5)
    assert looser.courses["remission"].tolist() == [True, True]
    assert looser.definitions.remission_max_applied == 5
    assert looser.definitions.remission_max == 5 and out.definitions.remission_max is None
    assert out.definitions.remission_max_applied == 4  # PHQ-9's cut-off, resolved from the instrument


def test_same_day_scores_are_combined():
    pts = {"A": {"sessions": INDUCTION, "phq": [(0, 16), (0, 20), (12, 9)]}}
    assert course_of(derive_outcomes(make(pts)), "A").baseline_score == 18
    assert course_of(derive_outcomes(make(pts), same_day="first"), "A").baseline_score == 16
    assert course_of(derive_outcomes(make(pts), same_day="last"), "A").baseline_score == 20
    assert course_of(derive_outcomes(make(pts), same_day="max"), "A").baseline_score == 20


def test_baseline_window_edges():
    sessions = [5, 7, 9, 12, 14, 16]
    pts = {
        "on_day": {"sessions": sessions, "phq": [(-10, 25), (5, 20), (17, 10)]},   # the session-day score is baseline
        "edge": {"sessions": sessions, "phq": [(-9, 22), (17, 10)]},               # 14 days before: included
        "early": {"sessions": sessions, "phq": [(-9.5, 22), (17, 10)]},            # 14.5 days before: no baseline
        "after": {"sessions": sessions, "phq": [(6, 22), (17, 10)]},               # after the first session: no baseline
    }
    out = derive_outcomes(make(pts))
    courses = out.courses.set_index("patient_id")
    assert courses.loc["on_day", "baseline_score"] == 20 and courses.loc["edge", "baseline_day"] == -9
    assert set(out.exclusions.loc[out.exclusions.step == "no baseline", "patient_id"]) == {"early", "after"}


def test_endpoint_window_and_no_endpoint():
    pts = {
        "in": {"sessions": INDUCTION, "phq": [(0, 20), (25, 8)]},        # 14 days after day 11: endpoint
        "out": {"sessions": INDUCTION, "phq": [(0, 20), (26, 8)]},       # 15 days after: none
        "same": {"sessions": INDUCTION, "phq": [(0, 20), (11, 8)]},      # on the last session's day: before it
    }
    out = derive_outcomes(make(pts))
    courses = out.courses.set_index("patient_id")
    assert courses.loc["in", "endpoint_day"] == 25
    assert np.isnan(courses.loc["out", "endpoint_day"]) and pd.isna(courses.loc["out", "category"])
    assert np.isnan(courses.loc["same", "endpoint_day"])
    no_endpoint = out.attrition.set_index("step").loc["no endpoint"]
    assert (no_endpoint.n_in, no_endpoint.n_excluded, no_endpoint.n_remaining) == (3, 2, 1)


def test_fractional_days():
    sessions = [0.5, 2.5, 4.5, 7.5, 9.5, 11.5]
    pts = {"A": {"sessions": sessions, "phq": [(0.5, 20), (11.5, 9), (11.75, 8)]}}
    c = course_of(derive_outcomes(make(pts)), "A")
    assert (c.baseline_day, c.endpoint_day, c.endpoint_score) == (0.5, 11.75, 8)
    assert c.sessions_to_response == 5      # the day-11.5 score (55%) came after five sessions


def test_induction_is_the_first_six_sessions_within_35_days():
    pts = {
        "short": {"sessions": [0, 3, 6, 40], "phq": [(0, 20), (8, 9)]},
        "long": {"sessions": [0, 2, 4, 6, 8, 10, 12, 14], "phq": [(0, 20), (11, 9)]},
    }
    courses = derive_outcomes(make(pts)).courses.set_index("patient_id")
    assert courses.loc["short", ["n_induction_sessions", "end_of_induction_day"]].tolist() == [3, 6]
    assert not courses.loc["short", "completed_induction"]
    assert courses.loc["long", ["n_sessions", "n_induction_sessions", "end_of_induction_day"]].tolist() == [8, 6, 10]
    assert courses.loc["long", "endpoint_day"] == 11    # day 11 lies between sessions 6 and 7


def test_early_futility():
    pts = {
        "futile": {"sessions": INDUCTION, "phq": [(0, 20), (10, 16), (12, 15)]},   # 20% at day 10 < 25
        "fine": {"sessions": INDUCTION, "phq": [(0, 20), (11, 15), (12, 15)]},     # 25% on the 6th session's day
        "late": {"sessions": INDUCTION, "phq": [(0, 20), (12, 15)]},               # no score in (9, 11]
        "few": {"sessions": [0, 2, 4, 7], "phq": [(0, 20), (8, 19)]},              # fewer than 5 sessions
        "five": {"sessions": [0, 2, 4, 7, 9], "phq": [(0, 20), (12, 19)]},         # no 6th: window (9, 23]
    }
    courses = derive_outcomes(make(pts)).courses.set_index("patient_id")
    assert courses.loc["futile", "early_futility"] == True      # noqa: E712
    assert courses.loc["fine", "early_futility"] == False       # noqa: E712
    assert pd.isna(courses.loc["late", "early_futility"]) and pd.isna(courses.loc["few", "early_futility"])
    assert courses.loc["five", "early_futility"] == True        # noqa: E712


def test_sessions_to_response_missing_without_response():
    pts = {"A": {"sessions": INDUCTION, "phq": [(0, 20), (5, 12), (12, 11)]}}
    assert pd.isna(course_of(derive_outcomes(make(pts)), "A").sessions_to_response)


def test_two_instruments_for_one_patient():
    pts = {"A": {"sessions": INDUCTION, "phq": [(0, 20), (12, 11)],
                 "other": [("MADRS", 0, 34), ("MADRS", 12, 10)]}}
    ds = make(pts)
    phq = course_of(derive_outcomes(ds), "A")
    madrs = course_of(derive_outcomes(ds, "MADRS"), "A")
    assert (phq.category, phq.remission) == ("partial", False)
    assert (madrs.category, madrs.remission, madrs.instrument) == ("responder", True, "MADRS")


# --- intervals and relapse -------------------------------------------------------------------


def durability_of(out, pid):
    return out.durability[out.durability.patient_id == pid].set_index("interval")


def test_standard_intervals():
    out = derive_outcomes(make({"A": STANDARD}))
    d = durability_of(out, "A")
    assert d.index.tolist() == [1, 2, 3]
    assert d.origin_day.tolist() == [11, 30, 50]
    assert d.followup_end_day.tolist() == [30, 50, math.inf]
    # interval 1: scores 13:6, 20:7, 25:10, 28:11, 30:12 -> relapse confirmed at 25 (10 and 11 are > 9)
    assert d.loc[1, ["time", "event", "lower", "upper"]].tolist() == [14, 1, 9, 14]
    # interval 2: 37:5, 44:6 -> censored at 44
    assert d.loc[2, ["time", "event", "lower"]].tolist() == [14, 0, 14] and d.loc[2, "upper"] == math.inf
    # interval 3: 57:10 qualifies once, 64:6 -> not confirmed, censored at the last score
    assert d.loc[3, ["time", "event"]].tolist() == [14, 0]
    relapse = out.relapse.set_index("patient_id").loc["A"]
    assert relapse[["time", "event", "lower", "upper"]].tolist() == [14, 1, 9, 14]
    # session covariates of the origin session are carried
    assert d.loc[1, "dose_mg_per_kg"] == pytest.approx(0.55) and d.loc[2, "dissociation"] == 16


def test_next_session_between_the_two_qualifying_scores():
    pts = {"B": {"sessions": INDUCTION + [20], "phq": [(0, 20), (12, 4), (18, 12), (21, 13), (25, 14)]}}
    d = durability_of(derive_outcomes(make(pts)), "B")
    # interval 1 ends at the day-20 session: 18:12 qualifies but its confirmation falls after it
    assert d.loc[1, ["time", "event", "lower"]].tolist() == [7, 0, 7]
    # interval 2: 21:13 and 25:14 confirm a relapse on day 21, one day after its origin
    assert d.loc[2, ["time", "event", "lower", "upper"]].tolist() == [1, 1, 0, 1]


def test_score_on_the_next_session_day_belongs_to_the_earlier_interval():
    pts = {"C": {"sessions": INDUCTION + [20], "phq": [(0, 20), (12, 4), (18, 12), (20, 13)]}}
    d = durability_of(derive_outcomes(make(pts)), "C")
    assert d.loc[1, ["time", "event", "lower", "upper"]].tolist() == [7, 1, 1, 7]
    assert 2 not in d.index     # nothing after day 20: no follow-up, counted in attrition
    out = derive_outcomes(make(pts))
    row = out.attrition.set_index("step").loc["intervals without follow-up"]
    assert (row.n_in, row.n_excluded, row.n_remaining) == (2, 1, 1)


def test_one_confirmation_and_absolute_threshold():
    pts = {"A": STANDARD}
    once = durability_of(derive_outcomes(make(pts), relapse_confirmations=1), "A")
    assert once.loc[3, ["time", "event", "lower", "upper"]].tolist() == [7, 1, 0, 7]      # 57:10 alone is enough now
    absolute = durability_of(derive_outcomes(make(pts), relapse_threshold_score=11), "A")
    # score >= 11 twice in a row: 28:11, 30:12 in interval 1
    assert absolute.loc[1, ["time", "event", "lower", "upper"]].tolist() == [17, 1, 14, 17]


def test_partial_responders_are_followed_only_when_asked():
    pts = {"P": {"sessions": INDUCTION + [40], "phq": [(0, 20), (12, 14), (19, 15), (26, 16), (33, 17)]}}
    assert len(derive_outcomes(make(pts)).durability) == 0
    d = durability_of(derive_outcomes(make(pts), include_partial_responders=True), "P")
    # loss of benefit: improvement < 25% <=> score > 15: 26:16 and 33:17
    assert d.loc[1, ["time", "event", "lower", "upper"]].tolist() == [15, 1, 8, 15]


# --- exposure -------------------------------------------------------------------------------


def test_adjunct_exposure_by_drug_class_and_dose():
    out = derive_outcomes(make({"A": STANDARD}))
    sessions = out.sessions[out.sessions.patient_id == "A"].set_index("day")
    # lorazepam days 5..9 inclusive covers the sessions of day 7 and day 9
    assert sessions["drug_lorazepam"][sessions["drug_lorazepam"]].index.tolist() == [7, 9]
    assert sessions.loc[7, "benzo_dze_mg"] == 20.0 and sessions.loc[4, "benzo_dze_mg"] == 0
    assert sessions["class_benzodiazepine"].equals(sessions["drug_lorazepam"])
    # rapamycin from day 30, ongoing
    assert sessions["drug_rapamycin"][sessions["drug_rapamycin"]].index.tolist() == [30, 50]
    course = course_of(out, "A")
    assert course.drug_lorazepam and not course.drug_rapamycin and course.benzo_dze_mg == 20
    d = durability_of(out, "A")
    assert d.drug_rapamycin.tolist() == [False, True, True]


# --- attrition ------------------------------------------------------------------------------


def test_attrition_accounts_for_everyone():
    pts = {
        "ok": STANDARD,
        "no_sessions": {"phq": [(0, 20)]},
        "no_phq": {"sessions": INDUCTION, "other": [("MADRS", 0, 30)]},
        "zero": {"sessions": INDUCTION, "phq": [(0, 0), (12, 0)]},
        "non": {"sessions": INDUCTION, "phq": [(0, 20), (12, 19)]},
    }
    out = derive_outcomes(make(pts))
    steps = out.attrition.set_index("step")
    assert steps.loc["patients in dataset", "n_remaining"] == 5
    assert steps.loc["no sessions", "n_excluded"] == 1
    assert steps.loc["PHQ-9 not recorded", "n_excluded"] == 1
    assert steps.loc["baseline score 0", "n_excluded"] == 1
    assert set(out.courses.patient_id) == {"ok", "non"}
    assert steps.loc["not a responder", ["n_in", "n_excluded", "n_remaining"]].tolist() == [2, 1, 1]
    left = out.exclusions.groupby("step")["patient_id"].apply(set).to_dict()
    assert left == {"no sessions": {"no_sessions"}, "PHQ-9 not recorded": {"no_phq"}, "baseline score 0": {"zero"}}
    for _, row in out.attrition.iterrows():
        assert row.n_in == row.n_excluded + row.n_remaining


def test_unknown_definition_is_named():
    with pytest.raises(TypeError, match="relapse_confirmation"):
        derive_outcomes(make({"A": STANDARD}), relapse_confirmation=2)
    with pytest.raises(ValueError, match="partial_response_pct"):
        derive_outcomes(make({"A": STANDARD}), partial_response_pct=60)


def test_write_tables(tmp_path):
    out = derive_outcomes(make({"A": STANDARD}), relapse_confirmations=1)
    files = out.write(tmp_path)
    assert sorted(p.name for p in files) == ["attrition.csv", "course_transitions.csv", "courses.csv", "definitions.json",
                                             "durability.csv", "relapse.csv", "relapse_competing.csv"]
    import json

    used = json.loads((tmp_path / "definitions.json").read_text())
    assert used["relapse_confirmations"] == 1 and used["instrument"] == "PHQ-9" and used["remission_max_applied"] == 4

    # the JSON is the typed definitions' dict, exactly the keys of the previous release
    assert used == out.definitions_dict() == out.definitions.to_dict()
    assert set(used) == {"instrument", "remission_max_applied", "baseline_window_days", "induction_sessions",
                         "induction_window_days", "endpoint_window_days", "response_pct", "partial_response_pct",
                         "remission_max", "futility_after_session", "futility_pct", "relapse_threshold_score",
                         "relapse_confirmations", "include_partial_responders", "same_day"}
    assert analysis.outcomes.Definitions.from_dict(used) == out.definitions


def test_outcomes_carry_typed_definitions_bound_to_the_instrument():
    """The outcomes carry the Definitions they were derived under (not a dict that readers
    fill with defaults of their own), with the instrument and its remission cut-off."""
    from dataclasses import fields

    from analysis.outcomes import AppliedDefinitions, Definitions, definitions_of

    ds = make({"A": STANDARD})
    out = derive_outcomes(ds, "phq9", relapse_confirmations=1, response_pct=60)
    d = out.definitions
    assert isinstance(d, AppliedDefinitions) and isinstance(d, Definitions)
    assert (d.instrument, d.relapse_confirmations, d.response_pct, d.remission_max_applied) == ("PHQ-9", 1, 60, 4)
    assert out.instrument == "PHQ-9" and definitions_of(out) is d
    assert derive_outcomes(ds).definitions == Definitions().for_instrument("PHQ-9")
    assert d.parameters() == Definitions(relapse_confirmations=1, response_pct=60)
    # the cut-off is checked against the instrument's range when the definitions are bound
    with pytest.raises(ValueError, match="remission_max 40 lies outside the PHQ-9 range"):
        derive_outcomes(ds, remission_max=40)
    with pytest.raises(KeyError, match="unknown instrument"):
        Definitions().for_instrument("XYZ-12")
    # instrument and the applied cut-off are not user parameters (one option each on the command line)
    assert "instrument" not in {f.name for f in fields(Definitions)}
    with pytest.raises(TypeError, match="remission_max_applied"):
        Definitions.from_kwargs(remission_max_applied=3)
    # rebinding resolves the cut-off again; a new remission_max is checked against the range
    from dataclasses import replace

    assert replace(d, remission_max=3).remission_max_applied == 3
    assert d.for_instrument("MADRS").remission_max_applied == 10


def test_dict_access_to_definitions_still_works_with_a_warning():
    out = derive_outcomes(make({"A": STANDARD}))
    with pytest.warns(DeprecationWarning, match=r"outcomes.definitions.response_pct"):
        assert out.definitions["response_pct"] == 50
    with pytest.warns(DeprecationWarning):
        assert out.definitions["instrument"] == "PHQ-9"
    with pytest.warns(DeprecationWarning):
        assert out.definitions.get("relapse_confirmations") == 2
    with pytest.warns(DeprecationWarning), pytest.raises(KeyError):
        out.definitions["no_such_definition"]
    # an Outcomes built with the old dict gets typed definitions, with a warning
    with pytest.warns(DeprecationWarning, match="Outcomes\\(definitions=<dict>\\)"):
        old = analysis.Outcomes(out.courses, out.relapse, out.durability, out.attrition, out.exclusions, out.sessions,
                                definitions=out.definitions_dict())
    assert old.definitions == out.definitions


# --- no derivation depends on the range of another patient's values ----------------------------


def _sample():
    from analysis.resources import sample_path

    return analysis.load_dataset(sample_path())


def _unvalidated(ds, sessions=None, assessments=None):
    """The dataset with tables swapped in without validation (validation refuses such days)."""
    return analysis.Dataset(ds.patients, ds.sessions if sessions is None else sessions,
                            ds.assessments if assessments is None else assessments, ds.medications, report=ds.report)


def _rows_of_others(out, pid):
    return {name: getattr(out, name).pipe(lambda t: t[t["patient_id"] != pid]).reset_index(drop=True)
            for name in ("courses", "relapse", "durability")}


@pytest.mark.parametrize("day", [1e15, 1e300, -1e300, 7305.0])
def test_an_extreme_day_of_one_patient_leaves_the_others_unchanged(day):
    ds = _sample()
    clean = derive_outcomes(ds)
    assert (len(clean.relapse), len(clean.durability)) == (284, 1499)
    sessions = ds.sessions.copy()
    pid = sessions["patient_id"].iloc[-1]
    sessions.loc[sessions.index[-1], "day"] = day
    out = derive_outcomes(_unvalidated(ds, sessions=sessions))
    before, after = _rows_of_others(clean, pid), _rows_of_others(out, pid)
    for name in before:
        pd.testing.assert_frame_equal(after[name], before[name], obj=name)
    assert len(out.relapse) >= 283 and len(out.durability) >= 1499 - 10


def test_sessions_before_is_exact_whatever_the_other_patients_days():
    from analysis.outcomes.timeline import build_timeline

    patients = pd.DataFrame({"patient_id": ["A", "B", "C"]})
    sessions = pd.DataFrame({"patient_id": ["A", "B", "B", "B", "C"],
                             "day": [1e300, 0.0, 1e-9, 2e-9, -1e300]})
    scores = pd.DataFrame({"patient_id": ["B"] * 4 + ["A", "C"], "day": [0.0, 1e-9, 1.5e-9, 3e-9, 1e300, -1e300],
                           "score": [10.0] * 6})
    tl = build_timeline(patients, sessions, scores)
    # a score on a session day precedes that session
    got = dict(zip(zip(tl.a_patient, tl.a_day), tl.sessions_before(tl.a_patient, tl.a_day)))
    assert got == {(1, 0.0): 0, (1, 1e-9): 1, (1, 1.5e-9): 2, (1, 3e-9): 3, (0, 1e300): 0, (2, -1e300): 0}
    assert tl.sessions_before(np.array([1, 0, 2]), np.array([np.inf, np.inf, -np.inf])).tolist() == [3, 1, 0]


def test_sessions_before_and_score_index_equal_sorting_and_matching():
    """The rank-and-search forms give what a sort of sessions and queries together and a
    (patient, day) index lookup give, on days with ties, -0.0, infinities and missing days."""
    from analysis.outcomes.timeline import build_timeline

    rng = np.random.default_rng(15)
    days = np.array([0.0, -0.0, 1.0, 1.5, 2.0, 1e300, -np.inf, np.inf, 3.0, 7.25])
    patients = pd.DataFrame({"patient_id": [f"P{i}" for i in range(6)]})
    sessions = pd.DataFrame({"patient_id": rng.choice(patients["patient_id"], 80),
                             "day": np.append(rng.choice(days, 79), np.nan)})
    scores = pd.DataFrame({"patient_id": rng.choice(patients["patient_id"], 60), "day": rng.choice(days, 60),
                           "score": rng.integers(0, 27, 60).astype(float)})
    scores = scores.groupby(["patient_id", "day"], sort=False)["score"].mean().reset_index()
    tl = build_timeline(patients, sessions, scores)
    q_patient = rng.integers(0, 6, 200)
    q_day = np.append(rng.choice(np.append(days, [0.5, np.nan]), 199), np.nan)

    def by_sorting(patient, day):
        return np.array([sum(1 for s in range(len(tl.s_day)) if tl.s_patient[s] == p
                             and (tl.s_day[s] < d or (np.isnan(d) and not np.isnan(tl.s_day[s]))))
                         for p, d in zip(patient, day)])

    assert tl.sessions_before(q_patient, q_day).tolist() == by_sorting(q_patient, q_day).tolist()
    expected = pd.MultiIndex.from_arrays([tl.a_patient, tl.a_day]).get_indexer(
        pd.MultiIndex.from_arrays([q_patient, q_day]))
    assert tl.score_index(q_patient, q_day).tolist() == expected.tolist()
    assert (tl.score_index(tl.a_patient, tl.a_day) == np.arange(len(tl.a_day))).all()


@pytest.mark.parametrize("rule", ["mean", "first", "last", "max"])
def test_instrument_scores_equal_the_groupby(rule):
    """Same-day scores combined by one whole-number key per (patient, day): the table of
    pandas' groupby, labels (0.0 or -0.0 as first written) and missing patients or days
    included, for text and categorical patient ids."""
    from analysis.outcomes.timeline import instrument_scores

    rng = np.random.default_rng(15)
    for trial in range(60):
        n = int(rng.integers(0, 50))
        frame = pd.DataFrame({"patient_id": pd.array(rng.choice(["A", "B", "C", None], n), dtype="string"),
                              "day": rng.choice([0.0, -0.0, 1.0, 2.5, np.nan, 1e300, -np.inf], n),
                              "instrument": pd.array(rng.choice(["PHQ-9", "GAD-7"], n), dtype="string"),
                              "score": rng.choice([1.0, 2.0, np.nan, 0.1, 0.2, 0.3], n)})
        if trial % 2:
            frame["patient_id"] = frame["patient_id"].astype(pd.CategoricalDtype(["C", "B", "A", "D"]))
        if trial % 3 == 0:  # in (patient, day) order, none missing: the registry's layout
            frame = frame.dropna(subset=["patient_id", "day"]).sort_values(["patient_id", "day"], kind="stable")
        rows = frame.loc[frame["instrument"] == "PHQ-9", ["patient_id", "day", "score"]]
        expected = getattr(rows.groupby(["patient_id", "day"], sort=False, observed=True)["score"], rule)().reset_index()
        got = instrument_scores(frame, "PHQ-9", rule)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
        assert (np.signbit(got["day"].to_numpy()) == np.signbit(expected["day"].to_numpy())).all()


def test_session_exposure_of_coded_patients_equals_text_ids():
    """Patients coded as categories (a partition's) are joined to their periods by codes:
    the same flags and doses as by their text ids, missing ids matching each other."""
    from analysis.outcomes.exposure import session_exposure

    rng = np.random.default_rng(3)
    coded = pd.CategoricalDtype(["A", "B", "C"])
    for _ in range(60):
        n, m = int(rng.integers(0, 30)), int(rng.integers(1, 8))
        sessions = pd.DataFrame({"patient_id": pd.array(rng.choice(["A", "B", "C", None], n), dtype="string"),
                                 "day": rng.integers(0, 10, n).astype(float)})
        meds = pd.DataFrame({"patient_id": pd.array(rng.choice(["A", "B", None], m), dtype="string"),
                             "drug": pd.array(rng.choice(["lorazepam", "diazepam", "lithium"], m), dtype="string"),
                             "drug_class": pd.array(rng.choice(["benzodiazepine", None], m), dtype="string"),
                             "start_day": rng.integers(0, 5, m).astype(float),
                             "end_day": rng.choice([3.0, 8.0, np.nan], m), "dose_dze_mg": rng.choice([1.5, 2.25, np.nan], m)})
        by_text = session_exposure(sessions, meds)
        by_code = session_exposure(sessions.astype({"patient_id": coded}), meds.astype({"patient_id": coded}))
        pd.testing.assert_frame_equal(by_code, by_text, check_exact=True)
