"""``derive_outcomes`` by partitions of patients: in bounded memory, or on a Dask cluster.

Every outcome is per patient (a course, its intervals, its sessions), so the derivation of
a dataset is the derivations of disjoint groups of its patients put together. A partition
is a contiguous block of the patients table with all their sessions, assessments and
medications. The parts are combined so that the result equals ``derive_outcomes`` on the
whole dataset, table by table, row by row and column by column:

* per-patient tables (``courses``, ``relapse``, ``durability`` and any other table of
  :class:`~analysis.outcomes.Outcomes` but those below) are concatenated in partition
  order, which is the patients table's order;
* ``attrition``: the counts of each step are summed over the partitions;
* ``exclusions``: ordered by step, then by patient, as the whole-dataset table;
* ``sessions``: back in the order of the dataset's sessions table;
* exposure columns (``drug_*``, ``class_*``): a drug nobody in a partition takes has no
  column there; it is added (False) at its place, so every part has the whole dataset's
  columns in the same order.

:func:`derive_outcomes_partitioned` runs the partitions one after the other in this
process (peak memory: one partition's working arrays, not the whole dataset's);
:func:`derive_outcomes_dask` runs them as tasks on Dask DataFrames partitioned by patient
(``pip install ketamine-outcomes[distributed]``), for example on a cluster, and
:func:`to_dask` makes such DataFrames from a loaded dataset.
"""

from __future__ import annotations

import ctypes
import dataclasses
import sys
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..dataset import Dataset
from ..instruments import InstrumentRegistry, default_registry
from ..problems import ValidationReport
from ..schema import TABLES
from .derive import Outcomes, derive_outcomes
from .exposure import exposure_column

__all__ = ["partition_dataset", "derive_outcomes_partitioned", "to_dask", "derive_outcomes_dask",
           "combine_outcomes"]

#: patients per partition when neither ``n_partitions`` nor ``partition_size`` is given
DEFAULT_PARTITION_SIZE = 100_000
_ROW = "_row"  # the column carrying a session's row in the whole dataset (dropped at the end)


