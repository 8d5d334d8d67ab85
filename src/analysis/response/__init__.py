"""Response models: who responds, partly responds or remits, and how scores move over time.

Plain tables in, tidy tables out: every model takes a formula (statsmodels/patsy syntax)
and any pandas DataFrame, and returns a result whose ``summary`` is a DataFrame indexed by
term, with ``predict(profiles)`` and ``plot(ax=None)``. Every estimate is checked against
R (``glm``, ``MASS::polr``, ``nnet::multinom``, ``lme4::lmer``, ``geepack::geeglm``,
``pROC``); conventions and sources are in ``docs/response.md``.

Examples
--------
>>> import analysis
>>> from analysis.response import logistic, ordinal
>>> courses = analysis.derive_outcomes(analysis.load_dataset("data/sample")).courses   # doctest: +SKIP
>>> fit = logistic("remission ~ prior_treatment_failures + age", courses, dropna=True)  # doctest: +SKIP
>>> fit.summary[["odds_ratio", "odds_ratio_ci_lower", "odds_ratio_ci_upper"]]           # doctest: +SKIP
"""

from .early import EarlyResponseResult, delong_auc, early_response, wilson_interval
from .gee import GEEResult, GeepackAR1, gee
from .logistic import LogisticResult, logistic
from .mixed import MixedResult, mixed
from .multinomial import MultinomialResult, multinomial
from .ordinal import OrdinalResult, brant_test, ordinal
from .timing import early_improvement, response_table, time_to_response
from .trajectory import trajectory_plot

__all__ = [
    "EarlyResponseResult",
    "GEEResult",
    "GeepackAR1",
    "LogisticResult",
    "MixedResult",
    "MultinomialResult",
    "OrdinalResult",
    "brant_test",
    "delong_auc",
    "early_improvement",
    "early_response",
    "gee",
    "logistic",
    "mixed",
    "multinomial",
    "ordinal",
    "response_table",
    "time_to_response",
    "trajectory_plot",
    "wilson_interval",
]
