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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SUPPRESSED", "hidden_text", "is_small", "format_count", "format_percent", "suppress_table", "merge_small_steps"]

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
