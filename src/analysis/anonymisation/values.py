"""Identifiers in text values, whole or embedded in prose.

Every text value is searched for the identifiers below, in this order; a stretch of text
taken by one is not searched again for the next, so ``jane@example.com`` is one e-mail
address, not also a web address, and ``2023-01-05`` one date, not a phone number.

=============================  ==============================================================  =========
kind                           found when the text holds                                       Safe Harbor
=============================  ==============================================================  =========
e-mail address                 ``name@domain.tld``; ``name [at] domain [dot] org``             (F)
web address (URL)              ``http(s)://...``, ``ftp://...``, ``www....``, ``site.org/path``  (N)
IP address                     IPv4 ``192.0.2.10``; IPv6 ``2001:db8::1`` (checked by           (O)
                               :mod:`ipaddress`)
device identifier              a MAC address ``00:1A:2B:3C:4D:5E``                             (M)
calendar date                  :mod:`analysis.anonymisation.dates`                             (C)
national, record, account no.  :mod:`analysis.anonymisation.numbers` (SSN, NHS, NI, IBAN,     (G) (H) (J)
                               card numbers, ``MRN: ...``)
address                        a US ZIP+4 ``12345-6789``; a UK postcode ``SW1A 1AA``; a        (B)
                               street address ``221B Baker Street``
phone number                   :mod:`analysis.anonymisation.phones`                            (D)
record number                  any other run of 8 or more digits                               (H)
vehicle identifier             a 17-character VIN (ISO 3779 alphabet, letters and digits)     (L)
person name                    :mod:`analysis.anonymisation.people`                            (A)
=============================  ==============================================================  =========

Examples
--------
>>> from analysis.anonymisation.values import find_identifiers
>>> [(f.kind, f.text) for f in find_identifiers("call Jane Doe on 07700 900123")]
[('name', 'Jane Doe'), ('phone', '07700 900123')]
>>> find_identifiers("ketamine 0.5 mg/kg over 40 min on day 14; PHQ-9 17 of 27 at site_A")
[]
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from . import dates, numbers, people, phones

__all__ = ["Finding", "find_identifiers", "find_in_id", "could_hold_identifier"]


@dataclass(frozen=True)
class Finding:
    """One identifier found in a value: its kind (a key of
    :data:`~analysis.anonymisation.kinds.KINDS`) and the text found."""

    kind: str
    text: str


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![\w-])"
    r"|(?<![\w.+-])[\w.+-]+\s*[\[({]\s*at\s*[\])}]\s*[\w-]+(?:\s*(?:[\[({]\s*dot\s*[\])}]|\.)\s*[A-Za-z]{2,})+"
    r"|(?<![\w.+-])[\w.+-]+\s+at\s+[\w-]+\s+dot\s+[A-Za-z]{2,}\b"
)
_TLD = r"(?:com|org|net|edu|gov|io|info|biz|co\.uk|org\.uk|nhs\.uk|ac\.uk|gov\.uk|com\.au|de|fr|ca|us|eu)"
_URL = re.compile(
    r"\b(?:https?|ftp)://[^\s<>\"']+"
    r"|\bwww\.[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+[^\s<>\"']*"
    rf"|(?<![\w@.-])[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.{_TLD}(?![\w-])(?:/[^\s<>\"']*)?",
    re.I,
)
_IPV4 = re.compile(r"(?<!\w)(?<!\d\.)(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_MAC = re.compile(r"(?<![\w:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![\w:-])")
_ZIP4 = re.compile(r"(?<![\d-])\d{5}-\d{4}(?![\d-])")
_POSTCODE = re.compile(r"\b(?:[A-PR-UWYZ]\d[A-HJKPSTUW\d]?|[A-PR-UWYZ][A-HK-Y]\d[ABEHMNPRVWXY\d]?) ?\d[ABD-HJLNP-UW-Z]{2}\b")
_STREET = re.compile(
    r"\b\d{1,5}[A-Za-z]?,?\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Close|Court|Way|"
    r"Boulevard|Blvd|Place|Terrace|Crescent|Square|Gardens|Grove|Parkway|Highway|Hwy)\b\.?"
)
_VIN = re.compile(r"\b(?=[A-HJ-NPR-Z0-9]{17}\b)(?=(?:[A-HJ-NPR-Z]*\d){3})(?=(?:\d*[A-HJ-NPR-Z]){3})[A-HJ-NPR-Z0-9]{17}\b")

#: cheap test: a value without any of these characters holds no identifier the guard finds
_ANY = re.compile(r"[\d@:/]|[A-Z]|\.\w|\bat\b")


def could_hold_identifier(text: str) -> bool:
    """A fast first test: False when ``text`` cannot hold anything :func:`find_identifiers` finds."""
    return bool(_ANY.search(text))


class _Text:
    """The text being searched, with the stretches already taken blanked out."""

    def __init__(self, text: str):
        self.original = text
        self.rest = text
        self.found: list[tuple[int, Finding]] = []

    def take(self, kind: str, start: int, end: int) -> None:
        piece = self.original[start:end].strip().rstrip(".,;:)")
        if not piece:
            return
        self.found.append((start, Finding(kind, piece)))
        self.rest = self.rest[:start] + "~" * (end - start) + self.rest[end:]

    def search(self, pattern: re.Pattern[str], kind: str, check=None) -> None:
        for m in list(pattern.finditer(self.rest)):
            if "~" in m.group(0) or (check is not None and not check(m.group(0))):
                continue
            self.take(kind, *m.span())


def _ip_ok(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return any(c.isdigit() or c.isalpha() for c in text.replace(":", ""))


def find_identifiers(text: str, *, names: bool = True) -> list[Finding]:
    """Every identifier found in ``text`` (see the table above), in the order they appear.

    Parameters
    ----------
    text : str
        A value of a text column: a code, a short label or free text.
    names : bool, default True
        Also look for person names (:func:`analysis.anonymisation.people.find_names`).

    Examples
    --------
    >>> from analysis.anonymisation.values import find_identifiers
    >>> [f.kind for f in find_identifiers("Jane Doe <jane@example.com>, seen 2023-01-05 from 192.0.2.10")]
    ['name', 'email', 'date', 'ip']
    """
    if not could_hold_identifier(text):
        return []
    t = _Text(text)
    t.search(_EMAIL, "email")
    t.search(_URL, "url")
    t.search(_MAC, "device")
    t.search(_IPV4, "ip", _ip_ok)
    t.search(_IPV6, "ip", _ip_ok)
    for s, e in dates.find_spans(t.rest):
        if "~" not in t.rest[s:e]:
            t.take("date", s, e)
    t.search(_ZIP4, "address")
    for kind, s, e in numbers.find_numbers(t.rest):
        if "~" not in t.rest[s:e]:
            t.take(kind, s, e)
    for raw in phones.find_phones(t.rest):
        start = t.rest.find(raw)
        if start >= 0:
            t.take("phone", start, start + len(raw))
    for s, e in numbers.find_record_numbers(t.rest):
        t.take("mrn", s, e)
    t.search(_POSTCODE, "address")
    t.search(_STREET, "address")
    t.search(_VIN, "vehicle")
    if names:
        for name in people.find_names(t.rest):
            start = t.rest.find(name)
            if start >= 0:
                t.found.append((start, Finding("name", name)))
    return [f for _, f in sorted(t.found, key=lambda x: x[0])]


#: ids of up to two letters and up to seven digits: too short for any identifier (see find_in_id)
PLAIN_ID = re.compile(r"[A-Za-z]{0,2}[-_]?\d{1,7}")


def find_in_id(value: str) -> list[Finding]:
    """Identifiers in a patient id: everything :func:`find_identifiers` finds, and also a
    whole value written like a person's name (``Jane Doe``) or a number of eight or more
    digits (a record number, unless it reads as a date or a phone number).

    Examples
    --------
    >>> from analysis.anonymisation.values import find_in_id
    >>> [f.kind for v in ("P0001", "12345678", "Jane Doe", "+44 7700 900123", "123-45-6789") for f in find_in_id(v)]
    ['mrn', 'name', 'phone', 'national_id']
    """
    if PLAIN_ID.fullmatch(value):
        # up to two letters and up to seven digits (P0000001): too short to be a record number
        # (8+ digits), a phone (9+), a date written as yyyymmdd or a keyword id (MRN..., SSN...),
        # checked exhaustively in tests; a registry of a million ids skips the scanners
        return []
    found = find_identifiers(value, names=False)
    if not found and people.looks_like_person_name(value):
        found = [Finding("name", value.strip())]
    return found
