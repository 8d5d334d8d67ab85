"""Benchmark: load and derive outcomes on registries of 100,000, 300,000 and 1,000,000 patients.

Usage: python benchmarks/bench_registry.py [--sizes 100000,300000,1000000] [--whole-max 300000]
                                           [--partition-size 100000] [--seed 2026] [--keep DIR]
                                           [--stages load,partitioned,whole]

Each registry is written to Parquet in blocks of 100,000 simulated patients
(``analysis.simulate(100_000, seed=seed + block)``, patient ids renumbered so they are
unique: ``P0000001`` ...), appended to one file per table, so that writing a
1,000,000-patient registry (about 9.6 million sessions and 25 million assessments) never
holds more than one block. Then, each in a fresh process (``_measure.run_stage``: wall time
and peak resident memory of that process alone):

* ``load_dataset`` (read + validate);
* ``load_dataset`` + ``derive_outcomes_partitioned`` (PHQ-9, blocks of
  ``--partition-size`` patients);
* ``load_dataset`` + ``derive_outcomes`` on the whole dataset at once (only up to
  ``--whole-max`` patients: at 1,000,000 it peaked at 7 GiB on the project machine).

``--keep DIR`` writes each registry to ``DIR/<size>`` and reuses it when it is already there
(same size and seed), so the 1,000,000-patient registry is written once; without it each
registry goes to a temporary folder removed at the end. ``--stages`` picks the stages.

Target (issue 15): load + derive at 1,000,000 patients under 60 s and 4 GiB on 2 cores.
Check ``free -g`` before running the 1,000,000-patient size on a shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

from _measure import machine, print_table, run_stage, versions

BLOCK = 100_000

WRITE = """
import pyarrow as pa, pyarrow.parquet as pq, pandas as pd, analysis
out = {out!r}
writers, schemas = {{}}, {{}}
sessions = assessments = 0
for block in range({blocks}):
    n = min({block}, {patients} - block * {block})
    sim = analysis.simulate(n, seed={seed} + block)
    for name, frame in sim.tables.items():
        frame = frame.copy()
        number = frame["patient_id"].str.slice(1).astype("int64") + block * {block}
        frame["patient_id"] = "P" + number.astype(str).str.zfill(7)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if name not in writers:
            schemas[name] = table.schema
            writers[name] = pq.ParquetWriter(f"{{out}}/{{name}}.parquet", table.schema, compression="snappy")
        writers[name].write_table(table.cast(schemas[name]))
    sessions += len(sim.tables["sessions"])
    assessments += len(sim.tables["assessments"])
    del sim
for w in writers.values():
    w.close()
print(f"{patients:,} patients, {{sessions:,}} sessions, {{assessments:,}} assessments", file=sys.stderr)
open(f"{{out}}/counts.txt", "w").write(f"{{sessions}} {{assessments}} {seed}")
"""

LOAD = """
import analysis
ds = analysis.load_dataset({folder!r})
assert ds.report.ok
"""

DERIVE = """
import time, analysis
from analysis.outcomes.partitioned import derive_outcomes_partitioned
ds = analysis.load_dataset({folder!r})
t = time.perf_counter()
out = {call}
print(f"derive alone: {{time.perf_counter() - t:.2f}} s; courses {{len(out.courses):,}}, "
      f"intervals {{len(out.durability):,}}", file=sys.stderr)
open({note!r}, "w").write(f"{{time.perf_counter() - t}}")
"""


def _registry_folder(keep: str | None, n: int):
    """A folder for the registry of ``n`` patients: ``keep/<n>`` (kept) or a temporary one."""
    if keep is None:
        return tempfile.TemporaryDirectory()
    folder = Path(keep) / str(n)
    folder.mkdir(parents=True, exist_ok=True)
    return contextlib.nullcontext(str(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--whole-max", type=int, default=300_000,
                        help="largest registry derived all at once as well (peak memory grows with it)")
    parser.add_argument("--partition-size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="write the registries to DIR/<size> and reuse them when already written")
    parser.add_argument("--stages", default="load,partitioned,whole",
                        help="comma-separated stages to run: load, partitioned, whole")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    stages = {s.strip() for s in args.stages.split(",") if s.strip()}
    print(f"machine: {machine()}")
    print(f"environment: {versions()}")
    results = []
    for n in sizes:
        with _registry_folder(args.keep, n) as tmp:
            blocks = -(-n // BLOCK)
            counts = Path(tmp) / "counts.txt"
            written = counts.exists() and len(counts.read_text().split()) == 3 and \
                int(counts.read_text().split()[2]) == args.seed
            if written:
                print(f"{n:,} patients: reusing the registry in {tmp}")
                write_seconds = None
            else:
                write = run_stage(f"write {n:,} patients (Parquet)",
                                  WRITE.format(out=tmp, blocks=blocks, block=BLOCK, patients=n, seed=args.seed))
                write_seconds = write["seconds"]
            sessions, assessments, _ = (int(x) for x in counts.read_text().split())
            mib = sum(f.stat().st_size for f in Path(tmp).glob("*.parquet")) / 2**20
            print(f"{n:,} patients: {sessions:,} sessions, {assessments:,} assessments, {mib:.0f} MiB Parquet"
                  + (f" (written in {write_seconds:.1f} s)" if write_seconds is not None else ""))
            if "load" in stages:
                results.append(run_stage(f"{n:,}: load_dataset", LOAD.format(folder=tmp)))
            calls = []
            if "partitioned" in stages:
                calls.append(("derive_outcomes_partitioned",
                              f"derive_outcomes_partitioned(ds, 'PHQ-9', partition_size={args.partition_size})"))
            if "whole" in stages and n <= args.whole_max:
                calls.append(("derive_outcomes (whole)", "analysis.derive_outcomes(ds, 'PHQ-9')"))
            for label, call in calls:
                note = str(Path(tmp) / "derive_seconds.txt")
                r = run_stage(f"{n:,}: load + {label}", DERIVE.format(folder=tmp, call=call, note=note))
                r["name"] += f" (derive {float(Path(note).read_text()):.1f} s)"
                results.append(r)
    print()
    print_table(results)


if __name__ == "__main__":
    main()
