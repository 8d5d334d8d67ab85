"""Benchmark: derive outcomes on a simulated registry.

Usage: python benchmarks/bench_outcomes.py [--patients 100000]

Prints wall time and peak memory of (a) loading the Parquet registry and (b) loading plus
deriving outcomes, each in a fresh process. Target (issue 3): deriving under 15 s and
3 GiB peak on a 2-core machine.
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
        run_stage("simulate", f"""
            from analysis import simulate
            simulate(n_patients={args.patients}, seed={args.seed}).write({tmp!r}, format="parquet")
            """)
        results = [
            run_stage("load + validate (parquet)", f"""
                import analysis
                ds = analysis.load_dataset({tmp!r})
                """),
            run_stage("load + validate + derive outcomes (PHQ-9)", f"""
                import time, analysis
                ds = analysis.load_dataset({tmp!r})
                t = time.perf_counter()
                out = analysis.derive_outcomes(ds, "PHQ-9")
                print(f"derive alone: {{time.perf_counter() - t:.2f}} s; courses {{len(out.courses)}}, "
                      f"intervals {{len(out.durability)}}", file=sys.stderr)
                """),
        ]
    print_table(results)
    print("derive alone = second stage minus first (both include the load)")


if __name__ == "__main__":
    main()
