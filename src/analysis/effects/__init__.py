"""Clinical-significance figures: what a difference means for patients.

* :func:`nnt`, :func:`nnt_from_counts`, :func:`nnt_at` -- number needed to treat with its
  interval, from a risk difference, from counts, or from two survival or cumulative-incidence
  curves at a time t (Altman 1998; Altman & Andersen 1999), reported as NNTB / NNTH
* :func:`cohens_d`, :func:`hedges_g` -- standardised mean differences for change from
  baseline (d_av, d_z, d_rm; Lakens 2013) and for two groups, with noncentral-t or
  normal-approximation intervals
* :func:`reliable_change` -- the Jacobson-Truax reliable change index and clinically
  significant change per instrument (recovered, improved, unchanged, deteriorated), with
  published reliabilities and norms (:data:`PSYCHOMETRICS`)
* :func:`suicide_item`, :func:`suicide_item_scores` -- the suicidal-thoughts item (PHQ-9
  item 9) at baseline and endpoint, and its new onset
* :func:`e_value` -- E-values for RR, OR, HR and RD (VanderWeele & Ding 2017)
* :func:`weighted_logrank` -- the weighted combination of per-stratum log-rank statistics
  of SUSTAIN-1 (Daly 2019)

Every default and its source is in ``docs/effects.md``. Each function lives in a private
module (``_nnt``, ``_smd``, ...), so ``analysis.effects.nnt`` is the function.

Examples
--------
>>> from analysis.effects import nnt, e_value
>>> print(nnt(0.10, -0.05, 0.25, conf_level=0.95))
NNTB 10.0 (95% CI NNTB 4.0 to ∞ to NNTH 20.0)
>>> round(e_value(3.9, 1.8, 8.7).e_value, 2)
7.26
"""

from ._evalue import EValueResult, e_value
from ._nnt import NNTResult, nnt, nnt_at, nnt_from_counts
from ._reliable_change import PSYCHOMETRICS, Psychometrics, ReliableChangeResult, psychometrics, reliable_change
from ._smd import EffectSizeResult, cohens_d, hedges_g
from ._suicide_item import SuicideItemResult, suicide_item, suicide_item_scores
from ._weighted_logrank import WeightedLogrankResult, weighted_logrank

__all__ = [
    "EValueResult",
    "EffectSizeResult",
    "NNTResult",
    "PSYCHOMETRICS",
    "Psychometrics",
    "ReliableChangeResult",
    "SuicideItemResult",
    "WeightedLogrankResult",
    "cohens_d",
    "e_value",
    "hedges_g",
    "nnt",
    "nnt_at",
    "nnt_from_counts",
    "psychometrics",
    "reliable_change",
    "suicide_item",
    "suicide_item_scores",
    "weighted_logrank",
]
