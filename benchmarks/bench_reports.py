"""Benchmark: one sample report end to end, and a batch of 12 cohort reports with 1 and 2 workers.

Usage: python benchmarks/bench_reports.py [--cohorts 12] [--single-only] [--repeat 3]

Targets: a single report under 4 s (issue 15; issue 6: under 30 s); 2 workers at least 1.6x
faster than 1. The batch's cohorts are the clinics of a simulated network, 500 patients each. Each stage runs in a fresh process (see _measure.py); batches use --force so
nothing is skipped. The single report is also timed as a user runs it (``ketamine-outcomes
report``, the process's whole wall time), and its phases are read from the
``timings_seconds`` that every ``provenance.json`` records (kernel start, cells, kernel stop,
provenance and page), with the slowest cells from papermill's cell timings, the time outside
the cells (the whole process less papermill's cell durations) and the load average of each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measure import machine, print_table, run_stage

def write_spec(path: Path, n: int) -> None:
    """``n`` cohorts of the sample's size: the clinics of a simulated network of ``n`` clinics
    of 500 patients (a batch withholds cohorts that share patients, so the sample's three
    sites under varied settings are no batch of ``n``)."""
    from bench_batch import write_network, write_spec as network_spec

    data = path.parent / "network"
    write_network(data, n, 500, seed=2026)
    network_spec(path, n, data, n)


def command_report(folder: Path) -> dict:
    """``ketamine-outcomes report`` as a user runs it: the whole process, start-up included."""
    command = Path(sys.executable).with_name("ketamine-outcomes")
    shutil.rmtree(folder, ignore_errors=True)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    run = subprocess.run([str(command), "report", "--out", str(folder)], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError(f"ketamine-outcomes report failed:\n{run.stderr}")
    timings = json.loads((folder / "provenance.json").read_text())["timings_seconds"]
    nb = json.loads((folder / "cohort_report.ipynb").read_text())
    cells = sorted(((c["metadata"]["papermill"].get("duration") or 0, "".join(c["source"]).splitlines()[0][:50])
                    for c in nb["cells"] if c["cell_type"] == "code"), reverse=True)
    return {"seconds": seconds, "phases": timings, "slowest": cells[:3], "in_cells": sum(d for d, _ in cells),
            "load": load, "interrupt_lines": run.stderr.count("KeyboardInterrupt caught in kernel")}


def print_single(runs: list[dict]) -> None:
    each = ", ".join(f"{r['seconds']:.2f} (load {r['load']:.1f})" for r in runs)
    print(f"ketamine-outcomes report (whole process), {len(runs)} run(s): "
          f"median {statistics.median(r['seconds'] for r in runs):.2f} s ({each})")
    for phase in ("kernel_start", "cells", "kernel_stop", "page", "total"):
        values = [r["phases"].get(phase) for r in runs if r["phases"].get(phase) is not None]
        if values:
            print(f"  {phase:<14} median {statistics.median(values):6.2f} s")
    print(f"  outside the render (process start, imports, validation): median "
          f"{statistics.median(r['seconds'] - r['phases']['total'] - r['phases'].get('page', 0) for r in runs):.2f} s")
    print(f"  outside the cells (whole process less papermill's cell durations): median "
          f"{statistics.median(r['seconds'] - r['in_cells'] for r in runs):.2f} s")
    print("  slowest cells (last run): " + "; ".join(f"{name} {d:.2f} s" for d, name in runs[-1]["slowest"]))
    print(f"  'KeyboardInterrupt caught in kernel' lines: {sum(r['interrupt_lines'] for r in runs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cohorts", type=int, default=12)
    parser.add_argument("--single-only", action="store_true", help="time the single report only, no batches")
    parser.add_argument("--repeat", type=int, default=3, help="runs of ketamine-outcomes report (default 3)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        print_single([command_report(Path(tmp) / f"command{i}") for i in range(args.repeat)])
        if args.single_only:
            return
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
