"""The outcome definitions: every threshold and window, with the field's convention as default.

Each field is documented in ``docs/outcomes.md`` with its source; papers cite these, so a
derivation always records the full set it used (``Outcomes.definitions``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

__all__ = ["Definitions", "SAME_DAY_RULES"]

SAME_DAY_RULES = ("mean", "first", "last", "max")


@dataclass(frozen=True)
class Definitions:
    """Parameters of the outcome derivations (all times in study days, all percentages of baseline).

    Parameters
    ----------
    baseline_window_days : float, default 14
        Baseline is the last assessment on a day in [first session day - window, first
        session day]; an assessment on the first session day was taken before it.
    induction_sessions : int, default 6
        Induction is the first this-many sessions ...
    induction_window_days : float, default 35
        ... given within this many days of the first session (fewer if the patient had fewer).
    endpoint_window_days : float, default 14
        The endpoint is the first assessment after the end-of-induction day and at most
        this many days after it.
    response_pct : float, default 50
        Responder: improvement >= this at the endpoint (Murrough 2013; Phillips 2019).
    partial_response_pct : float, default 25
        Partial responder: improvement >= this and below ``response_pct``.
    remission_max : float or None, default None
        Remission: endpoint score at or below this; ``None`` takes the instrument's cut-off
        (PHQ-9 <= 4, MADRS <= 10, ...). Esketamine trials used MADRS <= 12.
    futility_after_session : int, default 5
        Early futility is judged at the first assessment after this session and not after
        the next one ...
    futility_pct : float, default 25
        ... and is met when improvement there is below this.
    relapse_threshold_score : float or None, default None
        ``None``: relapse is loss of response (improvement below ``response_pct``). A number:
        relapse is a score at or above it (SUSTAIN-1 used MADRS >= 22).
    relapse_confirmations : int, default 2
        Consecutive qualifying assessments within an interval's follow-up needed to confirm
        a relapse (SUSTAIN-1: two); the relapse day is the first of them.
    include_partial_responders : bool, default False
        Also follow partial responders; for them relapse is loss of benefit (improvement
        below ``partial_response_pct``).
    same_day : {"mean", "first", "last", "max"}, default "mean"
        How several assessments of one instrument on one day are combined before anything
        else ("first"/"last" in file order).

    Examples
    --------
    >>> from analysis.outcomes import Definitions
    >>> Definitions(relapse_confirmations=1).relapse_confirmations
    1
    """

    baseline_window_days: float = 14
    induction_sessions: int = 6
    induction_window_days: float = 35
    endpoint_window_days: float = 14
    response_pct: float = 50
    partial_response_pct: float = 25
    remission_max: float | None = None
    futility_after_session: int = 5
    futility_pct: float = 25
    relapse_threshold_score: float | None = None
    relapse_confirmations: int = 2
    include_partial_responders: bool = False
    same_day: str = "mean"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "same_day":
                if value not in SAME_DAY_RULES:
                    raise ValueError(f"same_day must be one of {SAME_DAY_RULES}, got {value!r}")
            elif f.name == "include_partial_responders":
                if not isinstance(value, bool):
                    raise TypeError(f"include_partial_responders must be True or False, got {value!r}")
            elif value is None and f.name in ("remission_max", "relapse_threshold_score"):
                continue
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise TypeError(f"{f.name} must be a finite number, got {value!r}")
            elif value < 0:
                raise ValueError(f"{f.name} must not be negative, got {value!r}")
        for name in ("induction_sessions", "futility_after_session", "relapse_confirmations"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if not self.partial_response_pct < self.response_pct:
            raise ValueError(
                f"partial_response_pct ({self.partial_response_pct}) must be below response_pct ({self.response_pct})"
            )
        if self.futility_after_session > self.induction_sessions:
            raise ValueError("futility_after_session must not exceed induction_sessions")

    @classmethod
    def from_kwargs(cls, **kwargs) -> Definitions:
        """Build from keyword arguments, naming any unknown one and listing the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown definition(s) {unknown}; known: {sorted(known)}")
        return cls(**kwargs)

    def to_dict(self) -> dict:
        return asdict(self)
