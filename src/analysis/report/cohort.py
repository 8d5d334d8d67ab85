"""The cohort report: one object that loads a cohort and builds each report section.

``notebooks/cohort_report.ipynb`` is parameters and one call per section; the work is
here, split by concern:

* :mod:`~analysis.report.selection` picks the cohort's patients;
* :mod:`~analysis.report.analyses` computes each section's numbers and fits its models
  (unsuppressed, no text);
* :mod:`~analysis.report.privacy` decides what of them may be shown: one
  :class:`~analysis.report.privacy.Disclosure` per report (``CohortReport.privacy``), which
  every table, sentence, figure annotation and key figure goes through;
* :mod:`~analysis.report.prose` writes the sentences from the numbers, with
  :mod:`~analysis.report.formatting` and :mod:`~analysis.report.labels`;
* :mod:`~analysis.report.figures` draws aggregates only.

Each section method below strings these together and returns a
:class:`~analysis.report.sections.Section` whose ``result`` is the section's result
object; sections that build on another's results take them as arguments
(:meth:`CohortReport.limitations`). A cohort that validates always gets a report: a
section that cannot be shown says why in one sentence.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..outcomes import Outcomes, derive_outcomes
from .._table_one import table_one
from . import analyses, clinical, longitudinal, prose
from . import figures as fg
from . import formatting as fmt
from .analyses import RelapseModels, ResponderModels
from .labels import exposure_label, label
from .parameters import ReportParameters
from .privacy import (HIDDEN, Disclosure, hide_at_risk_rows, is_small, sensitivity_table, suppress_adjunct_estimates,
                      suppress_attrition, suppress_table_one)
from .sections import Section, anchor_of
from .selection import CohortError, load_cohort, select_cohort

__all__ = ["CohortReport", "select_cohort", "CohortError", "SECTION_TITLES"]


def kaplan_meier(*args, **kwargs):
    """:func:`analysis.survival.kaplan_meier`, imported on first use: the survival package loads
    scipy.stats, which ``ketamine-outcomes report`` does not need before the kernel starts."""
    from ..survival import kaplan_meier as fit

    return fit(*args, **kwargs)


#: the sections of the report, in order (the table of contents)
SECTION_TITLES = {
    "summary": "Summary", "methods": "Methods", "data_summary": "Patients", "attrition": "Patient flow",
    "table_one": "Baseline characteristics (Table 1)", "trajectories": "Score trajectories",
    "waterfall": "Improvement at the end of induction", "response": "Response and remission",
    "responder_models": "Who responded", "relapse": "Relapse after induction", "course": "The treatment course",
    "relapse_models": "Relapse models",
    "durability": "Per-infusion durability", "adjuncts": "Adjunct comparisons",
    "mmrm": "Adjunct use and scores during induction (MMRM)", "sensitivity": "Sensitivity analyses",
    "limitations": "Limitations",
}

#: the states of the treatment course in the order of docs/outcomes.md
COURSE_STATES = ["induction", "response", "relapse", "re-response", "non-response", "stopped", "lost"]

#: days at which Kaplan-Meier tables give the number at risk and the survival
AT_RISK_DAYS = [0, 14, 28, 42, 56]

HIDDEN_NOTE = ("* not shown: a count from 1 to {k1}, or a count from which one could be worked out "
               "(CMS cell-size suppression).")


class CohortReport:
    """Everything the cohort report shows, one method per section.

    Parameters
    ----------
    params : ReportParameters
    output_dir : str or Path, optional
        Where sections save their tables (CSV) and figures; nothing is written without it
        (default: ``params.output_dir``).

    Examples
    --------
    >>> from analysis.report import CohortReport, ReportParameters
    >>> report = CohortReport(ReportParameters())
    >>> print(report.response().text.split("\\n\\n")[0])   # doctest: +NORMALIZE_WHITESPACE
    Of 494 patients with an end-of-induction PHQ-9, 284 responded (57.5%; improvement of at least 50%),
    98 responded partly (19.8%; 25% to under 50%), and 153 were in remission (31.0%; PHQ-9 at or below 4).

    Sections that build on another's results take them as arguments:

    >>> responders = report.responder_models()
    >>> round(responders.result.brant_p, 3)              # the Brant test of the proportional-odds model
    0.916
    >>> print(report.limitations(responder_models=responders.result).text)    # doctest: +NORMALIZE_WHITESPACE
    - The data are observational: associations with covariates and adjuncts are not effects.
    - Response rates are among the patients with an end-of-induction score. Fewer than 11 patients with a
      baseline score had no end-of-induction score; the response rate with their scores imputed is not shown,
      as with so few it would give their number back (the complete-case rate, 57.5%, is the one above).
    - Most relapse intervals were censored, often by the next session; with two confirmations a relapse just
      before a session cannot be confirmed (see the sensitivity analysis with one).
    """

    def __init__(self, params: ReportParameters, output_dir: str | Path | None = None):
        self.params = params
        self.k = params.min_cell_count
        output_dir = output_dir if output_dir is not None else params.output_dir
        self.output_dir = Path(output_dir) if output_dir else None
        self.dataset = load_cohort(params)  # from the batch's validated cache when there is one
        self.instrument = self.dataset.instrument_registry.get(params.instrument)
        self.outcomes: Outcomes = derive_outcomes(self.dataset, self.instrument.name, **params.definitions)
        categories = self.with_endpoint["category"].astype(str).value_counts()
        #: what this report may show, decided once for every output
        self.privacy = Disclosure(
            self.k, analysed=len(self.with_endpoint),
            categories={c: int(categories.get(c, 0)) for c in ("non-responder", "partial", "responder")},
            followed=len(self.outcomes.relapse), remitters=int(self.with_endpoint["remission"].fillna(False).sum()))
        #: files the sections wrote (listed in ``written.json`` by :meth:`save_summary`)
        self.written: list[Path] = []

    # --- helpers --------------------------------------------------------------------------

    def _finish(self, section: Section) -> Section:
        self.written += section.save(self.output_dir, formats=self.params.figure_formats)
        return section

    def _section(self, key: str, text: str, **parts) -> Section:
        """A section of the table of contents, its small-count footnote added to every table."""
        notes = parts.pop("notes", {})
        for name in parts.get("tables", {}):
            notes.setdefault(name, [])
            table = parts["tables"][name]
            if (table.astype(str) == HIDDEN).to_numpy().any():
                notes[name].append(HIDDEN_NOTE.format(k1=self.k - 1))
        return self._finish(Section(SECTION_TITLES[key], text, notes=notes, **parts))

    def n(self, count) -> str:
        """A count as the report shows it (``<k`` when small)."""
        return self.privacy.count(count)

    def pct(self, count, of) -> str:
        """A percentage as the report shows it (``suppressed`` when a count it gives back is small)."""
        return self.privacy.percent(count, of)

    @cached_property
    def with_endpoint(self) -> pd.DataFrame:
        """Courses of the patients with an endpoint: the analysis population."""
        courses = self.outcomes.courses
        return courses[courses["category"].notna()]

    @cached_property
    def relapse_km(self):
        """Kaplan-Meier curve of relapse after induction among responders."""
        return kaplan_meier(self.outcomes.relapse, "time", "event", conf_level=self.params.conf_level)

    def median_drawn(self, km, group: str = "all") -> bool:
        """Whether a Kaplan-Meier median lies where its curve is drawn (at least k remain after it)."""
        table = km.table[km.table["group"].astype(str) == group]
        after = table["at_risk"] - table["events"] - table["censored"]
        last = table.loc[after >= self.k, "time"].max()
        med = km.median.set_index(km.median["group"].astype(str)).loc[group, "median"]
        return bool(np.isnan(med) or (not np.isnan(last) and med <= last))

    @cached_property
    def one_confirmation(self) -> Outcomes | None:
        """The outcomes with relapse confirmed once (None when the report's rule already is)."""
        if self.outcomes.definitions.relapse_confirmations == 1:
            return None
        return derive_outcomes(self.dataset, self.instrument.name,
                               **{**self.params.definitions, "relapse_confirmations": 1})

    @cached_property
    def durability_models(self):
        return analyses.fit_durability_models(self.outcomes.durability, conf_level=self.params.conf_level,
                                              min_patients=self.k)

    @cached_property
    def relapse_incidence(self):
        """Cumulative incidence of relapse, boosting, stopping and loss among responders followed
        (Aalen-Johansen; the other causes compete with relapse instead of censoring it), and the
        name of each of its causes (:func:`clinical.competing_incidence`)."""
        return clinical.competing_incidence(self.outcomes.relapse_competing, conf_level=self.params.conf_level)

    @cached_property
    def course_display(self) -> tuple[pd.DataFrame, dict]:
        """The course transitions as the report draws them (:func:`clinical.cut_course_for_display`)."""
        return clinical.cut_course_for_display(self.course_transitions, self.k)

    @cached_property
    def course_transitions(self) -> pd.DataFrame:
        """The multi-state course of the analysis population (patients with an endpoint): the
        patients without one, beside the analysed, would be a small count given back."""
        transitions = self.outcomes.course_transitions
        return transitions[transitions["patient_id"].isin(set(self.with_endpoint["patient_id"]))]

    @cached_property
    def course_occupation(self):
        """State occupation of the treatment course (Aalen-Johansen) of the analysis population, states
        entered by 1 to k - 1 patients merged as in the plot."""
        from ..survival import state_occupation

        merged, _ = clinical.merge_small_states(self.course_transitions, self.k)
        return state_occupation(merged, id="patient_id", start="tstart", stop="tstop",
                                to="to_state", from_state="from_state", censor="censored",
                                conf_level=self.params.conf_level)

    @cached_property
    def reliable_change(self):
        """Jacobson-Truax reliable change of the analysis population (the instrument's published reliability)."""
        from ..effects import reliable_change

        return reliable_change(self.with_endpoint, instrument=self.instrument.name,
                               conf_level=self.params.conf_level)

    @cached_property
    def imputed_rate(self):
        """The headline response rate with missing end-of-induction scores imputed 20 times (seeded)."""
        from ..imputation import imputed_response_rate

        return imputed_response_rate(self.outcomes, m=20, seed=self.params.seed, conf_level=self.params.conf_level)

    @cached_property
    def adjunct_comparison(self):
        from ..adjuncts import compare_adjuncts

        return compare_adjuncts(self.outcomes, dataset=self.dataset, min_exposed=self.k,
                                conf_level=self.params.conf_level)

    def dataset_name(self) -> str:
        """The dataset as the report names it: its folder's name, never a path of this machine."""
        return "the bundled sample" if not self.params.data else f"the dataset {Path(self.params.data).resolve().name}"

    # --- sections ---------------------------------------------------------------------------

    def header(self) -> Section:
        """Title and what the cohort is: data, filters, instrument and definitions."""
        return Section(self.params.title, prose.header(self.params, self.dataset_name(), self.instrument.name), level=1)

    def summary(self) -> Section:
        """Plain-language key findings, each with its n and interval, written from the numbers."""
        from statsmodels.stats.proportion import proportion_confint

        p, level = self.privacy, self.params.conf_level
        of = p.analysed
        findings = []
        if is_small(of, self.k) or of == 0:
            findings.append(f"Only {p.count(of)} patients had an end-of-induction {self.instrument.name}: too few to "
                            "report response rates.")
        for name, count, shown, what in (
                ("responder", p.categories.get("responder", 0), not p.category_hidden.get("responder"), "responded"),
                ("remission", p.remitters, p.remission_shown, "were in remission")):
            if is_small(of, self.k) or of == 0:
                break
            if not shown:
                findings.append(f"The number who {what} is not shown (a small count).")
                continue
            lo, hi = proportion_confint(count, of, alpha=1 - level, method="wilson")
            findings.append(f"**{fmt.percent(count / of)}** of {p.count(of)} patients with an end-of-induction "
                            f"{self.instrument.name} {what} ({p.count(count)} patients; {level:.0%} CI "
                            f"{fmt.percent(lo)} to {fmt.percent(hi)}).")
        km = self.relapse_km
        if len(self.outcomes.relapse) >= self.k:
            med = km.median.iloc[0]
            events = int(self.outcomes.relapse["event"].sum())
            if events == 0:
                rule = self.outcomes.definitions.relapse_confirmations
                findings.append(f"No relapse after induction was confirmed among the {p.followed_count()} responders "
                                f"followed with {rule} confirming score(s) required"
                                + ("; the relapse section shows the result with one." if rule > 1 else "."))
            elif not self.median_drawn(km):
                findings.append(f"Among {p.followed_count()} responders followed after induction, the median time to "
                                f"relapse lies beyond the drawn curve (fewer than {self.k} remain there).")
            elif np.isnan(med["median"]):
                findings.append(f"Among {p.followed_count()} responders followed after induction, the median time to "
                                "relapse was not reached.")
            else:
                findings.append(f"Among {p.followed_count()} responders followed after induction, half had relapsed "
                                f"by **{fmt.days(med['median'])} days** ({level:.0%} CI {prose.days(med['ci_lower'])} to "
                                f"{prose.days(med['ci_upper'])}).")
        else:
            findings.append(f"Too few responders were followed after induction for a relapse curve "
                            f"({p.count(len(self.outcomes.relapse))}).")
        models = self.durability_models
        if models.within_effect is not None:
            e = models.within_effect
            findings.append(f"Within the {p.count(models.n_switch)} patients who had infusions with and without "
                            f"rapamycin, the hazard of losing benefit with rapamycin was "
                            f"{fmt.interval(e.ratio, e.lower, e.upper)} times that without ({level:.0%} CI), an "
                            "association in observational data.")
        findings.append("All counts from 1 to "
                        f"{self.k - 1} are suppressed; the limitations at the end say how far to trust these figures.")
        return Section(SECTION_TITLES["summary"], prose.summary(findings), values={"findings": findings})

    def contents(self) -> Section:
        """The table of contents (links to each section's heading)."""
        import html

        items = "".join(f'<li><a href="#{anchor_of(t)}">{html.escape(t)}</a></li>' for t in SECTION_TITLES.values())
        return ContentsSection("Contents", html_list=f"<ol>{items}</ol>")

    def methods(self) -> Section:
        """Definitions, models, how missing assessments and small counts were handled."""
        return Section(SECTION_TITLES["methods"], prose.methods(self.outcomes.definitions, self.instrument.name,
                                                                self.params.conf_level, self.k))

    def data_summary(self) -> Section:
        """Patients per site, sessions per route, assessments per instrument, among the patients
        with an endpoint (the report's analysis population: see ``attrition`` for the others)."""
        summary = analyses.data_summary(self.dataset, self.with_endpoint)
        p = self.privacy
        sites = p.cells(summary.patients_by_site, ["patients"], row_totals=False, column_totals=True)
        routes = p.cells(summary.sessions_by_route, ["sessions"], row_totals=False, column_totals=True)
        routes["patients"] = [p.count(v) for v in summary.sessions_by_route["patients"]]
        instruments = p.cells(summary.assessments_by_instrument, ["assessments"], row_totals=False, column_totals=True)
        instruments["patients"] = [p.count(v) for v in summary.assessments_by_instrument["patients"]]
        tables = {"patients_by_site": sites, "sessions_by_route": routes, "assessments_by_instrument": instruments}
        captions = {"patients_by_site": "Patients by site", "sessions_by_route": "Sessions by route (a patient may "
                    "have had more than one route)", "assessments_by_instrument": "Assessments by instrument"}
        text = prose.data_summary(summary, p, self.instrument.name)
        return self._section("data_summary", text, tables=tables, captions=captions,
                             values={"n_analysed": summary.n_patients}, result=summary)

    def attrition(self) -> Section:
        """The patient flow: who was analysed and who left at which step, as a CONSORT-style diagram."""
        attrition = self.outcomes.attrition
        patients = attrition[attrition["unit"] == "patients"].reset_index(drop=True)
        shown = self._shown_attrition(patients)
        n_boxes = 1 + int((shown["n_excluded"].astype(str) != "0").sum() - (str(shown.iloc[0]["n_excluded"]) != "0"))
        fig, ax = fg.new_figure(fg.DOUBLE_COLUMN, 0.9 + 1.05 * n_boxes)
        fg.attrition_flow(shown, ax=ax, instrument=self.instrument.name)
        intervals = attrition[attrition["unit"] == "intervals"].iloc[0]
        text = prose.attrition(intervals["n_in"], intervals["n_excluded"], self.instrument.name, self.privacy)
        table = shown.rename(columns={"n_in": "patients in", "n_excluded": "excluded", "n_remaining": "remaining"})
        return self._section("attrition", text, tables={"attrition": table}, figures={"attrition_flow": fig},
                             captions={"attrition": "Patients at each step", "attrition_flow": "Patient flow"},
                             result=attrition, csv_only=("attrition",))

    def _shown_attrition(self, patients: pd.DataFrame) -> pd.DataFrame:
        """The attrition as shown, its steps after the analysis population made consistent with
        the report's decisions on responders and responders followed."""
        shown = suppress_attrition(patients, self.k)
        p = self.privacy
        for i, row in shown.iterrows():
            last = str(row["step"]).split("; ")[-1]
            first = str(row["step"]).split("; ")[0]
            if first == "not a responder" or last == "not a responder":
                responders = p.category("responder")
                shown.loc[i, ["n_excluded", "n_remaining"]] = [
                    HIDDEN if responders == HIDDEN else p.count(p.analysed - p.categories.get("responder", 0)),
                    responders]
                if last == "no follow-up after induction":
                    shown.loc[i, "n_remaining"] = p.followed_count()
            elif last == "no follow-up after induction":
                unfollowed = p.categories.get("responder", 0) - p.followed
                shown.loc[i, ["n_in", "n_excluded", "n_remaining"]] = [
                    p.category("responder"), p.count(unfollowed) if p.category("responder") != HIDDEN else HIDDEN,
                    p.followed_count()]
        return shown

    def table_one(self, columns: list[str] | None = None) -> Section:
        """Baseline characteristics by response category (patients with an endpoint); categories
        the report hides are shown merged, and with too few patients only a sentence."""
        from .labels import characteristic_label

        data = self.with_endpoint.copy()
        candidates = ["age", "sex", "weight_kg", "diagnosis", "prior_treatment_failures", "comorbid_ptsd",
                      "baseline_score", "completed_induction"]
        columns = columns or [c for c in candidates if c in data.columns and data[c].notna().any()
                              and data[c].nunique() > 0]
        groups = self.privacy.table_one_groups()
        text = prose.table_one(groups, self.privacy, len(data))
        if is_small(len(data), self.k) or len(data) == 0:
            return self._section("table_one", text, result=None)
        import warnings

        with warnings.catch_warnings():
            # a level absent from every group leaves its SMD undefined (shown empty), which numpy warns about
            warnings.filterwarnings("ignore", "All-NaN", RuntimeWarning)
            if groups:
                order = list(dict.fromkeys(groups[c] for c in ("non-responder", "partial", "responder") if c in groups))
                data["group"] = pd.Categorical(data["category"].astype(str).map(groups), categories=order,
                                               ordered=True)
                t1 = table_one(data, "group", columns, nonnormal=["prior_treatment_failures"])
            else:
                t1 = table_one(data, None, columns, nonnormal=["prior_treatment_failures"])
        table = suppress_table_one(t1, self.k)
        # an SMD beside hidden cells would let them be estimated back
        current, hidden_chars = None, set()
        for _, row in table.iterrows():
            current = row["characteristic"] or current
            if (row.drop(["characteristic", "level"]).astype(str) == HIDDEN).any():
                hidden_chars.add(current)
        current = None
        for idx, row in table.iterrows():
            current = row["characteristic"] or current
            if current in hidden_chars and "smd" in table:
                table.loc[idx, "smd"] = np.nan
        if "smd" in table:
            table["smd"] = [fmt.mean(v, 2) for v in table["smd"]]
        table["characteristic"] = [characteristic_label(c) if c else "" for c in table["characteristic"]]
        table = table.replace({"nan": "", "nan (nan)": ""}).fillna("")
        notes = {"table_one": ["SMD: largest pairwise standardised mean difference between the columns; left "
                               "empty where counts are not shown."]}
        return self._section("table_one", text, tables={"table_one": table}, notes=notes,
                             captions={"table_one": "Table 1. Baseline characteristics"},
                             values={"table_one": t1}, result=t1)

    def trajectories(self) -> Section:
        """Mean score by week since the first session, overall and by response category."""
        level = self.params.conf_level
        scores = analyses.score_weeks(self.dataset, self.outcomes, self.instrument.name)
        # the analysis population only: another population's size beside it would give back a difference
        scores = scores[scores["patient_id"].isin(set(self.with_endpoint["patient_id"]))]
        overall = fg.trajectory_summary(scores, conf_level=level, k=self.k)
        if overall.empty:
            return self._section("trajectories", prose.trajectories(None, None, self.instrument.name, self.k),
                                 result=overall)
        fig, ax = fg.new_figure()
        fg.plot_trajectory(overall, label="all patients", ax=ax, color="#777777",
                           ylabel=f"{self.instrument.name} (mean, {level:.0%} CI)")
        ax.get_lines()[-1].set_linestyle("--")
        for category in ("non-responder", "partial", "responder"):
            group = scores[scores["category"] == category]
            summary = fg.trajectory_summary(group, conf_level=level, k=self.k)
            if len(summary):
                fg.plot_trajectory(summary, label=category, ax=ax,
                                   ylabel=f"{self.instrument.name} (mean, {level:.0%} CI)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize=8)
        ax.set_xlabel("weeks since the first session")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        after = overall[overall["week"] >= 0]
        first, last = overall.iloc[0], (after.iloc[min(2, len(after) - 1)] if len(after) else overall.iloc[-1])
        text = prose.trajectories(first, last, self.instrument.name, self.k)
        table = pd.DataFrame({
            "week": [f"{w:.0f}" for w in overall["week"]], "patients": [self.n(v) for v in overall["n"]],
            f"mean {self.instrument.name} ({level:.0%} CI)": [
                f"{fmt.mean(m)} ({fmt.mean(lo)} to {fmt.mean(hi)})"
                for m, lo, hi in zip(overall["mean"], overall["ci_lower"], overall["ci_upper"])]})
        return self._section("trajectories", text, tables={"trajectory": table}, figures={"trajectories": fig},
                             captions={"trajectory": "Mean score by week (all patients)",
                                       "trajectories": "Mean score by week and response category"},
                             result=overall)

    def waterfall(self) -> Section:
        """Distribution of end-of-induction improvement, drawn as a waterfall of percentiles."""
        d = self.outcomes.definitions
        improvement = self.with_endpoint["improvement_pct"]
        # quartiles of fewer than k patients would come close to showing single patients
        if len(improvement) < self.k:
            return self._section("waterfall", prose.waterfall(len(improvement), None, self.privacy),
                                 values={"median_improvement": None})
        q = improvement.quantile([0.25, 0.5, 0.75])
        text = prose.waterfall(len(improvement), q, self.privacy)
        if any(self.privacy.category_hidden.values()):
            # the share of bars above each line is the share of each category: it would give a hidden count back
            text += (" The waterfall itself is not shown: a response category is too small to show, and the share "
                     "of bars above each line would give its size back.")
            return self._section("waterfall", text, values={"median_improvement": float(q[0.5])}, result=q)
        fig, ax = fg.new_figure()
        fg.waterfall(improvement, response_pct=d.response_pct, partial_pct=d.partial_response_pct, k=self.k, ax=ax)
        return self._section("waterfall", text, figures={"waterfall": fig},
                             captions={"waterfall": "Improvement at the end of induction, by percentile"},
                             values={"median_improvement": float(q[0.5])}, result=q)

    def response(self) -> Section:
        """Response categories and remission at the end of induction."""
        summary = self.outcomes.response_summary()
        p = self.privacy
        of = p.analysed
        cats = ["non-responder", "partial", "responder"]
        remission, remission_pct = self._remission()
        table = pd.DataFrame({
            "outcome": cats + ["remission"],
            "patients": [p.category(c) for c in cats] + [remission],
            "percent": [p.category_percent(c) for c in cats] + [remission_pct]})
        text = prose.response(of=of, privacy=p, remission=remission, remission_pct=remission_pct,
                              definitions=self.outcomes.definitions, instrument=self.instrument.name)
        figures = {}
        if of >= self.k:
            fig, ax = fg.new_figure(width=4.5)
            bars = pd.DataFrame({"outcome": cats + ["remission"],
                                 "n": [p.categories.get(c, 0) for c in cats] + [p.remitters], "of": of})
            fg.category_bars(bars, k=self.k, ax=ax,
                             hidden=[p.category_hidden.get(c, False) for c in cats] + [not p.remission_shown])
            figures["response_categories"] = fig
        values = {"n_endpoint": of, "response_rate": p.categories.get("responder", 0) / of if of else np.nan,
                  "partial_rate": p.categories.get("partial", 0) / of if of else np.nan,
                  "remission_rate": p.remitters / of if of else np.nan}
        tables = {"response": table}
        captions = {"response": "Response categories and remission at the end of induction",
                    "response_categories": "Share of patients per category"}
        notes = {}
        # --- reliable change (Jacobson-Truax), its counts adding up to the patients analysed --------
        with analyses.FitGuard() as guard:
            rc = self.reliable_change if of >= self.k else None
        if guard.error or rc is None:
            text += "\n\n" + prose.reliable_change(None, self.instrument.name, self.k,
                                                    error=p.text(guard.error) if guard.error else None)
        else:
            source = _reliability_source(self.instrument.name)
            tables["reliable_change"] = clinical.reliable_change_table(rc, p)
            captions["reliable_change"] = "Reliable change at the end of induction (Jacobson and Truax)"
            notes["reliable_change"] = [prose.reliable_change_note(rc, source)]
            values["reliable_change"] = rc.table
            text += "\n\n" + prose.reliable_change(rc, self.instrument.name, self.k)
        # --- the headline rate with missing endpoints imputed (a sensitivity line) --------------------
        text += "\n\n" + self._imputed_line()
        return self._section("response", text, tables=tables, figures=figures, captions=captions, notes=notes,
                             values=values, result=summary)

    def _imputed_line(self) -> str:
        """One sentence: the response rate with missing endpoints imputed, beside the complete-case rate."""
        p = self.privacy
        with analyses.FitGuard() as guard:
            rate = self.imputed_rate if p.analysed >= self.k and not p.category_hidden.get("responder") else None
        if guard.error:
            return ("The response rate with missing end-of-induction scores imputed could not be computed: "
                    f"{p.text(guard.error)}.")
        if rate is None:
            return ("The response rate with missing end-of-induction scores imputed is not shown: the number of "
                    "responders is not shown.")
        return prose.imputed_rate(rate, p, self.params.conf_level)

    def _remission(self) -> tuple[str, str]:
        p = self.privacy
        if not p.remission_shown:
            return (p.count(p.remitters) if is_small(p.remitters, self.k) else HIDDEN), "suppressed"
        return p.count(p.remitters), p.percent(p.remitters, p.analysed)

    def responder_candidates(self) -> list[str]:
        """Baseline covariates for the responder models: those recorded with some variation."""
        return analyses.responder_covariates(self.with_endpoint)

    def responder_models(self) -> Section:
        """Logistic model of response and proportional-odds model of the category, with the Brant test.

        The section's ``result`` is a :class:`~analysis.report.analyses.ResponderModels`
        (pass it to :meth:`limitations`)."""
        models = analyses.fit_responder_models(self.with_endpoint, conf_level=self.params.conf_level)
        text = prose.responder_models(models, self.params.conf_level, self.privacy)
        if not models.fitted:
            return self._section("responder_models", text, result=models)
        level = f"{self.params.conf_level:.0%}"
        t = models.table
        table = pd.DataFrame({
            "model": t["model"], "term": [label(x) for x in t["term"]],
            f"odds ratio ({level} CI)": [fmt.interval(r, lo, hi) for r, lo, hi in
                                         zip(t["odds_ratio"], t["odds_ratio_ci_lower"], t["odds_ratio_ci_upper"])],
            "p": [fmt.p_value(x) for x in t["p_value"]]})
        table.loc[table["model"].duplicated(), "model"] = ""
        notes = {"responder_models": ["Odds ratios above 1 favour response (logistic) or a better category "
                                      "(proportional odds)."]}
        return self._section("responder_models", text, tables={"responder_models": table}, notes=notes,
                             captions={"responder_models": "Baseline covariates and response"},
                             values={"brant_p": models.brant_p, "logistic": models.logistic,
                                     "ordinal": models.ordinal}, result=models)

    def relapse(self) -> Section:
        """Relapse after induction among responders: Kaplan-Meier curve with its number at risk
        and median; with every course censored under the relapse rule, the one-confirmation
        curve beside it."""
        km = self.relapse_km
        p = self.privacy
        n = len(self.outcomes.relapse)
        events = int(self.outcomes.relapse["event"].sum())
        drawn = n >= self.k
        med = km.median.iloc[0] if len(km.median) else pd.Series({"median": np.nan, "ci_lower": np.nan,
                                                                  "ci_upper": np.nan})
        beyond = drawn and not self.median_drawn(km)
        text = prose.relapse(followed=p.followed_count(), events=p.part(events, n, whole_shown=p.followed_shown),
                             median=med, beyond=beyond, definitions=self.outcomes.definitions, instrument=self.instrument.name,
                             conf_level=self.params.conf_level, k=self.k, drawn=drawn)
        figures, tables, captions = {}, {}, {}
        one = None
        if drawn and events == 0 and self.one_confirmation is not None:
            relapse_one = self.one_confirmation.relapse
            events_one = int(relapse_one["event"].sum())
            km_one = kaplan_meier(relapse_one, "time", "event", conf_level=self.params.conf_level) if events_one else None
            one = km_one.median.iloc[0] if km_one is not None else None
            text += " " + prose.all_censored(self.outcomes.definitions.relapse_confirmations, one, p.followed_count(),
                                             p.part(events_one, len(relapse_one), whole_shown=p.followed_shown),
                                             beyond=km_one is not None and not self.median_drawn(km_one), k=self.k)
        if drawn:
            both = self.outcomes.relapse.assign(rule="as defined")
            if one is not None:
                both = pd.concat([both, self.one_confirmation.relapse.assign(rule="relapse confirmed once")])
            km_shown = kaplan_meier(both, "time", "event", group="rule" if one is not None else None,
                                    conf_level=self.params.conf_level)
            drawn_km = kaplan_meier(fg.censor_for_display(both, k=self.k, group="rule"), "time", "event",
                                    group="rule" if one is not None else None, conf_level=self.params.conf_level)
            fig, ax = fg.new_figure(height=3.8)
            drawn_km.plot(ax=ax, min_at_risk=self.k)
            fg.relabel_groups(ax, "rule")
            for t in ax.texts:
                if t.get_text() == "all":
                    t.set_text("responders")
            ax.set_xlabel("days since the end of induction")
            ax.set_ylabel("still responding")
            figures["relapse_km"] = fig
            captions["figure:relapse_km"] = "Relapse after induction among responders (number at risk below the axis)"
            tables["relapse_km"] = self._at_risk_table(km_shown, both, "rule" if one is not None else None)
            captions["relapse_km"] = "Number at risk and share still responding"
        if drawn:
            text += "\n\n" + self._relapse_incidence(figures, captions)
        notes = {"relapse_km": [f"Rows with fewer than {self.k} at risk, or fewer than {self.k} left after the day, "
                                f"have no survival shown (the curve stops there); <{self.k}: a count from 1 to "
                                f"{self.k - 1}."]} if tables else {}
        return self._section("relapse", text, tables=tables, figures=figures, notes=notes, captions=captions,
                             values={"median_days": float(med["median"]), "n": n, "events": events}, result=km)

    def _relapse_incidence(self, figures: dict, captions: dict) -> str:
        """Cumulative incidence of relapse with boosting, stopping and loss competing, drawn beside
        the Kaplan-Meier curve into ``figures`` (causes with fewer than k events are not drawn);
        returns its paragraph."""
        data = self.outcomes.relapse_competing
        counts = data["cause"].astype(str).value_counts()
        causes = [c for c in ("relapse", "boosted", "stopped", "lost") if counts.get(c, 0) >= self.k]
        not_drawn = [c for c in ("relapse", "boosted", "stopped", "lost") if is_small(counts.get(c, 0), self.k)]
        # the drawn causes' totals, with the number followed, bound the rest (the others and the censored):
        # a competing cause is drawn only while that rest stays 0 or at least k
        while len(causes) > 1 and is_small(len(data) - sum(counts.get(c, 0) for c in causes), self.k):
            not_drawn.append(causes.pop())
        if "relapse" not in causes:
            return f"The cumulative incidence of relapse is not shown: fewer than {self.k} relapses."
        ci, names = self.relapse_incidence
        rows = clinical.incidence_rows(ci, data, [28, 56], causes, self.k, names)
        km_rows = self.relapse_km.at([28, 56])
        km_at = {float(t): 1 - s for t, s, r in zip(km_rows["time"], km_rows["survival"], km_rows["at_risk"])
                 if r >= self.k}
        km_at = {t: v for t, v in km_at.items() if not rows[(rows["day"] == t) & rows["estimate"].isna()].shape[0]}
        text = prose.relapse_incidence(rows, km_at, self.privacy.followed_count(), causes, not_drawn,
                                       self.params.conf_level, self.k)
        shown = clinical.cut_competing_for_display(data, self.k)
        drawn, drawn_names = clinical.competing_incidence(shown, conf_level=self.params.conf_level)
        fig, ax = fg.new_figure(height=3.4)
        drawn.plot(ax=ax, causes=[c for c in drawn.causes if drawn_names[c] in causes])
        by_label = {f"cause {c}": clinical.CAUSE_LABELS.get(n, n) for c, n in drawn_names.items()}
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, [by_label.get(t, t) for t in labels], frameon=False, fontsize=8)
        ax.set_xlabel("days since the end of induction")
        ax.set_ylabel("cumulative incidence")
        ax.set_ylim(0, 1)
        figures["relapse_cif"] = fig
        captions["relapse_cif"] = ("Cumulative incidence of relapse, with boosting, stopping and loss as competing "
                                   "events (Aalen-Johansen)")
        return text

    def course(self) -> Section:
        """The treatment course as a multi-state model: stacked state occupation over time and the
        expected days in response over the first 90 days (restricted mean time in state)."""
        p = self.privacy
        horizon = 90.0
        if is_small(p.analysed, self.k) or p.analysed == 0 or p.category_hidden.get("responder"):
            reason = ("the number of responders is not shown, and the share in response would give it back"
                      if p.analysed >= self.k else f"fewer than {self.k} patients had an endpoint")
            return self._section("course", prose.course(None, horizon, {}, p.count(p.analysed), self.k,
                                                        reason=reason))
        shown, merged = self.course_display
        if shown.empty:
            return self._section("course", prose.course(None, horizon, {}, p.count(p.analysed), self.k,
                                                        reason=f"fewer than {self.k} patients remain in any state"))
        from ..survival import state_occupation

        # restricted to the days drawn: past the last follow-up the time in state would be extrapolated
        horizon = float(min(horizon, np.floor(shown["tstop"].max())))
        with analyses.FitGuard() as guard:
            rmean = self.course_occupation.rmean(horizon).set_index("state")
            rmean = rmean.loc[[s for s in COURSE_STATES if s in rmean.index]
                              + [s for s in rmean.index if s not in COURSE_STATES]]
            drawn = state_occupation(shown, id="patient_id", start="tstart", stop="tstop", to="to_state",
                                     from_state="from_state", censor="censored", conf_level=self.params.conf_level)
        if guard.error:
            return self._section("course", prose.course(None, horizon, {}, p.count(p.analysed), self.k,
                                                        reason=f"the model could not be estimated ({p.text(guard.error)})"))
        fig, ax = fg.new_figure(height=3.6)
        drawn.plot_stacked(ax=ax, states=[s for s in COURSE_STATES if s in drawn.states]
                           + [s for s in drawn.states if s not in COURSE_STATES])
        ax.set_xlabel("days since the first session")
        ax.set_ylabel("share of patients")
        ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
        level = f"{self.params.conf_level:.0%}"
        table = pd.DataFrame({
            "state": [str(s) for s in rmean.index],
            f"expected days in the first {horizon:.0f} ({level} CI)": [
                f"{fmt.mean(r['rmean'])} ({fmt.mean(r['ci_lower'])} to {fmt.mean(r['ci_upper'])})"
                for _, r in rmean.iterrows()]})
        text = prose.course(rmean["rmean"].to_dict(), horizon, merged, p.count(p.analysed), self.k)
        return self._section("course", text, tables={"course_rmean": table}, figures={"course_states": fig},
                             captions={"course_rmean": f"Expected days in each state over the first {horizon:.0f} days",
                                       "course_states": "Share of patients in each state of the treatment course"},
                             values={"rmean": rmean}, result=self.course_occupation)

    def _at_risk_table(self, km, data: pd.DataFrame, group: str | None) -> pd.DataFrame:
        """Number at risk and survival at :data:`AT_RISK_DAYS`, rows past the cut-off the curve
        respects (fewer than k remaining after the time) blank."""
        at = km.at(AT_RISK_DAYS)
        remaining = [int(((data[group].astype(str) == str(g)) if group else pd.Series(True, index=data.index))
                         [data["time"] > t].sum()) for g, t in zip(at["group"], at["time"])]
        at = at.assign(remaining=remaining)
        if not self.privacy.followed_shown:
            # time 0 gives back the number followed: shown only as the report decided
            at.loc[at["time"] == 0, "at_risk"] = np.nan
        shown = hide_at_risk_rows(at, self.k)
        shown = shown.drop(columns="remaining")
        shown.loc[at["time"] == 0, "at_risk"] = [self.privacy.followed_count() if pd.isna(v) else s
                                                 for v, s in zip(at.loc[at["time"] == 0, "at_risk"],
                                                                 shown.loc[at["time"] == 0, "at_risk"])]
        level = f"{self.params.conf_level:.0%}"
        out = pd.DataFrame({
            "day": [f"{t:.0f}" for t in shown["time"]], "at risk": shown["at_risk"], "events since previous": shown["events"],
            f"still responding ({level} CI)": [
                "" if s is None or pd.isna(s) else f"{fmt.percent(s)} ({fmt.percent(lo)} to {fmt.percent(hi)})"
                for s, lo, hi in zip(shown["survival"], shown["ci_lower"], shown["ci_upper"])]})
        if km.group_column is not None:
            out.insert(0, "curve", shown["group"].astype(str).tolist())
        return out

    def relapse_models(self) -> Section:
        """Relapse after induction: Cox model (with its proportional-hazards test) and the
        interval-censored Weibull AFT model's predicted median durability.

        The section's ``result`` is a :class:`~analysis.report.analyses.RelapseModels`
        (pass it to :meth:`limitations`)."""
        models = analyses.fit_relapse_models(self.outcomes.relapse, conf_level=self.params.conf_level,
                                             min_patients=self.k)
        text = prose.relapse_models(models, self.params.conf_level, self.privacy)
        if not models.fitted:
            return self._section("relapse_models", text, result=models)
        level = f"{self.params.conf_level:.0%}"
        tables, values, captions = {}, {}, {}
        if models.cox is not None:
            values["ph_p"] = models.ph_p
            tables["relapse_cox"] = self._hr_table(models.cox_table, level)
            captions["relapse_cox"] = "Cox model of relapse after induction"
        values["aft_median"] = float(models.aft_median)
        tables["relapse_aft_median"] = pd.DataFrame({
            "model": ["Weibull, interval-censored"],
            f"median days ({level} CI)": [f"{fmt.days(models.aft_median)} ({fmt.days(models.aft_ci_lower)} to "
                                          f"{fmt.days(models.aft_ci_upper)})"],
            "shape": [fmt.mean(models.aft_shape, 2)]})
        captions["relapse_aft_median"] = "Predicted median durability"
        return self._section("relapse_models", text, tables=tables, values=values, captions=captions, result=models)

    @staticmethod
    def _hr_table(t: pd.DataFrame, level: str) -> pd.DataFrame:
        return pd.DataFrame({"term": [label(x) for x in t["term"]],
                             f"hazard ratio ({level} CI)": [fmt.interval(r, lo, hi) for r, lo, hi in
                                                            zip(t["hr"], t["hr_lower"], t["hr_upper"])],
                             "p": [fmt.p_value(x) for x in t["p_value"]]})

    def durability(self) -> Section:
        """How long each maintenance infusion held: Kaplan-Meier by infusion number, PWP gap-time Cox
        model clustered by patient, and the within-patient comparison for adjuncts started mid-course."""
        models = self.durability_models
        p = self.privacy
        n_patients = p.followed_count() if models.n_patients == p.followed else p.count(models.n_patients)
        within_adjunct = self._adjunct_within_n()
        if not models.fitted:
            return self._section("durability", prose.durability(models, [], 0.0, p, n_patients=n_patients),
                                 result=models)
        level = f"{self.params.conf_level:.0%}"
        km = models.km
        fig, ax = fg.new_figure(height=3.8)
        shown = self.outcomes.durability.assign(
            infusion=np.minimum(self.outcomes.durability["interval"], 4).map({1: "1", 2: "2", 3: "3", 4: "4+"}))
        kaplan_meier(fg.censor_for_display(shown, k=self.k, group="infusion"), "time", "event", group="infusion",
                     conf_level=self.params.conf_level).plot(ax=ax, min_at_risk=self.k, ci=False)
        fg.relabel_groups(ax, "infusion", {g: f"infusion {g}" for g in km.levels})
        ax.set_xlabel("days since the infusion")
        ax.set_ylabel("benefit still holding")
        medians = km.median
        # the last time each curve is drawn to: at least k remain after it (figures.censor_for_display)
        table = km.table.assign(after=km.table["at_risk"] - km.table["events"] - km.table["censored"])
        last_drawn = table[table["after"] >= self.k].groupby("group")["time"].max()
        shown_medians = []
        for _, r in medians.iterrows():
            limit = last_drawn.get(r["group"], -np.inf)
            if np.isnan(r["median"]):
                shown_medians.append("not reached")
            elif r["median"] > limit:
                shown_medians.append(f"beyond the drawn curve (fewer than {self.k} at risk)")
            else:
                upper = "" if np.isnan(r["ci_upper"]) or r["ci_upper"] > limit else fmt.days(r["ci_upper"])
                lower = fmt.days(r["ci_lower"])
                shown_medians.append(f"{fmt.days(r['median'])} ({lower} to {upper or 'not shown'})")
        first = medians["group"].astype(str) == "1"
        table = pd.DataFrame({
            "infusion": medians["group"].astype(str),
            "intervals": [p.followed_count() if f and n == p.followed else p.count(n)
                          for f, n in zip(first, medians["n"])],
            "ends of benefit": [p.part(e, n, whole_shown=not (f and not p.followed_shown))
                                for f, e, n in zip(first, medians["events"], medians["n"])],
            f"median days ({level} CI)": shown_medians})
        tables = {"durability_km_medians": table}
        captions = {"durability_km_medians": "Median days each infusion held", "durability_km": (
            "How long each infusion held, by infusion number (number at risk below the axis)")}
        notes = {"durability_km_medians": [f"A median or bound beyond the drawn curve (where fewer than {self.k} "
                                           "remain at risk) is not shown."]}
        values = {}
        if models.pwp is not None:
            tables["durability_pwp"] = self._hr_table(models.pwp_table, level)
            captions["durability_pwp"] = "Gap-time model of repeated infusions"
        if models.within is not None:
            values["within_hr"] = float(models.within_effect.ratio)
            tables["durability_within_patient"] = self._hr_table(models.within_table, level)
            captions["durability_within_patient"] = (f"Within-patient comparison ({p.count(models.n_switch)} patients "
                                                     "with infusions with and without rapamycin)")
        text = prose.durability(models, list(zip(table["infusion"], shown_medians)), self.params.conf_level, p,
                                n_patients=n_patients, adjunct_within=within_adjunct)
        return self._section("durability", text, tables=tables, figures={"durability_km": fig}, captions=captions,
                             notes=notes, values=values, result=models)

    def _adjunct_within_n(self) -> str | None:
        """Patients of the adjunct section's within-patient rapamycin comparison (as shown), when it has one."""
        try:
            table = self.adjunct_comparison.table
        except analyses.FitGuard.FIT_ERRORS:
            return None
        row = table[table["adjunct"] == "drug_rapamycin"]
        if row.empty or not row["within_n_patients"].iloc[0]:
            return None
        return self.n(row["within_n_patients"].iloc[0])

    def adjuncts(self) -> Section:
        """Adjunct comparisons: crude, adjusted and within-patient effects with balance (docs/adjuncts.md)."""
        from matplotlib.figure import Figure

        from ..adjuncts.comparison import MEASURES

        level = self.params.conf_level
        p = self.privacy
        with analyses.FitGuard() as guard:
            result = self.adjunct_comparison
        if guard.error:
            return self._section("adjuncts", prose.adjuncts(n_imbalanced=None, n_hidden=0, conf_level=level, k=self.k,
                                                            error=p.text(guard.error)))
        if result.table.empty:
            return self._section("adjuncts", prose.adjuncts(n_imbalanced=None, n_hidden=0, conf_level=level,
                                                            k=self.k), result=result)
        # --- the comparison's results read here (and nowhere else in this section) ---------------
        estimates = result.estimates.copy()
        hide = suppress_adjunct_estimates(estimates, self.k)
        n_hidden = int(estimates.loc[hide, "adjunct"].nunique())
        for col in ("estimate", "ci_lower", "ci_upper", "p_value", "p_holm", "p_bh"):
            if col in estimates:
                estimates.loc[hide, col] = np.nan
        masked = replace(result, estimates=estimates)
        # --- shown: effects by adjunct and measure, counts as the report shows them --------------
        lv = f"{level:.0%}"
        rows = []
        for _, r in estimates.iterrows():
            kind = "difference" if r["scale"] == "RD" else "ratio"
            shown = ("not shown (small counts)" if hide[_] else
                     fmt.interval(r["estimate"], r["ci_lower"], r["ci_upper"], kind) or fmt.NOT_ESTIMABLE)
            rows.append({"adjunct": exposure_label(r["adjunct"]), "outcome": _measure_label(r["measure"], r["scale"]),
                         "design": _design(r["measure"]), "value": shown})
        clinical_figures = clinical.adjunct_nnt_evalue(estimates, hide, level)
        extra = {}
        for i, r in estimates.iterrows():
            key = (exposure_label(r["adjunct"]), _measure_label(r["measure"], r["scale"]))
            got = extra.setdefault(key, {"nnt": "", "e_value": ""})
            for col in ("nnt", "e_value"):
                got[col] = got[col] or clinical_figures.loc[i, col]
        long = pd.DataFrame(rows)
        effects = (long.pivot_table(index=["adjunct", "outcome"], columns="design", values="value", aggfunc="first",
                                    sort=False).reset_index().fillna(""))
        effects.columns.name = None
        effects = effects[[c for c in ["adjunct", "outcome", "crude", "adjusted", "within patient"] if c in effects]]
        effects = effects.rename(columns={c: f"{c} ({lv} CI)" for c in ("crude", "adjusted", "within patient")})
        keys = list(zip(effects["adjunct"], effects["outcome"]))
        effects[f"NNT, adjusted ({lv} CI)"] = [extra.get(key, {}).get("nnt", "") for key in keys]
        effects["E-value, adjusted"] = [extra.get(key, {}).get("e_value", "") for key in keys]
        if not effects[f"NNT, adjusted ({lv} CI)"].astype(bool).any():
            effects = effects.drop(columns=f"NNT, adjusted ({lv} CI)")
        effects.loc[effects["adjunct"].duplicated(), "adjunct"] = ""
        counts = pd.DataFrame({
            "adjunct": [exposure_label(a) for a in result.table["adjunct"]],
            "patients on it": [p.count(v) for v in result.table["n_exposed"]],
            "patients on no adjunct": [p.count(v) for v in result.table["n_reference"]],
            "within-patient comparison": [p.count(v) for v in result.table["within_n_patients"]]})
        balance = pd.DataFrame({
            "adjunct": [exposure_label(a) for a in result.balance["adjunct"]],
            "population": result.balance["population"],
            "on it": [p.count(v) for v in result.balance["n_exposed"]],
            "reference": [p.count(v) for v in result.balance["n_reference"]],
            "largest SMD before (covariate)": [f"{fmt.mean(v, 2)} ({label(c)})" for v, c in
                                               zip(result.balance["max_smd"], result.balance["max_smd_covariate"])],
            "after weighting": [f"{fmt.mean(v, 2)} ({label(c)})" for v, c in
                                zip(result.balance["max_smd_weighted"], result.balance["max_smd_weighted_covariate"])]})
        n_imbalanced = int((result.balance["max_smd_weighted"].round(3) > 0.1).sum())
        detail = estimates.copy()
        for col in ("n_exposed", "n_reference", "events_exposed", "events_reference"):
            if col in detail:
                detail[col] = [p.count(v) if not pd.isna(v) else "" for v in detail[col]]
        detail["trust"] = [p.text(t) for t in detail["trust"]]
        detail["design"] = [p.text(t) for t in detail["design"]]
        # --- the forest plot of what is shown: one panel per measure present, two columns --------
        present = set(estimates.dropna(subset=["estimate", "ci_lower", "ci_upper"])["measure"])
        n_panels = len({MEASURES[m][0] for m in MEASURES if m in present})
        figures = {}
        if n_panels:
            fig = Figure(figsize=(7.2, 1.2 + 0.45 * len(result.table) * max(1, (n_panels + 1) // 2)),
                         layout="constrained")
            # one column of adjunct names: the right-hand panels share the rows of the left-hand ones
            axes = fig.subplots(max(1, (n_panels + 1) // 2), 2, squeeze=False, sharey=True).ravel()
            used = masked.plot(ax=axes[:n_panels])
            for ax in axes[len(np.atleast_1d(used)):]:
                ax.set_axis_off()
            first = axes[0]                # the panels share its ticks (and so its labels)
            first.set_yticks(first.get_yticks(), [exposure_label(t.get_text()) if t.get_text().startswith(
                ("drug_", "class_")) else t.get_text() for t in first.get_yticklabels()])
            figures["adjunct_forest"] = fig
        notes_text = [p.text(n[:1].upper() + n[1:]) for n in result.notes[:1]]
        text = prose.adjuncts(n_imbalanced=n_imbalanced, n_hidden=n_hidden, conf_level=level, k=self.k)
        if notes_text:
            text += "\n\n" + notes_text[0]
        within_n = self._adjunct_within_n()
        if within_n and self.durability_models.within is not None:
            text += (f"\n\nThe within-patient rapamycin hazard ratio here uses the {within_n} patients on no other listed "
                     f"adjunct; the per-infusion durability section uses all "
                     f"{self.n(self.durability_models.n_switch)} patients with infusions with and without rapamycin, "
                     "so the two estimates differ.")
        return self._section("adjuncts", text,
                             tables={"adjunct_effects": effects, "adjunct_counts": counts,
                                     "adjunct_balance": balance, "adjunct_estimates": detail},
                             notes={"adjunct_effects": [prose.adjunct_clinical_note(level)]},
                             captions={"adjunct_effects": "Adjunct effects: odds ratios, risk differences and hazard "
                                       "ratios", "adjunct_counts": "Patients per comparison",
                                       "adjunct_balance": "Balance of baseline covariates (standardised mean "
                                       "differences)", "adjunct_forest": "Adjunct effects"},
                             figures=figures, values={"comparison": result}, result=result,
                             csv_only=("adjunct_estimates",))

    @cached_property
    def adjunct_mmrm(self):
        """The MMRM of change by week of induction, an adjunct against none (or the reason it is not fitted)."""
        scores = analyses.score_weeks(self.dataset, self.outcomes, self.instrument.name)
        scores = scores[scores["patient_id"].isin(set(self.with_endpoint["patient_id"]))]
        return longitudinal.fit_adjunct_mmrm(scores, self.with_endpoint, k=self.k, conf_level=self.params.conf_level)

    def mmrm(self) -> Section:
        """Mixed model for repeated measures: change from baseline by week of induction, patients on
        an adjunct against patients on none (observational), with its LS means by week, the
        difference at the end of induction and the covariance structure chosen and why."""
        p, level = self.privacy, self.params.conf_level
        with analyses.FitGuard() as guard:
            result = self.adjunct_mmrm
        if guard.error or isinstance(result, str):
            return self._section("mmrm", prose.mmrm(None, None, level, reason=p.text(guard.error or result)))
        # --- the model's results read here (and nowhere else in this section) ---------------------
        name = exposure_label(result.adjunct)
        counts = self._adjunct_counts_shown(result)
        lsm = result.fit.lsmeans("group", by="visit")
        fig, ax = fg.new_figure(height=3.2)
        result.fit.plot(ax=ax)
        handles, names = ax.get_legend_handles_labels()
        shown_names = {"none": "no adjunct", "on it": name}
        ax.legend(handles, [shown_names.get(n.split("=")[-1], n) for n in names], frameon=False, fontsize=8)
        ax.set_xlabel("week of induction")
        ax.set_ylabel(f"change in {self.instrument.name} (LS mean, {level:.0%} CI)")
        lv = f"{level:.0%}"
        table = pd.DataFrame({
            "week": lsm["visit"].astype(str),
            "group": [{"none": "no adjunct", "on it": name}[str(g)] for g in lsm["group"]],
            f"LS mean change ({lv} CI)": [fmt.interval(e, lo, hi, "difference") for e, lo, hi in
                                          zip(lsm["estimate"], lsm["ci_lower"], lsm["ci_upper"])],
            "df": [f"{d:.0f}" for d in lsm["df"]]})
        text = prose.mmrm(result, name, level, counts=counts, instrument=self.instrument.name)
        return self._section("mmrm", text, tables={"mmrm_lsmeans": table}, figures={"mmrm_lsmeans_plot": fig},
                             captions={"mmrm_lsmeans": "Least-squares mean change from baseline by week",
                                       "mmrm_lsmeans_plot": f"Change in {self.instrument.name} by week of induction: "
                                       f"{name} against no adjunct (LS means)"},
                             values={"difference": result.difference}, result=result)

    def _adjunct_counts_shown(self, result) -> tuple[str, str]:
        """The MMRM's patients per group as shown: a count that differs by 1 to k - 1 from the
        adjunct section's count of the same group would give the difference back."""
        try:
            table = self.adjunct_comparison.table
        except analyses.FitGuard.FIT_ERRORS:
            table = pd.DataFrame(columns=["adjunct", "n_exposed", "n_reference"])
        row = table[table["adjunct"] == result.adjunct]
        others = {"on it": list(row["n_exposed"]), "none": list(table["n_reference"])}
        # the patients on other adjuncts only (analysed minus both groups) must not be a small count either
        rest = self.privacy.analysed - result.n_exposed - result.n_reference
        shown = []
        for key, n in (("on it", result.n_exposed), ("none", result.n_reference)):
            against = [*others[key], self.privacy.analysed]
            if is_small(rest, self.k) or any(is_small(abs(n - o), self.k) for o in against):
                shown.append("suppressed")
            else:
                shown.append(self.n(n))
        return shown[0], shown[1]

    def sensitivity(self) -> Section:
        """Response, remission and relapse under other definitions, and on a second instrument."""
        second = self.second_instrument()
        counts = analyses.sensitivity_counts(self.dataset, self.outcomes, self.instrument.name,
                                             self.params.definitions, second=second,
                                             conf_level=self.params.conf_level,
                                             derived={"relapse confirmed once": self.one_confirmation})
        p = self.privacy
        table = sensitivity_table(counts, self.k, first_hidden={
            "responders": p.category_hidden.get("responder", False), "remitters": not p.remission_shown,
            "followed": not p.followed_shown})
        return self._section("sensitivity", prose.sensitivity(second, self.k), tables={"sensitivity": table},
                             captions={"sensitivity": "Main figures under other definitions"}, result=counts)

    def second_instrument(self) -> str | None:
        """The instrument for the sensitivity analysis (parameter, or the most recorded other one)."""
        return analyses.second_instrument(self.dataset, self.params.second_instrument, self.instrument.name)

    def limitations(self, *, responder_models: ResponderModels | None = None,
                    relapse_models: RelapseModels | None = None) -> Section:
        """Limitations noted from the numbers: small groups, missing endpoints, censoring, and the
        assumption tests of the models passed in (the ``result`` of :meth:`responder_models` and
        of :meth:`relapse_models`; without them those tests are not noted)."""
        relapse = self.outcomes.relapse
        notes = prose.limitations(
            n_courses=len(self.outcomes.courses), n_endpoint=len(self.with_endpoint), n_relapse=len(relapse),
            n_relapse_censored=int((relapse["event"] == 0).sum()),
            relapse_event_rate=relapse["event"].mean() if len(relapse) else np.nan,
            n_responders=int((self.with_endpoint["category"] == "responder").sum()),
            brant_p=responder_models.brant_p if responder_models is not None else None,
            ph_p=relapse_models.ph_p if relapse_models is not None else None,
            privacy=self.privacy,
        )
        missing = len(self.outcomes.courses) - len(self.with_endpoint)
        if missing and not is_small(self.privacy.analysed, self.k):
            # beside the notes on how many had an endpoint, before those on the models' assumptions
            at = 1 + sum(n.startswith(("Only ", "More than 10%")) for n in notes)
            notes.insert(at, "Response rates are among the patients with an end-of-induction score. "
                         + self._imputed_line())
        return Section(SECTION_TITLES["limitations"], "\n".join(f"- {n}" for n in notes), values={"notes": notes},
                       result=notes)

    def save_summary(self) -> dict:
        """Write ``key_figures.json`` (for the batch index) and ``written.json`` (files written)
        to the output folder, and return the key figures."""
        import json

        figures = self.key_figures()
        if self.output_dir:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "key_figures.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
            rel = sorted(str(p.relative_to(self.output_dir)) for p in self.written)
            (self.output_dir / "written.json").write_text(json.dumps(rel, indent=2) + "\n")
        return figures

    def key_figures(self) -> dict:
        """Headline numbers for the batch index, as the report shows them: ``patients`` is the
        analysis population (patients with an endpoint), the total every table of the report
        shows; the patients in the dataset are never shown beside it."""
        p = self.privacy
        med = self.relapse_km.median.iloc[0]["median"] if len(self.outcomes.relapse) >= self.k else np.nan
        return {
            "patients": p.count(p.analysed),
            "response": p.category_percent("responder"),
            "remission": self._remission()[1],
            "median_days_to_relapse": prose.days(med) if len(self.outcomes.relapse) >= self.k else "not shown",
        }


def _reliability_source(instrument: str) -> str:
    from ..effects import PSYCHOMETRICS

    known = PSYCHOMETRICS.get(instrument)
    return known.reliability_source if known is not None and known.reliability_source else ""


def _design(measure: str) -> str:
    return "within patient" if measure.endswith("_within") else "adjusted" if measure.endswith("_adjusted") else "crude"


def _measure_label(measure: str, scale: str) -> str:
    outcome = measure.split("_")[0]
    names = {"response": "Response", "remission": "Remission", "category": "Response category", "relapse": "Relapse "
             "after induction", "durability": "End of an infusion's benefit"}
    scales = {"OR": "odds ratio", "RD": "risk difference", "HR": "hazard ratio"}
    return f"{names.get(outcome, outcome)}, {scales.get(scale, scale)}"


class ContentsSection(Section):
    """The table of contents: a list of links (built here, no data values in it)."""

    def __init__(self, title: str, html_list: str):
        super().__init__(title, "")
        self._list = html_list

    def to_html(self) -> str:
        return f'<nav id="contents"><h2>{self.title}</h2>{self._list}</nav>'

    def to_text(self) -> str:
        return "Contents: " + "; ".join(SECTION_TITLES.values())
