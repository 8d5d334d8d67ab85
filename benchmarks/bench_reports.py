"""Benchmark: one sample report end to end, and a batch of 12 cohort reports with 1 and 2 workers.

Usage: python benchmarks/bench_reports.py [--cohorts 12]

Targets (issue 6): a single report under 30 s; 2 workers at least 1.6x faster than 1.
Each stage runs in a fresh process (see _measure.py); batches use --force so nothing is skipped.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _measure import machine, print_table, run_stage

SITES = ["site_A", "site_B", "site_C"]
ROUTES = [[], ["iv"]]
CONFIRMATIONS = [1, 2]


def write_spec(path: Path, n: int) -> None:
    rows = []
    i = 0
    while len(rows) < n:
        site = SITES[i % len(SITES)]
        routes = ROUTES[(i // len(SITES)) % len(ROUTES)]
        conf = CONFIRMATIONS[(i // (len(SITES) * len(ROUTES))) % len(CONFIRMATIONS)]
        rows.append(f'[[cohort]]\nname = "c{i:02d}"\nsites = ["{site}"]\nroutes = {routes!r}\n'
                    f"definitions = {{ relapse_confirmations = {conf} }}\n")
        i += 1
    path.write_text("\n".join(rows).replace("'", '"'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cohorts", type=int, default=12)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.toml"
        write_spec(spec, args.cohorts)
        results = [run_stage("single sample report (render_report)", f"""
            from analysis.report import ReportParameters
            from analysis.report.render import render_report
            r = render_report(ReportParameters(), {str(Path(tmp) / 'single')!r})
            assert r.status == "ok", r.error
            """)]
        for workers in (1, 2):
            results.append(run_stage(f"batch of {args.cohorts}, {workers} worker(s)", f"""
                from analysis.report.batch import run_batch
                rs = run_batch({str(spec)!r}, {str(Path(tmp) / f'batch{workers}')!r}, workers={workers}, force=True, progress=False)
                assert all(r.status == "ok" for r in rs), [(r.name, r.status, r.error) for r in rs]
                """))
    print_table(results)
    print(f"speed-up with 2 workers: {results[1]['seconds'] / results[2]['seconds']:.2f}x")


if __name__ == "__main__":
    main()
