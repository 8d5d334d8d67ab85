"""Simulated two-arm trials with a known treatment effect: for data drawn with an
unstructured, compound-symmetric or AR(1) covariance and fitted with that structure
(REML, Satterthwaite df), the LS-mean difference at the last visit is unbiased and its 95 %
interval covers the true effect at about the nominal rate. Sized by KO_SIM_REPS (default
300 trials per structure)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from analysis.response import mmrm

pytestmark = [pytest.mark.simulation, pytest.mark.slow]

SIM_REPS = int(os.environ.get("KO_SIM_REPS", "300"))
N_PATIENTS = 120
VISITS = ["w1", "w2", "w4", "w6"]
EFFECT = np.array([-0.5, -1.0, -2.0, -3.0])  # TRT - PBO at each visit
SD = np.array([3.0, 3.5, 4.0, 4.5])


def _sigma(kind: str) -> np.ndarray:
    T = len(VISITS)
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    if kind == "cs":
        R = np.full((T, T), 0.5)
        np.fill_diagonal(R, 1.0)
        return 16.0 * R
    if kind == "ar1":
        return 16.0 * 0.6 ** lag
    R = 0.3 + 0.5 * 0.6 ** lag  # unstructured: neither cs nor ar1
    np.fill_diagonal(R, 1.0)
    return R * np.outer(SD, SD)


def _trial(rng, Sigma) -> pd.DataFrame:
    n, T = N_PATIENTS, len(VISITS)
    arm = np.arange(n) < n // 2
    base = rng.normal(25, 4, n)
    y = (-1.5 * np.arange(1, T + 1) + 0.3 * (base[:, None] - 25) + (~arm)[:, None] * EFFECT
         + rng.multivariate_normal(np.zeros(T), Sigma, n))
    # 20 % drop out after a random visit (missing completely at random)
    last = np.where(rng.random(n) < 0.2, rng.integers(1, T, n), T)
    pid, vis = np.nonzero(np.arange(T)[None, :] < last[:, None])
    return pd.DataFrame({"pid": pid, "visit": pd.Categorical(np.array(VISITS)[vis], categories=VISITS),
                         "arm": pd.Categorical(np.where(arm[pid], "PBO", "TRT"), categories=["PBO", "TRT"]),
                         "baseline": base[pid], "change": y[pid, vis]})


@pytest.mark.parametrize("kind", ["us", "cs", "ar1"])
def test_lsmean_difference_unbiased_and_covers(kind):
    rng = np.random.default_rng({"us": 11, "cs": 12, "ar1": 13}[kind])
    Sigma = _sigma(kind)
    est, cover = [], []
    for _ in range(SIM_REPS):
        fit = mmrm("change ~ arm * visit + baseline", _trial(rng, Sigma), subject="pid", visit="visit",
                   covariance=kind)
        row = fit.contrast("arm", by="visit").iloc[-1]
        assert row["contrast"] == "TRT - PBO"
        est.append(row["estimate"])
        cover.append(row["ci_lower"] <= EFFECT[-1] <= row["ci_upper"])
    est = np.asarray(est)
    mc_se = est.std(ddof=1) / np.sqrt(SIM_REPS)
    assert abs(est.mean() - EFFECT[-1]) < 4 * mc_se, (est.mean(), mc_se)
    rate = float(np.mean(cover))
    # binomial Monte Carlo error of the coverage, 4 sigma
    assert abs(rate - 0.95) < 4 * np.sqrt(0.95 * 0.05 / SIM_REPS), rate
