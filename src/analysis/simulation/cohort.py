"""Patient-level draws: covariates, adjunct drugs, and each patient's latent response traits.

Everything here is one value per patient (arrays of length ``n``); nothing loops over
patients.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, ndtr, ndtri

from ..drugs import DIAZEPAM_EQUIVALENT_PER_MG
from .parameters import SimulationParameters

__all__ = ["Cohort", "draw_cohort", "site_names", "SEX_NAMES"]

SEX_NAMES = ("female", "male", "other")


@dataclass
class Cohort:
    """Latent and observed patient-level values (arrays of length ``n``).

    Codes: ``site`` indexes ``site_names``; ``sex`` indexes :data:`SEX_NAMES`; ``route``
    indexes ``routes``; ``benzo_drug`` indexes ``benzo_names`` (-1 for non-users).
    """

    n: int
    site_names: list[str]
    site_effect: np.ndarray  # per site, log-odds
    routes: tuple[str, ...]
    benzo_names: tuple[str, ...]
    site: np.ndarray
    age: np.ndarray
    sex: np.ndarray
    weight: np.ndarray
    bipolar: np.ndarray
    failures: np.ndarray
    gad7: np.ndarray
    anxiety_z: np.ndarray
    ptsd: np.ndarray
    route: np.ndarray
    phq9_latent: np.ndarray  # B_i
    madrs_latent: np.ndarray  # M_i
    madrs_site: np.ndarray  # bool: the patient's site rates MADRS
    benzo: np.ndarray
    benzo_drug: np.ndarray
    benzo_dose: np.ndarray
    benzo_dze: np.ndarray
    benzo_start: np.ndarray
    lamotrigine: np.ndarray
    lamotrigine_dose: np.ndarray
    lamotrigine_start: np.ndarray
    patient_effect: np.ndarray  # u_i, log-odds
    plateau_logit: np.ndarray  # logit P_i
    plateau: np.ndarray  # P_i
    tau: np.ndarray  # induction time constant in sessions
    frailty: np.ndarray  # Z_i
    durability_lp: np.ndarray  # log hazard ratio from patient covariates (rapamycin excluded)


def site_names(n_sites: int) -> list[str]:
    """``site_A``, ``site_B``, ... ``site_Z``, ``site_AA``, ...

    Examples
    --------
    >>> from analysis.simulation.cohort import site_names
    >>> site_names(3), site_names(28)[-1]
    (['site_A', 'site_B', 'site_C'], 'site_AB')
    """
    out = []
    for k in range(n_sites):
        label, k1 = "", k + 1
        while k1:
            k1, r = divmod(k1 - 1, 26)
            label = string.ascii_uppercase[r] + label
        out.append(f"site_{label}")
    return out


def draw_cohort(n: int, n_sites: int, p: SimulationParameters, cohort_rng: np.random.Generator,
                adjunct_rng: np.random.Generator, response_rng: np.random.Generator,
                site_rng: np.random.Generator) -> Cohort:
    """Draw the cohort: covariates, confounded adjunct use, and latent response traits."""
    rng = cohort_rng
    weights = p.site_size_decay ** np.arange(n_sites, dtype=float)
    site = rng.choice(n_sites, size=n, p=weights / weights.sum())
    # age: normal truncated below at 18 (inverse-CDF draw), whole years, top-coded at 90
    lo = ndtr((18 - p.age_mean) / p.age_sd)
    age = p.age_mean + p.age_sd * ndtri(lo + (1 - lo) * rng.random(n))
    age = np.maximum(np.floor(age), 18)
    age = np.where(age > 89, 90, age)
    u = rng.random(n)
    sex = np.where(u < p.female_fraction, 0, np.where(u < p.female_fraction + p.other_sex_fraction, 2, 1))
    median_weight = np.where(sex == 0, p.weight_female_kg, p.weight_male_kg)
    weight = np.round(np.clip(median_weight * np.exp(p.weight_cv * rng.standard_normal(n)), 40, 200), 1)
    bipolar = rng.random(n) < p.bipolar_fraction
    failures = np.minimum(rng.poisson(p.prior_failures_mean, n), 8)
    gad7 = np.clip(np.round(p.gad7_mean + p.gad7_sd * rng.standard_normal(n)), 0, 21)
    anx = (gad7 - p.anxiety_center) / p.anxiety_scale
    ptsd = rng.random(n) < expit(p.ptsd_logodds + p.ptsd_anxiety_logodds * anx)
    routes = tuple(p.route_probabilities)
    route = rng.choice(len(routes), size=n, p=np.array([p.route_probabilities[r] for r in routes]))
    b_lat = p.phq9_baseline_mean + p.phq9_baseline_anxiety * anx + p.phq9_baseline_sd * rng.standard_normal(n)
    b_lat = np.clip(b_lat, p.phq9_baseline_min, 27.0)
    m_lat = np.clip(p.madrs_offset + p.madrs_per_phq9 * b_lat + p.madrs_patient_sd * rng.standard_normal(n), 0, 60)
    madrs_site = site < p.madrs_sites

    # adjuncts, with confounding by indication
    rng = adjunct_rng
    benzo = rng.random(n) < expit(p.benzo_logodds + p.benzo_anxiety_logodds * anx + p.benzo_ptsd_logodds * ptsd)
    benzo_names = tuple(p.benzo_drug_probabilities)
    drug = rng.choice(len(benzo_names), size=n, p=np.array([p.benzo_drug_probabilities[d] for d in benzo_names]))
    drug = np.where(benzo, drug, -1)
    level_u = ndtr((p.benzo_dose_anxiety * anx + rng.standard_normal(n)) / np.sqrt(1 + p.benzo_dose_anxiety ** 2))
    dose = np.full(n, np.nan)
    dze = np.zeros(n)
    for k, name in enumerate(benzo_names):  # loop over a handful of drugs, not patients
        levels = np.asarray(p.benzo_doses_mg[name], dtype=float)
        on = drug == k
        idx = np.minimum((level_u[on] * len(levels)).astype(int), len(levels) - 1)
        dose[on] = levels[idx]
        dze[on] = levels[idx] * DIAZEPAM_EQUIVALENT_PER_MG[name]
    benzo_start = -rng.integers(30, 1096, size=n)
    lamo = rng.random(n) < expit(p.lamotrigine_logodds + p.lamotrigine_bipolar_logodds * bipolar
                                 + p.lamotrigine_failures_logodds * (failures - p.failures_center))
    lamo_dose = np.asarray(p.lamotrigine_doses_mg, dtype=float)[rng.integers(0, len(p.lamotrigine_doses_mg), size=n)]
    lamo_start = -rng.integers(30, 1096, size=n)

    # latent response traits
    rng = response_rng
    site_effect = p.site_logodds_sd * site_rng.standard_normal(n_sites)
    site_effect -= np.dot(site_effect, weights / weights.sum())  # size-weighted mean 0: sites do not shift the cohort
    u_i = p.plateau_patient_sd * rng.standard_normal(n)
    excess = np.maximum(dze - p.benzo_threshold_dze_mg, 0.0) / 10.0
    route_effect = np.array([p.plateau_route.get(r, 0.0) for r in routes])[route]
    eta = (p.plateau_intercept + p.plateau_prior_failures * (failures - p.failures_center) + p.plateau_ptsd * ptsd
           + p.plateau_anxiety * anx + p.plateau_bipolar * bipolar + p.plateau_lamotrigine * lamo + route_effect
           + p.plateau_benzo_per_10mg * excess + site_effect[site] + u_i)
    tau = p.induction_tau * (1 + p.benzo_tau_per_10mg * excess)
    frailty = _frailty(n, p, rng)
    lp = (np.log(p.hr_benzodiazepine) * benzo + np.log(p.hr_lamotrigine) * lamo
          + np.log(p.hr_prior_failure) * (failures - p.failures_center) + np.log(p.hr_ptsd) * ptsd
          + np.log(p.hr_anxiety) * anx + np.log(p.hr_bipolar) * bipolar)
    return Cohort(
        n=n, site_names=site_names(n_sites), site_effect=site_effect, routes=routes, benzo_names=benzo_names,
        site=site, age=age, sex=sex, weight=weight, bipolar=bipolar, failures=failures, gad7=gad7, anxiety_z=anx,
        ptsd=ptsd, route=route, phq9_latent=b_lat, madrs_latent=m_lat, madrs_site=madrs_site, benzo=benzo,
        benzo_drug=drug, benzo_dose=dose, benzo_dze=dze, benzo_start=benzo_start, lamotrigine=lamo,
        lamotrigine_dose=lamo_dose, lamotrigine_start=lamo_start, patient_effect=u_i, plateau_logit=eta,
        plateau=expit(eta), tau=tau, frailty=frailty, durability_lp=lp,
    )


def _frailty(n: int, p: SimulationParameters, rng: np.random.Generator) -> np.ndarray:
    """Shared frailty with mean 1 and variance ``frailty_variance``."""
    v = p.frailty_variance
    if v == 0:
        return np.ones(n)
    if p.frailty_distribution == "gamma":
        return rng.gamma(1.0 / v, v, size=n)
    s2 = np.log1p(v)
    return np.exp(-s2 / 2 + np.sqrt(s2) * rng.standard_normal(n))
