"""Adjunct-drug comparisons with confounding handled honestly: propensity scores, inverse-
probability weights, balance, weighted effects (see ``docs/adjuncts.md``)."""

from .propensity import (
    Balance, PropensityModel, WeightedEffect, balance, effective_sample_size, ipw_weights, propensity_scores,
    weighted_risk_difference,
)
from ..table_one import TableOne, table_one

__all__ = ["Balance", "PropensityModel", "TableOne", "WeightedEffect", "balance", "effective_sample_size", "ipw_weights",
           "propensity_scores", "table_one", "weighted_risk_difference"]
