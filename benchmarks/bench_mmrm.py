"""Benchmark: MMRM with an unstructured covariance, 6 visits, 20,000 patients (issue 13).

Usage: python benchmarks/bench_mmrm.py [--patients 20000] [--visits 6] [--repeats 3] [--df satterthwaite]

Simulates a two-arm trial once (treatment, visit, treatment x visit and a baseline score;
unstructured within-patient covariance with correlations 0.4-0.8 and growing variances;
15 % of the patients drop out, uniformly over visits 2..6, so their later visits are
missing) and writes it to a temporary Parquet file. Then, in fresh processes
(``_measure.run_stage``), fits ``mmrm("change ~ arm * C(visit) + baseline", ...,
covariance="us", reml=True, df=...)`` and asks for the LS-mean differences by visit and the
type III table. Timing covers reading nothing but the fit and those tables (the Parquet
file is read before the clock starts); peak MiB is the whole process. Prints the median of
``--repeats`` runs. Target: under 10 s and 2 GiB on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from _measure import machine, run_stage

BUILD = """
import numpy as np, pandas as pd
rng = np.random.default_rng({seed})
n, T = {patients}, {visits}
sd = np.linspace(4.0, 7.0, T)
lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
R = 0.4 + 0.4 * 0.7 ** lag
np.fill_diagonal(R, 1.0)
Sigma = R * np.outer(sd, sd)
arm = rng.random(n) < 0.5
base = rng.normal(30, 5, n)
effect = np.linspace(-1.0, -4.0, T)
mean = -2.0 * np.arange(1, T + 1) + 0.2 * (base[:, None] - 30) + arm[:, None] * effect
y = mean + rng.multivariate_normal(np.zeros(T), Sigma, n)
last = np.where(rng.random(n) < 0.15, rng.integers(1, T, n), T)  # visits kept: 0..last-1
keep = np.arange(T)[None, :] < last[:, None]
pid, vis = np.nonzero(keep)
d = pd.DataFrame({{"patient_id": pid, "visit": pd.Categorical([f"week{{v + 1}}" for v in vis],
                   categories=[f"week{{v + 1}}" for v in range(T)]),
                   "arm": np.where(arm[pid], "TRT", "PBO"), "baseline": base[pid], "change": y[pid, vis]}})
d.to_parquet({path!r})
print(len(d))
"""

FIT = """
import pandas as pd
from analysis.response import mmrm
d = pd.read_parquet({path!r})
t0 = time.perf_counter()  # the clock of the stage starts again here: the fit only
fit = mmrm("change ~ arm * C(visit) + baseline", d, subject="patient_id", visit="visit", covariance="us",
           reml=True, df={df!r})
con = fit.contrast("arm", by="visit")
an = fit.anova()
print("@@FIT@@" + json.dumps({{"converged": fit.converged, "last": con.iloc[-1][["estimate", "se", "df"]].tolist(),
                             "n_obs": fit.n_obs}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=20_000)
    ap.add_argument("--visits", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--df", default="satterthwaite")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "trial.parquet")
        run_stage("build", BUILD.format(seed=args.seed, patients=args.patients, visits=args.visits, path=path))
        results = [run_stage(f"mmrm us {args.visits} visits, {args.patients} patients, df={args.df}",
                             FIT.format(path=path, df=args.df)) for _ in range(args.repeats)]
    secs = statistics.median(r["seconds"] for r in results)
    peak = max(r["peak_mib"] for r in results)
    print(machine())
    print(json.dumps({"stage": results[0]["name"], "median_seconds": round(secs, 2), "peak_mib": round(peak)}))


if __name__ == "__main__":
    main()
