"""Cohort reports: typed parameters, small-cell suppression, sections, rendering with
papermill, batches and paper figures (see ``docs/reports.md``)."""

from .cohort import CohortReport
from .parameters import ParameterError, ReportParameters
from .privacy import format_count, format_percent, merge_small_steps, suppress_table
from .sections import Section
from .selection import CohortError, select_cohort

__all__ = [
    "CohortError", "CohortReport", "ParameterError", "ReportParameters", "Section", "format_count",
    "format_percent", "merge_small_steps", "select_cohort", "suppress_table",
]
