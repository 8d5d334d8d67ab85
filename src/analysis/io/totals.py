"""Total scores from item scores, with each instrument's rule for missing items.

When a source holds only the items of a questionnaire, the total is their sum. A total with
missing items is computed only where the instrument's scoring instructions allow it:

* **PHQ-9**: with at most 2 of the 9 items missing, the total is prorated: the mean of the
  answered items times 9 (the PHQ instructions' rule for one or two missing items; Kroenke,
  Spitzer & Williams 2001; Kroenke et al. 2010, Gen Hosp Psychiatry 32:345). The prorated
  total is kept unrounded and each one is a warning in the import.
* every other instrument: no missing item (a total from fewer items would be on another scale).

A mapping file may set ``max_missing_items`` for an instrument (``[instruments."GAD-7"]``).
Rows whose total cannot be computed are dropped and logged with the reason.

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
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..instruments import InstrumentRegistry, default_registry

__all__ = ["MAX_MISSING_ITEMS", "totals_from_items"]

#: items that may be missing before a total is not computed (prorated below that); default 0
MAX_MISSING_ITEMS: dict[str, int] = {"PHQ-9": 2}


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
        cols = [f"item_{k}" for k in range(1, inst.n_items + 1)]
        block = values.reindex(columns=cols).loc[rows]
        answered = block.notna().sum(axis=1)
        missing = inst.n_items - answered
        allowed = rules.get(inst.name, 0)
        ok = missing <= allowed
        sums = block.sum(axis=1, min_count=1)
        computed = np.where(missing == 0, sums, sums / answered.replace(0, np.nan) * inst.n_items)
        total.loc[rows] = np.where(ok, computed, np.nan)
        prorated.loc[rows] = (ok & (missing > 0)).to_numpy()
        for i, m, good in zip(np.flatnonzero(rows), missing.to_numpy(), ok.to_numpy()):
            if not good:
                reasons[i] = (f"{inst.name} total not computable: {m} of {inst.n_items} items missing "
                              f"(at most {allowed} allowed, docs/import.md).")
    return total, prorated, reasons
