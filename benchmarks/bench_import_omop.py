"""Benchmark: import an OMOP CDM database of a 100,000-patient registry from DuckDB.

Usage: python benchmarks/bench_import_omop.py [--patients 100000] [--chunk-rows N]

The database is built from ``simulate(n_patients, seed)`` with the tests' OMOP fixture
(tests/io/omop_fixture.py: real RxNorm/SNOMED/LOINC codes, arbitrary concept ids, ingredients
resolved through concept_ancestor), written with DuckDB's own bulk insert (the fixture's
row-by-row SQLAlchemy insert is for small test databases). Prints wall time and peak memory
per stage. Target on a 2-core machine (issue 12): the import under 60 s and 4 GiB.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _measure import machine, print_table, run_stage

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--chunk-rows", type=int, default=0, help="rows per fetch (default the reader's)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "omop.duckdb"
        build = run_stage(f"simulate {args.patients:,} patients + build OMOP DuckDB", f"""
            import sys
            sys.path.insert(0, {str(ROOT)!r})
            import duckdb
            from analysis import simulate
            from tests.io.omop_fixture import omop_tables
            tables = omop_tables(simulate(n_patients={args.patients}, seed={args.seed}).dataset())
            con = duckdb.connect({str(db)!r})
            con.execute("CREATE SCHEMA cdm")
            for name, frame in tables.items():
                con.register("frame", frame)
                con.execute(f"CREATE TABLE cdm.{{name}} AS SELECT * FROM frame")
                con.unregister("frame")
                print(name, len(frame), file=sys.stderr)
            con.close()
        """)
        chunk = f", chunk_rows={args.chunk_rows}" if args.chunk_rows else ""
        stages = [build]
        stages.append(run_stage("read_omop (DuckDB) to a validated dataset", f"""
            from analysis.io.omop import read_omop
            ds = read_omop("duckdb:///{db}", schema="cdm"{chunk})
            assert ds.report.ok
            print(len(ds.patients), len(ds.sessions), len(ds.assessments), len(ds.medications), file=sys.stderr)
        """))
        stages.append(run_stage("read_omop + write Parquet dataset and log", f"""
            from analysis.io.omop import read_omop
            read_omop("duckdb:///{db}", schema="cdm", out={str(Path(tmp) / 'out')!r}, format="parquet"{chunk})
        """))
        size = db.stat().st_size / 2**20
    print_table(stages)
    print(f"database: {size:.0f} MiB")


if __name__ == "__main__":
    main()
