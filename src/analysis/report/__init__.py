"""Cohort reports: typed parameters, small-cell suppression, sections, rendering with
papermill, batches and paper figures (see ``docs/reports.md``)."""

from .cohort import CohortReport
from .parameters import ParameterError, ReportParameters
from .privacy import format_count, format_percent, merge_small_steps, suppress_table
from .sections import Section
from .selection import CohortError, select_cohort

__all__ = [
    "CohortError", "CohortReport", "ParameterError", "ReportParameters", "Section", "format_count",
    "format_percent", "merge_small_steps", "run_batch", "select_cohort", "suppress_table",
]


def __getattr__(name: str):
    # run_batch on first use: the batch module imports the Jupyter machinery, which a
    # notebook that only builds sections does not need
    if name == "run_batch":
        from .batch import run_batch

        return run_batch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
