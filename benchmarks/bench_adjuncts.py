"""Benchmark: the adjunct comparison table on the 100,000-patient simulated registry.

Usage: python benchmarks/bench_adjuncts.py [--patients 100000] [--seed 2026]

Builds the data once (``analysis.simulate(n, seed)`` -> ``derive_outcomes`` -> the
courses, relapse and durability tables, with the baseline GAD-7 added by
``baseline_scores``) and writes them to Parquet. Then, each in a fresh process
(``_measure.run_stage``; the time includes reading the Parquet files):

* ``compare_adjuncts`` with the default covariates and ``reference="none"`` (the full
  table: every drug and class, 12 estimates each, with diagnostics and multiplicity);
* the same with ``reference="unexposed"`` (larger comparison groups);
* ``ipw_comparison`` for lamotrigine; ``benzodiazepine_dose``.

Target (issue 5): the full table under 60 s and 4 GiB.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _measure import machine, print_table, run_stage

BUILD = """
import json, analysis
from analysis.adjuncts import baseline_scores
sim = analysis.simulate({patients}, seed={seed})
ds = sim.dataset()
out = analysis.derive_outcomes(ds)
courses = out.courses.merge(baseline_scores(ds, out), on="patient_id", how="left")
courses.to_parquet({dir!r} + "/courses.parquet")
out.relapse.to_parquet({dir!r} + "/relapse.parquet")
out.durability.to_parquet({dir!r} + "/durability.parquet")
open({dir!r} + "/info.json", "w").write(json.dumps({{"courses": len(courses), "relapse": len(out.relapse),
    "durability": len(out.durability), "definitions": out.definitions_dict()}}))
"""

LOAD = """
import json
from types import SimpleNamespace
import pandas as pd
tabs = {{n: pd.read_parquet({dir!r} + f"/{{n}}.parquet") for n in ("courses", "relapse", "durability")}}
out = SimpleNamespace(**tabs, definitions=json.load(open({dir!r} + "/info.json"))["definitions"])
"""

STAGES = {
    "compare_adjuncts (reference='none')": """
from analysis.adjuncts import compare_adjuncts
res = compare_adjuncts(out)
open({dir!r} + "/none.json", "w").write(json.dumps({{"rows": len(res.table), "estimates": int(res.estimates["estimate"].notna().sum())}}))
""",
    "compare_adjuncts (reference='unexposed')": """
from analysis.adjuncts import compare_adjuncts
res = compare_adjuncts(out, reference="unexposed")
""",
    "ipw_comparison (lamotrigine, ATE)": """
from analysis.adjuncts import ipw_comparison
res = ipw_comparison(out, "drug_lamotrigine", "age + C(sex) + C(diagnosis) + prior_treatment_failures + "
                     "comorbid_ptsd + baseline_score + baseline_gad7 + C(site)")
""",
    "benzodiazepine_dose": """
from analysis.adjuncts import benzodiazepine_dose
res = benzodiazepine_dose(out, measures=("response", "category"))
""",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        build = run_stage("simulate + derive + baseline GAD-7", BUILD.format(patients=args.patients, seed=args.seed,
                                                                               dir=tmp))
        info = json.loads(Path(tmp, "info.json").read_text())
        print(f"data: {info['courses']:,} courses, {info['relapse']:,} relapse rows, {info['durability']:,} intervals;"
              f" built in {build['seconds']:.1f} s")
        results = [build]
        for name, code in STAGES.items():
            results.append(run_stage(name, LOAD.format(dir=tmp) + code.format(dir=tmp)))
        done = json.loads(Path(tmp, "none.json").read_text())
        print(f"comparison table: {done['rows']} adjuncts, {done['estimates']} estimates")
    print_table(results)
    full = results[1]
    ok = full["seconds"] < 60 and full["peak_mib"] < 4096
    print(f"target (full table < 60 s and < 4 GiB): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
