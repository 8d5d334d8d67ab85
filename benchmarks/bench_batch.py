"""Benchmark: batch throughput with the local pool and on local Dask clusters of 1, 2 and 4 workers.

Usage: python benchmarks/bench_batch.py [--cohorts 12] [--dask-workers 1,2,4] [--local-workers 1,2]
                                        [--sites N] [--per-site 500] [--timeout 900]

A simulated clinic network of ``--sites`` clinics (default: as many as ``--cohorts``) of
``--per-site`` patients each (500, the bundled sample's size) is written once (Parquet), and
each cohort is one clinic, as a clinic network's batch is. (Cohorts that share patients are
not a batch's workload: it withholds all but the first, ``analysis.report.differencing``.)
Targets (issue 15): 200 cohorts in under 8 minutes with 2 workers on the 2-core machine;
near-linear speed-up with Dask workers; on the 1,000,000-patient registry (``--sites 200
--per-site 5000``), 200 site reports with 2 workers within 30 minutes and in memory.

Each configuration runs in a fresh process with ``--force`` (nothing skipped). The Dask
configurations start a ``LocalCluster`` (one process per worker, one thread each) before the
clock starts and close it after it stops; "seconds" is ``run_batch`` alone. "CPU s/report" is
the processor time of the whole run (the batch process, its workers, renders and kernels:
every process it started and reaped) per report, which does not depend on what else the
machine runs; on 2 cores, 200 reports in 8 minutes need at most 4.8 of it. "client MiB" is
the peak resident memory of the process running the batch; "largest child MiB" the largest
peak among the processes it started and reaped (workers, renders and kernels).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine  # noqa: E402

_STAGE = """
import json, resource, time
from analysis.report.batch import run_batch
{setup}
t0 = time.perf_counter()
rs = run_batch({spec!r}, {out!r}, force=True, progress=False, timeout={timeout}, {how})
seconds = time.perf_counter() - t0
bad = [(r.name, r.status, r.error) for r in rs if r.status != "ok"]
{teardown}
usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
cpu = sum(u.ru_utime + u.ru_stime for u in usage)
print("@@RESULT@@" + json.dumps({{"seconds": seconds, "client_mib": usage[0].ru_maxrss / 1024,
                                  "child_mib": usage[1].ru_maxrss / 1024, "cpu_seconds": cpu, "bad": bad,
                                  "n": len(rs)}}))
"""


def write_spec(path: Path, n: int, data: Path, sites: int) -> None:
    """``n`` cohorts, one clinic each of the simulated network (its first ``n`` clinics)."""
    if n > sites:
        raise SystemExit(f"--cohorts {n} needs at least as many --sites (got {sites}): one cohort per clinic")
    rows = []
    for i in range(n):
        site = _site_name(i)
        rows.append(f'[[cohort]]\nname = "{site}"\ndata = "{data}"\nsites = ["{site}"]\n')
    path.write_text("\n".join(rows))


def write_network(folder: Path, n_sites: int, per_site: int, seed: int) -> None:
    """A clinic network as Parquet: ``n_sites`` clinics of ``per_site`` simulated patients each
    (``simulate(per_site, seed=seed + site, n_sites=1)``, patient ids renumbered to be unique),
    written one clinic at a time. (One ``simulate(n_sites=N)`` would not do: its site sizes
    decay geometrically, so most of 200 sites would be empty.)"""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import analysis

    folder.mkdir(parents=True)
    writers: dict = {}
    try:
        for site in range(n_sites):
            sim = analysis.simulate(per_site, seed=seed + site, n_sites=1)
            for name, frame in sim.tables.items():
                frame = frame.copy()
                number = frame["patient_id"].str.slice(1).astype("int64") + site * per_site
                frame["patient_id"] = "P" + number.astype(str).str.zfill(7)
                if name == "patients":
                    frame["site"] = _site_name(site)
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if name not in writers:
                    writers[name] = (pq.ParquetWriter(folder / f"{name}.parquet", table.schema), table.schema)
                writers[name][0].write_table(table.cast(writers[name][1]))
    finally:
        for writer, _ in writers.values():
            writer.close()


def _site_name(i: int) -> str:
    from analysis.simulation.cohort import site_names

    return site_names(i + 1)[-1]


def run_config(name: str, spec: Path, out: Path, timeout: float, *, dask_workers: int | None = None,
               local_workers: int | None = None) -> dict:
    if dask_workers is not None:
        setup = (f"from distributed import LocalCluster\ncluster = LocalCluster(n_workers={dask_workers}, "
                 "threads_per_worker=1, processes=True, dashboard_address=None)")
        how = "scheduler=cluster.scheduler_address"
        teardown = "cluster.close()"
    else:
        setup, how, teardown = "", f"workers={local_workers}", ""
    code = _STAGE.format(setup=setup, spec=str(spec), out=str(out), timeout=timeout, how=how, teardown=teardown)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-4000:]}")
    line = next(line for line in proc.stdout.splitlines() if line.startswith("@@RESULT@@"))
    result = json.loads(line[len("@@RESULT@@"):])
    if result["bad"]:
        raise RuntimeError(f"{name}: reports did not render: {result['bad'][:3]}")
    return {"name": name, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cohorts", type=int, default=12)
    parser.add_argument("--dask-workers", default="1,2,4", help="comma-separated worker counts ('' for none)")
    parser.add_argument("--local-workers", default="1,2", help="comma-separated local pool sizes ('' for none)")
    parser.add_argument("--sites", type=int, default=None, help="clinics of the simulated network (default: --cohorts)")
    parser.add_argument("--per-site", type=int, default=500,
                        help="patients per simulated site (5000 with --sites 200: the 1,000,000-patient registry)")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        sites = args.sites or args.cohorts
        data = Path(tmp) / "network"
        write_network(data, sites, args.per_site, seed=2026)
        spec = Path(tmp) / "spec.toml"
        write_spec(spec, args.cohorts, data, sites)
        results = []
        for workers in [int(w) for w in args.local_workers.split(",") if w]:
            results.append(run_config(f"local pool, {workers} worker(s)", spec, Path(tmp) / f"local{workers}",
                                      args.timeout, local_workers=workers))
            print(_row(results[-1]), flush=True)
        for workers in [int(w) for w in args.dask_workers.split(",") if w]:
            results.append(run_config(f"Dask LocalCluster, {workers} worker(s)", spec, Path(tmp) / f"dask{workers}",
                                      args.timeout, dask_workers=workers))
            print(_row(results[-1]), flush=True)
    print()
    print(f"{'configuration':<34} {'reports':>7} {'seconds':>8} {'s/report':>8} {'CPU s/report':>12} "
          f"{'client MiB':>10} {'largest child MiB':>17}")
    for r in results:
        print(_row(r))
    dask = [r for r in results if r["name"].startswith("Dask")]
    if len(dask) > 1:
        print("speed-up over 1 Dask worker: " + ", ".join(
            f"{r['name'].split(', ')[1]} {dask[0]['seconds'] / r['seconds']:.2f}x" for r in dask[1:]))


def _row(r: dict) -> str:
    return (f"{r['name']:<34} {r['n']:>7} {r['seconds']:>8.1f} {r['seconds'] / r['n']:>8.2f} "
            f"{r['cpu_seconds'] / r['n']:>12.2f} {r['client_mib']:>10.0f} {r['child_mib']:>17.0f}")


if __name__ == "__main__":
    main()
