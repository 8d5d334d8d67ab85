"""The induction course: session days, dose titration, dissociation, dropout and improvement.

Arrays are ``(n, K)`` for ``K = n_induction_sessions``; the loop runs over the K session
positions (six by default), each step vectorised over all patients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cohort import Cohort
from .parameters import SimulationParameters
from .session_traits import draw_session, route_is

__all__ = ["Induction", "simulate_induction"]


@dataclass
class Induction:
    """Induction sessions as ``(n, K)`` arrays; ``given`` marks the sessions that took place."""

    given: np.ndarray
    day: np.ndarray
    dose_kg: np.ndarray
    dose_mg: np.ndarray
    duration: np.ndarray
    bolus: np.ndarray
    dissociation: np.ndarray
    completed: np.ndarray
    level: np.ndarray  # improvement level after the session
    proneness: np.ndarray  # (n,) patient dissociation proneness
    n_sessions: np.ndarray  # (n,)
    end_day: np.ndarray  # (n,) day of the last induction session
    end_level: np.ndarray  # (n,) latent improvement at the end of induction
    last_dose_kg: np.ndarray  # (n,)
    last_dose_mg: np.ndarray  # (n,)
    stopped_no_benefit: np.ndarray  # (n,) stopped early for lack of benefit
    dropped_out: np.ndarray  # (n,) left for reasons unrelated to outcome (no maintenance)
    perceived_end: np.ndarray  # (n,) clinician-perceived improvement at the end of induction


def simulate_induction(c: Cohort, p: SimulationParameters, rng: np.random.Generator) -> Induction:
    """Simulate every patient's induction course.

    Improvement after k effective sessions is ``P_i * (1 - exp(-k / tau_i))``; a session
    counts ``weight`` effective sessions (1, or ``incomplete_session_weight`` when stopped
    early, times the null-by-default dose and dissociation effects). Before the
    ``titration_start_session``-th and later sessions a slow responder (perceived
    improvement below ``titration_threshold``) gets a higher dose; before the
    ``no_benefit_session``-th session a patient without benefit may stop.
    """
    n, k_max = c.n, p.n_induction_sessions
    gaps = np.asarray(p.induction_gap_days)[rng.choice(len(p.induction_gap_days), size=(n, k_max), p=p.induction_gap_probabilities)]
    gaps[:, 0] = 0
    day = np.cumsum(gaps, axis=1)
    shape = (n, k_max)
    given = np.zeros(shape, dtype=bool)
    dose_kg = np.full(shape, np.nan)
    dose_mg = np.full(shape, np.nan)
    duration = np.full(shape, np.nan)
    bolus = np.full(shape, np.nan)
    dissociation = np.full(shape, np.nan)
    completed = np.ones(shape, dtype=bool)
    level = np.zeros(shape)

    weight_based = route_is(c.route, c.routes, "iv") | route_is(c.route, c.routes, "im")
    nasal = route_is(c.route, c.routes, "intranasal")
    lingual = route_is(c.route, c.routes, "sublingual")
    start = np.asarray(p.iv_start_doses)[rng.choice(len(p.iv_start_doses), size=n, p=p.iv_start_dose_probabilities)]
    step = np.asarray(p.titration_steps)[rng.integers(0, len(p.titration_steps), size=n)]
    cur_kg = np.where(weight_based, start, np.nan)
    cur_mg = np.where(nasal, np.where(rng.random(n) < p.intranasal_84_start_fraction, 84.0, 56.0), np.nan)
    cur_mg = np.where(lingual, np.asarray(p.sublingual_start_doses)[rng.integers(0, len(p.sublingual_start_doses), size=n)], cur_mg)
    proneness = p.cadss_patient_sd * rng.standard_normal(n)

    active = np.ones(n, dtype=bool)
    keff = np.zeros(n)
    current = np.zeros(n)  # latent improvement before the next session
    stop_after = np.zeros(n, dtype=bool)
    no_benefit = np.zeros(n, dtype=bool)
    dropped = np.zeros(n, dtype=bool)
    for k in range(k_max):
        session = k + 1
        perceived = current + p.clinician_noise_sd * rng.standard_normal(n)
        if session >= p.titration_start_session:
            slow = active & (perceived < p.titration_threshold)
            cur_kg = np.where(slow, np.minimum(np.round(cur_kg + step, 2), p.max_dose_mg_per_kg), cur_kg)
            cur_mg = np.where(slow & nasal, 84.0, cur_mg)
            cur_mg = np.where(slow & lingual, np.minimum(cur_mg + p.sublingual_step_mg, p.sublingual_max_mg), cur_mg)
        u_stop, u_half = rng.random(n), rng.random(n)
        if session == p.no_benefit_session and session >= 2:
            no_benefit = active & (perceived < p.no_benefit_threshold) & (u_stop < p.no_benefit_stop_prob)
            before = no_benefit & (u_half < 0.5)
            active = active & ~before
            stop_after = no_benefit & ~before
        draw = draw_session(c.route, c.routes, cur_kg, cur_mg, c.weight, np.full(n, session), proneness, p, rng)
        given[:, k] = active
        dose_kg[:, k], dose_mg[:, k] = cur_kg, cur_mg
        duration[:, k], bolus[:, k] = draw.duration, draw.bolus
        dissociation[:, k], completed[:, k] = draw.dissociation, draw.completed
        keff = keff + np.where(active, draw.weight, 0.0)
        current = c.plateau * (1 - np.exp(-keff / c.tau))
        level[:, k] = current
        dropout = active & (rng.random(n) < p.dropout_prob) & (session < k_max)
        dropped |= dropout
        active = active & ~dropout & ~stop_after
        stop_after = np.zeros(n, dtype=bool)

    n_sessions = given.sum(axis=1)
    last = n_sessions - 1
    rows = np.arange(n)
    perceived_end = current + p.clinician_noise_sd * rng.standard_normal(n)
    return Induction(
        given=given, day=day, dose_kg=dose_kg, dose_mg=dose_mg, duration=duration, bolus=bolus,
        dissociation=dissociation, completed=completed, level=level, proneness=proneness,
        n_sessions=n_sessions, end_day=day[rows, last], end_level=level[rows, last],
        last_dose_kg=dose_kg[rows, last], last_dose_mg=dose_mg[rows, last], stopped_no_benefit=no_benefit,
        perceived_end=perceived_end, dropped_out=dropped,
    )