# ----------------------------------------------------------------------------------------
# splitting
# ----------------------------------------------------------------------------------------
def _partition_bounds(n_patients: int, n_partitions: int | None, partition_size: int | None) -> np.ndarray:
    """Start of each block of patients (and the end), blocks as equal as possible."""
    if n_partitions is not None and partition_size is not None:
        raise ValueError("give n_partitions or partition_size, not both")
    if n_partitions is None:
        size = DEFAULT_PARTITION_SIZE if partition_size is None else partition_size
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
            raise ValueError(f"partition_size must be a positive whole number of patients, got {size!r}")
        n_partitions = max(1, -(-n_patients // int(size)))
    if not isinstance(n_partitions, (int, np.integer)) or isinstance(n_partitions, bool) or n_partitions < 1:
        raise ValueError(f"n_partitions must be a positive whole number, got {n_partitions!r}")
    n_partitions = int(min(n_partitions, max(n_patients, 1)))
    return np.linspace(0, n_patients, n_partitions + 1).round().astype(np.int64)


def _patient_positions(patient_ids: pd.Series, known: pd.Series) -> np.ndarray:
    """Row of each ``patient_ids`` value in ``known`` (unique ids), -1 where it is not there:
    ``pd.Index(known).get_indexer(patient_ids)``, for text ids by Arrow's hash lookup (no
    Python string per row: on 25 million assessments that is seconds and gigabytes less)."""
    if not (isinstance(patient_ids.dtype, pd.StringDtype) and isinstance(known.dtype, pd.StringDtype)
            and known.is_unique):  # Series.is_unique counts in Arrow; an Index would make a Python string per id
        return pd.Index(known).get_indexer(patient_ids)
    values = pa.array(patient_ids, type=pa.large_string(), from_pandas=True)
    value_set = pa.array(known, type=pa.large_string(), from_pandas=True)
    found = pc.index_in(values, value_set=value_set, skip_nulls=not known.isna().any())
    if found.null_count:
        found = pc.fill_null(found, -1)
    # Arrow's int32 positions as they are (a million patients fit): half the memory of int64
    return found.to_numpy(zero_copy_only=False)


def _block_of_rows(patient_ids: pd.Series, code: np.ndarray, block_of_patient: np.ndarray, table: str) -> np.ndarray:
    if (code < 0).any():
        first = patient_ids.iloc[int(np.flatnonzero(code < 0)[0])]
        raise ValueError(f"{table}: patient_id {first!r} is not in the patients table; partitions need every row's "
                         "patient (load the dataset with analysis.load_dataset, which checks this)")
    return block_of_patient[code]


def _split_blocks(dataset: Dataset, bounds: np.ndarray):
    """The four tables of every block and, per table, each row's patient as its row in the
    block's patients table; one block at a time (a generator: only the block being derived
    is copied). Each table keeps its rows' order and its original index (the row in the
    whole table)."""
    patients = dataset.patients
    n_blocks = len(bounds) - 1
    block_of_patient = np.repeat(np.arange(n_blocks), np.diff(bounds))
    rows = {}
    sorted_tables = set()  # tables in patient order: `rows` holds their rows per patient
    for name in ("sessions", "assessments", "medications"):
        table = getattr(dataset, name)
        code = _patient_positions(table["patient_id"], patients["patient_id"])
        if len(code) and code[0] >= 0 and (code[1:] >= code[:-1]).all():
            # a table in patient order (every patient known: the first is the smallest):
            # blocks are row ranges, found without a block number per row, and each row's
            # patient is kept as rows per patient (a block's codes are those counts spelt out)
            rows[name] = (None, np.searchsorted(code, bounds), np.bincount(code, minlength=len(patients)))
            sorted_tables.add(name)
            del code
            continue
        block = _block_of_rows(table["patient_id"], code, block_of_patient, name)
        if len(block) < 2 or (np.diff(block) >= 0).all():  # a table in patient order: blocks are row ranges
            order = None
            starts = np.searchsorted(block, np.arange(n_blocks + 1))
        else:
            order = np.argsort(block, kind="stable")  # rows of a block together, in table order
            starts = np.searchsorted(block[order], np.arange(n_blocks + 1))
        rows[name] = (order, starts, code)
    for b in range(n_blocks):
        tables = {"patients": patients.iloc[bounds[b]:bounds[b + 1]]}
        codes = {}
        for name, (order, starts, code) in rows.items():
            take = slice(starts[b], starts[b + 1]) if order is None else order[starts[b]:starts[b + 1]]
            tables[name] = getattr(dataset, name).iloc[take]
            if name in sorted_tables:
                counts = code[bounds[b]:bounds[b + 1]]
                codes[name] = np.repeat(np.arange(len(counts)), counts)
            else:
                codes[name] = code[take] - bounds[b]
        yield tables, codes
        del tables, codes  # before the next block is copied


def _split_tables(dataset: Dataset, bounds: np.ndarray):
    """The four tables of every block, one block at a time (:func:`_split_blocks`)."""
    for tables, _ in _split_blocks(dataset, bounds):
        yield tables


def partition_dataset(dataset: Dataset, *, n_partitions: int | None = None,
                      partition_size: int | None = None) -> list[Dataset]:
    """Split a dataset into datasets of contiguous blocks of its patients.

    Parameters
    ----------
    dataset : Dataset
    n_partitions : int, optional
        How many blocks (as equal as possible; at most one per patient).
    partition_size : int, optional
        Patients per block instead (default 100,000 when neither is given).

    Returns
    -------
    list of Dataset
        Each with its patients' rows of every table, in the table's order; the tables keep
        the whole dataset's row labels as their index.

    Examples
    --------
    >>> import analysis
    >>> from analysis.outcomes.partitioned import partition_dataset
    >>> ds = analysis.load_dataset("data/sample")
    >>> [len(part.patients) for part in partition_dataset(ds, n_partitions=3)]
    [167, 166, 167]
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"partition_dataset needs an analysis.Dataset, got {type(dataset).__name__}")
    bounds = _partition_bounds(len(dataset.patients), n_partitions, partition_size)
    return [Dataset(**tables, report=dataset.report, source=dataset.source,
                    instrument_registry=dataset.instrument_registry)
            for tables in _split_tables(dataset, bounds)]


# ----------------------------------------------------------------------------------------
# one partition, and putting the parts together
# ----------------------------------------------------------------------------------------
def _exposure_columns(medications: pd.DataFrame) -> list[str]:
    """The exposure columns ``derive_outcomes`` makes for these medications, in its order
    (each distinct drug and class named once)."""
    meds = medications.dropna(subset=["drug"]) if len(medications) else medications
    if len(meds) == 0:
        return ["benzo_dze_mg"]
    drugs = sorted({exposure_column("drug", x) for x in meds["drug"].unique()})
    classes = sorted({exposure_column("class", x) for x in meds["drug_class"].dropna().unique()})
    return drugs + classes + ["benzo_dze_mg"]


def _coded_patients(tables: Mapping[str, pd.DataFrame], codes: Mapping[str, np.ndarray] | None) -> dict:
    """The partition's tables with ``patient_id`` of sessions, assessments and medications as
    a categorical whose categories are the partition's patients (in their order).

    ``derive_outcomes`` only matches these ids with the patients' ids (lookups, groups,
    joins), and a categorical is matched by its few categories and integer codes instead of
    by millions of strings; the values are the same. ``codes`` (each row's patient as its
    row in the partition's patients table) saves the lookup when the split has it. Tables
    whose ids cannot be coded so (a patient not in the partition, ids that are not text)
    are left as they are.
    """
    out = dict(tables)
    known = tables["patients"]["patient_id"]
    if not isinstance(known.dtype, pd.StringDtype) or known.isna().any() or not known.is_unique:
        return out
    dtype = pd.CategoricalDtype(pd.Index(known.array))
    for name in ("sessions", "assessments", "medications"):
        frame = tables[name]
        code = codes.get(name) if codes is not None else None
        if code is None:
            if not isinstance(frame["patient_id"].dtype, pd.StringDtype):
                continue
            code = _patient_positions(frame["patient_id"], known)
        if len(code) and code.min() < 0:
            continue
        coded = pd.Categorical.from_codes(code.astype(np.int32 if len(known) < 2**31 else np.int64), dtype=dtype)
        out[name] = frame.assign(patient_id=pd.Series(coded, index=frame.index))
    return out


def _derive_part(tables: Mapping[str, pd.DataFrame], registry: InstrumentRegistry, report: ValidationReport,
                 instrument: str, definitions: dict, codes: Mapping[str, np.ndarray] | None = None, *,
                 slim: bool = False) -> Outcomes:
    """``derive_outcomes`` on one partition; its sessions table carries the whole-table row.

    The derivation runs on the partition with its patients coded (:func:`_coded_patients`);
    the result's tables are those of the partition as given: a column that comes out with
    the coded ids' categorical dtype (the sessions table's ``patient_id``) is given back the
    ids' own dtype. With ``slim`` the sessions table comes without ``patient_id`` and
    ``day`` (the dataset's own columns: :func:`_combine` takes them from the dataset).
    """
    rows = tables["sessions"].index.to_numpy()
    id_dtype = tables["sessions"]["patient_id"].dtype
    coded = _coded_patients(tables, codes)
    part = Dataset(**{n: t.reset_index(drop=True) for n, t in coded.items()}, report=report,
                   instrument_registry=registry)
    out = derive_outcomes(part, instrument, **definitions)
    del part, coded
    replaced = {}
    if slim:
        replaced["sessions"] = out.sessions.drop(columns=list(_DATASET_SESSION_COLUMNS))
    for f in dataclasses.fields(out):
        table = replaced.get(f.name, getattr(out, f.name))
        if not isinstance(table, pd.DataFrame):
            continue
        back = {c: table[c].astype(id_dtype) for c in table.columns
                if isinstance(table[c].dtype, pd.CategoricalDtype) and c == "patient_id"}
        if back:
            replaced[f.name] = table.assign(**back)
    sessions = replaced.get("sessions", out.sessions).copy(deep=False)
    sessions[_ROW] = rows
    replaced["sessions"] = sessions
    return dataclasses.replace(out, **replaced)


def _with_columns(frame: pd.DataFrame, exposure: Sequence[str]) -> pd.DataFrame:
    """Add the exposure columns a partition lacks (False), each before the next one it has."""
    if "benzo_dze_mg" not in frame.columns:
        return frame
    missing = [c for c in exposure if c not in frame.columns]
    if not missing:
        return frame
    # a shallow copy (copy-on-write keeps the given frame as it is): a deep one would stack the
    # part's columns into blocks, which _concat could then not free one column at a time
    frame = frame.copy(deep=False)
    for col in reversed(missing):  # later columns first, so each finds its successor in place
        after = exposure[exposure.index(col) + 1:]
        successor = next(c for c in after if c in frame.columns)
        frame.insert(frame.columns.get_loc(successor), col, np.zeros(len(frame), dtype=bool))
    return frame


def _concat(frames: list[pd.DataFrame], *, consume: bool = False,
            compacted: Sequence[Mapping[str, object]] | None = None) -> pd.DataFrame:
    """Concatenate with a fresh index; empty parts only shape the result when all are empty
    (their column dtypes would otherwise change the others').

    With ``consume`` the parts are emptied column by column as the result is made (each
    column of the parts is let go once it is concatenated), so when every column of the
    parts owns its memory (:func:`_own_columns`) the parts and the result are not held
    whole at the same time. ``compacted`` gives, per part, the text columns it holds as
    categories (:func:`_compact`) and their own dtypes: each is given back its text as its
    turn comes, so the parts' text is held once, as codes, until then.
    """
    compacted = list(compacted) if compacted is not None else [{}] * len(frames)
    keep = [i for i, f in enumerate(frames) if len(f)]
    if len(keep) <= 1:
        i = keep[0] if keep else 0
        return _decoded(frames[i], compacted[i]).reset_index(drop=True)
    full, comp = [frames[i] for i in keep], [compacted[i] for i in keep]
    columns = list(full[0].columns)
    if not consume or any(list(f.columns) != columns for f in full):
        return pd.concat(_same_dtypes([_decoded(f, c) for f, c in zip(full, comp)]), ignore_index=True)
    out = {}
    for col in columns:
        pieces = [f.pop(col) for f in full]
        pieces = [_restored(p, c[col]) if col in c else p for p, c in zip(pieces, comp)]
        out[col] = pd.concat(_same_dtype_pieces(pieces), ignore_index=True)
        del pieces
        # the parts' pieces (a few MB each) were freed into the C heap, where the next whole
        # column (tens of MB, mapped on its own) cannot reuse them: give them back now
        _release_memory()
    return pd.DataFrame(out, copy=False)


def _decoded(frame: pd.DataFrame, compacted: Mapping[str, object]) -> pd.DataFrame:
    """The frame with its compacted columns (:func:`_compact`) back in their own dtypes."""
    if not compacted:
        return frame
    return frame.assign(**{col: _restored(frame[col], dtype) for col, dtype in compacted.items()})


def _restored(values: pd.Series, dtype) -> pd.Series:
    """A column compacted by :func:`_compact` back in its own ``dtype``."""
    if isinstance(values.dtype, pd.SparseDtype):
        return pd.Series(values.array.to_dense(), index=values.index, name=values.name)
    return _text_of(values, dtype)


def _text_of(values: pd.Series, dtype) -> pd.Series:
    """A text column held as categories (:func:`_compact`) back as text of ``dtype``: the
    categories taken by the codes in Arrow (``Categorical.astype`` would make a Python
    string per row)."""
    codes = values.cat.codes.to_numpy()
    categories = pa.array(values.cat.categories.array, type=pa.large_string())
    text = categories.take(pa.array(codes, mask=codes < 0))
    return pd.Series(pd.array(text, dtype=dtype), index=values.index, name=values.name)


def _compact(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, object]]:
    """:func:`_own_columns`, with every text column held as categories and rare flags as
    sparse arrays, and those columns' dtypes (to give them back, :func:`_concat`).

    A part's text columns (ids, sites, routes, phases, ...: a few hundred distinct values
    over hundreds of thousands of rows) take a fraction of their memory as codes, and flags
    that are mostly False (exposure to each drug) as the positions where they are True; the
    ten parts of a registry's derivation are held until they are put together.
    """
    columns, dtypes = {}, {}
    for col in frame.columns:
        values = frame[col]
        if isinstance(values.dtype, pd.StringDtype):
            dtypes[col] = values.dtype
            columns[col] = pd.Series(pd.Categorical(values), index=frame.index, name=col)
        elif values.dtype == np.bool_ and len(values) and np.count_nonzero(values.to_numpy()) < len(values) // 10:
            # a flag that is mostly False (exposure to one drug): the rows where it is True
            dtypes[col] = values.dtype
            columns[col] = pd.Series(pd.arrays.SparseArray(values.to_numpy(), fill_value=False), index=frame.index,
                                     name=col)
        else:
            columns[col] = values.copy()
    return pd.DataFrame(columns, index=frame.index, copy=False), dtypes


def _own_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every column in memory of its own (a column of a block of several
    columns keeps the whole block alive), so that :func:`_concat` can free a part's columns
    one at a time."""
    return pd.DataFrame({c: frame[c].copy() for c in frame.columns}, index=frame.index, copy=False)


def _release_memory() -> None:
    """Give memory freed by the derivation of a block back to the system.

    The arrays of one block (a few megabytes each) are too small to be mapped on their own,
    so the C allocator keeps them in its heap when they are freed; over ten blocks the
    process grew by gigabytes it no longer used (1.2 GiB given back by ``malloc_trim`` at
    the end of the 1,000,000-patient derivation). glibc only: elsewhere nothing is done.
    """
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _malloc_trim():
    """glibc's ``malloc_trim``, or None when the C library has none (not Linux, musl)."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is False:
        _MALLOC_TRIM = None
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None)
            _MALLOC_TRIM = getattr(libc, "malloc_trim", None)
    return _MALLOC_TRIM


_MALLOC_TRIM = False  # not looked up yet


def _same_dtypes(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Give a column that is missing throughout a part the dtype the other parts infer for
    it (a part whose values are all missing gets ``object`` where the whole table, having
    some values, gets text): the dtype the whole-dataset derivation infers."""
    out = list(frames)
    for col in frames[0].columns:
        dtypes = [f[col].dtype for f in frames]
        if all(d == dtypes[0] for d in dtypes):
            continue
        informed = {f[col].dtype for f in frames if f[col].notna().any()}
        if len(informed) != 1:
            continue  # parts with values disagree: leave it to concat, as the whole table would
        target = informed.pop()
        for i, f in enumerate(out):
            if f[col].dtype != target and not f[col].notna().any():
                out[i] = f.astype({col: target})
    return out


def _same_dtype_pieces(pieces: list[pd.Series]) -> list[pd.Series]:
    """:func:`_same_dtypes` for the parts of one column."""
    dtypes = [p.dtype for p in pieces]
    if all(d == dtypes[0] for d in dtypes):
        return pieces
    informed = {p.dtype for p in pieces if p.notna().any()}
    if len(informed) != 1:
        return pieces
    target = informed.pop()
    return [p.astype(target) if p.dtype != target and not p.notna().any() else p for p in pieces]


def _combine_attrition(frames: list[pd.DataFrame]) -> pd.DataFrame:
    first = frames[0]
    for f in frames[1:]:
        if list(f["step"]) != list(first["step"]) or list(f["reason"]) != list(first["reason"]):
            raise ValueError("the partitions' attrition tables have different steps: they were not derived with "
                             "the same instrument and definitions")
    out = first.copy()
    for col in ("n_in", "n_excluded", "n_remaining"):
        out[col] = np.sum([f[col].to_numpy() for f in frames], axis=0).astype(first[col].dtype)
    return out


def _combine_exclusions(frames: list[pd.DataFrame], steps: Sequence[str]) -> pd.DataFrame:
    table = _concat(frames)
    rank = pd.Index(list(dict.fromkeys(steps))).get_indexer(table["step"])
    if (rank < 0).any():
        raise ValueError(f"exclusions: step {table['step'].iloc[int(np.flatnonzero(rank < 0)[0])]!r} is not a step "
                         "of the attrition table")
    return table.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)


def combine_outcomes(parts: Sequence[Outcomes], exposure: Sequence[str]) -> Outcomes:
    """Put the outcomes of partitions of patients (in the patients table's order) together.

    ``exposure`` lists the exposure columns of the whole dataset in ``derive_outcomes``'
    order. The parts' ``sessions`` tables carry the whole-table row of every session (as
    made by the partitioned derivations); the result's sessions are in that order.
    """
    if not parts:
        raise ValueError("combine_outcomes needs at least one partition")
    return _combine(parts[0], [_tables_of(p) for p in parts], exposure)


def _tables_of(outcomes: Outcomes) -> dict[str, pd.DataFrame]:
    """The tables of an :class:`Outcomes`, by field name, in field order."""
    return {f.name: getattr(outcomes, f.name) for f in dataclasses.fields(Outcomes)
            if isinstance(getattr(outcomes, f.name), pd.DataFrame)}


def _combine(first: Outcomes, tables_of_parts: list[dict[str, pd.DataFrame]], exposure: Sequence[str], *,
             dataset: Dataset | None = None, session_starts: Sequence[int | None] | None = None,
             compacted: Sequence[Mapping[str, Mapping[str, object]]] | None = None) -> Outcomes:
    """:func:`combine_outcomes` on the parts' tables (``first`` gives the other fields).

    Each table is taken out of the parts' dicts as it is put together, so when nothing else
    refers to the parts (:func:`derive_outcomes_partitioned`), a table's parts are freed
    once it is combined: the peak is the result plus one table's parts, not twice the result.

    With ``dataset`` (the whole dataset the parts were derived from, in this process: parts
    made by :func:`_slim_part`), the columns that ``derive_outcomes`` takes unchanged from
    elsewhere are shared instead of put together from copies: the sessions table's
    ``patient_id`` and ``day`` are the dataset's columns, ``relapse`` is made from the
    combined ``durability`` and ``relapse_competing`` from it, as ``derive_outcomes`` makes
    them; and the parts are consumed column by column.
    """
    steps = list(tables_of_parts[0]["attrition"]["step"])
    consume = dataset is not None
    tables = {}
    for name in list(tables_of_parts[0]):
        frames = [_with_columns(t.pop(name), exposure) for t in tables_of_parts]
        comp = [c.get(name, {}) for c in compacted] if compacted is not None else None
        if name == "attrition":
            tables[name] = _combine_attrition(frames)
        elif name == "exclusions":
            tables[name] = _combine_exclusions(frames, steps)
        elif name == "sessions":
            starts = session_starts if session_starts is not None else [None] * len(frames)
            if _in_row_order(frames, starts):  # a registry sorted by patient: the parts in order
                table = _concat(frames, consume=consume, compacted=comp).reset_index(drop=True)
            else:
                table = _concat(_with_rows(frames, starts), consume=consume, compacted=comp)
                row = table[_ROW].to_numpy()
                if len(row) > 1 and not (np.diff(row) > 0).all():
                    table = table.iloc[np.argsort(row, kind="stable")]
                table = table.drop(columns=[_ROW]).reset_index(drop=True)
            if consume:  # every session of the dataset, in its order: its own columns, shared
                for i, col in enumerate(_DATASET_SESSION_COLUMNS):
                    table.insert(i, col, dataset.sessions[col].reset_index(drop=True))
            tables[name] = table
        elif name == "relapse" and consume:
            tables[name] = None  # from durability, below
        elif name == "relapse_competing" and consume:
            tables[name] = _concat(frames, consume=True, compacted=comp)  # its own columns (_slim_part)
        else:
            tables[name] = _concat(frames, consume=consume, compacted=comp)
        del frames
        if consume:
            _release_memory()
    if consume:
        durability = tables["durability"]
        relapse = durability[durability["interval"] == 1].drop(columns=["interval"]).reset_index(drop=True)
        own = tables["relapse_competing"]
        competing = relapse.drop(columns=[c for c in _RELAPSE_ONLY if c in relapse])
        for col in own.columns:
            competing[col] = own[col]
        tables["relapse"], tables["relapse_competing"] = relapse, competing
    return dataclasses.replace(first, **tables)


#: the sessions table's columns that ``derive_outcomes`` copies from the dataset's sessions
_DATASET_SESSION_COLUMNS = ("patient_id", "day")
#: the columns of ``relapse`` that ``relapse_competing`` does not take from it
_RELAPSE_ONLY = ("time", "event", "lower", "upper")


def _slim_part(tables: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], int | None, dict]:
    """A partition's tables (:func:`_derive_part` with ``slim``) without what :func:`_combine`
    makes from the whole dataset and the combined tables: ``relapse`` (rows of ``durability``)
    is left empty, ``relapse_competing`` keeps its own columns (those after ``relapse``'s);
    every column in memory of its own (:func:`_own_columns`), text columns as categories
    (:func:`_compact`). Also the first row of the part's sessions in the whole table when
    they are a range of its rows (then without :data:`_ROW`), else None, and per table the
    compacted columns' own dtypes.

    ``relapse_competing`` must be ``relapse`` without :data:`_RELAPSE_ONLY` followed by its
    own columns, as ``derive_outcomes`` makes it; anything else is an error (it would not be
    put together right).
    """
    relapse, competing = tables["relapse"], tables["relapse_competing"]
    base = [c for c in relapse.columns if c not in _RELAPSE_ONLY]
    if list(competing.columns[:len(base)]) != base or len(competing) != len(relapse):
        raise ValueError("relapse_competing is not the relapse table followed by its own columns; cannot share them")
    out, compacted = {}, {}
    start = None
    for name, frame in tables.items():
        if name == "relapse":
            out[name] = frame.iloc[:0].copy()  # a view would keep the part's whole table alive
            continue
        if name == "relapse_competing":
            frame = frame[list(frame.columns[len(base):])]
        elif name == "sessions":
            row = frame[_ROW].to_numpy()
            if len(row) and (row == row[0] + np.arange(len(row))).all():  # a range of rows: its start says it all
                start = int(row[0])
                frame = frame.drop(columns=[_ROW])
        if name in ("attrition", "exclusions"):  # small, and put together by rules of their own
            out[name] = _own_columns(frame)
        else:
            out[name], compacted[name] = _compact(frame)
    return out, start, compacted


