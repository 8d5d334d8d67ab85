"""Registry of mood and symptom instruments: score ranges, severity bands, remission cut-offs.

Every outcome in this package is defined per instrument, because instruments disagree: the
same patients can remit by MADRS and not by PHQ-9. The built-in instruments follow the
conventions in ``docs/instruments.md`` (sources named there). Users add their own with
:func:`register_instrument`, or with an ``instruments.toml`` file beside their data (see
:func:`load_instrument_file`), without editing the package.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Instrument",
    "get_instrument",
    "register_instrument",
    "unregister_instrument",
    "instrument_names",
    "load_instrument_file",
    "normalise_instrument_name",
]


@dataclass(frozen=True)
class Instrument:
    """A scored questionnaire or rating scale.

    Parameters
    ----------
    name : str
        Canonical name, e.g. ``"PHQ-9"``. Matching is case-insensitive and ignores
        spaces, hyphens and underscores, so ``"phq9"`` and ``"PHQ_9"`` find it.
    min_score, max_score : float
        The range of the total score; values outside are invalid data.
    remission_max : float or None
        Remission is a total score at or below this value; ``None`` when the instrument
        has no remission convention (e.g. CADSS).
    severity_bands : tuple of (float, str)
        Lower bounds and labels of severity bands in increasing order; a score belongs to
        the last band whose lower bound it reaches. The first bound should be ``min_score``.
    n_items, item_max : int or None
        Number of items and the maximum score of one item, used to check optional item
        columns ``item_1`` ... ``item_<n_items>``. ``item_max=None`` skips the item range
        check (for scales whose items have different ranges, e.g. HAM-D17).
    kind : str
        ``"self-report"`` or ``"clinician"`` or ``"observer"``; informative only.
    domain : str
        What it measures: ``"depression"``, ``"anxiety"``, ``"ptsd"``, ``"dissociation"``.
    suicide_item : int or None
        The item number asking about suicidal thoughts, if any (PHQ-9 item 9, MADRS item 10).
    aliases : tuple of str
        Further names the instrument is recorded under in exports.
    source : str
        Where the cut-offs come from.

    Examples
    --------
    >>> from analysis.instruments import Instrument, register_instrument, get_instrument
    >>> _ = register_instrument(Instrument(
    ...     name="SDS", min_score=20, max_score=80, remission_max=49,
    ...     severity_bands=((20, "normal"), (50, "mild"), (60, "moderate"), (70, "severe")),
    ...     domain="depression", source="Zung 1965"), replace=True)
    >>> get_instrument("sds").severity(55)
    'mild'
    """

    name: str
    min_score: float
    max_score: float
    remission_max: float | None = None
    severity_bands: tuple[tuple[float, str], ...] = ()
    n_items: int | None = None
    item_max: int | None = None
    kind: str = "self-report"
    domain: str = "depression"
    suicide_item: int | None = None
    aliases: tuple[str, ...] = ()
    source: str = ""
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"instrument name must be a non-empty string, got {self.name!r}")
        for attr in ("min_score", "max_score"):
            value = getattr(self, attr)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"instrument {self.name!r}: {attr} must be a finite number, got {value!r}")
        if self.min_score >= self.max_score:
            raise ValueError(
                f"instrument {self.name!r}: min_score ({self.min_score}) must be below max_score ({self.max_score})"
            )
        if self.remission_max is not None and not (self.min_score <= self.remission_max <= self.max_score):
            raise ValueError(
                f"instrument {self.name!r}: remission_max {self.remission_max} lies outside "
                f"[{self.min_score}, {self.max_score}]"
            )
        bands = tuple((float(lo), str(label)) for lo, label in self.severity_bands)
        bounds = [lo for lo, _ in bands]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError(f"instrument {self.name!r}: severity band bounds must increase strictly, got {bounds}")
        if bands and not (self.min_score <= bounds[0] and bounds[-1] <= self.max_score):
            raise ValueError(f"instrument {self.name!r}: severity band bounds {bounds} leave the score range")
        object.__setattr__(self, "severity_bands", bands)
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "key", normalise_instrument_name(self.name))

    def is_remission(self, score: float) -> bool:
        """Whether a total score counts as remission (at or below ``remission_max``)."""
        if self.remission_max is None:
            raise ValueError(f"instrument {self.name!r} has no remission cut-off")
        return score <= self.remission_max

    def severity(self, score: float) -> str | None:
        """The severity band label of a total score (``None`` if no bands are defined)."""
        label = None
        for lower, band in self.severity_bands:
            if score >= lower:
                label = band
        return label

    def item_columns(self) -> list[str]:
        """Names of the optional item-score columns, ``item_1`` ... ``item_<n_items>``."""
        return [f"item_{i}" for i in range(1, (self.n_items or 0) + 1)]


def normalise_instrument_name(name: str) -> str:
    """Case- and punctuation-insensitive key: ``"PHQ-9"``, ``"phq_9"``, ``"PHQ 9"`` -> ``"phq9"``."""
    return re.sub(r"[\s\-_.]+", "", str(name)).lower()


_REGISTRY: dict[str, Instrument] = {}
_ALIASES: dict[str, str] = {}

# Cut-offs follow DESIGN.md section 3; sources listed per instrument and in docs/instruments.md.
_BUILT_IN = (
    Instrument(
        "PHQ-9", 0, 27, remission_max=4,
        severity_bands=((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "moderately severe"), (20, "severe")),
        n_items=9, item_max=3, suicide_item=9, aliases=("PHQ9", "LOINC 44261-6", "44261-6"),
        source="Kroenke, Spitzer & Williams 2001, J Gen Intern Med 16:606",
    ),
    Instrument(
        "MADRS", 0, 60, remission_max=10,
        severity_bands=((0, "normal"), (7, "mild"), (20, "moderate"), (35, "severe")),
        n_items=10, item_max=6, kind="clinician", suicide_item=10,
        source="Montgomery & Asberg 1979; remission <= 10 (Hawley 2002); esketamine trials used <= 12",
    ),
    Instrument(
        "QIDS-SR16", 0, 27, remission_max=5,
        severity_bands=((0, "none"), (6, "mild"), (11, "moderate"), (16, "severe"), (21, "very severe")),
        n_items=16, item_max=3, aliases=("QIDS-SR", "QIDS"), suicide_item=12,
        source="Rush et al. 2003, Biol Psychiatry 54:573",
    ),
    Instrument(
        "BDI-II", 0, 63, remission_max=13,
        severity_bands=((0, "minimal"), (14, "mild"), (20, "moderate"), (29, "severe")),
        n_items=21, item_max=3, aliases=("BDI2", "BDI"), suicide_item=9,
        source="Beck, Steer & Brown 1996, BDI-II manual",
    ),
    Instrument(
        "HAM-D17", 0, 52, remission_max=7,
        severity_bands=((0, "normal"), (8, "mild"), (17, "moderate"), (24, "severe")),
        n_items=17, item_max=None, kind="clinician", aliases=("HAMD17", "HAM-D", "HDRS17", "HRSD17"),
        suicide_item=3,
        source="Hamilton 1960; remission <= 7 (Frank et al. 1991); bands 17 moderate, 24 severe",
    ),
    Instrument(
        "GAD-7", 0, 21, remission_max=4,
        severity_bands=((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "severe")),
        n_items=7, item_max=3, domain="anxiety", aliases=("GAD7",),
        source="Spitzer et al. 2006, Arch Intern Med 166:1092",
    ),
    Instrument(
        "PCL-5", 0, 80, remission_max=None,
        severity_bands=((0, "below threshold"), (31, "probable PTSD")),
        n_items=20, item_max=4, domain="ptsd", aliases=("PCL5",),
        source="Weathers et al. 2013; probable PTSD at 31-33 (Bovin et al. 2016)",
    ),
    Instrument(
        "CADSS", 0, 92, remission_max=None,
        severity_bands=(),
        n_items=23, item_max=4, kind="clinician", domain="dissociation",
        source="Bremner et al. 1998, J Trauma Stress 11:125 (23 items scored 0-4)",
    ),
)


def register_instrument(instrument: Instrument, *, replace: bool = False) -> Instrument:
    """Add an instrument to the registry so data and outcome functions accept it.

    Parameters
    ----------
    instrument : Instrument
        The definition to add.
    replace : bool, default False
        Replace an instrument of the same name (or alias). Without it a clash is an error,
        so a typo cannot silently change PHQ-9's cut-offs.

    Returns
    -------
    Instrument
        The registered instrument.

    Examples
    --------
    >>> from analysis.instruments import Instrument, register_instrument
    >>> register_instrument(Instrument("EPDS", 0, 30, remission_max=9), replace=True).name
    'EPDS'
    """
    if not isinstance(instrument, Instrument):
        raise TypeError(f"expected an Instrument, got {type(instrument).__name__}")
    keys = [instrument.key, *(normalise_instrument_name(a) for a in instrument.aliases)]
    clashes = sorted({_ALIASES[k] for k in keys if k in _ALIASES})
    if clashes and not replace:
        raise ValueError(
            f"instrument {instrument.name!r} clashes with registered {', '.join(map(repr, clashes))}; "
            "pass replace=True to override it"
        )
    for canonical in clashes:
        unregister_instrument(canonical)
    _REGISTRY[instrument.key] = instrument
    for k in keys:
        _ALIASES[k] = instrument.key
    return instrument


def unregister_instrument(name: str) -> None:
    """Remove an instrument (and its aliases) from the registry."""
    key = _ALIASES.get(normalise_instrument_name(name))
    if key is None:
        raise KeyError(f"unknown instrument {name!r}")
    del _REGISTRY[key]
    for alias in [a for a, k in _ALIASES.items() if k == key]:
        del _ALIASES[alias]


def get_instrument(name: str) -> Instrument:
    """Look up an instrument by name or alias (case- and punctuation-insensitive).

    Examples
    --------
    >>> from analysis.instruments import get_instrument
    >>> get_instrument("phq9").remission_max
    4
    """
    key = _ALIASES.get(normalise_instrument_name(name))
    if key is None:
        raise KeyError(f"unknown instrument {name!r}; known: {', '.join(instrument_names())}")
    return _REGISTRY[key]


def instrument_names() -> list[str]:
    """Canonical names of all registered instruments, in registration order."""
    return [inst.name for inst in _REGISTRY.values()]


def canonical_name_map(names: Iterable[str]) -> dict[str, str | None]:
    """Map raw names (as recorded in data) to canonical names; unknown names map to ``None``."""
    out: dict[str, str | None] = {}
    for raw in names:
        key = _ALIASES.get(normalise_instrument_name(raw))
        out[raw] = _REGISTRY[key].name if key is not None else None
    return out


def _instrument_from_mapping(name: str, spec: Mapping[str, object]) -> Instrument:
    allowed = set(Instrument.__dataclass_fields__) - {"key", "name"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"instrument {name!r}: unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    kwargs = dict(spec)
    if "severity_bands" in kwargs:
        kwargs["severity_bands"] = tuple(tuple(b) for b in kwargs["severity_bands"])  # type: ignore[union-attr]
    if "aliases" in kwargs:
        kwargs["aliases"] = tuple(kwargs["aliases"])  # type: ignore[arg-type]
    return Instrument(name=name, **kwargs)  # type: ignore[arg-type]


def load_instrument_file(path: str | Path, *, replace: bool = False) -> list[Instrument]:
    """Register the instruments defined in a TOML file.

    Each table in the file is one instrument, named by its header::

        [EPDS]
        min_score = 0
        max_score = 30
        remission_max = 9
        severity_bands = [[0, "none"], [10, "possible"], [13, "probable"]]

    A dataset folder may hold such a file as ``instruments.toml``; the loader reads it
    before validating, so the command line accepts the instruments it defines.

    Returns
    -------
    list of Instrument
        The instruments registered.
    """
    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot read instrument definitions: {exc}") from exc
    registered = []
    for name, fields in spec.items():
        if not isinstance(fields, dict):
            raise ValueError(f"{path}: [{name}] must be a table of instrument fields")
        try:
            inst = _instrument_from_mapping(name, fields)
            current = _ALIASES.get(inst.key)
            if current is not None and _REGISTRY[current] == inst:
                registered.append(inst)  # identical redefinition: nothing to do
                continue
            registered.append(register_instrument(inst, replace=replace))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from exc
    return registered


for _inst in _BUILT_IN:
    register_instrument(_inst)
del _inst
