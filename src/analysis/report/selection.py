"""Cohort selection: the patients a report (or one cohort of a batch) is about.

Used by :class:`analysis.report.CohortReport` to build its cohort and by
:func:`analysis.report.batch.plan_batch` to check every cohort's filters before any
report starts.

Examples
--------
>>> import analysis
>>> from analysis.report import ReportParameters, select_cohort
>>> full = analysis.load_dataset(analysis.sample_path())
>>> cohort = select_cohort(full, ReportParameters(sites=["site_A"]))
>>> set(cohort.patients["site"])
{'site_A'}
>>> select_cohort(full, ReportParameters(sites=["site_Z"]))
Traceback (most recent call last):
...
analysis.report.selection.CohortError: site(s) ['site_Z'] are not in the data; sites are [...]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..dataset import Dataset
from .parameters import ReportParameters

__all__ = ["CohortError", "cohort_mask", "load_cohort", "load_full_dataset", "select_cohort", "selection_key"]


class CohortError(ValueError):
    """The cohort asked for cannot be reported (for example it has no patients)."""


def select_cohort(dataset: Dataset, params: ReportParameters) -> Dataset:
    """Restrict a dataset to the patients the parameters ask for (site, route, period).

    Sites: patients of these sites; routes: patients whose first session used one of these
    routes; periods: patients whose ``period_column`` is one of these. Empty filters keep
    everyone (and return ``dataset`` itself).

    Raises
    ------
    CohortError
        A filter names a column or site that is not in the data, or no patient is left.
    """
    keep = cohort_mask(dataset, params)
    return dataset if keep is None else dataset.subset_rows(keep)


def cohort_mask(dataset: Dataset, params: ReportParameters) -> np.ndarray | None:
    """The patients :func:`select_cohort` keeps, one flag per row of ``dataset.patients``
    (None: every patient, the filters are empty or keep everyone).

    Raises
    ------
    CohortError
        As :func:`select_cohort`.

    Examples
    --------
    >>> import analysis
    >>> from analysis.report import ReportParameters
    >>> from analysis.report.selection import cohort_mask
    >>> full = analysis.load_dataset(analysis.sample_path())
    >>> int(cohort_mask(full, ReportParameters(sites=["site_A"])).sum()), cohort_mask(full, ReportParameters())
    (218, None)
    """
    patients = dataset.patients
    keep = pd.Series(True, index=patients.index)
    if params.sites:
        if "site" not in patients:
            raise CohortError("sites were given but the patients table has no 'site' column")
        unknown = sorted(set(params.sites) - set(patients["site"].dropna().unique()))
        if unknown:
            raise CohortError(f"site(s) {unknown} are not in the data; sites are {sorted(patients['site'].dropna().unique())}")
        keep &= patients["site"].isin(params.sites).fillna(False)
    if params.routes:
        first = dataset.sessions.sort_values(["patient_id", "day"], kind="stable").drop_duplicates("patient_id")
        route_of = first.set_index("patient_id")["route"]
        keep &= patients["patient_id"].map(route_of).isin(params.routes).fillna(False)
    if params.periods:
        column = params.period_column
        if column not in patients:
            raise CohortError(f"periods were given but the patients table has no {column!r} column")
        keep &= patients[column].astype("string").isin(params.periods).fillna(False)
    flags = keep.to_numpy(dtype=bool)
    if not flags.any():
        raise CohortError("the cohort has no patients after the site, route and period filters")
    return None if flags.all() else flags


def selection_key(params: ReportParameters) -> dict | None:
    """The filters that decide a cohort's patients, in a canonical form (None: no filter).

    Examples
    --------
    >>> from analysis.report import ReportParameters
    >>> from analysis.report.selection import selection_key
    >>> selection_key(ReportParameters(sites=["site_B", "site_A"]))
    {'sites': ['site_A', 'site_B'], 'routes': [], 'periods': [], 'period_column': None}
    >>> selection_key(ReportParameters()) is None
    True
    """
    if not (params.sites or params.routes or params.periods):
        return None
    return {"sites": sorted(params.sites or []), "routes": sorted(params.routes or []),
            "periods": sorted(params.periods or []), "period_column": params.period_column if params.periods else None}


def load_cohort(params: ReportParameters) -> Dataset:
    """The validated dataset restricted to the cohort the parameters ask for.

    In a batch whose planning wrote this cohort into the batch's cache, that entry is read
    (only this cohort's patients); otherwise the whole dataset is loaded
    (:func:`load_full_dataset`) and the cohort selected from it (:func:`select_cohort`).
    """
    from .cache import load_cohort_entry

    selection = selection_key(params)
    if selection is not None:
        cohort = load_cohort_entry(params.data_path(), selection)
        if cohort is not None:
            return cohort
    return select_cohort(load_full_dataset(params), params)


def load_full_dataset(params: ReportParameters) -> Dataset:
    """The whole validated dataset a report selects its cohort from (``params.data_path()``).

    In a batch, read from the batch's validated cache (validated once per batch, not once
    per report: :mod:`analysis.report.cache`); otherwise loaded and validated.
    """
    from .cache import load_validated

    return load_validated(params.data_path())
