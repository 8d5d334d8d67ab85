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
    # the guard shows identifying values masked (docs/anonymisation.md): their places are named
    only(problems, column="contact_note", line=4, code="identifier_value")
    only(problems, column="referral", line=4, code="identifier_value")


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
    assert dataset.instrument_registry.get("epds test").severity(11) == "possible"
    assert "EPDS-test" not in analysis.instrument_names()  # the dataset's own, not the process's


def test_bad_instruments_toml_is_reported(valid_folder):
    (valid_folder / "instruments.toml").write_text('[X]\nmin_score = 5\nmax_score = 1\n')
    only(problems_of(valid_folder), file="instruments.toml", code="instruments")


# --- CSV edge cases: line numbers are the file's physical lines ------------------------------

SESSIONS_HEAD = "patient_id,day,route,dose_mg_per_kg,kit\n"  # kit: a further text column


def test_quoted_line_break_keeps_physical_line_numbers(valid_folder):
    # the record on lines 2-3 holds a quoted line break; the bad route is on physical line 5
    rewrite_csv(valid_folder, "sessions", SESSIONS_HEAD + 'P01,0,iv,0.5,"first\nsecond"\nP01,3,iv,0.6,ok\n'
                'P02,0,rectal,0.5,ok\nP03,0.5,iv,0.5,ok\n')
    p = only(problems_of(valid_folder), table="sessions", column="route")[0]
    assert (p.line, p.value) == (5, "rectal")


def test_quoted_line_break_at_the_readers_block_boundary(valid_folder):
    # pyarrow reads in blocks of 1 MiB: a quoted line break just after the boundary used to
    # give its raw "CSV parser got out of sync with chunker" or a wrong field count
    rows, size, i = [], len(SESSIONS_HEAD), 0
    while size < (1 << 20) - 20:
        row = f"P01,{i / 1000:.3f},iv,0.5,ok\n"
        rows.append(row)
        size += len(row)
        i += 1
    text = SESSIONS_HEAD + "".join(rows) + 'P01,999.5,iv,0.5,"' + "x" * 30 + '\nmore"\nP02,0,rectal,0.5,ok\nP03,0.5,iv,0.5,ok\n'
    rewrite_csv(valid_folder, "sessions", text)
    problems = problems_of(valid_folder)
    p = only(problems, table="sessions", column="route")[0]
    assert (p.line, p.value) == (len(rows) + 4, "rectal")
    assert len(problems) == 1


def test_field_over_one_megabyte_is_read(valid_folder):
    big = "x\n" * 600_000  # 1.2 MB with line breaks, quoted (free text, as the guard sees it: allowed here)
    rewrite_csv(valid_folder, "sessions", SESSIONS_HEAD + f'P01,0,iv,0.5,"{big}"\nP01,3,iv,0.6,ok\n'
                'P02,0,rectal,0.5,ok\nP03,0.5,iv,0.5,ok\n')
    problems = check_dataset(valid_folder, allow_free_text=["kit"])[1].problems(ERROR)
    p = only(problems, table="sessions", column="route")[0]
    assert (p.line, p.value) == (600_000 + 4, "rectal")
    assert len(problems) == 1


def test_stray_quote_is_reported_at_its_line(valid_folder):
    rows = "".join(f"P01,{i + 10},iv,0.5,ok\n" for i in range(600))
    rewrite_csv(valid_folder, "sessions", SESSIONS_HEAD + "P01,0,iv,0.5,ok\nP01,3,iv,0.5,\"oops\n" + rows)
    problems = problems_of(valid_folder)
    p = only(problems, table="sessions", code="parse")[0]
    assert p.line == 3 and "quote" in p.message
    assert len(problems) == 1  # and the 600 rows after it are not silently swallowed into one value


