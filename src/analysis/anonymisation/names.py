"""Column names that say a column holds a direct identifier.

Rule: a column is refused (not loaded) when its name, split into words, contains a phrase
naming one of the Safe Harbor identifiers (45 CFR 164.514(b)(2)(i), items (A) to (R); see
:mod:`analysis.anonymisation.kinds`), spelled out or abbreviated as exports spell them:
``DateOfBirth``, ``d.o.b.``, ``yob``, ``mrn1``, ``nhsnumber``, ``zipcode``, ``ip_addr``,
``fname``, ``next_of_kin``.

How a name is split (:func:`tokens`): camelCase and letter/digit boundaries become word
breaks, so do spaces, ``_``, ``-``, ``.`` and every other separator; case is ignored and
digits are dropped; a run of letters written as one word (``phonenumber``,
``dateofbirth``) is split into the words of the vocabulary below when it can be split
into them completely.

Look-alikes are kept: ``drug_name``, ``site_name`` and ``instrument_name`` name things, not
people; ``cell_count`` is not a mobile phone; ``ip_days`` (inpatient days) is not an IP
address; ``update_day`` has no date in it; ``birth_weight`` is not a date of birth.

Examples
--------
>>> from analysis.anonymisation.names import identifier_key, tokens
>>> tokens("DateOfBirth"), tokens("mrn1"), tokens("nhsnumber")
(['date', 'of', 'birth'], ['mrn'], ['nhs', 'number'])
>>> identifier_key("guardian_name"), identifier_key("FirstName"), identifier_key("drug_name")
('relative', 'name', None)
"""

from __future__ import annotations

import re
from functools import lru_cache

from .kinds import KINDS

__all__ = ["tokens", "identifier_key", "identifier_kind", "is_id_column", "is_age_column", "is_coding_column"]

# nouns that make "name" the name of a thing, not of a person
_THING = frozenset("""
    drug drugs medication medications med meds medicine product brand generic trade chemical compound substance
    instrument instruments scale questionnaire test assessment measure outcome item variable var field column col
    site study trial file arm group cohort protocol diagnosis condition disease event visit phase route treatment
    therapy clinic hospital centre center facility practice ward unit department dept sponsor code class category
    type region country state dataset table sheet batch lab assay sample specimen procedure program programme
    model version tool form device rater scheme plan list file folder sheet project
""".split())
# words that make a name a person's (they win over the things above)
_PERSON = frozenset("""
    patient pt person subject participant client first last given family middle full maiden guardian parent
    mother father mum mom dad spouse partner carer caregiver relative kin contact emergency child son daughter
    sibling husband wife doctor physician clinician gp nurse consultant referrer user
""".split())

