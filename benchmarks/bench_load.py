"""Benchmark: simulate a registry, then load and validate it from CSV and from Parquet.

Usage: python benchmarks/bench_load.py [--patients 100000] [--keep DIR]

Prints wall time and peak memory per stage. Targets on a 2-core machine (issue 2):
load + validate under 10 s from Parquet and under 20 s from CSV, peak under 3 GiB.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _measure import machine, print_table, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for fmt in ("csv", "parquet"):
            out = Path(tmp) / fmt
            results.append(run_stage(
                f"simulate {args.patients:,} patients + write {fmt}",
                f"""
                from analysis import simulate
                sim = simulate(n_patients={args.patients}, seed={args.seed})
                sim.write({str(out)!r}, format={fmt!r})
                """,
            ))
        results.insert(0, run_stage(
            f"simulate {args.patients:,} patients (in memory)",
            f"""
            from analysis import simulate
            sim = simulate(n_patients={args.patients}, seed={args.seed})
            print(len(sim.tables['sessions']), len(sim.tables['assessments']), file=sys.stderr)
            """,
        ))
        for fmt in ("parquet", "csv"):
            results.append(run_stage(
                f"load + validate from {fmt}",
                f"""
                import analysis
                ds = analysis.load_dataset({str(Path(tmp) / fmt)!r})
                assert ds.report.ok
                """,
            ))
        sizes = {fmt: sum(f.stat().st_size for f in (Path(tmp) / fmt).iterdir()) / 2**20 for fmt in ("csv", "parquet")}
    print_table(results)
    print(f"files: csv {sizes['csv']:.0f} MiB, parquet {sizes['parquet']:.0f} MiB")


if __name__ == "__main__":
    main()
