"""The kinds of identifier the guard looks for, and how to remove each.

Rule: HIPAA's Safe Harbor method of de-identification, 45 CFR 164.514(b)(2)(i), lists 18
kinds of identifier, (A) to (R), to remove "of the individual or of relatives, employers,
or household members of the individual". Every kind here names the item of that list it
comes from; the guard's own additions (free text) say so. The same list is the UK ICO's
and the EMA's starting point for "direct identifiers".

Source: U.S. Department of Health and Human Services, "Guidance Regarding Methods for
De-identification of Protected Health Information in Accordance with the HIPAA Privacy
Rule" (2012), section 3 (the Safe Harbor list).

Examples
--------
>>> from analysis.anonymisation.kinds import KINDS
>>> KINDS["mrn"].label, KINDS["mrn"].hipaa
('a medical record number', '(H) medical record numbers')
>>> len({k.hipaa[:3] for k in KINDS.values() if k.hipaa.startswith("(")})
18
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HOW_TO_DEIDENTIFY", "IdentifierKind", "KINDS", "REKEY"]

#: the general advice every refusal ends with
HOW_TO_DEIDENTIFY = (
    "remove direct identifiers before loading: drop names, contact details and record numbers, "
    "replace ids with pseudonyms, give times as study days since a per-patient index date, "
    "and top-code ages over 89 to 90 (docs/anonymisation.md)"
)

#: advice for a record number or other real identifier used as the patient key
REKEY = (
    "re-key every patient to a pseudonym (for example P0001, P0002, ...) and keep the table "
    "linking pseudonyms to record numbers apart from the data"
)


@dataclass(frozen=True)
class IdentifierKind:
    """One kind of identifier.

    Attributes
    ----------
    key : str
        Short name used in the code and the tests (``"phone"``).
    label : str
        What the messages call it (``"a phone number"``).
    hipaa : str
        The item of the Safe Harbor list it belongs to (``"(D) telephone numbers"``).
    advice : str
        How to de-identify a column or value of this kind.
    """

    key: str
    label: str
    hipaa: str
    advice: str


_DROP = "drop the column (or blank the value)"

KINDS: dict[str, IdentifierKind] = {
    k.key: k
    for k in (
        IdentifierKind("name", "a person's name", "(A) names", f"{_DROP}; the pseudonymous patient_id is the only key needed"),
        IdentifierKind("relative", "a relative's, employer's or household member's name or details",
                       "(A) names (of relatives, employers or household members)", _DROP),
        IdentifierKind("address", "an address or a place smaller than a state",
                       "(B) geographic subdivisions smaller than a state",
                       f"{_DROP}; keep at most the state or region (or the first three digits of a ZIP code "
                       "whose area holds more than 20,000 people)"),
        IdentifierKind("birth_date", "a date of birth", "(C) dates (birth date)",
                       f"{_DROP}; give the age at the index date in whole years instead, top-coded at 90"),
        IdentifierKind("date", "a calendar date", "(C) dates (admission, discharge, death, visits)",
                       "convert every date to a study day: days since the patient's own index date "
                       "(date - index date, e.g. the first session)"),
        IdentifierKind("age", "an age over 89", "(C) ages over 89", "top-code every age over 89 to 90"),
        IdentifierKind("phone", "a phone number", "(D) telephone numbers", _DROP),
        IdentifierKind("fax", "a fax number", "(E) fax numbers", _DROP),
        IdentifierKind("email", "an e-mail address", "(F) electronic mail addresses", _DROP),
        IdentifierKind("national_id", "a national identifier (SSN, NHS number, national insurance number)",
                       "(G) social security numbers", f"{_DROP}; {REKEY}"),
        IdentifierKind("mrn", "a medical record number", "(H) medical record numbers", f"{_DROP}; {REKEY}"),
        IdentifierKind("health_plan", "a health-plan beneficiary number", "(I) health plan beneficiary numbers", _DROP),
        IdentifierKind("account", "an account or card number", "(J) account numbers", _DROP),
        IdentifierKind("licence", "a certificate or licence number", "(K) certificate/license numbers", _DROP),
        IdentifierKind("vehicle", "a vehicle identifier or licence plate", "(L) vehicle identifiers and serial numbers", _DROP),
        IdentifierKind("device", "a device identifier or serial number", "(M) device identifiers and serial numbers", _DROP),
        IdentifierKind("url", "a web address (URL)", "(N) web universal resource locators (URLs)", _DROP),
        IdentifierKind("ip", "an IP address", "(O) internet protocol (IP) address numbers", _DROP),
        IdentifierKind("biometric", "a biometric identifier",
                       "(P) biometric identifiers, including finger and voice prints", _DROP),
        IdentifierKind("photo", "a full-face photograph or comparable image", "(Q) full face photographic images", _DROP),
        IdentifierKind("other", "another unique identifying number or handle", "(R) any other unique identifying number, "
                       "characteristic or code", _DROP),
        IdentifierKind("free_text", "free text", "not a Safe Harbor kind: free text can hold any of them",
                       "drop the column or code it into categories; after checking it by hand, allow it with "
                       "allow_free_text"),
    )
}
