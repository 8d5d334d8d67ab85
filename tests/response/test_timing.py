"""Time to response and the early-improvement predictor on hand-built patients (expected
values worked out by hand from docs/response.md sections 8-9), and on the bundled sample."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import analysis
from analysis.response import early_improvement, early_response, response_table, time_to_response
from analysis.survival import kaplan_meier

INDUCTION = [0, 2, 4, 7, 9, 11]
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def make(patients: dict[str, dict]) -> analysis.Dataset:
    """{patient_id: {"sessions": [days], "phq": [(day, score)]}} as a validated dataset."""
    p_rows, s_rows, a_rows = [], [], []
    for pid, spec in patients.items():
        p_rows.append({"patient_id": pid, "site": spec.get("site", "site_A")})
        for day in spec["sessions"]:
            s_rows.append({"patient_id": pid, "day": day, "route": "iv", "dose_mg_per_kg": 0.5})
        for day, score in spec["phq"]:
            a_rows.append({"patient_id": pid, "day": day, "instrument": "PHQ-9", "score": score})
    return analysis.Dataset.from_frames(pd.DataFrame(p_rows), pd.DataFrame(s_rows), pd.DataFrame(a_rows))


PATIENTS = {
    # baseline 18 (day 0); endpoint day 13; first score >= 50 % improved is day 9 (8 <= 9),
    # after the sessions of days 0, 2, 4, 7
    "A": {"sessions": INDUCTION + [30, 50],
          "phq": [(-3, 20), (0, 18), (4, 12), (7, 10), (9, 8), (11, 8), (13, 6), (20, 7)]},
    # never responds: censored at the endpoint (day 12, six sessions before it)
    "N": {"sessions": INDUCTION, "phq": [(0, 20), (5, 18), (12, 16)]},
    # no endpoint: scores count up to the end of induction (day 11); censored at day 3
    "D": {"sessions": INDUCTION, "phq": [(0, 20), (3, 15)]},
    # no score after the first session: left out, and counted
    "E": {"sessions": INDUCTION, "phq": [(0, 20)]},
}


@pytest.fixture(scope="module")
def ds():
    return make(PATIENTS)


def test_response_table_by_hand(ds):
    t = response_table(ds).set_index("patient_id")
    assert t.loc["A", ["event", "days", "sessions", "n_scores"]].tolist() == [1, 9, 4, 5]
    assert t.loc["N", ["event", "days", "sessions", "n_scores"]].tolist() == [0, 12, 6, 2]
    assert t.loc["D", ["event", "days", "sessions", "n_scores"]].tolist() == [0, 3, 2, 1]
    assert "E" not in t.index
    assert t.attrs["n_excluded"] == 1
    # agrees with derive_outcomes' sessions_to_response
    assert t.loc["A", "sessions_to_response"] == 4


def test_time_to_response_is_kaplan_meier(ds):
    km = time_to_response(ds, scale="days")
    tab = km.table
    assert tab["time"].tolist() == [3, 9, 12]
    assert tab["events"].tolist() == [0, 1, 0]
    assert tab["survival"].tolist() == pytest.approx([1.0, 0.5, 0.5])
    kms = time_to_response(ds, scale="sessions")
    assert kms.table["time"].tolist() == [2, 4, 6]


def test_response_threshold_can_change(ds):
    t = response_table(ds, response_pct=30).set_index("patient_id")
    # 30 %: A responds at day 4 (12 is 33 % below 18, after 2 sessions)
    assert t.loc["A", ["event", "days", "sessions"]].tolist() == [1, 4, 2]


def test_early_improvement_by_hand(ds):
    e = early_improvement(ds).set_index("patient_id")
    assert e.loc["A", "early_improvement_pct"] == pytest.approx(100 * 6 / 18)  # day 4, after 2 sessions
    assert e.loc["A", ["early_day", "early_sessions_before"]].tolist() == [4, 2]
    assert e.loc["N", "early_improvement_pct"] == pytest.approx(10.0)  # day 5, after 3 sessions
    assert e.loc["N", "early_sessions_before"] == 3
    assert bool(e.loc["A", "responder"]) is True and bool(e.loc["N", "responder"]) is False
    assert pd.isna(e.loc["D", "responder"])  # no endpoint
    assert e.attrs["n_excluded"] == 1
    w = early_improvement(ds, after_session=None, within_days=7).set_index("patient_id")
    assert w.loc["A", "early_improvement_pct"] == pytest.approx(100 * 8 / 18)  # last score by day 7
    with pytest.raises(ValueError, match="exactly one"):
        early_improvement(ds, after_session=2, within_days=7)


@pytest.fixture(scope="module")
def sample():
    ds = analysis.load_dataset(SAMPLE)
    return ds, analysis.derive_outcomes(ds)


def test_sample_sessions_to_response_agrees_with_courses(sample):
    ds, out = sample
    t = response_table(ds, outcomes=out)
    responded = t["sessions_to_response"].notna()
    assert (t["event"] == responded.astype(int)).all()
    assert (t.loc[responded, "sessions"] == t.loc[responded, "sessions_to_response"]).all()
    # the KM of the table is what time_to_response returns
    a = time_to_response(t, scale="days").table
    b = kaplan_meier(t, "days", "event").table
    pd.testing.assert_frame_equal(a, b)


def test_courses_table_gives_sessions_scale(sample):
    _, out = sample
    km = time_to_response(out.courses, scale="sessions")
    assert km.median["n"].iloc[0] == len(out.courses)
    with pytest.raises(ValueError, match="scale='sessions'"):
        time_to_response(out.courses, scale="days")


def test_sample_early_response(sample):
    ds, out = sample
    e = early_improvement(ds, outcomes=out)
    res = early_response(e, "early_improvement_pct", "responder", threshold=20, dropna=True)
    assert res.auc > 0.7 and res.summary.loc["auc", "ci_lower"] > 0.5
    assert res.n_dropped == int(e["responder"].isna().sum())


def test_instrument_must_agree_with_the_outcomes(sample):
    """PHQ-9 scores read against MADRS baselines made 206 of 208 patients 'respond' on the
    sample (against 123 of 199 on MADRS): an instrument that disagrees with the outcomes'
    is an error naming both; without instrument= the outcomes' instrument is used."""
    ds, phq = sample
    madrs = analysis.derive_outcomes(ds, "MADRS")
    for fn in (response_table, early_improvement):
        with pytest.raises(ValueError, match=r"instrument='PHQ-9' but the outcomes were derived on 'MADRS'"):
            fn(ds, instrument="PHQ-9", outcomes=madrs)
        with pytest.raises(ValueError, match=r"instrument='MADRS' but the outcomes were derived on 'PHQ-9'"):
            fn(ds, instrument="MADRS", outcomes=phq)
    t = response_table(ds, outcomes=madrs)
    assert (int(t["event"].sum()), len(t)) == (123, 199)
    assert t.attrs["instrument"] == "MADRS"
    pd.testing.assert_frame_equal(t, response_table(ds, instrument="madrs", outcomes=madrs))
    pd.testing.assert_frame_equal(t, response_table(ds, instrument="MADRS"))
    # the outcomes' sessions to response (derived on MADRS) agree with the table's
    responded = t["sessions_to_response"].notna()
    assert (t.loc[responded, "sessions"] == t.loc[responded, "sessions_to_response"]).all()
    e = early_improvement(ds, outcomes=madrs)
    pd.testing.assert_frame_equal(e, early_improvement(ds, instrument="MADRS"))


def test_thresholds_come_from_the_outcomes_definitions(sample):
    ds, _ = sample
    loose = analysis.derive_outcomes(ds, response_pct=40, partial_response_pct=20)
    t = response_table(ds, outcomes=loose)
    assert t.attrs["response_pct"] == 40.0
    assert (t["event"] == t["sessions_to_response"].notna().astype(int)).all()
