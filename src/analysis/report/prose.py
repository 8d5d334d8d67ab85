"""The sentences of the cohort report, written from the numbers.

One function per section. Each takes the section's numbers (from
:mod:`analysis.report.analyses`) and the suppression threshold ``k``; every count it
quotes goes through :func:`~analysis.report.privacy.format_count` or
:func:`~analysis.report.privacy.format_percent`, and a count that a table hides (complementary
suppression, decided in :mod:`analysis.report.privacy`) is passed in as hidden. Nothing here
computes a statistic.

Examples
--------
>>> from analysis.report import prose
>>> prose.waterfall(240, {0.25: 31.0, 0.5: 52.5, 0.75: 70.25}, k=11)
'Improvement from baseline at the end of induction; each bar is a percentile of the 240 patients with an endpoint. Median improvement 52.5% (IQR 31.0% to 70.2%).'
>>> prose.waterfall(7, None, k=11)
'Improvement from baseline at the end of induction; each bar is a percentile of the <11 patients with an endpoint. '
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .privacy import format_count, format_percent, hidden_text
from ..outcomes import AppliedDefinitions

__all__ = [
    "header", "data_summary", "attrition", "TABLE_ONE", "trajectories", "waterfall", "response", "responder_models",
    "relapse", "relapse_models", "durability", "adjuncts", "sensitivity", "limitations", "days",
]


def days(x: float | None) -> str:
    """A number of days as the report writes it (``not reached`` for a median that was not)."""
    return "not reached" if x is None or np.isnan(x) else f"{x:.0f}"


def _level(conf_level: float) -> str:
    return f"{conf_level:.0%}"


def header(params, source, instrument: str) -> str:
    """What the cohort is: data, filters, instrument and definitions."""
    p, k = params, params.min_cell_count
    filters = [f"sites {', '.join(p.sites)}" if p.sites else "", f"routes {', '.join(p.routes)}" if p.routes else "",
               f"{p.period_column} {', '.join(p.periods)}" if p.periods else ""]
    filters = [f for f in filters if f]
    changed = ", ".join(f"{name} = {v}" for name, v in p.definitions.items())
    return (f"Cohort: {'; '.join(filters) if filters else 'all patients'} of `{source}`. "
            f"Outcomes on **{instrument}** with the package's default definitions"
            f"{' except ' + changed if changed else ''} (docs/outcomes.md). Counts from 1 to {k - 1} "
            "are suppressed.")


def data_summary(summary, instrument: str, k: int) -> str:
    """``summary``: :class:`analysis.report.analyses.DataSummary`."""
    return (
        f"The report covers **{format_count(summary.n_patients, k)} patients** with a baseline and an end-of-induction "
        f"{instrument}, with {summary.n_sessions:,} sessions and {summary.n_assessments:,} "
        f"assessments. Patient counts from 1 to {k - 1} are shown as <{k}, and so are the counts "
        "that would reveal them by subtraction."
    )


def attrition(intervals_in: int, intervals_excluded: int, instrument: str, k: int) -> str:
    return (
        f"Patients enter at the top and leave at each step for the reason given; steps excluding fewer than "
        f"{k} patients are merged with a neighbour. Of {intervals_in:,} post-induction intervals, "
        f"{intervals_excluded:,} had no {instrument} assessment before the next session and "
        "are not analysed."
    )


TABLE_ONE = ("Baseline characteristics of the patients with an end-of-induction assessment, by response "
             "category: mean (SD), median [IQR] or n (%), and the largest pairwise standardised mean difference.")


def trajectories(first: Mapping, last: Mapping, instrument: str, k: int) -> str:
    """``first`` and ``last``: rows (week, mean) of the overall weekly summary."""
    return (f"Mean {instrument} by week since the first session (weeks with fewer than {k} "
            f"patients are left out). Overall the mean went from {first['mean']:.1f} in week {first['week']:.0f} "
            f"to {last['mean']:.1f} in week {last['week']:.0f}.")


def waterfall(n: int, quartiles: Mapping[float, float] | None, k: int) -> str:
    """``quartiles``: improvement at 0.25, 0.5 and 0.75 (None when too few patients to show them)."""
    q = quartiles
    return (f"Improvement from baseline at the end of induction; each bar is a percentile of the "
            f"{format_count(n, k)} patients with an endpoint. "
            + (f"Median improvement {q[0.5]:.1f}% (IQR {q[0.25]:.1f}% to {q[0.75]:.1f}%)." if q is not None else ""))


def response(*, of: int, responders: int, partial: int, remitters: int, hidden: Mapping[str, bool],
             definitions: AppliedDefinitions, instrument: str, k: int) -> str:
    """``hidden``: whether the response table hides the ``responder`` and ``partial`` counts."""
    d = definitions

    def count(n, hide):
        return hidden_text(n, k) if hide else format_count(n, k)

    def pct(n, hide):
        return "suppressed" if hide else format_percent(n, of, k)

    return (
        f"Of {format_count(of, k)} patients with an end-of-induction {instrument}, "
        f"{count(responders, hidden['responder'])} responded "
        f"({pct(responders, hidden['responder'])}; improvement of at least "
        f"{d.response_pct:g}%), {count(partial, hidden['partial'])} responded partly "
        f"({pct(partial, hidden['partial'])}; {d.partial_response_pct:g}% to under "
        f"{d.response_pct:g}%), and {format_count(remitters, k)} were in remission "
        f"({format_percent(remitters, of, k)}; {instrument} at or below {d.remission_max_applied:g})."
    )


def responder_models(models, conf_level: float, k: int) -> str:
    """``models``: :class:`analysis.report.analyses.ResponderModels`."""
    if not models.fitted:
        return ("Too few patients with an endpoint for the models "
                f"({format_count(models.n_patients, k)}; at least ten per coefficient are needed).")
    e = models.strongest
    text = (
        f"Among {format_count(models.n_obs, k)} patients with an endpoint, the covariate most strongly associated with "
        f"response was `{e.term}` (odds ratio {e.ratio:.2f}, {_level(conf_level)} CI "
        f"{e.lower:.2f} to {e.upper:.2f}, p = {e.p_value:.3g}). "
        f"The proportional-odds model of the category (non-responder < partial < responder) "
        + ("shows no evidence against the proportional-odds assumption"
           if models.brant_p >= 0.05 else "**violates** the proportional-odds assumption")
        + f" (Brant test chi-square {models.brant_chi2:.2f}, {models.brant_df} df, p = {models.brant_p:.3g}). "
        "These are associations in observational data, not effects of the covariates."
    )
    if models.n_dropped:
        text += f" Patients with a missing covariate were left out ({format_count(models.n_dropped, k)})."
    return text


def relapse(*, n: int, events: int, median: Mapping, definitions: AppliedDefinitions, instrument: str, conf_level: float,
            k: int) -> str:
    """``median``: the Kaplan-Meier median row (``median``, ``ci_lower``, ``ci_upper``)."""
    d = definitions
    median_text = ("was not reached" if np.isnan(median["median"]) else
                   f"was {median['median']:.0f} days ({conf_level:.0%} CI "
                   f"{days(median['ci_lower'])} to {days(median['ci_upper'])})")
    rule = (f"{instrument} at or above {d.relapse_threshold_score:g}" if d.relapse_threshold_score is not None
            else f"improvement below {d.response_pct:g}%")
    return (f"{format_count(n, k)} responders were followed after induction; {format_count(events, k)} relapsed "
            f"({rule} on {d.relapse_confirmations} consecutive assessment(s), follow-up ending at the next session). "
            f"The median time to relapse {median_text}. Curves stop where fewer than {k} patients remain "
            "at risk.")


def relapse_models(models, conf_level: float, k: int) -> str:
    """``models``: :class:`analysis.report.analyses.RelapseModels`."""
    if not models.fitted:
        return f"Too few relapses for models ({format_count(models.events, k)})."
    level = _level(conf_level)
    parts = []
    if models.cox is not None:
        e = models.cox_top
        parts.append(
            f"In a Cox model of relapse after induction ({', '.join(models.covariates)}; Efron ties), `{e.term}` had a "
            f"hazard ratio of {e.ratio:.2f} ({level} CI {e.lower:.2f} to {e.upper:.2f}). "
            + ("The proportional-hazards assumption is doubtful" if models.ph_p < 0.05 else
               "There is no evidence against proportional hazards")
            + f" (global test p = {models.ph_p:.3g}, cox.zph with the KM transform)."
        )
    parts.append(
        f"A Weibull model that uses the interval between the last assessment still in response and the relapse "
        f"predicts a median durability of {models.aft_median:.1f} days ({level} CI {models.aft_ci_lower:.1f} to "
        f"{models.aft_ci_upper:.1f}; shape {models.aft_shape:.2f})."
    )
    return " ".join(parts)


def durability(models, medians: Sequence[tuple[str, float]], conf_level: float, k: int) -> str:
    """``models``: :class:`analysis.report.analyses.DurabilityModels`; ``medians``: (infusion, median days)."""
    if not models.fitted:
        return "Too few intervals after induction for models."
    level = _level(conf_level)
    parts = [f"{models.n_intervals:,} intervals of {format_count(models.n_patients, k)} patients (the end-of-induction "
             f"infusion is interval 1). Median days each infusion held, by its number: "
             + ", ".join(f"{g}: {days(m)}" for g, m in medians) + "."]
    if models.pwp is not None:
        parts.append("A PWP gap-time model (strata by interval number, robust SE clustered by patient) gives "
                     + "; ".join(f"`{e.term}` HR {e.ratio:.2f} ({level} CI {e.lower:.2f} to {e.upper:.2f})"
                                 for e in models.pwp_effects) + ".")
    if models.within is not None:
        e = models.within_effect
        parts.append(
            f"Among the {format_count(models.n_switch, k)} patients who had infusions with and without rapamycin, "
            f"comparing each patient with themself (Cox stratified by patient), rapamycin had a hazard ratio of "
            f"{e.ratio:.2f} ({level} CI {e.lower:.2f} to {e.upper:.2f}); this comparison removes confounding "
            "by anything constant within a patient."
        )
    return " ".join(parts)


def adjuncts(*, n_imbalanced: int | None, notes: Sequence[str], conf_level: float, k: int) -> str:
    """``n_imbalanced``: comparisons left with an SMD above 0.1 after weighting; None: nothing compared."""
    if n_imbalanced is None:
        return (f"No adjunct was taken by at least {k} patients with an endpoint (and as many without): "
                "nothing to compare.")
    return (
        f"Each adjunct taken by at least {k} patients is compared with patients on no listed adjunct "
        "(patients on it together with another adjunct are left out). Crude estimates compare groups as they "
        "are; adjusted estimates condition on the measured baseline covariates; within-patient hazard ratios "
        "compare each patient's infusions with and without the drug and so remove confounding by anything "
        f"constant within a patient. Intervals are {_level(conf_level)}; p-values are also given adjusted across "
        "adjuncts (Holm, Benjamini-Hochberg) in tables/adjunct_estimates.csv. "
        + (f"Weighting left {n_imbalanced} comparison(s) with a standardised mean difference above 0.1: "
           "their adjusted estimates may still be confounded. " if n_imbalanced else
           "After weighting every comparison was balanced (all SMD at most 0.1). ")
        + " ".join(notes[:1])
    )


def sensitivity(second: str | None, k: int) -> str:
    return ("The main figures under other definitions; a count that differs from the main analysis by fewer "
            f"than {k} patients is suppressed with its percentage. "
            + (f"The second instrument is {second}." if second else "No second depression instrument was recorded."))


def limitations(*, n_courses: int, n_endpoint: int, n_relapse: int, n_relapse_censored: int, relapse_event_rate: float,
                n_responders: int, brant_p: float | None, ph_p: float | None, k: int) -> list[str]:
    """The limitations the numbers show, one note each (a note that nothing was flagged if none).

    ``brant_p`` and ``ph_p`` are the responder and relapse models' assumption tests (None when
    the models were not fitted or not passed).
    """
    notes = []
    if n_endpoint < 100:
        notes.append(f"Only {format_count(n_endpoint, k)} patients had an endpoint: estimates are imprecise.")
    missing = n_courses - n_endpoint
    if n_courses and missing / n_courses > 0.1:
        notes.append(f"{format_percent(missing, n_courses, k)} of analysed patients had no end-of-induction "
                     "assessment; response rates are among those with one.")
    if n_relapse and relapse_event_rate < 0.5:
        notes.append(f"Most relapse intervals were censored ({format_percent(n_relapse_censored, n_relapse, k)}), "
                     "often by the next session; with two confirmations relapses just before a session cannot be "
                     "confirmed (docs/outcomes.md).")
    if brant_p is not None and brant_p < 0.05:
        notes.append("The proportional-odds assumption of the category model is doubtful (Brant test p = "
                     f"{brant_p:.3g}); read the logistic model of response instead.")
    if ph_p is not None and ph_p < 0.05:
        notes.append(f"The Cox model of relapse after induction may violate proportional hazards (global test "
                     f"p = {ph_p:.3g}); its hazard ratios are averages over time.")
    unfollowed = n_responders - n_relapse
    if 1 <= unfollowed < k:
        notes.append(f"Fewer than {k} responders had no assessment after induction; the number followed "
                     "differs from the number of responders by that small count (docs/reports.md).")
    if not notes:
        notes.append("No limitation was flagged by the automatic checks.")
    return notes
