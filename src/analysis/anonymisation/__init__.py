"""The anonymisation guard: refuse data that carry direct identifiers.

Data for this package are pseudonymised exports (DESIGN.md section 3): pseudonymous ids,
study days instead of calendar dates, ages over 89 top-coded to 90. The guard checks
every table against the 18 kinds of identifier of HIPAA's Safe Harbor method
(45 CFR 164.514(b)(2)(i), :mod:`~analysis.anonymisation.kinds`) and refuses:

* columns whose names say they hold one (:mod:`~analysis.anonymisation.names`);
* text values that are or contain one: e-mail addresses, web addresses, IP addresses,
  calendar dates (:mod:`~analysis.anonymisation.dates`), phone numbers
  (:mod:`~analysis.anonymisation.phones`), SSN, NHS, national insurance, record and account
  numbers (:mod:`~analysis.anonymisation.numbers`), addresses, vehicle and device ids and
  marked person names (:mod:`~analysis.anonymisation.people`), all found by
  :mod:`~analysis.anonymisation.values`;
* patient ids that are not pseudonyms: phone numbers, e-mail addresses, SSNs, record numbers
  of 8 or more digits, person names;
* free-text columns, unless named in ``allow_free_text`` (:mod:`~analysis.anonymisation.free_text`);
* ages over 89 that are not top-coded, in ``age`` and in any other age column;
* further numeric columns of ``yyyymmdd`` dates or of record or phone numbers.

:mod:`~analysis.anonymisation.guard` holds the checks :mod:`analysis.validation` calls;
what the guard catches and what it cannot is written down in ``docs/anonymisation.md``.
It is a guard, not a proof of anonymity: it catches the common mistakes in exports.

Examples
--------
>>> from analysis.anonymisation import identifier_kind
>>> identifier_kind("next_of_kin"), identifier_kind("baseline_gad7")
("a relative's, employer's or household member's name or details", None)
"""

from __future__ import annotations

from .dates import looks_like_calendar_date
from .guard import check_column_names, check_identifying_values, check_top_coded_age
from .kinds import HOW_TO_DEIDENTIFY, KINDS
from .names import identifier_kind
from .values import find_identifiers

__all__ = [
    "HOW_TO_DEIDENTIFY", "KINDS", "check_column_names", "check_identifying_values", "check_top_coded_age",
    "find_identifiers", "identifier_kind", "looks_like_calendar_date",
]
