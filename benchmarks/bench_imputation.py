"""Benchmark: 100 imputations of the headline response model on the 100,000-patient registry.

Usage: python benchmarks/bench_imputation.py [--patients 100000] [--seed 2026] [--m 100]

Builds the data once (``analysis.simulate(n, seed)`` -> ``derive_outcomes`` -> the courses
table) and writes it to Parquet. Then, each in a fresh process (``_measure.run_stage``; the
time includes reading the Parquet file):

* ``impute`` m times (predictive mean matching of the end-of-induction score, the default
  10 sweeps) from baseline score, sessions, completion of induction, age and prior
  treatment failures;
* the same, then the headline response model ``logistic("response ~ baseline_score + age +
  prior_treatment_failures")`` on each completed table and ``pool``.

Target (issue 13): the whole (impute, fit, pool) under 60 s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _measure import machine, print_table, run_stage

BUILD = """
import json, analysis
out = analysis.derive_outcomes(analysis.simulate({patients}, seed={seed}).dataset())
cols = ["baseline_score", "endpoint_score", "n_sessions", "completed_induction", "age", "prior_treatment_failures"]
c = out.courses.loc[out.courses["baseline_score"].notna(), cols].astype(float)
c.to_parquet({dir!r} + "/courses.parquet")
open({dir!r} + "/info.json", "w").write(json.dumps({{"rows": len(c), "missing": int(c.isna().sum().sum()),
    "response_pct": float(out.definitions.response_pct)}}))
"""

LOAD = """
import json
import pandas as pd
from analysis.imputation import impute, pool
from analysis.response import logistic
courses = pd.read_parquet({dir!r} + "/courses.parquet")
response_pct = json.load(open({dir!r} + "/info.json"))["response_pct"]
"""

STAGES = {
    "impute (m={m}, pmm)": """
imp = impute(courses, m={m}, seed=1)
""",
    "impute + fit + pool (m={m})": """
imp = impute(courses, m={m}, seed=1)
def fit(d):
    d = d.assign(response=(100 * (d.baseline_score - d.endpoint_score) / d.baseline_score >= response_pct).astype(float))
    return logistic("response ~ baseline_score + age + prior_treatment_failures", d)
pooled = pool(imp.fit(fit))
open({dir!r} + "/pooled.json", "w").write(pooled.summary[["coef", "se", "fmi"]].to_json())
""",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--m", type=int, default=100)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        build = run_stage("simulate + derive", BUILD.format(patients=args.patients, seed=args.seed, dir=tmp))
        info = json.loads(Path(tmp, "info.json").read_text())
        print(f"data: {info['rows']:,} courses with a baseline, {info['missing']:,} missing values; "
              f"built in {build['seconds']:.1f} s")
        results = [build]
        for name, code in STAGES.items():
            results.append(run_stage(name.format(m=args.m), LOAD.format(dir=tmp) + code.format(dir=tmp, m=args.m)))
        print(json.loads(Path(tmp, "pooled.json").read_text()))
    print_table(results)
    whole = results[-1]
    print(f"target (impute + fit + pool < 60 s): {'met' if whole['seconds'] < 60 else 'NOT met'}")


if __name__ == "__main__":
    main()
