"""What each section of the cohort report computes: counts, covariate choices and model fits.

Nothing here writes prose or hides a count: each function returns the unsuppressed numbers
as a small result object, :mod:`analysis.report.privacy` decides what of it may be shown
and :mod:`analysis.report.prose` writes the sentences. A section's result is handed on
explicitly (``CohortReport.limitations`` takes the model results as arguments).

Each section that fits models reads their results in one place, a function named
``_read_*`` below marked "model results read here": the summary columns it uses are the
only ones the report depends on (their names: docs/api.md).

Examples
--------
>>> import analysis
>>> from analysis.report import analyses
>>> outcomes = analysis.derive_outcomes(analysis.load_dataset(analysis.sample_path()))
>>> with_endpoint = outcomes.courses[outcomes.courses["category"].notna()]
>>> analyses.responder_covariates(with_endpoint)
['prior_treatment_failures', 'age', 'comorbid_ptsd', 'baseline_score', 'class_benzodiazepine']
>>> models = analyses.fit_responder_models(with_endpoint, conf_level=0.95)
>>> models.fitted, models.n_obs, models.strongest.term
(True, 494, 'class_benzodiazepine[T.True]')
>>> print(f"{models.strongest.ratio:.2f} ({models.strongest.lower:.2f} to {models.strongest.upper:.2f})")
0.55 (0.35 to 0.87)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..dataset import Dataset
from ..outcomes import Outcomes, derive_outcomes

__all__ = [
    "DEPRESSION_DOMAIN", "Effect", "FitGuard", "DataSummary", "ResponderModels", "RelapseModels", "DurabilityModels",
    "data_summary", "score_weeks", "second_instrument", "responder_covariates", "model_covariates",
    "fit_responder_models", "fit_relapse_models", "fit_durability_models", "sensitivity_counts",
]


def kaplan_meier(*args, **kwargs):
    """:func:`analysis.survival.kaplan_meier`, imported on first use: the survival package loads
    scipy.stats, which ``ketamine-outcomes report`` does not need before the kernel starts."""
    from ..survival import kaplan_meier as fit

    return fit(*args, **kwargs)


DEPRESSION_DOMAIN = "depression"

#: covariates each model may use, in the order they are taken (as many as the events allow)
RESPONDER_COVARIATES = ["prior_treatment_failures", "age", "comorbid_ptsd", "baseline_score", "class_benzodiazepine"]
RELAPSE_COVARIATES = ["prior_treatment_failures", "comorbid_ptsd", "class_benzodiazepine", "age"]
DURABILITY_COVARIATES = ["drug_rapamycin", "class_benzodiazepine", "prior_treatment_failures"]


@dataclass(frozen=True)
class Effect:
    """One term of a model as the report quotes it: a ratio with its interval and p-value."""

    term: str
    ratio: float
    lower: float
    upper: float
    p_value: float = float("nan")


class FitGuard:
    """Run model fits so that a cohort too small or too degenerate for a model gives a
    sentence instead of a failed report: a numerical failure of the fit (singular matrix,
    no convergence, a model that cannot be built from these rows) is kept in ``error`` as
    its type and message, and warnings in ``warnings`` (the report states both). Any other
    exception propagates.
    """

    #: what a fit raises when the data cannot support the model
    FIT_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError)

    def __init__(self):
        self.error: str | None = None
        self.warnings: list[str] = []

    def __enter__(self):
        self._catch = warnings.catch_warnings(record=True)
        self._caught = self._catch.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, kind, exc, tb):
        self._catch.__exit__(None, None, None)
        seen = []
        for w in self._caught:
            if issubclass(w.category, DeprecationWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)   # never hidden
            elif str(w.message) not in seen:
                seen.append(str(w.message))
        self.warnings = seen
        if exc is not None and isinstance(exc, self.FIT_ERRORS):
            self.error = f"{type(exc).__name__}: {exc}"
            return True
        return False


# --- data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSummary:
    """Counts of the analysis population (patients with an endpoint), before suppression."""

    n_patients: int
    n_sessions: int
    n_assessments: int
    patients_by_site: pd.DataFrame
    sessions_by_route: pd.DataFrame
    assessments_by_instrument: pd.DataFrame


def data_summary(dataset: Dataset, with_endpoint: pd.DataFrame) -> DataSummary:
    """Patients per site, sessions per route and assessments per instrument of the patients
    with an endpoint."""
    courses = with_endpoint
    analysed = set(courses["patient_id"])
    site = courses["site"].fillna("(no site)") if "site" in courses else pd.Series("(all)", index=courses.index)
    sites = site.value_counts().sort_index().rename_axis("site").reset_index(name="patients")
    sessions = dataset.sessions[dataset.sessions["patient_id"].isin(analysed)]
    routes = (sessions.groupby("route").agg(patients=("patient_id", "nunique"), sessions=("day", "size"))
              .reset_index())
    assessments = dataset.assessments[dataset.assessments["patient_id"].isin(analysed)]
    instruments = (assessments.groupby("instrument").agg(patients=("patient_id", "nunique"),
                                                         assessments=("score", "size")).reset_index())
    return DataSummary(len(courses), len(sessions), len(assessments), sites, routes, instruments)


def score_weeks(dataset: Dataset, outcomes: Outcomes, instrument: str) -> pd.DataFrame:
    """Assessments of ``instrument`` with the week since the first session (weeks -2 to 12)
    and the patient's response category (``"nan"`` without an endpoint)."""
    scores = dataset.assessments
    scores = scores[scores["instrument"] == instrument]
    courses = outcomes.courses.set_index("patient_id")
    scores = scores[scores["patient_id"].isin(courses.index)].copy()
    scores["week"] = np.floor((scores["day"] - scores["patient_id"].map(courses["first_session_day"])) / 7)
    scores = scores[(scores["week"] >= -2) & (scores["week"] <= 12)]
    scores["category"] = scores["patient_id"].map(courses["category"].astype(str))
    return scores


