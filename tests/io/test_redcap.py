"""REDCap: a longitudinal project export built from a format-v1 dataset imports back to its outcomes."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.cli import main
from analysis.io import ImportProblemsError, read_redcap
from analysis.io.redcap import parse_choices, read_dictionary
from tests.io.compare import assert_same_outcomes


def _read(paths, **kwargs):
    return read_redcap(paths["records"], dictionary=paths["dictionary"], mapping=paths["mapping"], **kwargs)


def _record_map(ds) -> dict[str, str]:
    return {str(1001 + i): pid for i, pid in enumerate(ds.patients["patient_id"])}


def _records(paths) -> pd.DataFrame:
    return pd.read_csv(paths["records"], dtype=str, keep_default_na=False).replace({"": None})


def test_redcap_export_gives_the_outcomes_of_its_dataset(source_dataset, redcap_export):
    got = _read(redcap_export)
    assert_same_outcomes(source_dataset, got, _record_map(source_dataset))
    # PHQ-9 totals were computed from the nine items; the items are kept
    phq = got.assessments[got.assessments["instrument"] == "PHQ-9"]
    assert phq[[f"item_{i}" for i in range(1, 10)]].sum(axis=1).tolist() == phq["score"].tolist()
    # coded choices decoded through the dictionary, the route from its checkbox
    assert set(got.patients["site"]) <= {"site_A", "site_B", "site_C"}
    assert set(got.sessions["route"]) == {"iv", "intranasal"}
    assert set(got.sessions["phase"]) <= {"induction", "maintenance", "booster"}
    assert not got.import_log.rekeyed  # record ids 1001... are not record numbers


def test_every_records_row_is_accounted_for(redcap_export):
    got = _read(redcap_export)
    n_rows = len(_records(redcap_export))
    assert got.import_log.unaccounted("records.csv", [str(i) for i in range(2, n_rows + 2)]) == []
    assert got.import_log.counts() == {"records.csv": {"rows": n_rows, "used": n_rows, "dropped": 0}}


def test_identifier_fields_are_dropped_and_never_copied(redcap_export, tmp_path):
    out = tmp_path / "out"
    got = _read(redcap_export, out=out)
    assert got.import_log.identifiers_dropped == ["dob", "email", "first_name", "last_name"]
    written = "".join(p.read_text() for p in out.iterdir() if p.suffix == ".csv")
    for value in ("Alex", "Sample", "alex@example.org", "1971-05-02", "2021-"):
        assert value not in written


def test_rows_of_no_table_are_logged_with_their_reason(redcap_export):
    records = _records(redcap_export)
    empty = records.iloc[[0]].copy()  # an empty follow-up event row, as REDCap exports them
    for col in records.columns:
        if col != "record_id":
            empty[col] = None
    empty["redcap_event_name"] = "followup_arm_1"
    pd.concat([records, empty]).to_csv(redcap_export["records"], index=False)
    got = _read(redcap_export)
    dropped = [a for a in got.import_log.accounts if a.fate == "dropped"]
    assert [a.rows for a in dropped] == [[str(len(records) + 2)]]
    assert "not a patients row: redcap_event_name is not one of ['screening_arm_1']" in dropped[0].reason
    assert "not a sessions row: redcap_repeat_instrument is not 'infusion'" in dropped[0].reason


def test_items_with_missing_answers_follow_the_instrument_rule(redcap_export):
    records = _records(redcap_export)
    phq = records.index[records["redcap_repeat_instrument"] == "phq9"]
    records.loc[phq[0], "phq9_9"] = None  # one missing: prorated
    records.loc[phq[1], ["phq9_1", "phq9_2", "phq9_3"]] = None  # three missing: no total
    records.to_csv(redcap_export["records"], index=False)
    got = _read(redcap_export)
    prorated = [p for p in got.report.problems() if p.code == "prorated"]
    assert [(p.file, p.line) for p in prorated] == [("records.csv", int(phq[0]) + 2)]
    answered = pd.to_numeric(records.loc[phq[0], [f"phq9_{i}" for i in range(1, 9)]])
    assert prorated[0].value == pytest.approx(answered.mean() * 9)
    dropped = [a for a in got.import_log.accounts if a.fate == "dropped"]
    assert [(a.rows, a.reason) for a in dropped] == [
        ([str(int(phq[1]) + 2)], "PHQ-9 total not computable: 3 of 9 items missing (at most 2 allowed, docs/import.md).")]


def test_a_corrupted_export_exits_1_naming_file_line_field_and_value(redcap_export, tmp_path, capsys):
    records = _records(redcap_export)
    inf = records.index[records["redcap_repeat_instrument"] == "infusion"]
    records.loc[inf[0], "inf_drug"] = "7"  # not a code of the dropdown
    records.loc[inf[1], "inf_route___3"] = "1"  # a second route ticked
    records.loc[inf[2], "inf_date"] = "03/09/2021"  # not ISO
    records.to_csv(redcap_export["records"], index=False)
    code = main(["import", "redcap", str(redcap_export["records"]), "--dictionary", str(redcap_export["dictionary"]),
                 "--mapping", str(redcap_export["mapping"]), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert (f"records.csv line {int(inf[0]) + 2}, column 'inf_drug': value '7': not a code of this dropdown field; "
            "expected one of the data dictionary's codes 1, 2") in err
    assert f"records.csv line {int(inf[1]) + 2}, column 'inf_route': value 'IV infusion | IM injection': unknown route" in err
    assert f"records.csv line {int(inf[2]) + 2}, column 'inf_date': value '03/09/2021': not a date" in err
    assert not (tmp_path / "out").exists()


def test_the_import_command_exits_0(redcap_export, tmp_path, capsys):
    code = main(["import", "redcap", str(redcap_export["records"]), "--dictionary", str(redcap_export["dictionary"]),
                 "--mapping", str(redcap_export["mapping"]), "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "import_log.md").exists()


def test_a_checkbox_of_medications_gives_one_row_per_box(tmp_path):
    (tmp_path / "records.csv").write_text(
        "record_id,redcap_repeat_instrument,redcap_repeat_instance,inf_date,phq9_total,benzo___1,benzo___2,benzo___3,"
        "benzo_since\n"
        "7,infusion,1,2024-02-01,18,,,,\n"
        "7,infusion,2,2024-02-03,9,,,,\n"
        "7,,,,,1,0,1,-30\n")
    (tmp_path / "dictionary.csv").write_text(
        '"Variable / Field Name","Form Name","Field Type","Choices, Calculations, OR Slider Labels"\n'
        "record_id,baseline,text,\ninf_date,infusion,text,\nphq9_total,infusion,calc,\n"
        'benzo,baseline,checkbox,"1, Ativan | 2, Xanax | 3, Klonopin"\nbenzo_since,baseline,text,\n')
    mapping = '''
[source]
key = "record_id"
[sessions]
form = "infusion"
date = "inf_date"
route_value = "iv"
[assessments]
form = "infusion"
date = "inf_date"
wide = { "PHQ-9" = "phq9_total" }
[medications]
form = "baseline"
drug = "benzo"
start_day = "benzo_start"
'''
    (tmp_path / "map.toml").write_text(mapping)
    files = dict(dictionary=tmp_path / "dictionary.csv", mapping=tmp_path / "map.toml")
    with pytest.raises(Exception, match="field 'benzo_start' is not in the data dictionary"):
        read_redcap(tmp_path / "records.csv", **files)
    (tmp_path / "map.toml").write_text(mapping.replace('"benzo_start"', '"benzo_since"'))
    got = read_redcap(tmp_path / "records.csv", **files)
    assert got.medications[["drug", "start_day", "drug_class"]].values.tolist() == [
        ["lorazepam", -30.0, "benzodiazepine"], ["clonazepam", -30.0, "benzodiazepine"]]
    assert got.import_log.counts() == {"records.csv": {"rows": 3, "used": 3, "dropped": 0}}


def test_parse_choices_and_dictionary():
    assert parse_choices("0, Not at all | 3, Nearly every day") == {"0": "Not at all", "3": "Nearly every day"}
    assert parse_choices("") == {}


def test_dictionary_without_its_columns_is_refused(tmp_path):
    (tmp_path / "d.csv").write_text("name,type\nrecord_id,text\n")
    with pytest.raises(Exception, match=r"d.csv: not a REDCap data dictionary: column\(s\) \['variable / field name'"):
        read_dictionary(tmp_path / "d.csv")


def test_a_form_the_dictionary_does_not_have_is_a_mapping_error(redcap_export, tmp_path, capsys):
    mapping = redcap_export["mapping"]
    mapping.write_text(mapping.read_text().replace('form = "infusion"', 'form = "infusions"'))
    code = main(["import", "redcap", str(redcap_export["records"]), "--dictionary", str(redcap_export["dictionary"]),
                 "--mapping", str(mapping), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "map.toml: key 'sessions.form': value 'infusions': not a form of the data dictionary" in err


def test_events_with_a_non_repeating_form_each(tmp_path):
    """The other common design: one event per infusion, each with the same non-repeating forms."""
    (tmp_path / "records.csv").write_text(
        "record_id,redcap_event_name,redcap_repeat_instrument,redcap_repeat_instance,sex,inf_date,inf_route,"
        "phq9_date,phq9_total\n"
        "A-01,baseline_arm_1,,,2,,,2023-10-02,24\n"
        "A-01,infusion_1_arm_1,,,,2023-10-03,1,2023-10-03,23\n"
        "A-01,infusion_2_arm_1,,,,2023-10-05,1,2023-10-05,16\n"
        "A-01,infusion_3_arm_1,,,,,,,\n")
    (tmp_path / "dictionary.csv").write_text(
        '"Variable / Field Name","Form Name","Field Type","Choices, Calculations, OR Slider Labels","Identifier?"\n'
        'record_id,demographics,text,,\nsex,demographics,radio,"1, Female | 2, Male",\n'
        'inf_date,infusion,text,,\ninf_route,infusion,dropdown,"1, IV | 2, IM",\n'
        "phq9_date,phq9,text,,\nphq9_total,phq9,calc,,\n")
    (tmp_path / "map.toml").write_text('''
[source]
key = "record_id"
[patients]
form = "demographics"
event = "baseline_arm_1"
sex = "sex"
[sessions]
form = "infusion"
date = "inf_date"
route = "inf_route"
[assessments]
form = "phq9"
date = "phq9_date"
wide = { "PHQ-9" = "phq9_total" }
''')
    got = read_redcap(tmp_path / "records.csv", dictionary=tmp_path / "dictionary.csv", mapping=tmp_path / "map.toml")
    assert got.patients[["patient_id", "sex"]].values.tolist() == [["A-01", "male"]]
    assert got.sessions[["day", "route"]].values.tolist() == [[0.0, "iv"], [2.0, "iv"]]
    assert got.assessments[["day", "score"]].values.tolist() == [[-1.0, 24.0], [0.0, 23.0], [2.0, 16.0]]
    dropped = [a for a in got.import_log.accounts if a.fate == "dropped"]
    assert [a.rows for a in dropped] == [["5"]]  # the infusion event not yet held
    assert "its fields (inf_date, inf_route) are all empty here" in dropped[0].reason


def test_an_export_of_labels_reads_like_one_of_codes(source_dataset, redcap_export):
    records = _records(redcap_export)
    dictionary = read_dictionary(redcap_export["dictionary"])
    for field in ("site", "sex", "dx", "inf_drug", "inf_unit", "inf_phase", *[f"phq9_{i}" for i in range(1, 10)]):
        records[field] = records[field].map(dictionary.choices(field)).where(records[field].notna())
    records.to_csv(redcap_export["records"], index=False)
    assert_same_outcomes(source_dataset, _read(redcap_export), _record_map(source_dataset))
