"""National, record and account numbers, by shape and check digit.

Rules and sources:

* **US Social Security number** (Safe Harbor (G)): ``AAA-GG-SSSS`` with dashes or spaces;
  the area is never 000, 666 or 900-999, the group never 00, the serial never 0000
  (Social Security Administration, "Social Security Number Randomization", 2011). Nine
  digits without separators count only after ``SSN`` or ``social security``.
* **NHS number** (England, Wales, Isle of Man; (G)): ten digits, often ``3 3 4`` with spaces,
  whose tenth is the modulus-11 check digit of the first nine (weights 10 to 2; NHS Data
  Dictionary, "NHS Number").
* **UK National Insurance number** ((G)): two letters, six digits, a letter A-D
  (``QQ 12 34 56 C``), prefixes as HMRC allocates them (HMRC National Insurance Manual
  NIM39110).
* **Card numbers** ((J)): 13 to 19 digits passing the Luhn check (ISO/IEC 7812-1).
* **IBAN** ((J)): country code, two check digits, up to 30 letters or digits, passing the
  ISO 13616 modulus-97 check.
* **Record-number-like** ((H)): a run of eight or more digits that is neither a date nor one
  of the above; hospital numbers and MRNs are commonly 7 to 10 digits. A number after a
  coding-system word (SNOMED, LOINC, ICD, ATC, concept) is a code, not a record number.

Examples
--------
>>> from analysis.anonymisation.numbers import nhs_number_ok, luhn_ok, iban_ok
>>> nhs_number_ok("943 476 5919"), nhs_number_ok("943 476 5918")
(True, False)
>>> luhn_ok("4111 1111 1111 1111"), iban_ok("GB82 WEST 1234 5698 7654 32")
(True, True)
"""

from __future__ import annotations

import re

__all__ = ["nhs_number_ok", "luhn_ok", "iban_ok", "find_numbers", "find_record_numbers"]


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def nhs_number_ok(text: str) -> bool:
    """Whether ``text`` holds ten digits whose last is the NHS modulus-11 check digit of the others."""
    d = _digits(text)
    if len(d) != 10:
        return False
    remainder = sum(int(c) * w for c, w in zip(d[:9], range(10, 1, -1))) % 11
    check = 11 - remainder
    if check == 11:
        check = 0
    return check != 10 and check == int(d[9])


def luhn_ok(text: str) -> bool:
    """Whether the digits of ``text`` (13 to 19 of them) pass the Luhn check."""
    d = _digits(text)
    if not 13 <= len(d) <= 19 or len(set(d)) == 1:
        return False
    total = 0
    for i, c in enumerate(reversed(d)):
        n = int(c)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """Whether ``text`` is an IBAN passing the ISO 13616 modulus-97 check."""
    s = re.sub(r"\s", "", text).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
_SSN_CONTEXT = re.compile(r"(?i:\b(?:ssn|social security(?: number| no\.?)?)\b)\W{0,4}(\d{9})(?!\d)")
_NHS = re.compile(r"(?<![\d-])\d{3}( ?)\d{3}\1\d{4}(?![\d-])")
_NI = re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_CARD = re.compile(r"(?<![\d-])\d{4}([ -]?)\d{4}\1\d{4}\1\d{1,7}(?![\d-])|(?<![\d-])\d{13,19}(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
# a keyword naming the number, then the number: "MRN: 1234567", "NHS no. 943 476 5919", "acct #12345"
_KEYWORD_KINDS = (
    (r"mrn|medical record(?: number| no\.?)?|hospital (?:number|no\.?)|hosp\.? no\.?|chart (?:number|no\.?)|"
     r"record (?:number|no\.?)|case (?:number|no\.?)", "mrn"),
    (r"nhs(?: number| no\.?)?|chi(?: number| no\.?)|passport(?: number| no\.?)?|ssn|national id|ni number", "national_id"),
    (r"account(?: number| no\.?)?|acct\.?|iban", "account"),
    (r"policy(?: number| no\.?)|member id|member (?:number|no\.?)|medicaid(?: id| number| no\.?)?|"
     r"medicare(?: id| number| no\.?)?", "health_plan"),
    (r"licen[cs]e(?: number| no\.?)?", "licence"),
    (r"serial(?: number| no\.?)|imei|device id", "device"),
    (r"vin|licen[cs]e plate|reg(?:istration)?(?: number| no\.?| plate)", "vehicle"),
)
_KEYWORD = [
    (re.compile(rf"(?i:\b(?:{words})(?![a-z]))\s*(?:is|:|#|=|-)?\s*#?\s*([A-Za-z]{{0,3}}\d[\d -]{{2,}}\d)(?![\w.,])"), kind)
    for words, kind in _KEYWORD_KINDS
]
_LONG_NUMBER = re.compile(r"(?<![\w/-])(?<!\d[.,])\d{8,}(?![\w/-]|[.,]\d)")
_CODING_BEFORE = re.compile(r"(?i:\b(?:snomed(?: ct)?|sct(?:id)?|loinc|icd(?:-?1[01])?|atc|ndc|rxnorm|rxcui|cui|"
                            r"concept(?: id)?|code|cpt|opcs|pmid|doi|isbn|issn|nct)\b)\W{0,12}$")


def find_numbers(text: str) -> list[tuple[str, int, int]]:
    """(kind, start, end) of national, account and named record numbers in ``text``, not overlapping
    (bare runs of digits: :func:`find_record_numbers`).

    Examples
    --------
    >>> from analysis.anonymisation.numbers import find_numbers
    >>> [(k, "MRN 12345678 / SSN 123-45-6789"[s:e]) for k, s, e in find_numbers("MRN 12345678 / SSN 123-45-6789")]
    [('mrn', '12345678'), ('national_id', '123-45-6789')]
    >>> find_numbers("SNOMED CT 35489007, LOINC 44261-6, 0.5 mg/kg, 17 of 27")
    []
    """
    found: list[tuple[str, int, int]] = []

    def add(kind: str, s: int, e: int) -> None:
        if not any(s < e2 and s2 < e for _, s2, e2 in found):
            found.append((kind, s, e))

    for pattern, kind in _KEYWORD:
        for m in pattern.finditer(text):
            if sum(c.isdigit() for c in m.group(1)) >= 4:
                add(kind, m.start(1), m.end(1))
    for m in _SSN.finditer(text):
        add("national_id", *m.span())
    for m in _SSN_CONTEXT.finditer(text):
        add("national_id", *m.span(1))
    for m in _NHS.finditer(text):
        if nhs_number_ok(m.group(0)):
            add("national_id", *m.span())
    for m in _NI.finditer(text):
        add("national_id", *m.span())
    for m in _IBAN.finditer(text):
        if iban_ok(m.group(0)):
            add("account", *m.span())
    for m in _CARD.finditer(text):
        if luhn_ok(m.group(0)):
            add("account", *m.span())
    return sorted(found, key=lambda f: f[1])


def find_record_numbers(text: str) -> list[tuple[int, int]]:
    """Start and end of every run of eight or more digits not after a coding-system word.

    Searched last, after dates, the numbers above and phone numbers have been taken out.

    Examples
    --------
    >>> from analysis.anonymisation.numbers import find_record_numbers
    >>> find_record_numbers("ref 12345678; SNOMED 35489007; 1234567; 0.123456789")
    [(4, 12)]
    """
    return [m.span() for m in _LONG_NUMBER.finditer(text)
            if not _CODING_BEFORE.search(text[max(0, m.start() - 40): m.start()])]
