"""The ground truth of a simulation: true effects with their scales, every parameter, and
figures realised in the simulated cohort (from the latent values and from the observed
tables), plus the latent companion tables.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .assessments import Assessments
from .cohort import Cohort
from .induction import Induction
from .maintenance import PostInduction
from .parameters import SimulationParameters
from .tables import PHASE_NAMES, AllSessions, patient_ids

__all__ = ["build_truth", "build_latent", "observed_induction_outcomes", "SIMULATOR_VERSION"]

#: bump when the same seed and parameters would give different data
SIMULATOR_VERSION = "1"


def observed_induction_outcomes(tables: dict[str, pd.DataFrame], window: int = 14) -> pd.DataFrame:
    """Induction response and remission by PHQ-9, computed from the observed tables only.

    Baseline is the last PHQ-9 on or before the first session day (at most ``window``
    days before); the end of induction is the day of the 6th induction session (or the
    last, if fewer); the endpoint is the first PHQ-9 after that day (within ``window``
    days). Response is an improvement of at least 50%, remission an endpoint score <= 4.

    Returns one row per patient with ``baseline``, ``endpoint``, ``improvement``,
    ``response`` and ``remission`` (missing where baseline or endpoint is missing).
    """
    ses = tables["sessions"]
    first = ses.groupby("patient_id", sort=True)["day"].min().rename("first_day")
    ind = ses.loc[ses["phase"] == "induction", ["patient_id", "day"]].sort_values(["patient_id", "day"], kind="stable")
    grouped = ind.groupby("patient_id", sort=True)["day"]
    sixth = ind[grouped.cumcount().to_numpy() == 5].set_index("patient_id")["day"]
    end = sixth.reindex(first.index).fillna(grouped.last()).rename("end_day")
    phq = tables["assessments"]
    phq = phq.loc[phq["instrument"] == "PHQ-9", ["patient_id", "day", "score"]]
    days = pd.concat([first, end], axis=1)
    phq = phq.join(days, on="patient_id")
    base = phq[(phq["day"] <= phq["first_day"]) & (phq["day"] >= phq["first_day"] - window)]
    base = base.groupby("patient_id", sort=True)["score"].last().rename("baseline")
    after = phq[(phq["day"] > phq["end_day"]) & (phq["day"] <= phq["end_day"] + window)]
    after = after.groupby("patient_id", sort=True)["score"].first().rename("endpoint")
    out = pd.concat([days, base, after], axis=1)
    out["improvement"] = (out["baseline"] - out["endpoint"]) / out["baseline"]
    ok = out["baseline"].notna() & out["endpoint"].notna() & (out["baseline"] > 0)
    out["response"] = (out["improvement"] >= 0.5).where(ok)
    out["remission"] = (out["endpoint"] <= 4).where(ok)
    return out


def _intervals(s: AllSessions, post: PostInduction) -> dict[str, np.ndarray]:
    """Latent durability intervals: from each session with a finite T to its fade, the next
    session or the end of follow-up, whichever comes first."""
    same_next = np.r_[s.patient[1:] == s.patient[:-1], False]
    next_day = np.where(same_next, np.r_[s.day[1:], 0], np.nan).astype(float)
    fu_end = post.followup_end[s.patient].astype(float)
    limit = np.where(np.isnan(next_day), fu_end, next_day)
    fade = s.day + s.durability
    event = np.isfinite(s.durability) & (fade < limit)
    return {"next_day": next_day, "limit": limit, "event": event, "at_risk": np.isfinite(s.durability)}


def _median(x: np.ndarray) -> float | None:
    return float(np.median(x)) if len(x) else None


def _mean(x: np.ndarray) -> float | None:
    return float(np.mean(x)) if len(x) else None


def build_truth(n_sites: int, seed: int, p: SimulationParameters, c: Cohort, ind: Induction, post: PostInduction,
                s: AllSessions, a: Assessments, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The ground-truth dictionary (JSON-serialisable; floats rounded to 6 significant digits)."""
    n = c.n
    responders = ind.end_level >= 0.5
    t0 = post.durability_after_induction
    obs = observed_induction_outcomes(tables)
    iv = _intervals(s, post)
    post_sessions = s.phase > 0
    exposed_patients = np.zeros(n, dtype=bool)
    exposed_patients[s.patient[s.rapamycin]] = True
    ph = tables["sessions"]["phase"].value_counts()
    effects = {
        "plateau": {
            "scale": "log-odds of the peak improvement fraction P_i (logit P_i); improvement is the fraction of the "
                     "baseline score removed",
            "formula": "logit P_i = intercept + b_failures*(failures - failures_center) + b_ptsd*ptsd + b_anxiety*z "
                       "+ b_bipolar*bipolar + b_lamotrigine*lamotrigine + b_route[route] + b_benzo*max(0, DZE - threshold)/10 "
                       "+ site_effect[site] + u_i, u_i ~ N(0, patient_sd^2), z = (GAD-7 - anxiety_center)/anxiety_scale",
            "intercept": p.plateau_intercept,
            "prior_treatment_failures_per_failure": p.plateau_prior_failures,
            "comorbid_ptsd": p.plateau_ptsd,
            "anxiety_per_z": p.plateau_anxiety,
            "bipolar": p.plateau_bipolar,
            "lamotrigine": p.plateau_lamotrigine,
            "route": dict(p.plateau_route),
            "benzodiazepine_per_10mg_dze_above_threshold": p.plateau_benzo_per_10mg,
            "benzodiazepine_threshold_dze_mg": p.benzo_threshold_dze_mg,
            "patient_sd": p.plateau_patient_sd,
            "site": {name: float(e) for name, e in zip(c.site_names, c.site_effect)},
            "baseline_severity": 0.0,
            "rapamycin_post_induction": p.rapamycin_plateau_logodds,
        },
        "induction_speed": {
            "scale": "improvement after k effective sessions = P_i * (1 - exp(-k / tau_i)); tau_i in sessions",
            "tau": p.induction_tau,
            "benzodiazepine_tau_multiplier": "1 + benzo_tau_per_10mg * max(0, DZE - threshold) / 10",
            "benzodiazepine_tau_per_10mg_dze_above_threshold": p.benzo_tau_per_10mg,
            "incomplete_session_weight": p.incomplete_session_weight,
        },
        "dose": {
            "scale": "log of a session's weight (effective sessions) per mg/kg IV-equivalent above 0.5",
            "effect": p.dose_effect,
        },
        "dissociation": {
            "scale": "log of a session's weight per 10 CADSS points above cadss_intercept",
            "effect": p.dissociation_effect,
            "cadss_model": "CADSS = clip(round(cadss_intercept + cadss_per_mg_per_kg*(dose_equiv - 0.5) "
                           "- cadss_tolerance*log(session_number) + proneness_i + noise), 0, 92)",
        },
        "durability": {
            "scale": "hazard ratio of the benefit of an infusion fading (loss of response), Weibull proportional "
                     "hazards with a shared patient frailty; time in days from the infusion",
            "formula": "h_ij(t) = Z_i * exp(x_ij b) * (shape/scale) * (t/scale)^(shape-1); S(t) = exp(-Z_i exp(x b) (t/scale)^shape)",
            "weibull_shape": p.durability_shape,
            "weibull_scale_days": p.durability_scale_days,
            "frailty": {"distribution": p.frailty_distribution, "mean": 1.0, "variance": p.frailty_variance},
            "hazard_ratios": {
                "rapamycin": p.hr_rapamycin,
                "benzodiazepine": p.hr_benzodiazepine,
                "lamotrigine": p.hr_lamotrigine,
                "prior_treatment_failures_per_failure": p.hr_prior_failure,
                "comorbid_ptsd": p.hr_ptsd,
                "anxiety_per_z": p.hr_anxiety,
                "bipolar": p.hr_bipolar,
                "dose": 1.0,
                "dissociation": 1.0,
                "route": 1.0,
            },
            "residual_fraction": p.residual_fraction,
            "covariates_centred_at": {"prior_treatment_failures": p.failures_center, "gad7": p.anxiety_center},
        },
    }
    at_risk = iv["at_risk"]
    realised = {
        "n_patients": n,
        "n_sessions": int(len(s.patient)),
        "n_sessions_by_phase": {name: int(ph.get(name, 0)) for name in PHASE_NAMES},
        "n_assessments": int(len(a.patient)),
        "n_assessments_by_instrument": {k: int(v) for k, v in tables["assessments"]["instrument"].value_counts().sort_index().items()},
        "n_medication_rows": int(len(tables["medications"])),
        "response_rate": _mean(obs["response"].dropna().to_numpy(dtype=float)),
        "remission_rate": _mean(obs["remission"].dropna().to_numpy(dtype=float)),
        "n_evaluable_for_response": int(obs["response"].notna().sum()),
        "latent_response_rate": float(responders.mean()),
        "mean_plateau": float(c.plateau.mean()),
        "median_days_to_relapse_after_induction": _median(t0[responders]),
        "median_days_to_relapse_after_induction_all_patients": _median(t0),
        "sustained_response_28d": _mean((t0[responders] > 28).astype(float)),
        "sustained_response_56d": _mean((t0[responders] > 56).astype(float)),
        "fraction_completed_induction": float((ind.n_sessions == p.n_induction_sessions).mean()),
        "fraction_stopped_no_benefit": float(ind.stopped_no_benefit.mean()),
        "fraction_incomplete_sessions": float((~s.completed).mean()),
        "fraction_maintenance": float(post.maintenance.mean()),
        "fraction_benzodiazepine": float(c.benzo.mean()),
        "fraction_benzodiazepine_above_threshold": float((c.benzo_dze > p.benzo_threshold_dze_mg).mean()),
        "fraction_lamotrigine": float(c.lamotrigine.mean()),
        "fraction_rapamycin": float(exposed_patients.mean()),
        "fraction_post_induction_sessions_rapamycin": _mean(s.rapamycin[post_sessions].astype(float)),
        "fraction_bipolar": float(c.bipolar.mean()),
        "fraction_ptsd": float(c.ptsd.mean()),
        "route_shares": {r: float((c.route == k).mean()) for k, r in enumerate(c.routes)},
        "n_durability_intervals": int(at_risk.sum()),
        "n_durability_events": int(iv["event"].sum()),
        "median_durability_days": _median(s.durability[at_risk]),
    }
    truth = {
        "simulator_version": SIMULATOR_VERSION,
        "format_version": "1",
        "seed": seed,
        "n_patients": n,
        "n_sites": n_sites,
        "parameters": p.to_dict(),
        "effects": effects,
        "realised": realised,
        "definitions": {
            "assessment_timing": "an assessment on a session day is taken before that session",
            "latent_response": "end-of-induction latent improvement >= 0.5",
            "median_days_to_relapse_after_induction": "median latent durability T_i0 of the last induction "
                                                      "infusion among latent responders (as if no further session)",
            "response_rate": "observed: PHQ-9 improvement >= 50% from the last PHQ-9 on or before the first session "
                             "(within 14 days) to the first PHQ-9 after the 6th (or last) induction session (within 14 days)",
            "remission_rate": "observed: that endpoint PHQ-9 <= 4",
        },
    }
    return _rounded(truth)


