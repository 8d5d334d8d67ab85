"""The competing-risk relapse table and the multi-state course table of ``derive_outcomes``:
worked courses by hand, and every patient accounted for against the courses, relapse and
attrition tables (definitions in docs/outcomes.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis import derive_outcomes
from analysis.outcomes.courses import COURSE_STATES, RELAPSE_CAUSES
from analysis.survival import cumulative_incidence, state_occupation

from tests.test_outcomes import INDUCTION, STANDARD, make

COURSES = {
    "standard": STANDARD,  # response 13, relapse 25, re-response 37, censored 64
    "no_endpoint": {"sessions": INDUCTION, "phq": [(0, 18)]},
    "futile": {"sessions": [0, 2, 4, 7, 9], "phq": [(0, 18), (10, 17)]},
    "non_response": {"sessions": INDUCTION, "phq": [(0, 18), (13, 16), (20, 15)]},
    "boosted": {"sessions": INDUCTION + [20], "phq": [(0, 18), (13, 6), (18, 12)]},
    "stopped": {"sessions": INDUCTION, "phq": [(0, 18), (13, 6), (16, 7), (20, 12)]},
    "responding": {"sessions": INDUCTION, "phq": [(0, 18), (13, 6), (17, 8)]},
}


def rows_of(table: pd.DataFrame, pid: str) -> list[tuple]:
    sub = table[table["patient_id"] == pid]
    return [(r.tstart, r.tstop, r.from_state, r.to_state) for r in sub.itertuples()]


@pytest.fixture(scope="module")
def worked():
    return derive_outcomes(make(COURSES))


def test_competing_relapse_causes_by_hand(worked):
    rc = worked.relapse_competing.set_index("patient_id")
    assert rc["cause"].dtype == RELAPSE_CAUSES
    expected = {  # cause, time since the end of induction (day 11)
        "standard": ("relapse", 14.0),  # confirmed on days 25 and 28
        "boosted": ("boosted", 9.0),  # day 18 qualifies, the session of day 20 comes first
        "stopped": ("stopped", 9.0),  # the last score (day 20) qualifies, no further session
        "responding": ("censored", 6.0),  # two scores, none qualifying: a relapse could have been seen
    }
    for pid, (cause, time) in expected.items():
        assert (rc.loc[pid, "cause"], rc.loc[pid, "time"]) == (cause, time), pid
    one = derive_outcomes(make({"one": {"sessions": INDUCTION, "phq": [(0, 18), (13, 6)]}}))
    assert one.relapse_competing["cause"].tolist() == ["lost"]  # one score: fewer than the 2 a relapse needs
    assert set(rc.index) == set(worked.relapse["patient_id"])


def test_course_transitions_by_hand(worked):
    ct = worked.course_transitions
    assert rows_of(ct, "standard") == [(0.0, 13.0, "induction", "response"), (13.0, 25.0, "response", "relapse"),
                                       (25.0, 37.0, "relapse", "re-response"), (37.0, 64.0, "re-response", "censored")]
    assert rows_of(ct, "no_endpoint") == [(0.0, 25.0, "induction", "lost")]  # end of induction + 14 days
    assert rows_of(ct, "futile") == [(0.0, 10.0, "induction", "stopped")]
    assert rows_of(ct, "non_response") == [(0.0, 13.0, "induction", "non-response")]
    assert rows_of(ct, "boosted") == [(0.0, 13.0, "induction", "response"), (13.0, 18.0, "response", "censored")]
    assert rows_of(ct, "stopped") == [(0.0, 13.0, "induction", "response"), (13.0, 20.0, "response", "stopped")]
    assert rows_of(ct, "responding") == [(0.0, 13.0, "induction", "response"), (13.0, 17.0, "response", "censored")]
    one = derive_outcomes(make({"standard": STANDARD}), relapse_confirmations=1).course_transitions
    # one confirmation: the day-57 score (10) is a second relapse, with no session after it
    assert rows_of(one, "standard")[-2:] == [(37.0, 57.0, "re-response", "relapse"), (57.0, 64.0, "relapse", "censored")]
    assert list(ct["from_state"].cat.categories) == list(COURSE_STATES)


def test_the_tables_feed_the_survival_functions(worked):
    ms = state_occupation(worked.course_transitions, id="patient_id", start="tstart", stop="tstop", to="to_state",
                          from_state="from_state", censor="censored")
    assert ms.states[0] == "induction"
    np.testing.assert_allclose(ms.table.groupby("time")["estimate"].sum(), 1.0)
    ci = cumulative_incidence(worked.relapse_competing, "time", "cause", censor="censored")
    assert ci.causes == ["relapse", "boosted", "stopped"]  # the causes that occur, in the table's order


@pytest.fixture(scope="module")
def sample():
    return derive_outcomes(analysis.load_dataset(analysis.sample_path()))


def _attrition(out, step: str) -> int:
    return int(out.attrition.set_index("step").loc[step, "n_excluded"])


def test_every_patient_accounted_for_in_the_sample(sample):
    courses, ct, rc = sample.courses, sample.course_transitions, sample.relapse_competing
    # every analysed patient has a course, starting in induction at time 0
    assert set(ct["patient_id"]) == set(courses["patient_id"])
    firsts = ct.groupby("patient_id").head(1)
    assert (firsts["from_state"] == "induction").all() and (firsts["tstart"] == 0).all()
    exits = firsts["to_state"].value_counts()
    assert exits["response"] == (courses["category"] == "responder").sum()
    assert exits["lost"] == _attrition(sample, "no endpoint")
    assert exits["non-response"] + exits["stopped"] == _attrition(sample, "not a responder")
    assert exits.sum() == len(courses)
    # contiguous intervals, checked again by state_occupation (gaps and overlaps are errors)
    nxt = ct.groupby("patient_id")["tstart"].shift(-1)
    assert (nxt.dropna() == ct.loc[nxt.notna(), "tstop"]).all()
    assert (ct["tstop"] > ct["tstart"]).all()
    state_occupation(ct, id="patient_id", start="tstart", stop="tstop", to="to_state", from_state="from_state",
                     censor="censored")
    # the competing-risk table is the relapse table with causes
    assert rc["patient_id"].tolist() == sample.relapse["patient_id"].tolist()
    assert (rc["cause"] == "relapse").sum() == sample.relapse["event"].sum()
    same = rc["cause"] != "boosted"
    np.testing.assert_array_equal(rc.loc[same, "time"], sample.relapse.loc[same, "time"])
    later = rc.loc[~same, "time"].to_numpy() >= sample.relapse.loc[~same, "time"].to_numpy()
    assert later.all()  # the booster comes on or after the last score
    assert rc.loc[~same, "next_phase"].isin(["maintenance", "booster"]).all()
    assert rc.loc[same, "next_phase"].isna().all()
    assert rc["cause"].notna().all()
    # the first relapse of the course model is the relapse table's when it is in interval 1
    first_relapse = ct[(ct["from_state"] == "response") & (ct["to_state"] == "relapse")]
    assert len(first_relapse) >= (rc["cause"] == "relapse").sum()
