"""The one conversion every reader uses: SourceExtract -> validated format-v1 dataset and its log."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.io import ImportProblemsError, RowAccount, SourceExtract, to_dataset

D = pd.to_datetime


def _extract(**changes) -> SourceExtract:
    patients = pd.DataFrame({"source_key": ["S1", "S2"], "sex": ["F", "M"], "age": [47, 93],
                             "source_ref": ["dm.csv:2", "dm.csv:3"]})
    sessions = pd.DataFrame({
        "source_key": ["S1", "S1", "S2", "S2"], "date": D(["2023-03-06", "2023-03-09", "2023-05-01", "2023-05-03"]),
        "drug": ["RxNorm:6130", "Ketalar", "Spravato", "midazolam"], "route": ["SNOMED:47625008", "IV", "nasal", "IV"],
        "dose": [0.5, 500, 56, 2], "dose_unit": ["mg/kg", "mcg/kg", "mg", "mg"],
        "source_ref": ["ex.csv:2", "ex.csv:3", "ex.csv:4", "ex.csv:5"]})
    assessments = pd.DataFrame({
        "source_key": ["S1", "S1", "S1", "S2"], "date": D(["2023-03-05", "2023-03-06", "2023-03-10", "2023-04-30"]),
        "instrument": ["LOINC:44261-6", "PHQ-9", "PHQ9", "MADRS"], "score": [21, 20, 12, 30],
        "source_ref": ["qs.csv:2", "qs.csv:3", "qs.csv:4", "qs.csv:5"]})
    medications = pd.DataFrame({"source_key": ["S1"], "drug": ["RxNorm:6470"], "start_date": D(["2023-02-01"]),
                                "end_date": D(["2023-03-07"]), "source_ref": ["cm.csv:2"]})
    parts = dict(source="sdtm", patients=patients, sessions=sessions, assessments=assessments, medications=medications,
                 accounts=[RowAccount("ex.csv", ["6"], "dropped", None, "EXOCCUR is N: not given.")])
    parts.update(changes)
    return SourceExtract(**parts)


def test_dates_become_study_days_on_both_sides_of_the_first_session():
    ds = to_dataset(_extract())
    assert ds.sessions[["patient_id", "day", "route", "drug"]].values.tolist() == [
        ["S1", 0.0, "iv", "ketamine"], ["S1", 3.0, "iv", "ketamine"], ["S2", 0.0, "intranasal", "esketamine"]]
    assert ds.assessments["day"].tolist() == [-1.0, 0.0, 4.0, -1.0]
    assert ds.medications[["drug", "start_day", "end_day", "drug_class"]].values.tolist() == [
        ["lorazepam", -33.0, 1.0, "benzodiazepine"]]
    # doses with their units: mcg/kg became mg/kg
    assert ds.sessions["dose_mg_per_kg"].tolist()[:2] == [0.5, 0.5]
    assert "date" not in ds.sessions.columns and "start_date" not in ds.medications.columns


def test_day_based_extracts_are_rebased_on_the_first_session():
    sessions = pd.DataFrame({"source_key": ["S1", "S1"], "day": [-2.0, 5.0], "drug": "ketamine", "route": "iv",
                             "dose": 0.5, "dose_unit": "mg/kg", "source_ref": ["ex.xpt:1", "ex.xpt:2"]})
    assessments = pd.DataFrame({"source_key": ["S1", "S1"], "day": [-3.0, 6.0], "instrument": "PHQ-9",
                                "score": [20.0, 9.0], "source_ref": ["qs.xpt:1", "qs.xpt:2"]})
    patients = pd.DataFrame({"source_key": ["S1"], "source_ref": ["dm.xpt:1"]})
    ds = to_dataset(_extract(patients=patients, sessions=sessions, assessments=assessments,
                             medications=pd.DataFrame(), accounts=[]))
    assert ds.sessions["day"].tolist() == [0.0, 7.0]
    assert ds.assessments["day"].tolist() == [-1.0, 8.0]
    # or against a patients column holding the reference day
    patients = patients.assign(index_day=[-2.0])
    same = to_dataset(_extract(patients=patients, sessions=sessions, assessments=assessments,
                               medications=pd.DataFrame(), accounts=[]), index="index_day")
    assert same.assessments["day"].tolist() == [-1.0, 8.0]
    assert "index_day" not in same.patients.columns


def test_other_drugs_are_dropped_from_sessions_and_logged():
    ds = to_dataset(_extract())
    dropped = {(a.table, tuple(a.rows), a.reason) for a in ds.import_log.accounts if a.fate == "dropped"}
    assert dropped == {
        ("ex.csv", ("6",), "EXOCCUR is N: not given."),
        ("ex.csv", ("5",), "The drug (midazolam) is not ketamine or esketamine, so the row is not a session."),
    }
    assert ds.import_log.counts()["ex.csv"] == {"rows": 5, "used": 3, "dropped": 2}
    assert ds.import_log.counts()["qs.csv"] == {"rows": 4, "used": 4, "dropped": 0}


def test_ages_are_top_coded_and_computed_from_the_year_of_birth():
    ds = to_dataset(_extract())
    assert ds.patients["age"].tolist() == [47.0, 90.0]
    patients = pd.DataFrame({"source_key": ["S1", "S2"], "birth_year": [1950, 1925], "source_ref": ["p:1", "p:2"]})
    ds = to_dataset(_extract(patients=patients))
    assert ds.patients["age"].tolist() == [73.0, 90.0]
    assert "birth_year" not in ds.patients.columns
    assert any("year of birth" in n for n in ds.import_log.notes)


def test_mrn_like_keys_are_rekeyed():
    patients = pd.DataFrame({"source_key": ["00012345678", "S2"], "source_ref": ["p:1", "p:2"]})
    extract = _extract(patients=patients)
    extract.sessions["source_key"] = extract.sessions["source_key"].replace({"S1": "00012345678"})
    extract.assessments["source_key"] = extract.assessments["source_key"].replace({"S1": "00012345678"})
    extract.medications["source_key"] = "00012345678"
    ds = to_dataset(extract)
    assert ds.patients["patient_id"].tolist() == ["P0001", "P0002"]
    assert ds.import_log.rekeyed and "1 of 2 source keys" in ds.import_log.rekey_reason


def test_patients_without_an_index_lose_their_timed_rows_with_a_reason():
    patients = pd.DataFrame({"source_key": ["S1", "S2", "S3"], "source_ref": ["p:1", "p:2", "p:3"]})
    assessments = _extract().assessments
    assessments = pd.concat([assessments, assessments.iloc[[0]].assign(source_key="S3", source_ref="qs.csv:6")])
    ds = to_dataset(_extract(patients=patients, assessments=assessments))
    dropped = [a for a in ds.import_log.accounts if a.fate == "dropped" and a.table == "qs.csv"]
    assert [a.rows for a in dropped] == [["6"]] and "no index day" in dropped[0].reason
    assert "S3" in ds.patients["patient_id"].tolist()  # the patient stays (with a warning: no sessions)


def test_problems_name_the_source_row_and_nothing_is_written(tmp_path):
    extract = _extract()
    extract.assessments.loc[2, "score"] = 40
    extract.sessions.loc[0, "route"] = "rectal"
    with pytest.raises(ImportProblemsError) as info:
        to_dataset(extract, out=tmp_path / "out")
    text = info.value.report.format()
    assert "qs.csv line 4, column 'score': value 40.0: PHQ-9 total score outside its range; expected 0 to 27" in text
    assert "ex.csv line 2, column 'route': value 'rectal': unknown route 'rectal'" in text
    assert not (tmp_path / "out").exists()


def test_keys_of_a_database_are_named_in_problems():
    extract = _extract()
    extract.assessments["source_ref"] = [f"measurement:measurement_id={i}" for i in (11, 12, 13, 14)]
    extract.assessments.loc[3, "score"] = 99
    with pytest.raises(ImportProblemsError) as info:
        to_dataset(extract)
    problem = info.value.report.problems()[0]
    assert (problem.file, problem.line, problem.column) == ("measurement measurement_id=14", None, "score")


def test_the_log_is_written_beside_the_tables(tmp_path):
    out = tmp_path / "out"
    ds = to_dataset(_extract(), out=out, format="parquet")
    assert sorted(p.name for p in out.iterdir()) == ["assessments.parquet", "import_log.json", "import_log.md",
                                                    "medications.parquet", "patients.parquet", "sessions.parquet"]
    log = json.loads((out / "import_log.json").read_text())
    assert log["tables"] == ds.import_log.counts()
    assert log["outputs"] == {"patients": 2, "sessions": 3, "assessments": 4, "medications": 1}
    assert "first ketamine or esketamine session" in log["index_rule"]
    md = (out / "import_log.md").read_text()
    assert "| ex.csv | dropped | EXOCCUR is N: not given. | 1 | 6 |" in md


def test_a_readers_mistake_is_a_value_error():
    with pytest.raises(ValueError, match=r"SourceExtract.sessions lacks column\(s\) \['source_ref'\]"):
        to_dataset(_extract(sessions=_extract().sessions.drop(columns=["source_ref"])))
    with pytest.raises(ValueError, match="index 'consent'"):
        to_dataset(_extract(), index="consent")


def test_unknown_dose_units_are_errors_at_their_row():
    extract = _extract()
    extract.sessions.loc[1, "dose_unit"] = "drops"
    with pytest.raises(ImportProblemsError) as info:
        to_dataset(extract)
    problem = [p for p in info.value.report.problems() if p.code == "dose_unit"][0]
    assert (problem.file, problem.line, problem.value) == ("ex.csv", 3, "drops")


def test_totals_from_items_drop_each_row_that_cannot_be_scored_with_its_reason():
    items = {f"item_{i}": [1.0, 1.0, 1.0, 1.0] for i in range(1, 10)}
    assessments = pd.DataFrame({"source_key": ["S1"] * 4, "date": D(["2023-03-05", "2023-03-06", "2023-03-07", "2023-03-08"]),
                                "instrument": "PHQ-9", "score": np.nan, **items,
                                "source_ref": ["qs.csv:2", "qs.csv:3", "qs.csv:4", "qs.csv:5"]})
    assessments.loc[1, ["item_1", "item_2", "item_3"]] = np.nan  # 3 missing
    assessments.loc[3, ["item_1", "item_2", "item_3", "item_4"]] = np.nan  # 4 missing
    assessments.loc[2, "item_9"] = np.nan  # 1 missing: prorated
    ds = to_dataset(_extract(assessments=assessments))
    assert ds.assessments["day"].tolist() == [-1.0, 1.0]
    assert ds.assessments["score"].tolist() == [9.0, 9.0]
    dropped = sorted((a.rows, a.reason) for a in ds.import_log.accounts if a.table == "qs.csv" and a.fate == "dropped")
    assert dropped == [
        (["3"], "PHQ-9 total not computable: 3 of 9 items missing (at most 2 allowed, docs/import.md)."),
        (["5"], "PHQ-9 total not computable: 4 of 9 items missing (at most 2 allowed, docs/import.md)."),
    ]
