"""Registry of mood and symptom instruments: score ranges, severity bands, remission cut-offs.

Every outcome in this package is defined per instrument, because instruments disagree: the
same patients can remit by MADRS and not by PHQ-9. The built-in instruments follow the
conventions in ``docs/instruments.md`` (sources named there). Users add their own with
:func:`register_instrument`, or with an ``instruments.toml`` file beside their data (see
:func:`load_instrument_file`), without editing the package.

Registries are values, not one mutable global: an :class:`InstrumentRegistry` maps names
and aliases to definitions. The process-wide registry (:func:`default_registry`) holds the
built-ins and whatever the user registers explicitly (:func:`register_instrument`); a
dataset carries its own registry, a copy of the process-wide one taken at load time plus
the ``instruments.toml`` beside it (``Dataset.instrument_registry``). Loading a dataset
never changes the process-wide registry, so definitions never leak from one dataset into
another.
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
    "InstrumentRegistry",
    "default_registry",
    "read_instrument_file",
    "get_instrument",
    "register_instrument",
    "unregister_instrument",
    "instrument_names",
    "load_instrument_file",
    "normalise_instrument_name",
    "AMBIGUOUS_ALIASES",
    "ambiguous_alias_note",
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

    def lookup_keys(self) -> tuple[str, ...]:
        """The normalised name and aliases this instrument is found under."""
        return (self.key, *(normalise_instrument_name(a) for a in self.aliases))

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


class InstrumentRegistry:
    """Instruments by name and alias: the definitions a dataset is validated and analysed with.

    A registry is built from the built-ins (:func:`default_registry`, the process-wide one)
    or copied from another (:meth:`copy`) and extended with :meth:`register`; lookups are
    case- and punctuation-insensitive and go through aliases.

    Examples
    --------
    >>> from analysis.instruments import Instrument, default_registry
    >>> mine = default_registry().copy()
    >>> _ = mine.register(Instrument("PHQ-9", 0, 27, remission_max=5), replace=True)
    >>> mine.get("phq9").remission_max, default_registry().get("phq9").remission_max
    (5, 4)
    """

    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        self._by_key: dict[str, Instrument] = {}
        self._aliases: dict[str, str] = {}
        for inst in instruments:
            self.register(inst)

    def copy(self) -> InstrumentRegistry:
        """An independent registry with the same instruments (changes to one leave the other alone)."""
        new = InstrumentRegistry()
        new._by_key = dict(self._by_key)
        new._aliases = dict(self._aliases)
        return new

    def register(self, instrument: Instrument, *, replace: bool = False) -> Instrument:
        """Add ``instrument``; a clash of name or alias is an error unless ``replace=True``."""
        if not isinstance(instrument, Instrument):
            raise TypeError(f"expected an Instrument, got {type(instrument).__name__}")
        keys = list(instrument.lookup_keys())
        clashes = sorted({self._by_key[self._aliases[k]].name for k in keys if k in self._aliases})
        if clashes and not replace:
            raise ValueError(
                f"instrument {instrument.name!r} clashes with registered {', '.join(map(repr, clashes))}; "
                "pass replace=True to override it"
            )
        for canonical in clashes:
            key = normalise_instrument_name(canonical)
            if key == instrument.key:  # replaced in place: the order of names stays
                for alias in [a for a, k in self._aliases.items() if k == key]:
                    del self._aliases[alias]
            else:
                self.unregister(canonical)
        self._by_key[instrument.key] = instrument
        for k in keys:
            self._aliases[k] = instrument.key
        return instrument

    def unregister(self, name: str) -> None:
        """Remove an instrument (and its aliases)."""
        key = self._aliases.get(normalise_instrument_name(name))
        if key is None:
            raise KeyError(f"unknown instrument {name!r}")
        del self._by_key[key]
        for alias in [a for a, k in self._aliases.items() if k == key]:
            del self._aliases[alias]

    def find(self, name: str) -> Instrument | None:
        """The instrument called ``name`` (or an alias of it), or ``None``."""
        key = self._aliases.get(normalise_instrument_name(name))
        return None if key is None else self._by_key[key]

    def get(self, name: str) -> Instrument:
        """The instrument called ``name`` (or an alias of it); ``KeyError`` naming the known ones."""
        inst = self.find(name)
        if inst is None:
            raise KeyError(f"unknown instrument {name!r}; known: {', '.join(self.names())}")
        return inst

    def names(self) -> list[str]:
        """Canonical names of the instruments, in registration order."""
        return [inst.name for inst in self._by_key.values()]

    def canonical_name_map(self, names: Iterable[str]) -> dict[str, str | None]:
        """Map raw names (as recorded in data) to canonical names; unknown names map to ``None``."""
        out: dict[str, str | None] = {}
        for raw in names:
            inst = self.find(raw)
            out[raw] = inst.name if inst is not None else None
        return out

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def __iter__(self):
        return iter(list(self._by_key.values()))

    def __len__(self) -> int:
        return len(self._by_key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InstrumentRegistry):
            return NotImplemented
        return self._by_key == other._by_key and self._aliases == other._aliases

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"InstrumentRegistry({', '.join(self.names())})"


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


_DEFAULT = InstrumentRegistry(_BUILT_IN)

#: aliases (normalised) that name more than one version of a scale -> (the built-in they are read
#: as, why): still accepted, but every use is a warning (validation, analysis.io), never silent
AMBIGUOUS_ALIASES: dict[str, tuple[str, str]] = {
    "qids": ("QIDS-SR16", "QIDS names both the self-report QIDS-SR16 and the clinician-rated QIDS-C16; read as QIDS-SR16"),
    "hamd": ("HAM-D17", "HAM-D names the 17-, 21- and 24-item versions; read as HAM-D17"),
    "bdi": ("BDI-II", "BDI names both BDI-II and the older BDI-IA; read as BDI-II"),
}


def ambiguous_alias_note(name: str, resolved: str | None = None) -> str | None:
    """Why ``name`` is an ambiguous alias (see :data:`AMBIGUOUS_ALIASES`), or None.

    ``resolved`` is the instrument the name was found as; a dataset that defines the name as
    its own instrument (``instruments.toml``) gets no note.

    Examples
    --------
    >>> from analysis.instruments import ambiguous_alias_note
    >>> ambiguous_alias_note("QIDS")[:40], ambiguous_alias_note("QIDS-SR16"), ambiguous_alias_note("QIDS", "QIDS-C16")
    ('QIDS names both the self-report QIDS-SR1', None, None)
    """
    found = AMBIGUOUS_ALIASES.get(normalise_instrument_name(name))
    if found is None or (resolved is not None and resolved != found[0]):
        return None
    return found[1]


def default_registry() -> InstrumentRegistry:
    """The process-wide registry: the built-ins and what :func:`register_instrument` added.

    Loading a dataset never changes it; a dataset validates against a copy of it
    (``Dataset.instrument_registry``). Copy it (:meth:`InstrumentRegistry.copy`) before
    changing it for one analysis.
    """
    return _DEFAULT


def register_instrument(instrument: Instrument, *, replace: bool = False) -> Instrument:
    """Add an instrument to the process-wide registry so data and outcome functions accept it.

    The explicit, process-wide way: datasets loaded afterwards accept it (a dataset takes a
    copy of this registry when it is loaded). Definitions for one dataset only belong in an
    ``instruments.toml`` beside it, which never reaches this registry.

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
    >>> register_instrument(Instrument("EPDS-doc", 0, 30, remission_max=9), replace=True).name
    'EPDS-doc'
    """
    return _DEFAULT.register(instrument, replace=replace)


def unregister_instrument(name: str) -> None:
    """Remove an instrument (and its aliases) from the process-wide registry."""
    _DEFAULT.unregister(name)


def get_instrument(name: str, registry: InstrumentRegistry | None = None) -> Instrument:
    """Look up an instrument by name or alias (case- and punctuation-insensitive).

    Parameters
    ----------
    name : str
    registry : InstrumentRegistry, optional
        Where to look: a dataset's (``dataset.instrument_registry``); default the
        process-wide registry.

    Examples
    --------
    >>> from analysis.instruments import get_instrument
    >>> get_instrument("phq9").remission_max
    4
    """
    return (_DEFAULT if registry is None else registry).get(name)


def instrument_names(registry: InstrumentRegistry | None = None) -> list[str]:
    """Canonical names of all registered instruments (of ``registry``, default the process-wide one)."""
    return (_DEFAULT if registry is None else registry).names()


def canonical_name_map(names: Iterable[str], registry: InstrumentRegistry | None = None) -> dict[str, str | None]:
    """Map raw names (as recorded in data) to canonical names; unknown names map to ``None``."""
    return (_DEFAULT if registry is None else registry).canonical_name_map(names)


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


def read_instrument_file(path: str | Path) -> list[Instrument]:
    """The instruments defined in a TOML file, checked, without registering them anywhere.

    Each table in the file is one instrument, named by its header (the format of
    :func:`load_instrument_file`). A file that cannot be read, or a definition that does
    not hold, is a ``ValueError`` naming the file. Only a regular file is read: a named pipe
    or device would block the read.
    """
    import os
    import stat

    path = Path(path)
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path}: cannot read instrument definitions: {_special_kind(mode)}, not a file")
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot read instrument definitions: {exc}") from exc
    out = []
    for name, fields in spec.items():
        if not isinstance(fields, dict):
            raise ValueError(f"{path}: [{name}] must be a table of instrument fields")
        try:
            out.append(_instrument_from_mapping(name, fields))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from exc
    return out


def _special_kind(mode: int) -> str:
    import stat

    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return "a special file"


def load_instrument_file(path: str | Path, *, replace: bool = False,
                         registry: InstrumentRegistry | None = None) -> list[Instrument]:
    """Register the instruments defined in a TOML file.

    Each table in the file is one instrument, named by its header::

        [EPDS]
        min_score = 0
        max_score = 30
        remission_max = 9
        severity_bands = [[0, "none"], [10, "possible"], [13, "probable"]]

    A dataset folder may hold such a file as ``instruments.toml``; the loader reads it
    into the dataset's own registry (``Dataset.instrument_registry``), never into the
    process-wide one, so the command line accepts the instruments it defines for that
    dataset only.

    Parameters
    ----------
    path : str or Path
    replace : bool, default False
        Replace instruments of the same name (a redefinition identical to the registered
        one is always accepted).
    registry : InstrumentRegistry, optional
        Where to register them; default the process-wide registry (an explicit call by the
        user, like :func:`register_instrument`).

    Returns
    -------
    list of Instrument
        The instruments registered.
    """
    target = _DEFAULT if registry is None else registry
    registered = []
    for inst in read_instrument_file(path):
        current = target.find(inst.name)
        if current is not None and current == inst:
            registered.append(current)  # identical redefinition: nothing to do
            continue
        try:
            registered.append(target.register(inst, replace=replace))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    return registered
