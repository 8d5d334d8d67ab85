"""Adjunct exposure per session: by drug, by drug class, and benzodiazepine dose.

A session is exposed to a drug when its day lies within one of the patient's periods on
that drug: ``start_day <= day <= end_day``, an empty ``end_day`` meaning ongoing.
Columns are named ``drug_<name>`` and ``class_<name>`` (lower case, non-alphanumerics as
``_``); ``benzo_dze_mg`` is the total diazepam-equivalent dose of the benzodiazepine periods
covering the session (0 when none, missing when a covering period has no known dose).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["session_exposure", "exposure_column", "course_exposure"]


def exposure_column(prefix: str, name: str) -> str:
    """Column name for a drug or class: ``exposure_column("drug", "Lorazepam")`` -> ``"drug_lorazepam"``."""
    return f"{prefix}_{re.sub(r'[^a-z0-9]+', '_', str(name).strip().lower()).strip('_')}"


def _column_names(prefix: str, values: pd.Series, *, text_only: bool = False) -> list:
    """:func:`exposure_column` of every value (None where missing, and with ``text_only``
    where the value is not text), named once per distinct value (a registry's hundreds of
    thousands of periods name a few dozen drugs)."""
    def name(x):
        return exposure_column(prefix, x) if isinstance(x, str) or not text_only else None

    if not isinstance(values.dtype, pd.StringDtype):  # distinct by Python equality (1 == 1.0) would merge names
        return [name(x) for x in values.astype(object).where(values.notna(), None)]
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.array([name(str(x)) for x in uniques] + [None], dtype=object)[codes].tolist()


def session_exposure(sessions: pd.DataFrame, medications: pd.DataFrame) -> pd.DataFrame:
    """One row per session (aligned with ``sessions``): exposure flags and ``benzo_dze_mg``."""
    n = len(sessions)
    out: dict[str, np.ndarray] = {}
    meds = medications.dropna(subset=["drug"]) if len(medications) else medications
    if len(meds) == 0:
        return pd.DataFrame({"benzo_dze_mg": np.zeros(n)}, index=sessions.index)
    s_ids, m_ids = sessions["patient_id"], meds["patient_id"]
    if isinstance(s_ids.dtype, pd.CategoricalDtype) and s_ids.dtype == m_ids.dtype:
        # patients coded alike (a partition's, outcomes.partitioned): joined by their codes,
        # not by a Python string per session (missing ids, code -1, match each other, as
        # merge matches missing keys)
        s_key = s_ids.cat.codes.to_numpy(dtype=np.int64)
        m_key = m_ids.cat.codes.to_numpy(dtype=np.int64)
    else:
        s_key, m_key = s_ids.to_numpy(), m_ids.to_numpy()
    sess = pd.DataFrame({"patient_id": s_key, "day": sessions["day"].to_numpy(dtype=float), "row": np.arange(n)})
    periods = pd.DataFrame({
        "patient_id": m_key,
        "drug_col": _column_names("drug", meds["drug"]),
        "class_col": _column_names("class", meds["drug_class"], text_only=True),
        "start": meds["start_day"].to_numpy(dtype=float),
        "end": meds["end_day"].to_numpy(dtype=float, na_value=np.nan),
        "dze": meds["dose_dze_mg"].to_numpy(dtype=float, na_value=np.nan),
        "benzo": (meds["drug_class"] == "benzodiazepine").fillna(False).to_numpy(dtype=bool),
    })
    periods["end"] = periods["end"].fillna(np.inf)
    pairs = sess.merge(periods, on="patient_id", how="inner")
    pairs = pairs[(pairs["day"] >= pairs["start"]) & (pairs["day"] <= pairs["end"])]
    for col in sorted(periods["drug_col"].unique()):
        flag = np.zeros(n, dtype=bool)
        flag[pairs.loc[pairs["drug_col"] == col, "row"].to_numpy()] = True
        out[col] = flag
    for col in sorted(periods["class_col"].dropna().unique()):
        flag = np.zeros(n, dtype=bool)
        flag[pairs.loc[pairs["class_col"] == col, "row"].to_numpy()] = True
        out[col] = flag
    benzo = pairs[pairs["benzo"]]
    dze = np.zeros(n)
    if len(benzo):
        total = benzo.groupby("row")["dze"].sum(min_count=1)
        unknown = benzo["dze"].isna().groupby(benzo["row"]).any()
        total[unknown] = np.nan
        dze[total.index.to_numpy()] = total.to_numpy()
    out["benzo_dze_mg"] = dze
    return pd.DataFrame(out, index=sessions.index)


def course_exposure(exposure: pd.DataFrame, patient: np.ndarray, in_induction: np.ndarray, n_patients: int) -> pd.DataFrame:
    """Per patient: exposed at any induction session (flags) and the largest benzodiazepine dose then."""
    out = {}
    rows = np.flatnonzero(in_induction)
    for col in exposure.columns:
        values = exposure[col].to_numpy()
        if col == "benzo_dze_mg":
            series = pd.Series(values[rows]).groupby(patient[rows]).max()
            arr = np.zeros(n_patients)
            arr[series.index.to_numpy()] = series.to_numpy()
            out[col] = arr
        else:
            arr = np.zeros(n_patients, dtype=bool)
            arr[patient[rows][values[rows].astype(bool)]] = True
            out[col] = arr
    return pd.DataFrame(out)
