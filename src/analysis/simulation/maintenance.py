"""After induction: durability of each infusion's benefit, maintenance and booster sessions,
and rapamycin added mid-course.

Each infusion from the last induction session on holds its benefit for a time ``T_ij``
drawn from a Weibull proportional-hazards model with a shared patient frailty
(:func:`draw_durability`). The loop runs over post-induction session numbers (at most
``max_post_induction_sessions``), each step vectorised over the patients still in
maintenance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from .cohort import Cohort
from .induction import Induction
from .parameters import SimulationParameters
from .session_traits import draw_session

__all__ = ["PostInduction", "simulate_post_induction", "draw_durability", "latent_median_durability"]

MAINTENANCE, BOOSTER = 1, 2


@dataclass
class PostInduction:
    """Post-induction sessions (flat arrays, in loop order) and per-patient follow-up values."""

    patient: np.ndarray
    day: np.ndarray
    phase: np.ndarray  # MAINTENANCE or BOOSTER
    dose_kg: np.ndarray
    dose_mg: np.ndarray
    duration: np.ndarray
    bolus: np.ndarray
    dissociation: np.ndarray
    completed: np.ndarray
    level: np.ndarray
    durability: np.ndarray  # T_ij of the session, days
    rapamycin: np.ndarray  # exposed at this session
    contact_day: np.ndarray  # boosters: day the patient reported the fading benefit (NaN otherwise)
    # per patient
    followup_end: np.ndarray
    maintenance: np.ndarray
    durability_after_induction: np.ndarray  # T_i0, from the last induction session
    median_durability: np.ndarray  # latent median of T without rapamycin
    rapamycin_assigned: np.ndarray
    rapamycin_start: np.ndarray  # first exposed session day - 1 (NaN if never exposed)
    rapamycin_end: np.ndarray  # last exposed day if stopped, NaN if ongoing or never


def draw_durability(c: Cohort, patients: np.ndarray, rapamycin: np.ndarray, p: SimulationParameters,
                    rng: np.random.Generator) -> np.ndarray:
    """Weibull PH durability in days: ``T = scale * (E / (Z_i exp(lp)))**(1/shape)``, E ~ Exp(1).

    The hazard is ``Z_i * exp(lp) * (shape/scale) * (t/scale)**(shape-1)``, with ``lp`` the
    patient covariates' log hazard ratios plus ``log(hr_rapamycin)`` when exposed.
    """
    lp = c.durability_lp[patients] + np.log(p.hr_rapamycin) * rapamycin
    e = rng.standard_exponential(len(patients))
    return p.durability_scale_days * (e / (c.frailty[patients] * np.exp(lp))) ** (1.0 / p.durability_shape)


def latent_median_durability(c: Cohort, p: SimulationParameters) -> np.ndarray:
    """Each patient's median durability without rapamycin, given their frailty and covariates."""
    return p.durability_scale_days * (np.log(2) / (c.frailty * np.exp(c.durability_lp))) ** (1.0 / p.durability_shape)


