"""Response models: who responds, partly responds or remits, and how scores move over time.

Plain tables in, tidy tables out: every model takes a formula (statsmodels/patsy syntax)
and any pandas DataFrame, and returns a result that follows the package's one results
convention (``docs/api.md``): a ``summary`` DataFrame indexed by term with ``coef, se,
statistic, p_value, ci_lower, ci_upper`` (and ``ratio, ratio_lower, ratio_upper`` on a
ratio scale), ``params``, ``cov``, ``conf_int()``, ``n_obs``, ``n_dropped``,
``conf_level``, ``converged``, ``formula``, ``predict(profiles)`` and ``plot(ax=None)``.
Every estimate is checked against R (``glm``, ``MASS::polr``, ``nnet::multinom``,
``lme4::lmer``, ``geepack::geeglm``, ``pROC``); conventions and sources are in
``docs/response.md``.

Examples
--------
Run from the repository root (where ``data/sample`` is):

>>> import analysis
>>> from analysis.response import logistic
>>> courses = analysis.derive_outcomes(analysis.load_dataset("data/sample")).courses
>>> fit = logistic("remission ~ prior_treatment_failures + age", courses, dropna=True)
>>> fit.n_obs, fit.n_dropped
(494, 6)
>>> fit.summary.loc["prior_treatment_failures", ["ratio", "ratio_lower", "ratio_upper"]].round(3).tolist()
[0.863, 0.771, 0.965]
"""

from .early import EarlyResponseResult, delong_auc, early_response, wilson_interval
from ._gee import GEEResult, GeepackAR1, gee, wave_index
from ._logistic import LogisticResult, logistic
from ._mixed import MixedResult, mixed
from ._mmrm import MMRMResult, mmrm
from ._multinomial import MultinomialResult, multinomial
from ._ordinal import OrdinalResult, brant_test, ordinal
from .timing import early_improvement, response_table, time_to_response
from .trajectory import trajectory_plot

__all__ = [
    "EarlyResponseResult",
    "GEEResult",
    "GeepackAR1",
    "LogisticResult",
    "MixedResult",
    "MMRMResult",
    "MultinomialResult",
    "OrdinalResult",
    "brant_test",
    "delong_auc",
    "early_improvement",
    "early_response",
    "gee",
    "logistic",
    "mixed",
    "mmrm",
    "multinomial",
    "ordinal",
    "response_table",
    "time_to_response",
    "trajectory_plot",
    "wave_index",
    "wilson_interval",
]
