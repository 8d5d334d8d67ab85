"""The CDISC SDTM reader: XPT files built from a simulated format-v1 dataset import back to it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyreadstat")

from analysis.io.sdtm import read_sdtm  # noqa: E402
from analysis.problems import DataValidationError  # noqa: E402
from analysis.simulation import simulate  # noqa: E402
from tests.io.sdtm_fixture import (  # noqa: E402
    assert_all_rows_accounted, assert_same_outcomes, assert_same_records, sdtm_tables, usubjid, write_sdtm,
)


@pytest.fixture(scope="module")
def source():
    return simulate(40, seed=3).dataset()


@pytest.fixture(scope="module")
def tables(source):
    return sdtm_tables(source)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tables) -> Path:
    return write_sdtm(tmp_path_factory.mktemp("sdtm"), tables)


@pytest.fixture(scope="module")
def imported(folder):
    return read_sdtm(folder)


@pytest.fixture(scope="module")
def ids(source) -> dict[str, str]:
    return {usubjid(p): p for p in source.patients["patient_id"]}


def test_fixture_covers_both_sides_of_the_reference_day(tables):
    ex = tables["ex"]
    qs = tables["qs"]
    assert (qs["QSDY"] < 0).any() and (qs["QSDY"] == 1).any() and (qs["QSDY"] > 1).any()
    assert not (qs["QSDY"] == 0).any()
    assert ex["EXSTDY"].notna().any() and (ex["EXSTDTC"] != "").any()  # both ways of placing a record


def test_imported_tables_hold_the_source_records(imported, source, ids):
    assert_same_records(imported, source, ids)
    pd.testing.assert_series_equal(
        imported.patients.set_index("patient_id")["diagnosis"].rename(index=ids).sort_index(),
        source.patients.set_index("patient_id")["diagnosis"].sort_index(), check_names=False)


def test_derived_outcomes_equal_those_of_the_source(imported, source, ids):
    assert_same_outcomes(imported, source, ids)
    assert_same_outcomes(imported, source, ids, instrument="MADRS")  # summed from items


def test_every_source_record_is_accounted_for(imported, tables):
    log = imported.import_log
    assert_all_rows_accounted(log, {f"{name}.xpt": [f"row={i}" for i in range(1, len(t) + 1)]
                                    for name, t in tables.items()})
    dropped = {a.reason: len(a.rows) for a in log.accounts if a.fate == "dropped"}
    assert dropped["EXTRT 'PLACEBO' is not ketamine or esketamine."] == 1
    n_phq = int((tables["qs"]["QSCAT"] == "PHQ-9").sum())
    assert dropped["Item record of a questionnaire whose total score record is used instead."] == n_phq * 9 // 10


def _write_csv(folder: Path, **tables: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


DM = pd.DataFrame({"USUBJID": ["S-1", "S-2"], "SITEID": ["01", "02"], "AGE": [40, 51], "AGEU": ["YEARS"] * 2,
                   "SEX": ["F", "M"], "RFSTDTC": ["2023-03-10", "2023-05-01"]})
EX = pd.DataFrame({"USUBJID": ["S-1", "S-1", "S-2", "S-2"], "EXTRT": ["KETAMINE", "KETAMINE", "ESKETAMINE", "ESKETAMINE"],
                   "EXDOSE": [0.5, 0.5, 56, 84], "EXDOSU": ["mg/kg", "mg/kg", "mg", "mg"],
                   "EXROUTE": ["INTRAVENOUS", "INTRAVENOUS", "NASAL", "NASAL"],
                   "EXSTDY": [1, 4, np.nan, np.nan], "EXSTDTC": ["", "", "2023-05-01", "2023-05-04"]})


def _qs(rows):
    return pd.DataFrame(rows, columns=["USUBJID", "QSCAT", "QSTESTCD", "QSTEST", "QSSTRESN", "QSDY", "QSDTC"])


def test_sdtm_days_have_no_day_zero_on_both_sides_of_the_reference(tmp_path):
    # subject 1 by QSDY: -1 is the day before RFSTDTC, 1 is RFSTDTC, 2 the day after;
    # subject 2 by QSDTC only: 2023-04-30 is the day before, 2023-05-01 the reference day
    qs = _qs([["S-1", "PHQ-9", "PHQ0111", "PHQ-9 Total Score", 20, -1, ""],
              ["S-1", "PHQ-9", "PHQ0111", "PHQ-9 Total Score", 15, 1, ""],
              ["S-1", "PHQ-9", "PHQ0111", "PHQ-9 Total Score", 9, 2, ""],
              ["S-2", "PHQ-9", "PHQ0111", "PHQ-9 Total Score", 21, np.nan, "2023-04-30"],
              ["S-2", "PHQ-9", "PHQ0111", "PHQ-9 Total Score", 18, np.nan, "2023-05-01T09:30"],
              ["S-2", "PHQ-9", "PHQ0111", "PHQ-9 Total Score", 11, np.nan, "2023-05-02"]])
    folder = _write_csv(tmp_path / "s", dm=DM, ex=EX, qs=qs)
    for index in ("first_session", "RFSTDTC"):  # the first sessions are on the reference day here
        ds = read_sdtm(folder, index=index)
        got = ds.assessments.sort_values(["patient_id", "score"], ascending=[True, False])
        assert got["day"].tolist() == [-1.0, 0.0, 1.0, -1.0, 0.0, 1.0]
        assert ds.sessions["day"].tolist() == [0.0, 3.0, 0.0, 3.0]


def test_index_other_than_the_reference_start(tmp_path):
    ex = EX.copy()
    ex["EXSTDY"] = [3, 6, np.nan, np.nan]  # subject 1 starts two days after RFSTDTC
    qs = _qs([["S-1", "PHQ-9", "PHQ0111", "PHQ-9 Total Score", 20, 1, ""],
              ["S-2", "PHQ-9", "PHQ0111", "PHQ-9 Total Score", 21, np.nan, "2023-05-01"]])
    folder = _write_csv(tmp_path / "s", dm=DM, ex=ex, qs=qs)
    first = read_sdtm(folder)
    assert first.sessions["day"].tolist()[:2] == [0.0, 3.0] and first.assessments["day"].tolist()[0] == -2.0
    reference = read_sdtm(folder, index="RFSTDTC")
    assert reference.sessions["day"].tolist()[:2] == [2.0, 5.0] and reference.assessments["day"].tolist()[0] == 0.0
    dm = DM.assign(RFICDTC=["2023-03-09", "2023-04-28"])
    consent = read_sdtm(_write_csv(tmp_path / "c", dm=dm, ex=ex, qs=qs), index="RFICDTC")
    assert consent.sessions["day"].tolist() == [3.0, 6.0, 3.0, 6.0]


def test_items_are_summed_when_no_total_exists_and_totals_found_by_name(tmp_path):
    items = [["S-1", "GAD-7", f"GAD010{k}", f"GAD-7 item {k}", 2, 1, ""] for k in range(1, 8)]
    total_by_name = [["S-2", "PHQ-9", "XYZ99", "PHQ-9 total score", 17, np.nan, "2023-05-01"]]
    ds = read_sdtm(_write_csv(tmp_path / "s", dm=DM, ex=EX, qs=_qs(items + total_by_name)))
    a = ds.assessments.set_index("instrument")
    assert a.loc["GAD-7", "score"] == 14.0 and a.loc["PHQ-9", "score"] == 17.0
    assert ds.import_log.counts()["qs.csv"] == {"rows": 8, "used": 8, "dropped": 0}


def test_a_code_matched_record_that_is_not_a_total_is_refused(tmp_path):
    qs = _qs([["S-1", "PHQ-9", "PHQ0111", "PHQ-9 item 11", 2, 1, ""]])
    with pytest.raises(DataValidationError) as info:
        read_sdtm(_write_csv(tmp_path / "s", dm=DM, ex=EX, qs=qs))
    assert "qs.csv line 2, column 'QSTEST': value 'PHQ-9 item 11': QSTESTCD is the total code" in str(info.value)


def test_day_zero_and_partial_dates_are_errors_naming_file_line_column_value(tmp_path):
    qs = _qs([["S-1", "PHQ-9", "PHQ0111", "PHQ-9 Total Score", 20, 0, ""],
              ["S-2", "PHQ-9", "PHQ0111", "PHQ-9 Total Score", 21, np.nan, "2023-05"]])
    with pytest.raises(DataValidationError) as info:
        read_sdtm(_write_csv(tmp_path / "s", dm=DM, ex=EX, qs=qs))
    text = str(info.value)
    assert "qs.csv line 2, column 'QSDY': value 0.0: SDTM study days have no day 0" in text
    assert "qs.csv line 3, column 'QSDTC': value '2023-05': expected a complete ISO 8601 date" in text


def _cli(folder: Path, out: Path, *extra: str) -> int:
    from analysis.cli import main

    return main(["import", "sdtm", str(folder), "--out", str(out), *extra])


def test_cli_writes_the_dataset_and_its_log(folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert _cli(folder, out) == 0
    assert {p.name for p in out.iterdir()} >= {"patients.csv", "sessions.csv", "assessments.csv", "medications.csv",
                                                "import_log.json", "import_log.md"}


def test_corrupted_copy_exits_1_naming_table_row_column_and_value(tables, tmp_path, capsys):
    bad = {name: frame.copy() for name, frame in tables.items()}
    total = bad["qs"].index[bad["qs"]["QSTESTCD"] == "PHQ0111"][3]
    bad["qs"].loc[total, "QSSTRESN"] = 31.0
    bad["ex"].loc[5, "EXROUTE"] = "INTRAVENUS"
    folder = write_sdtm(tmp_path / "bad", bad)
    out = tmp_path / "out"
    assert _cli(folder, out) == 1
    err = capsys.readouterr().err
    assert f"qs.xpt row={total + 1}, column 'score': value 31.0: PHQ-9 total score outside its range" in err
    assert "ex.xpt row=6, column 'route': value 'INTRAVENUS': unknown route 'INTRAVENUS'" in err
    assert not out.exists()


def test_missing_domain_and_bad_file_are_reported(tmp_path):
    folder = _write_csv(tmp_path / "s", dm=DM, ex=EX)
    (folder / "qs.xpt").write_bytes(b"not a transport file")
    with pytest.raises(DataValidationError) as info:
        read_sdtm(folder)
    assert "qs.xpt" in str(info.value) and "cannot read .xpt file" in str(info.value)


def test_supp_qualifiers_merge_onto_their_parent_records_and_parquet_is_read(tmp_path):
    ex = EX.assign(EXSEQ=[1, 2, 1, 2])
    suppex = pd.DataFrame({"RDOMAIN": "EX", "USUBJID": ["S-1", "S-2"], "IDVAR": "EXSEQ", "IDVARVAL": ["2", "1"],
                           "QNAM": "PHASE", "QVAL": ["maintenance", "induction"]})
    qs = _qs([["S-1", "PHQ-9", "PHQ0111", "PHQ-9 Total Score", 20, 1, ""]])
    folder = _write_csv(tmp_path / "s", dm=DM, qs=qs, suppex=suppex)
    ex.to_parquet(folder / "ex.parquet", index=False)
    ds = read_sdtm(folder)
    phase = ds.sessions["phase"]
    assert phase.isna().tolist() == [True, False, False, True]
    assert phase.dropna().tolist() == ["maintenance", "induction"]
    assert ds.import_log.counts()["suppex.csv"] == {"rows": 2, "used": 2, "dropped": 0}
    assert ds.import_log.counts()["ex.parquet"] == {"rows": 4, "used": 4, "dropped": 0}


def test_records_of_subjects_not_in_dm_and_orphan_qualifiers_are_errors(tmp_path):
    qs = _qs([["S-9", "PHQ-9", "PHQ0111", "PHQ-9 Total Score", 20, 1, ""]])
    suppdm = pd.DataFrame({"RDOMAIN": "DM", "USUBJID": ["S-7"], "IDVAR": "", "IDVARVAL": "", "QNAM": "DIAGNOSIS",
                           "QVAL": ["MDD"]})
    with pytest.raises(DataValidationError) as info:
        read_sdtm(_write_csv(tmp_path / "s", dm=DM, ex=EX, qs=qs, suppdm=suppdm))
    text = str(info.value)
    assert "qs.csv line 2, column 'USUBJID': value 'S-9': subject is not in dm" in text
    assert "suppdm.csv line 2, column 'USUBJID': value 'S-7': no record in dm.csv for this USUBJID" in text
