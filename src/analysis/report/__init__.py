"""Cohort reports: typed parameters, small-cell suppression, sections, rendering with
papermill, batches and paper figures (see ``docs/reports.md``)."""

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


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
