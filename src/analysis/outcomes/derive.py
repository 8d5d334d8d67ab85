"""``derive_outcomes``: from a validated dataset to the per-patient and per-interval tables."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import Dataset
from .courses import CATEGORIES, competing_relapse_table, course_table, course_transition_table
from .definitions import Definitions
from .exposure import course_exposure, session_exposure
from .intervals import interval_table
from .timeline import build_timeline, instrument_scores

__all__ = ["Outcomes", "derive_outcomes"]

_SESSION_COVARIATES_SKIP = {"patient_id", "day"}


@dataclass(frozen=True)
class Outcomes:
    """The derived tables of one instrument.

    Attributes
    ----------
    courses : DataFrame
        One row per analysed patient (a baseline above 0 was found). The patient
        covariates keep the dataset's dtypes (``sex`` a pandas ``category`` with every
        allowed value as a category: :class:`~analysis.Dataset`); ``instrument`` is the
        derivation's instrument name as text.
    relapse : DataFrame
        One row per followed patient with follow-up after induction: relapse after induction
        (the first interval), with ``time``, ``event`` (1 relapse, 0 censored), ``lower`` and
        ``upper`` (interval-censoring bounds; ``upper`` is inf when censored).
    durability : DataFrame
        One row per interval (every session from the end of induction on), numbered from 1.
        Like ``relapse`` and ``relapse_competing`` it carries the session's and the
        patient's covariates in the dataset's dtypes (``route``, ``phase`` and ``sex`` as
        pandas ``category``).
    attrition : DataFrame
        One row per step: ``n_in``, ``n_excluded``, ``n_remaining`` and the reason.
    exclusions : DataFrame
        Which patient left at which step (patient-level; not for rendered reports).
    sessions : DataFrame
        Every session of the dataset with its number within the patient and its adjunct exposure.
    relapse_competing : DataFrame
        The ``relapse`` rows with what ended each follow-up: ``time`` and ``cause``
        (censored, relapse, boosted, stopped, lost; ``docs/outcomes.md``), for
        :func:`analysis.survival.cumulative_incidence` with ``censor="censored"``.
    course_transitions : DataFrame
        The multi-state course of every patient of ``courses`` (induction, response,
        relapse, re-response; non-response, stopped and lost as exits), one row per interval
        in a state, for :func:`analysis.survival.state_occupation`.
    definitions : AppliedDefinitions
        Every parameter used, bound to the instrument (``definitions.instrument``) with the
        remission cut-off applied (``definitions.remission_max_applied``): an
        :class:`analysis.outcomes.AppliedDefinitions` (a :class:`Definitions`). Read
        thresholds from here (``outcomes.definitions.response_pct``);
        :meth:`definitions_dict` is the JSON form (``definitions.json``).
    """

    courses: pd.DataFrame
    relapse: pd.DataFrame
    durability: pd.DataFrame
    attrition: pd.DataFrame
    exclusions: pd.DataFrame
    sessions: pd.DataFrame
    definitions: Definitions = field(default_factory=Definitions)
    relapse_competing: pd.DataFrame = field(default_factory=pd.DataFrame)
    course_transitions: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        d = self.definitions
        if isinstance(d, Mapping):  # the dict of the previous release
            warnings.warn("Outcomes(definitions=<dict>) is deprecated and will be removed in the next release; pass "
                          "an analysis.outcomes.Definitions", DeprecationWarning, stacklevel=3)
            object.__setattr__(self, "definitions", Definitions.from_dict(d))
        elif not isinstance(d, Definitions):
            raise TypeError(f"Outcomes.definitions must be an analysis.outcomes.Definitions, got {type(d).__name__}")

    @property
    def instrument(self) -> str | None:
        """The instrument every outcome is defined on (``definitions.instrument``)."""
        return getattr(self.definitions, "instrument", None)

    def definitions_dict(self) -> dict:
        """The definitions as written to ``definitions.json``: every parameter, the
        instrument and ``remission_max_applied``."""
        return self.definitions.to_dict()

    def write(self, out: str | Path) -> list[Path]:
        """Write courses.csv, relapse.csv, durability.csv, attrition.csv, relapse_competing.csv,
        course_transitions.csv and definitions.json."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in ("courses", "relapse", "durability", "attrition", "relapse_competing", "course_transitions"):
            path = out / f"{name}.csv"
            getattr(self, name).to_csv(path, index=False, lineterminator="\n")
            written.append(path)
        path = out / "definitions.json"
        path.write_text(json.dumps(self.definitions_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
        return written

    def response_summary(self) -> pd.DataFrame:
        """Counts and percentages of the categories and of remission among patients with an endpoint."""
        with_endpoint = self.courses[self.courses["category"].notna()]
        n = len(with_endpoint)
        rows = [(str(c), int((with_endpoint["category"] == c).sum())) for c in CATEGORIES.categories]
        rows.append(("remission", int(with_endpoint["remission"].fillna(False).sum())))
        table = pd.DataFrame(rows, columns=["outcome", "n"])
        table["percent"] = 100.0 * table["n"] / n if n else np.nan
        table["of"] = n
        return table


def derive_outcomes(dataset: Dataset, instrument: str = "PHQ-9", **definitions) -> Outcomes:
    """Derive courses, relapse after induction, per-infusion durability and attrition.

    Parameters
    ----------
    dataset : Dataset
        A validated dataset (:func:`analysis.load_dataset`).
    instrument : str, default "PHQ-9"
        The instrument every outcome is defined on, looked up in the dataset's own registry
        (``dataset.instrument_registry``: built-ins plus its ``instruments.toml``).
    **definitions
        Any parameter of :class:`analysis.outcomes.Definitions` (windows, thresholds,
        relapse rule); unknown names are an error. Defaults follow the field's conventions
        (``docs/outcomes.md``).

    Returns
    -------
    Outcomes
        With ``definitions``, the :class:`~analysis.outcomes.AppliedDefinitions` used (the
        definitions bound to the instrument).

    Examples
    --------
    >>> import analysis
    >>> ds = analysis.load_dataset("data/sample")
    >>> out = analysis.derive_outcomes(ds, "PHQ-9", relapse_confirmations=2)
    >>> out.courses["category"].value_counts().sort_index().to_dict()
    {'non-responder': 112, 'partial': 98, 'responder': 284}
    >>> out.definitions.instrument, out.definitions.remission_max_applied
    ('PHQ-9', 4)
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"derive_outcomes needs an analysis.Dataset, got {type(dataset).__name__}")
    d = Definitions.from_kwargs(**definitions).for_instrument(instrument, registry=dataset.instrument_registry)
    inst = d.instrument_definition

    patients = dataset.patients
    scores = instrument_scores(dataset.assessments, inst.name, d.same_day)
    tl = build_timeline(patients, dataset.sessions, scores)
    course, a_improvement = course_table(tl, d)
    n = tl.n_patients

    exposure = session_exposure(dataset.sessions, dataset.medications)
    exposure_sorted = exposure.iloc[tl.s_row].reset_index(drop=True)
    n_induction = course["n_induction_sessions"].to_numpy()
    in_induction = tl.s_number <= n_induction[tl.s_patient]
    course_flags = course_exposure(exposure_sorted, tl.s_patient, in_induction, n)

    # --- who is analysed at each step ---------------------------------------------------
    has_scores = np.bincount(tl.a_patient, minlength=n) > 0
    steps = [
        ("no sessions", "patient has no sessions", course["n_sessions"].to_numpy() > 0),
        (f"{inst.name} not recorded", f"no {inst.name} assessment at all", has_scores),
        ("no baseline", f"no {inst.name} assessment from {d.baseline_window_days:g} days before the first "
         "session up to its day", course["baseline_score"].notna().to_numpy()),
        ("baseline score 0", "improvement is undefined for a baseline of 0",
         course["baseline_score"].to_numpy(dtype=float) > 0),
    ]
    remaining = np.ones(n, dtype=bool)
    attrition_rows = [("patients in dataset", "patients", n, 0, n, "")]
    excluded_rows = []
    for step, reason, keep in steps:
        out = remaining & ~keep
        excluded_rows.append((patients["patient_id"].to_numpy()[out], step, reason))
        attrition_rows.append((step, "patients", int(remaining.sum()), int(out.sum()), int((remaining & keep).sum()), reason))
        remaining &= keep
    analysed = remaining.copy()

    category = course["category"]
    has_endpoint = category.notna().to_numpy()
    out = analysed & ~has_endpoint
    excluded_rows.append((patients["patient_id"].to_numpy()[out], "no endpoint",
                          "kept in courses; no category or remission"))
    attrition_rows.append(("no endpoint", "patients", int(analysed.sum()), int(out.sum()), int((analysed & has_endpoint).sum()),
                           f"no {inst.name} assessment within {d.endpoint_window_days:g} days after the end of induction "
                           "(kept in courses without a category)"))

    is_responder = (category == "responder").to_numpy()
    is_partial = (category == "partial").to_numpy()
    followed = analysed & (is_responder | (is_partial & d.include_partial_responders))
    loss_pct = np.where(is_responder, d.response_pct, d.partial_response_pct).astype(float)
    not_followed = analysed & has_endpoint & ~followed
    who = "responder or partial responder" if d.include_partial_responders else "responder"
    attrition_rows.append((f"not a {who}", "patients", int((analysed & has_endpoint).sum()), int(not_followed.sum()),
                           int(followed.sum()), "relapse is followed only after response"))

    end_sessions = np.maximum(n_induction, 1)
    intervals, n_without = interval_table(tl, a_improvement, followed, loss_pct, end_sessions, d)
    first = intervals[intervals["interval"] == 1]
    has_first = np.zeros(n, dtype=bool)
    has_first[first["patient"].to_numpy()] = True
    out = followed & ~has_first
    excluded_rows.append((patients["patient_id"].to_numpy()[out], "no follow-up after induction",
                          "no relapse row; later intervals are kept in durability"))
    attrition_rows.append(("no follow-up after induction", "patients", int(followed.sum()), int(out.sum()),
                           int((followed & has_first).sum()),
                           f"no {inst.name} assessment after the end of induction up to the next session"))
    attrition_rows.append(("intervals without follow-up", "intervals", len(intervals) + n_without, n_without,
                           len(intervals), f"no {inst.name} assessment between the session and the next one"))

    # --- tables ----------------------------------------------------------------------------
    covariates = patients.drop(columns=["patient_id"]).reset_index(drop=True)
    courses = pd.concat([course, course_flags, covariates], axis=1)
    front = ["patient_id"] + (["site"] if "site" in courses else [])
    courses = courses[front + [c for c in courses.columns if c not in front]]
    courses.insert(1 + len(front) - 1, "instrument", inst.name)
    courses = courses[analysed].reset_index(drop=True)

    session_cov = dataset.sessions.drop(columns=[c for c in _SESSION_COVARIATES_SKIP if c in dataset.sessions])
    rows = intervals["session_row"].to_numpy()
    durability = pd.concat(
        [
            pd.DataFrame({"patient_id": tl.id_column(intervals["patient"].to_numpy())}),
            intervals.drop(columns=["patient", "session_row"]).reset_index(drop=True),
            pd.DataFrame({"category": category.to_numpy()[intervals["patient"].to_numpy()]}),
            session_cov.iloc[rows].reset_index(drop=True),
            exposure.iloc[rows].reset_index(drop=True),
            covariates.iloc[intervals["patient"].to_numpy()].reset_index(drop=True),
        ],
        axis=1,
    )
    durability["category"] = durability["category"].astype(CATEGORIES)
    relapse = durability[durability["interval"] == 1].drop(columns=["interval"]).reset_index(drop=True)

    attrition = pd.DataFrame(attrition_rows, columns=["step", "unit", "n_in", "n_excluded", "n_remaining", "reason"])
    exclusions = pd.concat(
        [pd.DataFrame({"patient_id": ids, "step": step, "detail": detail}) for ids, step, detail in excluded_rows],
        ignore_index=True,
    )
    sessions = dataset.sessions[["patient_id", "day"]]  # shared with the dataset (copy-on-write)
    number = np.empty(len(tl.s_row), dtype=np.int64)
    number[tl.s_row] = tl.s_number
    sessions["session_number"] = number
    sessions["in_induction"] = np.zeros(len(sessions), dtype=bool)
    sessions.loc[sessions.index[tl.s_row[in_induction]], "in_induction"] = True
    sessions = pd.concat([sessions, exposure], axis=1)

    phase = dataset.sessions["phase"] if "phase" in dataset.sessions else None
    relapse_competing = competing_relapse_table(relapse, intervals, tl, a_improvement, loss_pct, phase, d)
    course_transitions = course_transition_table(course, analysed, intervals, tl, a_improvement, loss_pct, d)

    return Outcomes(courses=courses, relapse=relapse, durability=durability, attrition=attrition,
                    exclusions=exclusions, sessions=sessions, definitions=d, relapse_competing=relapse_competing,
                    course_transitions=course_transitions)
