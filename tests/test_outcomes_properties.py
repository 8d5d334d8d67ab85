"""Property-based invariants of the derivations on random small datasets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import derive_outcomes

from tests.test_outcomes import make

BEFORE_COURSES = {"no sessions", "PHQ-9 not recorded", "no baseline", "baseline score 0"}

day = st.integers(-20, 90).map(float) | st.floats(-20, 90, allow_nan=False).map(lambda x: round(x, 2))
patient = st.fixed_dictionaries({
    "sessions": st.lists(day, max_size=12),
    "phq": st.lists(st.tuples(day, st.integers(0, 27)), max_size=25),
})


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patients=st.lists(patient, min_size=1, max_size=5),
       confirmations=st.integers(1, 3), partial=st.booleans())
def test_invariants(patients, confirmations, partial):
    spec = {f"P{i}": p for i, p in enumerate(patients)}
    for p in spec.values():          # exact duplicate rows are invalid data; keep one of each
        p["sessions"] = sorted(set(p["sessions"]))
        p["phq"] = sorted(set(p["phq"]))
    if not any(p["sessions"] for p in spec.values()) or not any(p["phq"] for p in spec.values()):
        return
    out = derive_outcomes(make(spec), relapse_confirmations=confirmations, include_partial_responders=partial)

    # everyone is in courses, or excluded before it, exactly once
    before = out.exclusions[out.exclusions.step.isin(BEFORE_COURSES)]
    assert sorted(list(out.courses.patient_id) + list(before.patient_id)) == sorted(spec)

    # categories partition the patients with an endpoint
    with_endpoint = out.courses[out.courses.endpoint_day.notna()]
    counts = with_endpoint["category"].value_counts()
    assert counts.sum() == len(with_endpoint) and with_endpoint["category"].notna().all()
    assert out.courses.loc[out.courses.endpoint_day.isna(), "category"].isna().all()

    # attrition arithmetic
    assert (out.attrition.n_in == out.attrition.n_excluded + out.attrition.n_remaining).all()

    # interval bounds
    for table in (out.relapse, out.durability):
        events = table[table.event == 1]
        assert ((events.lower >= 0) & (events.lower <= events.upper) & (events.upper == events.time)).all()
        censored = table[table.event == 0]
        assert (censored.lower == censored.time).all() and np.isinf(censored.upper).all()
        assert (table.time > 0).all()
        assert (table.origin_day + table.time <= table.followup_end_day).all()
    assert out.relapse.patient_id.is_unique
    assert set(out.relapse.patient_id) <= set(out.courses.loc[out.courses.category.notna(), "patient_id"])
