"""The outcome definitions: every threshold and window, with the field's convention as default.

Each field is documented in ``docs/outcomes.md`` with its source; papers cite these, so a
derivation always records the full set it used (``Outcomes.definitions``: an
:class:`AppliedDefinitions`, the definitions bound to the instrument, with the remission
cut-off they applied).
Everything downstream of :func:`analysis.derive_outcomes` reads its thresholds from that
typed object, never from a copy with defaults of its own.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

from ..instruments import Instrument, InstrumentRegistry, default_registry, get_instrument, normalise_instrument_name

__all__ = ["AppliedDefinitions", "Definitions", "PARAMETERS", "SAME_DAY_RULES", "definitions_of"]

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

    The fields are the parameters a user sets (``derive_outcomes(**definitions)``, one
    command-line option each). Bound to an instrument (:meth:`for_instrument`) they become
    the :class:`AppliedDefinitions` that derived outcomes carry.

    Examples
    --------
    >>> from analysis.outcomes import Definitions
    >>> Definitions(relapse_confirmations=1).relapse_confirmations
    1
    >>> d = Definitions(relapse_confirmations=1).for_instrument("madrs")
    >>> d.instrument, d.relapse_confirmations, d.remission_max, d.remission_max_applied
    ('MADRS', 1, None, 10)
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
        for name in PARAMETERS:
            value = getattr(self, name)
            if name == "same_day":
                if value not in SAME_DAY_RULES:
                    raise ValueError(f"same_day must be one of {SAME_DAY_RULES}, got {value!r}")
            elif name == "include_partial_responders":
                if not isinstance(value, bool):
                    raise TypeError(f"include_partial_responders must be True or False, got {value!r}")
            elif value is None and name in ("remission_max", "relapse_threshold_score"):
                continue
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise TypeError(f"{name} must be a finite number, got {value!r}")
            elif value < 0:
                raise ValueError(f"{name} must not be negative, got {value!r}")
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
        unknown = sorted(set(kwargs) - set(PARAMETERS))
        if unknown:
            raise TypeError(f"unknown definition(s) {unknown}; known: {sorted(PARAMETERS)}")
        return Definitions(**kwargs)

    @staticmethod
    def from_dict(values: Mapping, registry: InstrumentRegistry | None = None) -> Definitions:
        """Read back :meth:`to_dict` (``definitions.json``); keys left out take their defaults.

        With an ``instrument`` the result is bound to it (:class:`AppliedDefinitions`), looked
        up in ``registry`` (a dataset's ``instrument_registry``; default the process-wide
        registry); ``remission_max_applied``, if present, must be the cut-off that gives.

        Examples
        --------
        >>> d = Definitions(relapse_confirmations=1).for_instrument("PHQ-9")
        >>> Definitions.from_dict(d.to_dict()) == d
        True
        >>> Definitions.from_dict({"response_pct": 40})  # doctest: +ELLIPSIS
        Definitions(..., response_pct=40, ...)
        """
        values = dict(values)
        applied = values.pop("remission_max_applied", None)
        instrument = values.pop("instrument", None)
        d = Definitions.from_kwargs(**values)
        if instrument is None:
            if applied is not None:
                raise ValueError("remission_max_applied is given without the instrument it applies to")
            return d
        d = d.for_instrument(instrument, registry=registry)
        if applied is not None and applied != d.remission_max_applied:
            raise ValueError(f"remission_max_applied {applied!r} is not the cut-off these definitions give "
                             f"({d.remission_max_applied!r} for {d.instrument})")
        return d

    def parameters(self) -> Definitions:
        """The parameters alone (a plain :class:`Definitions`, not bound to an instrument)."""
        return Definitions(**{name: getattr(self, name) for name in PARAMETERS})

    def for_instrument(self, instrument: str | Instrument, *, registry: InstrumentRegistry | None = None
                       ) -> AppliedDefinitions:
        """These definitions bound to ``instrument``: its canonical name, the remission
        cut-off resolved (``remission_max`` if given, else the instrument's), and
        ``remission_max`` checked against the instrument's range.

        ``instrument`` is a name, looked up in ``registry`` (the dataset's
        ``instrument_registry``; default the process-wide registry), or an
        :class:`~analysis.Instrument` definition itself."""
        if isinstance(instrument, str) and registry is not None:
            instrument = registry.get(instrument)
        return AppliedDefinitions(**{name: getattr(self, name) for name in PARAMETERS}, instrument=instrument)

    def check_instrument(self, instrument: str | None, *, where: str = "outcomes",
                         registry: InstrumentRegistry | None = None) -> str:
        """The instrument to use with outcomes derived under these definitions.

        ``None`` gives the outcomes' own instrument; a name that is not the outcomes'
        instrument is an error naming both (the scores of one instrument must never be
        read against the baselines and cut-offs of another). Names are resolved through the
        outcomes' own instrument definition first (its name and aliases), then through
        ``registry`` (a dataset's ``instrument_registry``; default the process-wide one).

        Examples
        --------
        >>> d = Definitions().for_instrument("MADRS")
        >>> d.check_instrument(None), d.check_instrument("madrs")
        ('MADRS', 'MADRS')
        >>> d.check_instrument("PHQ-9", where="response_table()")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: response_table(): instrument='PHQ-9' but the outcomes were derived on 'MADRS'; ...
        """
        own = getattr(self, "instrument", None)
        if instrument is None:
            if own is None:
                raise ValueError(f"{where}: the outcomes do not record their instrument; pass instrument=")
            return own
        applied = getattr(self, "instrument_definition", None)
        if applied is not None and normalise_instrument_name(instrument) in applied.lookup_keys():
            return applied.name
        found = (registry if registry is not None else default_registry()).find(instrument)
        if found is None and own is None:
            get_instrument(instrument, registry)  # raises KeyError naming the known instruments
        name = found.name if found is not None else str(instrument)
        if own is not None and name != own:
            raise ValueError(
                f"{where}: instrument={name!r} but the outcomes were derived on {own!r}; leave instrument out (or "
                f"pass {own!r}), or derive the outcomes on {name!r}: analysis.derive_outcomes(dataset, {name!r})")
        return name

    def to_dict(self) -> dict:
        """Every field, for JSON (``definitions.json``): the parameters and, once bound,
        ``instrument`` and ``remission_max_applied``."""
        return asdict(self)

    # -- dict access of the previous release (``outcomes.definitions["response_pct"]``) ------
    def _deprecated_access(self, key) -> None:
        warnings.warn(f"outcomes.definitions[{key!r}] (dict access) is deprecated and will be removed in the next "
                      f"release; outcomes.definitions is a typed Definitions: use outcomes.definitions.{key}",
                      DeprecationWarning, stacklevel=3)

    def _names(self) -> set[str]:
        return {f.name for f in fields(self)}

    def __getitem__(self, key: str):
        self._deprecated_access(key)
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        """Deprecated dict access; use the attribute."""
        self._deprecated_access(key)
        return getattr(self, key) if key in self._names() else default

    def __contains__(self, key) -> bool:
        self._deprecated_access(key)
        return key in self._names()


@dataclass(frozen=True)
class AppliedDefinitions(Definitions):
    """:class:`Definitions` bound to the instrument they are applied to: what
    :func:`analysis.derive_outcomes` used and what ``Outcomes.definitions`` is.

    Made by :meth:`Definitions.for_instrument`; readers of derived outcomes take every
    threshold from here (``outcomes.definitions.response_pct``), never from a default of
    their own.

    Attributes
    ----------
    instrument : str
        Canonical name of the instrument every outcome is defined on (an alias such as
        ``"phq9"`` is resolved). Pass a name (looked up in the process-wide registry) or an
        :class:`~analysis.Instrument` (a dataset's own definition:
        ``Definitions().for_instrument(name, registry=dataset.instrument_registry)``).
    remission_max_applied : float or None
        The remission cut-off in force: ``remission_max`` if given, else the instrument's
        (PHQ-9: 4, MADRS: 10); ``None`` for an instrument without a remission convention.
    instrument_definition : Instrument
        The definition applied (not a field: not compared, not written to JSON).

    Examples
    --------
    >>> from analysis.outcomes import Definitions
    >>> d = Definitions(remission_max=12).for_instrument("MADRS")
    >>> d.instrument, d.remission_max_applied, isinstance(d, Definitions)
    ('MADRS', 12, True)
    >>> d.parameters() == Definitions(remission_max=12)
    True
    """

    instrument: str = field(kw_only=True)
    remission_max_applied: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.instrument, Instrument):
            inst = self.instrument
        elif isinstance(self.instrument, str):
            inst = get_instrument(self.instrument)
        else:
            raise TypeError(f"instrument must be an instrument name such as 'PHQ-9', got {self.instrument!r}")
        object.__setattr__(self, "instrument_definition", inst)
        if self.remission_max is not None and not (inst.min_score <= self.remission_max <= inst.max_score):
            raise ValueError(f"remission_max {self.remission_max} lies outside the {inst.name} range")
        object.__setattr__(self, "instrument", inst.name)
        object.__setattr__(self, "remission_max_applied",
                           self.remission_max if self.remission_max is not None else inst.remission_max)


#: the parameters a user sets (``derive_outcomes(**definitions)``), in order: the fields of
#: :class:`Definitions`
PARAMETERS = tuple(f.name for f in fields(Definitions))


def definitions_of(outcomes) -> Definitions:
    """The :class:`Definitions` of derived outcomes.

    An :class:`analysis.Outcomes` carries them typed (:class:`AppliedDefinitions`). For
    another object with the derived tables (``SimpleNamespace(courses=..., relapse=...,
    durability=...)`` read back from files) its ``definitions`` may be the dict of
    ``definitions.json`` (:meth:`Definitions.from_dict`); without any, the package
    defaults (``Definitions()``), which are what :func:`analysis.derive_outcomes` uses.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> definitions_of(SimpleNamespace(definitions={"relapse_confirmations": 1})).relapse_confirmations
    1
    >>> definitions_of(SimpleNamespace()).relapse_confirmations
    2
    """
    d = getattr(outcomes, "definitions", None)
    if isinstance(d, Definitions):
        return d
    if d is None:
        return Definitions()
    if isinstance(d, Mapping):
        return Definitions.from_dict(d)
    raise TypeError(f"outcomes.definitions must be an analysis.outcomes.Definitions, got {type(d).__name__}")
