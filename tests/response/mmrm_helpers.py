"""Helpers of the MMRM tests: the reference values of ``tests/fixtures/r/make_mmrm.R``
(long format: case, quantity, term, level, value), the datasets it wrote, and R-to-patsy
term names. A plain module imported by name (as response_helpers)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

RTOL_EST = 1e-4  # estimates, standard errors, covariance parameters (the tolerance)
RTOL_DF = 1e-3  # degrees of freedom

#: dataset -> (formula, arm factor, arm levels, visit levels)
DATASETS = {
    "orthodont": ("distance ~ Sex * visit + baseline", "Sex", ["Male", "Female"], ["age10", "age12", "age14"]),
    "dietox": ("Weight ~ Cu * visit + Start", "Cu", ["Cu000", "Cu035", "Cu175"], [f"week{i}" for i in range(2, 7)]),
}
FACTORS = ("Sex", "Cu", "visit")


@lru_cache(maxsize=None)
def _ref() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "r" / "mmrm_ref.csv", keep_default_na=False, na_values=["NA"],
                       dtype={"case": str, "quantity": str, "term": str, "level": str})


def ref(case: str, quantity: str) -> pd.DataFrame:
    r = _ref()
    out = r[(r["case"] == case) & (r["quantity"] == quantity)][["term", "level", "value"]].reset_index(drop=True)
    assert len(out), f"no reference rows for {case}/{quantity}"
    return out


def ref_series(case: str, quantity: str) -> pd.Series:
    r = ref(case, quantity)
    return pd.Series(r["value"].to_numpy(), index=r["term"].to_numpy())


@lru_cache(maxsize=None)
def _data(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "data" / f"mmrm_{name}.csv")


def load(name: str) -> pd.DataFrame:
    """The dataset with its factors as Categoricals in R's level order."""
    _, arm, levels, visits = DATASETS[name]
    d = _data(name).copy()
    d[arm] = pd.Categorical(d[arm], categories=levels)
    d["visit"] = pd.Categorical(d["visit"], categories=visits)
    return d


def py_term(r_term: str) -> str:
    """R's coefficient name to patsy's: ``SexFemale:visitage12`` -> ``Sex[T.Female]:visit[T.age12]``."""
    if r_term == "(Intercept)":
        return "Intercept"
    parts = []
    for tok in r_term.split(":"):
        for f in FACTORS:
            if tok.startswith(f) and tok != f and tok not in ("Start",):
                tok = f"{f}[T.{tok[len(f):]}]"
                break
        parts.append(tok)
    return ":".join(parts)


def close(actual, expected, what: str, *, rtol: float, atol: float = 0.0) -> float:
    a = np.asarray(actual, dtype=float)
    e = np.asarray(expected, dtype=float)
    assert a.shape == e.shape, f"{what}: shapes {a.shape} vs {e.shape}"
    diff = np.abs(a - e)
    ok = diff <= atol + rtol * np.abs(e)
    assert ok.all(), (f"{what}: largest relative difference {np.max(diff / np.maximum(np.abs(e), 1e-300)):.3g} "
                      f"(rtol {rtol}); ours {a[~ok][:4]}, R {e[~ok][:4]}")
    return float(np.max(diff / np.maximum(np.abs(e), 1e-300)))
