"""Phone and fax numbers in text, in national and international formats.

Rule: Safe Harbor items (D) and (E). Numbers are found by Google's libphonenumber (the
``phonenumbers`` package, its Python port, offline) with ``PhoneNumberMatcher`` at
leniency ``POSSIBLE``, for the regions whose national formats are most common in
exports: US and CA (North American Numbering Plan: ``(212) 555-0123``,
``212-555-0123``), GB (``07700 900123``, ``020 7946 0958``), DE (``030 12345678``),
FR (``01 23 45 67 89``), AU (``(02) 9876 5432``) and IN (``98765 43210``); numbers written
with a country code (``+44 7700 900123``, ``0044 20 7946 0958``, ``+81 3-1234-5678``) are
found whatever their country. ``POSSIBLE`` rather than ``VALID`` so that the ranges kept
for drama and documentation (``07700 900xxx``, ``555-01xx``), which a careless export may
still hold, are found too.

To keep study data from being taken for phone numbers, a match also needs at least nine
digits (seven after a ``+``), at most 15 (ITU-T E.164), and, when it is one unbroken run
of digits, 10 or 11 of them starting with the trunk prefix 0 or valid for one of the
regions. Ranges (``100-200``), decimals and thousands (``1,234,567``) are not phone
numbers; dates are removed from the text before it gets here.

Examples
--------
>>> from analysis.anonymisation.phones import find_phones
>>> find_phones("call Jane on 07700 900123 or +1 (212) 555-0123")
['07700 900123', '+1 (212) 555-0123']
>>> find_phones("0.5 mg/kg, PHQ-9 17 of 27, 1,234,567 cells, 100000-200000, 12345678")
[]
"""

from __future__ import annotations

import bisect
import re

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

__all__ = ["REGIONS", "find_phones", "is_phone_number"]

#: regions whose national formats are searched (numbers with a country code are found for any country)
REGIONS = ("US", "GB", "DE", "FR", "AU", "CA", "IN")

_CANDIDATE = re.compile(r"(?:\d\D{0,3}){7}")
_SEGMENT = re.compile(r"[+(]?\d[\d \t().\-/\u2013]*\d\)?")
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+$")
_RANGE = re.compile(r"^[1-9]\d*\s?[-\u2013]\s?[1-9]\d*$")


def _plausible(raw: str, number: phonenumbers.PhoneNumber) -> bool:
    digits = re.sub(r"\D", "", raw)
    international = raw.lstrip().startswith("+")
    if not (7 if international else 9) <= len(digits) <= 15:
        return False
    if _THOUSANDS.match(raw) or _RANGE.match(raw) or re.fullmatch(r"\d+[.,]\d+", raw):
        return False
    if raw.isdigit():
        if 10 <= len(digits) <= 11 and digits.startswith("0"):
            return True
        return phonenumbers.is_valid_number(number)
    return True


def find_phones(text: str) -> list[str]:
    """The phone numbers written in ``text``, left to right."""
    found: list[str] = []
    # the matcher is slow (about 1 ms a region and candidate): run it only on the stretches of
    # digits and phone punctuation that hold enough digits to be a phone number
    for segment in _SEGMENT.finditer(text):
        stretch = segment.group(0)
        # _plausible needs 9 digits without a leading "+" (7 with one): a stretch that cannot
        # hold that many is no phone number, and the matcher is not run on it (ids such as
        # P0000001 of a registry of a million patients would otherwise each cost milliseconds)
        if sum(ch.isdigit() for ch in stretch) < (7 if "+" in stretch else 9):
            continue
        if _CANDIDATE.search(stretch):
            found.extend(_match(stretch))
    return found


def _match(text: str) -> list[str]:
    """Phone numbers in one stretch of text, by every region's rules, not overlapping."""
    starts: list[int] = []   # sorted starts of the numbers kept, with their ends and text
    ends: list[int] = []
    raws: list[str] = []
    for region in REGIONS:
        for m in PhoneNumberMatcher(text, region, leniency=Leniency.POSSIBLE):
            i = bisect.bisect_left(starts, m.start)
            if (i < len(starts) and starts[i] < m.end) or (i > 0 and ends[i - 1] > m.start):
                continue
            if _plausible(m.raw_string, m.number):
                starts.insert(i, m.start)
                ends.insert(i, m.end)
                raws.insert(i, m.raw_string)
    return raws


def is_phone_number(text: str) -> bool:
    """Whether the whole of ``text`` (an id, a number) is a phone number by the rules above.

    Examples
    --------
    >>> from analysis.anonymisation.phones import is_phone_number
    >>> is_phone_number("+447700900123"), is_phone_number("07700900123"), is_phone_number("12345678")
    (True, True, False)
    """
    found = find_phones(text.strip())
    return len(found) == 1 and len(re.sub(r"\D", "", found[0])) == len(re.sub(r"\D", "", text))
