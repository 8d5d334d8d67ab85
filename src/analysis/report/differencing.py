"""Which cohorts of a batch may be published together: no count by subtraction.

Each report suppresses its own small counts (:mod:`analysis.report.privacy`), but a batch
publishes several reports at once, and a reader may add and subtract them: a network's
report less a clinic's gives the other clinics' counts, which neither report suppresses (a
cell of 14 women beside 9 at the clinic is 5 elsewhere); a site's report less the same
site without its three youngest patients gives those three; the same patients under two
relapse rules give the patients whose relapse only one rule confirms. This module decides,
before anything is rendered, which cohorts a batch withholds so that none of this can
happen.

The rule, for cohorts whose reports publish counts (those with at least ``k`` patients:
a smaller cohort's report shows no count from 1 to ``k - 1``):

* Cohorts that share patients must use one threshold (``min_cell_count``): a report with
  a lower threshold would show the cells another hides.
* Every published cohort keeps patients of its own, in no other published cohort. Then
  whatever a reader works out from the reports together is a sum of things each single
  report shows (see below), so each report's own suppression protects the whole batch.
  Cohorts may overlap (a site and the sublingual starters of the network), but none may lie
  within the others: not inside another cohort, not covered by several, and not identical
  to one (the same patients under other definitions or another instrument).

Why it is enough: a count of a group of patients that a reader can get from the reports
is a combination ``sum_c g_c(m_c)``, where ``m_c`` are the counts of cohort ``c`` and
``g_c`` something its report shows (a cell, a total, a sum of hidden cells). On the
patients only ``c`` covers the combination reduces to ``g_c`` alone, which must therefore
pick whole cells (coefficients 0 or 1); the group's count is then a sum of counts that
each report shows or lets be worked out, each 0 or at least ``k``, so it is 0 or at least
``k`` too. Without private patients this fails: the network less its clinic is
``g(network) - g(clinic)``, a difference.

Cohorts are taken in the spec's order and a cohort is published only if, with the
cohorts before it that are published, the rule still holds; otherwise it is withheld, with
a reason that names the earlier cohorts it conflicts with (never a count). Earlier cohorts
take precedence: a network's report and its clinics' cannot both be published (that would
need suppression linked across the reports, which this package does not do), so list
first the ones to keep. Reports rendered by separate commands cannot be checked against
one another. See docs/reports.md, "Between the reports of a batch".

Examples
--------
>>> from analysis.report.differencing import CohortMembers, withheld_cohorts
>>> import numpy as np
>>> network = CohortMembers(1, "network", np.arange(100), 11)
>>> clinic = CohortMembers(2, "clinic_A", np.arange(40), 11)
>>> print(withheld_cohorts([network, clinic])[2])
all its patients are in the report of row 1 ('network'): the reports added and subtracted would give counts of patients that no report suppresses (a batch publishes no cohort within the others); earlier cohorts of the spec take precedence
>>> other = CohortMembers(3, "clinic_B", np.arange(40, 80), 11)
>>> withheld_cohorts([clinic, other])
{}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CohortMembers", "withheld_cohorts"]

_TAIL = ("the reports added and subtracted would give counts of patients that no report suppresses (a batch "
         "publishes no cohort within the others); earlier cohorts of the spec take precedence")


@dataclass(frozen=True, eq=False)
class CohortMembers:
    """One cohort of a batch: its spec row, name, patients and threshold.

    ``patients`` are non-negative integer keys, unique within the cohort and the same key
    for the same patient in every cohort (a batch reading several data folders keys each
    folder's patients apart).
    """

    row: int
    name: str
    patients: np.ndarray
    k: int


def withheld_cohorts(cohorts: list[CohortMembers]) -> dict[int, str]:
    """The cohorts to withhold, by spec row, each with its reason (see the module's rule).

    Parameters
    ----------
    cohorts : list of CohortMembers
        The batch's valid cohorts, in any order (they are taken in spec-row order).

    Returns
    -------
    dict
        ``{row: reason}`` for every cohort that must not be rendered.

    Examples
    --------
    Two overlapping cohorts, each with patients of its own, are published; their union is
    not (it less each gives the other's own patients, and the two less it their overlap):

    >>> import numpy as np
    >>> a, b = CohortMembers(1, "a", np.arange(0, 60), 11), CohortMembers(2, "b", np.arange(40, 100), 11)
    >>> sorted(withheld_cohorts([a, b, CohortMembers(3, "a or b", np.arange(100), 11)]))
    [3]
    """
    cohorts = sorted(cohorts, key=lambda c: c.row)
    n = 1 + max((int(c.patients.max()) for c in cohorts if len(c.patients)), default=-1)
    threshold = np.zeros(n, dtype=np.int64)          # the min_cell_count of a patient's reports (0: none yet)
    first_row = np.zeros(n, dtype=np.int64)
    covered = np.zeros(n, dtype=np.int64)            # published cohorts (that show counts) holding the patient
    owner = np.full(n, -1, dtype=np.int64)           # for a patient in exactly one of them: its row
    own: dict[int, int] = {}                         # published row: its patients in no other published cohort
    by_row = {c.row: c for c in cohorts}
    published: list[CohortMembers] = []
    withheld: dict[int, str] = {}
    for cohort in cohorts:
        ids = np.asarray(cohort.patients, dtype=np.int64)
        other = threshold[ids]
        clash = (other != 0) & (other != cohort.k)
        if clash.any():
            earlier = by_row[int(first_row[ids[np.argmax(clash)]])]
            withheld[cohort.row] = (
                f"it shares patients with row {earlier.row} ({earlier.name!r}) but suppresses counts "
                f"below {cohort.k} where that report suppresses below {earlier.k}, so one would show what the "
                "other hides; cohorts of a batch that share patients must use one min_cell_count")
            continue
        if len(ids) >= cohort.k:        # a smaller cohort's report shows no count from 1 to k - 1
            reason = _conflict(cohort, ids, covered, owner, own, published)
            if reason is not None:
                withheld[cohort.row] = reason
                continue
            shared = ids[covered[ids] == 1]
            for row, lost in zip(*np.unique(owner[shared], return_counts=True)):
                own[int(row)] -= int(lost)
            owner[shared] = -1
            fresh = ids[covered[ids] == 0]
            owner[fresh] = cohort.row
            own[cohort.row] = len(fresh)
            covered[ids] += 1
            published.append(cohort)
        fresh = threshold[ids] == 0
        first_row[ids[fresh]] = cohort.row
        threshold[ids] = cohort.k
    return withheld


def _conflict(cohort: CohortMembers, ids: np.ndarray, covered: np.ndarray, owner: np.ndarray,
              own: dict[int, int], published: list[CohortMembers]) -> str | None:
    """Why publishing ``cohort`` would leave a published cohort without patients of its own
    (itself, or an earlier one whose own patients it all holds); None when it would not."""
    if not (covered[ids] == 0).any():
        holders = [c for c in published if np.isin(c.patients, ids, assume_unique=True).any()]
        return f"all its patients are in the report{'s' if len(holders) > 1 else ''} of {_rows(holders)}: {_TAIL}"
    rows, taken = np.unique(owner[ids[covered[ids] == 1]], return_counts=True)
    emptied = [int(r) for r, t in zip(rows, taken) if own[int(r)] == int(t)]
    if emptied:
        earlier = [c for c in published if c.row in emptied]
        which = "that report" if len(earlier) == 1 else "those reports"
        return (f"it holds every patient of {_rows(earlier)} that no other report covers, so {which} would lie "
                f"within the others: {_TAIL}")
    return None


def _rows(cohorts: list[CohortMembers], most: int = 4) -> str:
    names = [f"row {c.row} ({c.name!r})" for c in cohorts]
    if len(names) > most:
        names = [*names[:most - 1], f"{len(names) - most + 1} other rows"]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
