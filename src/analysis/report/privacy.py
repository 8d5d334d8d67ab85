"""Small-cell suppression for everything a report shows.

The rule (CMS cell-size policy, DESIGN.md section 3): no count from 1 to k - 1 (default
k = 11) may be shown, directly or by subtraction from totals that are shown. Zero may be
shown. Three tools:

* :func:`suppress_table` for a table of counts with row and column totals: primary
  suppression of small cells, then complementary suppression (in every row and column
  that has exactly one suppressed cell and a shown total, the next smallest cell is
  suppressed too) until nothing can be recovered by subtraction;
* :func:`merge_small_steps` for a flow (attrition): small exclusions are merged with a
  neighbouring step so every count shown is 0 or at least k, and the chain of
  "in = excluded + remaining" still adds up;
* :func:`format_count` / :func:`format_percent` for counts in sentences.

The rest of the module applies them to the cohort report's tables, one function per kind
of table (:func:`masked_counts`, :func:`suppress_attrition`, :func:`suppress_table_one`,
:func:`suppress_categories`, :func:`sensitivity_table`, :func:`suppress_counts_in_text`),
so that every decision about what a report may show is made here.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = [
    "SUPPRESSED", "hidden_text", "is_small", "format_count", "format_percent", "suppress_table", "merge_small_steps",
    "counts_as_text", "masked_counts", "suppress_attrition", "suppress_table_one", "suppress_categories",
    "sensitivity_table", "suppress_counts_in_text",
]

#: what a suppressed cell shows
SUPPRESSED = "<{k}"


def is_small(n, k: int) -> np.ndarray:
    """Counts that must not be shown: 1 <= n < k."""
    n = np.asarray(n, dtype=float)
    return (n >= 1) & (n < k)


def hidden_text(n: int | float, k: int) -> str:
    """What a hidden cell shows: ``<k`` for a small count, ``suppressed`` for a cell hidden
    only so that a small one cannot be recovered (complementary suppression)."""
    return SUPPRESSED.format(k=k) if is_small(n, k) else "suppressed"


def format_count(n: int | float, k: int) -> str:
    """A count for a sentence or a table cell: the number, or ``"<k"`` when it is small.

    Examples
    --------
    >>> from analysis.report.privacy import format_count
    >>> format_count(283, 11), format_count(4, 11), format_count(0, 11)
    ('283', '<11', '0')
    """
    if n is None or (isinstance(n, float) and np.isnan(n)):
        return "–"
    return SUPPRESSED.format(k=k) if is_small(n, k) else f"{int(n)}"


def format_percent(n: int | float, of: int | float, k: int, digits: int = 1) -> str:
    """``n`` as a percentage of ``of``, suppressed when either count is small."""
    if not of or is_small(n, k) or is_small(of, k):
        return "–" if not of else "suppressed"
    return f"{100.0 * n / of:.{digits}f}%"


def suppress_table(counts: pd.DataFrame, k: int, *, row_totals: bool = True, column_totals: bool = True) -> pd.DataFrame:
    """Boolean mask of cells to hide in a table of counts (its margins are shown separately).

    Parameters
    ----------
    counts : DataFrame of non-negative counts
        The body of the table (no total row or column).
    k : int
        Smallest count that may be shown (counts 1 .. k-1 are suppressed).
    row_totals, column_totals : bool
        Whether the report shows the row and column totals; each shown total lets a single
        hidden cell in its row or column be recovered, so a second cell is hidden there.

    Returns
    -------
    DataFrame of bool, True where the cell must be hidden.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.report.privacy import suppress_table
    >>> t = pd.DataFrame({"yes": [40, 3], "no": [25, 30]}, index=["a", "b"])
    >>> suppress_table(t, 11).to_dict()
    {'yes': {'a': True, 'b': True}, 'no': {'a': True, 'b': True}}
    """
    values = counts.to_numpy(dtype=float)
    hide = is_small(values, k)
    changed = True
    while changed:
        changed = False
        for axis, shown in ((1, row_totals), (0, column_totals)):
            if not shown:
                continue
            lines = hide if axis == 1 else hide.T
            vals = values if axis == 1 else values.T
            for i in range(lines.shape[0]):
                if lines[i].sum() == 1:
                    candidates = np.where(~lines[i] & (vals[i] > 0), vals[i], np.inf)
                    if np.isfinite(candidates).any():
                        lines[i, int(np.argmin(candidates))] = True
                        changed = True
            hide = lines if axis == 1 else lines.T
    return pd.DataFrame(hide, index=counts.index, columns=counts.columns)


def merge_small_steps(steps: pd.DataFrame, k: int) -> pd.DataFrame:
    """Merge attrition steps whose exclusions are small into a neighbouring step.

    ``steps`` has columns ``step``, ``n_in``, ``n_excluded``, ``n_remaining``, ``reason`` in
    order (``n_in`` of a step is ``n_remaining`` of the one before). A step excluding 1 to k-1
    patients is merged with the next step that excludes any (or the previous one at the end),
    so that each shown exclusion is 0 or at least k. If the remaining count itself is small,
    it is shown as ``<k`` and the report should not go on to patient-level results.

    A small exclusion that has no neighbour to merge with (the only exclusion of the flow)
    is shown as ``<k``, and the counts before it as ``remaining + <k``, so the total it
    was subtracted from is not shown either. The report's other tables must then not show
    that total (they count analysed patients).

    Returns
    -------
    DataFrame with the same columns, counts as text ready to show.
    """
    rows = [dict(r) for _, r in steps.iterrows()]
    merged: list[dict] = []
    pending: dict | None = None
    for row in rows:
        if pending is not None:
            row = {
                "step": f"{pending['step']}; {row['step']}",
                "n_in": pending["n_in"],
                "n_excluded": pending["n_excluded"] + row["n_excluded"],
                "n_remaining": row["n_remaining"],
                "reason": "; ".join(r for r in (pending["reason"], row["reason"]) if r),
            }
            pending = None
        if is_small(row["n_excluded"], k):
            pending = row
            continue
        merged.append(row)
    if pending is not None:
        if merged:
            last = merged.pop()
            pending = {
                "step": f"{last['step']}; {pending['step']}",
                "n_in": last["n_in"],
                "n_excluded": last["n_excluded"] + pending["n_excluded"],
                "n_remaining": pending["n_remaining"],
                "reason": "; ".join(r for r in (last["reason"], pending["reason"]) if r),
            }
        merged.append(pending)
    out = pd.DataFrame(merged, columns=["step", "n_in", "n_excluded", "n_remaining", "reason"])
    shown = out.copy()
    for col in ("n_in", "n_excluded", "n_remaining"):
        shown[col] = [format_count(v, k) for v in out[col]]
    # a small exclusion left alone (nothing to merge with) would be recovered as n_in - n_remaining:
    # show the counts before it only as "remaining + <k"
    lone = np.flatnonzero(is_small(out["n_excluded"].to_numpy(dtype=float), k))
    if len(lone):
        last = int(lone[-1])
        after = out.loc[last, "n_remaining"]
        for i in range(last + 1):
            shown.loc[i, "n_in"] = f"{format_count(after, k)} + <{k}"
            if i < last:
                shown.loc[i, "n_remaining"] = f"{format_count(after, k)} + <{k}"
    return shown


# --- the report's tables ---------------------------------------------------------------------


def counts_as_text(values, k: int) -> list[str]:
    """Each count as :func:`format_count` shows it."""
    return [format_count(v, k) for v in values]


def masked_counts(counts: pd.DataFrame, value_cols: list[str], k: int, **totals) -> pd.DataFrame:
    """``counts`` with its ``value_cols`` as text: small cells, and the cells that would reveal
    them (:func:`suppress_table`, ``row_totals``/``column_totals`` as there), shown hidden.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"site": ["a", "b", "c"], "patients": [120, 4, 30]})
    >>> masked_counts(t, ["patients"], 11, row_totals=False, column_totals=True)["patients"].tolist()
    ['120', '<11', 'suppressed']
    """
    hide = suppress_table(counts[value_cols], k, **totals)
    shown = counts.copy()
    for col in value_cols:
        shown[col] = [hidden_text(v, k) if h else f"{int(v)}" for v, h in zip(counts[col], hide[col])]
    return shown


def suppress_attrition(patients: pd.DataFrame, k: int) -> pd.DataFrame:
    """The attrition flow of patients as shown (:func:`merge_small_steps`), in two segments merged
    separately: up to the analysis population (the step ``no endpoint``), whose size every other
    table shows, and after it (responders followed after induction)."""
    cols = ["step", "n_in", "n_excluded", "n_remaining", "reason"]
    split = int(patients.index[patients["step"] == "no endpoint"][0]) + 1
    before = merge_small_steps(patients.loc[: split - 1, cols], k)
    analysed = int(patients.loc[split - 1, "n_remaining"])
    after = merge_small_steps(pd.concat([pd.DataFrame([{"step": "patients with an endpoint", "n_in": analysed,
                                                         "n_excluded": 0, "n_remaining": analysed, "reason": ""}]),
                                         patients.loc[split:, cols]], ignore_index=True), k)
    return pd.concat([before, after.iloc[1:]], ignore_index=True)


def suppress_table_one(t1, k: int) -> pd.DataFrame:
    """The Table 1 as shown: a group of 1 to k - 1 patients is refused (it cannot be shown at
    all); within each characteristic, whose levels sum to each group's n (shown) and across
    groups to the overall column (shown), small cells and the cells revealing them are hidden.
    For flags the unshown "no" level takes part, so a small "no" hides its "yes".

    Raises
    ------
    CohortError
        A group (or the whole table) has 1 to k - 1 patients.
    """
    from .selection import CohortError

    table = t1.table.copy()
    group_cols = [c for c in t1.group_sizes.index if c != "overall"]
    for col in ["overall", *group_cols]:
        if 1 <= t1.group_sizes[col] < k:
            raise CohortError(f"Table 1: group {col!r} has fewer than {k} patients; merge or drop it")
    row_of = {}
    current = None
    for idx, row in table.iterrows():
        current = row["characteristic"] or current
        row_of[(current, row["level"])] = idx
    for characteristic, block in t1.counts[t1.counts["characteristic"] != "n"].groupby("characteristic", sort=False):
        hide_groups = suppress_table(block[group_cols].fillna(0), k, row_totals=True, column_totals=True)
        hide_overall = suppress_table(block[["overall"]].fillna(0), k, row_totals=False, column_totals=True)
        hide = pd.concat([hide_overall, hide_groups], axis=1)
        for i, (_, row) in enumerate(block.iterrows()):
            if not row["shown"]:
                continue
            idx = row_of[(characteristic, row["level"])]
            for col in hide.columns:
                if hide.iloc[i][col]:
                    table.loc[idx, col] = hidden_text(row[col], k)
    return table


def suppress_categories(categories: pd.DataFrame, k: int) -> pd.Series:
    """Which response categories to hide (bool by ``outcome``): their counts ``n`` sum to the
    shown number of patients with an endpoint, so one small category hides another."""
    return suppress_table(categories.set_index("outcome")[["n"]].T, k, row_totals=True, column_totals=False).T["n"]


def sensitivity_table(counts: pd.DataFrame, k: int) -> pd.DataFrame:
    """The sensitivity analyses as shown, from :func:`analysis.report.analyses.sensitivity_counts`.

    A count (patients with an endpoint, followed, responders, remitters) of a row on the main
    analysis's instrument that differs from the first row's by 1 to k - 1 is ``suppressed``
    with its percentage: the difference would be a small count recovered by subtraction.
    """
    rows = []
    for _, r in counts.iterrows():
        of = r["with_endpoint"]
        rows.append({
            "analysis": r["analysis"], "instrument": r["instrument"], "patients with endpoint": format_count(of, k),
            "response": format_percent(r["responders"], of, k), "remission": format_percent(r["remitters"], of, k),
            "followed after induction": format_count(r["followed"], k),
            "median days to relapse": "not reached" if np.isnan(r["median_days"]) else f"{r['median_days']:.0f}",
        })
    table = pd.DataFrame(rows)
    raw = {"patients with endpoint": "with_endpoint", "followed after induction": "followed", "response": "responders",
           "remission": "remitters"}
    first = counts.iloc[0]
    for i in range(1, len(table)):
        if counts.iloc[i]["instrument"] != first["instrument"]:
            continue
        for col, source in raw.items():
            if 1 <= abs(counts.iloc[i][source] - first[source]) < k:
                table.loc[i, col] = "suppressed"
    return table


_COUNT_IN_TEXT = re.compile(r"(?<![\d.])(\d+)(?![\d.%])")


def suppress_counts_in_text(text: str, k: int) -> str:
    """Every whole number of a note (not a decimal or a percentage) as :func:`format_count` shows it.

    Examples
    --------
    >>> suppress_counts_in_text("few events in exposed (7); 2.5% missing; 40 patients", 11)
    'few events in exposed (<11); 2.5% missing; 40 patients'
    """
    return _COUNT_IN_TEXT.sub(lambda m: format_count(int(m.group(1)), k), str(text))
