"""Bundled codes and scoring rules: every code is sourced and used; totals follow the instruments' rules.

The bundled LOINC codes (PHQ-9 44261-6, GAD-7 70274-6) are the ones found on LOINC's own pages;
MADRS, QIDS-SR16 and HAM-D17 totals and esketamine's RxNorm ingredient have no bundled code
(none was found stated by LOINC or NLM), so an OMOP import finds them only by an added code
(instruments) or by name (esketamine). Totals from items: PHQ-9 allows 2 missing items (NHS Data
Dictionary), QIDS-SR16 sums its 9 symptom domains (Rush et al. 2003).
"""

from __future__ import annotations

import sqlite3
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.io._sdtm_qs import bundled_total_codes
from analysis.io.totals import DOMAINS, totals_from_items
from analysis.io.vocabulary import KINDS, default_vocabulary

SYSTEM = {"instrument": "LOINC", "drug": "RxNorm", "route": "SNOMED"}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_bundled_code_is_named_in_its_entry_source(kind):
    for entry in default_vocabulary().entries(kind):
        for code in entry.codes:
            system, _, number = code.partition(":")
            assert system == SYSTEM[kind], (kind, entry.value, code)
            assert number in entry.source, f"{kind} {entry.value}: code {code} not named in its source"
            assert default_vocabulary().lookup(kind, code).value == entry.value


def test_only_the_loinc_codes_found_on_loinc_pages_are_bundled():
    codes = {e.value: e.codes for e in default_vocabulary().entries("instrument")}
    assert codes["PHQ-9"] == ("LOINC:44261-6",) and codes["GAD-7"] == ("LOINC:70274-6",)
    assert "loinc.org/87623-5" in _source("instrument", "PHQ-9")
    assert "loinc.org/69729-2" in _source("instrument", "GAD-7")
    for name in ("MADRS", "QIDS-SR16", "HAM-D17"):
        assert codes[name] == () and "not bundled" in _source("instrument", name)
    assert default_vocabulary().lookup("drug", "esketamine").value == "esketamine"
    assert {e.value: e.codes for e in default_vocabulary().entries("drug")}["esketamine"] == ()


def _source(kind: str, value: str) -> str:
    return next(e.source for e in default_vocabulary().entries(kind) if e.value == value)


def test_sdtm_total_codes_are_sourced_and_name_a_total():
    text = resources.files("analysis.io").joinpath("sdtm_qs_totals.toml").read_text(encoding="utf-8")
    totals = tomllib.loads(text)["totals"]
    assert bundled_total_codes() == {cat: t["code"] for cat, t in totals.items()}
    for cat, entry in totals.items():
        assert entry["source"] and "total score" in entry["test"].lower(), cat
    assert "RS domain" in totals["HAMD 17"]["source"]  # HAMD 17 is RS, not QS, since supplement v2.0


def _omop(path: Path, loinc_code: str) -> str:
    con = sqlite3.connect(path)
    con.executescript(f"""
    CREATE TABLE concept (concept_id INT, concept_name TEXT, domain_id TEXT, vocabulary_id TEXT,
      concept_class_id TEXT, standard_concept TEXT, concept_code TEXT);
    CREATE TABLE concept_ancestor (ancestor_concept_id INT, descendant_concept_id INT);
    CREATE TABLE person (person_id INT, gender_concept_id INT, year_of_birth INT, care_site_id INT);
    CREATE TABLE drug_exposure (drug_exposure_id INT, person_id INT, drug_concept_id INT,
      drug_exposure_start_date DATE, drug_exposure_end_date DATE, quantity REAL,
      dose_unit_source_value TEXT, route_concept_id INT, route_source_value TEXT);
    CREATE TABLE measurement (measurement_id INT, person_id INT, measurement_concept_id INT,
      measurement_date DATE, value_as_number REAL);
    INSERT INTO concept VALUES (1, 'esketamine', 'Drug', 'RxNorm', 'Ingredient', 'S', '999999001'),
      (2, 'Nasal route', 'Route', 'SNOMED', 'Qualifier Value', 'S', '46713006'),
      (3, 'PHQ-9 total score', 'Measurement', 'LOINC', 'Clinical Observation', 'S', '44261-6'),
      (4, 'MADRS total score', 'Measurement', 'LOINC', 'Clinical Observation', 'S', '{loinc_code}'),
      (5, 'FEMALE', 'Gender', 'Gender', 'Gender', 'S', 'F');
    INSERT INTO person VALUES (7, 5, 1980, NULL);
    INSERT INTO drug_exposure VALUES (10, 7, 1, '2023-03-01', '2023-03-01', 56, 'mg', 2, 'nasal');
    INSERT INTO measurement VALUES (20, 7, 3, '2023-03-01', 19), (21, 7, 4, '2023-03-01', 30);
    """)
    con.close()
    return f"sqlite:///{path}"


