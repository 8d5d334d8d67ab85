"""The cohort report: one object that loads a cohort and builds each report section.

``notebooks/cohort_report.ipynb`` is parameters, one call per section and prose; the work
is here. Every sentence that states a result is generated from the numbers, and every
count shown passes through small-cell suppression (:mod:`analysis.report.privacy`).
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import Dataset, load_dataset
from ..instruments import get_instrument
from ..outcomes import Outcomes, derive_outcomes
from ..survival import kaplan_meier
from ..table_one import table_one
from . import figures as fg
from .parameters import ReportParameters
from .privacy import format_count, format_percent, hidden_text, merge_small_steps, suppress_table
from .sections import Section

__all__ = ["CohortReport", "select_cohort", "CohortError"]

DEPRESSION_DOMAIN = "depression"


class CohortError(ValueError):
    """The cohort asked for cannot be reported (for example it has no patients)."""


def select_cohort(dataset: Dataset, params: ReportParameters) -> Dataset:
    """Restrict a dataset to the patients the parameters ask for (site, route, period)."""
    patients = dataset.patients
    keep = pd.Series(True, index=patients.index)
    if params.sites:
        if "site" not in patients:
            raise CohortError("sites were given but the patients table has no 'site' column")
        unknown = sorted(set(params.sites) - set(patients["site"].dropna()))
        if unknown:
            raise CohortError(f"site(s) {unknown} are not in the data; sites are {sorted(patients['site'].dropna().unique())}")
        keep &= patients["site"].isin(params.sites).fillna(False)
    if params.routes:
        first = dataset.sessions.sort_values(["patient_id", "day"], kind="stable").drop_duplicates("patient_id")
        route_of = first.set_index("patient_id")["route"]
        keep &= patients["patient_id"].map(route_of).isin(params.routes).fillna(False)
    if params.periods:
        column = params.period_column
        if column not in patients:
            raise CohortError(f"periods were given but the patients table has no {column!r} column")
        keep &= patients[column].astype("string").isin(params.periods).fillna(False)
    ids = patients.loc[keep, "patient_id"]
    if len(ids) == 0:
        raise CohortError("the cohort has no patients after the site, route and period filters")
    return dataset.subset(ids) if not keep.all() else dataset


class CohortReport:
    """Everything the cohort report shows, computed once.

    Parameters
    ----------
    params : ReportParameters
    output_dir : str or Path, optional
        Where sections save their tables (CSV) and figures; nothing is written without it.

    Examples
    --------
    >>> from analysis.report import CohortReport, ReportParameters
    >>> report = CohortReport(ReportParameters())           # doctest: +SKIP
    >>> report.response()                                   # doctest: +SKIP
    """

    def __init__(self, params: ReportParameters, output_dir: str | Path | None = None):
        self.params = params
        self.k = params.min_cell_count
        output_dir = output_dir if output_dir is not None else params.output_dir
        self.output_dir = Path(output_dir) if output_dir else None
        self.full = load_dataset(params.data_path())
        self.dataset = select_cohort(self.full, params)
        self.instrument = get_instrument(params.instrument)
        self.outcomes: Outcomes = derive_outcomes(self.dataset, self.instrument.name, **params.definitions)
        self.written: list[Path] = []
        self._brant_p: float | None = None
        self._ph_p: float | None = None

    # --- helpers --------------------------------------------------------------------------

    def _finish(self, section: Section) -> Section:
        self.written += section.save(self.output_dir)
        return section

    def n(self, count) -> str:
        return format_count(count, self.k)

    def pct(self, count, of) -> str:
        return format_percent(count, of, self.k)

    @cached_property
    def with_endpoint(self) -> pd.DataFrame:
        courses = self.outcomes.courses
        return courses[courses["category"].notna()]

    @cached_property
    def relapse_km(self):
        return kaplan_meier(self.outcomes.relapse, "time", "event", conf_level=self.params.conf_level)

    def _masked(self, counts: pd.DataFrame, value_cols: list[str], **kw) -> pd.DataFrame:
        """Counts as text with small cells (and the cells that would reveal them) shown as <k."""
        hide = suppress_table(counts[value_cols], self.k, **kw)
        shown = counts.copy()
        for col in value_cols:
            shown[col] = [hidden_text(v, self.k) if h else f"{int(v)}" for v, h in zip(counts[col], hide[col])]
        return shown

    # --- sections ---------------------------------------------------------------------------

    def header(self) -> Section:
        """Title and what the cohort is: data, filters, instrument and definitions."""
        p = self.params
        filters = [f"sites {', '.join(p.sites)}" if p.sites else "", f"routes {', '.join(p.routes)}" if p.routes else "",
                   f"{p.period_column} {', '.join(p.periods)}" if p.periods else ""]
        filters = [f for f in filters if f]
        changed = ", ".join(f"{k} = {v}" for k, v in p.definitions.items())
        text = (f"Cohort: {'; '.join(filters) if filters else 'all patients'} of `{self.full.source}`. "
                f"Outcomes on **{self.instrument.name}** with the package's default definitions"
                f"{' except ' + changed if changed else ''} (docs/outcomes.md). Counts from 1 to {self.k - 1} "
                "are suppressed.")
        return Section(p.title, text)

    def data_summary(self) -> Section:
        """Patients per site, sessions per route, assessments per instrument, among the patients
        with an endpoint (the report's analysis population: see ``attrition`` for the others)."""
        courses = self.with_endpoint
        analysed = set(courses["patient_id"])
        site = courses["site"].fillna("(no site)") if "site" in courses else pd.Series("(all)", index=courses.index)
        sites = site.value_counts().sort_index().rename_axis("site").reset_index(name="patients")
        sessions = self.dataset.sessions[self.dataset.sessions["patient_id"].isin(analysed)]
        routes = (sessions.groupby("route").agg(patients=("patient_id", "nunique"), sessions=("day", "size"))
                  .reset_index())
        assessments = self.dataset.assessments[self.dataset.assessments["patient_id"].isin(analysed)]
        instruments = (assessments.groupby("instrument").agg(patients=("patient_id", "nunique"),
                                                             assessments=("score", "size")).reset_index())
        n = len(courses)
        text = (
            f"The report covers **{self.n(n)} patients** with a baseline and an end-of-induction "
            f"{self.instrument.name}, with {len(sessions):,} sessions and {len(assessments):,} "
            f"assessments. Patient counts from 1 to {self.k - 1} are shown as <{self.k}, and so are the counts "
            "that would reveal them by subtraction."
        )
        section = Section(
            "Data summary",
            text,
            tables={
                "patients_by_site": self._masked(sites, ["patients"], row_totals=False, column_totals=True),
                "sessions_by_route": self._masked(routes, ["patients"], row_totals=False, column_totals=False),
                "assessments_by_instrument": self._masked(instruments, ["patients"], row_totals=False, column_totals=False),
            },
            values={"n_analysed": n},
        )
        return self._finish(section)

    def attrition(self) -> Section:
        """The attrition flow: who was analysed and who left at which step, with a diagram."""
        patients = self.outcomes.attrition[self.outcomes.attrition["unit"] == "patients"].reset_index(drop=True)
        cols = ["step", "n_in", "n_excluded", "n_remaining", "reason"]
        # two segments, merged separately: up to the analysis population (patients with an endpoint),
        # whose size every other table shows, and after it (responders followed after induction)
        split = int(patients.index[patients["step"] == "no endpoint"][0]) + 1
        before = merge_small_steps(patients.loc[: split - 1, cols], self.k)
        analysed = int(patients.loc[split - 1, "n_remaining"])
        after = merge_small_steps(pd.concat([pd.DataFrame([{"step": "patients with an endpoint", "n_in": analysed,
                                                             "n_excluded": 0, "n_remaining": analysed, "reason": ""}]),
                                             patients.loc[split:, cols]], ignore_index=True), self.k)
        shown = pd.concat([before, after.iloc[1:]], ignore_index=True)
        fig, ax = fg.new_figure(6.5, 1.0 + 0.9 * int((shown["n_excluded"].astype(str) != "0").sum() + 1))
        fg.attrition_flow(shown, ax=ax)
        intervals = self.outcomes.attrition[self.outcomes.attrition["unit"] == "intervals"].iloc[0]
        text = (
            f"Patients enter at the top and leave at each step for the reason given; steps excluding fewer than "
            f"{self.k} patients are merged with a neighbour. Of {intervals['n_in']:,} post-induction intervals, "
            f"{intervals['n_excluded']:,} had no {self.instrument.name} assessment before the next session and "
            "are not analysed."
        )
        return self._finish(Section("Attrition", text, tables={"attrition": shown}, figures={"attrition_flow": fig}))

    def table_one(self, columns: list[str] | None = None) -> Section:
        """Baseline characteristics by response category (patients with an endpoint)."""
        data = self.with_endpoint.copy()
        candidates = ["age", "sex", "weight_kg", "diagnosis", "prior_treatment_failures", "comorbid_ptsd",
                      "baseline_score", "completed_induction"]
        columns = columns or [c for c in candidates if c in data.columns and data[c].notna().any()]
        data["category"] = data["category"].astype(str)
        t1 = table_one(data, "category", columns, nonnormal=["prior_treatment_failures"])
        table = t1.table.copy()
        group_cols = [c for c in t1.group_sizes.index if c != "overall"]
        for col in ["overall", *group_cols]:
            if 1 <= t1.group_sizes[col] < self.k:
                raise CohortError(f"Table 1: group {col!r} has fewer than {self.k} patients; merge or drop it")
        # per characteristic: its levels sum to each group's n (shown) and across groups to overall (shown)
        row_of = {}
        current = None
        for idx, row in table.iterrows():
            current = row["characteristic"] or current
            row_of[(current, row["level"])] = idx
        for characteristic, block in t1.counts[t1.counts["characteristic"] != "n"].groupby("characteristic", sort=False):
            hide_groups = suppress_table(block[group_cols].fillna(0), self.k, row_totals=True, column_totals=True)
            hide_overall = suppress_table(block[["overall"]].fillna(0), self.k, row_totals=False, column_totals=True)
            hide = pd.concat([hide_overall, hide_groups], axis=1)
            for i, (_, row) in enumerate(block.iterrows()):
                if not row["shown"]:
                    continue
                idx = row_of[(characteristic, row["level"])]
                for col in hide.columns:
                    if hide.iloc[i][col]:
                        table.loc[idx, col] = hidden_text(row[col], self.k)
        text = ("Baseline characteristics of the patients with an end-of-induction assessment, by response "
                "category: mean (SD), median [IQR] or n (%), and the largest pairwise standardised mean difference.")
        return self._finish(Section("Table 1", text, tables={"table_one": table}, values={"table_one": t1}))

    def trajectories(self) -> Section:
        """Mean score by week since the first session, overall and by response category."""
        scores = self.dataset.assessments
        scores = scores[scores["instrument"] == self.instrument.name]
        courses = self.outcomes.courses.set_index("patient_id")
        scores = scores[scores["patient_id"].isin(courses.index)].copy()
        scores["week"] = np.floor((scores["day"] - scores["patient_id"].map(courses["first_session_day"])) / 7)
        scores = scores[(scores["week"] >= -2) & (scores["week"] <= 12)]
        scores["category"] = scores["patient_id"].map(courses["category"].astype(str))
        fig, ax = fg.new_figure()
        overall = fg.trajectory_summary(scores, conf_level=self.params.conf_level, k=self.k)
        for category, group in scores.groupby("category"):
            if category == "nan":
                continue
            summary = fg.trajectory_summary(group, conf_level=self.params.conf_level, k=self.k)
            fg.plot_trajectory(summary, label=category, ax=ax, ylabel=f"{self.instrument.name} (mean, {self.params.conf_level:.0%} CI)")
        ax.legend(frameon=False, fontsize=8)
        ax.set_xlabel("weeks since the first session")
        first, last = overall.iloc[0], overall[overall["week"] >= 0].iloc[min(2, len(overall) - 1)]
        text = (f"Mean {self.instrument.name} by week since the first session (weeks with fewer than {self.k} "
                f"patients are left out). Overall the mean went from {first['mean']:.1f} in week {first['week']:.0f} "
                f"to {last['mean']:.1f} in week {last['week']:.0f}.")
        table = overall.round(2)
        table["n"] = [self.n(v) for v in table["n"]]
        return self._finish(Section("Score trajectories", text, tables={"trajectory": table}, figures={"trajectories": fig}))

    def waterfall(self) -> Section:
        """Distribution of end-of-induction improvement, drawn as a waterfall of percentiles."""
        d = self.outcomes.definitions
        improvement = self.with_endpoint["improvement_pct"]
        fig, ax = fg.new_figure()
        fg.waterfall(improvement, response_pct=d["response_pct"], partial_pct=d["partial_response_pct"], k=self.k, ax=ax)
        q = improvement.quantile([0.25, 0.5, 0.75]) if len(improvement) >= self.k else None
        text = (f"Improvement from baseline at the end of induction; each bar is a percentile of the "
                f"{self.n(len(improvement))} patients with an endpoint. "
                + (f"Median improvement {q[0.5]:.1f}% (IQR {q[0.25]:.1f}% to {q[0.75]:.1f}%)." if q is not None else ""))
        return self._finish(Section("Waterfall of improvement", text, figures={"waterfall": fig},
                                    values={"median_improvement": None if q is None else float(q[0.5])}))

    def response(self) -> Section:
        """Response categories and remission at the end of induction."""
        summary = self.outcomes.response_summary()
        d = self.outcomes.definitions
        of = int(summary["of"].iloc[0]) if len(summary) else 0
        cats = summary[summary["outcome"] != "remission"].copy()
        hide = suppress_table(cats.set_index("outcome")[["n"]].T, self.k, row_totals=True, column_totals=False).T["n"]
        cats["n_shown"] = [hidden_text(v, self.k) if h else f"{int(v)}" for v, h in zip(cats["n"], hide)]
        cats["percent_shown"] = ["suppressed" if h else f"{p:.1f}%" for p, h in zip(cats["percent"], hide)]
        rem = summary[summary["outcome"] == "remission"].iloc[0]
        fig, ax = fg.new_figure(width=4.5)
        fg.category_bars(cats.assign(n=np.where(hide, 1, cats["n"])), k=self.k, ax=ax)
        responders = int(cats.loc[cats["outcome"] == "responder", "n"].iloc[0])
        partial = int(cats.loc[cats["outcome"] == "partial", "n"].iloc[0])
        text = (
            f"Of {self.n(of)} patients with an end-of-induction {self.instrument.name}, "
            f"{hidden_text(responders, self.k) if hide['responder'] else self.n(responders)} responded "
            f"({'suppressed' if hide['responder'] else self.pct(responders, of)}; improvement of at least "
            f"{d['response_pct']:g}%), {hidden_text(partial, self.k) if hide['partial'] else self.n(partial)} responded partly "
            f"({'suppressed' if hide['partial'] else self.pct(partial, of)}; {d['partial_response_pct']:g}% to under "
            f"{d['response_pct']:g}%), and {self.n(rem['n'])} were in remission ({self.pct(rem['n'], of)}; "
            f"{self.instrument.name} at or below {d['remission_max_applied']:g})."
        )
        table = pd.concat([
            cats[["outcome", "n_shown", "percent_shown"]].rename(columns={"n_shown": "n", "percent_shown": "percent"}),
            pd.DataFrame({"outcome": ["remission"], "n": [self.n(rem["n"])], "percent": [self.pct(rem["n"], of)]}),
        ], ignore_index=True)
        values = {"n_endpoint": of, "response_rate": responders / of if of else np.nan,
                  "partial_rate": partial / of if of else np.nan, "remission_rate": rem["n"] / of if of else np.nan}
        return self._finish(Section("Response and remission", text, tables={"response": table},
                                    figures={"response_categories": fig}, values=values))

    def responder_candidates(self) -> list[str]:
        """Baseline covariates for the responder models: those recorded with some variation."""
        data = self.with_endpoint
        wanted = ["prior_treatment_failures", "age", "comorbid_ptsd", "baseline_score", "class_benzodiazepine"]
        return [c for c in wanted if c in data and data[c].notna().mean() > 0.9 and data[c].nunique() > 1]

    def responder_models(self) -> Section:
        """Logistic model of response and proportional-odds model of the category, with the Brant test."""
        from ..response import logistic, ordinal

        covariates = self.responder_candidates()
        data = self.with_endpoint.assign(responder=self.with_endpoint["category"].astype(object) == "responder")
        if not covariates or len(data) < 10 * (len(covariates) + 1):
            return self._finish(Section("Responder models", "Too few patients with an endpoint for the models "
                                        f"({self.n(len(data))}; at least ten per coefficient are needed)."))
        rhs = " + ".join(covariates)
        fit = logistic(f"responder ~ {rhs}", data, dropna=True, conf_level=self.params.conf_level)
        po = ordinal(f"category ~ {rhs}", data, dropna=True, conf_level=self.params.conf_level)
        cols = ["odds_ratio", "odds_ratio_ci_lower", "odds_ratio_ci_upper", "p_value"]
        table = pd.concat(
            {"response (logistic)": fit.summary.loc[fit.summary.index != "Intercept", cols],
             "category (proportional odds)": po.summary.loc[po.summary["kind"] == "coefficient", cols]},
            names=["model", "term"]).reset_index().round({c: 3 for c in cols})
        brant = po.brant()
        omnibus = brant.loc["omnibus"]
        strongest = fit.summary.drop(index="Intercept")["p_value"].idxmin()
        row = fit.summary.loc[strongest]
        level = f"{self.params.conf_level:.0%}"
        text = (
            f"Among {self.n(fit.n_obs)} patients with an endpoint, the covariate most strongly associated with "
            f"response was `{strongest}` (odds ratio {row['odds_ratio']:.2f}, {level} CI "
            f"{row['odds_ratio_ci_lower']:.2f} to {row['odds_ratio_ci_upper']:.2f}, p = {row['p_value']:.3g}). "
            f"The proportional-odds model of the category (non-responder < partial < responder) "
            + ("shows no evidence against the proportional-odds assumption"
               if omnibus["p_value"] >= 0.05 else "**violates** the proportional-odds assumption")
            + f" (Brant test chi-square {omnibus['chi2']:.2f}, {int(omnibus['df'])} df, p = {omnibus['p_value']:.3g}). "
            "These are associations in observational data, not effects of the covariates."
        )
        if fit.n_dropped or po.n_dropped:
            text += f" Patients with a missing covariate were left out ({self.n(max(fit.n_dropped, po.n_dropped))})."
        self._brant_p = float(omnibus["p_value"])
        return self._finish(Section("Responder models", text, tables={"responder_models": table},
                                    values={"brant_p": float(omnibus["p_value"]), "logistic": fit, "ordinal": po}))

    def relapse(self) -> Section:
        """Relapse after induction among responders: Kaplan-Meier curve with its median."""
        km = self.relapse_km
        n = len(self.outcomes.relapse)
        events = int(self.outcomes.relapse["event"].sum())
        fig, ax = fg.new_figure(height=3.6)
        if n >= self.k:
            km.plot(ax=ax, min_at_risk=self.k)
            ax.set_xlabel("days since the end of induction")
            ax.set_ylabel("still responding")
        med = km.median.iloc[0]
        median_text = ("was not reached" if np.isnan(med["median"]) else
                       f"was {med['median']:.0f} days ({self.params.conf_level:.0%} CI "
                       f"{_fmt_days(med['ci_lower'])} to {_fmt_days(med['ci_upper'])})")
        d = self.outcomes.definitions
        rule = (f"{self.instrument.name} at or above {d['relapse_threshold_score']:g}" if d["relapse_threshold_score"] is not None
                else f"improvement below {d['response_pct']:g}%")
        text = (f"{self.n(n)} responders were followed after induction; {self.n(events)} relapsed ({rule} on "
                f"{d['relapse_confirmations']} consecutive assessment(s), follow-up ending at the next session). "
                f"The median time to relapse {median_text}. Curves stop where fewer than {self.k} patients remain "
                "at risk.")
        at = km.at([14, 28, 56])
        at_table = at[["time", "survival", "ci_lower", "ci_upper"]].round(3)
        return self._finish(Section("Relapse after induction", text, tables={"relapse_km": at_table},
                                    figures={"relapse_km": fig},
                                    values={"median_days": float(med["median"]), "n": n, "events": events}))

    def _model_covariates(self, table: pd.DataFrame, wanted: list[str]) -> list[str]:
        """Covariates present, recorded for most rows, and varying, with enough events per term."""
        ok = [c for c in wanted if c in table and table[c].notna().mean() > 0.9 and table[c].nunique() > 1]
        events = int(table["event"].sum()) if "event" in table else 0
        return ok[: max(0, events // 10)]

    def relapse_models(self) -> Section:
        """Relapse after induction: Cox model (with its proportional-hazards test) and the
        interval-censored Weibull AFT model's predicted median durability."""
        from ..survival import aft, cox

        relapse = self.outcomes.relapse
        covariates = self._model_covariates(relapse, ["prior_treatment_failures", "comorbid_ptsd",
                                                      "class_benzodiazepine", "age"])
        level = f"{self.params.conf_level:.0%}"
        if len(relapse) < self.k or int(relapse["event"].sum()) < 10:
            return self._finish(Section("Relapse models", f"Too few relapses for models ({self.n(int(relapse['event'].sum()))})."))
        parts, tables, values = [], {}, {}
        if covariates:
            fit = cox(" + ".join(covariates), relapse, duration="time", event="event", ties="efron", dropna=True,
                      conf_level=self.params.conf_level)
            hr = fit.summary[["hr", "hr_lower", "hr_upper", "p_value"]].round(3).reset_index(names="term")
            zph = fit.ph_test()
            global_p = float(zph.table.loc["GLOBAL", "p_value"]) if hasattr(zph, "table") else float(zph.loc["GLOBAL", "p_value"])
            values["ph_p"] = global_p
            self._ph_p = global_p
            tables["relapse_cox"] = hr
            top = fit.summary["p_value"].idxmin()
            row = fit.summary.loc[top]
            parts.append(
                f"In a Cox model of relapse after induction ({', '.join(covariates)}; Efron ties), `{top}` had a "
                f"hazard ratio of {row['hr']:.2f} ({level} CI {row['hr_lower']:.2f} to {row['hr_upper']:.2f}). "
                + ("The proportional-hazards assumption is doubtful" if global_p < 0.05 else
                   "There is no evidence against proportional hazards")
                + f" (global test p = {global_p:.3g}, cox.zph with the KM transform)."
            )
        weib = aft("1", relapse, lower="lower", upper="upper", dist="weibull", conf_level=self.params.conf_level)
        median = weib.predict_median(pd.DataFrame(index=[0])).iloc[0]
        values["aft_median"] = float(median["median"])
        tables["relapse_aft_median"] = pd.DataFrame({
            "model": ["Weibull AFT, interval-censored"], "median_days": [round(median["median"], 1)],
            "ci_lower": [round(median["ci_lower"], 1)], "ci_upper": [round(median["ci_upper"], 1)],
            "shape": [round(1 / weib.scale, 2)]})
        parts.append(
            f"A Weibull model that uses the interval between the last assessment still in response and the relapse "
            f"predicts a median durability of {median['median']:.1f} days ({level} CI {median['ci_lower']:.1f} to "
            f"{median['ci_upper']:.1f}; shape {1 / weib.scale:.2f})."
        )
        return self._finish(Section("Relapse models", " ".join(parts), tables=tables, values=values))

    def durability(self) -> Section:
        """How long each maintenance infusion held: Kaplan-Meier by interval number, PWP gap-time Cox
        model clustered by patient, and the within-patient comparison for adjuncts started mid-course."""
        from ..survival import pwp_gap, within_patient

        d = self.outcomes.durability
        level = f"{self.params.conf_level:.0%}"
        n_intervals, n_patients = len(d), d["patient_id"].nunique() if len(d) else 0
        if n_intervals < self.k or int(d["event"].sum()) < 10:
            return self._finish(Section("Per-infusion durability", "Too few intervals after induction for models."))
        shown = d.assign(infusion=np.minimum(d["interval"], 4).map({1: "1", 2: "2", 3: "3", 4: "4+"}))
        km = kaplan_meier(shown, "time", "event", group="infusion", conf_level=self.params.conf_level)
        fig, ax = fg.new_figure(height=3.8)
        km.plot(ax=ax, min_at_risk=self.k, ci=False)
        ax.set_xlabel("days since the infusion")
        ax.set_ylabel("benefit still holding")
        medians = km.median.copy()
        medians["n"] = [self.n(v) for v in medians["n"]]
        medians["events"] = [self.n(v) for v in medians["events"]]
        parts = [f"{n_intervals:,} intervals of {self.n(n_patients)} patients (the end-of-induction infusion is "
                 f"interval 1). Median days each infusion held, by its number: "
                 + ", ".join(f"{g}: {_fmt_days(m)}" for g, m in zip(km.median["group"], km.median["median"])) + "."]
        tables = {"durability_km_medians": medians.round(1)}
        covariates = self._model_covariates(d, ["drug_rapamycin", "class_benzodiazepine", "prior_treatment_failures"])
        values = {}
        if covariates:
            fit = pwp_gap(" + ".join(covariates), d, id="patient_id", interval="interval", dropna=True,
                          conf_level=self.params.conf_level)
            tables["durability_pwp"] = fit.summary[["hr", "hr_lower", "hr_upper", "p_value"]].round(3).reset_index(names="term")
            parts.append(f"A PWP gap-time model (strata by interval number, robust SE clustered by patient) gives "
                         + "; ".join(f"`{t}` HR {r.hr:.2f} ({level} CI {r.hr_lower:.2f} to {r.hr_upper:.2f})"
                                     for t, r in fit.summary.iterrows()) + ".")
        if "drug_rapamycin" in d:
            switchers = d.groupby("patient_id")["drug_rapamycin"].nunique()
            n_switch = int((switchers > 1).sum())
            if n_switch >= self.k:
                within = within_patient("drug_rapamycin", d, id="patient_id", conf_level=self.params.conf_level)
                row = within.summary.iloc[0]
                values["within_hr"] = float(row["hr"])
                tables["durability_within_patient"] = within.summary[["hr", "hr_lower", "hr_upper", "p_value"]].round(3).reset_index(names="term")
                parts.append(
                    f"Among the {self.n(n_switch)} patients who had infusions with and without rapamycin, comparing each "
                    f"patient with themself (Cox stratified by patient), rapamycin had a hazard ratio of {row['hr']:.2f} "
                    f"({level} CI {row['hr_lower']:.2f} to {row['hr_upper']:.2f}); this comparison removes confounding "
                    "by anything constant within a patient."
                )
        return self._finish(Section("Per-infusion durability", " ".join(parts), tables=tables,
                                    figures={"durability_km": fig}, values=values))

    def adjuncts(self) -> Section:
        """Adjunct comparisons: crude, adjusted and within-patient effects with balance (docs/adjuncts.md)."""
        from matplotlib.figure import Figure

        from ..adjuncts import compare_adjuncts
        from ..adjuncts.comparison import MEASURES

        result = compare_adjuncts(self.outcomes, dataset=self.dataset, min_exposed=self.k,
                                  conf_level=self.params.conf_level)
        if result.table.empty:
            return self._finish(Section("Adjunct comparisons", f"No adjunct was taken by at least {self.k} patients "
                                        "with an endpoint (and as many without): nothing to compare."))
        effects = result.formatted().reset_index()
        counts = result.table[["adjunct", "n_exposed", "n_reference", "within_n_patients"]].copy()
        for col in ("n_exposed", "n_reference", "within_n_patients"):
            counts[col] = [self.n(v) for v in counts[col]]
        balance = result.balance.copy()
        for col in ("n_exposed", "n_reference"):
            balance[col] = [self.n(v) for v in balance[col]]
        balance = balance.round(3)
        present = set(result.estimates.dropna(subset=["estimate", "ci_lower", "ci_upper"])["measure"])
        n_panels = len({MEASURES[m][0] for m in MEASURES if m in present})
        fig = Figure(figsize=(7.2, 1.2 + 0.45 * len(result.table) * max(1, (n_panels + 1) // 2)), layout="constrained")
        axes = fig.subplots(max(1, (n_panels + 1) // 2), 2, squeeze=False).ravel()
        used = result.plot(ax=axes[:n_panels])
        for ax in axes[len(np.atleast_1d(used)):]:
            ax.set_axis_off()
        imbalanced = balance[balance["max_smd_weighted"] > 0.1]
        level = f"{self.params.conf_level:.0%}"
        text = (
            f"Each adjunct taken by at least {self.k} patients is compared with patients on no listed adjunct "
            "(patients on it together with another adjunct are left out). Crude estimates compare groups as they "
            "are; adjusted estimates condition on the measured baseline covariates; within-patient hazard ratios "
            "compare each patient's infusions with and without the drug and so remove confounding by anything "
            f"constant within a patient. Intervals are {level}; p-values are also given adjusted across adjuncts "
            "(Holm, Benjamini-Hochberg) in tables/adjunct_estimates.csv. "
            + (f"Weighting left {len(imbalanced)} comparison(s) with a standardised mean difference above 0.1: "
               "their adjusted estimates may still be confounded. " if len(imbalanced) else
               "After weighting every comparison was balanced (all SMD at most 0.1). ")
            + " ".join(result.notes[:1])
        )
        estimates = result.estimates.copy()
        for col in ("n_exposed", "n_reference", "events_exposed", "events_reference"):
            if col in estimates:
                estimates[col] = [self.n(v) for v in estimates[col]]
        # the trust notes quote counts ("few events in exposed (7)"): suppress the small ones there too
        small = re.compile(r"(?<![\d.])(\d+)(?![\d.%])")
        estimates["trust"] = [small.sub(lambda m: self.n(int(m.group(1))), str(t)) for t in estimates["trust"]]
        return self._finish(Section("Adjunct comparisons", text,
                                    tables={"adjunct_effects": effects, "adjunct_counts": counts,
                                            "adjunct_balance": balance, "adjunct_estimates": estimates.round(4)},
                                    figures={"adjunct_forest": fig}, values={"comparison": result}))

    def sensitivity(self) -> Section:
        """Response, remission and relapse under other definitions, and on a second instrument."""
        variants = [("as defined", {})]
        d = self.params.definitions
        variants.append(("relapse confirmed once", {**d, "relapse_confirmations": 1}))
        variants.append(("partial responders followed", {**d, "include_partial_responders": True}))
        variants.append(("response at 40%", {**d, "response_pct": 40.0}))
        rows = []
        for label, definitions in variants:
            out = self.outcomes if not definitions else derive_outcomes(self.dataset, self.instrument.name, **definitions)
            rows.append(_summary_row(label, self.instrument.name, out, self.params.conf_level, self.k))
        second = self.second_instrument()
        if second is not None:
            out = derive_outcomes(self.dataset, second, **self.params.definitions)
            rows.append(_summary_row(f"on {second}", second, out, self.params.conf_level, self.k))
        table = _guard_differences(pd.DataFrame(rows), self.k)
        text = ("The main figures under other definitions; a count that differs from the main analysis by fewer "
                f"than {self.k} patients is suppressed with its percentage. "
                + (f"The second instrument is {second}." if second else "No second depression instrument was recorded."))
        return self._finish(Section("Sensitivity analyses", text, tables={"sensitivity": table}))

    def second_instrument(self) -> str | None:
        """The instrument for the sensitivity analysis (parameter, or the most recorded other one)."""
        choice = self.params.second_instrument
        recorded = self.dataset.instruments()
        if choice == "":
            return None
        if choice != "auto":
            return choice if choice in recorded else None
        for name in recorded:
            if name != self.instrument.name and get_instrument(name).domain == DEPRESSION_DOMAIN:
                return name
        return None

    def limitations(self) -> Section:
        """Limitations noted from the numbers: small groups, missing endpoints, censoring."""
        notes = []
        courses = self.outcomes.courses
        n_end = len(self.with_endpoint)
        if n_end < 100:
            notes.append(f"Only {self.n(n_end)} patients had an endpoint: estimates are imprecise.")
        missing = len(courses) - n_end
        if len(courses) and missing / len(courses) > 0.1:
            notes.append(f"{self.pct(missing, len(courses))} of analysed patients had no end-of-induction assessment; "
                         "response rates are among those with one.")
        relapse = self.outcomes.relapse
        if len(relapse) and relapse["event"].mean() < 0.5:
            notes.append(f"Most relapse intervals were censored ({self.pct(int((relapse['event'] == 0).sum()), len(relapse))}), "
                         "often by the next session; with two confirmations relapses just before a session cannot be "
                         "confirmed (docs/outcomes.md).")
        if self._brant_p is not None and self._brant_p < 0.05:
            notes.append("The proportional-odds assumption of the category model is doubtful (Brant test p = "
                         f"{self._brant_p:.3g}); read the logistic model of response instead.")
        if self._ph_p is not None and self._ph_p < 0.05:
            notes.append(f"The Cox model of relapse after induction may violate proportional hazards (global test "
                         f"p = {self._ph_p:.3g}); its hazard ratios are averages over time.")
        responders = int((self.with_endpoint["category"] == "responder").sum())
        unfollowed = responders - len(relapse)
        if 1 <= unfollowed < self.k:
            notes.append(f"Fewer than {self.k} responders had no assessment after induction; the number followed "
                         "differs from the number of responders by that small count (docs/reports.md).")
        if not notes:
            notes.append("No limitation was flagged by the automatic checks.")
        return self._finish(Section("Limitations", "\n".join(f"- {n}" for n in notes), values={"notes": notes}))

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
            "median_days_to_relapse": "not reached" if np.isnan(med) else f"{med:.0f}",
        }


def _guard_differences(table: pd.DataFrame, k: int) -> pd.DataFrame:
    """Hide a count (and the percentages computed on it) when it differs from the first
    row's by 1 to k-1: the difference would be a small count recovered by subtraction."""
    table = table.copy()
    pairs = {"patients with endpoint": ["response", "remission"], "followed after induction": ["median days to relapse"]}
    raw = table.pop("_raw")
    for i in range(1, len(table)):
        if table.loc[i, "instrument"] != table.loc[0, "instrument"]:
            continue
        for col, derived in pairs.items():
            diff = abs(raw.iloc[i][col] - raw.iloc[0][col])
            if 1 <= diff < k:
                table.loc[i, col] = "suppressed"
        for col in ("response", "remission"):
            diff = abs(raw.iloc[i][col] - raw.iloc[0][col])
            if 1 <= diff < k:
                table.loc[i, col] = "suppressed"
    return table


def _fmt_days(x: float) -> str:
    return "not reached" if x is None or np.isnan(x) else f"{x:.0f}"


def _summary_row(label: str, instrument: str, out: Outcomes, conf_level: float, k: int) -> dict:
    courses = out.courses
    with_endpoint = courses[courses["category"].notna()]
    of = len(with_endpoint)
    responders = int((with_endpoint["category"] == "responder").sum())
    remitters = int(with_endpoint["remission"].fillna(False).sum())
    if len(out.relapse):
        med = kaplan_meier(out.relapse, "time", "event", conf_level=conf_level).median.iloc[0]["median"]
    else:
        med = np.nan
    return {
        "_raw": {"patients with endpoint": of, "followed after induction": len(out.relapse),
                 "response": responders, "remission": remitters},
        "analysis": label, "instrument": instrument, "patients with endpoint": format_count(of, k),
        "response": format_percent(responders, of, k), "remission": format_percent(remitters, of, k),
        "followed after induction": format_count(len(out.relapse), k),
        "median days to relapse": "not reached" if np.isnan(med) else f"{med:.0f}",
    }
