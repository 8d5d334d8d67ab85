"""Routes, instruments and drugs as sources spell them, mapped to format v1's values.

Three bundled vocabularies (``vocabularies/routes.toml``, ``instruments.toml``,
``drugs.toml``; each entry names its source, listed in ``docs/import.md``) hold **exact
entries**: spellings compared ignoring case and repeated spaces (``INTRAVENOUS`` is
``intravenous``), and codes written ``VOCABULARY:CODE`` (``SNOMED:47625008``,
``LOINC:44261-6``, ``RxNorm:6470``). A mapping file adds its own exact entries
(``[vocabulary.route]`` ...), which take precedence.

A value no exact entry knows may still be mapped by a **rule**, always with a warning that
names the rule, so that no alias is ever silent:

* ``punctuation``: the same letters and digits as an entry (``Phq_9``, ``I.V``);
* ``extra words``: an entry once words that do not change the meaning are removed: strengths,
  salts and dose forms of a drug (``Ketamine IV``, ``ketamine 50 mg/mL injection``), the
  drug and device in a route (``esketamine nasal spray``, ``IV push``), ``total``/``score`` in
  an instrument (``PHQ-9 score``);
* ``bare code``: a code of an entry written without its vocabulary (``44261-6``);
* ``instrument registry``: a name or alias the instrument registry knows but the vocabulary
  does not, such as abbreviations that name more than one version of a scale (``QIDS``,
  ``HAM-D``, ``BDI``).

Unknown values are listed with their counts and a suggested line for the mapping file.

Examples
--------
>>> from analysis.io.vocabulary import default_vocabulary
>>> vocab = default_vocabulary()
>>> [vocab.lookup("route", v).value for v in ("INTRAVENOUS", "SNOMED:47625008", "IV infusion")]
['iv', 'iv', 'iv']
>>> found = vocab.lookup("drug", "Ketamine IV")
>>> found.value, found.how, found.rule
('ketamine', 'rule', 'extra words')
>>> vocab.lookup("drug", "Ativan").value, vocab.lookup("drug", "RxNorm:6470").value
('lorazepam', 'lorazepam')
>>> print(vocab.suggestion("drug", "Ketalr"))
[vocabulary.drug] "Ketalr" = "ketamine"
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import pandas as pd

from ..instruments import InstrumentRegistry, ambiguous_alias_note, default_registry
from ..schema import TABLES

__all__ = ["KINDS", "Entry", "Lookup", "Vocabulary", "default_vocabulary", "ROUTES"]

#: the kinds of value a vocabulary maps, and the bundled file of each
KINDS = {"route": "routes.toml", "instrument": "instruments.toml", "drug": "drugs.toml"}
#: format v1's routes
ROUTES = tuple(TABLES["sessions"].column("route").allowed)

# words that do not change what a value means, per kind (the "extra words" rule)
_STRENGTH = r"\b\d+(?:[.,]\d+)?\s*(?:mg|mcg|µg|g|ml|%|mg/ml|mg/kg|mcg/ml)(?:\s*/\s*(?:ml|kg|dose|spray))?\b"
_EXTRA_WORDS = {
    "drug": r"\b(?:hydrochloride|hcl|sodium|injection|injectable|infusion|solution|nasal|spray|device|tablets?|"
            r"capsules?|oral|sublingual|lozenges?|troches?|iv|im|intravenous|intramuscular|intranasal|generic|"
            r"racemic|vial|ampoule)\b",
    "route": r"\b(?:route|administration|administered|infusion|injection|push|drip|bolus|spray|device|"
             r"ketamine|esketamine|spravato|ketalar|via|by|of|the|given)\b",
    "instrument": r"\b(?:total|score|scores|sum|summed|questionnaire|scale|self[- ]report|rating|result)\b",
}


def _exact_key(value: str) -> str:
    """Case and repeated spaces ignored: what makes two spellings one exact entry."""
    return " ".join(str(value).split()).casefold()


def _compact_key(value: str) -> str:
    """Letters and digits only (the "punctuation" rule)."""
    return re.sub(r"[\W_]+", "", str(value).casefold())


def _without_extra_words(kind: str, value: str) -> str:
    text = re.sub(r"\([^)]*\)", " ", str(value).casefold())
    if kind == "drug":
        text = re.sub(_STRENGTH, " ", text)
    text = re.sub(_EXTRA_WORDS[kind], " ", text)
    return " ".join(re.sub(r"[,;:/+]", " ", text).split())


@dataclass(frozen=True)
class Entry:
    """One exact entry: the value it maps to, its spellings and codes, and its source."""

    value: str
    names: tuple[str, ...]
    codes: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class Lookup:
    """How one source value was mapped.

    ``how`` is ``"exact"``, ``"rule"`` (``rule`` names it, ``matched`` the entry spelling it
    matched) or ``"unknown"`` (``value`` is None).
    """

    kind: str
    raw: str
    value: str | None
    how: str
    rule: str | None = None
    matched: str | None = None
    note: str | None = None


def _normalise_code(code: str) -> str | None:
    system, sep, number = str(code).partition(":")
    if not sep or not system.strip() or not number.strip():
        return None
    return f"{system.strip().casefold()}:{number.strip().casefold()}"


class Vocabulary:
    """Exact entries by kind, and the rules tried when none matches.

    Parameters
    ----------
    entries : mapping of kind to list of Entry
    registry : InstrumentRegistry, optional
        Instruments known beyond the vocabulary (default the process-wide registry).

    Examples
    --------
    >>> from analysis.io.vocabulary import default_vocabulary
    >>> mine = default_vocabulary().with_additions({"route": {"IV push": "iv"}})
    >>> mine.lookup("route", "iv push").how, default_vocabulary().lookup("route", "iv push").how
    ('exact', 'rule')
    """

    def __init__(self, entries: Mapping[str, list[Entry]], *, registry: InstrumentRegistry | None = None) -> None:
        self._entries = {kind: list(entries.get(kind, [])) for kind in KINDS}
        self._registry = registry
        self._exact: dict[str, dict[str, str]] = {}
        self._compact: dict[str, dict[str, tuple[str, str]]] = {}
        self._codes: dict[str, dict[str, str]] = {}
        self._bare: dict[str, dict[str, str]] = {}
        for kind, items in self._entries.items():
            exact, compact, codes, bare = {}, {}, {}, {}
            for entry in items:  # later entries (user additions) override earlier ones
                for name in (entry.value, *entry.names):
                    exact[_exact_key(name)] = entry.value
                    compact.setdefault(_compact_key(name), (entry.value, name))
                for code in entry.codes:
                    key = _normalise_code(code)
                    if key is not None:
                        codes[key] = entry.value
                        bare[key.partition(":")[2]] = entry.value
            self._exact[kind], self._compact[kind], self._codes[kind], self._bare[kind] = exact, compact, codes, bare

    @property
    def registry(self) -> InstrumentRegistry:
        return default_registry() if self._registry is None else self._registry

    def entries(self, kind: str) -> list[Entry]:
        """The exact entries of one kind (bundled first, then additions)."""
        return list(self._entries[_check_kind(kind)])

    def values(self, kind: str) -> list[str]:
        """The values a kind maps to, each once."""
        return list(dict.fromkeys(e.value for e in self._entries[_check_kind(kind)]))

    def with_additions(self, additions: Mapping[str, Mapping[str, str]], *,
                       registry: InstrumentRegistry | None = None) -> Vocabulary:
        """A new vocabulary with further exact entries (``{kind: {spelling or code: value}}``).

        A key written ``VOCABULARY:CODE`` (``RxNorm:2108478``) is a code, any other a spelling.
        """
        merged = {kind: list(items) for kind, items in self._entries.items()}
        for kind, pairs in additions.items():
            _check_kind(kind)
            for raw, value in pairs.items():
                is_code = _normalise_code(raw) is not None and not re.search(r"\s", raw)
                merged[kind].append(Entry(str(value), () if is_code else (str(raw),),
                                          (str(raw),) if is_code else (), source="mapping file"))
        return Vocabulary(merged, registry=registry if registry is not None else self._registry)

    def lookup(self, kind: str, raw: str) -> Lookup:
        """Map one value: exact entry or code first, then the rules in turn."""
        _check_kind(kind)
        text = str(raw)
        code = _normalise_code(text)
        if code is not None and code in self._codes[kind]:
            return Lookup(kind, text, self._codes[kind][code], "exact")
        found = self._exact[kind].get(_exact_key(text))
        if found is not None:
            return Lookup(kind, text, found, "exact")
        if code is not None and re.fullmatch(r"[a-z][a-z0-9 _-]*:[0-9a-z.-]+", code):
            return Lookup(kind, text, None, "unknown", note="a code no entry has")
        compact = self._compact[kind].get(_compact_key(text))
        if compact is not None and _compact_key(text):
            return Lookup(kind, text, compact[0], "rule", "punctuation", compact[1])
        stripped = _without_extra_words(kind, text)
        if stripped and stripped != _exact_key(text):
            found = self._exact[kind].get(stripped)
            if found is None:
                hit = self._compact[kind].get(_compact_key(stripped))
                found = hit[0] if hit else None
            if found is not None:
                return Lookup(kind, text, found, "rule", "extra words", stripped)
        bare = self._bare[kind].get(text.strip().casefold())
        if bare is not None and re.fullmatch(r"[0-9-]+", text.strip()):
            return Lookup(kind, text, bare, "rule", "bare code", text.strip())
        if kind == "instrument":
            inst = self.registry.find(text)
            if inst is not None:
                if _compact_key(text) == _compact_key(inst.name) or text in self.values("instrument"):
                    return Lookup(kind, text, inst.name, "exact")
                return Lookup(kind, text, inst.name, "rule", "instrument registry", inst.name,
                              note=ambiguous_alias_note(text, inst.name))
        return Lookup(kind, text, None, "unknown")

    def map(self, kind: str, values: pd.Series) -> tuple[pd.Series, list[Lookup]]:
        """Map a column (each distinct value once); the lookups of its distinct values."""
        codes, uniques = pd.factorize(values.astype("string"), use_na_sentinel=True)
        lookups = [self.lookup(kind, str(u)) for u in uniques]
        mapped = pd.Series([lookups[c].value if c >= 0 else None for c in codes], index=values.index, dtype="string")
        return mapped, lookups

    def suggestion(self, kind: str, raw: str) -> str:
        """A mapping-file line that would map ``raw``: the closest known spelling's value."""
        spellings = {name: value for name, value in self._exact[_check_kind(kind)].items()}
        close = difflib.get_close_matches(_exact_key(raw), list(spellings), n=1, cutoff=0.5)
        target = spellings[close[0]] if close else f"<one of: {', '.join(self.values(kind)[:8])}, ...>"
        return f'[vocabulary.{kind}] "{raw}" = "{target}"'


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise KeyError(f"unknown vocabulary kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


def _read_bundled(kind: str) -> list[Entry]:
    text = resources.files("analysis.io").joinpath("vocabularies", KINDS[kind]).read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return [Entry(str(e["value"]), tuple(e.get("names", ())), tuple(e.get("codes", ())), str(e.get("source", "")))
            for e in data.get("entry", [])]


@functools.cache
def _bundled() -> dict[str, list[Entry]]:
    return {kind: _read_bundled(kind) for kind in KINDS}


def default_vocabulary(registry: InstrumentRegistry | None = None) -> Vocabulary:
    """The bundled vocabularies (instruments beyond them looked up in ``registry``).

    Examples
    --------
    >>> from analysis.io.vocabulary import default_vocabulary
    >>> default_vocabulary().lookup("instrument", "LOINC:44261-6").value
    'PHQ-9'
    """
    return Vocabulary(_bundled(), registry=registry)
