"""The OMOP CDM reader on one fixture in DuckDB, SQLite and a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("duckdb_engine")

from analysis.cli import main  # noqa: E402
from analysis.io.omop import read_omop  # noqa: E402
from analysis.problems import DataValidationError  # noqa: E402
from analysis.simulation import simulate  # noqa: E402
from tests.io.omop_fixture import omop_source, omop_tables, write_omop  # noqa: E402
from tests.io.sdtm_fixture import assert_all_rows_accounted, assert_same_outcomes, assert_same_records  # noqa: E402

KEYS = {"person": "person_id", "drug_exposure": "drug_exposure_id", "measurement": "measurement_id",
        "observation": "observation_id"}


@pytest.fixture(scope="module")
def original():
    return simulate(40, seed=3).dataset()


@pytest.fixture(scope="module")
def expected(original):
    return omop_source(original)


@pytest.fixture(scope="module")
def tables(original):
    return omop_tables(original)


@pytest.fixture(scope="module")
def ids(tables, original) -> dict[str, str]:
    return dict(zip(tables["person"]["person_id"].astype(str), original.patients["patient_id"]))


@pytest.fixture(scope="module")
def duckdb_url(tmp_path_factory, tables) -> str:
    # not named cdm.duckdb: DuckDB names the catalog after the file, which would clash with schema cdm
    return write_omop(f"duckdb:///{tmp_path_factory.mktemp('omop')}/omop.duckdb", tables, schema="cdm")


@pytest.fixture(scope="module")
def from_duckdb(duckdb_url):
    return read_omop(duckdb_url, schema="cdm")


def test_duckdb_import_holds_the_source_records_and_outcomes(from_duckdb, expected, ids):
    assert_same_records(from_duckdb, expected, ids)
    assert_same_outcomes(from_duckdb, expected, ids)


def test_every_source_row_is_accounted_for(from_duckdb, tables):
    log = from_duckdb.import_log
    assert_all_rows_accounted(log, {t: [f"{k}={i}" for i in tables[t][k]] for t, k in KEYS.items()})
    dropped = {(a.table, a.reason.split(" ")[0]): len(a.rows) for a in log.accounts if a.fate == "dropped"}
    n_madrs = int((tables["measurement"]["measurement_concept_id"] == tables["concept"].set_index("concept_name")
                   .loc["Body weight", "concept_id"]).sum())
    assert dropped == {("drug_exposure", "drug_concept_id"): 2, ("measurement", "measurement_concept_id"): n_madrs,
                       ("measurement", "value_as_number"): 1}
    assert log.identifiers_dropped == ["month_of_birth", "day_of_birth", "birth_datetime", "person_source_value"]


def test_concepts_are_resolved_by_code_not_by_id(tmp_path, original, from_duckdb):
    shifted = write_omop(f"duckdb:///{tmp_path}/shifted.duckdb", omop_tables(original, id_offset=7_000_000))
    assert read_omop(shifted).equals(from_duckdb)


def test_streaming_in_small_chunks_gives_the_same_dataset(duckdb_url, from_duckdb):
    assert read_omop(duckdb_url, schema="cdm", chunk_rows=37).equals(from_duckdb)


def test_sqlite_gives_the_same_dataset(tmp_path, tables, from_duckdb):
    url = write_omop(f"sqlite:///{tmp_path}/omop.db", tables)
    assert read_omop(url).equals(from_duckdb)


def test_postgresql_server_gives_the_same_dataset(postgres_url, tables, from_duckdb, expected, ids):
    url = write_omop(postgres_url, tables, schema="cdm")
    from_postgres = read_omop(url, schema="cdm")
    assert from_postgres.equals(from_duckdb)
    assert from_postgres.import_log.counts() == from_duckdb.import_log.counts()
    assert_same_outcomes(from_postgres, expected, ids)


def test_corrupted_copy_exits_1_naming_table_key_column_and_value(tmp_path, tables, capsys):
    bad = {name: frame.copy() for name, frame in tables.items()}
    m = bad["measurement"]
    phq = m.index[m["measurement_concept_id"] == bad["concept"].set_index("concept_code").loc["44261-6", "concept_id"]]
    m.loc[phq[4], "value_as_number"] = 31.0
    weight = int(bad["concept"].set_index("concept_name").loc["Body weight", "concept_id"])
    bad["drug_exposure"].loc[2, "route_concept_id"] = weight  # a concept that is no route
    url = write_omop(f"duckdb:///{tmp_path}/bad.duckdb", bad)
    out = tmp_path / "out"
    assert main(["import", "omop", url, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    key = int(m.loc[phq[4], "measurement_id"])
    assert (f"measurement measurement_id={key}, column 'value_as_number': value 31.0: PHQ-9 total score outside "
            "its range") in err
    exposure = int(bad["drug_exposure"].loc[2, "drug_exposure_id"])
    assert (f"drug_exposure drug_exposure_id={exposure}, column 'route_concept_id': value 'Body weight': "
            "unknown route 'Body weight'") in err
    assert not out.exists()


def test_cli_writes_the_dataset(duckdb_url, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["import", "omop", duckdb_url, "--schema", "cdm", "--out", str(out), "--format", "parquet"]) == 0
    assert {p.name for p in out.iterdir()} >= {"patients.parquet", "sessions.parquet", "assessments.parquet",
                                                "medications.parquet", "import_log.json", "import_log.md"}


def test_missing_tables_are_named(tmp_path):
    url = write_omop(f"duckdb:///{tmp_path}/empty.duckdb", {})
    with pytest.raises(DataValidationError, match="required table\\(s\\) missing: person, drug_exposure, concept, "
                                                  "concept_ancestor"):
        read_omop(url)
    assert Path(tmp_path / "empty.duckdb").exists()
