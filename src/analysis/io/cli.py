"""``ketamine-outcomes import SOURCE ...``: one sub-command per source.

Exit codes as ``validate``: 0 the dataset was written and is usable (warnings allowed), 1 the
source has problems (each named by source file or table, row, column and value; nothing is
written), 2 usage errors (a missing file, a mapping file that does not fit). Each reader's
module provides ``add_arguments(parser)`` and ``run(args) -> int``; :func:`add_import_parser`
wires them and adds the options every import shares (``--out``, ``--format``,
``--keep-key-map``).

Examples
--------
>>> import argparse
>>> from analysis.io.cli import add_import_parser
>>> parser = argparse.ArgumentParser(prog="ketamine-outcomes")
>>> add_import_parser(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["import", "mapped", "visits.csv", "--mapping", "map.toml", "--out", "ds"])
>>> args.source, args.format
('mapped', 'csv')
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["IMPORT_HELP", "add_import_parser", "run_import", "SOURCES"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

#: source name -> (module under analysis.io, help)
SOURCES = {
    "redcap": ("redcap", "a REDCap records export (CSV) with its data dictionary and a mapping file"),
    "mapped": ("mapped", "any clinic or EHR export (CSV, Excel, Parquet) through a mapping file"),
    "sdtm": ("sdtm", "a CDISC SDTM folder: dm, ex, qs, cm (+ supp--) as .xpt, .sas7bdat, .csv or .parquet"),
    "omop": ("omop", "an OMOP CDM v5.4 database: duckdb:///file.duckdb, postgresql://..., sqlite:///file.db"),
}


#: the command's one-line help
IMPORT_HELP = "convert REDCap, SDTM, OMOP or mapped exports to data format v1"


def add_import_parser(subparsers) -> None:
    """Add ``import`` with one sub-command per source to a sub-parsers object."""
    import importlib

    parser = subparsers.add_parser("import", help=IMPORT_HELP)
    sources = parser.add_subparsers(dest="source", required=True, parser_class=type(parser))
    for name, (module_name, help_text) in SOURCES.items():
        module = importlib.import_module(f"analysis.io.{module_name}")
        p = sources.add_parser(name, help=help_text, description=(module.__doc__ or "").split("\n\n")[0])
        module.add_arguments(p)
        p.add_argument("--out", type=Path, required=True, help="the dataset folder to write")
        p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="table file format (default csv)")
        p.add_argument("--keep-key-map", type=Path, default=None, metavar="FILE",
                       help="write the map from source keys to pseudonyms here (only when keys are re-keyed); "
                            "keep it apart from the data")
        p.add_argument("--max-problems", type=int, default=100, help="problems to print (the rest are counted)")
        p.add_argument("--allow-free-text", action="append", default=[], metavar="COLUMN",
                       help="a copied column whose free text you allow (still scanned for e-mails, phone numbers, "
                            "dates, ...); repeatable")
        p.set_defaults(func=module.run)


def run_import(args: argparse.Namespace, call: Callable[[], object], inputs: tuple[Path, ...] = ()) -> int:
    """Run an import and turn its outcome into messages and an exit code (``inputs``: files that must exist)."""
    from ._convert import ImportProblemsError
    from .mapping import MappingError

    missing = [str(p) for p in inputs if not Path(str(p).partition("#")[0]).is_file()]
    if missing:
        print(f"ketamine-outcomes import {args.source}: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE

    try:
        dataset = call()
    except ImportProblemsError as exc:
        print(exc.report.format(limit=getattr(args, "max_problems", 100)), file=sys.stderr)
        print(f"{args.source} import: not written ({exc.report.n_errors} error(s)).", file=sys.stderr)
        return EXIT_PROBLEMS
    except (MappingError, FileNotFoundError, ImportError) as exc:
        print(f"ketamine-outcomes import {args.source}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = dataset.report
    if report.n_warnings:
        print(report.format(limit=getattr(args, "max_problems", 100)))
    counts = ", ".join(f"{len(t)} {n}" for n, t in dataset.tables.items())
    print(f"{args.out}: written ({counts}; {report.n_warnings} warning(s)); log in {Path(args.out) / 'import_log.md'}")
    log = getattr(dataset, "import_log", None)
    if getattr(args, "keep_key_map", None) is not None and log is not None and not log.rekeyed:
        print(f"no key map written to {args.keep_key_map}: the source keys look like pseudonyms and were kept")
    return EXIT_OK