def build_latent(c: Cohort, ind: Induction, post: PostInduction, s: AllSessions, a: Assessments) -> dict[str, pd.DataFrame]:
    """Latent companion tables (not part of format v1), keyed like the observed tables."""
    ids = patient_ids(c.n)
    iv = _intervals(s, post)
    patients = pd.DataFrame({
        "patient_id": pd.Series(ids, dtype="str"),
        "plateau": c.plateau, "plateau_logit": c.plateau_logit, "tau": c.tau, "frailty": c.frailty,
        "durability_lp": c.durability_lp, "anxiety_z": c.anxiety_z, "benzo_dze_mg": c.benzo_dze,
        "phq9_latent_baseline": c.phq9_latent, "madrs_latent_baseline": c.madrs_latent,
        "end_of_induction_improvement": ind.end_level, "perceived_end_improvement": ind.perceived_end,
        "durability_after_induction": post.durability_after_induction, "median_durability": post.median_durability,
        "maintenance": post.maintenance, "rapamycin_assigned": post.rapamycin_assigned,
        "followup_end_day": post.followup_end,
    })
    sessions = pd.DataFrame({
        "patient_id": pd.Series(ids[s.patient], dtype="str"), "day": s.day, "session_number": s.number,
        "level": s.level, "durability": s.durability, "fade_day": s.day + s.durability,
        "interval_end_day": iv["limit"], "interval_event": iv["event"], "rapamycin": s.rapamycin,
    })
    assessments = pd.DataFrame({"patient_id": pd.Series(ids[a.patient], dtype="str"), "day": a.day,
                                "improvement": a.improvement})
    return {"patients": patients, "sessions": sessions, "assessments": assessments}


def _rounded(value: Any) -> Any:
    """Plain Python values with floats to 6 significant digits (NaN and inf become None)."""
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        x = float(value)
        return float(f"{x:.6g}") if math.isfinite(x) else None
    return value
