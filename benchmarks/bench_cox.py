"""Benchmark: Cox model with Efron ties and cluster-robust variance on 1,000,000 intervals.

Usage: python benchmarks/bench_cox.py [--patients 100000] [--rows 1000000] [--skip-others]
                                      [--lifelines-max-rows 200000]

Builds the data once: ``analysis.simulate(n_patients)`` -> ``derive_outcomes(...)``
-> the ``durability`` table (one row per relapse interval, whole-day times, so many
ties), topped up to ``--rows`` rows with synthetic intervals of further patients drawn
from the same kind of model (Weibull gap times, shape 1.4, scale 21 days, shared gamma
frailty of variance 0.5 per patient, whole days). Five covariates: rapamycin,
benzodiazepine, age, prior treatment failures, PTSD.

Then, each in a fresh process (``_measure.run_stage``), on the same data:

* ours: ``cox(...)`` with Efron ties and ``cluster="patient_id"`` (robust variance,
  robust score test), and ``kaplan_meier``;
* lifelines: ``CoxPHFitter().fit(..., cluster_col="patient_id")`` (Efron ties);
* statsmodels: ``PHReg(..., ties="efron").fit(groups=patient_id)`` (robust covariance).

It prints seconds (the fit only; loading the Parquet file is excluded), peak MiB of the
process (data included) and the ratios, and checks that the three agree on the
coefficients. Target: our Cox fit under 10 s and 4 GiB. lifelines is skipped above
``--lifelines-max-rows`` (it did not finish within 28 minutes at 1,000,000 rows); run
``--patients 30000 --rows 100000`` for a comparison that includes it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _measure import machine, run_stage

COVARIATES = ["rapamycin", "benzodiazepine", "age", "failures", "ptsd"]

BUILD = """
import json, numpy as np, pandas as pd, analysis
sim = analysis.simulate(n_patients={patients}, seed={seed})
dur = analysis.derive_outcomes(sim.dataset(), "PHQ-9").durability
real = pd.DataFrame({{
    "patient_id": pd.factorize(dur["patient_id"])[0].astype(np.int64),
    "time": dur["time"].to_numpy(float),
    "event": dur["event"].to_numpy(np.int64),
    "rapamycin": dur["drug_rapamycin"].to_numpy(float),
    "benzodiazepine": dur["class_benzodiazepine"].to_numpy(float),
    "age": dur["age"].to_numpy(float),
    "failures": dur["prior_treatment_failures"].to_numpy(float),
    "ptsd": dur["comorbid_ptsd"].astype(float).to_numpy(),
}})
need = {rows} - len(real)
rng = np.random.default_rng({seed})
parts = [real]
if need > 0:
    k = 5  # intervals per synthetic patient
    n_pat = -(-need // k)
    pid = np.repeat(np.arange(n_pat), k) + real["patient_id"].max() + 1
    frailty = rng.gamma(2.0, 0.5, n_pat)[pid - pid[0]]
    benzo = np.repeat(rng.random(n_pat) < 0.22, k).astype(float)
    age = np.repeat(np.clip(np.round(rng.normal(46, 13, n_pat)), 18, 90), k)
    fails = np.repeat(np.minimum(rng.poisson(3, n_pat), 8), k).astype(float)
    ptsd = np.repeat(rng.random(n_pat) < 0.2, k).astype(float)
    rapa = (rng.random(n_pat * k) < 0.1).astype(float)
    lin = np.log(0.5) * rapa + np.log(1.2) * benzo + np.log(1.1) * (fails - 3) + np.log(1.2) * ptsd
    t = 21.0 * (rng.exponential(size=n_pat * k) / (frailty * np.exp(lin))) ** (1 / 1.4)
    c = rng.uniform(5, 42, n_pat * k)
    syn = pd.DataFrame({{"patient_id": pid, "time": np.maximum(np.ceil(np.minimum(t, c)), 1.0),
                        "event": (t <= c).astype(np.int64), "rapamycin": rapa, "benzodiazepine": benzo,
                        "age": age, "failures": fails, "ptsd": ptsd}})
    parts.append(syn.iloc[:need])
df = pd.concat(parts, ignore_index=True)
df.to_parquet({path!r})
info = {{"rows": len(df), "from_simulator": len(real), "events": int(df["event"].sum()),
         "distinct_times": int(df["time"].nunique()), "patients": int(df["patient_id"].nunique())}}
open({info!r}, "w").write(json.dumps(info))
"""

LOAD = """
import json, time, numpy as np, pandas as pd
{imports}
df = pd.read_parquet({path!r})
t0 = time.perf_counter()
"""

SAVE = """
elapsed_fit = time.perf_counter() - t0
open({out!r}, "w").write(json.dumps({{"fit_seconds": elapsed_fit, "coef": [float(c) for c in coef]}}))
"""

# each stage: (imports, done before the clock starts; the fit, timed)
STAGES = {
    "ours: cox (Efron, cluster-robust)": ("from analysis.survival import cox", """
fit = cox(" + ".join({cov!r}), df, duration="time", event="event", cluster="patient_id", ties="efron")
coef = fit.summary["coef"].to_numpy()
assert fit.converged and fit.robust
"""),
    "ours: cox (Breslow, model-based)": ("from analysis.survival import cox", """
fit = cox(" + ".join({cov!r}), df, duration="time", event="event", ties="breslow")
coef = fit.summary["coef"].to_numpy()
"""),
    "ours: kaplan_meier": ("from analysis.survival import kaplan_meier", """
km = kaplan_meier(df, "time", "event")
coef = []
"""),
    "lifelines: CoxPHFitter(cluster_col)": ("from lifelines import CoxPHFitter", """
cph = CoxPHFitter()
cph.fit(df[{cov!r} + ["time", "event", "patient_id"]], duration_col="time", event_col="event",
        cluster_col="patient_id")
coef = cph.params_.loc[{cov!r}].to_numpy()
"""),
    "statsmodels: PHReg(ties='efron').fit(groups)": ("from statsmodels.duration.hazard_regression import PHReg", """
res = PHReg(df["time"].to_numpy(), df[{cov!r}].to_numpy(), status=df["event"].to_numpy(), ties="efron").fit(
    groups=df["patient_id"].to_numpy())
coef = np.asarray(res.params)
"""),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--skip-others", action="store_true", help="time only our functions")
    parser.add_argument("--lifelines-max-rows", type=int, default=200_000,
                        help="skip lifelines above this many rows (0: never skip); on the project machine it "
                             "took over 28 minutes at 1,000,000 rows without finishing")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "intervals.parquet")
        info_path = str(Path(tmp) / "info.json")
        build = run_stage("build data", BUILD.format(patients=args.patients, seed=args.seed, rows=args.rows,
                                                     path=path, info=info_path))
        info = json.loads(Path(info_path).read_text())
        print(f"data: {info['rows']:,} intervals ({info['from_simulator']:,} derived from the simulator), "
              f"{info['patients']:,} patients (clusters), {info['events']:,} events, "
              f"{info['distinct_times']} distinct whole-day times; built in {build['seconds']:.1f} s")
        results = []
        for name, (imports, code) in STAGES.items():
            if args.skip_others and not name.startswith("ours"):
                continue
            if name.startswith("lifelines") and 0 < args.lifelines_max_rows < info["rows"]:
                print(f"{name}: skipped above {args.lifelines_max_rows:,} rows (--lifelines-max-rows 0 to run it)")
                continue
            out = str(Path(tmp) / f"stage{len(results)}.json")
            body = LOAD.format(path=path, imports=imports) + code.format(cov=COVARIATES) + SAVE.format(out=out)
            try:
                r = run_stage(name, body)
            except RuntimeError as err:
                print(f"{name}: failed: {str(err).splitlines()[-1]}")
                continue
            r.update(json.loads(Path(out).read_text()))
            results.append(r)
    base = next(r for r in results if r["name"].startswith("ours: cox (Efron"))
    print(f"\n{'stage':<46} {'fit s':>8} {'peak MiB':>9} {'x ours':>7}")
    for r in results:
        ratio = r["fit_seconds"] / base["fit_seconds"]
        print(f"{r['name']:<46} {r['fit_seconds']:>8.2f} {r['peak_mib']:>9.0f} {ratio:>7.1f}")
    print("\n(fit s: the fit alone; peak MiB: the whole process, data included; x ours: time relative to our "
          "Efron cluster-robust Cox fit)")
    ref = base["coef"]
    for r in results:
        if r["coef"] and not r["name"].startswith("ours"):
            diff = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(r["coef"], ref))
            print(f"largest relative difference of coefficients, {r['name']} vs ours: {diff:.2e}")


if __name__ == "__main__":
    main()
