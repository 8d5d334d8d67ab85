"""The cohort report: one object that loads a cohort and builds each report section.

``notebooks/cohort_report.ipynb`` is parameters, one call per section and prose; the work
is here, split by concern:

* :mod:`~analysis.report.selection` picks the cohort's patients;
* :mod:`~analysis.report.analyses` computes each section's numbers and fits its models
  (unsuppressed, no text);
* :mod:`~analysis.report.privacy` decides what of them may be shown (small-cell
  suppression);
* :mod:`~analysis.report.prose` writes the sentences from the numbers;
* :mod:`~analysis.report.figures` draws aggregates only.

Each section method below strings these together and returns a
:class:`~analysis.report.sections.Section` whose ``result`` is the section's result
object; sections that build on another's results take them as arguments
(:meth:`CohortReport.limitations`).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import load_dataset
from ..outcomes import Outcomes, derive_outcomes
from ..survival import kaplan_meier
from .._table_one import table_one
from . import analyses, prose
from . import figures as fg
from .analyses import RelapseModels, ResponderModels
from .parameters import ReportParameters
from .privacy import (counts_as_text, format_count, format_percent, hidden_text, masked_counts, sensitivity_table,
                      suppress_attrition, suppress_categories, suppress_counts_in_text, suppress_table_one)
from .sections import Section
from .selection import CohortError, select_cohort

__all__ = ["CohortReport", "select_cohort", "CohortError"]


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
    >>> print(report.response().text)                   # doctest: +NORMALIZE_WHITESPACE
    Of 494 patients with an end-of-induction PHQ-9, 284 responded (57.5%; improvement of at least 50%),
    98 responded partly (19.8%; 25% to under 50%), and 153 were in remission (31.0%; PHQ-9 at or below 4).

    Sections that build on another's results take them as arguments:

    >>> responders = report.responder_models()
    >>> round(responders.result.brant_p, 3)              # the Brant test of the proportional-odds model
    0.916
    >>> print(report.limitations(responder_models=responders.result).text)
    - Most relapse intervals were censored (56.7%), often by the next session; with two confirmations relapses
      just before a session cannot be confirmed (docs/outcomes.md).
    """

    def __init__(self, params: ReportParameters, output_dir: str | Path | None = None):
        self.params = params
        self.k = params.min_cell_count
        output_dir = output_dir if output_dir is not None else params.output_dir
        self.output_dir = Path(output_dir) if output_dir else None
        self.full = load_dataset(params.data_path())
        self.dataset = select_cohort(self.full, params)
        self.instrument = self.full.instrument_registry.get(params.instrument)
        self.outcomes: Outcomes = derive_outcomes(self.dataset, self.instrument.name, **params.definitions)
        #: files the sections wrote (listed in ``written.json`` by :meth:`save_summary`)
        self.written: list[Path] = []

    # --- helpers --------------------------------------------------------------------------

    def _finish(self, section: Section) -> Section:
        self.written += section.save(self.output_dir)
        return section

    def n(self, count) -> str:
        """A count as the report shows it (``<k`` when small)."""
        return format_count(count, self.k)

    def pct(self, count, of) -> str:
        """A percentage as the report shows it (``suppressed`` when either count is small)."""
        return format_percent(count, of, self.k)

    @cached_property
    def with_endpoint(self) -> pd.DataFrame:
        """Courses of the patients with an endpoint: the analysis population."""
        courses = self.outcomes.courses
        return courses[courses["category"].notna()]

    @cached_property
    def relapse_km(self):
        """Kaplan-Meier curve of relapse after induction among responders."""
        return kaplan_meier(self.outcomes.relapse, "time", "event", conf_level=self.params.conf_level)

    # --- sections ---------------------------------------------------------------------------

    def header(self) -> Section:
        """Title and what the cohort is: data, filters, instrument and definitions."""
        return Section(self.params.title, prose.header(self.params, self.full.source, self.instrument.name))

    def data_summary(self) -> Section:
        """Patients per site, sessions per route, assessments per instrument, among the patients
        with an endpoint (the report's analysis population: see ``attrition`` for the others)."""
        summary = analyses.data_summary(self.dataset, self.with_endpoint)
        tables = {
            "patients_by_site": masked_counts(summary.patients_by_site, ["patients"], self.k, row_totals=False,
                                              column_totals=True),
            "sessions_by_route": masked_counts(summary.sessions_by_route, ["patients"], self.k, row_totals=False,
                                               column_totals=False),
            "assessments_by_instrument": masked_counts(summary.assessments_by_instrument, ["patients"], self.k,
                                                       row_totals=False, column_totals=False),
        }
        text = prose.data_summary(summary, self.instrument.name, self.k)
        return self._finish(Section("Data summary", text, tables=tables, values={"n_analysed": summary.n_patients},
                                    result=summary))

    def attrition(self) -> Section:
        """The attrition flow: who was analysed and who left at which step, with a diagram."""
        attrition = self.outcomes.attrition
        patients = attrition[attrition["unit"] == "patients"].reset_index(drop=True)
        shown = suppress_attrition(patients, self.k)
        fig, ax = fg.new_figure(6.5, 1.0 + 0.9 * int((shown["n_excluded"].astype(str) != "0").sum() + 1))
        fg.attrition_flow(shown, ax=ax)
        intervals = attrition[attrition["unit"] == "intervals"].iloc[0]
        text = prose.attrition(intervals["n_in"], intervals["n_excluded"], self.instrument.name, self.k)
        return self._finish(Section("Attrition", text, tables={"attrition": shown}, figures={"attrition_flow": fig},
                                    result=attrition))

    def table_one(self, columns: list[str] | None = None) -> Section:
        """Baseline characteristics by response category (patients with an endpoint)."""
        data = self.with_endpoint.copy()
        candidates = ["age", "sex", "weight_kg", "diagnosis", "prior_treatment_failures", "comorbid_ptsd",
                      "baseline_score", "completed_induction"]
        columns = columns or [c for c in candidates if c in data.columns and data[c].notna().any()]
        data["category"] = data["category"].astype(str)
        t1 = table_one(data, "category", columns, nonnormal=["prior_treatment_failures"])
        table = suppress_table_one(t1, self.k)
        return self._finish(Section("Table 1", prose.TABLE_ONE, tables={"table_one": table}, values={"table_one": t1},
                                    result=t1))

    def trajectories(self) -> Section:
        """Mean score by week since the first session, overall and by response category."""
        level = self.params.conf_level
        scores = analyses.score_weeks(self.dataset, self.outcomes, self.instrument.name)
        fig, ax = fg.new_figure()
        overall = fg.trajectory_summary(scores, conf_level=level, k=self.k)
        for category, group in scores.groupby("category"):
            if category == "nan":
                continue
            summary = fg.trajectory_summary(group, conf_level=level, k=self.k)
            fg.plot_trajectory(summary, label=category, ax=ax, ylabel=f"{self.instrument.name} (mean, {level:.0%} CI)")
        ax.legend(frameon=False, fontsize=8)
        ax.set_xlabel("weeks since the first session")
        first, last = overall.iloc[0], overall[overall["week"] >= 0].iloc[min(2, len(overall) - 1)]
        text = prose.trajectories(first, last, self.instrument.name, self.k)
        table = overall.round(2)
        table["n"] = counts_as_text(table["n"], self.k)
        return self._finish(Section("Score trajectories", text, tables={"trajectory": table},
                                    figures={"trajectories": fig}, result=overall))

    def waterfall(self) -> Section:
        """Distribution of end-of-induction improvement, drawn as a waterfall of percentiles."""
        d = self.outcomes.definitions
        improvement = self.with_endpoint["improvement_pct"]
        fig, ax = fg.new_figure()
        fg.waterfall(improvement, response_pct=d.response_pct, partial_pct=d.partial_response_pct, k=self.k, ax=ax)
        # quartiles of fewer than k patients would come close to showing single patients
        q = improvement.quantile([0.25, 0.5, 0.75]) if len(improvement) >= self.k else None
        text = prose.waterfall(len(improvement), q, self.k)
        return self._finish(Section("Waterfall of improvement", text, figures={"waterfall": fig},
                                    values={"median_improvement": None if q is None else float(q[0.5])}, result=q))

    def response(self) -> Section:
        """Response categories and remission at the end of induction."""
        summary = self.outcomes.response_summary()
        of = int(summary["of"].iloc[0]) if len(summary) else 0
        cats = summary[summary["outcome"] != "remission"].copy()
        rem = summary[summary["outcome"] == "remission"].iloc[0]
        responders = int(cats.loc[cats["outcome"] == "responder", "n"].iloc[0])
        partial = int(cats.loc[cats["outcome"] == "partial", "n"].iloc[0])
        # shown: categories hidden together, so that none is recovered from the others and the total
        hide = suppress_categories(cats, self.k)
        cats["n_shown"] = [hidden_text(v, self.k) if h else f"{int(v)}" for v, h in zip(cats["n"], hide)]
        cats["percent_shown"] = ["suppressed" if h else f"{p:.1f}%" for p, h in zip(cats["percent"], hide)]
        table = pd.concat([
            cats[["outcome", "n_shown", "percent_shown"]].rename(columns={"n_shown": "n", "percent_shown": "percent"}),
            pd.DataFrame({"outcome": ["remission"], "n": [self.n(rem["n"])], "percent": [self.pct(rem["n"], of)]}),
        ], ignore_index=True)
        fig, ax = fg.new_figure(width=4.5)
        fg.category_bars(cats.assign(n=np.where(hide, 1, cats["n"])), k=self.k, ax=ax)
        text = prose.response(of=of, responders=responders, partial=partial, remitters=rem["n"],
                              hidden={"responder": hide["responder"], "partial": hide["partial"]},
                              definitions=self.outcomes.definitions, instrument=self.instrument.name, k=self.k)
        values = {"n_endpoint": of, "response_rate": responders / of if of else np.nan,
                  "partial_rate": partial / of if of else np.nan, "remission_rate": rem["n"] / of if of else np.nan}
        return self._finish(Section("Response and remission", text, tables={"response": table},
                                    figures={"response_categories": fig}, values=values, result=summary))

    def responder_candidates(self) -> list[str]:
        """Baseline covariates for the responder models: those recorded with some variation."""
        return analyses.responder_covariates(self.with_endpoint)

    def responder_models(self) -> Section:
        """Logistic model of response and proportional-odds model of the category, with the Brant test.

        The section's ``result`` is a :class:`~analysis.report.analyses.ResponderModels`
        (pass it to :meth:`limitations`)."""
        models = analyses.fit_responder_models(self.with_endpoint, conf_level=self.params.conf_level)
        text = prose.responder_models(models, self.params.conf_level, self.k)
        if not models.fitted:
            return self._finish(Section("Responder models", text, result=models))
        return self._finish(Section("Responder models", text, tables={"responder_models": models.table},
                                    values={"brant_p": models.brant_p, "logistic": models.logistic,
                                            "ordinal": models.ordinal}, result=models))

    def relapse(self) -> Section:
        """Relapse after induction among responders: Kaplan-Meier curve with its median."""
        km = self.relapse_km
        n = len(self.outcomes.relapse)
        events = int(self.outcomes.relapse["event"].sum())
        fig, ax = fg.new_figure(height=3.6)
        if n >= self.k:  # the curve stops where fewer than k remain at risk; with fewer in all, no curve
            km.plot(ax=ax, min_at_risk=self.k)
            ax.set_xlabel("days since the end of induction")
            ax.set_ylabel("still responding")
        med = km.median.iloc[0]
        text = prose.relapse(n=n, events=events, median=med, definitions=self.outcomes.definitions,
                             instrument=self.instrument.name, conf_level=self.params.conf_level, k=self.k)
        at_table = km.at([14, 28, 56])[["time", "survival", "ci_lower", "ci_upper"]].round(3)
        return self._finish(Section("Relapse after induction", text, tables={"relapse_km": at_table},
                                    figures={"relapse_km": fig},
                                    values={"median_days": float(med["median"]), "n": n, "events": events}, result=km))

    def relapse_models(self) -> Section:
        """Relapse after induction: Cox model (with its proportional-hazards test) and the
        interval-censored Weibull AFT model's predicted median durability.

        The section's ``result`` is a :class:`~analysis.report.analyses.RelapseModels`
        (pass it to :meth:`limitations`)."""
        models = analyses.fit_relapse_models(self.outcomes.relapse, conf_level=self.params.conf_level,
                                             min_patients=self.k)
        text = prose.relapse_models(models, self.params.conf_level, self.k)
        if not models.fitted:
            return self._finish(Section("Relapse models", text, result=models))
        tables, values = {}, {}
        if models.cox is not None:
            values["ph_p"] = models.ph_p
            tables["relapse_cox"] = models.cox_table
        values["aft_median"] = float(models.aft_median)
        tables["relapse_aft_median"] = pd.DataFrame({
            "model": ["Weibull AFT, interval-censored"], "median_days": [round(models.aft_median, 1)],
            "ci_lower": [round(models.aft_ci_lower, 1)], "ci_upper": [round(models.aft_ci_upper, 1)],
            "shape": [round(models.aft_shape, 2)]})
        return self._finish(Section("Relapse models", text, tables=tables, values=values, result=models))

    def durability(self) -> Section:
        """How long each maintenance infusion held: Kaplan-Meier by interval number, PWP gap-time Cox
        model clustered by patient, and the within-patient comparison for adjuncts started mid-course."""
        models = analyses.fit_durability_models(self.outcomes.durability, conf_level=self.params.conf_level,
                                                min_patients=self.k)
        if not models.fitted:
            return self._finish(Section("Per-infusion durability", prose.durability(models, [], 0.0, self.k),
                                        result=models))
        km = models.km
        fig, ax = fg.new_figure(height=3.8)
        km.plot(ax=ax, min_at_risk=self.k, ci=False)
        ax.set_xlabel("days since the infusion")
        ax.set_ylabel("benefit still holding")
        medians = km.median.copy()
        medians["n"] = counts_as_text(medians["n"], self.k)
        medians["events"] = counts_as_text(medians["events"], self.k)
        tables = {"durability_km_medians": medians.round(1)}
        values = {}
        if models.pwp is not None:
            tables["durability_pwp"] = models.pwp_table
        if models.within is not None:
            values["within_hr"] = float(models.within_effect.ratio)
            tables["durability_within_patient"] = models.within_table
        text = prose.durability(models, list(zip(km.median["group"], km.median["median"])), self.params.conf_level,
                                self.k)
        return self._finish(Section("Per-infusion durability", text, tables=tables, figures={"durability_km": fig},
                                    values=values, result=models))

    def adjuncts(self) -> Section:
        """Adjunct comparisons: crude, adjusted and within-patient effects with balance (docs/adjuncts.md)."""
        from matplotlib.figure import Figure

        from ..adjuncts import compare_adjuncts
        from ..adjuncts.comparison import MEASURES

        level = self.params.conf_level
        result = compare_adjuncts(self.outcomes, dataset=self.dataset, min_exposed=self.k, conf_level=level)
        if result.table.empty:
            return self._finish(Section("Adjunct comparisons", prose.adjuncts(n_imbalanced=None, notes=[],
                                                                              conf_level=level, k=self.k),
                                        result=result))
        # --- the comparison's results read here (and nowhere else in this section) ---------------
        effects = result.formatted().reset_index()
        counts = result.table[["adjunct", "n_exposed", "n_reference", "within_n_patients"]].copy()
        balance = result.balance.copy()
        estimates = result.estimates.copy()
        present = set(result.estimates.dropna(subset=["estimate", "ci_lower", "ci_upper"])["measure"])
        # --- shown: every count of 1 to k - 1 hidden, in the tables and in the trust notes -------
        for col in ("n_exposed", "n_reference", "within_n_patients"):
            counts[col] = counts_as_text(counts[col], self.k)
        for col in ("n_exposed", "n_reference"):
            balance[col] = counts_as_text(balance[col], self.k)
        balance = balance.round(3)
        n_imbalanced = int((balance["max_smd_weighted"] > 0.1).sum())   # of the balance as shown (3 decimals)
        for col in ("n_exposed", "n_reference", "events_exposed", "events_reference"):
            if col in estimates:
                estimates[col] = counts_as_text(estimates[col], self.k)
        estimates["trust"] = [suppress_counts_in_text(t, self.k) for t in estimates["trust"]]
        # --- the forest plot: one panel per measure present, two columns ------------------------
        n_panels = len({MEASURES[m][0] for m in MEASURES if m in present})
        fig = Figure(figsize=(7.2, 1.2 + 0.45 * len(result.table) * max(1, (n_panels + 1) // 2)), layout="constrained")
        axes = fig.subplots(max(1, (n_panels + 1) // 2), 2, squeeze=False).ravel()
        used = result.plot(ax=axes[:n_panels])
        for ax in axes[len(np.atleast_1d(used)):]:
            ax.set_axis_off()
        text = prose.adjuncts(n_imbalanced=n_imbalanced, notes=result.notes, conf_level=level, k=self.k)
        return self._finish(Section("Adjunct comparisons", text,
                                    tables={"adjunct_effects": effects, "adjunct_counts": counts,
                                            "adjunct_balance": balance, "adjunct_estimates": estimates.round(4)},
                                    figures={"adjunct_forest": fig}, values={"comparison": result}, result=result))

    def sensitivity(self) -> Section:
        """Response, remission and relapse under other definitions, and on a second instrument."""
        second = self.second_instrument()
        counts = analyses.sensitivity_counts(self.dataset, self.outcomes, self.instrument.name,
                                             self.params.definitions, second=second,
                                             conf_level=self.params.conf_level)
        table = sensitivity_table(counts, self.k)
        return self._finish(Section("Sensitivity analyses", prose.sensitivity(second, self.k),
                                    tables={"sensitivity": table}, result=counts))

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
            k=self.k,
        )
        return self._finish(Section("Limitations", "\n".join(f"- {n}" for n in notes), values={"notes": notes},
                                    result=notes))

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
        """Headline numbers for the batch index, already suppressed as text."""
        of = len(self.with_endpoint)
        responders = int((self.with_endpoint["category"] == "responder").sum())
        remitters = int(self.with_endpoint["remission"].fillna(False).sum())
        med = self.relapse_km.median.iloc[0]["median"]
        return {
            "patients": self.n(len(self.outcomes.courses)),
            "response": self.pct(responders, of),
            "remission": self.pct(remitters, of),
            "median_days_to_relapse": prose.days(med),
        }
