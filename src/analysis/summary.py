"""Aggregate counts of a dataset: patients, sessions and assessments per site and instrument.

This is what ``make report`` writes until the cohort report renderer exists. The tables
are aggregate only (no patient-level rows).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .dataset import Dataset

__all__ = ["site_summary", "instrument_summary", "route_summary", "write_summary"]

_NO_SITE = "(no site)"


def _site_of(dataset: Dataset) -> pd.Series:
    """Site of each patient, indexed by patient_id; patients without a site get '(no site)'."""
    patients = dataset.patients
    site = patients["site"] if "site" in patients else pd.Series(pd.NA, index=patients.index, dtype="string")
    return pd.Series(site.fillna(_NO_SITE).to_numpy(), index=patients["patient_id"].to_numpy(), name="site")


def site_summary(dataset: Dataset) -> pd.DataFrame:
    """Patients, sessions and assessments per site, with a total row.

    Examples
    --------
    >>> import analysis
    >>> from analysis.summary import site_summary
    >>> site_summary(analysis.load_dataset("data/sample"))              # doctest: +SKIP
    """
    site = _site_of(dataset)
    patients = site.value_counts().rename("patients")
    sessions = dataset.sessions["patient_id"].map(site).value_counts().rename("sessions")
    assessments = dataset.assessments["patient_id"].map(site).value_counts().rename("assessments")
    table = pd.concat([patients, sessions, assessments], axis=1).fillna(0).astype("int64").sort_index()
    table.loc["all sites"] = table.sum()
    table.index.name = "site"
    return table.reset_index()


def instrument_summary(dataset: Dataset) -> pd.DataFrame:
    """Per site and instrument: patients assessed, assessments, and mean and SD of the score."""
    frame = dataset.assessments.assign(site=dataset.assessments["patient_id"].map(_site_of(dataset)))
    grouped = frame.groupby(["site", "instrument"], observed=True)
    table = grouped.agg(
        patients=("patient_id", "nunique"),
        assessments=("score", "size"),
        score_mean=("score", "mean"),
        score_sd=("score", "std"),
    )
    return table.round({"score_mean": 2, "score_sd": 2}).reset_index()


def route_summary(dataset: Dataset) -> pd.DataFrame:
    """Per site and route: patients treated and sessions given."""
    frame = dataset.sessions.assign(site=dataset.sessions["patient_id"].map(_site_of(dataset)))
    table = frame.groupby(["site", "route"], observed=True).agg(
        patients=("patient_id", "nunique"), sessions=("day", "size")
    )
    return table.reset_index()


def write_summary(dataset: Dataset, out: str | Path) -> list[Path]:
    """Write the summary tables (CSV) and the validation warnings to ``out``.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in (
        ("summary_sites.csv", site_summary(dataset)),
        ("summary_instruments.csv", instrument_summary(dataset)),
        ("summary_routes.csv", route_summary(dataset)),
        ("validation_problems.csv", dataset.report.to_frame()),
    ):
        path = out / name
        table.to_csv(path, index=False, lineterminator="\n")
        written.append(path)
    meta = {
        "source": dataset.source,
        "patients": len(dataset.patients),
        "sessions": len(dataset.sessions),
        "assessments": len(dataset.assessments),
        "medications": len(dataset.medications),
        "warnings": dataset.report.n_warnings,
    }
    path = out / "summary.json"
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    written.append(path)
    return written
