"""Survival analysis for relapse and response durations, proven against R's ``survival``.

Plain tables in, tidy tables out: every function takes a pandas DataFrame and column
names, and returns a result object whose attributes are DataFrames and whose
``plot(ax=None)`` returns the matplotlib axes.

* :func:`kaplan_meier` -- Kaplan-Meier curves, medians and intervals (``survfit``)
* :func:`nelson_aalen` -- Nelson-Aalen cumulative hazard (``survfit(ctype=1)``)
* :func:`logrank` -- log-rank and G-rho tests, stratified (``survdiff``)
* :func:`rmst` -- restricted mean survival time and contrasts (``print(survfit, rmean=)``)
* :func:`cox` and the recurrent-interval helpers :func:`andersen_gill`, :func:`pwp_gap`,
  :func:`within_patient` -- Cox models (``coxph``)
* :func:`aft` -- parametric accelerated failure time models (``survreg``)
* :func:`turnbull` -- the NPMLE for interval-censored times (``survfit`` on interval2 data)
* :func:`cumulative_incidence` -- competing risks: Aalen-Johansen curves and Gray's test
  (``cmprsk::cuminc``, ``survfit`` on multi-state data); :func:`fine_gray` -- the Fine-Gray
  subdistribution hazards model (``cmprsk::crr``, ``finegray`` + ``coxph``);
  :func:`cause_specific_cox` -- one Cox model per cause (``docs/competing-risks.md``)
* :func:`state_occupation` -- multi-state models: Aalen-Johansen state-occupation
  probabilities and restricted mean time in state (``survfit`` with a multi-state
  ``Surv``); :func:`transition_cox` -- one Cox model per transition (multi-state ``coxph``)

The models return results of the package's convention (``summary``, ``params``, ``cov``,
``n_obs``, ... as in ``docs/api.md``); the curves have ``table``, ``median``, ``at(times)``
and ``plot(ax=None)``. Each function lives in a private module (``_cox``, ``_aft``, ...),
so ``analysis.survival.cox`` is the function, never a module. Conventions and their
sources are in ``docs/survival.md``, ``docs/cox.md`` and ``docs/aft-turnbull.md``.

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

from ._kaplan_meier import KaplanMeierResult, kaplan_meier
from ._logrank import LogrankResult, logrank
from ._nelson_aalen import NelsonAalenResult, nelson_aalen
from ._rmst import RMSTResult, rmst
from ._cox import CoxConvergenceWarning, CoxResult, cox
from .zph import PHTestResult
from .recurrent import andersen_gill, pwp_gap, within_patient
from ._aft import AFTConvergenceWarning, AFTResult, aft
from ._turnbull import TurnbullResult, turnbull
from ._competing import CumulativeIncidenceResult, cumulative_incidence
from ._fine_gray import CauseSpecificCoxResult, FineGrayResult, cause_specific_cox, fine_gray
from ._multistate import StateOccupationResult, state_occupation
from ._multistate_cox import TransitionCoxResult, transition_cox

__all__ = [
    "AFTConvergenceWarning",
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
    "CauseSpecificCoxResult",
    "CumulativeIncidenceResult",
    "FineGrayResult",
    "cause_specific_cox",
    "cumulative_incidence",
    "fine_gray",
    "StateOccupationResult",
    "TransitionCoxResult",
    "state_occupation",
    "transition_cox",
]
