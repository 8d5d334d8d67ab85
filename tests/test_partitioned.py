"""Outcomes derived by partitions of patients equal the whole-dataset derivation.

``derive_outcomes_partitioned`` (blocks of patients one after the other) and
``derive_outcomes_dask`` (Dask DataFrames partitioned by patient, one task per partition)
must give every table of ``derive_outcomes`` exactly: same rows in the same order, same
columns in the same order, same dtypes and values.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.outcomes.partitioned import (
    derive_outcomes_dask, derive_outcomes_partitioned, partition_dataset, to_dask,
)

dd = pytest.importorskip("dask.dataframe")


def assert_same_outcomes(expected: analysis.Outcomes, got: analysis.Outcomes) -> None:
    """Every field of Outcomes, tables compared exactly (columns, dtypes, values, order)."""
    for f in dataclasses.fields(expected):
        a, b = getattr(expected, f.name), getattr(got, f.name)
        if isinstance(a, pd.DataFrame):
            assert list(b.columns) == list(a.columns), f.name
            pd.testing.assert_frame_equal(b, a, check_exact=True, obj=f.name)
        else:
            assert b == a, f.name


@pytest.fixture(scope="module")
def sample():
    return analysis.load_dataset(analysis.sample_path())


@pytest.fixture(scope="module")
def sample_outcomes(sample):
    return analysis.derive_outcomes(sample, "PHQ-9")


@pytest.mark.parametrize("n_partitions", [2, 3, 7, 50])
def test_partitions_give_the_whole_dataset_outcomes(sample, sample_outcomes, n_partitions):
    got = derive_outcomes_partitioned(sample, "PHQ-9", n_partitions=n_partitions)
    assert_same_outcomes(sample_outcomes, got)


def test_partition_size_and_definitions(sample):
    expected = analysis.derive_outcomes(sample, "QIDS-SR16", relapse_confirmations=1, include_partial_responders=True)
    got = derive_outcomes_partitioned(sample, "QIDS-SR16", partition_size=64, relapse_confirmations=1,
                                      include_partial_responders=True)
    assert_same_outcomes(expected, got)
    counts = got.attrition.set_index("step")["n_in"]
    assert counts["patients in dataset"] == len(sample.patients)


def test_partition_dataset_blocks_cover_every_row_once(sample):
    parts = partition_dataset(sample, n_partitions=3)
    assert [len(p.patients) for p in parts] == [167, 166, 167]
    for name in ("sessions", "assessments", "medications"):
        rows = np.concatenate([getattr(p, name).index.to_numpy() for p in parts])
        assert np.array_equal(np.sort(rows), np.arange(len(getattr(sample, name)))), name
        for p in parts:
            assert getattr(p, name)["patient_id"].isin(p.patients["patient_id"]).all(), name


def test_a_drug_absent_from_a_partition_keeps_its_column(sample):
    """Rapamycin only for the first patient: the other partitions have no such column; the
    combined tables have it at its place, False for everyone else."""
    meds = sample.medications
    first = sample.patients["patient_id"].iloc[0]
    start = sample.sessions.loc[sample.sessions["patient_id"] == first, "day"].min()
    extra = pd.DataFrame({"patient_id": [first], "drug": ["ketorolac"], "start_day": [start], "end_day": [start + 30],
                          "dose_mg": [10.0]})
    tables = dict(sample.tables)
    tables["medications"] = pd.concat([meds[list(extra.columns)], extra.astype(meds[list(extra.columns)].dtypes)],
                                      ignore_index=True)
    ds = analysis.Dataset.from_frames(**tables)
    expected = analysis.derive_outcomes(ds, "PHQ-9")
    assert "drug_ketorolac" in expected.sessions.columns
    got = derive_outcomes_partitioned(ds, "PHQ-9", n_partitions=5)
    assert_same_outcomes(expected, got)
    assert int(got.sessions["drug_ketorolac"].sum()) >= 1


def test_no_medications_at_all(sample):
    tables = dict(sample.tables)
    del tables["medications"]
    ds = analysis.Dataset.from_frames(**tables)
    assert_same_outcomes(analysis.derive_outcomes(ds, "PHQ-9"), derive_outcomes_partitioned(ds, "PHQ-9", n_partitions=4))


def test_sessions_in_any_order(sample):
    """Sessions not grouped by patient: the sessions table still comes back in table order."""
    tables = dict(sample.tables)
    tables["sessions"] = tables["sessions"].sample(frac=1.0, random_state=7).reset_index(drop=True)
    ds = analysis.Dataset.from_frames(**tables)
    assert_same_outcomes(analysis.derive_outcomes(ds, "PHQ-9"), derive_outcomes_partitioned(ds, "PHQ-9", n_partitions=6))


def test_sessions_in_patient_order_but_one_block(sample):
    """Blocks whose sessions are row ranges of the table and two that are not (the first and
    the last session swapped): the ranges are put back by their start, the others by their rows."""
    tables = dict(sample.tables)
    position = pd.Index(sample.patients["patient_id"]).get_indexer(tables["sessions"]["patient_id"])
    sessions = tables["sessions"].iloc[np.argsort(position, kind="stable")].reset_index(drop=True)
    last = len(sessions) - 1
    sessions = sessions.iloc[[last, *range(1, last), 0]].reset_index(drop=True)
    tables["sessions"] = sessions
    ds = analysis.Dataset.from_frames(**tables)
    assert_same_outcomes(analysis.derive_outcomes(ds, "PHQ-9"), derive_outcomes_partitioned(ds, "PHQ-9", n_partitions=5))


def test_bad_partition_arguments(sample):
    with pytest.raises(ValueError, match="not both"):
        derive_outcomes_partitioned(sample, n_partitions=2, partition_size=10)
    with pytest.raises(ValueError, match="n_partitions must be a positive whole number, got 0"):
        derive_outcomes_partitioned(sample, n_partitions=0)
    with pytest.raises(ValueError, match="partition_size must be a positive whole number of patients, got -3"):
        derive_outcomes_partitioned(sample, partition_size=-3)
    with pytest.raises(TypeError, match="needs an analysis.Dataset"):
        derive_outcomes_partitioned(sample.tables)


# ----------------------------------------------------------------------------------------
# Dask
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def registry_10k():
    return analysis.simulate(n_patients=10_000, seed=2026).dataset()


def test_dask_equals_single_machine_on_10000_patients(registry_10k):
    """The issue's check: 10,000 patients, 4 partitions, Dask against the single machine."""
    expected = analysis.derive_outcomes(registry_10k, "PHQ-9")
    tables = to_dask(registry_10k, n_partitions=4)
    assert {t.npartitions for t in tables.values()} == {4}
    got = derive_outcomes_dask(tables, "PHQ-9", instrument_registry=registry_10k.instrument_registry)
    assert_same_outcomes(expected, got)
    assert len(got.courses) > 9_000 and len(got.durability) > 20_000


def test_dask_refuses_misaligned_partitions(sample):
    tables = to_dask(sample, n_partitions=4)
    # sessions split into 4 other blocks: rows of patients outside their partition
    tables["sessions"] = dd.from_pandas(sample.sessions, npartitions=4, sort=False)
    with pytest.raises(ValueError, match=r"sessions: partition \d has \d+ row\(s\) of patients not in partition"):
        derive_outcomes_dask(tables, "PHQ-9", instrument_registry=sample.instrument_registry)
    tables["sessions"] = dd.from_pandas(sample.sessions, npartitions=2, sort=False)
    with pytest.raises(ValueError, match="different numbers of partitions"):
        derive_outcomes_dask(tables, "PHQ-9")
    del tables["medications"]
    with pytest.raises(ValueError, match=r"missing table\(s\) \['medications'\]"):
        derive_outcomes_dask(tables, "PHQ-9")


def test_patient_positions_as_index_lookup(sample):
    """Arrow's hash lookup of the rows' patients gives ``Index.get_indexer`` (-1 where absent)."""
    from analysis.outcomes.partitioned import _patient_positions

    known = sample.patients["patient_id"]
    ids = pd.concat([sample.sessions["patient_id"], pd.Series(["nobody", None], dtype="string")], ignore_index=True)
    got = _patient_positions(ids, known)
    assert got.tolist() == pd.Index(known).get_indexer(ids).tolist()
    assert got[-2:].tolist() == [-1, -1]


def test_partition_patients_coded_as_categories(sample):
    """Within a partition the rows' patients become categories of the partition's patients
    (same values); the derived sessions table gets back the ids' text dtype."""
    from analysis.outcomes.partitioned import _coded_patients, _derive_part, _split_blocks, _partition_bounds

    bounds = _partition_bounds(len(sample.patients), 3, None)
    tables, codes = next(_split_blocks(sample, bounds))
    coded = _coded_patients(tables, codes)
    for name in ("sessions", "assessments", "medications"):
        ids = coded[name]["patient_id"]
        assert isinstance(ids.dtype, pd.CategoricalDtype)
        assert list(ids.cat.categories) == list(tables["patients"]["patient_id"])
        assert ids.astype("string").tolist() == tables[name]["patient_id"].tolist()
        assert (ids.index == tables[name].index).all()
    out = _derive_part(tables, sample.instrument_registry, sample.report, "PHQ-9", {}, codes)
    assert out.sessions["patient_id"].dtype == sample.sessions["patient_id"].dtype
    assert out.sessions["patient_id"].tolist() == tables["sessions"]["patient_id"].tolist()
    assert out.sessions["_row"].tolist() == tables["sessions"].index.tolist()
