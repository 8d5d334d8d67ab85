"""Which cohorts of a batch may be published together: no small group by subtraction.

Each report suppresses its own small counts (:mod:`analysis.report.privacy`), but a batch
publishes several reports at once, and a reader may subtract one from another: a site's
report and the same site without its three youngest patients give the three patients'
counts; a network's report less the reports of all its clinics but one gives that clinic's
counts, which its own report hides. This module decides, before anything is rendered,
which cohorts a batch must withhold so that no such difference exists.

The rule, for cohorts whose reports publish counts (those with at least ``k`` patients:
a smaller cohort's report shows no count from 1 to ``k - 1``):

* Cohorts that share patients must use one threshold (``min_cell_count``): a report with
  a lower threshold would show the cells another hides.
* The patients of the published cohorts fall into *atoms*, the groups of patients that
  belong to exactly the same cohorts. A reader who adds and subtracts whole reports gets
  the counts of any union of atoms whose indicator is a linear combination of the
  cohorts' indicators. No such union may have 1 to ``k - 1`` patients.

Cohorts are taken in the spec's order and a cohort is published only if, together with
the cohorts before it that are published, no such union exists; otherwise it is withheld,
with a reason that names the earlier cohorts it conflicts with (never the size of the
group). Earlier cohorts therefore take precedence: list the network before its clinics,
or the clinics before the network, in the order you would rather keep.

What this does not cover: a difference group of ``k`` or more patients is published
without cell-level suppression of its own (the network's and one site's reports give the
other sites' counts together, and a small count among them, such as the women of a rare
diagnosis, is not hidden by either report); and reports rendered by separate commands
cannot be checked against one another. See docs/reports.md.

Examples
--------
>>> from analysis.report.differencing import CohortMembers, withheld_cohorts
>>> import numpy as np
>>> everyone = CohortMembers(1, "all", np.arange(40), 11)
>>> most = CohortMembers(2, "all but three", np.arange(3, 40), 11)
>>> print(withheld_cohorts([everyone, most])[2])
its counts and those of row 1 ('all') would give, by subtraction, the counts of a group of fewer than 11 patients (no count from 1 to 10 may be shown, even by subtraction); earlier cohorts of the spec take precedence
>>> site_a = CohortMembers(2, "site_A", np.arange(20), 11)
>>> withheld_cohorts([everyone, site_a])
{}
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import pandas as pd

__all__ = ["CohortMembers", "nested_cohorts", "withheld_cohorts", "MAX_CANDIDATES"]

#: how many unions of small atoms are tried before the check falls back to the cautious
#: rule (any combination of reports that isolates small atoms only is taken as a leak)
MAX_CANDIDATES = 200_000


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


def nested_cohorts(cohorts: list[CohortMembers], withheld: dict[int, str]) -> dict[int, str]:
    """Notes for the published cohorts that lie inside another published cohort.

    Their difference is a group of ``k`` or more patients (smaller ones are withheld) whose
    counts a reader gets by subtraction without the group's own cell suppression: the notes
    say so, in the batch index, for the privacy officer (see the module's "does not cover").

    Examples
    --------
    >>> import numpy as np
    >>> everyone = CohortMembers(1, "all", np.arange(100), 11)
    >>> site = CohortMembers(2, "site_A", np.arange(40), 11)
    >>> print(nested_cohorts([everyone, site], {})[2])
    lies inside row 1 ('all'): the difference of the two reports is a group of 11 or more patients whose small counts neither report hides (docs/reports.md, "Between the reports of a batch")
    """
    published = [c for c in sorted(cohorts, key=lambda c: c.row) if c.row not in withheld and len(c.patients) >= c.k]
    notes: dict[int, str] = {}
    for inner in published:
        inside = np.asarray(inner.patients)
        for outer in published:
            if (outer is inner or outer.k != inner.k or len(outer.patients) <= len(inside)
                    or not np.isin(inside, outer.patients, assume_unique=True).all()):
                continue
            notes[inner.row] = (
                f"lies inside row {outer.row} ({outer.name!r}): the difference of the two reports is a group of "
                f"{inner.k} or more patients whose small counts neither report hides (docs/reports.md, "
                '"Between the reports of a batch")')
            break
    return notes


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
    """
    cohorts = sorted(cohorts, key=lambda c: c.row)
    n = 1 + max((int(c.patients.max()) for c in cohorts if len(c.patients)), default=-1)
    threshold = np.zeros(n, dtype=np.int64)          # the min_cell_count of a patient's reports (0: none yet)
    first_row = np.zeros(n, dtype=np.int64)
    by_row = {c.row: c for c in cohorts}
    links: dict[int, _Published] = {}                 # the published cohorts that show counts, by threshold
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
            published = links.setdefault(cohort.k, _Published(n))
            involved = published.small_union_with(cohort, ids)
            if involved is not None:
                names = [f"row {c.row} ({c.name!r})" for c in involved]
                names = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
                withheld[cohort.row] = (
                    f"its counts and those of {names} would give, by subtraction, the counts of a group "
                    f"of fewer than {cohort.k} patients (no count from 1 to {cohort.k - 1} may be shown, even by "
                    "subtraction); earlier cohorts of the spec take precedence")
                continue
            published.add(cohort, ids)
        fresh = threshold[ids] == 0
        first_row[ids[fresh]] = cohort.row
        threshold[ids] = cohort.k
    return withheld


class _Published:
    """The published cohorts of one threshold and the atoms their patients fall into."""

    def __init__(self, n_patients: int):
        self.cohorts: list[CohortMembers] = []
        self.atom_of = np.zeros(n_patients, dtype=np.int64)     # atom 0: in none of them
        self.members = [0]                                       # per atom: bit mask of its cohorts

    def _split(self, ids: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """Atoms after adding a cohort with these patients (its bit is the next one)."""
        inside = np.zeros(len(self.atom_of), dtype=np.int64)
        inside[ids] = 1
        codes, uniques = pd.factorize(self.atom_of * 2 + inside, sort=False)
        bit = 1 << len(self.cohorts)
        members = [self.members[int(u) // 2] | (bit if int(u) % 2 else 0) for u in uniques]
        return codes.astype(np.int64), members

    def add(self, cohort: CohortMembers, ids: np.ndarray) -> None:
        self.atom_of, self.members = self._split(ids)
        self.cohorts.append(cohort)

    def small_union_with(self, cohort: CohortMembers, ids: np.ndarray) -> list[CohortMembers] | None:
        """The earlier cohorts that, with this one, give a group of 1 to k - 1 patients by
        adding and subtracting reports; None when there is no such combination."""
        atom_of, members = self._split(ids)
        cohorts = [*self.cohorts, cohort]
        sizes = np.bincount(atom_of, minlength=len(members))
        keep = [a for a, m in enumerate(members) if m]           # atoms of patients in some cohort
        membership = np.array([[(members[a] >> bit) & 1 for a in keep] for bit in range(len(cohorts))], dtype=float)
        involved = _small_union(membership, sizes[keep], cohort.k)
        if involved is None:
            return None
        return [cohorts[i] for i in involved if cohorts[i] is not cohort]


def _small_union(membership: np.ndarray, sizes: np.ndarray, k: int) -> list[int] | None:
    """Rows of a combination of cohorts (membership: cohorts x atoms) whose sum is a group of
    1 to k - 1 patients, or None when no union of atoms that small is such a combination."""
    small = np.flatnonzero(sizes < k)
    if small.size == 0:
        return None
    large = np.flatnonzero(sizes >= k)
    # combinations of cohorts that cancel on every large atom: c' M_large = 0
    cancelling = _null_space(membership[:, large].T) if large.size else np.eye(membership.shape[0])
    if cancelling.shape[1] == 0:
        return None
    basis = _row_basis(cancelling.T @ membership[:, small])   # what they leave on the small atoms
    if basis.shape[0] == 0:
        return None
    union = _find_small_union(basis, sizes[small], k)
    target = np.zeros(membership.shape[1])
    if union is None:
        return None
    if union == ():
        # too many small atoms to try every union: be cautious, any isolating combination counts
        target[small] = basis[0]
    else:
        target[small[list(union)]] = 1.0
    coefficients, *_ = np.linalg.lstsq(membership.T, target, rcond=None)
    involved = [i for i, w in enumerate(coefficients) if abs(w) > 1e-9]
    return involved or list(range(membership.shape[0]))


def _find_small_union(basis: np.ndarray, sizes: np.ndarray, k: int) -> tuple[int, ...] | None:
    """A set of atoms (indices into ``sizes``) with 1 to k - 1 patients in all whose
    indicator lies in the row span of ``basis`` (orthonormal rows); None if there is none;
    ``()`` if there are too many unions to try (the caller is then cautious)."""
    order = [int(i) for i in np.argsort(sizes, kind="stable")]
    tried = 0

    def in_span(union: list[int]) -> bool:
        u = np.zeros(len(sizes))
        u[union] = 1.0
        return bool(np.linalg.norm(u - basis.T @ (basis @ u)) < 1e-8)

    stack: list[tuple[int, list[int], int]] = [(0, [], 0)]
    while stack:                      # depth-first over unions in increasing atom size, pruned by their total
        start, union, total = stack.pop()
        for position in range(start, len(order)):
            atom = order[position]
            if total + sizes[atom] >= k:
                break                 # sizes ascend: no later atom fits either
            tried += 1
            if tried > MAX_CANDIDATES:
                return ()
            grown = [*union, atom]
            if in_span(grown):
                return tuple(grown)
            stack.append((position + 1, grown, total + int(sizes[atom])))
    return None
def _null_space(a: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Orthonormal basis (columns) of {x : a x = 0}."""
    if a.size == 0:
        return np.eye(a.shape[1])
    _, s, vt = np.linalg.svd(a, full_matrices=True)
    rank = int((s > tol * max(1.0, s[0] if s.size else 1.0)).sum())
    return vt[rank:].T


def _row_basis(a: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Orthonormal basis (rows) of the row space of ``a``."""
    if a.size == 0:
        return np.zeros((0, a.shape[1]))
    _, s, vt = np.linalg.svd(a, full_matrices=False)
    rank = int((s > tol * max(1.0, s[0] if s.size else 1.0)).sum())
    return vt[:rank]
