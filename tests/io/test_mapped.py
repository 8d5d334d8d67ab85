"""Mapped clinic exports: a wide export built from a format-v1 dataset imports back to its outcomes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import analysis
from analysis.cli import main
from analysis.io import ImportProblemsError, MappingError, read_mapped
from tests.io.compare import assert_same_outcomes
from tests.io.exports import CLINIC_MAPPING, mrn_of


def _files(paths):
    return [paths["patients"], paths["visits"], paths["meds"]]


def _back_map(ds, key_map: Path) -> dict[str, str]:
    """Imported pseudonym -> original patient id, through the key map and the MRNs of the export."""
    keys = pd.read_csv(key_map, dtype=str)
    original_of_mrn = {mrn: pid for pid, mrn in mrn_of(ds).items()}
    return {p: original_of_mrn[s] for s, p in zip(keys["source_key"], keys["patient_id"])}


def test_wide_clinic_export_gives_the_outcomes_of_its_dataset(source_dataset, clinic_export, tmp_path):
    got = read_mapped(_files(clinic_export), clinic_export["mapping"], keep_key_map=tmp_path / "keys.csv")
    assert_same_outcomes(source_dataset, got, _back_map(source_dataset, tmp_path / "keys.csv"))
    # brand names, spelled-out routes and calendar dates became format v1's values
    assert set(got.sessions["route"]) == {"iv", "intranasal"}
    assert set(got.sessions["drug"]) == {"ketamine", "esketamine"}
    assert set(got.medications["drug"]) == set(source_dataset.medications["drug"])
    assert got.sessions.groupby("patient_id")["day"].min().eq(0).all()


def test_every_source_row_is_accounted_for(clinic_export):
    got = read_mapped(_files(clinic_export), clinic_export["mapping"])
    log = got.import_log
    for key in ("patients", "visits", "meds"):
        path = clinic_export[key]
        n_rows = len(pd.read_csv(path))
        lines = [str(i) for i in range(2, n_rows + 2)]
        assert log.unaccounted(path.name, lines) == [], path.name
        assert log.counts()[path.name] == {"rows": n_rows, "used": n_rows, "dropped": 0}
    used_as = {(a.table, a.used_as) for a in log.accounts if a.fate == "used"}
    assert ("visits.csv", "sessions") in used_as and ("visits.csv", "assessments") in used_as


def test_rows_no_table_uses_are_dropped_with_their_reason(clinic_export, tmp_path):
    visits = pd.read_csv(clinic_export["visits"], dtype=str)
    phone_call = visits.iloc[[0]].copy()
    for col in ("phq9_total", "gad7_total", "madrs_total", "dose", "dose_unit", "medication", "route"):
        phone_call[col] = None
    phone_call["visit_type"] = "phone call"
    pd.concat([visits, phone_call]).to_csv(clinic_export["visits"], index=False)
    got = read_mapped(_files(clinic_export), clinic_export["mapping"])
    last_line = str(len(visits) + 2)
    dropped = [a for a in got.import_log.accounts if a.fate == "dropped"]
    assert len(dropped) == 1 and dropped[0].rows == [last_line] and dropped[0].table == "visits.csv"
    assert "'visit_type' is not one of ['infusion']" in dropped[0].reason
    assert "every score and item column is empty" in dropped[0].reason


def test_identifying_columns_are_dropped_by_name_and_never_copied(clinic_export, tmp_path):
    out = tmp_path / "out"
    got = read_mapped(_files(clinic_export), clinic_export["mapping"], out=out)
    assert set(got.import_log.identifiers_dropped) == {"patient_name", "dob", "clinician_phone"}
    written = "".join(p.read_text() for p in out.iterdir())
    for value in ("Test Person", "1970-01-01", "555 0134", "40012345", "2022-03"):
        assert value not in written
    log = json.loads((out / "import_log.json").read_text())
    assert log["identifiers_dropped"] == got.import_log.identifiers_dropped
    assert "patient_name" in (out / "import_log.md").read_text()


def test_mrn_keys_are_rekeyed_and_the_key_map_is_written_only_if_asked(clinic_export, tmp_path):
    got = read_mapped(_files(clinic_export), clinic_export["mapping"], out=tmp_path / "out")
    assert got.patients["patient_id"].tolist()[:3] == ["P0001", "P0002", "P0003"]
    assert got.import_log.rekeyed and got.import_log.key_map is None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "assessments.csv", "import_log.json", "import_log.md", "medications.csv", "patients.csv", "sessions.csv"]
    read_mapped(_files(clinic_export), clinic_export["mapping"], keep_key_map=tmp_path / "keys.csv")
    assert pd.read_csv(tmp_path / "keys.csv", dtype=str).shape == (30, 2)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_written_folder_loads_to_the_same_outcomes(source_dataset, clinic_export, tmp_path, fmt):
    out = tmp_path / "out"
    read_mapped(_files(clinic_export), clinic_export["mapping"], out=out, format=fmt, keep_key_map=tmp_path / "k.csv")
    assert (out / f"sessions.{fmt}").exists()
    loaded = analysis.load_dataset(out)
    assert_same_outcomes(source_dataset, loaded, _back_map(source_dataset, tmp_path / "k.csv"))


def test_excel_export_imports_like_csv(source_dataset, clinic_export, tmp_path):
    pytest.importorskip("openpyxl")
    visits = pd.read_csv(clinic_export["visits"], dtype=str)
    xlsx = clinic_export["visits"].with_suffix(".xlsx")
    visits.to_excel(xlsx, index=False)
    mapping = clinic_export["mapping"]
    mapping.write_text(mapping.read_text().replace('file = "visits.csv"', 'file = "visits.xlsx"'))
    got = read_mapped([clinic_export["patients"], xlsx, clinic_export["meds"]], mapping,
                      keep_key_map=tmp_path / "keys.csv")
    assert_same_outcomes(source_dataset, got, _back_map(source_dataset, tmp_path / "keys.csv"))
    assert got.import_log.counts()["visits.xlsx"]["rows"] == len(visits)


def test_long_shape_one_row_per_measurement(tmp_path):
    (tmp_path / "sessions.csv").write_text("id,when,dose_mg\nS1,2024-05-02,56\nS1,2024-05-06,84\n")
    (tmp_path / "scores.csv").write_text(
        "id,taken,measure,value\nS1,2024-05-01,PHQ-9 total,19\nS1,2024-05-06,PHQ9,11\nS1,2024-05-06,gad7,9\n")
    (tmp_path / "map.toml").write_text('''
[source]
key = "id"
[sessions]
file = "sessions.csv"
date = "when"
drug_value = "Spravato"
route_value = "intranasal"
dose = "dose_mg"
dose_unit_value = "mg"
[assessments]
file = "scores.csv"
date = "taken"
instrument = "measure"
score = "value"
''')
    got = read_mapped([tmp_path / "sessions.csv", tmp_path / "scores.csv"], tmp_path / "map.toml")
    assert got.assessments[["day", "instrument", "score"]].values.tolist() == [
        [-1.0, "PHQ-9", 19.0], [4.0, "PHQ-9", 11.0], [4.0, "GAD-7", 9.0]]
    assert got.sessions[["day", "route", "dose_mg", "drug"]].values.tolist() == [
        [0.0, "intranasal", 56.0, "esketamine"], [4.0, "intranasal", 84.0, "esketamine"]]


def test_dates_on_both_sides_of_the_index_and_an_index_from_the_patients_table(tmp_path):
    (tmp_path / "patients.csv").write_text("id,consent\nA,2024-01-10\n")
    (tmp_path / "visits.csv").write_text(
        "id,date,dose,phq9\nA,2024-01-09 08:30,,22\nA,2024-01-10,,21\nA,2024-01-12T10:00:00,0.5,20\nA,2024-01-13,0.5,14\n")
    mapping = '''
[source]
key = "id"
index = "index_date"
[patients]
file = "patients.csv"
index_date = "consent"
[sessions]
file = "visits.csv"
date = "date"
require = "dose"
route_value = "iv"
dose = "dose"
dose_unit_value = "mg/kg"
[assessments]
file = "visits.csv"
date = "date"
wide = { "PHQ-9" = "phq9" }
'''
    (tmp_path / "map.toml").write_text(mapping)
    files = [tmp_path / "patients.csv", tmp_path / "visits.csv"]
    by_consent = read_mapped(files, tmp_path / "map.toml")
    assert by_consent.assessments["day"].tolist() == [-1.0, 0.0, 2.0, 3.0]
    assert by_consent.sessions["day"].tolist() == [2.0, 3.0]
    assert "consent" not in by_consent.patients.columns and "index_date" not in by_consent.patients.columns
    assert "'index_date'" in by_consent.import_log.index_rule
    (tmp_path / "map.toml").write_text(mapping.replace('index = "index_date"', 'index = "first_session"'))
    by_session = read_mapped(files, tmp_path / "map.toml")
    assert by_session.assessments["day"].tolist() == [-3.0, -2.0, 0.0, 1.0]
    assert "first ketamine or esketamine session" in by_session.import_log.index_rule


def test_a_corrupted_export_exits_1_naming_file_line_column_and_value(clinic_export, tmp_path, capsys):
    visits = pd.read_csv(clinic_export["visits"], dtype=str)
    infusion = visits.index[visits["visit_type"] == "infusion"]
    scored = visits.index[visits["phq9_total"].notna()]
    visits.loc[infusion[0], "dose"] = "half"
    visits.loc[infusion[1], "route"] = "rectal"
    visits.loc[scored[2], "phq9_total"] = "31"
    visits.loc[scored[3], "visit_date"] = "2022-13-45"
    visits.to_csv(clinic_export["visits"], index=False)
    out = tmp_path / "out"
    code = main(["import", "mapped", *map(str, _files(clinic_export)), "--mapping", str(clinic_export["mapping"]),
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    line = lambda i: int(i) + 2  # noqa: E731  (header is line 1)
    assert f"visits.csv line {line(infusion[0])}, column 'dose': value 'half': expected a dose" in err
    assert f"visits.csv line {line(infusion[1])}, column 'route': value 'rectal': unknown route 'rectal'" in err
    assert '[vocabulary.route] "rectal" = ' in err
    assert (f"visits.csv line {line(scored[2])}, column 'phq9_total': value 31.0: PHQ-9 total score outside its "
            "range; expected 0 to 27") in err
    assert f"visits.csv line {line(scored[3])}, column 'visit_date': value '2022-13-45': not a date" in err
    assert not out.exists()


def test_the_import_command_writes_the_folder_and_exits_0(clinic_export, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["import", "mapped", *map(str, _files(clinic_export)), "--mapping", str(clinic_export["mapping"]),
                 "--out", str(out), "--format", "parquet", "--keep-key-map", str(tmp_path / "keys.csv")])
    assert code == 0
    assert "written (30 patients, 231 sessions, 742 assessments, 8 medications" in capsys.readouterr().out
    assert (out / "sessions.parquet").exists() and (tmp_path / "keys.csv").exists()
    assert main(["validate", str(out)]) == 0


def test_mapping_errors_name_the_file_key_and_value(clinic_export, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(CLINIC_MAPPING.replace('dose_unit = "dose_unit"', 'dose_unit = "dose_units"'))
    with pytest.raises(MappingError, match=r"bad.toml: key 'sessions.dose_unit': value 'dose_units': no such column"):
        read_mapped(_files(clinic_export), bad)
    bad.write_text(CLINIC_MAPPING.replace("[sessions]", "[sessions]\nroute_values = 'iv'"))
    with pytest.raises(MappingError, match=r"bad.toml: key 'sessions.route_values': value 'iv': Extra inputs"):
        read_mapped(_files(clinic_export), bad)
    code = main(["import", "mapped", *map(str, _files(clinic_export)), "--mapping", str(bad), "--out", str(tmp_path / "o")])
    assert code == 2 and "route_values" in capsys.readouterr().err


def test_unknown_medication_names_are_kept_with_a_warning(clinic_export):
    meds = pd.read_csv(clinic_export["meds"], dtype=str)
    meds.loc[0, "drug_name"] = "Zyprexa"
    meds.to_csv(clinic_export["meds"], index=False)
    got = read_mapped(_files(clinic_export), clinic_export["mapping"])
    assert "zyprexa" in set(got.medications["drug"])
    notes = [v for v in got.import_log.vocabulary if v.how == "unknown"]
    assert [(n.kind, n.value, n.count, n.rows) for n in notes] == [("drug", "Zyprexa", 1, ["meds.csv:2"])]
    warned = [p for p in got.report.problems() if p.code == "vocabulary_unknown"]
    assert warned and warned[0].severity == "warning" and warned[0].line == 2


def test_import_problems_error_carries_the_log(clinic_export):
    visits = pd.read_csv(clinic_export["visits"], dtype=str)
    visits.loc[visits["visit_type"] == "infusion", "dose_unit"] = "drops"
    visits.to_csv(clinic_export["visits"], index=False)
    with pytest.raises(ImportProblemsError) as info:
        read_mapped(_files(clinic_export), clinic_export["mapping"])
    assert info.value.import_log.source == "mapped"
    assert info.value.report.n_errors == 231


def test_a_missing_input_file_is_a_usage_error(clinic_export, tmp_path, capsys):
    code = main(["import", "mapped", str(tmp_path / "nope.csv"), "--mapping", str(clinic_export["mapping"]),
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "no such file" in capsys.readouterr().err


def test_free_text_copied_columns_are_refused_unless_allowed(clinic_export, tmp_path, capsys):
    visits = pd.read_csv(clinic_export["visits"], dtype=str)
    visits["note"] = [f"patient tolerated the infusion well and talked about week {i} at length" for i in range(len(visits))]
    visits.to_csv(clinic_export["visits"], index=False)
    mapping = clinic_export["mapping"]
    mapping.write_text(mapping.read_text().replace('phase = "phase" }', 'phase = "phase", note = "note" }'))
    args = ["import", "mapped", *map(str, _files(clinic_export)), "--mapping", str(mapping), "--out", str(tmp_path / "o")]
    assert main(args) == 1
    assert "visits.csv, column 'note': column holds free text" in capsys.readouterr().err
    assert main([*args, "--allow-free-text", "note"]) == 0


def test_a_when_column_that_is_not_there_is_a_mapping_error(clinic_export):
    mapping = clinic_export["mapping"]
    mapping.write_text(mapping.read_text().replace("when = { visit_type", "when = { visit_kind"))
    with pytest.raises(MappingError, match=r"key 'sessions.when': value 'visit_kind': no such column in the source"):
        read_mapped(_files(clinic_export), mapping)


def test_a_redcap_mapping_given_to_the_mapped_import_is_refused(clinic_export):
    mapping = clinic_export["mapping"]
    mapping.write_text(mapping.read_text().replace('[sessions]\nfile = "visits.csv"', '[sessions]\nform = "infusion"'))
    with pytest.raises(MappingError, match="key 'sessions.form': value 'infusion': form and event are for REDCap"):
        read_mapped(_files(clinic_export), mapping)
