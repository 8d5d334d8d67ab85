"""ketamine-outcomes: outcome research on ketamine therapy for depression.

Load and validate anonymised exports of sessions and mood scores, derive the field's
outcomes, fit relapse-interval and responder models, and render cohort reports.

Examples
--------
>>> import analysis
>>> ds = analysis.load_dataset("data/sample")
>>> len(ds.patients)
500
>>> analysis.get_instrument("PHQ-9").remission_max
4
"""

from importlib import import_module

#: public name -> the module it comes from, imported on first use (PEP 562), so that
#: ``import analysis`` (and the command line, which imports only what its command needs)
#: does not load pandas, pandera, scipy.stats, statsmodels or matplotlib before they are used
_LAZY = {
    "ConvergenceWarning": "._kernel",
    "Dataset": ".dataset", "check_dataset": ".dataset", "load_dataset": ".dataset", "validate": ".dataset",
    "Instrument": ".instruments", "get_instrument": ".instruments", "instrument_names": ".instruments",
    "load_instrument_file": ".instruments", "register_instrument": ".instruments",
    "Definitions": ".outcomes", "Outcomes": ".outcomes", "derive_outcomes": ".outcomes",
    "DataValidationError": ".problems", "ValidationReport": ".problems",
    "sample_path": ".resources",
    "Simulation": ".simulation", "simulate": ".simulation",
    "TableOne": "._table_one", "table_one": "._table_one",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # once: later look-ups are ordinary attribute reads
        return value
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("ketamine-outcomes")
        except PackageNotFoundError:  # running from a source tree without installation
            value = "0+unknown"
        globals()[name] = value
        return value
    if not name.startswith("__"):
        # a subpackage, as when this module imported them all (``analysis.survival.cox``)
        from importlib.util import find_spec

        if find_spec(f"{__name__}.{name}") is not None:
            return import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ConvergenceWarning",
    "Dataset",
    "DataValidationError",
    "Definitions",
    "Outcomes",
    "derive_outcomes",
    "Instrument",
    "ValidationReport",
    "__version__",
    "check_dataset",
    "get_instrument",
    "instrument_names",
    "load_dataset",
    "load_instrument_file",
    "register_instrument",
    "sample_path",
    "Simulation",
    "simulate",
    "TableOne",
    "table_one",
    "validate",
]
