"""Outcome derivations: courses, response categories, relapse after induction,
per-infusion durability, adjunct exposure and attrition (see ``docs/outcomes.md``)."""

from .._lazy import on_first_use

__all__ = ["AppliedDefinitions", "CATEGORIES", "Definitions", "Outcomes", "definitions_of", "derive_outcomes", "exposure_column",
           "improvement_pct"]

#: where each public name lives, imported on first use (PEP 562): the definitions alone
#: (checked when report parameters are) do not need pandas and the derivations
_LAZY = {"CATEGORIES": ".courses", "improvement_pct": ".courses", "AppliedDefinitions": ".definitions",
         "Definitions": ".definitions", "definitions_of": ".definitions", "Outcomes": ".derive",
         "derive_outcomes": ".derive", "exposure_column": ".exposure"}


__getattr__, __dir__ = on_first_use(__name__, _LAZY)