def test_every_ragged_line_is_reported(valid_folder):
    rewrite_csv(valid_folder, "sessions", SESSIONS_HEAD + 'P01,0,iv,0.5,"a\nb"\nP01,3,iv,0.5,ok,extra\n'
                "P02,0,iv\nP03,0.5,iv,0.5,ok\n")
    probs = only(problems_of(valid_folder), table="sessions", code="parse")
    assert sorted((p.line, p.message.split(" as")[0]) for p in probs) == [
        (4, "line has 6 fields, expected 5"), (5, "line has 3 fields, expected 5")]


def test_windows_and_old_mac_line_endings_keep_line_numbers(valid_folder):
    for newline in ("\r\n", "\r"):
        text = SESSIONS_HEAD + 'P01,0,iv,0.5,"a\nb"\nP01,3,iv,0.6,ok\nP02,0,rectal,0.5,ok\nP03,0.5,iv,0.5,ok\n'
        rewrite_csv(valid_folder, "sessions", text.replace("\n", newline))
        p = only(problems_of(valid_folder), table="sessions", column="route")[0]
        assert (p.line, p.value) == (5, "rectal"), newline


def test_a_folder_named_like_a_table_is_refused_as_such(valid_folder):
    (valid_folder / "sessions.csv").unlink()
    (valid_folder / "sessions.csv").mkdir()
    p = only(problems_of(valid_folder), table="sessions", code="special_file")[0]
    assert "is a folder, not a file" in p.message and p.file == "sessions.csv"
    assert not [q for q in problems_of(valid_folder) if q.code == "missing_table"]


