"""Cohort reports: typed parameters, small-cell suppression, sections, rendering with
papermill, batches and paper figures (see ``docs/reports.md``)."""

from .._lazy import on_first_use

__all__ = [
    "CohortError", "CohortReport", "ParameterError", "ReportParameters", "Section", "format_count",
    "format_percent", "merge_small_steps", "run_batch", "select_cohort", "suppress_table",
]

#: where each public name lives; imported on first use (PEP 562), so a process that only
#: renders (a batch worker) does not import pandas and the report's sections, and one that
#: only builds sections does not import the Jupyter machinery
_LAZY = {
    "CohortReport": ".cohort", "ParameterError": ".parameters", "ReportParameters": ".parameters",
    "format_count": ".privacy", "format_percent": ".privacy", "merge_small_steps": ".privacy",
    "suppress_table": ".privacy", "Section": ".sections", "CohortError": ".selection",
    "select_cohort": ".selection", "run_batch": ".batch",
}


__getattr__, __dir__ = on_first_use(__name__, _LAZY)
