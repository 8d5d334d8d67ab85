"""Small-cell suppression for everything a report shows.

The rule (CMS cell-size suppression policy, DESIGN.md section 3): no count from 1 to k - 1
(default k = 11, the "1 to 10 rule") may be shown, directly or by subtraction from totals,
margins, percentages or other outputs that are shown. Zero may be shown.

Suppression is decided **once per report**, by one :class:`Disclosure` object that every
output (HTML and notebook body, CSV tables, key figures, figure annotations) goes through:
it knows the report-wide decisions (which response categories are hidden, whether the
number of responders followed may be shown next to the number of responders) so no
section contradicts another. The tools it uses:

* :func:`suppress_table` for a table of counts with row and column totals: primary
  suppression of small cells, then complementary suppression (in every row and column
  with a shown total, hidden cells are added until their sum, which subtraction gives
  back, is itself 0 or at least k) until nothing can be recovered;
* :func:`merge_small_steps` for a flow (attrition): small exclusions are merged with a
  neighbouring step so every count shown is 0 or at least k, and the chain of
  "in = excluded + remaining" still adds up;
* :func:`format_count` / :func:`format_percent` for a count on its own (a sentence, a
  number at risk): ``<k`` when small;
* :func:`suppress_counts_in_text` for notes written by other modules: every whole number
  standing as a word (never digits inside a name such as ``baseline_gad7``).

Every hidden cell of a table shows the same mark (:data:`HIDDEN`), whether it is small or
hidden only to protect a small one: two marks would tell a reader which cell is small.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "SUPPRESSED", "HIDDEN", "Disclosure", "hidden_text", "is_small", "format_count", "format_percent",
    "suppress_table", "merge_small_steps", "counts_as_text", "masked_counts", "suppress_attrition",
    "suppress_table_one", "suppress_categories", "sensitivity_table", "suppress_counts_in_text",
    "hide_at_risk_rows", "suppress_adjunct_estimates",
]

#: what a count shown on its own (a sentence, a number at risk) shows when it is small
SUPPRESSED = "<{k}"
#: what every hidden cell of a table with totals shows (small or hidden to protect a small one)
HIDDEN = "*"


def is_small(n, k: int) -> np.ndarray:
    """Counts that must not be shown: 1 <= n < k."""
    n = np.asarray(n, dtype=float)
    return (n >= 1) & (n < k)


def hidden_text(n: int | float, k: int) -> str:
    """What a hidden cell of a table shows: :data:`HIDDEN`, the same for every hidden cell."""
    return HIDDEN


def format_count(n: int | float, k: int) -> str:
    """A count for a sentence or a table cell: the number, or ``"<k"`` when it is small.

    Examples
    --------
    >>> from analysis.report.privacy import format_count
    >>> format_count(283, 11), format_count(4, 11), format_count(0, 11)
    ('283', '<11', '0')
    """
    if n is None or (isinstance(n, float) and np.isnan(n)):
        return ""
    return SUPPRESSED.format(k=k) if is_small(n, k) else f"{int(n)}"


def format_percent(n: int | float, of: int | float, k: int, digits: int = 1) -> str:
    """``n`` as a percentage of ``of``; not shown (``suppressed``) when either count is small,
    or when ``of - n`` is (the percentage and the total would give it back)."""
    if not of:
        return ""
    if is_small(n, k) or is_small(of, k) or is_small(of - n, k):
        return "suppressed"
    return f"{100.0 * n / of:.{digits}f}%"


def suppress_table(counts: pd.DataFrame, k: int, *, row_totals: bool = True, column_totals: bool = True,
                   hidden: pd.DataFrame | None = None) -> pd.DataFrame:
    """Boolean mask of cells to hide in a table of counts (its margins are shown separately).

    Primary suppression hides every count from 1 to k - 1. In each row (column) whose total
    is shown, the hidden cells' sum is known by subtraction, so a lone hidden cell is given
    back and a small sum is itself a small count: while a line has one hidden cell or a
    hidden sum from 1 to k - 1, its smallest positive cell still shown is hidden too
    (complementary suppression), repeated over rows and columns until nothing changes.

    Parameters
    ----------
    counts : DataFrame of non-negative counts
        The body of the table (no total row or column).
    k : int
        Smallest count that may be shown (counts 1 .. k-1 are suppressed).
    row_totals, column_totals : bool
        Whether the report shows the row and column totals.
    hidden : DataFrame of bool, optional
        Cells already hidden for another reason (they stay hidden).

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

    Two small cells summing to 2 beside a total of 13 would both be known to be 1:

    >>> sex = pd.DataFrame({"n": [11, 1, 1]}, index=["female", "male", "other"]).T
    >>> suppress_table(sex, 11, row_totals=True, column_totals=False).loc["n"].tolist()
    [True, True, True]
    """
    values = np.nan_to_num(counts.to_numpy(dtype=float))
    hide = is_small(values, k)
    if hidden is not None:
        hide |= hidden.reindex(index=counts.index, columns=counts.columns, fill_value=False).to_numpy(dtype=bool)
    changed = True
    while changed:
        changed = False
        for axis, shown in ((1, row_totals), (0, column_totals)):
            if not shown:
                continue
            lines = hide if axis == 1 else hide.T
            vals = values if axis == 1 else values.T
            for i in range(lines.shape[0]):
                # one hidden cell is given back exactly by subtraction, a small hidden sum as a small count
                while lines[i].sum() == 1 or is_small(vals[i][lines[i]].sum(), k):
                    candidates = np.where(~lines[i] & (vals[i] > 0), vals[i], np.inf)
                    if not np.isfinite(candidates).any():
                        break       # every positive cell hidden: the caller must not show this total
                    lines[i, int(np.argmin(candidates))] = True
                    changed = True
            hide = lines if axis == 1 else lines.T
    return pd.DataFrame(hide, index=counts.index, columns=counts.columns)


@dataclass
class Disclosure:
    """What one report may show, decided once and used by every output of the report.

    Parameters
    ----------
    k : int
        Smallest count that may be shown (counts 1 .. k-1 are suppressed).
    analysed : int
        Patients with an endpoint: the analysis population, whose size the report shows.
    categories : Mapping of category to count
        Patients per response category (non-responder, partial, responder); they sum to
        ``analysed``.
    followed : int
        Responders followed after induction (the relapse analysis).
    remitters : int
        Patients in remission at the end of induction.

    Examples
    --------
    >>> from analysis.report.privacy import Disclosure
    >>> d = Disclosure(11, analysed=40, categories={"non-responder": 25, "partial": 4, "responder": 11}, followed=9)
    >>> [d.category(c) for c in ("non-responder", "partial", "responder")]
    ['25', '*', '*']
    >>> d.table_one_groups()
    {'non-responder': 'non-responder', 'partial': 'partial or responder', 'responder': 'partial or responder'}
    >>> d.followed_shown, d.count(9), d.percent(25, 40), d.percent(30, 40)   # 40 - 30 would be a small count
    (False, '<11', '62.5%', 'suppressed')
    """

    k: int
    analysed: int
    categories: dict = field(default_factory=dict)
    followed: int = 0
    remitters: int = 0

    def __post_init__(self):
        self.categories = {str(c): int(n) for c, n in dict(self.categories).items()}
        frame = pd.DataFrame({"outcome": list(self.categories), "n": list(self.categories.values())})
        hidden = suppress_categories(frame, self.k) if len(frame) else pd.Series(dtype=bool)
        if is_small(self.analysed, self.k):
            hidden[:] = True
        #: response categories every output hides (decided here, once)
        self.category_hidden: dict[str, bool] = {c: bool(hidden.get(c, False)) for c in self.categories}
        responders = self.categories.get("responder", 0)
        #: whether the number of responders followed may be shown: not when it differs from the
        #: number of responders (shown or not) by a small count
        self.followed_shown = bool(not self.category_hidden.get("responder") and not is_small(self.followed, self.k)
                                   and not is_small(responders - self.followed, self.k))
        #: whether the number in remission may be shown: not when small, nor when it differs from
        #: the patients with an endpoint or from the responders shown by a small count
        self.remission_shown = bool(
            not is_small(self.remitters, self.k) and not is_small(self.analysed - self.remitters, self.k)
            and not is_small(self.analysed, self.k)
            and (self.category_hidden.get("responder") or not is_small(responders - self.remitters, self.k)))

    # --- counts and percentages --------------------------------------------------------------

    def count(self, n) -> str:
        """A count standing on its own (:func:`format_count`)."""
        return format_count(n, self.k)

    def percent(self, n, of) -> str:
        """A percentage of counts standing on their own (:func:`format_percent`)."""
        return format_percent(n, of, self.k)

    def part(self, part, whole, *, whole_shown: bool = True) -> str:
        """A count that is part of another shown one (events of the patients followed): hidden
        (``suppressed``) when the rest, ``whole - part``, is small and ``whole`` is shown."""
        if is_small(part, self.k):
            return self.count(part)
        if whole_shown and is_small(whole - part, self.k):
            return "suppressed"
        return self.count(part)

    def cells(self, counts: pd.DataFrame, value_cols: list[str], **totals) -> pd.DataFrame:
        """A table of counts with the totals named shown (:func:`masked_counts`)."""
        return masked_counts(counts, value_cols, self.k, **totals)

    def text(self, note: str) -> str:
        """A note written elsewhere with its counts suppressed (:func:`suppress_counts_in_text`)."""
        return suppress_counts_in_text(note, self.k)

    # --- report-wide decisions -----------------------------------------------------------------

    def category(self, name: str) -> str:
        """The count of a response category as every output shows it."""
        return HIDDEN if self.category_hidden.get(name) else self.count(self.categories.get(name, 0))

    def category_percent(self, name: str) -> str:
        """The share of a response category as every output shows it."""
        if self.category_hidden.get(name) or is_small(self.analysed, self.k):
            return "suppressed"
        return self.percent(self.categories.get(name, 0), self.analysed)

    def followed_count(self) -> str:
        """The number of responders followed after induction, as every output shows it."""
        return self.count(self.followed) if self.followed_shown else "suppressed"

    def table_one_groups(self) -> dict[str, str]:
        """The column of Table 1 each response category goes to: the shown categories each in
        its own, the hidden ones together (their sum, known from the shown ones, is 0 or at
        least k); with everything hidden, none (overall only)."""
        names = list(self.categories)
        hidden = [c for c in names if self.category_hidden[c]]
        if len(hidden) == len(names):
            return {}
        label = " or ".join(hidden)
        return {c: (label if c in hidden else c) for c in names if self.categories[c] > 0 or c not in hidden}


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
    """Each count as :func:`format_count` shows it (counts standing on their own)."""
    return [format_count(v, k) for v in values]


def masked_counts(counts: pd.DataFrame, value_cols: list[str], k: int, **totals) -> pd.DataFrame:
    """``counts`` with its ``value_cols`` as text: small cells, and the cells that would reveal
    them (:func:`suppress_table`, ``row_totals``/``column_totals`` as there), shown as :data:`HIDDEN`.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"site": ["a", "b", "c"], "patients": [120, 4, 30]})
    >>> masked_counts(t, ["patients"], 11, row_totals=False, column_totals=True)["patients"].tolist()
    ['120', '*', '*']
    """
    hide = suppress_table(counts[value_cols], k, **totals)
    shown = counts.copy()
    for col in value_cols:
        shown[col] = [HIDDEN if h else f"{int(v)}" for v, h in zip(counts[col], hide[col])]
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


def suppress_linked(groups: pd.DataFrame, overall: pd.Series, k: int) -> tuple[pd.DataFrame, pd.Series]:
    """Masks for a block of counts by group whose rows sum to ``overall`` (shown beside them),
    with every group's and the overall column's total shown (a Table 1 block).

    A hidden overall cell must have a hidden cell among its groups (else their sum gives
    it back), and a hidden group cell's row keeps a hidden sum of 0 or at least k; both are
    enforced together until nothing changes.
    """
    groups = groups.astype(float).fillna(0)
    overall_frame = overall.astype(float).fillna(0).to_frame("overall")
    hide_o = suppress_table(overall_frame, k, row_totals=False, column_totals=True)
    if groups.shape[1] == 0:
        return groups.astype(bool), hide_o["overall"]
    hide_g = suppress_table(groups, k, row_totals=True, column_totals=True)
    while True:
        values = groups.to_numpy(dtype=float)
        extra = hide_g.copy()
        for i, row in enumerate(hide_g.index):
            if hide_o.iloc[i, 0] and not (hide_g.iloc[i].to_numpy(dtype=bool) & (values[i] > 0)).any():
                candidates = np.where(values[i] > 0, values[i], np.inf)
                if np.isfinite(candidates).any():
                    extra.iloc[i, int(np.argmin(candidates))] = True
        # a row whose groups are hidden with the overall cell shown: the overall must be hideable too
        # when the groups' hidden sum is small (suppress_table handles it given the overall is shown)
        new_g = suppress_table(groups, k, row_totals=True, column_totals=True, hidden=extra)
        if new_g.equals(hide_g):
            return hide_g, hide_o["overall"]
        hide_g = new_g


def suppress_table_one(t1, k: int) -> pd.DataFrame:
    """The Table 1 as shown. Every group must have 0 or at least k patients (the report merges
    small response categories first: :meth:`Disclosure.table_one_groups`); within each
    characteristic, whose levels sum to each group's n (shown) and across groups to the
    overall column (shown), small cells and the cells revealing them are hidden. For flags
    the unshown "no" level takes part, so a small "no" hides its "yes".

    Raises
    ------
    ValueError
        A group has 1 to k - 1 patients (a bug of the caller: it must be merged first).
    """
    table = t1.table.copy()
    group_cols = [c for c in t1.group_sizes.index if c != "overall"]
    for col in ["overall", *group_cols]:
        if is_small(t1.group_sizes[col], k):
            raise ValueError(f"Table 1: group {col!r} has {int(t1.group_sizes[col])} patients, from 1 to {k - 1}: "
                             "merge it before suppression")
    row_of = {}
    current = None
    for idx, row in table.iterrows():
        current = row["characteristic"] or current
        row_of[(current, row["level"])] = idx
    for characteristic, block in t1.counts[t1.counts["characteristic"] != "n"].groupby("characteristic", sort=False):
        block = block.reset_index(drop=True)
        hide_g, hide_o = suppress_linked(block[group_cols], block["overall"], k)
        hide = pd.concat([hide_o.rename("overall"), hide_g], axis=1)
        for i, row in block.iterrows():
            if not row["shown"]:
                continue
            idx = row_of[(characteristic, row["level"])]
            for col in hide.columns:
                if hide.iloc[i][col]:
                    table.loc[idx, col] = HIDDEN
    return table


def suppress_categories(categories: pd.DataFrame, k: int) -> pd.Series:
    """Which response categories to hide (bool by ``outcome``): their counts ``n`` sum to the
    shown number of patients with an endpoint, so one small category hides another."""
    return suppress_table(categories.set_index("outcome")[["n"]].T, k, row_totals=True, column_totals=False).T["n"]


def sensitivity_table(counts: pd.DataFrame, k: int, *, first_hidden: dict | None = None) -> pd.DataFrame:
    """The sensitivity analyses as shown, from :func:`analysis.report.analyses.sensitivity_counts`.

    A count (patients with an endpoint, followed, responders, remitters) that differs from
    the same count of any other row by 1 to k - 1 is ``suppressed`` with its percentage: the
    difference would be a small count recovered by subtraction (the rows' populations
    overlap, on a second instrument too). ``first_hidden`` holds the report's decisions for
    the first row (``responders``, ``remitters``, ``followed``: True to hide), which the
    other sections show too.
    """
    raw = {"patients with endpoint": "with_endpoint", "followed after induction": "followed", "response": "responders",
           "remission": "remitters"}
    values = counts[list(raw.values())].to_numpy(dtype=float)
    hide = is_small(values, k)
    for j in range(values.shape[1]):
        for i in range(1, len(values)):
            if any(is_small(abs(values[i, j] - values[m, j]), k) for m in range(i)):
                hide[i, j] = True
    for source, hidden in (first_hidden or {}).items():
        if hidden:
            hide[0, list(raw.values()).index(source)] = True
    rows = []
    for i, (_, r) in enumerate(counts.iterrows()):
        of = r["with_endpoint"]
        shown = dict(zip(raw, ~hide[i]))

        def pct(n, col):
            return format_percent(n, of, k) if shown[col] and shown["patients with endpoint"] else "suppressed"

        rows.append({
            "analysis": r["analysis"], "instrument": r["instrument"],
            "patients with endpoint": format_count(of, k) if shown["patients with endpoint"] else "suppressed",
            "response": pct(r["responders"], "response"), "remission": pct(r["remitters"], "remission"),
            "followed after induction": format_count(r["followed"], k) if shown["followed after induction"]
            else "suppressed",
            "median days to relapse": ("not shown" if r["followed"] < k else "not reached" if np.isnan(r["median_days"])
                                       else f"{r['median_days']:.0f}"),
        })
    return pd.DataFrame(rows)


def hide_at_risk_rows(table: pd.DataFrame, k: int) -> pd.DataFrame:
    """A Kaplan-Meier table at chosen times as shown: rows with fewer than k at risk (or, with a
    ``remaining`` column, fewer than k left after the time) lose their survival, interval and
    events (the plot stops there too), and at-risk and event counts are shown as
    :func:`format_count` does."""
    out = table.copy()
    few = out["at_risk"].to_numpy(dtype=float) < k
    if "remaining" in out:
        few |= out["remaining"].to_numpy(dtype=float) < k
    for col in ("survival", "ci_lower", "ci_upper"):
        if col in out:
            out[col] = [None if f else v for v, f in zip(out[col], few)]
    if "events" in out:
        # events up to a time with fewer than k at risk, with the at-risk counts, would give back how
        # many remain: not shown past the cut-off (as the curve is not drawn there)
        out["events"] = out["events"].astype(object)
        out.loc[few, "events"] = None
    for col in ("at_risk", "events"):
        if col in out:
            out[col] = ["" if v is None or pd.isna(v) else format_count(v, k) for v in out[col]]
    return out


def suppress_adjunct_estimates(estimates: pd.DataFrame, k: int) -> pd.Series:
    """Which rows of an adjunct comparison's ``estimates`` to hide (bool by row).

    A binary outcome's estimate (odds ratio, risk difference, crude or adjusted) with the
    group sizes shown gives back the events of each group: the crude risk difference plus
    the reference rate times the exposed n is the exposed events. So every estimate of a
    binary outcome of an adjunct is hidden when its exposed or reference events or
    non-events are from 1 to k - 1.
    """
    rows = []
    for _, r in estimates.iterrows():
        counts = [r.get("events_exposed"), r.get("events_reference")]
        binary = str(r.get("outcome", "")).startswith(("response", "remission"))
        if any(c is None or pd.isna(c) for c in counts) or not binary:
            rows.append(False)
            continue
        n1, n0 = float(r["n_exposed"]), float(r["n_reference"])
        e1, e0 = float(counts[0]), float(counts[1])
        rows.append(bool(is_small([e1, n1 - e1, e0, n0 - e0], k).any()))
    hide = pd.Series(rows, index=estimates.index)
    # every estimate of the same adjunct and outcome goes together (crude and adjusted, OR and RD)
    keys = estimates["adjunct"].astype(str) + "|" + estimates["outcome"].astype(str).str.replace(
        r" \(risk difference\)", "", regex=True)
    return keys.map(hide.groupby(keys).any()).astype(bool)


#: a count in a note: a whole number before a word that counts people or rows, or alone in brackets
_COUNT_IN_TEXT = re.compile(
    r"(?<![\w.,=])(\d+)(?=\s+(?:exposed|reference|patients?|rows?|events?|intervals?|responders?|courses?|"
    r"remitters?|relapses?|sessions?|assessments?|people|persons?|non-events?)\b)"
    r"|(?<=\()(\d+)(?=\))")


def suppress_counts_in_text(text: str, k: int) -> str:
    """Every count of a note (a whole number before a word such as ``patients``, ``exposed``,
    ``rows`` or ``events``, or alone in brackets) as :func:`format_count` shows it; other
    numbers (a decimal, a percentage, a setting such as ``relapse_confirmations=1``, digits
    inside a name such as ``baseline_gad7``) are left alone.

    Examples
    --------
    >>> suppress_counts_in_text("few events in exposed (7); 2.5% missing; 40 patients; 3 rows; baseline_gad7; with 2", 11)
    'few events in exposed (<11); 2.5% missing; 40 patients; <11 rows; baseline_gad7; with 2'
    """
    return _COUNT_IN_TEXT.sub(lambda m: format_count(int(m.group(1) or m.group(2)), k), str(text))
