"""Property-based tests: the loader answers garbage with a clear error, never a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import DataValidationError, check_dataset
from analysis.cli import main

from tests.datasets import VALID_TABLES, write_tables

TABLE_NAMES = ["patients", "sessions", "assessments", "medications"]

cell = st.one_of(
    st.none(),
    st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["iv", "PHQ-9", "2024-01-01", "P01", "true", "", "NA", "1e400", "-0", "  7 "]),
)


def _check_clear(report) -> None:
    """Every problem names its table and says what was expected, in one line of text."""
    for problem in report.problems():
        text = str(problem)
        assert problem.table and problem.message
        assert "Traceback" not in text


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=st.sampled_from(TABLE_NAMES), data=st.binary(max_size=300))
def test_random_bytes_in_a_table_file(table, data):
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_tables(Path(tmp), VALID_TABLES)
        (folder / f"{table}.csv").write_bytes(data)
        dataset, report = check_dataset(folder)
        assert (dataset is None) == (not report.ok)
        _check_clear(report)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=st.sampled_from(TABLE_NAMES),
    column=st.sampled_from(["patient_id", "day", "route", "score", "instrument", "dose_mg_per_kg", "age",
                            "start_day", "end_day", "drug", "completed", "weird column"]),
    values=st.lists(cell, min_size=1, max_size=6),
)
def test_random_values_in_a_column(table, column, values):
    frames = {name: frame.copy() for name, frame in VALID_TABLES.items()}
    frame = frames[table]
    n = len(frame)
    frame[column] = pd.Series((values * n)[:n], dtype=object).to_numpy()
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_tables(Path(tmp), frames)
        dataset, report = check_dataset(folder)
        assert (dataset is None) == (not report.ok)
        _check_clear(report)
    try:
        from analysis import Dataset

        Dataset.from_frames(**frames)
    except DataValidationError as exc:
        _check_clear(exc.report)


@settings(max_examples=25, deadline=None)
@given(text=st.text(max_size=200))
def test_cli_validate_exits_1_not_traceback(text):
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_tables(Path(tmp), VALID_TABLES)
        (folder / "sessions.csv").write_text(text, encoding="utf-8")
        code = main(["validate", str(folder)])
        assert code in (0, 1)
