"""Derived outcomes of an imported dataset against those of the dataset its source was built from."""

from __future__ import annotations

import pandas as pd

import analysis

#: the tables of analysis.Outcomes compared
OUTCOME_TABLES = ("courses", "relapse", "durability", "attrition", "exclusions", "sessions")


def assert_same_outcomes(original: analysis.Dataset, imported: analysis.Dataset, id_map: dict[str, str],
                         instrument: str = "PHQ-9") -> None:
    """Every outcome table equal, after mapping the imported patient ids back (``id_map``).

    Columns the import adds (the sessions' ``drug`` covariate) are left out; every column of
    the original must be there with equal values and dtypes.
    """
    expected = analysis.derive_outcomes(original, instrument)
    got = analysis.derive_outcomes(imported, instrument)
    for name in OUTCOME_TABLES:
        x, y = getattr(expected, name), getattr(got, name).copy()
        assert len(y) == len(x), f"{name}: {len(y)} rows, expected {len(x)}"
        if "patient_id" in y.columns:
            y["patient_id"] = y["patient_id"].map(id_map).astype(x["patient_id"].dtype)
        missing = [c for c in x.columns if c not in y.columns]
        assert not missing, f"{name}: columns {missing} missing"
        pd.testing.assert_frame_equal(x.reset_index(drop=True), y[list(x.columns)].reset_index(drop=True), obj=name)
