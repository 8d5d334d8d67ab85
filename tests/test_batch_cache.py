"""The batch's validated-dataset cache (analysis.report.cache) and what a batch hands its
kernels: the cache and BLAS/OpenMP pinned to one thread."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

import analysis
from analysis.problems import DataValidationError
from analysis.report import ReportParameters
from analysis.report.cache import ENV_VAR, CacheError, DatasetCache, dataset_digest, load_validated


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    return folder


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """The bundled sample, copied (so that a test may change a file)."""
    import shutil

    folder = tmp_path / "sample"
    shutil.copytree(analysis.sample_path(), folder)
    return folder


def test_a_cached_dataset_equals_the_validated_one(root, sample_copy):
    loaded = analysis.load_dataset(sample_copy)
    cache = DatasetCache(root)
    entry = cache.put(loaded, sample_copy)
    assert entry.name == dataset_digest(sample_copy)
    assert sorted(p.name for p in entry.iterdir()) == [
        "assessments.parquet", "medications.parquet", "meta.pickle", "patients.parquet", "sessions.parquet"]
    cached = cache.get(sample_copy)
    assert cached.equals(loaded)                      # values, columns and dtypes of every table, instruments
    for name, table in loaded.tables.items():
        assert list(cached.tables[name].dtypes) == list(table.dtypes), name
    assert cached.source == loaded.source
    assert cached.report.format() == loaded.report.format()
    assert cached.instrument_registry == loaded.instrument_registry


def test_a_changed_input_gets_a_new_entry(root, sample_copy):
    cache = DatasetCache(root)
    before = dataset_digest(sample_copy)
    cache.put(analysis.load_dataset(sample_copy), sample_copy)
    assert dataset_digest(sample_copy) == before                    # same bytes, same entry
    patients = sample_copy / "patients.csv"
    patients.write_text(patients.read_text().replace("site_A", "site_Q", 1))
    assert dataset_digest(sample_copy) != before
    assert cache.get(sample_copy) is None                           # validated again, never the old entry
    assert load_validated(sample_copy).patients["site"].eq("site_Q").sum() == 1


def test_the_cache_is_read_instead_of_validating_when_the_environment_names_it(root, sample_copy, monkeypatch):
    from analysis.report.selection import load_full_dataset

    full = analysis.load_dataset(sample_copy)
    site_a = full.subset(full.patients.loc[full.patients["site"] == "site_A", "patient_id"])
    DatasetCache(root).put(site_a, sample_copy)      # planted under the folder's digest: proves the entry is read
    params = ReportParameters(data=str(sample_copy))
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert len(load_full_dataset(params).patients) == 500          # no cache named: loaded and validated
    monkeypatch.setenv(ENV_VAR, str(root))
    assert len(load_full_dataset(params).patients) == 218          # the cache's entry
    assert len(load_validated(sample_copy).patients) == 218


def test_a_missing_entry_is_written_once_and_invalid_data_are_never_cached(root, valid_folder, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(root))
    first = load_validated(valid_folder)
    assert [p.name for p in root.iterdir()] == [dataset_digest(valid_folder)]
    assert load_validated(valid_folder).equals(first)
    sessions = valid_folder / "sessions.csv"
    sessions.write_text(sessions.read_text().replace("\n", "\nnot,a,valid,row\n", 1))
    with pytest.raises(DataValidationError):
        load_validated(valid_folder)
    assert len(list(root.iterdir())) == 1


def test_a_cache_root_others_may_write_to_is_refused(tmp_path, sample_copy):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(CacheError, match=r"must belong to this user and be writable by nobody else .*mode drwxrwxrwx"):
        DatasetCache(shared).get(sample_copy)
    with pytest.raises(CacheError, match="the folder does not exist"):
        DatasetCache(tmp_path / "nowhere").get(sample_copy)


def test_planning_validates_each_data_folder_once_into_the_cache(root, sample_copy, tmp_path):
    from analysis.report.batch import plan_batch

    jobs = plan_batch([{"name": "a", "data": str(sample_copy), "sites": ["site_B"]},
                       {"name": "b", "data": str(sample_copy), "sites": ["site_A"]}], tmp_path / "out",
                      cache=DatasetCache(root))
    assert [j.error for j in jobs] == [None, None]
    cache = DatasetCache(root)
    site = {"routes": [], "periods": [], "period_column": None}
    assert sorted(p.name for p in root.iterdir()) == sorted([
        dataset_digest(sample_copy), cache.cohort_entry(sample_copy, {"sites": ["site_A"], **site}).name,
        cache.cohort_entry(sample_copy, {"sites": ["site_B"], **site}).name])


def test_a_report_of_a_batch_reads_its_own_cohort_not_the_whole_dataset(root, sample_copy, tmp_path, monkeypatch):
    from analysis.report import select_cohort
    from analysis.report import selection
    from analysis.report.batch import plan_batch

    plan_batch([{"name": "b", "data": str(sample_copy), "sites": ["site_A"], "routes": ["iv", "im"]}],
               tmp_path / "out", cache=DatasetCache(root))
    params = ReportParameters(data=str(sample_copy), sites=["site_A"], routes=["im", "iv"])
    expected = select_cohort(analysis.load_dataset(sample_copy), params)
    monkeypatch.setenv(ENV_VAR, str(root))
    monkeypatch.setattr(selection, "load_full_dataset", lambda p: pytest.fail("read the whole dataset"))
    cohort = selection.load_cohort(params)               # the filters in another order: the same entry
    assert cohort.equals(expected) and len(cohort.patients) == len(expected.patients) == 188
    assert cohort.instrument_registry.get("PHQ-9").name == "PHQ-9"
    # another cohort, not planned: selected from the whole dataset
    monkeypatch.undo()
    monkeypatch.setenv(ENV_VAR, str(root))
    other = selection.load_cohort(ReportParameters(data=str(sample_copy), sites=["site_B"]))
    assert set(other.patients["site"]) == {"site_B"} and len(other.patients) == 155


ENV_BODY = '''\
import json, os, pathlib
out = pathlib.Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "KO_DATASET_CACHE")
cache = os.environ.get("KO_DATASET_CACHE")
(out / "key_figures.json").write_text(json.dumps({
    "patients": 1, **{n: os.environ.get(n) for n in names},
    "entries": sorted(p.name for p in pathlib.Path(cache).iterdir()) if cache else None}))
'''


@pytest.mark.slow
def test_a_local_batch_pins_blas_threads_and_hands_over_the_cache(tmp_path, sample_copy, monkeypatch):
    from analysis.report.batch import run_batch

    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", ENV_VAR):
        monkeypatch.delenv(name, raising=False)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    defaults = "\n".join(f"{k} = {v!r}" for k, v in ReportParameters().literals().items())
    nb.cells = [nbformat.v4.new_code_cell(defaults, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(ENV_BODY)]
    notebook = tmp_path / "env.ipynb"
    nbformat.write(nb, str(notebook))
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[[cohort]]\nname = "one"\ndata = "{sample_copy}"\n')
    [result] = run_batch(spec, tmp_path / "out", workers=1, notebook=notebook, progress=False)
    assert result.status == "ok", result.error
    figures = result.key_figures
    assert (figures["OMP_NUM_THREADS"], figures["OPENBLAS_NUM_THREADS"], figures["MKL_NUM_THREADS"]) == ("1",) * 3
    assert figures["entries"] == [dataset_digest(sample_copy)]      # validated once, by the planning
    assert not Path(figures["KO_DATASET_CACHE"]).exists()             # removed with the batch
    assert json.loads((tmp_path / "out" / "index.json").read_text())[0]["status"] == "ok"
    # a thread count the user set is kept
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    [again] = run_batch(spec, tmp_path / "out", workers=1, notebook=notebook, progress=False, force=True)
    assert again.key_figures["OMP_NUM_THREADS"] == "3" and again.key_figures["OPENBLAS_NUM_THREADS"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "3"


def test_a_cohort_selected_by_row_flags_is_the_cohort_selected_by_ids():
    import numpy as np

    ds = analysis.load_dataset(analysis.sample_path())
    rng = np.random.default_rng(3)
    for _ in range(5):
        keep = rng.random(len(ds.patients)) < rng.uniform(0.05, 0.9)
        assert ds.subset_rows(keep).equals(ds.subset(ds.patients.loc[keep, "patient_id"]))
    assert all(len(t) == 0 for t in ds.subset_rows(np.zeros(len(ds.patients), bool)).tables.values())
    with pytest.raises(ValueError, match="one flag per patient expected"):
        ds.subset_rows([True, False])


def test_a_cohort_of_parquet_row_groups_is_taken_chunk_by_chunk_with_the_same_rows(tmp_path: Path):
    """Parquet read in row groups gives Arrow columns of many chunks; the cohort's rows are
    taken from each chunk (no copy of the whole column), equal to iloc and to subset."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    sample = analysis.load_dataset(analysis.sample_path())
    folder = tmp_path / "parquet"
    folder.mkdir()
    for name, table in sample.tables.items():
        frame = pd.read_csv(analysis.sample_path() / f"{name}.csv", dtype=str, keep_default_na=False)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{name}.parquet",
                       row_group_size=97)
    ds = analysis.load_dataset(folder)
    chunks = ds.assessments["patient_id"].array._pa_array.num_chunks
    assert chunks > 10
    rng = np.random.default_rng(5)
    for share in (0.0, 0.02, 0.4, 1.0):
        keep = rng.random(len(ds.patients)) < share
        cohort = ds.subset_rows(keep)
        assert cohort.equals(ds.subset(ds.patients.loc[keep, "patient_id"]))
        flags = np.append(keep, False)
        for name, table in ds.tables.items():
            expected = table.iloc[np.flatnonzero(flags[ds.patient_rows[name]])].reset_index(drop=True)
            pd.testing.assert_frame_equal(cohort.tables[name], expected, check_exact=True)


