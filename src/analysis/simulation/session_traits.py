"""What happens within one session: dose equivalence, dissociation, delivery, session weight.

Shared by the induction and the post-induction parts; every function works on arrays of
sessions at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from .parameters import SimulationParameters

__all__ = ["SessionDraw", "draw_session", "iv_equivalent", "route_is"]


@dataclass
class SessionDraw:
    """Session-level values for an array of sessions (NaN where a column does not apply)."""

    equivalent: np.ndarray  # IV-equivalent dose, mg/kg
    dissociation: np.ndarray  # recorded CADSS total (NaN when not recorded)
    completed: np.ndarray
    duration: np.ndarray
    bolus: np.ndarray
    weight: np.ndarray  # effective sessions this session contributes during induction


def route_is(route: np.ndarray, routes: tuple[str, ...], name: str) -> np.ndarray:
    """Boolean array: which route codes (indices into ``routes``) are ``name``."""
    return route == routes.index(name) if name in routes else np.zeros(len(route), dtype=bool)


def iv_equivalent(route: np.ndarray, routes: tuple[str, ...], dose_kg: np.ndarray, dose_mg: np.ndarray,
                  body_kg: np.ndarray, p: SimulationParameters) -> np.ndarray:
    """IV-equivalent dose in mg/kg for each session (``route`` holds codes into ``routes``)."""
    out = np.where(route_is(route, routes, "iv"), dose_kg, np.nan)
    out = np.where(route_is(route, routes, "im"), dose_kg * p.im_equivalence, out)
    out = np.where(route_is(route, routes, "intranasal"), dose_mg * p.intranasal_equiv_per_mg, out)
    out = np.where(route_is(route, routes, "sublingual"), dose_mg * p.sublingual_bioavailability / body_kg, out)
    return out


def draw_session(route: np.ndarray, routes: tuple[str, ...], dose_kg: np.ndarray, dose_mg: np.ndarray, body_kg: np.ndarray,
                 session_number: np.ndarray, proneness: np.ndarray, p: SimulationParameters,
                 rng: np.random.Generator) -> SessionDraw:
    """Draw dissociation, completion, duration and bolus for sessions given their dose.

    CADSS = clip(round(cadss_intercept + cadss_per_mg_per_kg * (dose - 0.5)
    - cadss_tolerance * log(session_number) + proneness + noise), 0, 92); the chance of
    stopping early rises with CADSS; an incomplete IV infusion runs 30-80% of its time.
    """
    m = len(route)
    eq = iv_equivalent(route, routes, dose_kg, dose_mg, body_kg, p)
    cadss = (p.cadss_intercept + p.cadss_per_mg_per_kg * (eq - 0.5) - p.cadss_tolerance * np.log(session_number)
             + proneness + p.cadss_noise_sd * rng.standard_normal(m))
    cadss = np.clip(np.round(cadss), 0, 92)
    incomplete = rng.random(m) < expit(p.incomplete_logodds + p.incomplete_dissociation_logodds * (cadss - p.cadss_intercept) / 10)
    is_iv = route_is(route, routes, "iv")
    duration = np.clip(np.round(p.iv_duration_mean + p.iv_duration_sd * rng.standard_normal(m)), 30, 60)
    cut = rng.uniform(0.3, 0.8, m)
    duration = np.where(incomplete, np.maximum(np.round(duration * cut), 5), duration)
    duration = np.where(is_iv, duration, np.nan)
    lo, hi = p.bolus_fraction_range
    bolus = np.maximum(np.round(rng.uniform(lo, hi, m) * dose_kg * body_kg), 1)
    bolus = np.where(is_iv & (rng.random(m) < p.bolus_probability), bolus, np.nan)
    weight = np.where(incomplete, p.incomplete_session_weight, 1.0) * np.exp(
        p.dose_effect * (eq - 0.5) + p.dissociation_effect * (cadss - p.cadss_intercept) / 10)
    recorded = np.where(rng.random(m) < p.dissociation_missing_prob, np.nan, cadss)
    return SessionDraw(eq, recorded, ~incomplete, duration, bolus, weight)