def simulate_post_induction(c: Cohort, ind: Induction, p: SimulationParameters, rng: np.random.Generator,
                            dur_rng: np.random.Generator) -> PostInduction:
    """Who continues, when each further session comes, and what each infusion does.

    A perceived responder continues with ``maintenance_prob_responder`` (partial responder
    ``maintenance_prob_partial``). The next session is the scheduled one (``s + gap``,
    phase ``maintenance``) or, when the benefit fades first, a booster a few days after
    the fade (phase ``booster``), asked for by the patient on the fade day or the day after
    (``contact_day``). After a fade the planned gap shrinks, otherwise it grows.
    """
    n = c.n
    all_p = np.arange(n)
    lo, hi = p.followup_days_range
    followup_end = ind.end_day + rng.integers(lo, hi + 1, size=n)
    perceived = ind.perceived_end
    prob = np.where(perceived >= 0.5, p.maintenance_prob_responder,
                    np.where(perceived >= 0.25, p.maintenance_prob_partial, p.maintenance_prob_nonresponder))
    maintenance = (rng.random(n) < prob) & ~ind.dropped_out

    median = latent_median_durability(c, p)
    partial = (ind.end_level >= 0.25) & (ind.end_level < 0.5)
    short = (ind.end_level >= 0.5) & (median < p.rapamycin_short_durability_days)
    rapa_prob = np.where(partial, p.rapamycin_prob_partial, np.where(short, p.rapamycin_prob_short, p.rapamycin_prob_other))
    rapa_assigned = maintenance & (rng.random(n) < rapa_prob)
    rapa_first = np.asarray(p.rapamycin_start_sessions)[rng.integers(0, len(p.rapamycin_start_sessions), size=n)]

    t0 = draw_durability(c, all_p, np.zeros(n, dtype=bool), p, dur_rng)
    last_day = ind.end_day.astype(float)
    last_t = t0.copy()
    gap = np.asarray(p.first_maintenance_gap_days)[rng.integers(0, len(p.first_maintenance_gap_days), size=n)]
    on = maintenance.copy()
    rapa_stopped = np.zeros(n, dtype=bool)
    rapa_start = np.full(n, np.nan)
    rapa_last = np.full(n, np.nan)
    dlo, dhi = p.booster_delay_days
    parts: list[dict[str, np.ndarray]] = []
    for j in range(1, p.max_post_induction_sessions + 1):
        # draws for every patient at every step keep the streams aligned whatever happens
        u_stop, delay, u_rapa = rng.random(n), rng.integers(dlo, dhi + 1, size=n), rng.random(n)
        contact_lag = rng.integers(0, 2, size=n)  # the patient calls on the fade day or the day after
        if j > 1:
            on &= u_stop >= p.maintenance_stop_prob
        fade = last_day + last_t
        scheduled = last_day + gap
        booster_day = np.ceil(fade) + delay
        next_day = np.minimum(scheduled, booster_day)
        on &= next_day <= followup_end
        if not on.any():
            break
        idx = np.flatnonzero(on)
        faded = fade[idx] < next_day[idx]
        is_booster = booster_day[idx] < scheduled[idx]
        exposed = rapa_assigned[idx] & (j >= rapa_first[idx]) & ~rapa_stopped[idx]
        days = next_day[idx]
        first_exposure = exposed & np.isnan(rapa_start[idx])
        rapa_start[idx[first_exposure]] = days[first_exposure] - 1
        rapa_last[idx[exposed]] = days[exposed]
        rapa_stopped[idx] |= exposed & (u_rapa[idx] < p.rapamycin_stop_prob)
        durability = draw_durability(c, idx, exposed, p, dur_rng)
        draw = draw_session(c.route[idx], c.routes, ind.last_dose_kg[idx], ind.last_dose_mg[idx], c.weight[idx],
                            ind.n_sessions[idx] + j, ind.proneness[idx], p, rng)
        parts.append({
            "patient": idx, "day": days, "phase": np.where(is_booster, BOOSTER, MAINTENANCE),
            "dose_kg": ind.last_dose_kg[idx], "dose_mg": ind.last_dose_mg[idx], "duration": draw.duration,
            "bolus": draw.bolus, "dissociation": draw.dissociation, "completed": draw.completed,
            "level": expit(c.plateau_logit[idx] + p.rapamycin_plateau_logodds * exposed),
            "durability": durability, "rapamycin": exposed,
            "contact_day": np.where(is_booster, np.ceil(fade[idx]) + contact_lag[idx], np.nan),
        })
        new_gap = np.where(faded, np.round(gap[idx] * p.gap_shrink), np.round(gap[idx] * p.gap_growth))
        gap[idx] = np.clip(new_gap, p.min_gap_days, p.max_gap_days).astype(gap.dtype)
        last_day[idx] = days
        last_t[idx] = durability

    keys = ("patient", "day", "phase", "dose_kg", "dose_mg", "duration", "bolus", "dissociation", "completed",
            "level", "durability", "rapamycin", "contact_day")
    empty = {"patient": np.zeros(0, dtype=np.int64), "completed": np.zeros(0, dtype=bool), "rapamycin": np.zeros(0, dtype=bool),
             "phase": np.zeros(0, dtype=np.int64)}
    flat = {k: (np.concatenate([part[k] for part in parts]) if parts else empty.get(k, np.zeros(0))) for k in keys}
    rapa_end = np.where(rapa_stopped, rapa_last, np.nan)
    return PostInduction(
        **flat, followup_end=followup_end, maintenance=maintenance, durability_after_induction=t0,
        median_durability=median, rapamycin_assigned=rapa_assigned, rapamycin_start=rapa_start, rapamycin_end=rapa_end,
    )