def _with_timeout(func, seconds=20):
    import threading

    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", func()), daemon=True)
    thread.start()
    thread.join(seconds)
    return thread.is_alive(), result.get("value")


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="named pipes need POSIX")
@pytest.mark.parametrize("name", ["sessions.csv", "patients.parquet", "instruments.toml"])
def test_a_named_pipe_is_refused_without_hanging(valid_folder, name):
    import os

    if name.endswith(".parquet"):
        (valid_folder / "patients.csv").unlink()
    elif name.endswith(".csv"):
        (valid_folder / name).unlink()
    os.mkfifo(valid_folder / name)
    try:
        hung, report = _with_timeout(lambda: check_dataset(valid_folder)[1])
    finally:
        try:  # release a reader that is stuck on the pipe, if any
            os.close(os.open(valid_folder / name, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    assert not hung, "check_dataset hung on a named pipe"
    p = only(report.problems(), code="special_file")[0]
    assert "named pipe" in p.message and p.file == name


# --- text is normalised: invisible characters never split a patient or a site ----------------


@pytest.mark.parametrize("raw, what", [
    ("P01\u200b", "invisible"),   # zero-width space
    ("\ufeffP01", "invisible"),   # byte-order mark
    ("P0\x001", "invisible"),     # NUL
    ("P01\u00a0", "whitespace"),  # no-break space
])
def test_invisible_characters_in_ids_are_removed_with_a_warning(valid_folder, valid_tables, raw, what):
    set_cell(valid_folder, valid_tables, "sessions", 1, "patient_id", raw)
    dataset, report = check_dataset(valid_folder)
    assert report.ok, report.format()
    assert dataset.sessions["patient_id"].tolist() == ["P01", "P01", "P02", "P03"]
    assert sorted(dataset.patients["patient_id"]) == ["P01", "P02", "P03"]
    p = only(report.problems(WARNING), table="sessions", column="patient_id", code="normalised")[0]
    assert (p.line, p.value) == (3, raw) and what in p.message
    assert repr(raw)[1:-1] in str(p)  # the value is shown escaped, so the invisible character can be seen


def test_decomposed_unicode_is_composed(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "patients", 0, "site", "Mont-re\u0301al")   # e + combining acute
    set_cell(valid_folder, valid_tables, "patients", 1, "site", "Mont-r\u00e9al")    # precomposed é
    dataset, report = check_dataset(valid_folder)
    assert dataset.patients["site"].tolist()[:2] == ["Mont-r\u00e9al", "Mont-r\u00e9al"]
    p = only(report.problems(WARNING), table="patients", column="site", code="normalised")[0]
    assert p.line == 2 and "NFC" in p.message and "\\u0301" in str(p)


def test_nul_in_a_site_does_not_create_a_phantom_site(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "patients", 1, "site", "site_A\x00")
    dataset, report = check_dataset(valid_folder)
    assert dataset.patients["site"].value_counts().to_dict() == {"site_A": 2, "site_B": 1}
    p = only(report.problems(WARNING), table="patients", column="site", code="normalised")[0]
    assert p.line == 3 and "\\x00" in str(p)


@pytest.mark.parametrize("table, row, column, raw, clean", [
    ("sessions", 0, "route", "iv\u200b", "iv"),
    ("sessions", 0, "phase", "\ufeffinduction", "induction"),
    ("assessments", 0, "instrument", "PHQ-9\u2060", "PHQ-9"),   # word joiner
    ("medications", 1, "drug", "rapa\u00admycin", "rapamycin"),  # soft hyphen
    ("patients", 0, "sex", "female\x00", "female"),
    ("sessions", 1, "day", "3\u200b", 3.0),
])
def test_every_text_column_is_normalised_the_same_way(valid_folder, valid_tables, table, row, column, raw, clean):
    set_cell(valid_folder, valid_tables, table, row, column, raw)
    dataset, report = check_dataset(valid_folder)
    assert report.ok, report.format()
    assert dataset.tables[table][column].iloc[row] == clean
    only(report.problems(WARNING), table=table, column=column, code="normalised", line=row + 2)


def test_line_break_inside_an_identifier_is_an_error(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "patients", 2, "patient_id", "P03\nP04")
    p = only(problems_of(valid_folder), table="patients", column="patient_id", code="control_character")[0]
    assert p.line == 4 and "\\n" in str(p)


# --- study days: plausible, and never calendar dates written as numbers ----------------------


@pytest.mark.parametrize("value", [1e15, 1e300, -7306, 7305.5])
def test_implausible_study_day_is_an_error(valid_folder, valid_tables, value):
    set_cell(valid_folder, valid_tables, "sessions", 1, "day", value)
    p = only(problems_of(valid_folder), table="sessions", column="day", code="implausible_day")[0]
    assert (p.line, p.value) == (3, value)
    assert "7305 days" in p.message and "20 years" in p.message


def test_study_days_at_the_limit_are_accepted(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "medications", 0, "start_day", -7305)
    set_cell(valid_folder, valid_tables, "sessions", 1, "day", 7305)
    assert check_dataset(valid_folder)[1].ok


@pytest.mark.parametrize("table, row, column", [
    ("sessions", 1, "day"), ("assessments", 0, "day"), ("medications", 0, "start_day"), ("medications", 1, "end_day"),
])
def test_yyyymmdd_dates_in_day_columns_are_refused(valid_folder, valid_tables, table, row, column):
    set_cell(valid_folder, valid_tables, table, row, column, 20230105)
    probs = [p for p in problems_of(valid_folder) if p.column == column]
    p = only(probs, table=table, code="calendar_date")[0]
    assert (p.line, p.value) == (row + 2, 20230105.0)
    assert "yyyymmdd" in p.message and "ketamine-outcomes import mapped" in p.message
    assert "date - first session date" in p.message
    assert not [q for q in probs if q.code == "implausible_day"]  # one specific message, not two


def test_an_impossible_yyyymmdd_is_only_implausible(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "sessions", 1, "day", 20231345)   # month 13
    p = only(problems_of(valid_folder), table="sessions", column="day")[0]
    assert p.code == "implausible_day"


def test_excel_serial_dates_in_day_columns_are_refused(valid_folder, valid_tables):
    # 44931 is 2023-01-05 as an Excel serial; every session day of P01 is one
    set_cell(valid_folder, valid_tables, "sessions", 0, "day", 44931)
    set_cell(valid_folder, valid_tables, "sessions", 1, "day", 44934)
    set_cell(valid_folder, valid_tables, "sessions", 3, "day", 40000)      # P03: its only day
    probs = only(problems_of(valid_folder), table="sessions", column="day", code="calendar_date")
    assert [(p.line, p.value) for p in probs] == [(2, 44931.0), (3, 44934.0), (5, 40000.0)]
    assert "Excel" in probs[0].message and "ketamine-outcomes import mapped" in probs[0].message


def test_a_large_day_beside_ordinary_days_is_implausible_not_excel(valid_folder, valid_tables):
    set_cell(valid_folder, valid_tables, "sessions", 1, "day", 40000)   # P01 also has day 0
    p = only(problems_of(valid_folder), table="sessions", column="day")[0]
    assert p.code == "implausible_day" and p.line == 3


def test_all_session_days_as_excel_serials_fail_validate(tmp_path, capsys):
    from analysis.cli import main

    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    folder = tmp_path / "excel"
    shutil.copytree(sample, folder)
    sessions = pd.read_csv(folder / "sessions.csv")
    sessions["day"] = sessions["day"] + 44931
    sessions.to_csv(folder / "sessions.csv", index=False)
    assert main(["validate", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "ERROR sessions.csv line 2, column 'day': value 44931.0: looks like an Excel date serial" in err
    assert "and 4740 more like this" in err  # every one of the 4760 session days


# --- parameters passed through ------------------------------------------------------------------


def test_allow_free_text_is_passed_to_the_anonymisation_guard(valid_folder, valid_tables, monkeypatch):
    from analysis import anonymisation

    seen = []
    original = anonymisation.check_identifying_values

    def spy(table, frame, text_columns, report, *, factorised=None, **kwargs):
        # the loader hands over the patient ids it has factorised (the same as the guard's own)
        if factorised is not None:
            codes, uniques = factorised["patient_id"]
            assert pd.Index(uniques).take(codes).tolist() == frame["patient_id"].tolist()
        seen.append((table, kwargs))

    monkeypatch.setattr(anonymisation, "check_identifying_values", spy)
    check_dataset(valid_folder)
    assert seen and all(kwargs == {} for _, kwargs in seen)
    seen.clear()
    analysis.validate(valid_folder, allow_free_text=["referral"])
    assert seen and all(kwargs == {"allow_free_text": ("referral",)} for _, kwargs in seen)
    seen.clear()
    load_dataset(valid_folder, allow_free_text=("referral",))
    analysis.Dataset.from_frames(**valid_tables, allow_free_text=["referral"])
    assert len(seen) == 8 and all(kwargs == {"allow_free_text": ("referral",)} for _, kwargs in seen)
    assert original is not spy


def test_medications_without_optional_columns_get_them_empty(valid_folder, valid_tables):
    write_tables(valid_folder, {"medications": valid_tables["medications"][["patient_id", "drug", "start_day"]]})
    meds = load_dataset(valid_folder).medications
    assert list(meds.columns[:7]) == ["patient_id", "drug", "start_day", "end_day", "drug_class", "dose_mg", "timing"]
    assert meds["end_day"].isna().all() and meds["drug_class"].tolist() == ["benzodiazepine", "mtor_inhibitor"]
    out = analysis.derive_outcomes(load_dataset(valid_folder))  # an absent end_day: every period ongoing
    assert out.sessions["drug_lorazepam"].tolist() == [True, True, False, False]


@pytest.mark.parametrize("raw", ["\ufeff", "\u200b\u200b", "   ", "\x00"])
def test_a_value_that_is_only_invisible_characters_is_missing(valid_folder, valid_tables, raw):
    set_cell(valid_folder, valid_tables, "sessions", 0, "patient_id", raw)
    p = only(problems_of(valid_folder), table="sessions", column="patient_id")[0]
    assert p.line == 2 and "required value is missing" in p.message