def _with_rows(frames: list[pd.DataFrame], starts: Sequence[int | None]) -> list[pd.DataFrame]:
    """The parts' sessions each with its rows in the whole table (:data:`_ROW`): those
    :func:`_slim_part` left without it are a range from their start."""
    return [f if _ROW in f.columns else f.assign(**{_ROW: start + np.arange(len(f), dtype=np.int64)})
            for f, start in zip(frames, starts)]


def _in_row_order(frames: list[pd.DataFrame], starts: Sequence[int | None]) -> bool:
    """Whether the parts' sessions, one after the other, are the whole table's rows in order
    (every non-empty part a range, each starting where the one before ends, from row 0)."""
    expected = 0
    for frame, start in zip(frames, starts):
        if not len(frame):
            continue
        if start is None or start != expected:
            return False
        expected += len(frame)
    return True


# ----------------------------------------------------------------------------------------
# in this process
# ----------------------------------------------------------------------------------------
def derive_outcomes_partitioned(dataset: Dataset, instrument: str = "PHQ-9", *, n_partitions: int | None = None,
                                partition_size: int | None = None, **definitions) -> Outcomes:
    """:func:`~analysis.outcomes.derive_outcomes` one block of patients at a time.

    The result equals ``derive_outcomes(dataset, instrument, **definitions)`` (every table,
    row order, columns and dtypes); the working arrays of the derivation are those of one
    block, so the peak memory on a large registry is the dataset plus one block's
    derivation and the (smaller) result tables.

    Parameters
    ----------
    dataset : Dataset
    instrument : str, default "PHQ-9"
    n_partitions, partition_size : int, optional
        As :func:`partition_dataset` (default blocks of 100,000 patients).
    **definitions
        As :func:`~analysis.outcomes.derive_outcomes`.

    Examples
    --------
    >>> import analysis
    >>> from analysis.outcomes.partitioned import derive_outcomes_partitioned
    >>> ds = analysis.load_dataset("data/sample")
    >>> parts = derive_outcomes_partitioned(ds, "PHQ-9", n_partitions=4)
    >>> whole = analysis.derive_outcomes(ds, "PHQ-9")
    >>> parts.courses.equals(whole.courses), parts.durability.equals(whole.durability)
    (True, True)
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"derive_outcomes_partitioned needs an analysis.Dataset, got {type(dataset).__name__}")
    bounds = _partition_bounds(len(dataset.patients), n_partitions, partition_size)
    if len(bounds) == 2:  # one block: nothing to put together
        return derive_outcomes(dataset, instrument, **definitions)
    exposure = _exposure_columns(dataset.medications)
    first, parts, starts, compacted = None, [], [], []
    for tables, codes in _split_blocks(dataset, bounds):
        out = _derive_part(tables, dataset.instrument_registry, dataset.report, instrument, definitions, codes,
                           slim=True)
        del tables, codes
        if first is None:  # the other fields; its tables are replaced by the combined ones
            first = dataclasses.replace(out, **{name: frame.iloc[:0].copy()  # not views: they keep the tables
                                                for name, frame in _tables_of(out).items()})
        part, start, dtypes = _slim_part(_tables_of(out))
        parts.append(part)
        starts.append(start)
        compacted.append(dtypes)
        del out, part
        _release_memory()
    return _combine(first, parts, exposure, dataset=dataset, session_starts=starts, compacted=compacted)


# ----------------------------------------------------------------------------------------
# on Dask
# ----------------------------------------------------------------------------------------
def _dask_dataframe():
    try:
        import dask
        import dask.dataframe as dd
    except ImportError as exc:  # an extra, not a core dependency
        raise ImportError("the Dask derivation needs dask[dataframe]: pip install 'ketamine-outcomes[distributed]'") from exc
    return dask, dd


def to_dask(dataset: Dataset, *, n_partitions: int | None = None, partition_size: int | None = None) -> dict:
    """The dataset's four tables as Dask DataFrames partitioned by patient.

    Partition ``i`` of every table holds the rows of the same block of patients (contiguous
    in the patients table); the index is the row in the whole table. This is the layout
    :func:`derive_outcomes_dask` expects (a registry written per block of patients, one
    Parquet file per table and block, read with ``dask.dataframe.read_parquet``, has it
    too).

    Examples
    --------
    >>> import analysis
    >>> from analysis.outcomes.partitioned import to_dask
    >>> tables = to_dask(analysis.load_dataset("data/sample"), n_partitions=4)
    >>> tables["sessions"].npartitions
    4
    """
    _, dd = _dask_dataframe()
    bounds = _partition_bounds(len(dataset.patients), n_partitions, partition_size)
    parts = list(_split_tables(dataset, bounds))
    return {name: dd.from_map(_identity, [p[name] for p in parts], meta=getattr(dataset, name).iloc[:0],
                              enforce_metadata=False)
            for name in TABLES}


def _identity(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


def _check_partition(i: int, tables: Mapping[str, pd.DataFrame]) -> None:
    known = pd.Index(tables["patients"]["patient_id"])
    for name in ("sessions", "assessments", "medications"):
        ids = tables[name]["patient_id"]
        outside = known.get_indexer(ids) < 0
        if outside.any():
            first = ids.iloc[int(np.flatnonzero(outside)[0])]
            raise ValueError(f"{name}: partition {i} has {int(outside.sum())} row(s) of patients not in partition {i} "
                             f"of patients (first: patient_id {first!r}); partition every table by the same blocks "
                             "of patients (analysis.outcomes.partitioned.to_dask)")


def _derive_dask_part(i: int, patients, sessions, assessments, medications, registry, instrument, definitions):
    tables = {"patients": patients, "sessions": sessions, "assessments": assessments, "medications": medications}
    _check_partition(i, tables)
    report = ValidationReport(f"partition {i}")
    return _derive_part(tables, registry, report, instrument, definitions)


def _medication_drugs(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["drug", "drug_class"]].drop_duplicates()


def derive_outcomes_dask(tables: Mapping, instrument: str = "PHQ-9", *,
                         instrument_registry: InstrumentRegistry | None = None, **definitions) -> Outcomes:
    """:func:`~analysis.outcomes.derive_outcomes` on Dask DataFrames partitioned by patient.

    Each partition is one task (on the current Dask scheduler: a ``distributed.Client``
    when one is active, else Dask's local threads); the parts are put together in the
    client as :func:`derive_outcomes_partitioned` does, so the result equals the
    single-machine derivation of the same dataset.

    Parameters
    ----------
    tables : mapping of str to dask.dataframe.DataFrame
        ``patients``, ``sessions``, ``assessments`` and ``medications`` of a validated
        dataset (:func:`to_dask`), with the same number of partitions, partition ``i`` of
        every table holding the rows of the patients in partition ``i`` of ``patients``;
        the index of ``sessions`` is the session's row in the whole table. A row whose
        patient is in another partition is an error naming the table and the partition.
    instrument : str, default "PHQ-9"
    instrument_registry : InstrumentRegistry, optional
        The dataset's instruments (``Dataset.instrument_registry``); default the
        process-wide registry.
    **definitions
        As :func:`~analysis.outcomes.derive_outcomes`.

    Examples
    --------
    >>> import analysis
    >>> from analysis.outcomes.partitioned import derive_outcomes_dask, to_dask
    >>> ds = analysis.load_dataset("data/sample")
    >>> out = derive_outcomes_dask(to_dask(ds, n_partitions=4), "PHQ-9", instrument_registry=ds.instrument_registry)
    >>> out.courses.equals(analysis.derive_outcomes(ds, "PHQ-9").courses)
    True
    """
    dask, _ = _dask_dataframe()
    missing = [n for n in TABLES if n not in tables]
    if missing:
        raise ValueError(f"derive_outcomes_dask: missing table(s) {missing}; give patients, sessions, assessments "
                         "and medications")
    counts = {n: tables[n].npartitions for n in TABLES}
    if len(set(counts.values())) != 1:
        raise ValueError(f"derive_outcomes_dask: the tables have different numbers of partitions {counts}; partition "
                         "every table by the same blocks of patients")
    registry = (instrument_registry if instrument_registry is not None else default_registry()).copy()
    pieces = {n: tables[n].to_delayed() for n in TABLES}
    derive = dask.delayed(_derive_dask_part, pure=True)
    tasks = [derive(i, *(pieces[n][i] for n in TABLES), registry, instrument, dict(definitions))
             for i in range(counts["patients"])]
    drugs = [dask.delayed(_medication_drugs, pure=True)(piece) for piece in pieces["medications"]]
    parts, drug_tables = dask.compute(tasks, drugs)
    return combine_outcomes(list(parts), _exposure_columns(pd.concat(drug_tables, ignore_index=True)))
