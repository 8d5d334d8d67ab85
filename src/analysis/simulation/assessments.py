"""Assessment days and scores: PHQ-9 (baseline, pre-session, endpoint, weekly), GAD-7 at
baseline, MADRS at baseline and end of induction at MADRS sites.

A score reflects the latent improvement at its day, which depends only on the sessions
strictly before that day (an assessment on a session day is taken before the session).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cohort import Cohort
from .induction import Induction
from .maintenance import PostInduction
from .parameters import SimulationParameters

__all__ = ["SessionLookup", "Assessments", "simulate_assessments", "INSTRUMENTS"]

#: instrument codes used in the arrays, in the order rows of one day are sorted
INSTRUMENTS = ("PHQ-9", "GAD-7", "MADRS")
PHQ9, GAD7, MADRS = 0, 1, 2
_STRIDE = np.int64(1 << 22)
_OFFSET = np.int64(1 << 21)


def _key(patient: np.ndarray, day: np.ndarray) -> np.ndarray:
    return patient.astype(np.int64) * _STRIDE + (np.asarray(day).astype(np.int64) + _OFFSET)


@dataclass
class SessionLookup:
    """All sessions sorted by patient and day, with each one's improvement level and fade day."""

    patient: np.ndarray
    day: np.ndarray
    level: np.ndarray
    fade_day: np.ndarray  # day + T (inf for induction sessions before the last)
    residual_fraction: float

    def improvement_at(self, patient: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Latent improvement fraction of each (patient, day): that of the last session strictly
        before the day, or its residual once its benefit has faded; 0 before the first session.

        Examples
        --------
        >>> import numpy as np
        >>> from analysis.simulation.assessments import SessionLookup
        >>> s = SessionLookup(np.array([0, 0]), np.array([0, 3]), np.array([0.3, 0.6]),
        ...                   np.array([np.inf, 10.5]), 0.2)
        >>> s.improvement_at(np.array([0, 0, 0, 0, 0]), np.array([0, 3, 4, 10, 11])).round(2).tolist()
        [0.0, 0.3, 0.6, 0.6, 0.12]
        """
        keys = _key(self.patient, self.day)
        idx = np.searchsorted(keys, _key(patient, day), side="left") - 1
        safe = np.maximum(idx, 0)
        valid = (idx >= 0) & (self.patient[safe] == patient) if len(keys) else np.zeros(len(patient), dtype=bool)
        level = self.level[safe] if len(keys) else np.zeros(len(patient))
        faded = day >= (self.fade_day[safe] if len(keys) else np.inf)
        return np.where(valid, np.where(faded, self.residual_fraction * level, level), 0.0)


@dataclass
class Assessments:
    patient: np.ndarray
    day: np.ndarray
    instrument: np.ndarray  # codes into INSTRUMENTS
    score: np.ndarray
    improvement: np.ndarray  # latent improvement at the assessment


def simulate_assessments(c: Cohort, ind: Induction, post: PostInduction, look: SessionLookup,
                         session_patient: np.ndarray, session_day: np.ndarray, p: SimulationParameters,
                         rng: np.random.Generator, score_rng: np.random.Generator) -> Assessments:
    """Draw assessment days (with missed assessments) and their scores."""
    n = c.n
    pid = np.arange(n)
    # baseline, endpoint and weekly days
    base_day = np.where(rng.random(n) < p.baseline_same_day_prob, 0, -rng.integers(1, p.baseline_max_days_before + 1, size=n))
    base_ok = rng.random(n) >= p.baseline_missing_prob
    elo, ehi = p.endpoint_delay_days
    end_day = ind.end_day + rng.integers(elo, ehi + 1, size=n)
    end_ok = rng.random(n) < p.endpoint_prob
    sess_ok = rng.random(len(session_patient)) < p.session_assessment_prob
    weeks = np.maximum((post.followup_end - ind.end_day) // 7, 0)
    w_patient = np.repeat(pid, weeks)
    starts = np.cumsum(weeks) - weeks
    w_number = np.arange(len(w_patient)) - np.repeat(starts, weeks) + 1
    jit = p.weekly_jitter_days
    w_day = ind.end_day[w_patient] + 7 * w_number + rng.integers(-jit, jit + 1, size=len(w_patient))
    w_ok = (rng.random(len(w_patient)) < p.weekly_assessment_prob) & (w_day <= post.followup_end[w_patient])
    # a PHQ-9 when the patient reports fading benefit and asks for a booster
    c_ok = ~np.isnan(post.contact_day) & (rng.random(len(post.contact_day)) < p.booster_request_assessment_prob)
    c_patient, c_day = post.patient[c_ok], post.contact_day[c_ok]

    # PHQ-9 candidates with a priority; one PHQ-9 per patient and day (the best kind wins)
    patient = np.concatenate([pid[base_ok], pid[end_ok], session_patient[sess_ok], c_patient, w_patient[w_ok]])
    day = np.concatenate([base_day[base_ok], end_day[end_ok], session_day[sess_ok], c_day, w_day[w_ok]]).astype(np.int64)
    priority = np.concatenate([np.zeros(base_ok.sum(), dtype=np.int64), np.ones(end_ok.sum(), dtype=np.int64),
                               np.full(sess_ok.sum(), 2), np.full(len(c_patient), 3), np.full(w_ok.sum(), 3)])
    order = np.argsort(_key(patient, day) * 4 + priority.astype(np.int64), kind="stable")
    patient, day = patient[order], day[order]
    keep = np.ones(len(patient), dtype=bool)
    keep[1:] = (patient[1:] != patient[:-1]) | (day[1:] != day[:-1])
    phq_patient, phq_day = patient[keep], day[keep]

    madrs = c.madrs_site & (rng.random(n) < p.madrs_prob)
    madrs_end = c.madrs_site & (rng.random(n) < p.madrs_prob)
    patient = np.concatenate([phq_patient, pid, pid[madrs], pid[madrs_end]])
    day = np.concatenate([phq_day, base_day, base_day[madrs], end_day[madrs_end]]).astype(np.int64)
    instrument = np.concatenate([np.full(len(phq_patient), PHQ9), np.full(n, GAD7), np.full(madrs.sum(), MADRS),
                                 np.full(madrs_end.sum(), MADRS)])
    order = np.argsort(_key(patient, day) * 4 + instrument, kind="stable")
    patient, day, instrument = patient[order], day[order], instrument[order]

    improvement = look.improvement_at(patient, day)
    noise = score_rng.standard_normal(len(patient))
    phq = np.clip(np.round(c.phq9_latent[patient] * (1 - improvement) + p.phq9_noise_sd * noise), 0, 27)
    mad = np.clip(np.round(c.madrs_latent[patient] * (1 - improvement) + p.madrs_noise_sd * noise), 0, 60)
    score = np.where(instrument == PHQ9, phq, np.where(instrument == MADRS, mad, c.gad7[patient]))
    return Assessments(patient, day, instrument, score.astype(np.int64), improvement)
