"""A small valid dataset, as tables and written to a folder, for tests to corrupt one rule at a time."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

VALID_TABLES = {
    "patients": pd.DataFrame(
        {
            "patient_id": ["P01", "P02", "P03"],
            "site": ["site_A", "site_A", "site_B"],
            "age": [34, 90, 51],
            "sex": ["female", "male", "female"],
            "weight_kg": [61.0, 88.5, 70.0],
            "prior_treatment_failures": [2, 4, 1],
            "comorbid_ptsd": ["false", "true", "false"],
        }
    ),
    "sessions": pd.DataFrame(
        {
            "patient_id": ["P01", "P01", "P02", "P03"],
            "day": [0, 3, 0, 0.5],
            "route": ["iv", "iv", "intranasal", "iv"],
            "dose_mg_per_kg": [0.5, 0.6, None, 0.5],
            "dose_mg": [None, None, 56, None],
            "phase": ["induction", "induction", "induction", "induction"],
        }
    ),
    "assessments": pd.DataFrame(
        {
            "patient_id": ["P01", "P01", "P02", "P03", "P03"],
            "day": [0, 3, 0, 0, 7],
            "instrument": ["PHQ-9", "PHQ-9", "MADRS", "PHQ-9", "GAD-7"],
            "score": [19, 11, 33, 22, 12],
        }
    ),
    "medications": pd.DataFrame(
        {
            "patient_id": ["P01", "P03"],
            "drug": ["lorazepam", "rapamycin"],
            "start_day": [-30, 2],
            "end_day": [None, 2],
            "dose_mg": [1.0, 6.0],
        }
    ),
}


def write_tables(folder: Path, tables: dict[str, pd.DataFrame], fmt: str = "csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        else:
            frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder
