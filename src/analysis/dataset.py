"""The validated dataset: four typed tables, loaded from a folder or from DataFrames.

Both ways go through the same conversion and validation, so a folder and the DataFrames
read from it give equal :class:`Dataset` objects. A dataset carries its own instrument
registry (``Dataset.instrument_registry``: the process-wide registry as it was when the
dataset was loaded, plus the ``instruments.toml`` beside it); validation and the
derivations use it, and loading never changes the process-wide registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .instruments import Instrument, InstrumentRegistry, default_registry, read_instrument_file
from .problems import DataValidationError, ValidationReport
from .reading import RawTable, find_table_files, read_table_file, special_file_kind
from .schema import TABLES, ColumnSpec
from .validation import fill_medication_classes, validate_table_stream

__all__ = ["Dataset", "load_dataset", "validate", "check_dataset", "category_dtype", "take_chunked"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A validated dataset in format v1.

    Attributes
    ----------
    patients, sessions, assessments, medications : pandas.DataFrame
        The tables with format-v1 types: identifiers and text as pandas ``string``,
        numbers and study days as ``float64``, flags as ``boolean``, and the format's
        category columns (``sex``, ``route``, ``phase``, ``instrument``) as unordered
        pandas ``category`` (:func:`category_dtype`): ``sex``, ``route`` and ``phase`` with
        their allowed values as categories, sorted, whatever the data hold (so tables of
        two datasets, or of two blocks of one, concatenate to ``category``);
        ``instrument`` with the instruments the assessments record, sorted. Categories
        in sorted order sort and group as the text does; a count that lists every
        category (``value_counts()``, ``groupby(..., observed=False)``) also lists those
        no row has. Instruments carry their canonical names (``"PHQ-9"``); routes, phases
        and sex are lower case. ``medications`` is empty when the dataset has none; it
        gains ``drug_class`` (filled from the built-in map) and ``dose_dze_mg``
        (diazepam-equivalent dose).
    report : ValidationReport
        The warnings found while loading (there are no errors in a loaded dataset).
    source : str or None
        The folder it came from, if any.
    instrument_registry : InstrumentRegistry
        The instrument definitions the dataset was validated with and is analysed with: the
        process-wide registry when it was loaded plus its own ``instruments.toml``. Look
        instruments up here (``ds.instrument_registry.get("PHQ-9")``), not in the
        process-wide registry, which does not know the dataset's own definitions.

    Examples
    --------
    >>> import analysis
    >>> ds = analysis.load_dataset("data/sample")
    >>> ds.sessions.groupby("route").size()
    route
    im             199
    intranasal     482
    iv            3911
    sublingual     168
    dtype: int64
    """

    patients: pd.DataFrame
    sessions: pd.DataFrame
    assessments: pd.DataFrame
    medications: pd.DataFrame
    report: ValidationReport = field(repr=False)
    source: str | None = None
    instrument_registry: InstrumentRegistry = field(default_factory=lambda: default_registry().copy(), repr=False)

    @classmethod
    def from_frames(
        cls,
        patients: pd.DataFrame,
        sessions: pd.DataFrame,
        assessments: pd.DataFrame,
        medications: pd.DataFrame | None = None,
        *,
        instruments: InstrumentRegistry | Iterable[Instrument] | str | Path | None = None,
        allow_free_text: Sequence[str] = (),
    ) -> Dataset:
        """Validate in-memory tables and build a dataset (raises DataValidationError on errors).

        Problems in in-memory tables are placed by row (1-based), not by file line.

        Parameters
        ----------
        patients, sessions, assessments, medications : pandas.DataFrame
            The tables (``medications`` optional).
        instruments : InstrumentRegistry, iterable of Instrument, or path, optional
            The instrument definitions of this dataset: a registry (another dataset's
            ``instrument_registry``), instruments added to the process-wide ones, or an
            ``instruments.toml``. Default: the process-wide registry.
        allow_free_text : sequence of str
            Columns whose free text the user explicitly allows: the anonymisation guard does
            not refuse values there that look like e-mail addresses, phone numbers or dates.

        Examples
        --------
        >>> import analysis
        >>> from analysis import Instrument
        >>> ds = analysis.load_dataset("data/sample")
        >>> strict = Instrument("PHQ-9", 0, 27, remission_max=3)
        >>> same = analysis.Dataset.from_frames(**ds.tables, instruments=[strict])
        >>> same.instrument_registry.get("phq9").remission_max, analysis.get_instrument("phq9").remission_max
        (3, 4)
        """
        frames = {"patients": patients, "sessions": sessions, "assessments": assessments}
        if medications is not None:
            frames["medications"] = medications
        report = ValidationReport("in-memory tables")
        raw = {}
        for name, frame in frames.items():
            if not isinstance(frame, pd.DataFrame):
                raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
            raw[name] = RawTable(name, frame.copy(), name, is_csv=False)
        registry = _registry_from(instruments)
        return _build(raw, report, source=None, registry=registry, allow_free_text=allow_free_text)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The four tables by name."""
        return {name: getattr(self, name) for name in TABLES}

    def equals(self, other: object) -> bool:
        """True when every table has the same columns, dtypes and values, and the instruments
        recorded in the assessments have the same definitions in both."""
        if not isinstance(other, Dataset):
            return False
        same_tables = all(a.equals(b) and list(a.columns) == list(b.columns) and (a.dtypes == b.dtypes).all()
                          for a, b in zip(self.tables.values(), other.tables.values()))
        if not same_tables:
            return False
        recorded = self.assessments["instrument"].dropna().unique()
        return all(self.instrument_registry.find(str(n)) == other.instrument_registry.find(str(n)) for n in recorded)

    __eq__ = equals  # type: ignore[assignment]
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(t)} {n}" for n, t in self.tables.items())
        return f"Dataset({counts}{', from ' + self.source if self.source else ''})"

    def instruments(self) -> list[str]:
        """Instruments recorded in the assessments, most frequent first (ties in order of
        first appearance); an instrument that is a category but has no assessment (in a
        :meth:`subset`) is not listed."""
        instrument = self.assessments["instrument"]
        if not isinstance(instrument.dtype, pd.CategoricalDtype):
            return list(instrument.value_counts().index)
        # the text's value_counts: counts in order of first appearance, then sorted by count
        codes = instrument.cat.codes.to_numpy()
        counts = np.bincount(codes[codes >= 0], minlength=len(instrument.cat.categories))
        seen = pd.unique(codes[codes >= 0])
        by_appearance = pd.Series(counts[seen], index=[str(instrument.cat.categories[c]) for c in seen])
        return list(by_appearance.sort_values(ascending=False).index)

    def subset(self, patient_ids) -> Dataset:
        """The same dataset restricted to some patients (e.g. one site's).

        The tables keep their dtypes, categories included: an instrument none of these
        patients has is still a category of ``instrument`` (not listed by
        :meth:`instruments`).

        Examples
        --------
        >>> import analysis
        >>> ds = analysis.load_dataset("data/sample")
        >>> site_a = ds.subset(ds.patients.loc[ds.patients.site == "site_A", "patient_id"])
        >>> len(site_a.patients)
        218
        """
        keep = pd.Index(pd.Series(patient_ids, dtype="string").unique())
        tables = {n: t[t["patient_id"].isin(keep)].reset_index(drop=True) for n, t in self.tables.items()}
        return Dataset(**tables, report=self.report, source=self.source, instrument_registry=self.instrument_registry)

    def subset_rows(self, keep) -> Dataset:
        """The same dataset restricted to the patients where ``keep`` (one flag per row of
        ``patients``) is true: the rows :meth:`subset` keeps, in the same order.

        Each table's rows are matched to their patient once per dataset
        (:attr:`patient_rows`), so selecting many cohorts of one large dataset (a batch of
        clinic reports) costs a lookup per cohort instead of a string match over every row.

        Examples
        --------
        >>> import analysis
        >>> ds = analysis.load_dataset("data/sample")
        >>> site_a = ds.subset_rows((ds.patients.site == "site_A").to_numpy())
        >>> site_a.equals(ds.subset(ds.patients.loc[ds.patients.site == "site_A", "patient_id"]))
        True
        """
        positions = self.row_positions(keep)
        tables = {n: _take_rows(t, positions[n]) for n, t in self.tables.items()}
        return Dataset(**tables, report=self.report, source=self.source, instrument_registry=self.instrument_registry)

    def row_positions(self, keep) -> dict[str, np.ndarray]:
        """For each table, the ascending positions of the rows whose patient is kept (``keep``:
        one flag per row of ``patients``); the rows :meth:`subset_rows` takes.

        A small cohort is gathered from its patients' rows (:attr:`rows_by_patient`), in time
        proportional to its own rows; a large one by one pass over each table.

        Examples
        --------
        >>> import analysis
        >>> ds = analysis.load_dataset("data/sample")
        >>> rows = ds.row_positions((ds.patients.patient_id == "P0001").to_numpy())
        >>> rows["patients"], len(rows["sessions"]) == (ds.sessions.patient_id == "P0001").sum()
        (array([0]), True)
        """
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (len(self.patients),):
            raise ValueError(f"keep: one flag per patient expected ({len(self.patients)}), got shape {keep.shape}")
        kept = np.flatnonzero(keep)
        if len(kept) * 8 > len(keep):                  # an eighth of the patients or more: one pass is cheaper
            flags = np.append(keep, False)             # position -1 (a row whose patient is not listed) is not kept
            return {n: np.flatnonzero(flags[self.patient_rows[n]]) for n in self.tables}
        positions = {}
        for name, (order, bounds) in self.rows_by_patient.items():
            starts, lengths = bounds[kept], bounds[kept + 1] - bounds[kept]
            # the concatenated ranges order[starts[i] : starts[i] + lengths[i]], in one gather
            ranges = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
            positions[name] = np.sort(order[ranges]).astype(np.intp)
        return positions

    @cached_property
    def patient_rows(self) -> dict:
        """For each table, the position in ``patients`` of each row's patient (-1: not listed)."""
        index = pd.Index(self.patients["patient_id"])
        return {n: index.get_indexer(t["patient_id"]) for n, t in self.tables.items()}

    @cached_property
    def rows_by_patient(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """For each table, its rows grouped by patient: ``(order, bounds)``, where the rows of
        the patient at position ``p`` of ``patients`` are ``order[bounds[p]:bounds[p + 1]]``
        (in table order; rows of unlisted patients come before ``bounds[0]``)."""
        grouped = {}
        for name, where in self.patient_rows.items():
            order = np.argsort(where, kind="stable")
            bounds = np.searchsorted(where[order], np.arange(len(self.patients) + 1))
            grouped[name] = (order.astype(np.int32) if len(order) < 2**31 else order, bounds)
        return grouped


def take_chunked(column: pa.ChunkedArray, positions: np.ndarray) -> pa.ChunkedArray:
    """``column.take(positions)`` for ascending ``positions``, chunk by chunk.

    Arrow's take on a column of many chunks (the row groups of a Parquet file) first joins
    them into one copy of the whole column: selecting 5,000 patients of a 1,000,000-patient
    registry (190 chunks of assessments) took 0.8 s that way, 0.03 s chunk by chunk.

    Examples
    --------
    >>> import numpy as np, pyarrow as pa
    >>> from analysis.dataset import take_chunked
    >>> take_chunked(pa.chunked_array([[1, 2], [3, 4, 5]]), np.array([0, 3, 4])).to_pylist()
    [1, 4, 5]
    """
    chunks = column.chunks
    if len(chunks) == 1:
        return pa.chunked_array([chunks[0].take(positions)], type=column.type)
    starts = np.cumsum([0, *map(len, chunks)])
    cuts = np.searchsorted(positions, starts)
    parts = [chunks[i].take(positions[cuts[i]:cuts[i + 1]] - starts[i]) for i in np.flatnonzero(cuts[1:] > cuts[:-1])]
    return pa.chunked_array(parts, type=column.type)


def _take_rows(table: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """``table.iloc[positions].reset_index(drop=True)`` for ascending ``positions``, an Arrow
    column of many chunks taken chunk by chunk (:func:`take_chunked`)."""
    chunked = [name for name, column in table.items()
               if getattr(getattr(column.array, "_pa_array", None), "num_chunks", 1) > 1]
    if not chunked:
        return table.iloc[positions].reset_index(drop=True)
    out = table.drop(columns=chunked).iloc[positions].reset_index(drop=True)
    for name in chunked:
        array = table[name].array
        out[name] = pd.Series(type(array)(take_chunked(array._pa_array, positions)), copy=False)
    return out[list(table.columns)]


def _registry_from(instruments: InstrumentRegistry | Iterable[Instrument] | str | Path | None) -> InstrumentRegistry:
    """The registry a dataset is validated with: a copy, never the process-wide one itself."""
    if instruments is None:
        return default_registry().copy()
    if isinstance(instruments, InstrumentRegistry):
        return instruments.copy()
    registry = default_registry().copy()
    items = read_instrument_file(instruments) if isinstance(instruments, (str, Path)) else list(instruments)
    for inst in items:
        if not isinstance(inst, Instrument):
            raise TypeError(f"instruments must be Instrument definitions, got {type(inst).__name__}")
        registry.register(inst, replace=True)
    return registry


def check_dataset(path: str | Path, *, allow_free_text: Sequence[str] = ()) -> tuple[Dataset | None, ValidationReport]:
    """Read and validate a dataset folder; return the dataset (None if errors) and every problem.

    Unlike :func:`load_dataset` this does not raise on bad data: it is what
    ``ketamine-outcomes validate`` uses. ``allow_free_text`` as for :func:`load_dataset`.
    """
    folder = Path(path)
    report = ValidationReport(str(folder))
    if not folder.exists():
        report.add_table_problem("(dataset)", f"folder does not exist: {folder}", code="missing_folder")
        return None, report
    if not folder.is_dir():
        report.add_table_problem("(dataset)", f"not a folder: {folder}; a dataset is a folder of table files", code="missing_folder")
        return None, report
    registry = default_registry().copy()
    instruments_file = folder / "instruments.toml"
    if instruments_file.exists():
        what = special_file_kind(instruments_file)
        if what is not None:
            report.add_table_problem("(dataset)", f"instruments.toml is {what}, not a file: instrument definitions "
                                     "must be a regular TOML file", file="instruments.toml", code="special_file")
        else:
            try:
                for inst in read_instrument_file(instruments_file):
                    if registry.find(inst.name) != inst:
                        registry.register(inst, replace=True)
            except ValueError as exc:
                report.add_table_problem("(dataset)", str(exc), file="instruments.toml", code="instruments")
    files = find_table_files(folder, report)
    try:
        dataset = _build(_read_each(files, report), report, source=str(folder), registry=registry,
                         allow_free_text=allow_free_text)
    except DataValidationError:
        return None, report
    return dataset, report


def load_dataset(path: str | Path, *, allow_free_text: Sequence[str] = ()) -> Dataset:
    """Load and validate a dataset folder (CSV or Parquet tables named after their table).

    Parameters
    ----------
    path : str or Path
        A folder with ``patients``, ``sessions``, ``assessments`` and optionally
        ``medications`` as ``.csv`` (UTF-8) or ``.parquet`` files, and optionally an
        ``instruments.toml`` with further instruments (they become the dataset's own,
        ``Dataset.instrument_registry``; the process-wide registry is left alone).
    allow_free_text : sequence of str, optional
        Columns whose free text the user explicitly allows: the anonymisation guard does
        not refuse values there that look like e-mail addresses, phone numbers or calendar
        dates (column names are still checked). Default none.

    Returns
    -------
    Dataset

    Raises
    ------
    DataValidationError
        When any error is found; its ``report`` lists every problem with its place.

    Examples
    --------
    >>> import analysis
    >>> ds = analysis.load_dataset("data/sample")
    >>> ds
    Dataset(500 patients, 4760 sessions, 12323 assessments, 196 medications, from data/sample)
    """
    dataset, report = check_dataset(path, allow_free_text=allow_free_text)
    if dataset is None:
        raise DataValidationError(report)
    return dataset


def validate(path: str | Path, *, allow_free_text: Sequence[str] = ()) -> ValidationReport:
    """Every problem in a dataset folder, without raising.

    ``allow_free_text`` as for :func:`load_dataset`.

    Examples
    --------
    >>> import analysis
    >>> print(analysis.validate("data/sample").format())
    data/sample: 0 error(s), 0 warning(s)
    """
    return check_dataset(path, allow_free_text=allow_free_text)[1]


def _read_each(files: Mapping[str, Path], report: ValidationReport) -> Iterator[tuple[str, RawTable]]:
    """Read the table files one at a time, each when validation asks for it (in the order
    of ``files``, which is the format's), and let go of each before reading the next."""
    for name, file in files.items():
        table = read_table_file(name, file, report)
        if table is not None:
            yield name, table
        del table


def _build(raw: Mapping[str, RawTable] | Iterable[tuple[str, RawTable]], report: ValidationReport,
           source: str | None, *, registry: InstrumentRegistry, allow_free_text: Sequence[str] = ()) -> Dataset:
    """Validate and type the raw tables, then build the dataset (DataValidationError on errors).

    ``raw`` is a mapping of raw tables or ``(name, table)`` pairs in the format's order, such
    as :func:`_read_each`, which reads each file only once the table before it is converted.
    Problems found while reading a later file then come after those of converting the
    tables before it; validation therefore records into a report of its own, added to
    ``report`` at the end, so the problems come in the order of reading every file first
    and validating after (the order of every earlier version).
    """
    pairs = ((name, raw[name]) for name in TABLES if name in raw) if isinstance(raw, Mapping) else raw
    checks = ValidationReport(report.source)
    tables = validate_table_stream(pairs, checks, registry=registry, allow_free_text=tuple(allow_free_text))
    report.extend(checks)
    for table, locator in checks._locators.items():  # how rows map to file lines, for later additions
        report.set_locator(table, *locator)
    if not report.ok:
        raise DataValidationError(report)
    typed = {name: _canonical(name, tables.get(name)) for name in TABLES}
    typed["medications"] = fill_medication_classes(typed["medications"])
    return Dataset(**typed, report=report, source=source, instrument_registry=registry)


def category_dtype(column: ColumnSpec, values: pd.Series | None = None) -> pd.CategoricalDtype:
    """The dtype of a format ``"category"`` column in a loaded :class:`Dataset`.

    Unordered, with the column's allowed values sorted as categories when it has a fixed
    list (``sex``, ``route``, ``phase``: :attr:`ColumnSpec.categories`), else the distinct
    values of ``values`` sorted (``instrument``: the instruments recorded). Sorted
    categories sort and group as the text does.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.dataset import category_dtype
    >>> from analysis.schema import TABLES
    >>> list(category_dtype(TABLES["sessions"].column("phase")).categories)
    ['booster', 'induction', 'maintenance']
    >>> list(category_dtype(TABLES["assessments"].column("instrument"), pd.Series(["PHQ-9", "GAD-7", "PHQ-9"])).categories)
    ['GAD-7', 'PHQ-9']
    """
    if column.kind != "category":
        raise ValueError(f"column {column.name!r} is of kind {column.kind!r}, not a category")
    if column.categories is not None:
        return pd.CategoricalDtype(list(column.categories), ordered=False)
    present = [] if values is None else sorted(str(v) for v in _arrow_text(values).unique().drop_null().to_pylist())
    return pd.CategoricalDtype(present, ordered=False)


def _arrow_text(values: pd.Series) -> pa.ChunkedArray:
    """A text column as Arrow ``large_string`` (without a copy for pandas' Arrow strings)."""
    text = pa.array(values.astype("string"), type=pa.large_string(), from_pandas=True)
    return text if isinstance(text, pa.ChunkedArray) else pa.chunked_array([text])


def _as_categories(values: pd.Series, dtype: pd.CategoricalDtype) -> pd.Series:
    """``values`` (text) as ``dtype``, each row's category found by Arrow's hash lookup (no
    Python string per row: a registry has 25 million assessments); a value that is not a
    category is an error (validation refuses them before)."""
    text = _arrow_text(values)
    found = pc.index_in(text, value_set=pa.array(list(dtype.categories), type=pa.large_string()))
    if found.null_count != text.null_count:
        outside = pc.filter(text, pc.and_(pc.is_null(found), pc.is_valid(text))).unique().to_pylist()
        raise ValueError(f"column {values.name!r}: value(s) {outside} are not among its categories "
                         f"{list(dtype.categories)}")
    small = np.int8 if len(dtype.categories) < 127 else np.int32
    codes = (pc.fill_null(found, -1) if found.null_count else found).to_numpy().astype(small)  # missing: code -1
    return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype), index=values.index, name=values.name)


def _canonical(name: str, frame: pd.DataFrame | None) -> pd.DataFrame:
    """Put the format's columns first in format order; an absent table becomes an empty typed one.

    The format's category columns become pandas ``category`` (:func:`category_dtype`).
    The medications table always has every column of the format (an absent ``end_day``
    column means every period is ongoing, as an empty ``end_day`` does), so derivations
    never meet a table without them.
    """
    spec = TABLES[name]
    dtypes = {"id": "string", "text": "string", "boolean": "boolean"}
    if frame is None:
        return pd.DataFrame({c.name: pd.Series([], dtype=category_dtype(c) if c.kind == "category"
                                               else dtypes.get(c.kind, "float64"))
                             for c in spec.columns if c.required or name == "medications"})
    categorical = {c.name: _as_categories(frame[c.name], category_dtype(c, frame[c.name]))
                   for c in spec.columns if c.kind == "category" and c.name in frame.columns}
    if categorical:
        frame = frame.assign(**categorical)
    if name == "medications":
        missing = {c.name: pd.Series(pd.NA if dtypes.get(c.kind) else float("nan"), index=frame.index,
                                     dtype=dtypes.get(c.kind, "float64"))
                   for c in spec.columns if c.name not in frame.columns}
        frame = frame.assign(**missing) if missing else frame
    known = [c.name for c in spec.columns if c.name in frame.columns]
    extra = [c for c in frame.columns if c not in known]
    return frame[known + extra].reset_index(drop=True)
