"""Turning the simulated arrays into the tables of data format v1 (and latent companions).

Columns come in a fixed order, rows are sorted by patient then day, and values are
rounded (whole study days, doses to 2 decimals, weights to 1 decimal) so that the same
seed always writes the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..drugs import DRUG_CLASSES
from .assessments import INSTRUMENTS, Assessments, SessionLookup
from .cohort import SEX_NAMES, Cohort
from .induction import Induction
from .maintenance import PostInduction
from .parameters import SimulationParameters

__all__ = ["AllSessions", "combine_sessions", "build_tables", "patient_ids", "PHASE_NAMES"]

PHASE_NAMES = ("induction", "maintenance", "booster")

PATIENT_COLUMNS = ["patient_id", "site", "age", "sex", "weight_kg", "diagnosis", "prior_treatment_failures", "comorbid_ptsd"]
SESSION_COLUMNS = ["patient_id", "day", "route", "dose_mg_per_kg", "dose_mg", "duration_min", "bolus_mg",
                   "dissociation", "completed", "phase"]
ASSESSMENT_COLUMNS = ["patient_id", "day", "instrument", "score"]
MEDICATION_COLUMNS = ["patient_id", "drug", "start_day", "end_day", "drug_class", "dose_mg", "timing"]


@dataclass
class AllSessions:
    """Every session of every patient, sorted by patient and day (flat arrays)."""

    patient: np.ndarray
    day: np.ndarray
    phase: np.ndarray
    dose_kg: np.ndarray
    dose_mg: np.ndarray
    duration: np.ndarray
    bolus: np.ndarray
    dissociation: np.ndarray
    completed: np.ndarray
    level: np.ndarray
    durability: np.ndarray  # inf for induction sessions before the last
    rapamycin: np.ndarray
    number: np.ndarray  # 1-based session number within the patient

    def lookup(self, residual_fraction: float) -> SessionLookup:
        return SessionLookup(self.patient, self.day, self.level, self.day + self.durability, residual_fraction)


def combine_sessions(ind: Induction, post: PostInduction) -> AllSessions:
    """Induction and post-induction sessions in one patient-and-day order."""
    n, k = ind.given.shape
    mask = ind.given.ravel()
    last = np.zeros((n, k), dtype=bool)
    last[np.arange(n), ind.n_sessions - 1] = True
    ind_durability = np.where(last, post.durability_after_induction[:, None], np.inf).ravel()[mask]
    patient = np.concatenate([np.repeat(np.arange(n), k)[mask], post.patient]).astype(np.int64)
    day = np.concatenate([ind.day.ravel()[mask], post.day]).astype(np.int64)
    order = np.lexsort((day, patient))

    def cat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.concatenate([a.ravel()[mask], b])[order]

    patient, day = patient[order], day[order]
    starts = np.flatnonzero(np.r_[True, patient[1:] != patient[:-1]])
    counts = np.diff(np.r_[starts, len(patient)])
    number = np.arange(len(patient)) - np.repeat(starts, counts) + 1
    return AllSessions(
        patient=patient, day=day,
        phase=cat(np.zeros((n, k), dtype=np.int64), post.phase.astype(np.int64)),
        dose_kg=cat(ind.dose_kg, post.dose_kg), dose_mg=cat(ind.dose_mg, post.dose_mg),
        duration=cat(ind.duration, post.duration), bolus=cat(ind.bolus, post.bolus),
        dissociation=cat(ind.dissociation, post.dissociation), completed=cat(ind.completed, post.completed.astype(bool)),
        level=cat(ind.level, post.level), durability=np.concatenate([ind_durability, post.durability])[order],
        rapamycin=cat(np.zeros((n, k), dtype=bool), post.rapamycin.astype(bool)), number=number,
    )


def patient_ids(n: int) -> np.ndarray:
    """Pseudonymous ids ``P0001``... (at least four digits, zero-padded so they sort in order)."""
    width = max(4, len(str(n)))
    return np.array([f"P{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _str(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype="str")


def _whole(values: np.ndarray) -> pd.Series:
    """Whole numbers with missing values (pandas Int64), so CSV shows ``40`` not ``40.0``."""
    values = np.asarray(values, dtype=float)
    return pd.Series(pd.array(np.where(np.isnan(values), 0, values).astype(np.int64), dtype="Int64")).mask(np.isnan(values))


def _names(names: tuple[str, ...] | list[str], codes: np.ndarray) -> pd.Series:
    """Text column from integer codes into ``names``."""
    return pd.Series(np.asarray(names, dtype=object)[codes], dtype="str")


def build_tables(c: Cohort, post: PostInduction, s: AllSessions, a: Assessments,
                 p: SimulationParameters) -> dict[str, pd.DataFrame]:
    """The four tables of format v1."""
    ids = patient_ids(c.n)
    patients = pd.DataFrame({
        "patient_id": _str(ids),
        "site": _names(c.site_names, c.site),
        "age": c.age.astype(np.int64),
        "sex": _names(SEX_NAMES, c.sex),
        "weight_kg": np.round(c.weight, 1),
        "diagnosis": _names(("MDD", "bipolar depression"), c.bipolar.astype(np.int64)),
        "prior_treatment_failures": c.failures.astype(np.int64),
        "comorbid_ptsd": c.ptsd.astype(bool),
    }, columns=PATIENT_COLUMNS)
    sessions = pd.DataFrame({
        "patient_id": _str(ids[s.patient]),
        "day": s.day,
        "route": _names(c.routes, c.route[s.patient]),
        "dose_mg_per_kg": np.round(s.dose_kg, 2),
        "dose_mg": np.round(s.dose_mg, 2),
        "duration_min": _whole(s.duration),
        "bolus_mg": _whole(s.bolus),
        "dissociation": _whole(s.dissociation),
        "completed": s.completed.astype(bool),
        "phase": _names(PHASE_NAMES, s.phase),
    }, columns=SESSION_COLUMNS)
    assessments = pd.DataFrame({
        "patient_id": _str(ids[a.patient]),
        "day": a.day,
        "instrument": _names(INSTRUMENTS, a.instrument),
        "score": a.score,
    }, columns=ASSESSMENT_COLUMNS)
    return {"patients": patients, "sessions": sessions, "assessments": assessments,
            "medications": _medications(c, post, ids, p)}


def _medications(c: Cohort, post: PostInduction, ids: np.ndarray, p: SimulationParameters) -> pd.DataFrame:
    pid = np.arange(c.n)
    benzo = c.benzo_drug >= 0
    rapa = ~np.isnan(post.rapamycin_start)
    names = list(c.benzo_names) + ["lamotrigine", "rapamycin"]
    timing_names = ["daily", "pre-session"]
    lamo_code, rapa_code = len(c.benzo_names), len(c.benzo_names) + 1
    patient = np.concatenate([pid[benzo], pid[c.lamotrigine], pid[rapa]])
    drug = np.concatenate([c.benzo_drug[benzo], np.full(c.lamotrigine.sum(), lamo_code), np.full(rapa.sum(), rapa_code)])
    start = np.concatenate([c.benzo_start[benzo], c.lamotrigine_start[c.lamotrigine], post.rapamycin_start[rapa]])
    end = np.concatenate([np.full(benzo.sum() + c.lamotrigine.sum(), np.nan), post.rapamycin_end[rapa]])
    dose = np.concatenate([c.benzo_dose[benzo], c.lamotrigine_dose[c.lamotrigine], np.full(rapa.sum(), p.rapamycin_dose_mg)])
    timing = (drug == rapa_code).astype(np.int64)
    order = np.lexsort((drug, start, patient))
    drug = drug[order]
    return pd.DataFrame({
        "patient_id": _str(ids[patient[order]]),
        "drug": _names(names, drug),
        "start_day": start[order].astype(np.int64),
        "end_day": _whole(end[order]),
        "drug_class": _names([DRUG_CLASSES[d] for d in names], drug),
        "dose_mg": np.round(dose[order], 2),
        "timing": _names(timing_names, timing[order]),
    }, columns=MEDICATION_COLUMNS)