def second_instrument(dataset: Dataset, choice: str, instrument: str) -> str | None:
    """The instrument of the sensitivity analysis: ``choice`` if recorded, none for ``""``,
    and for ``"auto"`` the most recorded other depression instrument."""
    recorded = dataset.instruments()
    if choice == "":
        return None
    if choice != "auto":
        return choice if choice in recorded else None
    for name in recorded:
        if name != instrument and dataset.instrument_registry.get(name).domain == DEPRESSION_DOMAIN:
            return name
    return None


# --- covariates ------------------------------------------------------------------------------


def responder_covariates(with_endpoint: pd.DataFrame) -> list[str]:
    """Baseline covariates for the responder models: those recorded (over 90%) with some variation."""
    data = with_endpoint
    return [c for c in RESPONDER_COVARIATES if c in data and data[c].notna().mean() > 0.9 and data[c].nunique() > 1]


def model_covariates(table: pd.DataFrame, wanted: list[str]) -> list[str]:
    """Covariates present, recorded for most rows, and varying, at most one per ten events."""
    ok = [c for c in wanted if c in table and table[c].notna().mean() > 0.9 and table[c].nunique() > 1]
    events = int(table["event"].sum()) if "event" in table else 0
    return ok[: max(0, events // 10)]


# --- responder models --------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponderModels:
    """The logistic model of response and the proportional-odds model of the category.

    ``fitted`` is False when there were too few patients (ten per coefficient); then only
    ``covariates`` and ``n_patients`` are set.
    """

    covariates: list[str]
    n_patients: int
    logistic: Any = None
    ordinal: Any = None
    #: odds ratios by model and term (the report's table)
    table: pd.DataFrame | None = None
    #: the covariate of the logistic model with the smallest p-value
    strongest: Effect | None = None
    brant_chi2: float = float("nan")
    brant_df: int = 0
    brant_p: float | None = None
    n_obs: int = 0
    n_dropped: int = 0
    #: why the models could not be fitted (None when they were, or were not tried)
    error: str | None = None
    #: warnings the fits gave (the report notes them)
    warnings: list[str] = field(default_factory=list)

    @property
    def fitted(self) -> bool:
        return self.logistic is not None


def fit_responder_models(with_endpoint: pd.DataFrame, *, conf_level: float) -> ResponderModels:
    """Fit both responder models on the patients with an endpoint (rows with a missing covariate dropped)."""
    from ..response import logistic, ordinal

    covariates = responder_covariates(with_endpoint)
    data = with_endpoint.assign(responder=with_endpoint["category"].astype(object) == "responder")
    if not covariates or len(data) < 10 * (len(covariates) + 1):
        return ResponderModels(covariates, len(data))
    rhs = " + ".join(covariates)
    with FitGuard() as guard:
        fit = logistic(f"responder ~ {rhs}", data, dropna=True, conf_level=conf_level)
        po = ordinal(f"category ~ {rhs}", data, dropna=True, conf_level=conf_level)
        models = _read_responder_models(covariates, len(data), fit, po)
    if guard.error:
        return ResponderModels(covariates, len(data), error=guard.error)
    return replace(models, warnings=guard.warnings)


def _read_responder_models(covariates: list[str], n_patients: int, fit, po) -> ResponderModels:
    # --- model results read here (and nowhere else in the responder section) -------------------
    cols = ["ratio", "ratio_lower", "ratio_upper", "p_value"]
    shown = {"ratio": "odds_ratio", "ratio_lower": "odds_ratio_ci_lower", "ratio_upper": "odds_ratio_ci_upper"}
    table = pd.concat(
        {"response (logistic)": fit.summary.loc[fit.summary.index != "Intercept", cols],
         "category (proportional odds)": po.summary.loc[po.summary["kind"] == "coefficient", cols]},
        names=["model", "term"]).reset_index().round({c: 3 for c in cols}).rename(columns=shown)
    omnibus = po.brant().loc["omnibus"]
    strongest = fit.summary.drop(index="Intercept")["p_value"].idxmin()
    row = fit.summary.loc[strongest]
    return ResponderModels(
        covariates, n_patients, fit, po, table,
        strongest=Effect(strongest, row["ratio"], row["ratio_lower"], row["ratio_upper"], row["p_value"]),
        brant_chi2=omnibus["chi2"], brant_df=int(omnibus["df"]), brant_p=float(omnibus["p_value"]),
        n_obs=fit.n_obs, n_dropped=max(fit.n_dropped, po.n_dropped),
    )


# --- relapse models ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RelapseModels:
    """Cox model of relapse after induction (with its proportional-hazards test) and the
    interval-censored Weibull AFT model's median durability.

    ``fitted`` is False when there were too few responders followed (k) or relapses (10).
    The Cox model is fitted only when some covariate qualifies (``cox`` is then not None).
    """

    covariates: list[str]
    n: int
    events: int
    fitted: bool = False
    cox: Any = None
    #: hazard ratios of every term (the report's table)
    cox_table: pd.DataFrame | None = None
    #: the term with the smallest p-value
    cox_top: Effect | None = None
    #: global p-value of the proportional-hazards test (cox.zph, KM transform)
    ph_p: float | None = None
    weibull: Any = None
    aft_median: float = float("nan")
    aft_ci_lower: float = float("nan")
    aft_ci_upper: float = float("nan")
    aft_shape: float = float("nan")
    #: why the models could not be fitted (None when they were, or were not tried)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def fit_relapse_models(relapse: pd.DataFrame, *, conf_level: float, min_patients: int) -> RelapseModels:
    """Fit the relapse models on the relapse table (one row per responder followed)."""
    from ..survival import aft, cox

    covariates = model_covariates(relapse, RELAPSE_COVARIATES)
    events = int(relapse["event"].sum())
    if len(relapse) < min_patients or events < 10:
        return RelapseModels(covariates, len(relapse), events)
    fit = None
    with FitGuard() as guard:
        if covariates:
            fit = cox(" + ".join(covariates), relapse, duration="time", event="event", ties="efron", dropna=True,
                      conf_level=conf_level)
        weib = aft("1", relapse, lower="lower", upper="upper", dist="weibull", conf_level=conf_level)
        models = _read_relapse_models(covariates, len(relapse), events, fit, weib)
    if guard.error:
        return RelapseModels(covariates, len(relapse), events, error=guard.error)
    return replace(models, warnings=guard.warnings)


def _read_relapse_models(covariates: list[str], n: int, events: int, fit, weib) -> RelapseModels:
    # --- model results read here (and nowhere else in the relapse-models section) --------------
    cox_parts: dict[str, Any] = {}
    if fit is not None:
        zph = fit.ph_test()
        global_p = float(zph.table.loc["GLOBAL", "p_value"]) if hasattr(zph, "table") else float(zph.loc["GLOBAL", "p_value"])
        top = fit.summary["p_value"].idxmin()
        row = fit.summary.loc[top]
        cox_parts = dict(
            cox=fit, cox_table=_hazard_ratio_table(fit),
            cox_top=Effect(top, row["ratio"], row["ratio_lower"], row["ratio_upper"], row["p_value"]), ph_p=global_p)
    median = weib.predict_median(pd.DataFrame(index=[0])).iloc[0]
    return RelapseModels(covariates, n, events, True, **cox_parts, weibull=weib, aft_median=median["median"],
                         aft_ci_lower=median["ci_lower"], aft_ci_upper=median["ci_upper"], aft_shape=1 / weib.scale)


def _hazard_ratio_table(fit) -> pd.DataFrame:
    """A Cox result's hazard ratios as the report's tables show them (``hr, hr_lower, hr_upper, p_value``)."""
    cols = {"ratio": "hr", "ratio_lower": "hr_lower", "ratio_upper": "hr_upper", "p_value": "p_value"}
    return fit.summary[list(cols)].rename(columns=cols).round(3).reset_index(names="term")


# --- per-infusion durability ---------------------------------------------------------------------


@dataclass(frozen=True)
class DurabilityModels:
    """Kaplan-Meier curves by infusion number, the PWP gap-time Cox model clustered by patient
    and the within-patient rapamycin comparison.

    ``fitted`` is False when there were too few intervals (k) or events (10). The PWP model
    needs a qualifying covariate (``pwp`` is None otherwise); the within-patient comparison
    needs at least k patients with infusions both with and without rapamycin.
    """

    n_intervals: int
    n_patients: int
    fitted: bool = False
    km: Any = None
    covariates: list[str] = field(default_factory=list)
    pwp: Any = None
    pwp_table: pd.DataFrame | None = None
    pwp_effects: list[Effect] = field(default_factory=list)
    #: patients with infusions both with and without rapamycin (None: no rapamycin column)
    n_switch: int | None = None
    within: Any = None
    within_table: pd.DataFrame | None = None
    within_effect: Effect | None = None
    #: why the models could not be fitted (None when they were, or were not tried)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def fit_durability_models(durability: pd.DataFrame, *, conf_level: float, min_patients: int) -> DurabilityModels:
    """Fit the per-infusion models on the durability table (one row per post-induction interval)."""
    from ..survival import pwp_gap, within_patient

    d = durability
    n_intervals, n_patients = len(d), d["patient_id"].nunique() if len(d) else 0
    if n_intervals < min_patients or int(d["event"].sum()) < 10:
        return DurabilityModels(n_intervals, n_patients)
    shown = d.assign(infusion=np.minimum(d["interval"], 4).map({1: "1", 2: "2", 3: "3", 4: "4+"}))
    covariates = model_covariates(d, DURABILITY_COVARIATES)
    pwp = None
    n_switch, within = None, None
    with FitGuard() as guard:
        km = kaplan_meier(shown, "time", "event", group="infusion", conf_level=conf_level)
        if covariates:
            pwp = pwp_gap(" + ".join(covariates), d, cluster="patient_id", interval="interval", dropna=True,
                          conf_level=conf_level)
        if "drug_rapamycin" in d:
            switchers = d.groupby("patient_id")["drug_rapamycin"].nunique()
            n_switch = int((switchers > 1).sum())
            if n_switch >= min_patients:
                within = within_patient("drug_rapamycin", d, cluster="patient_id", conf_level=conf_level)
        models = _read_durability_models(n_intervals, n_patients, km, covariates, pwp, n_switch, within)
    if guard.error:
        return DurabilityModels(n_intervals, n_patients, error=guard.error)
    return replace(models, warnings=guard.warnings)


def _read_durability_models(n_intervals, n_patients, km, covariates, pwp, n_switch, within) -> DurabilityModels:
    # --- model results read here (and nowhere else in the durability section) ------------------
    parts: dict[str, Any] = {}
    if pwp is not None:
        parts.update(pwp=pwp, pwp_table=_hazard_ratio_table(pwp),
                     pwp_effects=[Effect(t, r.ratio, r.ratio_lower, r.ratio_upper, r.p_value)
                                  for t, r in pwp.summary.iterrows()])
    if within is not None:
        row = within.summary.iloc[0]
        parts.update(within=within, within_table=_hazard_ratio_table(within),
                     within_effect=Effect(within.summary.index[0], row["ratio"], row["ratio_lower"], row["ratio_upper"],
                                          row["p_value"]))
    return DurabilityModels(n_intervals, n_patients, True, km, covariates, n_switch=n_switch, **parts)


# --- sensitivity ----------------------------------------------------------------------------------


def sensitivity_counts(dataset: Dataset, outcomes: Outcomes, instrument: str, definitions: dict, *,
                       second: str | None, conf_level: float,
                       derived: dict[str, Outcomes] | None = None) -> pd.DataFrame:
    """The main figures under other definitions and on a second instrument, one row each
    (the first row as defined): patients with an endpoint, responders, remitters, responders
    followed after induction and the median days to relapse. ``derived``: outcomes already
    derived under a variant's definitions, by its label (``"relapse confirmed once"``), used
    instead of deriving them again."""
    variants = [("as defined", {})]
    d = definitions
    variants.append(("relapse confirmed once", {**d, "relapse_confirmations": 1}))
    variants.append(("partial responders followed", {**d, "include_partial_responders": True}))
    variants.append(("response at 40%", {**d, "response_pct": 40.0}))
    rows = []
    for label, changed in variants:
        if not changed:
            out = outcomes
        elif derived and derived.get(label) is not None:
            out = derived[label]
        else:
            out = derive_outcomes(dataset, instrument, **changed)
        rows.append(_counts(label, instrument, out, conf_level))
    if second is not None:
        out = derive_outcomes(dataset, second, **definitions)
        rows.append(_counts(f"on {second}", second, out, conf_level))
    return pd.DataFrame(rows)


def _counts(label: str, instrument: str, out: Outcomes, conf_level: float) -> dict:
    courses = out.courses
    with_endpoint = courses[courses["category"].notna()]
    if len(out.relapse):
        med = kaplan_meier(out.relapse, "time", "event", conf_level=conf_level).median.iloc[0]["median"]
    else:
        med = np.nan
    return {"analysis": label, "instrument": instrument, "with_endpoint": len(with_endpoint),
            "responders": int((with_endpoint["category"] == "responder").sum()),
            "remitters": int(with_endpoint["remission"].fillna(False).sum()),
            "followed": len(out.relapse), "median_days": med}
