"""Survival analysis for relapse and response durations, proven against R's ``survival``.

Plain tables in, tidy tables out: every function takes a pandas DataFrame and column
names, and returns a result object whose attributes are DataFrames and whose
``plot(ax=None)`` returns the matplotlib axes.

* :func:`kaplan_meier` -- Kaplan-Meier curves, medians and intervals (``survfit``)
* :func:`nelson_aalen` -- Nelson-Aalen cumulative hazard (``survfit(ctype=1)``)
* :func:`logrank` -- log-rank and G-rho tests, stratified (``survdiff``)
* :func:`rmst` -- restricted mean survival time and contrasts (``print(survfit, rmean=)``)

Conventions and their sources are in ``docs/survival.md``.

Examples
--------
>>> import pandas as pd
>>> from analysis.survival import kaplan_meier, logrank
>>> df = pd.DataFrame({"days": [5, 8, 12, 20, 6, 15, 30, 41],
...                    "relapsed": [1, 1, 1, 0, 1, 0, 1, 0],
...                    "rapamycin": [0, 0, 0, 0, 1, 1, 1, 1]})
>>> km = kaplan_meier(df, "days", "relapsed", group="rapamycin")
>>> km.median[["group", "median"]]
   group  median
0      0    10.0
1      1    30.0
"""

from .kaplan_meier import KaplanMeierResult, kaplan_meier
from .logrank import LogrankResult, logrank
from .nelson_aalen import NelsonAalenResult, nelson_aalen
from .rmst import RMSTResult, rmst
from .cox import CoxConvergenceWarning, CoxResult, cox
from .zph import PHTestResult
from .recurrent import andersen_gill, pwp_gap, within_patient
from .aft import AFTResult, aft
from .turnbull import TurnbullResult, turnbull

__all__ = [
    "CoxConvergenceWarning",
    "CoxResult",
    "PHTestResult",
    "cox",
    "andersen_gill",
    "pwp_gap",
    "within_patient",
    "AFTResult",
    "TurnbullResult",
    "aft",
    "turnbull",
    "KaplanMeierResult",
    "LogrankResult",
    "NelsonAalenResult",
    "RMSTResult",
    "kaplan_meier",
    "logrank",
    "nelson_aalen",
    "rmst",
]
