"""Near misses in validate: the message suggests the mapping line or the import command."""

from __future__ import annotations

from analysis.cli import main


def _write(folder, patients, sessions, assessments):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "patients.csv").write_text(patients)
    (folder / "sessions.csv").write_text(sessions)
    (folder / "assessments.csv").write_text(assessments)
    return folder


def test_an_export_key_wide_totals_and_dates_in_day_get_hints(tmp_path, capsys):
    folder = _write(tmp_path / "export", "record_id,site\n1,A\n",
                    "record_id,day,route,dose_mg_per_kg\n1,2024-03-01,iv,0.5\n",
                    "record_id,visit_date,phq9_total\n1,2024-03-01,12\n")
    assert main(["validate", str(folder)]) == 1
    err = capsys.readouterr().err
    assert ("WARNING patients.csv line 1, column 'record_id': hint: 'record_id' looks like the patient key: rename it "
            "to patient_id, or import the export with `ketamine-outcomes import mapped FILE... --mapping MAP.toml` "
            "and, in the mapping file, `[source] key = \"record_id\"`") in err
    assert "column 'phq9_total': hint: 'phq9_total' looks like a wide column of PHQ-9 totals" in err
    assert '`[assessments] wide = { "PHQ-9" = "phq9_total" }`' in err
    assert "column 'day': hint: 'day' holds calendar dates, not study days" in err
    assert '`[sessions] date = "day"`' in err
    assert '`[assessments] date = "visit_date"`' in err


def test_a_redcap_export_is_pointed_to_the_redcap_import(tmp_path, capsys):
    folder = _write(tmp_path / "redcap", "record_id,redcap_event_name\n1,baseline_arm_1\n",
                    "patient_id,day,route,dose_mg\n1,0,iv,30\n", "patient_id,day,instrument,score\n1,0,PHQ-9,4\n")
    assert main(["validate", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "`ketamine-outcomes import redcap RECORDS.csv --dictionary DICTIONARY.csv --mapping MAP.toml`" in err


def test_format_v1_data_get_no_hint(valid_folder, capsys):
    assert main(["validate", str(valid_folder)]) == 0
    assert "hint" not in capsys.readouterr().out
