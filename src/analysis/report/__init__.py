"""Cohort reports: typed parameters, small-cell suppression, sections, rendering with
papermill, batches and paper figures (see ``docs/reports.md``)."""

from .cohort import CohortError, CohortReport, select_cohort
from .parameters import ParameterError, ReportParameters
from .privacy import format_count, format_percent, merge_small_steps, suppress_table
from .sections import Section

__all__ = [
    "CohortError", "CohortReport", "ParameterError", "ReportParameters", "Section", "format_count",
    "format_percent", "merge_small_steps", "select_cohort", "suppress_table",
]
