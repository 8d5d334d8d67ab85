"""The sentences of the cohort report, written from the numbers.

One function per section. Each takes the section's numbers (from
:mod:`analysis.report.analyses`) and the report's :class:`~analysis.report.privacy.Disclosure`
(``privacy``), and quotes every count through it, so a count a table hides is hidden in
the sentence too. Numbers are formatted by :mod:`analysis.report.formatting` and model
terms named by :mod:`analysis.report.labels`. Nothing here computes a statistic.

Examples
--------
>>> from analysis.report import prose
>>> from analysis.report.privacy import Disclosure
>>> privacy = Disclosure(11, analysed=240)
>>> prose.waterfall(240, {0.25: 31.0, 0.5: 52.5, 0.75: 70.25}, privacy)
'Improvement from baseline at the end of induction among the 240 patients with an endpoint: median 52.5% (interquartile range 31.0% to 70.2%). Each bar is one percentile of the distribution, not one patient.'
>>> prose.waterfall(7, None, privacy)
'The waterfall is not shown: it needs at least 11 patients with an endpoint (here <11).'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from . import formatting as fmt
from .labels import label
from ..outcomes import AppliedDefinitions

__all__ = [
    "header", "summary", "methods", "data_summary", "attrition", "TABLE_ONE", "table_one", "trajectories",
    "waterfall", "response", "responder_models", "relapse", "relapse_models", "durability", "adjuncts",
    "sensitivity", "limitations", "days",
]


def days(x: float | None) -> str:
    """A number of days as the report writes it (``not reached`` for a median that was not)."""
    return "not reached" if x is None or np.isnan(x) else fmt.days(x)


def _level(conf_level: float) -> str:
    return f"{conf_level:.0%}"


def header(params, dataset_name: str, instrument: str) -> str:
    """What the cohort is: data, filters, instrument and definitions (no machine paths)."""
    p = params
    filters = [f"sites {', '.join(p.sites)}" if p.sites else "", f"routes {', '.join(p.routes)}" if p.routes else "",
               f"{p.period_column} {', '.join(p.periods)}" if p.periods else ""]
    filters = [f for f in filters if f]
    changed = ", ".join(f"{name} = {v}" for name, v in p.definitions.items())
    return (f"Cohort: {'; '.join(filters) if filters else 'all patients'} of {dataset_name}. "
            f"Outcomes are measured on the {instrument} with the standard definitions"
            f"{' except ' + changed if changed else ''}.")


def summary(findings: Sequence[str]) -> str:
    """The key findings as a list (each written by its section's numbers)."""
    return "\n".join(f"- {f}" for f in findings)


def methods(definitions: AppliedDefinitions, instrument: str, conf_level: float, k: int) -> str:
    """The short methods paragraph: definitions, models, missing assessments, small counts."""
    d = definitions
    relapse_rule = (f"a {instrument} of {d.relapse_threshold_score:g} or more" if d.relapse_threshold_score is not None
                    else f"an improvement below {d.response_pct:g}%")
    return (
        f"**Definitions.** Improvement is the percentage fall of the {instrument} from baseline (the last score in the "
        f"{d.baseline_window_days:g} days before the first session) to the end of induction (the first score within "
        f"{d.endpoint_window_days:g} days after the last of up to {d.induction_sessions} induction sessions). "
        f"Response is an improvement of at least {d.response_pct:g}%, partial response {d.partial_response_pct:g}% to "
        f"under {d.response_pct:g}%, remission a score of {d.remission_max_applied:g} or less. Among responders, "
        f"relapse is {relapse_rule} on {d.relapse_confirmations} consecutive assessment(s); each follow-up ends at the "
        "next session.\n\n"
        "**Models.** Kaplan-Meier curves with log-log intervals; logistic and proportional-odds models of response "
        "(Brant test); Cox models (Efron ties, proportional-hazards test on the KM time scale); a Weibull model of the "
        "interval-censored relapse time; a gap-time model of repeated infusions clustered by patient; adjunct "
        "comparisons crude, adjusted (inverse-probability weighting) and within patient. Intervals are "
        f"{_level(conf_level)}.\n\n"
        "**Missing assessments.** Patients without a baseline or an end-of-induction score are not analysed (see "
        "the patient flow); a model leaves out patients with a missing covariate and says so.\n\n"
        f"**Small counts.** Following the CMS cell-size suppression policy, no count from 1 to {k - 1} is shown, "
        "directly or through totals, percentages or differences: such counts show as "
        f"<{k} or *, small categories are merged, and curves stop where fewer than {k} patients remain at risk."
    )


def data_summary(summary, privacy, instrument: str) -> str:
    """``summary``: :class:`analysis.report.analyses.DataSummary`."""
    c = privacy.count
    return (
        f"The report covers **{c(summary.n_patients)} patients** with a baseline and an end-of-induction "
        f"{instrument}, with {c(summary.n_sessions)} sessions and {c(summary.n_assessments)} assessments."
    )


def attrition(intervals_in: int, intervals_excluded: int, instrument: str, privacy) -> str:
    c = privacy.count
    return (
        f"Patients enter at the top and leave at each step for the reason given; steps excluding fewer than "
        f"{privacy.k} patients are merged with a neighbour. Of {c(intervals_in)} post-induction intervals, "
        f"{c(intervals_excluded)} had no {instrument} assessment before the next session and are not analysed."
    )


TABLE_ONE = ("Baseline characteristics of the patients with an end-of-induction assessment, by response "
             "category: mean (SD), median [IQR] or n (%), and the largest pairwise standardised mean difference (SMD).")


def table_one(groups: Mapping[str, str], privacy, n: int) -> str:
    """How Table 1 is grouped (``groups``: category -> column shown)."""
    if is_small_n(n, privacy.k):
        return (f"Table 1 is not shown: it needs at least {privacy.k} patients with an endpoint "
                f"(here {privacy.count(n)}).")
    merged = sorted({g for c, g in groups.items() if g != c})
    if not groups:
        return TABLE_ONE.replace(", by response category", "") + (
            " The response categories are not shown separately: their counts are too small.")
    if merged:
        return TABLE_ONE + (f" Categories with too few patients to show alone are shown together "
                            f"({'; '.join(merged)}).")
    return TABLE_ONE


def is_small_n(n, k: int) -> bool:
    return 1 <= n < k or n == 0


def trajectories(first: Mapping | None, last: Mapping | None, instrument: str, k: int) -> str:
    """``first`` and ``last``: rows (week, mean) of the overall weekly summary (None: none shown)."""
    if first is None:
        return (f"Score trajectories are not shown: no week had at least {k} patients with a {instrument} "
                "assessment.")
    return (f"Mean {instrument} by week since the first session, overall and by response category; weeks with "
            f"fewer than {k} patients are left out and `patients` counts patients, not assessments. Overall the "
            f"mean went from {fmt.mean(first['mean'])} in week {first['week']:.0f} to {fmt.mean(last['mean'])} in "
            f"week {last['week']:.0f}.")


def waterfall(n: int, quartiles: Mapping[float, float] | None, privacy) -> str:
    """``quartiles``: improvement at 0.25, 0.5 and 0.75 (None when too few patients to show them)."""
    q = quartiles
    if q is None:
        return (f"The waterfall is not shown: it needs at least {privacy.k} patients with an endpoint "
                f"(here {privacy.count(n)}).")
    return (f"Improvement from baseline at the end of induction among the {privacy.count(n)} patients with an "
            f"endpoint: median {q[0.5]:.1f}% (interquartile range {q[0.25]:.1f}% to {q[0.75]:.1f}%). Each bar is one "
            "percentile of the distribution, not one patient.")


def response(*, of: int, privacy, remission: str, remission_pct: str, definitions: AppliedDefinitions,
             instrument: str) -> str:
    """Counts as the report's :class:`~analysis.report.privacy.Disclosure` shows them."""
    d, p = definitions, privacy
    return (
        f"Of {p.count(of)} patients with an end-of-induction {instrument}, "
        f"{p.category('responder')} responded ({p.category_percent('responder')}; improvement of at least "
        f"{d.response_pct:g}%), {p.category('partial')} responded partly ({p.category_percent('partial')}; "
        f"{d.partial_response_pct:g}% to under {d.response_pct:g}%), and {remission} were in remission "
        f"({remission_pct}; {instrument} at or below {d.remission_max_applied:g})."
    ) + (" * marks a count not shown." if any(p.category_hidden.values()) or remission == "*" else "")


def responder_models(models, conf_level: float, privacy) -> str:
    """``models``: :class:`analysis.report.analyses.ResponderModels`."""
    if models.error:
        return f"The responder models could not be fitted ({privacy.text(models.error)})."
    if not models.fitted:
        return ("The responder models are not shown: they need at least ten patients with an endpoint per "
                f"coefficient (here {privacy.count(models.n_patients)} patients).")
    e = models.strongest
    text = (
        f"Among the patients with an endpoint, the covariate most strongly associated with response was "
        f"{label(e.term)} (odds ratio {fmt.interval(e.ratio, e.lower, e.upper)}, {_level(conf_level)} CI; "
        f"p {_p(e.p_value)}). The proportional-odds model of the category (non-responder < partial < responder) "
        + ("shows no evidence against the proportional-odds assumption"
           if models.brant_p >= 0.05 else "**violates** the proportional-odds assumption")
        + f" (Brant test chi-square {models.brant_chi2:.2f}, {models.brant_df} df, p {_p(models.brant_p)}). "
        "These are associations in observational data, not effects of the covariates."
    )
    if models.n_dropped:
        text += (f" Patients with a missing covariate were left out ({privacy.count(models.n_dropped)}); the models "
                 "use the others.")
    return text


def _p(p: float) -> str:
    shown = fmt.p_value(p)
    return shown if shown.startswith("<") else f"= {shown}"


def relapse(*, followed: str, events: str, median: Mapping, definitions: AppliedDefinitions, instrument: str,
            conf_level: float, k: int, drawn: bool, beyond: bool = False) -> str:
    """``followed``, ``events``: counts as shown; ``median``: the Kaplan-Meier median row;
    ``beyond``: the median lies past where the curve is drawn (not shown)."""
    d = definitions
    rule = (f"{instrument} at or above {d.relapse_threshold_score:g}" if d.relapse_threshold_score is not None
            else f"improvement below {d.response_pct:g}%")
    how = f"({rule} on {d.relapse_confirmations} consecutive assessment(s), follow-up ending at the next session)"
    if followed == "suppressed":
        text = (f"The number of responders followed after induction is not shown (it would give back a small count); "
                f"{events} relapsed {how}.")
    else:
        text = f"{followed} responders were followed after induction; {events} relapsed {how}."
    if not drawn:
        return text + f" The curve is not shown: it needs at least {k} responders followed."
    if beyond:
        median_text = f"lies beyond the drawn curve (where fewer than {k} remain) and is not shown"
    elif np.isnan(median["median"]):
        median_text = "was not reached"
    else:
        median_text = (f"was {fmt.days(median['median'])} days ({_level(conf_level)} CI "
                       f"{days(median['ci_lower'])} to {days(median['ci_upper'])})")
    return text + (f" The median time to relapse {median_text}. The curve stops where fewer than {k} patients "
                   "remain at risk; the number at risk is shown under it.")


def all_censored(confirmations: int, one: Mapping | None, followed: str, events_one: str, *, beyond: bool = False,
                 k: int = 11) -> str:
    """Every course censored under the relapse rule: the clinic boosts at the first worse score."""
    text = (f"No relapse was confirmed: with {confirmations} confirming scores required, a relapse is seen only "
            "when two worse scores come before the next session, and here every worse score was followed by a "
            "booster session (the clinic boosts at the first worse score), so every course is censored. ")
    if one is None:
        return text + "With one confirming score no relapse was found either."
    of = "" if followed == "suppressed" else f" of the {followed}"
    median = (f"their median beyond the drawn curve (fewer than {k} remain there)" if beyond else
              f"median {days(one['median'])} days")
    return text + (f"With one confirming score, {events_one}{of} responders relapsed, {median}; that curve is drawn "
                   "beside the one as defined.")


def relapse_models(models, conf_level: float, privacy) -> str:
    """``models``: :class:`analysis.report.analyses.RelapseModels`."""
    if models.error:
        return f"The relapse models could not be fitted ({privacy.text(models.error)})."
    if not models.fitted:
        return (f"The relapse models are not shown: they need at least {privacy.k} responders followed and ten "
                f"relapses (here {privacy.count(models.events)} relapses).")
    level = _level(conf_level)
    parts = []
    if models.cox is not None:
        e = models.cox_top
        parts.append(
            f"In a Cox model of relapse after induction ({', '.join(label(c) for c in models.covariates)}; Efron "
            f"ties), {label(e.term)} had a hazard ratio of {fmt.interval(e.ratio, e.lower, e.upper)} ({level} CI). "
            + ("The proportional-hazards assumption is doubtful" if models.ph_p < 0.05 else
               "There is no evidence against proportional hazards")
            + f" (global test p {_p(models.ph_p)})."
        )
    parts.append(
        f"A Weibull model that uses the interval between the last assessment still in response and the relapse "
        f"predicts a median durability of {fmt.days(models.aft_median)} days ({level} CI {fmt.days(models.aft_ci_lower)} "
        f"to {fmt.days(models.aft_ci_upper)})."
    )
    return " ".join(parts)


def durability(models, medians: Sequence[tuple[str, str]], conf_level: float, privacy, *, n_patients: str,
               adjunct_within: str | None = None) -> str:
    """``models``: :class:`analysis.report.analyses.DurabilityModels`; ``medians``: (infusion, median as shown)."""
    if models.error:
        return f"The per-infusion models could not be fitted ({privacy.text(models.error)})."
    if not models.fitted:
        return (f"Per-infusion durability is not shown: it needs at least {privacy.k} intervals after induction and 10 "
                f"ends of benefit (here {privacy.count(models.n_intervals)} intervals).")
    level = _level(conf_level)
    parts = [f"{privacy.count(models.n_intervals)} intervals of {n_patients} patients (the end-of-induction "
             f"infusion is infusion 1). Median days each infusion held, by its number: "
             + ", ".join(f"{g}: {m}" for g, m in medians) + "."]
    if models.pwp is not None:
        parts.append("A gap-time model of repeated infusions (strata by infusion number, robust standard errors "
                     "clustered by patient) gives "
                     + "; ".join(f"{label(e.term)} HR {fmt.interval(e.ratio, e.lower, e.upper)}"
                                 for e in models.pwp_effects) + f" ({level} CI).")
    if models.within is not None:
        e = models.within_effect
        parts.append(
            f"Among the {privacy.count(models.n_switch)} patients who had infusions with and without rapamycin, "
            f"comparing each patient with themself (Cox stratified by patient), rapamycin had a hazard ratio of "
            f"{fmt.interval(e.ratio, e.lower, e.upper)} ({level} CI; p {_p(e.p_value)}); this comparison removes "
            "confounding by anything constant within a patient."
            + (f" The adjunct comparisons below restrict the same comparison to patients on no other listed "
               f"adjunct ({adjunct_within} patients), so their hazard ratio differs." if adjunct_within else "")
        )
    elif models.n_switch is not None:
        parts.append(f"The within-patient rapamycin comparison needs at least {privacy.k} patients with infusions "
                     f"both with and without rapamycin (here {privacy.count(models.n_switch)}).")
    return " ".join(parts)


def adjuncts(*, n_imbalanced: int | None, n_hidden: int, conf_level: float, k: int, error: str | None = None) -> str:
    """``n_imbalanced``: comparisons left with an SMD above 0.1 after weighting; None: nothing compared."""
    if error:
        return f"The adjunct comparisons could not be computed ({error})."
    if n_imbalanced is None:
        return (f"No adjunct was taken by at least {k} patients with an endpoint (and as many without): "
                "nothing to compare.")
    return (
        f"Each adjunct taken by at least {k} patients is compared with patients on no listed adjunct "
        "(patients on it together with another adjunct are left out). Crude estimates compare groups as they "
        "are; adjusted estimates condition on the measured baseline covariates; within-patient hazard ratios "
        "compare each patient's infusions with and without the drug and so remove confounding by anything "
        f"constant within a patient. Intervals are {_level(conf_level)}; p-values adjusted across adjuncts "
        "(Holm, Benjamini-Hochberg) are in tables/adjunct_estimates.csv. "
        + (f"Weighting left {n_imbalanced} comparison(s) with a standardised mean difference above 0.1: "
           "their adjusted estimates may still be confounded. " if n_imbalanced else
           "After weighting every comparison was balanced (all SMD at most 0.1). ")
        + (f"Estimates of response and remission are not shown for {n_hidden} adjunct(s) with fewer than {k} "
           "patients with (or without) the outcome in a group: with the group sizes they would give those counts "
           "back." if n_hidden else "")
    )


def sensitivity(second: str | None, k: int) -> str:
    return ("The main figures under other definitions; a count that differs from another row's by fewer "
            f"than {k} patients is suppressed with its percentage. "
            + (f"The second instrument is {second}." if second else "No second depression instrument was recorded."))


def limitations(*, n_courses: int, n_endpoint: int, n_relapse: int, n_relapse_censored: int, relapse_event_rate: float,
                n_responders: int, brant_p: float | None, ph_p: float | None, privacy) -> list[str]:
    """The limitations the numbers show, one note each (a note that nothing was flagged if none).

    ``brant_p`` and ``ph_p`` are the responder and relapse models' assumption tests (None when
    the models were not fitted or not passed).
    """
    k = privacy.k
    notes = []
    if n_endpoint < 100:
        notes.append(f"Only {privacy.count(n_endpoint)} patients had an endpoint: estimates are imprecise.")
    missing = n_courses - n_endpoint
    if n_courses and missing / n_courses > 0.1:
        notes.append(f"More than 10% of the patients had no end-of-induction assessment; response rates are among "
                     "those with one.")
    if n_relapse and relapse_event_rate < 0.5:
        share = ("all" if n_relapse_censored == n_relapse else "most")
        notes.append(f"{share.capitalize()} relapse intervals were censored, often by the next session; with two "
                     "confirmations a relapse just before a session cannot be confirmed (see the sensitivity "
                     "analysis with one).")
    if brant_p is not None and brant_p < 0.05:
        notes.append("The proportional-odds assumption of the category model is doubtful (Brant test p "
                     f"{_p(brant_p)}); read the logistic model of response instead.")
    if ph_p is not None and ph_p < 0.05:
        notes.append(f"The Cox model of relapse after induction may violate proportional hazards (global test "
                     f"p {_p(ph_p)}); its hazard ratios are averages over time.")
    unfollowed = n_responders - n_relapse
    if 1 <= unfollowed < k:
        notes.append(f"Fewer than {k} responders had no assessment after induction and are not in the relapse "
                     "analysis; its number of responders followed is not shown.")
    if not notes:
        notes.append("No limitation was flagged by the automatic checks.")
    return ["The data are observational: associations with covariates and adjuncts are not effects.", *notes]


# --- competing risks, the treatment course, clinical significance, imputation (issues 13, 14) ----


def reliable_change(rc, instrument: str, k: int, *, error: str | None = None) -> str:
    """The reliable-change paragraph: what the categories mean, or why they are not shown."""
    if rc is None:
        why = f"it could not be computed ({error})" if error else f"fewer than {k} patients had an endpoint"
        return f"Reliable change on the {instrument} is not shown: {why}."
    return (f"Reliable change (Jacobson and Truax): a change of at least {fmt.mean(rc.minimal_reliable_change)} "
            f"points is beyond measurement error; **recovered** patients also ended past the cut-off of "
            f"{fmt.mean(rc.cutoff)} points (criterion {rc.criterion}), **improved** ones did not, and "
            "**deteriorated** ones worsened reliably.")


def reliable_change_note(rc, source: str) -> str:
    """Footnote of the reliable-change table: the reliability used and its source."""
    kind = str(rc.reliability_kind)
    return (f"Reliability {rc.reliability:.2f} ({kind}"
            + (f"; {source}" if source else "; given for this report") + f"), SD of the baseline scores "
            f"{fmt.mean(rc.sd)}; counts add up to the patients with an endpoint.")


def imputed_rate(rate, privacy, conf_level: float) -> str:
    """The sensitivity line for the headline response rate with missing endpoints imputed. The
    number of patients with a baseline score is not given: beside the patients analysed it
    would give back the number imputed, which is shown only as a count on its own."""
    level = _level(conf_level)
    if rate.n_imputed == 0:
        return ("No end-of-induction score was missing among the patients with a baseline score, so no response "
                "rate with imputed endpoints is needed.")
    if 1 <= rate.n_imputed < privacy.k:
        # the imputed rate is about (responders + x) / (analysed + imputed): with the analysed and the
        # responders shown, it would give back how many were imputed
        return (f"Fewer than {privacy.k} patients with a baseline score had no end-of-induction score; the response "
                "rate with their scores imputed is not shown, as with so few it would give their number back "
                f"(the complete-case rate, {fmt.percent(rate.complete_case)}, is the one above).")
    return (f"With the {privacy.count(rate.n_imputed)} missing end-of-induction scores imputed ({rate.m} imputations "
            f"by predictive mean matching, assuming they are missing at random), the response rate was "
            f"{fmt.percent(rate.estimate)} ({level} CI {fmt.percent(rate.ci_lower)} to {fmt.percent(rate.ci_upper)}), "
            f"against {fmt.percent(rate.complete_case)} among the patients with an endpoint.")


def relapse_incidence(rows, km_at: Mapping[float, float], followed: str, causes: Sequence[str],
                      not_drawn: Sequence[str], conf_level: float, k: int) -> str:
    """The competing-risks paragraph beside the Kaplan-Meier curve: why 1 - KM overstates relapse,
    and the cumulative incidence at the days shown."""
    from .clinical import CAUSE_LABELS

    level = _level(conf_level)
    text = ("Kaplan-Meier counts a responder who was boosted, stopped or lost as if still at risk of relapse "
            "later, so when these end follow-up first, 1 − Kaplan-Meier overstates how many relapse. The cumulative "
            "incidence (Aalen-Johansen) treats them as competing events: it gives the share who had relapsed by "
            f"each day{', beside the shares ended otherwise,' if len(causes) > 1 else ''} among the {followed} "
            "responders followed.")
    parts = []
    for day in sorted(set(rows["day"])):
        at = rows[rows["day"] == day]
        rel = at[at["cause"] == "relapse"]
        if rel.empty or np.isnan(rel["estimate"].iloc[0]):
            parts.append(f"At day {day:.0f} fewer than {k} remain at risk: no estimate is shown.")
            continue
        r = rel.iloc[0]
        sentence = (f"By day {day:.0f}, {fmt.percent(r['estimate'])} had relapsed ({level} CI "
                    f"{fmt.percent(r['ci_lower'])} to {fmt.percent(r['ci_upper'])})")
        one_minus = km_at.get(day)
        if one_minus is not None and not np.isnan(one_minus):
            sentence += f", where 1 − Kaplan-Meier gives {fmt.percent(one_minus)}"
        others = [f"{fmt.percent(o['estimate'])} {CAUSE_LABELS.get(o['cause'], o['cause'])}"
                  for _, o in at[at["cause"] != "relapse"].iterrows() if not np.isnan(o["estimate"])]
        parts.append(sentence + ("; " + ", ".join(others) if others else "") + ".")
    if not_drawn:
        parts.append("Not drawn (a cause with fewer than " + f"{k} events, or one that would leave fewer than {k} "
                     "followed otherwise or censored to be worked out): "
                     + ", ".join(CAUSE_LABELS.get(c, c) for c in not_drawn) + ".")
    return " ".join([text, *parts])


def course(rmean: Mapping[str, float] | None, horizon: float, merged: Mapping[str, str], n: str, k: int,
           *, reason: str | None = None) -> str:
    """The treatment-course paragraph: what the stacked plot shows and the expected days in response."""
    if rmean is None:
        return f"The treatment course is not shown: {reason}."
    text = (f"Each patient's course (the {n} patients with an end-of-induction score) moves from induction to response or "
            "an exit (non-response, stopped, lost), and after response to relapse and re-response after a booster. "
            "The plot stacks the share of patients in each state on each day (Aalen-Johansen); it stops where "
            f"fewer than {k} remain in a state they can leave.")
    if merged:
        text += " Shown together (a state entered by fewer than " + f"{k} patients): " + ", ".join(
            f"{a} with {b}" for a, b in merged.items()) + "."
    days_in = rmean.get("response", 0.0) + rmean.get("re-response", 0.0)
    text += (f" Over the first {horizon:.0f} days a patient spent on average **{fmt.mean(days_in)} days in "
             "response** (response and re-response; restricted mean time in state).")
    return text


def adjunct_clinical_note(conf_level: float) -> str:
    """Footnote of the adjunct table on its NNTs and E-values."""
    return (f"NNT: from the adjusted risk difference (on the adjunct minus on none) and its {_level(conf_level)} "
            "interval (Altman 1998); NNTB: patients on the adjunct for one more to respond, NNTH: for one fewer; an "
            "interval through ∞ includes no difference. E-value (VanderWeele and Ding 2017): how strongly an "
            "unmeasured confounder would have to be associated with both the adjunct and the outcome, as a risk "
            "ratio, to explain the adjusted estimate away (CI limit: to move the interval to the null, 1 when it "
            "already includes it); odds and hazard ratios converted with the square-root approximations (outcomes "
            "common, over 15%), or taken as risk ratios when the reference group's risk is under 15%. These are "
            "observational associations, not effects of the adjuncts.")


def mmrm(result, name: str | None, conf_level: float, *, counts: tuple[str, str] = ("", ""), instrument: str = "",
         reason: str | None = None) -> str:
    """The MMRM paragraph: the comparison (observational), the difference at the end of
    induction with its interval and df, and the covariance structure chosen and why."""
    from .longitudinal import COVARIANCE_NAMES, FALLBACK_COVARIANCES

    if result is None:
        return f"The mixed model for repeated measures is not shown: {reason}."
    level = _level(conf_level)
    d = result.difference
    structure = COVARIANCE_NAMES.get(result.covariance, result.covariance)
    if result.covariance == "us":
        why = "unstructured, as in trials: it assumes nothing about how the weeks correlate, and it converged"
    else:
        tried = result.tried[result.tried["converged"]]
        why = (f"{structure}: the unstructured fit did not converge, so the structure with the lowest AIC among "
               + ", ".join(COVARIANCE_NAMES[c] for c in FALLBACK_COVARIANCES) + " was used (AIC "
               + ", ".join(f"{COVARIANCE_NAMES[r.covariance]} {r.aic:.1f}" for r in tried.itertuples()) + ")")
    direction = "less" if d["estimate"] > 0 else "more"
    counts = tuple("number not shown" if c == "suppressed" else c for c in counts)
    return (f"A mixed model for repeated measures (MMRM; REML, Satterthwaite degrees of freedom) of the change in "
            f"{instrument} from baseline in each week of induction ({', '.join(result.visits)}), with group, week, "
            f"their interaction and the baseline score, compares patients with {name.lower()} ({counts[0]}) with patients on "
            f"no listed adjunct ({counts[1]}); patients with missing weeks are kept (missing at random). "
            "**This is an observational comparison**: patients were not randomised, and the "
            "difference may reflect who received it. "
            f"At the end of induction ({result.end_visit}) the {instrument} had fallen by "
            f"{fmt.difference(abs(d['estimate']), 1)} points {direction} with {name.lower()} ({level} CI "
            f"{fmt.difference(d['ci_lower'], 1)} to {fmt.difference(d['ci_upper'], 1)} for the difference, with "
            f"it minus none; {d['df']:.0f} df; p {_p(d['p_value'])}). Covariance over the weeks: {why}.")
