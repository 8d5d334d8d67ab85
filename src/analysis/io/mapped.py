"""Any clinic or EHR export, through a mapping file: ``read_mapped(files, mapping)``.

The files are CSV (UTF-8), Excel (``.xlsx``, first sheet unless ``file = "book.xlsx#Sheet"``;
needs the ``excel`` extra, openpyxl) or Parquet, in **wide** shape (one row per visit: a
session's date, dose and route beside ``phq9_total``, ``gad7_total`` ...) or **long** shape
(one row per measurement: ``instrument`` and ``score`` columns). The mapping file
(:mod:`analysis.io.mapping`, example in ``docs/import.md``) says which file holds which
table (``file = "visits.csv"``; with one file, every table reads it), which rows
(``when``, ``require``), and which column holds each field; the rows are then renamed,
reshaped to one row per assessment, value-mapped and converted by
:func:`analysis.io._convert.to_dataset`.

Row references are the file's physical lines (``visits.csv:12``; the header is line 1),
the sheet's row for Excel and ``row=N`` for Parquet.

Examples
--------
>>> import tempfile, pathlib
>>> from analysis.io import read_mapped
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "visits.csv").write_text(
...     "mrn_hash,visit_date,dose_mg_kg,phq9_total\\n"
...     "A7,2024-03-01,0.5,21\\nA7,2024-03-04,0.5,15\\nA7,2024-03-08,,9\\n")
>>> _ = (folder / "map.toml").write_text('''
... [source]
... key = "mrn_hash"
... [sessions]
... date = "visit_date"
... require = "dose_mg_kg"
... route_value = "iv"
... dose = "dose_mg_kg"
... dose_unit_value = "mg/kg"
... [assessments]
... date = "visit_date"
... wide = { "PHQ-9" = "phq9_total" }
... ''')
>>> ds = read_mapped([folder / "visits.csv"], folder / "map.toml")
>>> ds.assessments[["patient_id", "day", "instrument", "score"]].values.tolist()
[['P0001', 0.0, 'PHQ-9', 21.0], ['P0001', 3.0, 'PHQ-9', 15.0], ['P0001', 7.0, 'PHQ-9', 9.0]]
>>> ds.import_log.counts(), ds.import_log.rekeyed  # a key column named like a record number is re-keyed
({'visits.csv': {'rows': 3, 'used': 3, 'dropped': 0}}, True)
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..problems import ValidationReport
from ..reading import read_table_file
from ._convert import ImportedDataset, ImportProblemsError, to_dataset
from ._extract import SourceExtract
from ._fields import REF, build_tables, identifying_columns
from .log import ImportLog
from .mapping import Mapping, MappingError, read_mapping
from .vocabulary import default_vocabulary

__all__ = ["read_mapped", "read_source_file", "add_arguments", "run"]


def read_source_file(path: Path, report: ValidationReport) -> pd.DataFrame | None:
    """A source file as text values with a ``__ref__`` column (``file:line``); None if unreadable."""
    path = Path(path)
    name, _, sheet = path.name.partition("#")
    real = path.with_name(name)
    lower = name.lower()
    if lower.endswith((".xlsx", ".xlsm", ".xls")):
        try:
            import openpyxl  # noqa: F401  (pandas needs it; say so plainly when it is missing)
        except ImportError as exc:
            raise ImportError("reading Excel files needs openpyxl: pip install 'ketamine-outcomes[excel]'") from exc
        frame = pd.read_excel(real, sheet_name=sheet or 0, dtype=str, keep_default_na=False)
        frame = frame.apply(lambda s: s.str.strip()).replace({"": None}).astype("string")
        refs = [f"{name}:{i + 2}" for i in range(len(frame))]
    else:
        raw = read_table_file(name, real, report)
        if raw is None:
            return None
        frame = raw.frame.astype("string") if raw.is_csv else raw.frame
        if raw.is_csv:
            lines = raw.line_numbers if raw.line_numbers is not None else np.arange(len(frame)) + 2
            refs = [f"{name}:{int(n)}" for n in lines]
        else:
            refs = [f"{name}:row={i + 1}" for i in range(len(frame))]
    frame = frame.reset_index(drop=True)
    frame[REF] = refs
    return frame


def _sources_for(mapping: Mapping, frames: dict[str, pd.DataFrame]) -> dict[str, list[tuple[str, pd.DataFrame]]]:
    out = {}
    names = list(frames)
    for section, (table, tm) in enumerate(mapping.sections()):
        if tm.file is None:
            if len(names) != 1:
                raise MappingError(f"{mapping.path}: key '{table}.file': several files were given "
                                   f"({', '.join(names)}); say which one holds the {table}")
            out[(table, section)] = [(names[0], frames[names[0]])]
        elif tm.file in frames:
            out[(table, section)] = [(tm.file, frames[tm.file])]
        else:
            raise MappingError(f"{mapping.path}: key '{table}.file': value {tm.file!r}: no such file among the "
                               f"inputs ({', '.join(names)})")
    return out


def _used_columns(mapping: Mapping) -> set[str]:
    used = set()
    for _, tm in mapping.sections():
        data = tm.model_dump()
        for key, value in data.items():
            if key in ("file", "form", "event") or key.endswith("_value"):
                continue
            if isinstance(value, str):
                used.add(value)
            elif isinstance(value, list):
                used.update(v for v in value if isinstance(v, str))
            elif isinstance(value, dict):
                for v in value.values():
                    used.update(v if isinstance(v, list) else [v])
                if key == "when":
                    used.update(value)
        used.add(mapping.key_of(tm))
    return used


def extract_mapped(files: Sequence[str | Path], mapping: Mapping, report: ValidationReport) -> SourceExtract:
    """Read the files and extract the four tables as the mapping says."""
    frames: dict[str, pd.DataFrame] = {}
    for f in files:
        frame = read_source_file(Path(f), report)
        if frame is not None:
            frames[Path(f).name] = frame
    if not report.ok:
        raise ImportProblemsError(report, ImportLog("mapped", inputs=[str(f) for f in files]))
    used = _used_columns(mapping)
    dropped = []
    for name, frame in frames.items():
        dropped += [c for c in identifying_columns([c for c in frame.columns if c != REF]) if c not in used]
    tables, accounts = build_tables(_sources_for(mapping, frames), mapping, report)
    return SourceExtract("mapped", tables["patients"], tables["sessions"], tables["assessments"],
                         tables["medications"], accounts, identifiers_dropped=list(dict.fromkeys(dropped)))


def read_mapped(files: Sequence[str | Path], mapping: str | Path | Mapping, *, out: str | Path | None = None,
                format: str = "csv", keep_key_map: str | Path | None = None, **options) -> ImportedDataset:
    """Import clinic or EHR export files through a mapping file.

    Parameters
    ----------
    files : sequence of path
        CSV, Excel or Parquet files (``book.xlsx#Sheet`` for a sheet other than the first).
    mapping : path or Mapping
        The mapping file (``docs/import.md``).
    out, format, keep_key_map, **options
        As for :func:`analysis.io._convert.to_dataset`.

    Returns
    -------
    ImportedDataset
        With ``import_log``. Raises :class:`~analysis.io.ImportProblemsError` on errors,
        :class:`~analysis.io.mapping.MappingError` for a mapping that does not fit the files.
    """
    mapping = mapping if isinstance(mapping, Mapping) else read_mapping(mapping)
    mapping.check_where("mapped")
    report = ValidationReport("mapped import")
    extract = extract_mapped(files, mapping, report)
    return convert_with_mapping(extract, mapping, report, inputs=tuple(str(f) for f in files), out=out,
                                format=format,
                                keep_key_map=keep_key_map, **options)


def convert_with_mapping(extract: SourceExtract, mapping: Mapping, report: ValidationReport, **kwargs) -> ImportedDataset:
    """The conversion with the mapping's vocabulary, index and instrument rules."""
    registry = kwargs.pop("registry", None)
    vocabulary = default_vocabulary(registry).with_additions(mapping.vocabulary) if mapping.vocabulary else None
    index = "index_date" if mapping.source.index == "index_date" else mapping.source.index
    key_cols = {mapping.key_of(t) for _, t in mapping.sections()}
    from ..anonymisation.names import identifier_key

    rekey = True if any(identifier_key(k) == "mrn" for k in key_cols) else None
    return to_dataset(extract, index=index, vocabulary=vocabulary, registry=registry, prior=report, rekey=rekey,
                      max_missing_items={k: v.max_missing_items for k, v in mapping.instruments.items()}, **kwargs)


# --- command line ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``ketamine-outcomes import mapped``."""
    parser.add_argument("files", nargs="+", type=Path, help="CSV, Excel (.xlsx) or Parquet export files")
    parser.add_argument("--mapping", type=Path, required=True, help="the mapping file (TOML, docs/import.md)")


def run(args: argparse.Namespace) -> int:
    """Run ``ketamine-outcomes import mapped``; the exit code."""
    from .cli import run_import

    return run_import(args, lambda: read_mapped(args.files, args.mapping, out=args.out, format=args.format,
                                                 keep_key_map=args.keep_key_map,
                                                 allow_free_text=tuple(args.allow_free_text)),
                      inputs=(*args.files, args.mapping))
