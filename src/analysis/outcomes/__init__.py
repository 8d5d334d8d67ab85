"""Outcome derivations: courses, response categories, relapse after induction,
per-infusion durability, adjunct exposure and attrition (see ``docs/outcomes.md``)."""

from .courses import CATEGORIES, improvement_pct
from .definitions import Definitions
from .derive import Outcomes, derive_outcomes
from .exposure import exposure_column

__all__ = ["CATEGORIES", "Definitions", "Outcomes", "derive_outcomes", "exposure_column", "improvement_pct"]