def test_omop_resolves_instruments_by_bundled_or_added_loinc_code_and_esketamine_by_name(tmp_path):
    pytest.importorskip("sqlalchemy")
    from analysis.io.omop import read_omop

    url = _omop(tmp_path / "cdm.db", "99999-9")  # a made-up code for the test, not a LOINC claim
    bundled = read_omop(url)
    assert bundled.sessions[["route", "dose_mg", "drug"]].values.tolist() == [["intranasal", 56.0, "esketamine"]]
    assert bundled.assessments["instrument"].tolist() == ["PHQ-9"]  # no bundled MADRS code
    dropped = [a for a in bundled.import_log.accounts if a.table == "measurement" and a.fate == "dropped"]
    assert [a.rows for a in dropped] == [["measurement_id=21"]]
    added = default_vocabulary().with_additions({"instrument": {"LOINC:99999-9": "MADRS"}})
    both = read_omop(url, vocabulary=added)
    assert sorted(both.assessments[["instrument", "score"]].values.tolist()) == [["MADRS", 30.0], ["PHQ-9", 19.0]]


def _phq(*missing_rows: list[int]) -> pd.DataFrame:
    items = pd.DataFrame({f"item_{i}": [2.0] * len(missing_rows) for i in range(1, 10)})
    for row, missing in enumerate(missing_rows):
        items.loc[row, [f"item_{i}" for i in missing]] = np.nan
    return items


def test_phq9_prorates_up_to_two_missing_items_and_refuses_three():
    items = _phq([], [9], [1, 9], [1, 2, 9])
    items.loc[2, "item_2"] = 3.0  # answered: 3 + 6 x 2 = 15 over 7 items
    total, prorated, why = totals_from_items(pd.Series(["PHQ-9"] * 4), items)
    assert total.tolist()[:3] == [18.0, 18.0, pytest.approx(15 / 7 * 9)] and np.isnan(total[3])
    assert prorated.tolist() == [False, True, True, False]
    assert why[:3] == [None, None, None]
    assert why[3] == "PHQ-9 total not computable: 3 of 9 items missing (at most 2 allowed, docs/import.md)."


def test_qids_sr16_total_sums_its_nine_domains_not_its_sixteen_items():
    assert [len(d) for d in DOMAINS["QIDS-SR16"]] == [4, 1, 4, 1, 1, 1, 1, 1, 2]
    worst = pd.DataFrame({f"item_{i}": [3.0] for i in range(1, 17)})
    assert totals_from_items(pd.Series(["QIDS-SR16"]), worst)[0].tolist() == [27.0]  # the sum would be 48
    items = pd.DataFrame({f"item_{i}": [0.0, 0.0, 0.0] for i in range(1, 17)})
    items.loc[0, ["item_1", "item_3", "item_6", "item_15"]] = [1.0, 3.0, 2.0, 1.0]  # domains: 3 + 2 + 1
    items.loc[1, ["item_7", "item_9"]] = np.nan  # the form asks for one appetite and one weight item
    items.loc[2, ["item_15", "item_16"]] = np.nan  # the psychomotor domain unanswered
    total, prorated, why = totals_from_items(pd.Series(["QIDS-SR16"] * 3), items)
    assert total.tolist()[:2] == [6.0, 0.0] and np.isnan(total[2]) and not prorated.any()
    assert why[2] == ("QIDS-SR16 total not computable: 1 of 9 symptom domains missing "
                      "(at most 0 allowed, docs/import.md).")
    allowed = totals_from_items(pd.Series(["QIDS-SR16"]), items.iloc[[2]], max_missing={"QIDS-SR16": 1})
    assert allowed[0].tolist() == [0.0] and allowed[1].tolist() == [True]


def test_other_instruments_are_summed_and_allow_no_missing_item():
    gad = pd.DataFrame({f"item_{i}": [1.0, 1.0] for i in range(1, 8)})
    gad.loc[1, "item_7"] = np.nan
    total, prorated, why = totals_from_items(pd.Series(["GAD-7", "GAD-7"]), gad)
    assert total.tolist()[0] == 7.0 and np.isnan(total[1]) and not prorated.any()
    assert why[1] == "GAD-7 total not computable: 1 of 7 items missing (at most 0 allowed, docs/import.md)."
