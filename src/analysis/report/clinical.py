"""What the report shows of competing risks, the treatment course and the clinical-significance
figures (issue 14), and of the imputed response rate (issue 13), as shown: every function
here takes unsuppressed results and returns text or tables that hide what the report's
:class:`~analysis.report.privacy.Disclosure` hides.

* :func:`cut_competing_for_display` and :func:`cut_course_for_display` cut curves where
  fewer than k remain at risk (as the Kaplan-Meier curves are), and merge the course's
  states entered by 1 to k - 1 patients;
* :func:`incidence_rows` gives the cumulative incidence at chosen days with the at-risk rule
  of the Kaplan-Meier table;
* :func:`reliable_change_table` shows the reliable-change counts as a table with its total;
* :func:`adjunct_nnt_evalue` gives the NNT and E-value of each shown adjunct estimate (an
  NNT or E-value is a function of its estimate: hidden with it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import formatting as fmt
from .privacy import Disclosure, is_small

__all__ = ["competing_incidence", "cut_competing_for_display", "merge_small_states", "cut_course_for_display", "incidence_rows", "reliable_change_table",
           "adjunct_nnt_evalue", "CAUSE_LABELS", "RARE_OUTCOME"]

#: how the report names the causes ending a responder's follow-up
CAUSE_LABELS = {"relapse": "relapse", "boosted": "boosted before a relapse was confirmed",
                "stopped": "stopped for no benefit", "lost": "lost to follow-up"}

#: VanderWeele & Ding (2017): an outcome under 15 % at the end of follow-up is rare, and an
#: OR or HR then approximates the RR; above it the square-root conversions apply
RARE_OUTCOME = 0.15


def competing_incidence(data: pd.DataFrame, *, conf_level: float, time: str = "time", cause: str = "cause",
                        censor: str = "censored"):
    """:func:`analysis.survival.cumulative_incidence` of ``data``, also when no follow-up is
    censored (every responder relapsed, was boosted, stopped or was lost), which a text status
    without its censoring value does not allow: the causes are then passed as codes 1, 2, ...
    (0 censored) and the result's causes named back. Returns the result and the name of each
    of its causes.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.report.clinical import competing_incidence
    >>> d = pd.DataFrame({"time": [3.0, 5.0, 8.0, 9.0], "cause": ["relapse", "boosted", "relapse", "boosted"]})
    >>> ci, names = competing_incidence(d, conf_level=0.95)
    >>> [names[c] for c in ci.causes], ci.at([9]).set_index("cause")["estimate"].round(2).tolist()
    (['relapse', 'boosted'], [0.5, 0.5])
    """
    import warnings

    from ..survival import cumulative_incidence

    values = data[cause].astype(str)
    if (values == censor).any():
        ci = cumulative_incidence(data, time, cause, censor=censor, conf_level=conf_level)
        return ci, {c: str(c) for c in ci.causes}
    order = [c for c in CAUSE_LABELS if c in set(values)] + sorted(set(values) - set(CAUSE_LABELS))
    codes = data.assign(**{cause: values.map({c: i + 1 for i, c in enumerate(order)}).astype(int)})
    with warnings.catch_warnings():
        # no row censored is the fact here, not a mistake in the status column
        warnings.filterwarnings("ignore", "column .* no row has the censoring value", UserWarning)
        ci = cumulative_incidence(codes, time, cause, censor=0, conf_level=conf_level)
    return ci, {c: order[int(c) - 1] for c in ci.causes}


def _display_cut(times: np.ndarray, k: int) -> float:
    """The last time after which at least k of ``times`` remain (``-inf`` if none)."""
    unique = np.sort(np.unique(times))
    remaining = np.array([(times > t).sum() for t in unique])
    ok = unique[remaining >= k]
    return float(ok.max()) if len(ok) else -np.inf


def cut_competing_for_display(data: pd.DataFrame, k: int, *, time: str = "time", cause: str = "cause",
                              censor: str = "censored") -> pd.DataFrame:
    """Competing-risk data censored after the last time at which at least k remain at risk
    (the rule of :func:`analysis.report.figures.censor_for_display`), so no drawn step
    leaves fewer than k.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.report.clinical import cut_competing_for_display
    >>> d = pd.DataFrame({"time": [5.0] * 12 + [9.0] * 3, "cause": ["relapse"] * 12 + ["boosted"] * 3})
    >>> cut = cut_competing_for_display(d, 3)
    >>> cut["cause"].value_counts().to_dict(), float(cut["time"].max())
    ({'relapse': 12, 'censored': 3}, 5.0)
    """
    out = data[[time, cause]].copy()
    out[cause] = out[cause].astype(str)
    cut = _display_cut(out[time].to_numpy(dtype=float), k)
    late = out[time] > cut
    out.loc[late, time] = max(cut, 0.0) if np.isfinite(cut) else 0.0
    out.loc[late, cause] = censor
    return out


#: states of the course merged into another for display when entered by 1 to k - 1 patients
_MERGE_INTO = {"re-response": "response", "stopped": "lost", "lost": "non-response", "relapse": "response"}


def merge_small_states(transitions: pd.DataFrame, k: int) -> tuple[pd.DataFrame, dict]:
    """The course transitions with every state entered by 1 to k - 1 patients merged into a
    neighbouring one (re-response into response, stopped into lost, lost into non-response,
    relapse into response) until every state is entered by 0 or at least k patients.

    Returns the table and the merged states (each state's shown name).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.report.clinical import merge_small_states
    >>> t = pd.DataFrame({"patient_id": list("abcd"), "tstart": 0.0, "tstop": [5.0, 6.0, 7.0, 8.0],
    ...                   "from_state": "induction", "to_state": ["response", "response", "stopped", "lost"]})
    >>> merged, names = merge_small_states(t, 2)
    >>> merged["to_state"].tolist(), names
    (['response', 'response', 'lost', 'lost'], {'stopped': 'lost'})
    """
    out = transitions.copy()
    out["from_state"] = out["from_state"].astype(str)
    out["to_state"] = out["to_state"].astype(str)
    names: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        entered = out.loc[out["to_state"] != "censored"].groupby("to_state")["patient_id"].nunique()
        for state in _MERGE_INTO:
            if is_small(entered.get(state, 0), k):
                into = _MERGE_INTO[state]
                names = {s: (into if v == state else v) for s, v in names.items()}
                names[state] = into
                out[["from_state", "to_state"]] = out[["from_state", "to_state"]].replace(state, into)
                changed = True
                break
    # a stay from a state into itself (after merging) is no transition
    same = out["from_state"] == out["to_state"]
    out.loc[same, "to_state"] = "censored"
    return out, names


def cut_course_for_display(transitions: pd.DataFrame, k: int) -> tuple[pd.DataFrame, dict]:
    """The course transitions as drawn: small states merged (:func:`merge_small_states`) and
    every stay cut at the last time at which at least k patients are still in a state they can
    leave after it (so no drawn step is a move of a small remainder): the curve runs flat to
    the next move, which is drawn as censoring with every later one.

    Returns the table and the merged states (each state's shown name).
    """
    out, names = merge_small_states(transitions, k)
    absorbing = {"non-response", "stopped", "lost"}
    transient = out[~out["from_state"].isin(absorbing)]
    stops = np.sort(transient["tstop"].unique())
    at_risk_after = np.array([((transient["tstart"] <= t) & (transient["tstop"] > t)).sum() for t in stops])
    ok = stops[at_risk_after >= k]
    if not len(ok):
        return out.iloc[:0].copy(), names
    # drawn up to the next time anyone moves (nothing happens in between), that move and every
    # later one shown as censoring: the last step drawn leaves at least k at risk
    later = stops[stops > ok.max()]
    if not len(later):
        return out, names
    cut = float(later.min())
    out = out[out["tstart"] < cut].copy()
    late = out["tstop"] >= cut
    out.loc[late, "tstop"] = cut
    out.loc[late, "to_state"] = "censored"
    return out, names


def incidence_rows(ci, data: pd.DataFrame, days: list[float], causes: list[str], k: int,
                   names: dict | None = None) -> pd.DataFrame:
    """The cumulative incidence of each of ``causes`` at ``days`` as shown: a day with fewer
    than k at risk, or fewer than k remaining after it, shows no estimate (the curve stops
    there too). Columns ``cause, day, estimate, ci_lower, ci_upper`` (NaN where not shown);
    ``names`` names the result's causes (:func:`competing_incidence`)."""
    at = ci.at(days)
    at["cause"] = [str((names or {}).get(c, c)) for c in at["cause"]]
    times = data["time"].to_numpy(dtype=float)
    rows = []
    for _, r in at[at["cause"].isin(causes)].iterrows():
        remaining = int((times > r["time"]).sum())
        few = r["at_risk"] < k or remaining < k
        rows.append({"cause": str(r["cause"]), "day": float(r["time"]),
                     **{c: (np.nan if few else float(r[c])) for c in ("estimate", "ci_lower", "ci_upper")}})
    return pd.DataFrame(rows, columns=["cause", "day", "estimate", "ci_lower", "ci_upper"])


def reliable_change_table(rc, privacy: Disclosure) -> pd.DataFrame:
    """Reliable-change categories (recovered, improved, unchanged, deteriorated) as shown:
    their counts add up to the patients analysed, which the report shows, so small counts and
    the counts that would give them back are hidden (:meth:`Disclosure.cells`), with their
    percentages.

    Examples
    --------
    >>> import pandas as pd
    >>> from types import SimpleNamespace
    >>> from analysis.report.privacy import Disclosure
    >>> from analysis.report.clinical import reliable_change_table
    >>> rc = SimpleNamespace(table=pd.DataFrame({"category": ["recovered", "improved", "unchanged", "deteriorated"],
    ...                                          "n": [281, 92, 120, 1]}))
    >>> d = Disclosure(11, analysed=494, categories={"responder": 284, "partial": 98, "non-responder": 112})
    >>> reliable_change_table(rc, d)["patients"].tolist()     # 1 hidden, and 92 so that it cannot be subtracted
    ['281', '*', '120', '*']
    """
    counts = rc.table[["category", "n"]].rename(columns={"n": "patients"}).reset_index(drop=True)
    shown = privacy.cells(counts, ["patients"], row_totals=False, column_totals=True)
    of = int(counts["patients"].sum())
    shown["percent"] = [fmt.percent(n / of) if s != "*" and of and not is_small(of, privacy.k) else "suppressed"
                        for n, s in zip(counts["patients"], shown["patients"])]
    return shown


def adjunct_nnt_evalue(estimates: pd.DataFrame, hide: pd.Series, conf_level: float) -> pd.DataFrame:
    """The NNT (from each adjusted risk difference) and the E-value (each adjusted OR, RD and
    HR) of an adjunct comparison's estimates, for the rows shown; rows ``hide`` marks get
    ``not shown`` (an NNT or E-value gives its estimate back; the estimate's cell says why).

    The risk difference is exposed minus reference, so for response (a good outcome) a
    positive one is a benefit (NNTB) and a negative one a harm (NNTH). An OR or HR is put on
    the risk-ratio scale as VanderWeele & Ding (2017) state: directly when the outcome is rare
    in the reference group (under 15 %), by the square-root conversions otherwise; a risk
    difference with the reference group's risk.

    Returns a table indexed as ``estimates`` with columns ``nnt`` and ``e_value`` (text,
    empty where the row has none).
    """
    from ..effects import e_value, nnt

    out = pd.DataFrame({"nnt": "", "e_value": ""}, index=estimates.index)
    for i, r in estimates.iterrows():
        if not str(r["measure"]).endswith("_adjusted"):
            continue
        if hide[i]:
            out.loc[i, ["nnt", "e_value"]] = ["not shown"] * 2 if r["scale"] == "RD" else ["", "not shown"]
            continue
        est, lo, hi = (float(r[c]) for c in ("estimate", "ci_lower", "ci_upper"))
        if not np.isfinite([est, lo, hi]).all():
            out.loc[i, "e_value"] = fmt.NOT_ESTIMABLE
            continue
        risk0 = (float(r["events_reference"]) / float(r["n_reference"])
                 if pd.notna(r.get("events_reference")) and r.get("n_reference") else np.nan)
        if r["scale"] == "RD":
            result = nnt(est, lo, hi, conf_level=conf_level)
            out.loc[i, "nnt"] = (f"{result.kind} {result.estimate:.1f} ({result.ci})" if result.kind
                                 else "∞ (no difference)")
            if 0 < risk0 < 1:
                ev = e_value(est, lo, hi, measure="RD", risk_control=risk0)
            else:
                out.loc[i, "e_value"] = fmt.NOT_ESTIMABLE
                continue
        else:
            rare = bool(np.isfinite(risk0) and risk0 < RARE_OUTCOME)
            ev = e_value(est, lo, hi, measure=str(r["scale"]), rare=rare)
        ci_part = "" if np.isnan(ev.e_value_ci) else f" (CI limit {ev.e_value_ci:.2f})"
        out.loc[i, "e_value"] = f"{ev.e_value:.2f}{ci_part}"
    return out