@pytest.mark.parametrize("share", [0.02, 0.5])
def test_a_cohort_entry_holds_the_rows_and_dtypes_of_the_selected_cohort(root, tmp_path: Path, share):
    """A cohort's cache entry is taken from the dataset's Arrow tables, chunk by chunk (Parquet
    row groups here); read back it is the cohort ``subset_rows`` selects, dtypes included."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "parquet"
    folder.mkdir()
    for name in ("patients", "sessions", "assessments", "medications"):
        frame = pd.read_csv(analysis.sample_path() / f"{name}.csv", dtype=str, keep_default_na=False)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{name}.parquet",
                       row_group_size=61)
    ds = analysis.load_dataset(folder)
    keep = np.random.default_rng(11).random(len(ds.patients)) < share
    selection = {"sites": ["x"], "routes": [], "periods": [], "period_column": None}
    cache = DatasetCache(root)
    cache.put_cohort(ds, keep, folder, selection)
    cohort, expected = cache.get_cohort(folder, selection), ds.subset_rows(keep)
    for name, table in expected.tables.items():
        pd.testing.assert_frame_equal(cohort.tables[name], table, check_exact=True)
        assert cohort.tables[name]["patient_id"].isin(ds.patients.loc[keep, "patient_id"]).all()
    assert cohort.report is not None and len(cohort.patients) == keep.sum()
