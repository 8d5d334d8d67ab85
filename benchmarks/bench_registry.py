"""Benchmark: load and derive outcomes on registries of 100,000, 300,000 and 1,000,000 patients.

Usage: python benchmarks/bench_registry.py [--sizes 100000,300000,1000000] [--whole-max 300000]
                                           [--partition-size 100000] [--seed 2026]

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

Target (issue 15): load + derive at 1,000,000 patients under 60 s and 4 GiB on 2 cores.
Check ``free -g`` before running the 1,000,000-patient size on a shared machine.
"""

from __future__ import annotations

import argparse
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
open(f"{{out}}/counts.txt", "w").write(f"{{sessions}} {{assessments}}")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--whole-max", type=int, default=300_000,
                        help="largest registry derived all at once as well (peak memory grows with it)")
    parser.add_argument("--partition-size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"machine: {machine()}")
    print(f"environment: {versions()}")
    results = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            blocks = -(-n // BLOCK)
            write = run_stage(f"write {n:,} patients (Parquet)",
                              WRITE.format(out=tmp, blocks=blocks, block=BLOCK, patients=n, seed=args.seed))
            sessions, assessments = (int(x) for x in (Path(tmp) / "counts.txt").read_text().split())
            mib = sum(f.stat().st_size for f in Path(tmp).glob("*.parquet")) / 2**20
            print(f"{n:,} patients: {sessions:,} sessions, {assessments:,} assessments, {mib:.0f} MiB Parquet "
                  f"(written in {write['seconds']:.1f} s)")
            results.append(run_stage(f"{n:,}: load_dataset", LOAD.format(folder=tmp)))
            calls = [("derive_outcomes_partitioned",
                      f"derive_outcomes_partitioned(ds, 'PHQ-9', partition_size={args.partition_size})")]
            if n <= args.whole_max:
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