_PHRASES: tuple[tuple[str, list[str], bool], ...] = (
    ("email", ["email", "emails", "e mail", "mail", "email address"], False),
    ("url", ["url", "urls", "uri", "website", "web address", "web site", "webpage", "web page", "homepage"], False),
    ("ip", ["ip address", "ip addr", "ip adr", "ipv", "ip addresses"], False),
    ("ip", ["ip"], True),
    ("device", ["mac address", "mac addr", "device id", "device serial", "device number", "device no",
                "device identifier", "serial number", "serial no", "serial num", "serial nr", "serial id", "serialno",
                "udi", "imei"], False),
    ("device", ["serial"], True),
    ("vehicle", ["vin", "vehicle", "licence plate", "license plate", "number plate", "plate number",
                "registration plate", "car registration", "reg plate"], False),
    ("birth_date", ["dob", "yob", "d o b", "date of birth", "birth date", "birthdate", "birthday", "bday",
                "birth dt", "birth year", "year of birth", "birth yr", "birth month", "month of birth",
                "born"], False),
    ("date", ["date", "dates", "datetime", "timestamp", "timestamps", "dt", "dttm", "dod", "date of death",
                "death date", "yyyymmdd", "ddmmyyyy", "mmddyyyy"], False),
    ("fax", ["fax", "facsimile"], False),
    ("phone", ["phone", "phones", "telephone", "tel", "telno", "mobile", "cellphone", "landline", "pager",
                "cell phone", "cell number", "cell no", "contact number", "contact no", "phone number"], False),
    ("phone", ["cell"], True),
    ("national_id", ["ssn", "social security", "socsec", "nhs number", "nhs no", "nhs num", "nhs id", "nhsno",
                "chi number", "chi no", "national id", "national identifier", "national insurance",
                "ni number", "ni no", "nino", "passport", "tax id", "taxpayer id", "personnummer", "bsn",
                "aadhaar", "health card", "healthcard", "sin number"], False),
    ("national_id", ["nhs"], True),
    ("mrn", ["mrn", "mrns", "medical record", "med rec", "record number", "record no", "hospital number",
                "hospital no", "hospital num", "hosp no", "hosp num", "hosp number", "chart number", "chart no",
                "emr id", "ehr id", "epic id", "accession", "accession number", "case number", "case no"], False),
    ("health_plan", ["health plan", "beneficiary", "member id", "member number", "member no", "subscriber",
                "insurance number", "insurance no", "insurance id", "insurance num", "policy number",
                "policy no", "policy id", "medicaid number", "medicaid id", "medicaid no",
                "medicare number", "medicare id", "medicare no", "insurance card"], False),
    ("account", ["account", "accounts", "acct", "acc no", "acc number", "iban", "sort code", "card number",
                "credit card", "debit card", "bank account"], False),
    ("licence", ["licence", "license", "licences", "licenses", "certificate", "cert number", "cert no",
                "permit number"], False),
    ("biometric", ["biometric", "biometrics", "fingerprint", "fingerprints", "finger print", "voiceprint",
                "voice print", "retina", "retinal scan", "iris scan", "face scan", "facial recognition",
                "palm print", "signature"], False),
    ("photo", ["photo", "photos", "photograph", "photographs", "picture", "headshot", "selfie", "portrait",
                "face image", "face photo", "mugshot"], False),
    ("relative", ["next of kin", "nok", "kin", "emergency contact", "guardian", "employer", "spouse",
                "household member"], False),
    ("name", ["fname", "lname", "mname", "fullname", "surname", "surnames", "forename", "forenames",
                "givenname", "initials", "nickname", "alias", "maiden"], False),
    ("other", ["twitter", "facebook", "instagram", "linkedin", "social media", "username", "user name",
                "login"], False),
    ("address", ["address", "addresses", "addr", "adr", "street", "postcode", "postcodes", "post code",
                "postal code", "postal", "zip", "zipcode", "zip code", "zip4", "city", "town", "county",
                "village", "suburb", "precinct", "geocode", "latitude", "longitude", "lat", "lon", "lng",
                "gps", "coordinates", "house number", "apartment", "apt", "residence"], False),
)

# (kind, phrase, whole): the phrase's words must appear in a row in the name; with
# whole=True they must be the whole name. Earlier rules win: "ip address" is an IP
# address, "email address" an e-mail address, "date of birth" a date of birth.
_RULES: tuple[tuple[str, tuple[str, ...], bool], ...] = tuple(
    (kind, tuple(phrase.split()), whole)
    for kind, phrases, whole in _PHRASES for phrase in phrases
)

# words a run of letters may be split into: every word of a phrase, and the qualifiers
_VOCAB = frozenset(
    {w for _, phrase, _ in _RULES for w in phrase if len(w) > 1}
    | _THING | _PERSON
    | set("name names number no num nr id code of line home work primary secondary year month day yr".split())
)
_LONGEST = max(map(len, _VOCAB))


def _split_camel(text: str) -> str:
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", text)
    return re.sub(r"([A-Za-z])(?=\d)|(\d)(?=[A-Za-z])", r"\1\2 ", text)


@lru_cache(maxsize=4096)
def _segment(word: str) -> tuple[str, ...]:
    """``word`` split into vocabulary words (fewest pieces), or ``(word,)`` if it cannot be."""
    if word in _VOCAB or len(word) < 4:
        return (word,)
    best: list[tuple[str, ...] | None] = [None] * (len(word) + 1)
    best[0] = ()
    for end in range(2, len(word) + 1):
        for start in range(max(0, end - _LONGEST), end - 1):
            piece = word[start:end]
            if best[start] is not None and piece in _VOCAB:
                candidate = best[start] + (piece,)
                if best[end] is None or len(candidate) < len(best[end]):
                    best[end] = candidate
    return best[-1] if best[-1] is not None else (word,)


