"""A content-addressed cache of validated datasets, so that a batch validates each dataset once.

Every report of a batch used to read and validate the whole dataset before selecting its
cohort; the batch planning had already done the same. Here the planning writes the
validated dataset once, as Parquet, into a folder named after the SHA-256 of its inputs,
and every report of the batch reads it back instead of validating again
(:func:`load_validated`, used by the report's data loading in
:mod:`~analysis.report.selection`).

An entry is ``<root>/<digest>/``: one Parquet file per table (the format-v1 dtypes round-trip
through pandas' Parquet metadata) and ``meta.pickle`` (the validation report with its
warnings and the dataset's instrument registry). ``digest`` is the SHA-256 of the package
version and of the SHA-256 of every file in the dataset folder (the same hashes the
report's provenance records), so a changed input, or a package whose validation changed,
never reads an old entry: it validates again. Entries are written into a temporary folder
and renamed into place, so readers see a whole entry or none. The planning also writes
each filtered cohort's own patients (``<root>/cohort-<digest>/``, named after the dataset's
digest and the cohort's filters), so that a report of one clinic of a registry reads that
clinic, not the registry.

A report uses a cache only when its environment names one (``KO_DATASET_CACHE``, set by the
batch for its renders, and by ``ketamine-outcomes report``, which validates the data before
its kernel starts and writes them, and the cohort's patients, into a cache of its own that
it removes when it ends); a report rendered otherwise loads and validates its data itself.
Because ``meta.pickle`` is unpickled, a cache root must belong to the user and be writable
by nobody else (the batch makes its own with :func:`tempfile.mkdtemp`, mode 0700); a root
that is not is refused.

Examples
--------
>>> import tempfile
>>> import analysis
>>> from analysis.report.cache import DatasetCache
>>> cache = DatasetCache(tempfile.mkdtemp())
>>> cache.get(analysis.sample_path()) is None                 # nothing written yet
True
>>> entry = cache.put(analysis.load_dataset(analysis.sample_path()), analysis.sample_path())
>>> cached = cache.get(analysis.sample_path())
>>> cached.equals(analysis.load_dataset(analysis.sample_path())), len(cached.patients)
(True, 500)
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..dataset import Dataset, load_dataset, take_chunked
from ..schema import TABLES
from .provenance import data_hashes, package_version

__all__ = ["ENV_VAR", "CacheError", "DatasetCache", "arrow_tables", "dataset_digest", "load_validated",
           "load_cohort_entry"]

#: environment variable naming the cache root a report reads its dataset from
ENV_VAR = "KO_DATASET_CACHE"
_META = "meta.pickle"


class CacheError(RuntimeError):
    """A cache root that cannot be trusted or used."""


def dataset_digest(folder: str | Path) -> str:
    """SHA-256 naming a dataset folder's cache entry: the package version and every input file's hash.

    Examples
    --------
    >>> import analysis
    >>> from analysis.report.cache import dataset_digest
    >>> len(dataset_digest(analysis.sample_path()))
    64
    """
    payload = json.dumps({"package_version": package_version(), "files": data_hashes(folder)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class DatasetCache:
    """Validated datasets under ``root``, one folder per input digest (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _checked_root(self) -> Path:
        try:
            info = self.root.stat()
        except FileNotFoundError:
            raise CacheError(f"dataset cache {self.root}: the folder does not exist") from None
        if not stat.S_ISDIR(info.st_mode):
            raise CacheError(f"dataset cache {self.root}: not a folder")
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise CacheError(f"dataset cache {self.root}: must belong to this user and be writable by nobody else "
                             f"(owner uid {info.st_uid}, mode {stat.filemode(info.st_mode)}); expected uid "
                             f"{os.getuid()} and no group or other write permission")
        return self.root

    def entry(self, folder: str | Path) -> Path:
        """Where the entry of the dataset in ``folder`` is (whether or not it exists)."""
        return self.root / dataset_digest(folder)

    def get(self, folder: str | Path) -> Dataset | None:
        """The validated dataset of ``folder`` from the cache, or None when it has no entry."""
        return self._read(self._checked_root() / dataset_digest(folder), folder)

    def _read(self, entry: Path, folder: str | Path) -> Dataset | None:
        if not (entry / _META).is_file():
            return None
        with open(entry / _META, "rb") as handle:
            meta = pickle.load(handle)
        tables = {name: pd.read_parquet(entry / f"{name}.parquet") for name in TABLES}
        return Dataset(**tables, report=meta["report"], source=str(folder),
                       instrument_registry=meta["instrument_registry"])

    def put(self, dataset: Dataset, folder: str | Path) -> Path:
        """Write ``dataset`` (validated from ``folder``) as the entry of ``folder``; returns the entry.

        An entry already in place is kept (same digest, same content)."""
        return self._write(arrow_tables(dataset), dataset, self._checked_root() / dataset_digest(folder))

    def _write(self, tables: dict[str, pa.Table], dataset: Dataset, entry: Path) -> Path:
        if (entry / _META).is_file():
            return entry
        partial = Path(tempfile.mkdtemp(prefix=f".{entry.name[:12]}-", dir=self.root))
        try:
            for name, table in tables.items():
                pq.write_table(table, partial / f"{name}.parquet")
            with open(partial / _META, "wb") as handle:   # last: an entry is complete once it has its meta
                pickle.dump({"report": dataset.report, "instrument_registry": dataset.instrument_registry}, handle)
            try:
                os.rename(partial, entry)
            except OSError:
                if not (entry / _META).is_file():          # not another writer's complete entry: a real error
                    raise
        finally:
            if partial.exists():
                _remove(partial)
        return entry

    def cohort_entry(self, folder: str | Path, selection: dict) -> Path:
        """Where the entry of one cohort of ``folder`` is: the dataset's digest and the cohort's
        filters (:func:`analysis.report.selection.selection_key`)."""
        payload = json.dumps({"dataset": dataset_digest(folder), "selection": selection}, sort_keys=True)
        return self.root / ("cohort-" + hashlib.sha256(payload.encode()).hexdigest())

    def get_cohort(self, folder: str | Path, selection: dict) -> Dataset | None:
        """One cohort's patients of ``folder`` (validated with the whole dataset), or None."""
        return self._read(self._checked_root() / self.cohort_entry(folder, selection).name, folder)

    def put_cohort(self, dataset: Dataset, keep, folder: str | Path, selection: dict, *,
                   arrow: dict[str, pa.Table] | None = None) -> Path:
        """Write the patients of ``dataset`` (validated from ``folder``) where ``keep`` (one flag
        per row of ``patients``) as the entry of the cohort ``selection``, so that its report
        reads its own patients, not the whole dataset (on a registry, most of a report's time).

        The entry holds the rows ``dataset.subset_rows(keep)`` has. They are taken from the
        dataset's Arrow tables (``arrow``: :func:`arrow_tables` of ``dataset``, made once when
        many cohorts of it are written): a pandas cohort's conversion to Arrow, a few
        milliseconds a table, was most of a 200-cohort batch's planning."""
        arrow = arrow_tables(dataset) if arrow is None else arrow
        positions = dataset.row_positions(keep)
        tables = {name: pa.table([take_chunked(column, positions[name]) for column in table.columns],
                                 schema=table.schema) for name, table in arrow.items()}
        return self._write(tables, dataset, self._checked_root() / self.cohort_entry(folder, selection).name)

    def load(self, folder: str | Path) -> Dataset:
        """The validated dataset of ``folder``: from the cache, or loaded, validated and written to it."""
        cached = self.get(folder)
        if cached is not None:
            return cached
        dataset = load_dataset(folder)
        self.put(dataset, folder)
        return dataset


def arrow_tables(dataset: Dataset) -> dict[str, pa.Table]:
    """The tables of ``dataset`` as Arrow, with the pandas metadata that reads them back with
    their dtypes (most columns without a copy: pandas keeps text in Arrow already).

    Examples
    --------
    >>> import analysis
    >>> from analysis.report.cache import arrow_tables
    >>> arrow_tables(analysis.load_dataset(analysis.sample_path()))["patients"].num_rows
    500
    """
    return {name: pa.Table.from_pandas(table, preserve_index=False) for name, table in dataset.tables.items()}


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=False)


def load_validated(folder: str | Path) -> Dataset:
    """The validated dataset in ``folder``, from the cache named by ``KO_DATASET_CACHE`` if set.

    Without the variable this is :func:`analysis.load_dataset`. With it, the cache entry is
    read (and written first if missing). Invalid data raise
    :class:`~analysis.problems.DataValidationError` either way.

    Examples
    --------
    >>> import analysis
    >>> from analysis.report.cache import load_validated
    >>> load_validated(analysis.sample_path()).patients.shape[0]
    500
    """
    root = os.environ.get(ENV_VAR)
    if not root:
        return load_dataset(folder)
    return DatasetCache(root).load(folder)


def load_cohort_entry(folder: str | Path, selection: dict) -> Dataset | None:
    """One cohort of ``folder`` from the cache named by ``KO_DATASET_CACHE``, as the batch's
    planning wrote it; None without the variable or without such an entry."""
    root = os.environ.get(ENV_VAR)
    return DatasetCache(root).get_cohort(folder, selection) if root else None
