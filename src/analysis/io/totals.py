"""Total scores from item scores, with each instrument's scoring rule and rule for missing items.

When a source holds only the items of a questionnaire, the total is computed from them by the
instrument's scoring rule. A total with missing items is computed only where a published
scoring rule allows it:

* **PHQ-9**: the sum of the 9 items; with 1 or 2 items missing, each missing item takes the
  mean of the answered items (the same as prorating: the mean of the answered items times 9);
  with more than 2 missing, no total. Source: NHS Data Dictionary, "Patient Health
  Questionnaire-9" ("If one or two values are missing from the score, then they can be
  substituted with the average score of the non-missing items. Questionnaires with more than
  two missing values should be disregarded.",
  http://www.datadictionary.nhs.uk/data_dictionary/nhs_business_definitions/p/patient_health_questionnaire-9_de.asp).
  The prorated total is kept unrounded and each one is a warning in the import.
* **QIDS-SR16**: not the sum of its 16 items but of its 9 symptom domains, each domain the
  highest of its items: sleep (items 1-4), sad mood (5), appetite/weight (6-9), concentration
  (10), view of self (11), thoughts of death or suicide (12), interest (13), energy (14),
  psychomotor slowing/agitation (15-16); range 0-27 (Rush et al. 2003, Biol Psychiatry 54:573;
  the rule as given by MDCalc, https://www.mdcalc.com/quick-inventory-depressive-symptomatology-qids).
  A domain counts as answered when any of its items is (the form asks for only one of the
  appetite and one of the weight items); no total with a domain unanswered.
* every other instrument (GAD-7, MADRS, BDI-II, HAM-D17, PCL-5, CADSS): the sum of its items,
  no missing item (no published rule for missing items was found; a total from fewer items
  would be on another scale).

A mapping file may set ``max_missing_items`` for an instrument (``[instruments."GAD-7"]``);
for QIDS-SR16 it counts unanswered domains. Rows whose total cannot be computed are dropped
and logged with the reason.

Examples
--------
>>> import pandas as pd
>>> from analysis.io.totals import totals_from_items
>>> items = pd.DataFrame({f"item_{i}": [2, 2, None] for i in range(1, 10)})
>>> items.loc[1, "item_9"] = None
>>> total, prorated, why = totals_from_items(pd.Series(["PHQ-9", "PHQ-9", "PHQ-9"]), items)
>>> total.tolist(), prorated.tolist()
([18.0, 18.0, nan], [False, True, False])
>>> why[2]
'PHQ-9 total not computable: 9 of 9 items missing (at most 2 allowed, docs/import.md).'
>>> qids = pd.DataFrame({f"item_{i}": [1] for i in range(1, 17)})
>>> qids.loc[0, "item_7"] = None  # the form asks for item 6 or item 7
>>> totals_from_items(pd.Series(["QIDS-SR16"]), qids)[0].tolist()
[9.0]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..instruments import InstrumentRegistry, default_registry

__all__ = ["MAX_MISSING_ITEMS", "DOMAINS", "totals_from_items"]

#: items that may be missing before a total is not computed (prorated below that); default 0
MAX_MISSING_ITEMS: dict[str, int] = {"PHQ-9": 2}
#: instruments whose total sums symptom domains (each the highest of its items), not items
DOMAINS: dict[str, tuple[tuple[int, ...], ...]] = {
    "QIDS-SR16": ((1, 2, 3, 4), (5,), (6, 7, 8, 9), (10,), (11,), (12,), (13,), (14,), (15, 16)),
}


def totals_from_items(instrument: pd.Series, items: pd.DataFrame, registry: InstrumentRegistry | None = None, *,
                      max_missing: Mapping[str, int] | None = None) -> tuple[pd.Series, pd.Series, list[str | None]]:
    """Totals, whether each was prorated, and why a total could not be computed (None if it was)."""
    registry = default_registry() if registry is None else registry
    rules = {**MAX_MISSING_ITEMS, **(max_missing or {})}
    values = items.apply(pd.to_numeric, errors="coerce")
    total = pd.Series(np.nan, index=items.index)
    prorated = pd.Series(False, index=items.index)
    reasons: list[str | None] = [None] * len(items)
    for name in instrument.dropna().unique():
        inst = registry.find(str(name))
        rows = (instrument == name).to_numpy(dtype=bool, na_value=False)
        if inst is None or inst.n_items is None:
            for i in np.flatnonzero(rows):
                reasons[i] = f"{name} has no known number of items, so no total can be computed from items."
            continue
        block = values.reindex(columns=[f"item_{k}" for k in range(1, inst.n_items + 1)]).loc[rows]
        domains = DOMAINS.get(inst.name)
        if domains is not None:  # each domain the highest of its answered items
            block = pd.concat([block[[f"item_{k}" for k in d]].max(axis=1) for d in domains], axis=1)
        parts, what = block.shape[1], "items" if domains is None else "symptom domains"
        answered = block.notna().sum(axis=1)
        missing = parts - answered
        allowed = rules.get(inst.name, 0)
        ok = missing <= allowed
        sums = block.sum(axis=1, min_count=1)
        computed = np.where(missing == 0, sums, sums / answered.replace(0, np.nan) * parts)
        total.loc[rows] = np.where(ok, computed, np.nan)
        prorated.loc[rows] = (ok & (missing > 0)).to_numpy()
        for i, m, good in zip(np.flatnonzero(rows), missing.to_numpy(), ok.to_numpy()):
            if not good:
                reasons[i] = (f"{inst.name} total not computable: {m} of {parts} {what} missing "
                              f"(at most {allowed} allowed, docs/import.md).")
    return total, prorated, reasons
