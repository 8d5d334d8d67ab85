"""Outcome derivations: courses, response categories, relapse after induction,
per-infusion durability, adjunct exposure and attrition (see ``docs/outcomes.md``)."""

__all__ = ["AppliedDefinitions", "CATEGORIES", "Definitions", "Outcomes", "definitions_of", "derive_outcomes", "exposure_column",
           "improvement_pct"]

#: where each public name lives, imported on first use (PEP 562): the definitions alone
#: (checked when report parameters are) do not need pandas and the derivations
_LAZY = {"CATEGORIES": ".courses", "improvement_pct": ".courses", "AppliedDefinitions": ".definitions",
         "Definitions": ".definitions", "definitions_of": ".definitions", "Outcomes": ".derive",
         "derive_outcomes": ".derive", "exposure_column": ".exposure"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
