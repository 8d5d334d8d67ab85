"""Every validation rule on a bad-input case: the message names table, line, column and value."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis import DataValidationError, check_dataset, load_dataset
from analysis.problems import ERROR, WARNING

from tests.datasets import write_tables


def problems_of(folder: Path, severity: str | None = ERROR):
    _, report = check_dataset(folder)
    return report.problems(severity)


def only(problems, **attrs):
    hits = [p for p in problems if all(getattr(p, k) == v for k, v in attrs.items())]
    assert hits, f"no problem with {attrs}; got:\n" + "\n".join(map(str, problems))
    return hits


def rewrite_csv(folder: Path, table: str, text: str) -> None:
    (folder / f"{table}.csv").write_text(text, encoding="utf-8")


def set_cell(folder: Path, tables, table: str, row: int, column: str, value) -> None:
    frame = tables[table].copy()
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    tables[table] = frame
    write_tables(folder, {table: frame})


# --- the valid dataset ------------------------------------------------------------------


def test_valid_dataset_loads_without_problems(valid_folder):
    dataset, report = check_dataset(valid_folder)
    assert report.ok and report.n_warnings == 0
    assert len(dataset.patients) == 3 and len(dataset.sessions) == 4 and len(dataset.assessments) == 5
    assert dataset.assessments["instrument"].tolist() == ["PHQ-9", "PHQ-9", "MADRS", "PHQ-9", "GAD-7"]
    # drug classes filled from the built-in map, benzodiazepine dose in diazepam-equivalents
    meds = dataset.medications
    assert meds["drug_class"].tolist() == ["benzodiazepine", "mtor_inhibitor"]
    assert meds["dose_dze_mg"].iloc[0] == pytest.approx(10.0)
    assert np.isnan(meds["dose_dze_mg"].iloc[1])


def test_csv_parquet_and_frames_give_the_same_dataset(tmp_path, valid_tables):
    csv = load_dataset(write_tables(tmp_path / "csv", valid_tables, "csv"))
    parquet = load_dataset(write_tables(tmp_path / "pq", valid_tables, "parquet"))
    frames = analysis.Dataset.from_frames(**valid_tables)
    assert csv == parquet
    assert csv == frames
    for name in ("patients", "sessions", "assessments", "medications"):
        pd.testing.assert_frame_equal(csv.tables[name], parquet.tables[name])


def test_medications_table_is_optional(valid_folder):
    (valid_folder / "medications.csv").unlink()
    dataset = load_dataset(valid_folder)
    assert len(dataset.medications) == 0
    assert {"patient_id", "drug", "start_day", "end_day", "drug_class"} <= set(dataset.medications.columns)


# --- structure ----------------------------------------------------------------------------


def test_missing_required_table(valid_folder):
    (valid_folder / "assessments.csv").unlink()
    p = only(problems_of(valid_folder), table="assessments", code="missing_table")[0]
    assert "assessments.csv" in str(p) and "required table is missing" in str(p)


def test_missing_required_column(valid_folder, valid_tables):
    write_tables(valid_folder, {"sessions": valid_tables["sessions"].drop(columns="route")})
    p = only(problems_of(valid_folder), table="sessions", column="route", code="missing_column")[0]
    assert p.line == 1 and "sessions.csv line 1, column 'route'" in str(p)


def test_sessions_need_a_dose_column(valid_folder, valid_tables):
    write_tables(valid_folder, {"sessions": valid_tables["sessions"].drop(columns=["dose_mg", "dose_mg_per_kg"])})
    only(problems_of(valid_folder), table="sessions", column="dose_mg_per_kg or dose_mg")


def test_empty_table(valid_folder):
    rewrite_csv(valid_folder, "sessions", "patient_id,day,route,dose_mg_per_kg\n")
    p = only(problems_of(valid_folder), table="sessions", code="empty")[0]
    assert "no data rows" in p.message


def test_empty_file(valid_folder):
    rewrite_csv(valid_folder, "patients", "")
    only(problems_of(valid_folder), table="patients", code="empty")


def test_invalid_utf8_names_the_line(valid_folder):
    data = (valid_folder / "patients.csv").read_bytes().replace(b"site_B", b"site_\xe9")
    (valid_folder / "patients.csv").write_bytes(data)
    p = only(problems_of(valid_folder), table="patients", code="encoding")[0]
    assert p.line == 4 and "UTF-8" in p.message and p.file == "patients.csv"


def test_ragged_line_names_the_line(valid_folder):
    text = (valid_folder / "sessions.csv").read_text()
    lines = text.splitlines()
    lines[2] += ",extra"
    rewrite_csv(valid_folder, "sessions", "\n".join(lines) + "\n")
    p = only(problems_of(valid_folder), table="sessions", code="parse")[0]
    assert p.line == 3 and "fields" in p.message


def test_unreadable_file(valid_folder):
    path = valid_folder / "patients.parquet"
    path.write_bytes(b"this is not parquet")
    (valid_folder / "patients.csv").unlink()
    p = only(problems_of(valid_folder), table="patients", code="unreadable")[0]
    assert p.file == "patients.parquet"


def test_two_files_for_one_table(valid_folder, valid_tables):
    valid_tables["patients"].to_parquet(valid_folder / "patients.parquet")
    only(problems_of(valid_folder), table="patients", code="ambiguous_table")


def test_unknown_file_is_a_warning(valid_folder):
    (valid_folder / "notes.csv").write_text("a\n1\n")
    dataset, report = check_dataset(valid_folder)
    assert dataset is not None
    only(report.problems(WARNING), file="notes.csv", code="unknown_file")


def test_missing_folder_is_an_error(tmp_path):
    only(problems_of(tmp_path / "nowhere"), code="missing_folder")


# --- types and values -----------------------------------------------------------------------


def test_wrong_type_names_line_column_and_value(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "sessions", 2, "day", "three")
    p = only(problems_of(valid_folder), table="sessions", column="day", code="type")[0]
    assert (p.line, p.value) == (4, "three")
    assert str(p).startswith("ERROR sessions.csv line 4, column 'day': value 'three': expected a study day")
    # not reported a second time as a missing value
    assert not [q for q in problems_of(valid_folder) if q.column == "day" and "missing" in q.message]


def test_missing_day(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "assessments", 1, "day", None)
    p = only(problems_of(valid_folder), table="assessments", column="day")[0]
    assert p.line == 3 and "required value is missing" in p.message


def test_unknown_route(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "sessions", 0, "route", "rectal")
    p = only(problems_of(valid_folder), table="sessions", column="route")[0]
    assert p.line == 2 and p.value == "rectal" and "iv, im, intranasal, oral, sublingual" in p.message


def test_route_aliases_are_accepted(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "sessions", 0, "route", "Intravenous")
    assert load_dataset(valid_folder).sessions["route"].iloc[0] == "iv"


def test_unknown_instrument(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "assessments", 3, "instrument", "HADS")
    p = only(problems_of(valid_folder), table="assessments", column="instrument")[0]
    assert p.line == 5 and p.value == "HADS" and "PHQ-9" in p.message


def test_instrument_names_are_normalised(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "assessments", 0, "instrument", "phq 9")
    assert load_dataset(valid_folder).assessments["instrument"].iloc[0] == "PHQ-9"


def test_score_outside_instrument_range(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "assessments", 0, "score", 28)   # PHQ-9 max 27
    set_cell(valid_folder, valid_tables, "assessments", 2, "score", 45)   # MADRS max 60: fine
    probs = only(problems_of(valid_folder), table="assessments", column="score", code="score_range")
    assert [(p.line, p.value) for p in probs] == [(2, 28.0)]
    assert "PHQ-9" in probs[0].message and "0 to 27" in probs[0].message


def test_item_score_outside_item_range(valid_folder, valid_tables):
    frame = valid_tables["assessments"].assign(item_9=[0, 4, None, 1, None])
    write_tables(valid_folder, {"assessments": frame})
    p = only(problems_of(valid_folder), table="assessments", column="item_9", code="item_range")[0]
    assert p.line == 3 and p.value == 4.0 and "0 to 3" in p.message


def test_duplicate_patient_id(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "patients", 2, "patient_id", "P01")
    probs = only(problems_of(valid_folder), table="patients", column="patient_id", code="field_uniqueness")
    assert sorted(p.line for p in probs) == [2, 4]


def test_rows_for_unknown_patients(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "assessments", 4, "patient_id", "P99")
    p = only(problems_of(valid_folder), table="assessments", code="unknown_patient")[0]
    assert (p.line, p.column, p.value) == (6, "patient_id", "P99")


def test_exact_duplicate_rows(valid_folder, valid_tables):
    frame = pd.concat([valid_tables["assessments"], valid_tables["assessments"].iloc[[1]]], ignore_index=True)
    write_tables(valid_folder, {"assessments": frame})
    p = only(problems_of(valid_folder), table="assessments", code="duplicate_row")[0]
    assert p.line == 7


def test_end_day_before_start_day(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "medications", 1, "end_day", 1)
    p = only(problems_of(valid_folder), table="medications", column="end_day", code="end_before_start")[0]
    assert p.line == 3 and p.value == 1.0


def test_implausible_dose_is_a_warning(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "sessions", 1, "dose_mg_per_kg", 5.0)
    dataset, report = check_dataset(valid_folder)
    assert dataset is not None and report.ok
    p = only(report.problems(WARNING), table="sessions", column="dose_mg_per_kg", code="implausible")[0]
    assert p.line == 3 and p.value == 5.0


def test_negative_dose_is_an_error(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "sessions", 1, "dose_mg_per_kg", -0.5)
    p = only(problems_of(valid_folder), table="sessions", column="dose_mg_per_kg")[0]
    assert p.line == 3 and ">= 0" in p.message


def test_boolean_column_rejects_other_values(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "patients", 0, "comorbid_ptsd", "maybe")
    p = only(problems_of(valid_folder), table="patients", column="comorbid_ptsd", code="type")[0]
    assert p.line == 2 and p.value == "maybe"


def test_blank_lines_keep_line_numbers_right(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "sessions", 2, "route", "rectal")
    text = (valid_folder / "sessions.csv").read_text().splitlines()
    text.insert(2, "")   # a blank line 3 pushes the bad row from line 4 to line 5
    rewrite_csv(valid_folder, "sessions", "\n".join(text) + "\n")
    p = only(problems_of(valid_folder), table="sessions", column="route")[0]
    assert p.line == 5


def test_all_problems_reported_at_once(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "sessions", 0, "route", "rectal")
    set_cell(valid_folder, valid_tables, "assessments", 0, "score", 99)
    set_cell(valid_folder, valid_tables, "patients", 1, "age", 95)
    tables = {p.table for p in problems_of(valid_folder)}
    assert tables == {"sessions", "assessments", "patients"}


def test_many_problems_are_capped_and_counted(tmp_path):
    n = 5000
    tables = {
        "patients": pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)]}),
        "sessions": pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "day": ["x"] * n,
                                  "route": ["iv"] * n, "dose_mg_per_kg": [0.5] * n}),
        "assessments": pd.DataFrame({"patient_id": ["P0"], "day": [0], "instrument": ["PHQ-9"], "score": [10]}),
    }
    folder = write_tables(tmp_path / "d", tables)
    _, report = check_dataset(folder)
    assert report.n_errors == n
    text = report.format(limit=50)
    assert f"and {n - 20} more like this" in text
    assert len(text.splitlines()) <= 52


def test_load_dataset_raises_with_the_report(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "sessions", 0, "route", "rectal")
    with pytest.raises(DataValidationError) as info:
        load_dataset(valid_folder)
    assert info.value.report.n_errors == 1
    assert "sessions.csv line 2, column 'route'" in str(info.value)


def test_in_memory_frames_are_placed_by_row(valid_tables):
    valid_tables["sessions"].loc[1, "route"] = "rectal"
    with pytest.raises(DataValidationError) as info:
        analysis.Dataset.from_frames(**valid_tables)
    p = info.value.report.problems()[0]
    assert (p.table, p.row, p.line, p.column) == ("sessions", 2, None, "route")


# --- anonymisation guard ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "column, what",
    [
        ("first_name", "name"), ("Surname", "name"), ("email", "e-mail"), ("phone_number", "phone"),
        ("home_address", "address"), ("MRN", "medical record"), ("ssn", "national identifier"),
        ("NHS number", "national identifier"), ("date_of_birth", "date of birth"), ("DOB", "date of birth"),
        ("visit_date", "calendar date"),
    ],
)
def test_identifier_columns_are_refused(valid_folder, valid_tables, column, what):
    write_tables(valid_folder, {"patients": valid_tables["patients"].assign(**{column: "x"})})
    p = only(problems_of(valid_folder), table="patients", column=column, code="identifier_column")[0]
    assert what in p.message and "pseudonyms" in p.message and p.line == 1


def test_calendar_dates_where_study_days_are_expected(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "sessions", 1, "day", "2024-03-05")
    p = only(problems_of(valid_folder), table="sessions", column="day", code="calendar_date")[0]
    assert p.line == 3 and p.value == "2024-03-05" and "study day" in p.message


def test_calendar_date_column_in_parquet(tmp_path, valid_tables):
    sessions = valid_tables["sessions"].assign(day=pd.to_datetime(["2024-01-01", "2024-01-04", "2024-01-01", "2024-01-01"]))
    folder = write_tables(tmp_path / "pq", {**valid_tables, "sessions": sessions}, "parquet")
    only(problems_of(folder), table="sessions", column="day", code="calendar_date")


def test_identifying_values_in_covariates(valid_folder, valid_tables):
    notes = ["ok", "call 555-123-4567", "jane.doe@example.org"]
    frame = valid_tables["patients"].assign(contact_note=notes, referral=["a", "b", "12/03/2023"])
    write_tables(valid_folder, {"patients": frame})
    problems = problems_of(valid_folder)
    only(problems, column="contact_note", value="jane.doe@example.org", line=4)
    only(problems, column="referral", value="12/03/2023", line=4)


def test_ages_over_89_must_be_top_coded(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "patients", 0, "age", 93)
    p = only(problems_of(valid_folder), table="patients", column="age", code="age_not_top_coded")[0]
    assert p.line == 2 and p.value == 93.0 and "top-code" in p.message


def test_age_of_90_is_accepted_as_top_coded(valid_folder):
    assert load_dataset(valid_folder).patients["age"].max() == 90


# --- custom instruments ------------------------------------------------------------------------


def test_instruments_toml_beside_the_data(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "assessments", 4, "instrument", "EPDS-test")
    (valid_folder / "instruments.toml").write_text(
        '["EPDS-test"]\nmin_score = 0\nmax_score = 30\nremission_max = 9\n'
        'severity_bands = [[0, "none"], [10, "possible"], [13, "probable"]]\n'
    )
    dataset = load_dataset(valid_folder)
    assert "EPDS-test" in dataset.instruments()
    assert analysis.get_instrument("epds test").severity(11) == "possible"
    analysis.instruments.unregister_instrument("EPDS-test")


def test_bad_instruments_toml_is_reported(valid_folder):
    (valid_folder / "instruments.toml").write_text('[X]\nmin_score = 5\nmax_score = 1\n')
    only(problems_of(valid_folder), file="instruments.toml", code="instruments")