@lru_cache(maxsize=4096)
def _tokens(column: str) -> tuple[str, ...]:
    words = re.split(r"[^a-z0-9]+", _split_camel(str(column)).lower())
    out: list[str] = []
    for w in words:
        if w and not w.isdigit():
            out.extend(_segment(w))
    return tuple(out)


def tokens(column: str) -> list[str]:
    """The words of a column name, as the guard reads it.

    Examples
    --------
    >>> from analysis.anonymisation.names import tokens
    >>> tokens("IPAddress"), tokens("address1"), tokens("Post-Code"), tokens("phonenumber")
    (['ip', 'address'], ['address'], ['post', 'code'], ['phone', 'number'])
    """
    return list(_tokens(column))


def _contains(words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(words[i:i + n] == phrase for i in range(len(words) - n + 1))


def _is_person_name(words: tuple[str, ...]) -> bool:
    if "name" not in words and "names" not in words:
        return False
    return bool(_PERSON.intersection(words)) or not _THING.intersection(words)


@lru_cache(maxsize=4096)
def identifier_key(column: str) -> str | None:
    """The key (:data:`~analysis.anonymisation.kinds.KINDS`) of the identifier a column name says it holds, or None.

    Examples
    --------
    >>> from analysis.anonymisation.names import identifier_key
    >>> [identifier_key(c) for c in ("fname", "ip_addr", "yob", "zipcode", "dose_mg_per_kg")]
    ['name', 'ip', 'birth_date', 'address', None]
    """
    words = _tokens(column)
    if not words:
        return None
    for kind, phrase, whole in _RULES:
        if (words == phrase) if whole else _contains(words, phrase):
            return kind
    if _is_person_name(words):
        return "name"
    return None


def identifier_kind(column: str) -> str | None:
    """What direct identifier a column name suggests (its label), or None.

    Examples
    --------
    >>> from analysis.anonymisation import identifier_kind
    >>> identifier_kind("Date of Birth"), identifier_kind("prior_treatment_failures")
    ('a date of birth', None)
    """
    key = identifier_key(column)
    return None if key is None else KINDS[key].label


_ID_WORDS = frozenset({"id", "ids", "identifier", "key", "number", "no", "num", "nr", "ref"})
_CODING = frozenset({"code", "codes", "snomed", "sctid", "loinc", "icd", "atc", "ndc", "rxnorm", "rxcui",
                     "concept", "cui", "omop", "cpt", "opcs", "read", "ctv"})
_TIME_UNITS = frozenset({"months", "month", "mo", "mos", "weeks", "week", "wk", "wks", "days", "day", "d",
                         "hours", "hour", "h", "hrs", "group", "band", "category", "cat"})


def is_id_column(column: str) -> bool:
    """Whether a column is named like a key (``patient_id``, ``subject_id``, ``record_no``).

    Examples
    --------
    >>> from analysis.anonymisation.names import is_id_column
    >>> is_id_column("patient_id"), is_id_column("SubjectID"), is_id_column("drug")
    (True, True, False)
    """
    words = _tokens(column)
    return bool(words) and words[-1] in _ID_WORDS and not _CODING.intersection(words)


def is_coding_column(column: str) -> bool:
    """Whether a column holds codes of a coding system (SNOMED, LOINC, ICD, OMOP concept ids),
    whose long numbers are not record numbers.

    Examples
    --------
    >>> from analysis.anonymisation.names import is_coding_column
    >>> is_coding_column("snomed_code"), is_coding_column("drug_concept_id"), is_coding_column("mrn")
    (True, True, False)
    """
    return bool(_CODING.intersection(_tokens(column)))


def is_age_column(column: str) -> bool:
    """Whether a column holds an age in years: its name starts with ``age`` (``age``, ``age_at_onset``,
    ``AgeYears``) or ends with it (``onset_age``), and no other unit (months, weeks) is named.

    Examples
    --------
    >>> from analysis.anonymisation.names import is_age_column
    >>> [is_age_column(c) for c in ("age_at_onset", "onset_age", "age2", "age_months", "dosage", "stage")]
    [True, True, True, False, False, False]
    """
    words = _tokens(column)
    if not words or "age" not in (words[0], words[-1]):
        return False
    return not _TIME_UNITS.intersection(words)
