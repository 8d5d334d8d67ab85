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


# --- the fast paths of loading large registries (issue 15) give what the plain pandas steps give

@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["P1", "P2", None]), st.sampled_from([0.0, -0.0, 1.5, float("nan")]),
                               st.sampled_from(["iv", "im", None]), st.sampled_from([True, False, None])),
                     min_size=0, max_size=40))
def test_duplicate_rows_by_row_keys_equal_pandas(rows):
    """Rows keyed by a 64-bit hash, compared exactly where keys repeat: the rows
    ``DataFrame.duplicated`` finds, with missing equal to missing and -0.0 equal to 0.0."""
    import numpy as np

    from analysis.validation import _duplicated_rows, _factorised_ids

    frame = pd.DataFrame(rows, columns=["patient_id", "day", "route", "completed"])
    frame = frame.astype({"patient_id": "string", "day": "float64", "route": "string", "completed": "boolean"})
    expected = np.flatnonzero(frame.duplicated(keep="first").to_numpy())
    assert _duplicated_rows(frame).tolist() == expected.tolist()
    # with the patient ids the loader has factorised already (the patient in the key's high bits)
    assert _duplicated_rows(frame, _factorised_ids(frame)).tolist() == expected.tolist()
    ids_only = frame[["patient_id"]]
    assert _duplicated_rows(ids_only).tolist() == np.flatnonzero(ids_only.duplicated().to_numpy()).tolist()


def test_duplicate_rows_found_among_millions_of_keys():
    import numpy as np

    from analysis.validation import _duplicated_rows

    n = 200_000
    frame = pd.DataFrame({"patient_id": pd.array([f"P{i % 5000:05d}" for i in range(n)], dtype="string"),
                          "day": np.arange(n, dtype=float) % 97, "score": np.arange(n, dtype=float) % 28})
    frame = pd.concat([frame, frame.iloc[[10, 150_000, 10]]], ignore_index=True)
    assert _duplicated_rows(frame).tolist() == [n, n + 1, n + 2]
    assert _duplicated_rows(frame).tolist() == np.flatnonzero(frame.duplicated().to_numpy()).tolist()


def test_tables_read_one_at_a_time_report_in_reading_order():
    """check_dataset reads each file only when the table before it is converted; the report
    still lists the problems of reading every file first, then those of validation, as
    reading all files and validating them together does."""
    from analysis.problems import ValidationReport
    from analysis.reading import find_table_files, read_table_file
    from analysis.validation import validate_tables

    frames = {name: frame.copy() for name, frame in VALID_TABLES.items()}
    frames["patients"].loc[0, "age"] = 130  # a validation error in the first table
    frames["sessions"].loc[1, "route"] = "by rectum"  # and in the second
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_tables(Path(tmp), frames)
        with open(folder / "assessments.csv", "a", encoding="utf-8") as f:
            f.write('P01,9,"PHQ-9,10\n')  # a quote never closed: the file cannot be read
        _, report = check_dataset(folder)
        together = ValidationReport(str(folder))
        raw = {}
        for name, path in find_table_files(folder, together).items():
            table = read_table_file(name, path, together)
            if table is not None:
                raw[name] = table
        validate_tables(raw, together)
    got = report.to_frame()
    pd.testing.assert_frame_equal(got, together.to_frame())
    assert got["code"].iloc[0] == "parse" and got["table"].iloc[0] == "assessments"
    assert {"route", "age"} <= set(got["column"].dropna())


def test_instrument_names_mapped_once_per_distinct_value():
    """Names as written (any case, aliases) become canonical names; unknown ones are
    reported at each row; a column of canonical names is kept as it is."""
    from analysis.instruments import default_registry
    from analysis.problems import ValidationReport
    from analysis.validation import _to_instrument

    raw = pd.Series(["PHQ-9", "phq9", None, "Madrs", "XYZ", "PHQ-9", "xyz"], dtype="string")
    report = ValidationReport()
    got = _to_instrument("assessments", raw, raw, report, default_registry())
    assert got.tolist() == ["PHQ-9", "PHQ-9", pd.NA, "MADRS", pd.NA, "PHQ-9", pd.NA]
    assert str(got.dtype) == "string"
    unknown = [p for p in report.problems() if p.code == "unknown_instrument"]
    assert [(p.row, p.value) for p in unknown] == [(5, "XYZ"), (7, "xyz")]
    clean = pd.Series(["PHQ-9", "MADRS", "PHQ-9"], dtype="string")
    assert _to_instrument("assessments", clean, clean, ValidationReport(), default_registry()).equals(clean)
