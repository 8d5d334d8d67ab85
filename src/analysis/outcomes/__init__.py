"""Outcome derivations: courses, response categories, relapse after induction,
per-infusion durability, adjunct exposure and attrition (see ``docs/outcomes.md``)."""

from .courses import CATEGORIES, improvement_pct
from .definitions import AppliedDefinitions, Definitions, definitions_of
from .derive import Outcomes, derive_outcomes
from .exposure import exposure_column

__all__ = ["AppliedDefinitions", "CATEGORIES", "Definitions", "Outcomes", "definitions_of", "derive_outcomes", "exposure_column",
           "improvement_pct"]
