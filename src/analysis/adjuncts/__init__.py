"""Adjunct-drug comparisons with confounding handled honestly: propensity scores, inverse-
probability weights, balance, weighted effects (see ``docs/adjuncts.md``)."""

from .propensity import (
    Balance, PropensityModel, WeightedEffect, balance, effective_sample_size, ipw_weights, propensity_scores,
    weighted_risk_difference,
)
from .._table_one import TableOne, smd, table_one
from ._frames import DEFAULT_COVARIATES, baseline_scores
from .comparison import MEASURES, AdjunctComparison, compare_adjuncts, crude_binary
from .ipw import IPWComparison, ipw_comparison
from .dose import BenzodiazepineDose, benzodiazepine_dose, dose_bands

__all__ = ["Balance", "PropensityModel", "TableOne", "WeightedEffect", "balance", "effective_sample_size", "ipw_weights",
           "propensity_scores", "smd", "table_one", "weighted_risk_difference"]
__all__ += ["AdjunctComparison", "DEFAULT_COVARIATES", "MEASURES", "baseline_scores", "compare_adjuncts", "crude_binary",
            "IPWComparison", "ipw_comparison", "BenzodiazepineDose", "benzodiazepine_dose", "dose_bands"]
